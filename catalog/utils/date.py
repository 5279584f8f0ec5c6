from datetime import UTC, datetime


def main(args):
    return {"date": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")}
