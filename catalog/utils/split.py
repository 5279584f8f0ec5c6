def main(args):
    payload = args.get("payload", "")
    if not isinstance(payload, str):
        return {"error": "payload must be a string"}
    separator = args.get("separator") or "\n"
    return {"lines": payload.split(separator), "payload": payload}
