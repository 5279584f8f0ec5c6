def main(args):
    name = args.get("name", "stranger")
    place = args.get("place", "somewhere")
    return {"payload": f"Hello, {name} from {place}!"}
