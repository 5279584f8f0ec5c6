def main(args):
    lines = args.get("lines", [])
    if not isinstance(lines, list):
        return {"error": "lines must be an array"}
    ordered = sorted(lines, key=str)
    return {"lines": ordered, "length": len(ordered)}
