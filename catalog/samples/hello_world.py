def main(args):
    print(f"hello {args.get('payload', 'world')}!")
    return {}
