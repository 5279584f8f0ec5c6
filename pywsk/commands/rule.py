"""`pywsk rule create|update|get|list|delete|enable|disable|status` (wsk `commands/rule.go`, client-go `whisk/rule.go`).

A rule is PUT as `{"name", "status": "", "trigger": "/ns/trigger", "action": "/ns/[pkg/]action"}` with the trigger and
action names fully qualified; enable and disable POST `{"status": "active" | "inactive"}`.
"""

from __future__ import annotations

import argparse
from typing import Any

from pywsk.cli import Command, Context, check_args
from pywsk.commands.common import add_list_flags, full_name, get_entity, list_entities, publish_state
from pywsk.errors import EXIT_CODE_ERR_GENERAL, WskError
from pywsk.names import QualifiedName, parse_name, qualify, quote_path
from pywsk.output import RULE_FIELD_FILTERS, field_value, print_json, rule_view


def _route(qn: QualifiedName) -> str:
    return f"rules/{quote_path(qn.entity_name)}"


def _set_state(ctx: Context, qn: QualifiedName, state: str) -> None:
    ctx.client().entity("POST", qn.namespace, _route(qn), body={"status": state})


# -- create / update ----------------------------------------------------------------------------------------------


def _build_insert(p: argparse.ArgumentParser) -> None:
    p.add_argument("args", nargs="*", metavar="RULE_NAME TRIGGER_NAME ACTION_NAME")


def _run_insert(ctx: Context, opts: argparse.Namespace, update: bool) -> int:
    check_args(opts.args, 3, 3, "A rule, trigger and action name are required.")
    qn = parse_name(opts.args[0], ctx.props.namespace)
    body = {
        "name": qn.entity_name,
        "status": "",
        "trigger": qualify(opts.args[1], ctx.props.namespace),
        "action": qualify(opts.args[2], ctx.props.namespace),
    }
    try:
        ctx.client().entity(
            "PUT", qn.namespace, _route(qn), query=[("overwrite", "true" if update else "false")], body=body
        )
    except WskError as exc:
        verb = "update" if update else "create"
        raise exc.wrap(f"Unable to {verb} rule '{qn.entity_name}': {exc.message}") from exc
    ctx.ok(f"{'updated' if update else 'created'} rule {qn.entity_name}")
    return 0


# -- enable / disable / status ------------------------------------------------------------------------------------


def _build_name(p: argparse.ArgumentParser) -> None:
    p.add_argument("args", nargs="*", metavar="RULE_NAME")


def _run_state(ctx: Context, opts: argparse.Namespace, enable: bool) -> int:
    check_args(opts.args, 1, 1, "A rule name is required.")
    qn = parse_name(opts.args[0], ctx.props.namespace)
    verb = "enable" if enable else "disable"
    try:
        _set_state(ctx, qn, "active" if enable else "inactive")
    except WskError as exc:
        raise exc.wrap(f"Unable to {verb} rule '{qn.entity_name}': {exc.message}") from exc
    ctx.ok(f"{verb}d rule {qn.entity_name}")
    return 0


def _run_status(ctx: Context, opts: argparse.Namespace) -> int:
    check_args(opts.args, 1, 1, "A rule name is required.")
    qn = parse_name(opts.args[0], ctx.props.namespace)
    try:
        resp = ctx.client().entity("GET", qn.namespace, _route(qn))
    except WskError as exc:
        raise exc.wrap(f"Unable to get status of rule '{qn.entity_name}': {exc.message}", display_usage=True) from exc
    rule = resp.body if isinstance(resp.body, dict) else {}
    ctx.ok(f"rule {qn.entity_name} is {rule.get('status', '')}")
    return 0


# -- get / list / delete ------------------------------------------------------------------------------------------


def _build_get(p: argparse.ArgumentParser) -> None:
    p.add_argument("args", nargs="*", metavar="RULE_NAME [FIELD_FILTER]")
    p.add_argument("-s", "--summary", action="store_true", help="summarize rule details")


def _run_get(ctx: Context, opts: argparse.Namespace) -> int:
    args: list[str] = opts.args
    check_args(args, 1, 2, "A rule name is required.")
    field = args[1] if len(args) > 1 else None
    if field is not None and field.lower() not in RULE_FIELD_FILTERS:
        raise WskError(f"Invalid field filter '{field}'.", EXIT_CODE_ERR_GENERAL)
    qn = parse_name(args[0], ctx.props.namespace)
    try:
        rule: dict[str, Any] = get_entity(ctx, qn, "rules", "rule")
    except WskError as exc:
        exc.display_usage = True
        raise
    if opts.summary:
        ctx.out.write(f"rule {full_name(rule)}\n   (status: {rule.get('status', '')})\n")
    elif field is not None:
        ctx.ok(f"got rule {qn.entity_name}, displaying field {field}")
        print_json(field_value(rule_view(rule), RULE_FIELD_FILTERS, field), ctx.out, sort=False)
    else:
        ctx.ok(f"got rule {qn.entity_name}")
        print_json(rule_view(rule), ctx.out, sort=False)
    return 0


def _build_list(p: argparse.ArgumentParser) -> None:
    add_list_flags(p, "rules")


def _run_list(ctx: Context, opts: argparse.Namespace) -> int:
    rows = list_entities(ctx, opts, "rules")
    lines = ["rules\n"]
    for row in rows:
        full = f"/{row.get('namespace', '')}/{row.get('name', '')}"
        lines.append(f"{full:<70} {publish_state(row):<20} {row.get('status', '')}\n")
    ctx.out.write("".join(lines))
    return 0


def _build_delete(p: argparse.ArgumentParser) -> None:
    p.add_argument("args", nargs="*", metavar="RULE_NAME")
    p.add_argument("--disable", action="store_true", help="automatically disable rule before deleting it")


def _run_delete(ctx: Context, opts: argparse.Namespace) -> int:
    check_args(opts.args, 1, 1, "A rule name is required.")
    qn = parse_name(opts.args[0], ctx.props.namespace)
    if opts.disable:
        try:
            _set_state(ctx, qn, "inactive")
        except WskError as exc:
            raise exc.wrap(f"Unable to disable rule '{qn.entity_name}': {exc.message}") from exc
    try:
        ctx.client().entity("DELETE", qn.namespace, _route(qn))
    except WskError as exc:
        raise exc.wrap(f"Unable to delete rule '{qn.entity_name}': {exc.message}") from exc
    ctx.ok(f"deleted rule {qn.entity_name}")
    return 0


COMMANDS: dict[str, Command] = {
    "create": Command(
        "create",
        "create new rule",
        "create RULE_NAME TRIGGER_NAME ACTION_NAME [flags]",
        _build_insert,
        lambda c, o: _run_insert(c, o, False),
    ),
    "enable": Command(
        "enable", "enable rule", "enable RULE_NAME [flags]", _build_name, lambda c, o: _run_state(c, o, True)
    ),
    "disable": Command(
        "disable", "disable rule", "disable RULE_NAME [flags]", _build_name, lambda c, o: _run_state(c, o, False)
    ),
    "status": Command("status", "get rule status", "status RULE_NAME [flags]", _build_name, _run_status),
    "update": Command(
        "update",
        "update an existing rule, or create a rule if it does not exist",
        "update RULE_NAME TRIGGER_NAME ACTION_NAME [flags]",
        _build_insert,
        lambda c, o: _run_insert(c, o, True),
    ),
    "get": Command("get", "get rule", "get RULE_NAME [FIELD_FILTER | --summary] [flags]", _build_get, _run_get),
    "delete": Command("delete", "delete rule", "delete RULE_NAME [flags]", _build_delete, _run_delete),
    "list": Command("list", "list all rules", "list [NAMESPACE] [flags]", _build_list, _run_list),
}
