"""Command-line parsing and dispatch, shaped like wsk's cobra commands.

Like wsk (`commands/commands.go` `parseArgs`), `-p/--param KEY VALUE`, `-a/--annotation KEY VALUE`,
`-P/--param-file FILE` and `-A/--annotation-file FILE` are taken out of the command line before anything else, in
order; the global flags may appear anywhere. Each `GROUP SUBCOMMAND` then gets its own argparse parser (parsed with
`parse_intermixed_args`, so flags and positional arguments can be mixed as with cobra). Positional arguments are
counted by the commands themselves so that the messages match wsk's.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

from pywsk.client import Client, api_host_error
from pywsk.config import Properties, load_properties
from pywsk.errors import EXIT_CODE_ERR_GENERAL, EXIT_CODE_ERR_USAGE, UsageError, WskError

PROG = "pywsk"

# (group, short help, module)
GROUPS: dict[str, tuple[str, str]] = {
    "action": ("work with actions", "pywsk.commands.action"),
    "activation": ("work with activations", "pywsk.commands.activation"),
    "api": ("work with APIs", "pywsk.commands.api"),
    "namespace": ("work with namespaces", "pywsk.commands.namespace"),
    "package": ("work with packages", "pywsk.commands.package"),
    "property": ("work with whisk properties", "pywsk.commands.property"),
    "rule": ("work with rules", "pywsk.commands.rule"),
    "trigger": ("work with triggers", "pywsk.commands.trigger"),
}

# Global flags: (dest, flags, metavar or "" for a boolean flag, help)
GLOBAL_FLAGS: list[tuple[str, tuple[str, ...], str, str]] = [
    ("apihost", ("--apihost",), "HOST", "whisk API HOST"),
    ("apiversion", ("--apiversion",), "VERSION", "whisk API VERSION"),
    ("auth", ("-u", "--auth"), "KEY", "authorization KEY"),
    ("cert", ("--cert",), "FILE", "client cert"),
    ("key", ("--key",), "FILE", "client key"),
    ("cacert", ("--cacert",), "FILE", "CA certificate"),
    ("debug", ("-d", "--debug"), "", "debug level output"),
    ("insecure", ("-i", "--insecure"), "", "bypass certificate checking"),
    ("verbose", ("-v", "--verbose"), "", "verbose output"),
]
_GLOBAL_VALUE_TOKENS = {f for _, flags, metavar, _ in GLOBAL_FLAGS if metavar for f in flags}

ParamArg = tuple[str, str, str]  # ("kv", key, value) or ("file", filename, content)


@dataclass
class Command:
    """One `GROUP SUBCOMMAND`: its help, how to build its parser and how to run it."""

    name: str
    short: str
    usage: str
    build: Callable[[argparse.ArgumentParser], None]
    run: Callable[[Context, argparse.Namespace], int]
    # global flags this command redefines locally (e.g. `property get --auth` is a boolean)
    shadows: frozenset[str] = frozenset()


@dataclass
class Context:
    """What a command needs: the effective properties, parsed flags, output streams, -p/-a arguments."""

    props: Properties
    opts: argparse.Namespace
    out: TextIO
    err: TextIO
    params: list[ParamArg] = field(default_factory=list)
    annotations: list[ParamArg] = field(default_factory=list)

    def ok(self, text: str) -> None:
        self.out.write(f"ok: {text}\n")

    def client(self, props: Properties | None = None, *, require_host: bool = True) -> Client:
        """wsk's `SetupClientConfig`: an API host must be set unless the command does not need one."""
        props = props or self.props
        if require_host:
            error = api_host_error(props.apihost)
            if error is not None:
                raise error
        return Client(
            props,
            insecure=bool(getattr(self.opts, "insecure", False)),
            verbose=bool(getattr(self.opts, "verbose", False)),
            debug=bool(getattr(self.opts, "debug", False)),
            out=self.out,
            err=self.err,
        )


class Parser(argparse.ArgumentParser):
    """argparse that raises instead of exiting, so `main()` decides what to print and which code to return."""

    def error(self, message: str) -> Any:  # type: ignore[override]
        raise UsageError(message)


def new_parser(prog: str, usage: str | None = None, description: str | None = None) -> Parser:
    return Parser(prog=prog, usage=usage, description=description, allow_abbrev=False, add_help=True)


def add_global_flags(parser: argparse.ArgumentParser, shadows: frozenset[str] = frozenset()) -> None:
    group = parser.add_argument_group("global flags")
    for dest, flags, metavar, help_text in GLOBAL_FLAGS:
        if dest in shadows:
            continue
        if metavar:
            group.add_argument(*flags, dest=f"g_{dest}", metavar=metavar, default=None, help=help_text)
        else:
            group.add_argument(*flags, dest=f"g_{dest}", action="store_true", default=False, help=help_text)


def add_param_flags(parser: argparse.ArgumentParser, *, annotations: bool = True) -> None:
    """Documents -p/-P (and -a/-A); they are consumed before argparse runs (see `extract_params`)."""
    parser.add_argument(
        "-p", "--param", nargs=2, metavar=("KEY", "VALUE"), action="append", help="parameter values in KEY VALUE format"
    )
    parser.add_argument("-P", "--param-file", metavar="FILE", help="FILE containing parameter values in JSON format")
    if annotations:
        parser.add_argument(
            "-a",
            "--annotation",
            nargs=2,
            metavar=("KEY", "VALUE"),
            action="append",
            help="annotation values in KEY VALUE format",
        )
        parser.add_argument(
            "-A", "--annotation-file", metavar="FILE", help="FILE containing annotation values in JSON format"
        )


# -- -p / -a pre-parsing ----------------------------------------------------------------------------------------


def _read_arg_file(filename: str) -> str:
    import os

    if not os.path.exists(filename):
        raise WskError(
            f"Failed to parse arguments: File '{filename}' is not a valid file or it does not exist",
            EXIT_CODE_ERR_USAGE,
            display_usage=True,
        )
    try:
        with open(filename, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError as exc:
        raise WskError(
            f"Failed to parse arguments: Unable to read the file '{filename}': {exc}",
            EXIT_CODE_ERR_GENERAL,
            display_usage=True,
        ) from exc


def extract_params(argv: Sequence[str]) -> tuple[list[str], list[ParamArg], list[ParamArg]]:
    """Take `-p/-a KEY VALUE` and `-P/-A FILE` out of the command line, like wsk's `parseArgs`."""
    rest: list[str] = []
    params: list[ParamArg] = []
    annotations: list[ParamArg] = []
    i = 0
    while i < len(argv):
        token = argv[i]
        if token in ("-p", "--param", "-a", "--annotation"):
            what = "parameter" if token in ("-p", "--param") else "annotation"
            if i + 2 >= len(argv):
                raise WskError(
                    f"Failed to parse arguments: The {what} arguments are invalid: "
                    f"Arguments for '{token}' must be a key/value pair",
                    EXIT_CODE_ERR_GENERAL,
                    display_usage=True,
                )
            target = params if what == "parameter" else annotations
            target.append(("kv", argv[i + 1], argv[i + 2]))
            i += 3
        elif token in ("-P", "--param-file", "-A", "--annotation-file"):
            what = "parameter" if token in ("-P", "--param-file") else "annotation"
            if i + 1 >= len(argv):
                raise WskError(
                    f"Failed to parse arguments: The {what} arguments are invalid: "
                    f"An argument must be provided for '{token}'",
                    EXIT_CODE_ERR_GENERAL,
                    display_usage=True,
                )
            target = params if what == "parameter" else annotations
            target.append(("file", argv[i + 1], _read_arg_file(argv[i + 1])))
            i += 2
        else:
            rest.append(token)
            i += 1
    return rest, params, annotations


def _reject_constant(name: str) -> Any:
    raise ValueError(f"invalid JSON constant {name}")


def parse_json_value(text: str) -> tuple[bool, Any]:
    """(True, value) when `text` is valid JSON (as Go's encoding/json reads it), else (False, None)."""
    try:
        return True, json.loads(text, parse_constant=_reject_constant)
    except ValueError:
        return False, None


def key_values(items: Sequence[ParamArg], what: str = "parameter") -> dict[str, Any]:
    """Merge -p/-P (or -a/-A) arguments into one object, later ones winning, like wsk's `getJSONFromStrings`."""
    data: dict[str, Any] = {}
    for kind, name, text in items:
        if kind == "kv":
            valid, value = parse_json_value(text)
            data[name] = value if valid else text
            continue
        valid, value = parse_json_value(text)
        if not valid or not isinstance(value, dict):
            reason = "the file does not contain a JSON object" if valid else "invalid JSON"
            raise WskError(f"Invalid {what} argument '{name}': {reason}", EXIT_CODE_ERR_GENERAL, display_usage=True)
        data.update(value)
    return data


def check_args(args: Sequence[str], minimum: int, maximum: int, required: str) -> None:
    """wsk's `CheckArgs`: wrong positional argument counts are general errors (exit 1) that show the usage hint."""
    if len(args) < minimum:
        raise WskError(f"Invalid argument(s). {required}", EXIT_CODE_ERR_GENERAL, display_usage=True)
    if len(args) > maximum:
        extra = ", ".join(args[maximum:])
        raise WskError(f"Invalid argument(s): {extra}. {required}", EXIT_CODE_ERR_GENERAL, display_usage=True)


# -- help ---------------------------------------------------------------------------------------------------------


def root_help() -> str:
    lines = [
        "OpenWhisk cloud computing command line interface (pywsk, for pywhisk).",
        "",
        "Usage:",
        f"  {PROG} [command]",
        "",
        "Available Commands:",
    ]
    for name, (short, _) in GROUPS.items():
        lines.append(f"  {name:<12}{short}")
    lines += ["", "Flags:"]
    for _, flags, metavar, help_text in GLOBAL_FLAGS:
        spec = ", ".join(flags) + (f" {metavar}" if metavar else "")
        if flags[0].startswith("--"):
            spec = "    " + spec
        lines.append(f"  {spec:<25}{help_text}")
    lines += [
        f"  {'-h, --help':<25}help for {PROG}",
        "",
        f'Use "{PROG} [command] --help" for more information about a command.',
    ]
    return "\n".join(lines) + "\n"


def group_help(group: str, commands: dict[str, Command]) -> str:
    short, _ = GROUPS[group]
    lines = [short, "", "Usage:", f"  {PROG} {group} [command]", "", "Available Commands:"]
    for name, cmd in commands.items():
        lines.append(f"  {name:<12}{cmd.short}")
    lines += ["", f'Use "{PROG} {group} [command] --help" for more information about a command.']
    return "\n".join(lines) + "\n"


# -- dispatch -------------------------------------------------------------------------------------------------------


def _find_command_words(argv: Sequence[str]) -> list[int]:
    """Indexes of the first two non-flag words (group and subcommand), skipping global flags' values."""
    found: list[int] = []
    i = 0
    while i < len(argv) and len(found) < 2:
        token = argv[i]
        if token == "--":
            break
        if token.startswith("-") and len(token) > 1:
            if token in _GLOBAL_VALUE_TOKENS:
                i += 2
                continue
            i += 1
            continue
        found.append(i)
        i += 1
    return found


def _effective_properties(opts: argparse.Namespace) -> Properties:
    props = load_properties()
    for dest in ("auth", "apihost", "apiversion", "cert", "key", "cacert"):
        value = getattr(opts, f"g_{dest}", None)
        if value:
            setattr(props, dest, value)
    return props


def run(argv: Sequence[str], out: TextIO, err: TextIO) -> int:
    """Parse and run one command line; returns the exit code. Raises WskError or UsageError."""
    rest, params, annotations = extract_params(argv)
    words = _find_command_words(rest)
    if not words:
        if any(t in ("-h", "--help") for t in rest) or not rest:
            out.write(root_help())
            return 0
        raise UsageError(f"unknown flag: {rest[0]}")
    group = rest[words[0]]
    if group not in GROUPS:
        if group == "help":
            out.write(root_help())
            return 0
        raise UsageError(f'unknown command "{group}" for "{PROG}"')
    module = importlib.import_module(GROUPS[group][1])
    commands: dict[str, Command] = module.COMMANDS
    if len(words) < 2:
        out.write(group_help(group, commands))
        return 0
    sub = rest[words[1]]
    if sub not in commands:
        if sub == "help":
            out.write(group_help(group, commands))
            return 0
        raise UsageError(f'unknown command "{sub}" for "{PROG} {group}"')
    cmd = commands[sub]
    leaf_args = [t for i, t in enumerate(rest) if i not in words]
    parser = new_parser(f"{PROG} {group} {sub}", usage=f"{PROG} {group} {cmd.usage}", description=cmd.short)
    cmd.build(parser)
    add_global_flags(parser, cmd.shadows)
    try:
        opts = parser.parse_intermixed_args(leaf_args)
    except SystemExit as exc:  # --help
        return int(exc.code or 0)
    for dest, _, _, _ in GLOBAL_FLAGS:
        if dest not in cmd.shadows:
            setattr(opts, dest, getattr(opts, f"g_{dest}", None))
    ctx = Context(_effective_properties(opts), opts, out, err, params, annotations)
    return cmd.run(ctx, opts)


def report(error: WskError, err: TextIO) -> int:
    """Print an error like wsk's `ExitOnError` and return its exit code."""
    if error.display_msg and error.exit_code != 0:
        err.write(f"error: {error.message}\n")
    elif error.display_msg:
        err.write(f"{error.message}\n")
    if error.display_usage:
        err.write(f"Run '{PROG} --help' for usage.\n")
    return error.exit_code


def main(argv: Sequence[str] | None = None, out: TextIO | None = None, err: TextIO | None = None) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        return run(argv, out, err)
    except WskError as error:
        return report(error, err)
    except UsageError as error:
        err.write(f"error: {error}\nRun '{PROG} --help' for usage.\n")
        return EXIT_CODE_ERR_USAGE
    except KeyboardInterrupt:
        return 130
