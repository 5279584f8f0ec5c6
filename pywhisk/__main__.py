"""`pywhisk standalone [--port 3233] [--data-dir DIR] [--containers auto|process|docker]` and
`pywhisk admin [--store URL | --data-dir DIR] user|limits ...`."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from whisk.config import SettingsError, StandaloneSettings


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pywhisk", description="pywhisk server-side commands")
    commands = parser.add_subparsers(dest="command", required=True)
    standalone = commands.add_parser(
        "standalone", help="run controller and invoker in one process on 127.0.0.1, on SQLite and local containers")
    standalone.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    standalone.add_argument("--port", type=int, help="port to listen on (default 3233; 0 picks a free one)")
    standalone.add_argument("--data-dir", type=Path, help="where data and the guest key live (default ~/.pywhisk)")
    standalone.add_argument("--containers", choices=["auto", "process", "docker"],
                            help="how actions run (default auto: Docker when a daemon answers, else processes)")
    standalone.add_argument("--wskprops", type=Path,
                            help="file to write APIHOST and AUTH to (default $WSK_CONFIG_FILE or ~/.wskprops)")
    from pywhisk.admin import add_arguments

    add_arguments(commands.add_parser(
        "admin", help="manage users, namespaces, keys and limits in the store (like OpenWhisk's wskadmin)"))
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "standalone":
        from pywhisk.standalone import run

        try:
            settings = StandaloneSettings.from_env(
                os.environ, host=args.host, port=args.port, data_dir=args.data_dir, containers=args.containers,
                wskprops=args.wskprops)
        except SettingsError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        return run(settings, os.environ)
    if args.command == "admin":
        from pywhisk import admin

        return admin.main(args, os.environ)
    return 2


if __name__ == "__main__":
    sys.exit(main())
