"""`pywhisk standalone [--port 3233] [--data-dir DIR] [--containers auto|process|docker]` and
`pywhisk admin [--store URL | --data-dir DIR] user|limits ...`, and the distributed processes
`pywhisk controller`, `pywhisk invoker` and `pywhisk feeds` (configured by `PYWHISK_*` variables and these flags)."""

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
    for name, text in (("controller", "run a controller of the distributed stack (REST API, load balancer)"),
                       ("invoker", "run an invoker of the distributed stack (runs actions in containers)"),
                       ("feeds", "run the feed service of the distributed stack (alarms, CouchDB changes)")):
        service = commands.add_parser(name, help=text)
        service.add_argument("--store", dest="store_url", help="store URL (PYWHISK_STORE_URL)")
        service.add_argument("--bus", dest="bus_url", help="bus URL, kafka://host:port (PYWHISK_BUS_URL)")
        if name == "controller":
            service.add_argument("--host", help="address to listen on (default 0.0.0.0)")
            service.add_argument("--port", type=int, help="port to listen on (default 3233)")
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
    if args.command in ("controller", "invoker", "feeds"):
        return _serve(args)
    if args.command == "admin":
        from pywhisk import admin

        return admin.main(args, os.environ)
    return 2


def _serve(args: argparse.Namespace) -> int:
    from pywhisk import services
    from pywhisk.process import run_until_signalled
    from whisk.config import FeedSettings, ServiceSettings

    try:
        settings = ServiceSettings.from_env(
            os.environ, store_url=args.store_url, bus_url=args.bus_url,
            host=getattr(args, "host", None), port=getattr(args, "port", None))
        if args.command == "feeds":
            FeedSettings.from_env(os.environ)
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    serve = {"controller": services.serve_controller, "invoker": services.serve_invoker,
             "feeds": services.serve_feeds}[args.command]
    return run_until_signalled(lambda stop: serve(settings, os.environ, stop), os.environ.get("PYWHISK_LOG_LEVEL",
                                                                                             "INFO"))


if __name__ == "__main__":
    sys.exit(main())
