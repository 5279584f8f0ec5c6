"""`pywsk trigger create|update|get|list|delete|fire` (wsk `commands/trigger.go`, client-go `whisk/trigger.go`).

A trigger created with `--feed ACTION` carries the annotation `feed: /ns/[pkg/]action`; the feed action is invoked
(blocking) with the `-p` parameters plus `lifecycleEvent`, `triggerName` (`/NAMESPACE/TRIGGER`) and `authKey` on
create (`CREATE`, and the trigger is deleted again if that fails), update (`UPDATE`), get (`READ`) and delete
(`DELETE`), as wsk does.
"""

from __future__ import annotations

import argparse
from typing import Any

from pywsk.cli import Command, Context, add_param_flags, check_args, key_values
from pywsk.commands.common import (
    add_list_flags,
    entity_summary,
    full_name,
    get_entity,
    invoke_blocking,
    list_entities,
    list_table,
    pairs,
    param_union,
    print_failed_blocking,
    print_invocation,
)
from pywsk.errors import EXIT_CODE_ERR_GENERAL, EXIT_CODE_NOT_FOUND, WskError
from pywsk.names import QualifiedName, parse_name, quote_path
from pywsk.output import TRIGGER_FIELD_FILTERS, field_value, kv_get, print_json, trigger_view

FEED_ANNOTATION = "feed"
FEED_CREATE, FEED_READ, FEED_UPDATE, FEED_DELETE = "CREATE", "READ", "UPDATE", "DELETE"


def _route(qn: QualifiedName) -> str:
    return f"triggers/{quote_path(qn.entity_name)}"


def _feed_payload(ctx: Context, qn: QualifiedName, lifecycle: str) -> dict[str, Any]:
    """The -p parameters plus what every feed action receives (wsk's `feedParameters`)."""
    payload = key_values(ctx.params, "parameter")
    payload["lifecycleEvent"] = lifecycle
    payload["triggerName"] = f"/{qn.namespace}/{qn.entity_name}"
    payload["authKey"] = ctx.props.auth
    return payload


def _feed_of(trigger: dict[str, Any]) -> str:
    feed = kv_get(trigger.get("annotations"), FEED_ANNOTATION)
    return feed if isinstance(feed, str) else ""


def _configure_feed(ctx: Context, qn: QualifiedName, feed: str, lifecycle: str) -> None:
    """wsk's `configureFeed`: invoke the feed, print its activation, raise `Unable to configure feed ...`."""
    feed_qn = parse_name(feed, ctx.props.namespace)
    try:
        resp = invoke_blocking(ctx, feed_qn, _feed_payload(ctx, qn, lifecycle))
    except WskError as exc:
        print_failed_blocking(ctx, feed_qn, exc, header=False)
        raise exc.wrap(f"Unable to configure feed '{feed}': {exc.message}", display_usage=True) from exc
    print_json(resp.body, ctx.out)


# -- create / update ----------------------------------------------------------------------------------------------


def _build_create(p: argparse.ArgumentParser) -> None:
    p.add_argument("args", nargs="*", metavar="TRIGGER_NAME")
    add_param_flags(p)
    p.add_argument("-f", "--feed", metavar="ACTION_NAME", help="trigger feed ACTION_NAME")


def _build_update(p: argparse.ArgumentParser) -> None:
    p.add_argument("args", nargs="*", metavar="TRIGGER_NAME")
    add_param_flags(p)


def _create(ctx: Context, qn: QualifiedName, feed: str | None) -> int:
    annotations = key_values(ctx.annotations, "annotation")
    feed_qn = parse_name(feed, ctx.props.namespace) if feed else None
    if feed_qn is not None:
        annotations[FEED_ANNOTATION] = feed_qn.full
    body: dict[str, Any] = {"name": qn.entity_name}
    if annotations:
        body["annotations"] = pairs(annotations)
    if feed_qn is None:
        parameters = key_values(ctx.params, "parameter")
        if parameters:
            body["parameters"] = pairs(parameters)
    try:
        ctx.client().entity("PUT", qn.namespace, _route(qn), query=[("overwrite", "false")], body=body)
    except WskError as exc:
        raise exc.wrap(f"Unable to create trigger '{qn.entity_name}': {exc.message}") from exc
    if feed_qn is not None:
        try:
            resp = invoke_blocking(ctx, feed_qn, _feed_payload(ctx, qn, FEED_CREATE))
        except WskError as exc:
            print_failed_blocking(ctx, feed_qn, exc, header=False)
            error = exc.wrap(
                f"Unable to create trigger '{qn.entity_name}': Unable to configure feed '{feed_qn.full}': {exc.message}"
            )
            try:
                _delete(ctx, qn)
            except WskError:
                pass  # wsk ignores a failure to remove the half-created trigger
            raise error from exc
        print_invocation(ctx, feed_qn, resp.body)
    ctx.ok(f"created trigger {qn.entity_name}")
    return 0


def _run_create(ctx: Context, opts: argparse.Namespace) -> int:
    check_args(opts.args, 1, 1, "A trigger name is required.")
    return _create(ctx, parse_name(opts.args[0], ctx.props.namespace), opts.feed)


def _run_update(ctx: Context, opts: argparse.Namespace) -> int:
    check_args(opts.args, 1, 1, "A trigger name is required.")
    qn = parse_name(opts.args[0], ctx.props.namespace)
    parameters = key_values(ctx.params, "parameter")
    annotations = key_values(ctx.annotations, "annotation")
    try:
        existing = get_entity(ctx, qn, "triggers", "trigger")
    except WskError as exc:
        if exc.exit_code == EXIT_CODE_NOT_FOUND:
            return _create(ctx, qn, None)
        raise
    feed = _feed_of(existing)
    if feed:
        try:
            _configure_feed(ctx, qn, feed, FEED_UPDATE)
        except WskError as exc:
            raise exc.wrap(f"Unable to create trigger '{qn.entity_name}': {exc.message}") from exc
    else:
        body: dict[str, Any] = {"name": qn.entity_name}
        if annotations:
            body["annotations"] = pairs(annotations)
        if parameters:
            body["parameters"] = pairs(parameters)
        try:
            ctx.client().entity("PUT", qn.namespace, _route(qn), query=[("overwrite", "true")], body=body)
        except WskError as exc:
            raise exc.wrap(f"Unable to update trigger '{qn.entity_name}': {exc.message}") from exc
    ctx.ok(f"updated trigger {qn.entity_name}")
    return 0


# -- get / list ---------------------------------------------------------------------------------------------------


def _build_get(p: argparse.ArgumentParser) -> None:
    p.add_argument("args", nargs="*", metavar="TRIGGER_NAME [FIELD_FILTER]")
    p.add_argument(
        "-s", "--summary", action="store_true", help='summarize trigger details; parameters with prefix "*" are bound'
    )


def _run_get(ctx: Context, opts: argparse.Namespace) -> int:
    args: list[str] = opts.args
    check_args(args, 1, 2, "A trigger name is required.")
    field = args[1] if len(args) > 1 else None
    if field is not None and field.lower() not in TRIGGER_FIELD_FILTERS:
        raise WskError(f"Invalid field filter '{field}'.", EXIT_CODE_ERR_GENERAL)
    qn = parse_name(args[0], ctx.props.namespace)
    trigger = get_entity(ctx, qn, "triggers", "trigger")
    feed = _feed_of(trigger)
    if feed:
        # wsk shows a feed trigger by asking its feed (READ); a failing feed is not an error of `get`
        try:
            _configure_feed(ctx, qn, feed, FEED_READ)
        except WskError:
            pass
    elif opts.summary:
        annotations = trigger.get("annotations")
        params = param_union(annotations, trigger.get("parameters"))
        ctx.out.write(entity_summary("trigger", full_name(trigger), annotations, params))
    elif field is not None:
        ctx.ok(f"got trigger {qn.entity_name}, displaying field {field}")
        print_json(field_value(trigger_view(trigger), TRIGGER_FIELD_FILTERS, field), ctx.out, sort=False)
    else:
        ctx.ok(f"got trigger {qn.entity_name}")
        print_json(trigger_view(trigger), ctx.out, sort=False)
    return 0


def _build_list(p: argparse.ArgumentParser) -> None:
    add_list_flags(p, "triggers")


def _run_list(ctx: Context, opts: argparse.Namespace) -> int:
    rows = list_entities(ctx, opts, "triggers")
    ctx.out.write(list_table("triggers", rows, lambda _: "private"))
    return 0


# -- delete / fire ------------------------------------------------------------------------------------------------


def _build_delete(p: argparse.ArgumentParser) -> None:
    p.add_argument("args", nargs="*", metavar="TRIGGER_NAME")


def _delete(ctx: Context, qn: QualifiedName) -> None:
    trigger = get_entity(ctx, qn, "triggers", "trigger")
    feed = _feed_of(trigger)
    if feed:
        try:
            _configure_feed(ctx, qn, feed, FEED_DELETE)
        except WskError:
            pass  # as wsk: the trigger is deleted even when its feed cannot be told
    try:
        ctx.client().entity("DELETE", qn.namespace, _route(qn))
    except WskError as exc:
        raise exc.wrap(f"Unable to delete trigger '{qn.entity_name}': {exc.message}") from exc
    ctx.ok(f"deleted trigger {qn.entity_name}")


def _run_delete(ctx: Context, opts: argparse.Namespace) -> int:
    check_args(opts.args, 1, 1, "A trigger name is required.")
    _delete(ctx, parse_name(opts.args[0], ctx.props.namespace))
    return 0


def _build_fire(p: argparse.ArgumentParser) -> None:
    p.add_argument("args", nargs="*", metavar="TRIGGER_NAME")
    add_param_flags(p, annotations=False)


def _run_fire(ctx: Context, opts: argparse.Namespace) -> int:
    check_args(opts.args, 1, 1, "A trigger name is required.")
    qn = parse_name(opts.args[0], ctx.props.namespace)
    payload = key_values(ctx.params, "parameter")
    try:
        resp = ctx.client().entity("POST", qn.namespace, _route(qn), body=payload)
    except WskError as exc:
        raise exc.wrap(f"Unable to fire trigger '{qn.entity_name}': {exc.message}") from exc
    if resp.status == 204:
        ctx.out.write(
            f"trigger /{qn.namespace}/{qn.entity_name} did not fire as it is not associated with an active rule\n"
        )
        return 0
    activation_id = ""
    if isinstance(resp.body, dict) and resp.body.get("activationId") is not None:
        activation_id = str(resp.body["activationId"])
    ctx.ok(f"triggered /{qn.namespace}/{qn.entity_name} with id {activation_id}")
    return 0


COMMANDS: dict[str, Command] = {
    "fire": Command("fire", "fire trigger event", "fire TRIGGER_NAME [flags]", _build_fire, _run_fire),
    "create": Command("create", "create new trigger", "create TRIGGER_NAME [flags]", _build_create, _run_create),
    "update": Command(
        "update",
        "update an existing trigger, or create a trigger if it does not exist",
        "update TRIGGER_NAME [flags]",
        _build_update,
        _run_update,
    ),
    "get": Command("get", "get trigger", "get TRIGGER_NAME [FIELD_FILTER | --summary] [flags]", _build_get, _run_get),
    "delete": Command("delete", "delete trigger", "delete TRIGGER_NAME [flags]", _build_delete, _run_delete),
    "list": Command("list", "list all triggers", "list [NAMESPACE] [flags]", _build_list, _run_list),
}
