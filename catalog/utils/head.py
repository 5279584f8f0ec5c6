def main(args):
    lines = args.get("lines", [])
    if not isinstance(lines, list):
        return {"error": "lines must be an array"}
    num = args.get("num", 1)
    if not isinstance(num, int) or num < 0:
        return {"error": "num must be a non-negative integer"}
    return {"lines": lines[:num], "num": num}
