def main(args):
    lines = args.get("lines", [])
    if not isinstance(lines, list):
        return {"error": "lines must be an array"}
    return {"lines": lines, "payload": "\n".join(str(line) for line in lines)}
