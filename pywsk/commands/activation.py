"""`pywsk activation list|get|logs|result|poll` (wsk `commands/activation.go`, client-go `whisk/activation.go`)."""

from __future__ import annotations

import argparse
import time
from typing import Any

from pywsk.cli import Command, Context, check_args
from pywsk.errors import EXIT_CODE_ERR_GENERAL, WskError
from pywsk.names import parse_name, quote_path
from pywsk.output import (
    ACTIVATION_FIELD_FILTERS,
    activation_table,
    activation_view,
    field_value,
    print_json,
    strip_timestamp,
)

DEFAULT_ACTIVATION_LIMIT = 30
MAX_ACTIVATION_LIMIT = 200
POLL_INTERVAL_SECONDS = 2.0


def _list_query(
    *, name: str = "", limit: int = 0, skip: int = 0, since: int = 0, upto: int = 0, docs: bool = False
) -> list[tuple[str, str]]:
    """Query options with Go's omitempty rules, keys sorted like Go's `url.Values.Encode`."""
    query = {"limit": str(limit), "skip": str(skip)}
    if name:
        query["name"] = name
    if since:
        query["since"] = str(since)
    if upto:
        query["upto"] = str(upto)
    if docs:
        query["docs"] = "true"
    return sorted(query.items())


def _list(ctx: Context, namespace: str = "_", **options: Any) -> list[dict[str, Any]]:
    resp = ctx.client().entity("GET", namespace, "activations", query=_list_query(**options))
    return [a for a in resp.body if isinstance(a, dict)] if isinstance(resp.body, list) else []


def _with_last(ctx: Context, args: list[str], last: bool, what: str) -> list[str]:
    """wsk's `lastFlag`: put the newest activation's id first in the arguments."""
    if not last:
        return args
    try:
        activations = _list(ctx, limit=1, skip=0)
        if not activations:
            raise WskError(
                "Activation list does not contain any activations.", EXIT_CODE_ERR_GENERAL, display_usage=True
            )
    except WskError as exc:
        raise exc.wrap(f"Unable to get {what}: {exc.message}") from exc
    newest = str(activations[0].get("activationId", ""))
    if not args:
        return [newest]
    return [newest, *args[1:], args[0]] if len(args) > 1 else [newest, args[0]]


def _get(ctx: Context, activation_id: str, suffix: str = "") -> Any:
    route = f"activations/{quote_path(activation_id)}{suffix}"
    return ctx.client().entity("GET", "_", route).body


# -- list -----------------------------------------------------------------------------------------------------------


def _build_list(p: argparse.ArgumentParser) -> None:
    p.add_argument("args", nargs="*", metavar="NAMESPACE or NAME")
    p.add_argument(
        "-s",
        "--skip",
        type=int,
        default=0,
        metavar="SKIP",
        help="exclude the first SKIP number of activations from the result",
    )
    p.add_argument(
        "-l",
        "--limit",
        type=int,
        default=DEFAULT_ACTIVATION_LIMIT,
        metavar="LIMIT",
        help=f"only return LIMIT number of activations from the collection with a maximum LIMIT of "
        f"{MAX_ACTIVATION_LIMIT} activations",
    )
    p.add_argument("-f", "--full", action="store_true", help="include full activation description")
    p.add_argument(
        "--upto",
        type=int,
        default=0,
        metavar="UPTO",
        help="return activations with timestamps earlier than UPTO; measured in milliseconds since Th, 01, Jan 1970",
    )
    p.add_argument(
        "--since",
        type=int,
        default=0,
        metavar="SINCE",
        help="return activations with timestamps later than SINCE; measured in milliseconds since Th, 01, Jan 1970",
    )


def _run_list(ctx: Context, opts: argparse.Namespace) -> int:
    args: list[str] = opts.args
    check_args(args, 0, 1, "An optional namespace is the only valid argument.")
    namespace, name = "_", ""
    if args:
        qn = parse_name(args[0], ctx.props.namespace)
        namespace, name = qn.namespace, qn.entity_name
    try:
        activations = _list(
            ctx,
            namespace,
            name=name,
            limit=opts.limit,
            skip=opts.skip,
            since=opts.since,
            upto=opts.upto,
            docs=opts.full,
        )
    except WskError as exc:
        shown = "default" if namespace == "_" else namespace
        raise exc.wrap(f"Unable to obtain the list of activations for namespace '{shown}': {exc.message}") from exc
    if opts.full:
        ctx.out.write("activations\n")
        for activation in activations:
            print_json(activation_view(activation), ctx.out, sort=False)
    else:
        ctx.out.write(activation_table(activations))
    return 0


# -- get ------------------------------------------------------------------------------------------------------------


def _build_get(p: argparse.ArgumentParser) -> None:
    p.add_argument("args", nargs="*", metavar="ACTIVATION_ID [FIELD_FILTER]")
    p.add_argument("-s", "--summary", action="store_true", help="summarize activation details")
    p.add_argument("-l", "--last", action="store_true", help="retrieves the last activation")
    p.add_argument(
        "-g", "--logs", action="store_true", help="emit only the logs, stripped of time stamps and stream identifier"
    )


def _run_get(ctx: Context, opts: argparse.Namespace) -> int:
    args = _with_last(ctx, list(opts.args), opts.last, "activation")
    check_args(args, 1, 2, "An activation ID is required.")
    field = None
    if len(args) > 1:
        field = args[1]
        if field.lower() not in ACTIVATION_FIELD_FILTERS:
            raise WskError(f"Invalid field filter '{field}'.", EXIT_CODE_ERR_GENERAL)
    activation_id = args[0]
    try:
        activation = _get(ctx, activation_id)
    except WskError as exc:
        raise exc.wrap(f"Unable to get activation '{activation_id}': {exc.message}") from exc
    activation = activation if isinstance(activation, dict) else {}
    if opts.summary:
        response = activation.get("response") if isinstance(activation.get("response"), dict) else {}
        end = activation.get("end") if isinstance(activation.get("end"), int) else 0
        when = time.strftime("%Y-%m-%d %H:%M:%S %z %Z", time.localtime(end // 1000))
        ctx.out.write(
            f"activation result for '/{activation.get('namespace', '')}/{activation.get('name', '')}' "
            f"({response.get('status', '')} at {when})\n"
        )
        print_json(response.get("result"), ctx.out)
    elif opts.logs:
        for line in activation.get("logs") or []:
            ctx.out.write(f"{strip_timestamp(str(line))}\n")
    elif field is not None:
        ctx.ok(f"got activation {activation_id}, displaying field {field}")
        print_json(field_value(activation_view(activation), ACTIVATION_FIELD_FILTERS, field), ctx.out, sort=False)
    else:
        ctx.ok(f"got activation {activation_id}")
        print_json(activation_view(activation), ctx.out, sort=False)
    return 0


# -- logs / result ----------------------------------------------------------------------------------------------------


def _build_logs(p: argparse.ArgumentParser) -> None:
    p.add_argument("args", nargs="*", metavar="ACTIVATION_ID")
    p.add_argument("-l", "--last", action="store_true", help="retrieves the last activation")
    p.add_argument("-r", "--strip", action="store_true", help="strip timestamp and stream information")


def _run_logs(ctx: Context, opts: argparse.Namespace) -> int:
    args = _with_last(ctx, list(opts.args), opts.last, "logs for activation")
    check_args(args, 1, 1, "An activation ID is required.")
    activation_id = args[0]
    try:
        body = _get(ctx, activation_id, "/logs")
    except WskError as exc:
        raise exc.wrap(f"Unable to get logs for activation '{activation_id}': {exc.message}") from exc
    logs = body.get("logs") if isinstance(body, dict) else None
    for line in logs or []:
        ctx.out.write(f"{strip_timestamp(str(line)) if opts.strip else line}\n")
    return 0


def _build_result(p: argparse.ArgumentParser) -> None:
    p.add_argument("args", nargs="*", metavar="ACTIVATION_ID")
    p.add_argument("-l", "--last", action="store_true", help="retrieves the last activation")


def _run_result(ctx: Context, opts: argparse.Namespace) -> int:
    args = _with_last(ctx, list(opts.args), opts.last, "result for activation")
    check_args(args, 1, 1, "An activation ID is required.")
    activation_id = args[0]
    try:
        body = _get(ctx, activation_id, "/result")
    except WskError as exc:
        raise exc.wrap(f"Unable to get result for activation '{activation_id}': {exc.message}") from exc
    print_json(body.get("result") if isinstance(body, dict) else None, ctx.out)
    return 0


# -- poll -------------------------------------------------------------------------------------------------------------


def _build_poll(p: argparse.ArgumentParser) -> None:
    p.add_argument("args", nargs="*", metavar="NAMESPACE | ACTION_NAME")
    p.add_argument("-e", "--exit", type=int, default=0, metavar="SECONDS", help="stop polling after SECONDS seconds")
    p.add_argument(
        "--since-seconds",
        type=int,
        default=0,
        metavar="SECONDS",
        help="start polling for activations SECONDS seconds ago",
    )
    p.add_argument(
        "--since-minutes",
        type=int,
        default=0,
        metavar="MINUTES",
        help="start polling for activations MINUTES minutes ago",
    )
    p.add_argument(
        "--since-hours", type=int, default=0, metavar="HOURS", help="start polling for activations HOURS hours ago"
    )
    p.add_argument(
        "--since-days", type=int, default=0, metavar="DAYS", help="start polling for activations DAYS days ago"
    )


def _run_poll(ctx: Context, opts: argparse.Namespace) -> int:
    args: list[str] = opts.args
    check_args(args, 0, 1, "An optional namespace is the only valid argument.")
    name = args[0] if args else ""
    ctx.client()  # validates the API host before printing anything
    out = ctx.out
    out.write("Enter Ctrl-c to exit.\n")
    since = 0
    offset = opts.since_seconds + 60 * opts.since_minutes + 3600 * opts.since_hours + 86400 * (opts.since_days)
    if offset == 0:
        try:
            newest = _list(ctx, limit=1, docs=True)
        except WskError:
            since = int(time.time()) * 1000
        else:
            if newest and isinstance(newest[0].get("start"), int):
                since = newest[0]["start"] + 1
    else:
        since = int(time.time()) * 1000 - offset * 1000
    out.write("Polling for activation logs\n")
    out.flush()
    reported: set[str] = set()
    started = time.monotonic()
    try:
        while True:
            if opts.exit > 0 and time.monotonic() - started > opts.exit:
                return 0
            try:
                activations = _list(ctx, name=name, since=since, docs=True, limit=0, skip=0)
            except WskError:
                activations = []
            for activation in activations:
                activation_id = str(activation.get("activationId", ""))
                if activation_id not in reported:
                    out.write(f"\nActivation: '{activation.get('name', '')}' ({activation_id})\n")
                    print_json(activation.get("logs"), out)
                    reported.add(activation_id)
                start = activation.get("start")
                if isinstance(start, int) and start > since:
                    since = start + 1
            out.flush()
            time.sleep(POLL_INTERVAL_SECONDS)
    except KeyboardInterrupt:
        out.write("Poll terminated\n")
        return EXIT_CODE_ERR_GENERAL


COMMANDS: dict[str, Command] = {
    "list": Command("list", "list activations", "list [NAMESPACE or NAME] [flags]", _build_list, _run_list),
    "get": Command(
        "get", "get activation", "get (ACTIVATION_ID | --last) [FIELD_FILTER] [flags]", _build_get, _run_get
    ),
    "logs": Command(
        "logs", "get the logs of an activation", "logs (ACTIVATION_ID | --last) [flags]", _build_logs, _run_logs
    ),
    "result": Command(
        "result",
        "get the result of an activation",
        "result (ACTIVATION_ID | --last) [flags]",
        _build_result,
        _run_result,
    ),
    "poll": Command(
        "poll",
        "poll continuously for log messages from currently running actions",
        "poll [ NAMESPACE | ACTION_NAME ] [flags]",
        _build_poll,
        _run_poll,
    ),
}
