"""`pywsk package create|update|get|list|delete|bind` (wsk `commands/package.go`, client-go `whisk/package.go`)."""

from __future__ import annotations

import argparse
from typing import Any

from pywsk.cli import Command, Context, add_param_flags, check_args
from pywsk.commands.common import (
    add_list_flags,
    entity_summary,
    full_name,
    get_entity,
    key_value_pairs,
    list_entities,
    list_table,
    param_union,
    parse_shared,
    publish_state,
)
from pywsk.errors import EXIT_CODE_ERR_GENERAL, WskError
from pywsk.names import QualifiedName, parse_name, quote_path
from pywsk.output import PACKAGE_FIELD_FILTERS, field_value, kv_get, package_view, print_json


def _put(ctx: Context, qn: QualifiedName, body: dict[str, Any], overwrite: bool) -> None:
    ctx.client().entity(
        "PUT",
        qn.namespace,
        f"packages/{quote_path(qn.entity_name)}",
        query=[("overwrite", "true" if overwrite else "false")],
        body=body,
    )


# -- create / update ----------------------------------------------------------------------------------------------


def _build_insert(p: argparse.ArgumentParser) -> None:
    p.add_argument("args", nargs="*", metavar="PACKAGE_NAME")
    add_param_flags(p)
    p.add_argument("--shared", metavar="SCOPE", help="package visibility SCOPE; yes = shared, no = private")


def _run_insert(ctx: Context, opts: argparse.Namespace, update: bool) -> int:
    check_args(opts.args, 1, 1, "A package name is required.")
    qn = parse_name(opts.args[0], ctx.props.namespace)
    shared = parse_shared(opts.shared)
    body: dict[str, Any] = {}
    if shared is not None:
        body["publish"] = shared
    annotations = key_value_pairs(ctx.annotations, "annotation")
    if annotations:
        body["annotations"] = annotations
    parameters = key_value_pairs(ctx.params, "parameter")
    if parameters:
        body["parameters"] = parameters
    try:
        _put(ctx, qn, body, update)
    except WskError as exc:
        prefix = "Package update failed" if update else f"Unable to create package '{qn.entity_name}'"
        raise exc.wrap(f"{prefix}: {exc.message}") from exc
    ctx.ok(f"{'updated' if update else 'created'} package {qn.entity_name}")
    return 0


# -- bind ---------------------------------------------------------------------------------------------------------


def _build_bind(p: argparse.ArgumentParser) -> None:
    p.add_argument("args", nargs="*", metavar="PACKAGE_NAME BOUND_PACKAGE_NAME")
    add_param_flags(p)


def _run_bind(ctx: Context, opts: argparse.Namespace) -> int:
    check_args(opts.args, 2, 2, "A package name and binding name are required.")
    package = parse_name(opts.args[0], ctx.props.namespace)
    binding = parse_name(opts.args[1], ctx.props.namespace)
    body: dict[str, Any] = {}
    annotations = key_value_pairs(ctx.annotations, "annotation")
    if annotations:
        body["annotations"] = annotations
    parameters = key_value_pairs(ctx.params, "parameter")
    if parameters:
        body["parameters"] = parameters
    body["binding"] = {"namespace": package.namespace, "name": package.entity_name}
    try:
        _put(ctx, binding, body, False)
    except WskError as exc:
        raise exc.wrap(f"Binding creation failed: {exc.message}") from exc
    ctx.ok(f"created binding {opts.args[1]}")
    return 0


# -- get ----------------------------------------------------------------------------------------------------------


def _build_get(p: argparse.ArgumentParser) -> None:
    p.add_argument("args", nargs="*", metavar="PACKAGE_NAME [FIELD_FILTER]")
    p.add_argument(
        "-s", "--summary", action="store_true", help='summarize package details; parameters with prefix "*" are bound'
    )


def package_summary(package: dict[str, Any]) -> str:
    """wsk's package summary: the package, then each action and feed it holds."""
    name = full_name(package)
    text = entity_summary(
        "package", name, package.get("annotations"), param_union(package.get("annotations"), package.get("parameters"))
    )
    for kind, key in ((" action", "actions"), ("   feed", "feeds")):
        for item in package.get(key) or []:
            if not isinstance(item, dict):
                continue
            annotations = item.get("annotations")
            described = kv_get(annotations, "parameters")
            params = (
                [str(p["name"]) for p in described if isinstance(p, dict) and isinstance(p.get("name"), str)]
                if isinstance(described, list)
                else []
            )
            text += entity_summary(kind, f"{name}/{item.get('name', '')}", annotations, params)
    return text


def _run_get(ctx: Context, opts: argparse.Namespace) -> int:
    args: list[str] = opts.args
    check_args(args, 1, 2, "A package name is required.")
    field = args[1] if len(args) > 1 else None
    if field is not None and field.lower() not in PACKAGE_FIELD_FILTERS:
        raise WskError(f"Invalid field filter '{field}'.", EXIT_CODE_ERR_GENERAL)
    qn = parse_name(args[0], ctx.props.namespace)
    package = get_entity(ctx, qn, "packages", "package")
    if opts.summary:
        ctx.out.write(package_summary(package))
    elif field is not None:
        ctx.ok(f"got package {qn.entity_name}, displaying field {field}")
        print_json(field_value(package_view(package), PACKAGE_FIELD_FILTERS, field), ctx.out, sort=False)
    else:
        ctx.ok(f"got package {qn.entity_name}")
        print_json(package_view(package), ctx.out, sort=False)
    return 0


# -- list / delete ------------------------------------------------------------------------------------------------


def _build_list(p: argparse.ArgumentParser) -> None:
    add_list_flags(p, "packages")


def _run_list(ctx: Context, opts: argparse.Namespace) -> int:
    rows = list_entities(ctx, opts, "packages")
    ctx.out.write(list_table("packages", rows, publish_state))
    return 0


def _build_delete(p: argparse.ArgumentParser) -> None:
    p.add_argument("args", nargs="*", metavar="PACKAGE_NAME")


def _run_delete(ctx: Context, opts: argparse.Namespace) -> int:
    check_args(opts.args, 1, 1, "A package name is required.")
    qn = parse_name(opts.args[0], ctx.props.namespace)
    try:
        ctx.client().entity("DELETE", qn.namespace, f"packages/{quote_path(qn.entity_name)}")
    except WskError as exc:
        raise exc.wrap(f"Unable to delete package '{qn.entity_name}': {exc.message}") from exc
    ctx.ok(f"deleted package {qn.entity_name}")
    return 0


COMMANDS: dict[str, Command] = {
    "bind": Command(
        "bind", "bind parameters to a package", "bind PACKAGE_NAME BOUND_PACKAGE_NAME [flags]", _build_bind, _run_bind
    ),
    "create": Command(
        "create",
        "create a new package",
        "create PACKAGE_NAME [flags]",
        _build_insert,
        lambda c, o: _run_insert(c, o, False),
    ),
    "update": Command(
        "update",
        "update an existing package, or create a package if it does not exist",
        "update PACKAGE_NAME [flags]",
        _build_insert,
        lambda c, o: _run_insert(c, o, True),
    ),
    "get": Command("get", "get package", "get PACKAGE_NAME [FIELD_FILTER | --summary] [flags]", _build_get, _run_get),
    "delete": Command("delete", "delete package", "delete PACKAGE_NAME [flags]", _build_delete, _run_delete),
    "list": Command("list", "list all packages", "list [NAMESPACE] [flags]", _build_list, _run_list),
}
