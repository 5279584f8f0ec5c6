"""`pywsk namespace list` (wsk `commands/namespace.go`)."""

from __future__ import annotations

import argparse

from pywsk.cli import Command, Context, check_args
from pywsk.errors import WskError


def _build_list(p: argparse.ArgumentParser) -> None:
    p.add_argument("args", nargs="*", help=argparse.SUPPRESS)


def _run_list(ctx: Context, opts: argparse.Namespace) -> int:
    check_args(opts.args, 0, 0, "No arguments are required.")
    try:
        resp = ctx.client().request("GET", "namespaces", route="")
    except WskError as exc:
        raise exc.wrap(f"Unable to obtain the list of available namespaces: {exc.message}") from exc
    names = resp.body if isinstance(resp.body, list) else []
    ctx.out.write("namespaces\n" + "".join(f"{name}\n" for name in names))
    return 0


COMMANDS: dict[str, Command] = {
    "list": Command("list", "list available namespaces", "list [flags]", _build_list, _run_list),
}
