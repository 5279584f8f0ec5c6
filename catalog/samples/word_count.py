def main(args):
    text = args.get("payload", "")
    if not isinstance(text, str):
        return {"error": "payload must be a string"}
    count = len(text.split())
    print(f"The message '{text}' has {count} words")
    return {"count": count}
