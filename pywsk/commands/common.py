"""Helpers shared by the entity commands: key/value lists, list tables, summaries, `--shared`, feed invocation."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from pywsk.cli import Context, ParamArg, check_args, key_values
from pywsk.client import Response
from pywsk.errors import EXIT_CODE_ERR_GENERAL, WskError
from pywsk.names import QualifiedName, parse_name, quote_path
from pywsk.output import kv_get, print_json

EMPTY_PARAMS = "none defined"


def pairs(data: dict[str, Any]) -> list[dict[str, Any]]:
    """`{"k": v}` as OpenWhisk's `[{"key": "k", "value": v}]`."""
    return [{"key": k, "value": v} for k, v in data.items()]


def key_value_pairs(items: list[ParamArg], what: str) -> list[dict[str, Any]] | None:
    """-p/-P (or -a/-A) arguments as a key/value list, or None when none were given."""
    return pairs(key_values(items, what)) if items else None


def parse_shared(value: str | None) -> bool | None:
    """wsk's `parseShared`: `--shared yes|no` (any case); absent means "leave as is"."""
    if value is None or value == "":
        return None
    lowered = value.lower()
    if lowered == "yes":
        return True
    if lowered == "no":
        return False
    raise WskError(f"Cannot use value '{value}' for shared.", EXIT_CODE_ERR_GENERAL, display_usage=True)


def entity_name_error(name: str) -> WskError:
    return WskError(
        f"An entity name, '{name}', was provided instead of a namespace. Valid namespaces are of the following "
        "format: /NAMESPACE.",
        EXIT_CODE_ERR_GENERAL,
        display_usage=True,
    )


def add_list_flags(p: argparse.ArgumentParser, noun: str) -> None:
    p.add_argument("args", nargs="*", metavar="NAMESPACE")
    p.add_argument(
        "-s",
        "--skip",
        type=int,
        default=0,
        metavar="SKIP",
        help=f"exclude the first SKIP number of {noun} from the result",
    )
    p.add_argument(
        "-l",
        "--limit",
        type=int,
        default=30,
        metavar="LIMIT",
        help=f"only return LIMIT number of {noun} from the collection",
    )
    p.add_argument(
        "-n",
        "--name-sort",
        action="store_true",
        help="sorts a list alphabetically by entity name; only applicable within the limit/skip returned entity block",
    )


def list_entities(ctx: Context, opts: argparse.Namespace, collection: str) -> list[dict[str, Any]]:
    """`GET namespaces/{ns}/{collection}?limit&skip` for `{group} list [NAMESPACE]`, with wsk's messages."""
    check_args(opts.args, 0, 1, "An optional namespace is the only valid argument.")
    namespace = "_"
    if opts.args:
        qn = parse_name(opts.args[0], ctx.props.namespace)
        if qn.entity_name:
            raise entity_name_error(qn.entity_name)
        namespace = qn.namespace
    try:
        resp = ctx.client().entity(
            "GET", namespace, collection, query=[("limit", str(opts.limit)), ("skip", str(opts.skip))]
        )
    except WskError as exc:
        shown = "default" if namespace == "_" else namespace
        raise exc.wrap(f"Unable to obtain the list of {collection} for namespace '{shown}': {exc.message}") from exc
    rows = [row for row in resp.body if isinstance(row, dict)] if isinstance(resp.body, list) else []
    if opts.name_sort:
        rows.sort(key=lambda row: f"{row.get('namespace', '')}{row.get('name', '')}".lower())
    return rows


def list_table(header: str, rows: list[dict[str, Any]], suffix: Callable[[dict[str, Any]], str]) -> str:
    """wsk's `printList`: a bold header, then `/ns/name` left-aligned in 70 columns and a suffix per row."""
    lines = [f"{header}\n"]
    for row in rows:
        full = f"/{row.get('namespace', '')}/{row.get('name', '')}"
        lines.append(f"{full:<70} {suffix(row)}\n")
    return "".join(lines)


def publish_state(row: dict[str, Any]) -> str:
    return "shared" if row.get("publish") is True else "private"


def get_entity(ctx: Context, qn: QualifiedName, collection: str, noun: str) -> dict[str, Any]:
    """`GET namespaces/{ns}/{collection}/{name}`; errors read `Unable to get {noun} 'NAME': ...`."""
    try:
        resp = ctx.client().entity("GET", qn.namespace, f"{collection}/{quote_path(qn.entity_name)}")
    except WskError as exc:
        raise exc.wrap(f"Unable to get {noun} '{qn.entity_name}': {exc.message}") from exc
    return resp.body if isinstance(resp.body, dict) else {}


# -- summaries (wsk `printSummary`) -------------------------------------------------------------------------------


def param_union(annotations: Any, parameters: Any, final: bool = False) -> list[str]:
    """Bound parameters (tagged `*`, or `**` when final) plus the ones the `parameters` annotation describes."""
    tag = "**" if final else "*"
    bound = sorted(str(kv.get("key")) for kv in parameters or [] if isinstance(kv, dict))
    described = kv_get(annotations, "parameters")
    annotated = (
        sorted(str(item["name"]) for item in described if isinstance(item, dict) and isinstance(item.get("name"), str))
        if isinstance(described, list)
        else []
    )
    union: list[str] = []
    for name in bound + annotated:
        if name not in union:
            union.append(name)
    union.sort()
    return [f"{tag}{name}" if name in bound else name for name in union]


def _param_description(params: str) -> str:
    preamble = "Returns a result based on parameter"
    params = params.replace("*", "")
    parts = params.split(",")
    if len(parts) > 1:
        last = parts[-1]
        return f"{preamble}s {params.replace(f',{last}', f' and{last}', 1)}"
    return f"{preamble} {params}"


def entity_summary(kind: str, full_name: str, annotations: Any, params: list[str]) -> str:
    """wsk's `printEntitySummary`: `KIND /ns/name: description` then `   (parameters: ...)`."""
    description = kv_get(annotations, "description")
    description = description if isinstance(description, str) else ""
    shown = ", ".join(params) or EMPTY_PARAMS
    if description:
        head = f"{kind} {full_name}: {description}\n"
    elif shown != EMPTY_PARAMS:
        head = f"{kind} {full_name}: {_param_description(shown)}\n"
    else:
        head = f"{kind} {full_name}\n"
    return f"{head}   (parameters: {shown})\n"


def full_name(entity: dict[str, Any]) -> str:
    namespace, name = str(entity.get("namespace", "")), str(entity.get("name", ""))
    if namespace and name:
        return f"/{namespace}/{name}"
    return f"/{namespace}" if namespace else ""


# -- invoking an action (feeds) -----------------------------------------------------------------------------------


def invoke_blocking(ctx: Context, qn: QualifiedName, payload: dict[str, Any]) -> Response:
    """A blocking invoke of `qn` (not result-only), as wsk's `invokeAction(name, params, true, false)`."""
    return ctx.client().entity(
        "POST",
        qn.namespace,
        f"actions/{quote_path(qn.entity_name)}",
        query=[("blocking", "true"), ("result", "false")],
        body=payload,
        blocking=True,
    )


def activation_id_of(body: Any) -> str:
    if isinstance(body, dict) and body.get("activationId") is not None:
        return str(body["activationId"])
    return ""


def print_invocation(ctx: Context, qn: QualifiedName, body: Any) -> None:
    """wsk's `printInvocationMsg(name, blocking=true, header=true, ...)` on stdout."""
    ctx.ok(f"invoked /{qn.namespace}/{qn.entity_name} with id {activation_id_of(body)}")
    print_json(body, ctx.out)


def print_failed_blocking(ctx: Context, qn: QualifiedName, error: WskError, header: bool) -> None:
    """wsk's `printFailedBlockingInvocationResponse`: what a failed blocking invoke still shows, on stderr."""
    if error.timed_out:
        ctx.err.write(
            f"ok: invoked /{qn.namespace}/{qn.entity_name}, but the request has not yet finished, "
            f"with id {activation_id_of(error.body)}\n"
        )
    elif error.application_error:
        if header:
            ctx.err.write(f"ok: invoked /{qn.namespace}/{qn.entity_name} with id {activation_id_of(error.body)}\n")
        print_json(error.body, ctx.err)
