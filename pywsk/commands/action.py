"""`pywsk action create|update|get|list|delete|invoke` (wsk `commands/action.go`, client-go `whisk/action.go`)."""

from __future__ import annotations

import argparse
import base64
import os
import secrets
from typing import Any
from urllib.parse import quote

from pywsk.cli import Command, Context, add_param_flags, check_args, key_values
from pywsk.client import Response
from pywsk.commands.common import entity_summary, full_name, param_union
from pywsk.config import base_url
from pywsk.errors import (
    EXIT_CODE_ERR_GENERAL,
    EXIT_CODE_ERR_USAGE,
    EXIT_CODE_NOT_FOUND,
    NOT_ALLOWED,
    WskError,
)
from pywsk.names import QualifiedName, parse_name, qualify, quote_path
from pywsk.output import (
    ACTION_FIELD_FILTERS,
    action_view,
    field_value,
    kv_get,
    print_json,
)

# file extension -> kind family (wsk `getExec`)
EXTENSION_KINDS = {
    ".swift": "swift",
    ".js": "nodejs",
    ".py": "python",
    ".jar": "java",
    ".php": "php",
    ".rb": "ruby",
    ".rs": "rust",
    ".go": "go",
    ".balx": "ballerina",
}
BINARY_EXTENSIONS = (".zip", ".jar", ".balx")
WEB_EXPORT, RAW_HTTP, FINAL, WEB_SECURE = "web-export", "raw-http", "final", "require-whisk-auth"


def _usage_error(message: str, exit_code: int = EXIT_CODE_ERR_USAGE) -> WskError:
    return WskError(message, exit_code, display_usage=True)


def _no_artifact() -> WskError:
    return _usage_error("An action name and code artifact are required.")


def _go_ext(path: str) -> str:
    """Go's `filepath.Ext`: the suffix from the last dot of the last path element."""
    base = path.replace("\\", "/").rsplit("/", 1)[-1]
    dot = base.rfind(".")
    return base[dot:] if dot >= 0 else ""


def _read_artifact(path: str) -> bytes:
    if not os.path.isfile(path):
        raise _usage_error(f"File '{path}' is not a valid file or it does not exist")
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as exc:
        raise WskError(f"Unable to read the file '{path}': {exc}", EXIT_CODE_ERR_GENERAL, display_usage=True) from exc


def _exec_for(args: list[str], opts: argparse.Namespace) -> dict[str, Any]:
    """The `exec` of an action from the artifact and --kind/--docker/--native/--main (wsk `getExec`)."""
    exec_: dict[str, Any] = {}
    code: str | None = None
    binary = False
    ext = ""
    if len(args) == 2:
        artifact = args[1]
        ext = _go_ext(artifact)
        data = _read_artifact(artifact)
        if ext in BINARY_EXTENSIONS:
            code = base64.b64encode(data).decode("ascii")
            binary = True
        else:
            code = data.decode("utf-8", errors="replace")
    elif not opts.docker:
        raise _no_artifact()
    if opts.kind:
        kind = opts.kind
    elif opts.docker or opts.native:
        kind = "blackbox"
    elif ext in EXTENSION_KINDS:
        kind = f"{EXTENSION_KINDS[ext]}:default"
    elif ext == ".zip":
        raise _usage_error("creating an action from a .zip artifact requires specifying the action kind explicitly")
    else:
        raise _usage_error(f"'{ext}' is not a supported action runtime")
    exec_["kind"] = kind
    if code is not None:
        exec_["code"] = code
    if not opts.kind and (opts.docker or opts.native):
        exec_["image"] = "openwhisk/dockerskeleton" if opts.native else opts.docker
    if opts.main:
        exec_["main"] = opts.main
    elif kind == "java":
        raise _usage_error("Java actions require --main to specify the fully-qualified name of the main class")
    if binary:
        exec_["binary"] = True
    return exec_


def _pairs(data: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"key": k, "value": v} for k, v in data.items()]


def _limits(opts: argparse.Namespace) -> dict[str, int]:
    limits: dict[str, int] = {}
    if opts.timeout is not None:
        limits["timeout"] = opts.timeout
    if opts.memory is not None:
        limits["memory"] = opts.memory
    if opts.logsize is not None:
        limits["logs"] = opts.logsize
    if opts.concurrency is not None:
        limits["concurrency"] = opts.concurrency
    return limits


def _web_annotations(mode: str) -> tuple[bool, bool, bool]:
    """(web-export, raw-http, final) for a --web value."""
    lowered = mode.lower()
    if lowered in ("yes", "true"):
        return True, False, True
    if lowered in ("no", "false"):
        return False, False, False
    if lowered == "raw":
        return True, True, True
    raise _usage_error(
        f"Invalid argument '{mode}' for --web flag. Valid input consist of 'yes', 'true', 'raw', 'false', or 'no'."
    )


def _find_key(pairs: list[dict[str, Any]], key: str) -> int:
    for i, kv in enumerate(pairs):
        if isinstance(kv, dict) and str(kv.get("key", "")).lower() == key.lower():
            return i
    return -1


def _append_missing(pairs: list[dict[str, Any]], extra: list[Any]) -> list[dict[str, Any]]:
    """wsk's `AppendKeyValueArr`: add the pairs whose key is not there yet."""
    out = list(pairs)
    for kv in extra:
        if isinstance(kv, dict) and _find_key(out, str(kv.get("key", ""))) == -1:
            out.append(kv)
    return out


def _delete_key(pairs: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    for i, kv in enumerate(pairs):
        if kv.get("key") == key:
            return pairs[:i] + pairs[i + 1 :]
    return pairs


def web_secure_secret(mode: str) -> int | bool | str:
    """The `require-whisk-auth` value for `--web-secure`: `true` -> a random integer (at most 2^53 - 1, so that
    JavaScript reads it exactly, as wsk does), `false` -> False, anything else -> that string."""
    lowered = mode.lower()
    if lowered == "true":
        return secrets.randbits(53)
    if lowered == "false":
        return False
    return mode


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _web_secure_annotations(
    opts: argparse.Namespace, annots: list[dict[str, Any]] | None, existing: dict[str, Any] | None
) -> tuple[list[dict[str, Any]], bool]:
    """wsk's `augmentWebSecureArg`: (annotations, whether an existing secret is removed)."""
    disable_web = opts.web is not None and opts.web.lower() in ("false", "no")
    existing_annots = existing.get("annotations") or [] if existing is not None else []
    if existing_annots and not isinstance(existing_annots, list):
        existing_annots = []
    web_now = kv_get(annots, WEB_EXPORT) is True
    web_before = kv_get(existing_annots, WEB_EXPORT) is True
    if not (web_now or (web_before and not disable_web)):
        raise _usage_error("The --web-secure option is only valid when the --web option is enabled.")
    result = list(annots or [])
    if existing is not None:
        if annots is None:
            result = _append_missing(result, existing_annots)
        else:
            keep = (WEB_EXPORT, RAW_HTTP, FINAL, WEB_SECURE)
            carried = [kv for kv in existing_annots if isinstance(kv, dict) and kv.get("key") in keep]
            result = _append_missing(result, carried)
    secret = web_secure_secret(opts.web_secure)
    index = _find_key(result, WEB_SECURE)
    current = result[index].get("value") if index >= 0 else None
    if index >= 0 and secret is False:
        return _delete_key(result, WEB_SECURE), True
    if index >= 0 and _is_int(current) and _is_int(secret):
        return result, False  # keep the secret already generated
    if index >= 0:
        result[index] = {"key": WEB_SECURE, "value": secret}
        return result, False
    return [*result, {"key": WEB_SECURE, "value": secret}], False


def _get_action(ctx: Context, qn: QualifiedName, fetch_code: bool) -> dict[str, Any]:
    client = ctx.client()
    try:
        resp = client.entity(
            "GET",
            qn.namespace,
            f"actions/{quote_path(qn.entity_name)}",
            query=[("code", "true" if fetch_code else "false")],
        )
    except WskError as exc:
        raise exc.wrap(f"Unable to get action '{qn.entity_name}': {exc.message}", display_usage=True) from exc
    return resp.body if isinstance(resp.body, dict) else {}


# -- create / update ----------------------------------------------------------------------------------------------


def _build_insert(p: argparse.ArgumentParser, update: bool) -> None:
    p.add_argument("args", nargs="*", metavar="ACTION_NAME [ACTION]")
    p.add_argument(
        "--docker", metavar="IMAGE", help="use provided docker image (a path on DockerHub) to run the action"
    )
    p.add_argument(
        "--native",
        action="store_true",
        help="treat ACTION as native action (zip file provides a compatible executable to run)",
    )
    p.add_argument(
        "--sequence", action="store_true", help="treat ACTION as comma separated sequence of actions to invoke"
    )
    p.add_argument("--kind", metavar="KIND", help="the KIND of the action runtime (example: python:default)")
    p.add_argument(
        "--main",
        metavar="NAME",
        help="the name of the action entry point (function or fully-qualified method name when applicable)",
    )
    p.add_argument(
        "-t",
        "--timeout",
        type=int,
        metavar="LIMIT",
        help="the timeout LIMIT in milliseconds after which the action is terminated",
    )
    p.add_argument("-m", "--memory", type=int, metavar="LIMIT", help="the maximum memory LIMIT in MB for the action")
    p.add_argument("-l", "--logsize", type=int, metavar="LIMIT", help="the maximum log size LIMIT in MB for the action")
    p.add_argument(
        "-c",
        "--concurrency",
        type=int,
        metavar="LIMIT",
        help="the maximum intra-container concurrent activation LIMIT for the action",
    )
    p.add_argument(
        "--web",
        metavar="VALUE",
        help="treat ACTION as a web action, a raw HTTP web action, or as a standard action; yes | true = "
        "web action, raw = raw HTTP web action, no | false = standard action",
    )
    p.add_argument(
        "--web-secure",
        metavar="SECRET",
        help="secure the web action. where SECRET is true, false, or any string. Only valid when the ACTION is a web "
        "action",
    )
    add_param_flags(p)
    if update:
        p.add_argument(
            "--del-annotation",
            action="append",
            default=[],
            metavar="KEY",
            help="the list of annotations to be deleted from the action",
        )


def _parse_action(ctx: Context, opts: argparse.Namespace, update: bool) -> tuple[QualifiedName, dict[str, Any]]:
    """The PUT body from the command line (wsk `parseAction` + `augmentAction`)."""
    args: list[str] = opts.args
    qn = parse_name(args[0], ctx.props.namespace)
    params = key_values(ctx.params, "parameter") if ctx.params else None
    annotations = key_values(ctx.annotations, "annotation") if ctx.annotations else None
    if opts.kind and opts.docker:
        raise WskError("Cannot specify both --kind and --docker at the same time.", NOT_ALLOWED)
    body: dict[str, Any] = {}
    if opts.sequence:
        if len(args) != 2:
            raise _no_artifact()
        components = [qualify(name, ctx.props.namespace) for name in args[1].split(",")]
        body["exec"] = {"kind": "sequence", "components": components}
    elif len(args) > 1 or opts.docker or opts.native:
        body["exec"] = _exec_for(args, opts)
    elif not update:
        raise _no_artifact()

    annots = _pairs(annotations) if annotations is not None else None
    existing = None
    if update and (opts.web is not None or opts.web_secure is not None):
        try:
            existing = _get_action(ctx, qn, fetch_code=False)
        except WskError as exc:
            if exc.exit_code != EXIT_CODE_NOT_FOUND:
                raise
    if opts.web is not None:
        web_export, raw_http, final = _web_annotations(opts.web)
        result = list(annots or [])
        if annots is None and existing is not None:
            result = _append_missing(result, existing.get("annotations") or [])
        for key in (WEB_EXPORT, RAW_HTTP, FINAL):
            result = _delete_key(result, key)
        result += [
            {"key": WEB_EXPORT, "value": web_export},
            {"key": RAW_HTTP, "value": raw_http},
            {"key": FINAL, "value": final},
        ]
        if existing is not None:
            secure = [
                kv
                for kv in existing.get("annotations") or []
                if isinstance(kv, dict) and str(kv.get("key", "")).lower() == WEB_SECURE
            ]
            result = _append_missing(result, secure[:1])
        annots = result
    del_annotations = list(opts.del_annotation) if update else []
    if opts.web_secure is not None:
        annots, removed = _web_secure_annotations(opts, annots, existing)
        if removed and WEB_SECURE not in del_annotations:
            del_annotations.append(WEB_SECURE)
    if annots:
        body["annotations"] = annots
    if del_annotations:
        body["delAnnotations"] = del_annotations
    if params:
        body["parameters"] = _pairs(params)
    limits = _limits(opts)
    if limits:
        body["limits"] = limits
    return qn, body


def _run_insert(ctx: Context, opts: argparse.Namespace, update: bool) -> int:
    required = (
        "An action name is required. A code artifact is optional."
        if update
        else "An action name and code artifact are required."
    )
    check_args(opts.args, 1, 2, required)
    try:
        qn, body = _parse_action(ctx, opts, update)
    except WskError as exc:
        raise exc.wrap(f"Invalid argument(s). {exc.message}", display_usage=True) from exc
    client = ctx.client()
    try:
        client.entity(
            "PUT",
            qn.namespace,
            f"actions/{quote_path(qn.entity_name)}",
            query=[("overwrite", "true" if update else "false")],
            body=body,
        )
    except WskError as exc:
        raise exc.wrap(f"Unable to create action '{qn.entity_name}': {exc.message}", display_usage=True) from exc
    ctx.ok(f"{'updated' if update else 'created'} action {qn.entity_name}")
    return 0


# -- get ----------------------------------------------------------------------------------------------------------


def _build_get(p: argparse.ArgumentParser) -> None:
    p.add_argument("args", nargs="*", metavar="ACTION_NAME [FIELD_FILTER]")
    p.add_argument(
        "-s",
        "--summary",
        action="store_true",
        help='summarize action details; parameters with prefix "*" are bound, "**" are bound and finalized',
    )
    p.add_argument("-r", "--url", action="store_true", help="get action url")
    p.add_argument("--save", action="store_true", help="save action code to file corresponding with action name")
    p.add_argument("--save-as", metavar="FILE", help="file to save action code to")


def _print_summary(ctx: Context, action: dict[str, Any]) -> None:
    annotations = action.get("annotations")
    params = param_union(annotations, action.get("parameters"), final=kv_get(annotations, FINAL) is True)
    ctx.out.write(entity_summary("action", full_name(action), annotations, params))


def _action_url(ctx: Context, action: dict[str, Any], qn: QualifiedName) -> str:
    base = f"{base_url(ctx.props.apihost)}/api"
    version = ctx.props.apiversion or "v1"

    def esc(text: str) -> str:
        return quote(text, safe="")

    namespace = esc(str(action.get("namespace", qn.namespace)).split("/")[0])
    name = esc(str(action.get("name", qn.entity)))
    pkg = esc(qn.package)
    if kv_get(action.get("annotations"), WEB_EXPORT) is True:
        return f"{base}/{version}/web/{namespace}/{pkg or 'default'}/{name}"
    if pkg:
        return f"{base}/{version}/namespaces/{namespace}/actions/{pkg}/{name}"
    return f"{base}/{version}/namespaces/{namespace}/actions/{name}"


def _save_code(ctx: Context, action: dict[str, Any], filename: str | None) -> None:
    exec_ = action.get("exec") if isinstance(action.get("exec"), dict) else {}
    runtime = str(exec_.get("kind", "")).split(":")[0].lower()
    code = exec_.get("code")
    binary = exec_.get("binary") is True
    if runtime == "blackbox" and code is None and not binary:
        raise _usage_error("Cannot save Docker images")
    if runtime == "sequence":
        raise _usage_error("Cannot save action sequences")
    data = (code or "").encode("utf-8")
    name = str(action.get("name", "action"))
    if binary:
        data = base64.b64decode(code or "")
        ext = {"java": ".jar", "ballerina": ".balx"}.get(runtime, ".zip")
    else:
        ext = {
            "nodejs": ".js",
            "python": ".py",
            "swift": ".swift",
            "php": ".php",
            "ruby": ".rb",
            "rust": ".rs",
            "go": ".go",
        }.get(runtime, "")
    filename = filename or name + ext
    if os.path.exists(filename):
        raise _usage_error(f"The file '{filename}' already exists")
    try:
        with open(filename, "xb") as f:
            f.write(data)
    except OSError as exc:
        raise _usage_error(f"Cannot create file '{filename}': {exc}") from exc
    ctx.ok(f"saved action code to {os.path.join(os.getcwd(), filename)}")


def _run_get(ctx: Context, opts: argparse.Namespace) -> int:
    args: list[str] = opts.args
    check_args(args, 1, 2, "An action name is required.")
    field = None
    if not opts.url and not opts.summary and len(args) > 1:
        field = args[1]
        if field.lower() not in ACTION_FIELD_FILTERS:
            raise _usage_error(f"Invalid field filter '{field}'.")
    qn = parse_name(args[0], ctx.props.namespace)
    save = opts.save or opts.save_as is not None
    action = _get_action(ctx, qn, fetch_code=save)
    if opts.url:
        ctx.ok(f"got action {qn.entity}")
        ctx.out.write(_action_url(ctx, action, qn) + "\n")
    elif opts.summary:
        _print_summary(ctx, action)
    elif save:
        _save_code(ctx, action, opts.save_as)
    elif field is not None:
        ctx.ok(f"got action {qn.entity_name}, displaying field {field}")
        print_json(field_value(action_view(action), ACTION_FIELD_FILTERS, field), ctx.out, sort=False)
    else:
        ctx.ok(f"got action {qn.entity_name}")
        print_json(action_view(action), ctx.out, sort=False)
    return 0


# -- list ---------------------------------------------------------------------------------------------------------


def _build_list(p: argparse.ArgumentParser) -> None:
    p.add_argument("args", nargs="*", metavar="NAMESPACE | PACKAGE_NAME")
    p.add_argument(
        "-s",
        "--skip",
        type=int,
        default=0,
        metavar="SKIP",
        help="exclude the first SKIP number of actions from the result",
    )
    p.add_argument(
        "-l",
        "--limit",
        type=int,
        default=30,
        metavar="LIMIT",
        help="only return LIMIT number of actions from the collection",
    )
    p.add_argument(
        "-n",
        "--name-sort",
        action="store_true",
        help="sorts a list alphabetically by entity name; only applicable within the limit/skip returned entity block",
    )


def _sort_key(action: dict[str, Any]) -> tuple[int, str]:
    namespace, name = str(action.get("namespace", "")), str(action.get("name", ""))
    if "/" in namespace:
        return 1, f"{namespace}{name}".lower()
    return 0, name


def action_rows(actions: list[Any], name_sort: bool = False) -> str:
    """`actions` then one row per action: `/ns/[pkg/]name` left-aligned in 70 columns, `private|shared`, kind."""
    rows = [a for a in actions if isinstance(a, dict)]
    if name_sort:
        rows.sort(key=_sort_key)
    lines = ["actions\n"]
    for action in rows:
        kind = kv_get(action.get("annotations"), "exec")
        if not isinstance(kind, str):
            exec_ = action.get("exec")
            kind = exec_.get("kind", "") if isinstance(exec_, dict) and isinstance(exec_.get("kind"), str) else ""
        publish = "shared" if action.get("publish") is True else "private"
        full = f"/{action.get('namespace', '')}/{action.get('name', '')}"
        lines.append(f"{full:<70} {publish} {kind}\n")
    return "".join(lines)


def _run_list(ctx: Context, opts: argparse.Namespace) -> int:
    args: list[str] = opts.args
    check_args(args, 0, 1, "An optional namespace is the only valid argument.")
    namespace, package = "_", ""
    if args:
        qn = parse_name(args[0], ctx.props.namespace)
        namespace, package = qn.namespace, qn.entity_name
    route = f"actions/{quote_path(package)}/" if package else "actions"
    client = ctx.client()
    try:
        resp = client.entity("GET", namespace, route, query=[("limit", str(opts.limit)), ("skip", str(opts.skip))])
    except WskError as exc:
        shown = "default" if namespace == "_" else namespace
        raise exc.wrap(
            f"Unable to obtain the list of actions for namespace '{shown}': {exc.message}", display_usage=True
        ) from exc
    ctx.out.write(action_rows(resp.body if isinstance(resp.body, list) else [], opts.name_sort))
    return 0


# -- delete -------------------------------------------------------------------------------------------------------


def _build_delete(p: argparse.ArgumentParser) -> None:
    p.add_argument("args", nargs="*", metavar="ACTION_NAME")


def _run_delete(ctx: Context, opts: argparse.Namespace) -> int:
    check_args(opts.args, 1, 1, "An action name is required.")
    qn = parse_name(opts.args[0], ctx.props.namespace)
    client = ctx.client()
    try:
        client.entity("DELETE", qn.namespace, f"actions/{quote_path(qn.entity_name)}")
    except WskError as exc:
        raise exc.wrap(f"Unable to delete action '{qn.entity_name}': {exc.message}", display_usage=True) from exc
    ctx.ok(f"deleted action {qn.entity_name}")
    return 0


# -- invoke -------------------------------------------------------------------------------------------------------


def _build_invoke(p: argparse.ArgumentParser) -> None:
    p.add_argument("args", nargs="*", metavar="ACTION_NAME")
    add_param_flags(p, annotations=False)
    p.add_argument("-b", "--blocking", action="store_true", help="blocking invoke")
    p.add_argument(
        "-r",
        "--result",
        action="store_true",
        help="blocking invoke; show only activation result (unless there is a failure)",
    )


def _activation_id(body: Any, resp: Response | None = None) -> str:
    if isinstance(body, dict) and body.get("activationId") is not None:
        return str(body["activationId"])
    if resp is not None:
        return resp.headers.get("x-openwhisk-activation-id", "")
    return ""


def _run_invoke(ctx: Context, opts: argparse.Namespace) -> int:
    check_args(opts.args, 1, 1, "An action name is required.")
    qn = parse_name(opts.args[0], ctx.props.namespace)
    payload = key_values(ctx.params, "parameter")
    blocking = opts.blocking or opts.result
    result_only = opts.result
    header = not result_only
    client = ctx.client()
    invoked = f"invoked /{qn.namespace}/{qn.entity_name}"
    try:
        resp = client.entity(
            "POST",
            qn.namespace,
            f"actions/{quote_path(qn.entity_name)}",
            query=[("blocking", "true" if blocking else "false"), ("result", "true" if result_only else "false")],
            body=payload,
            blocking=blocking,
        )
    except WskError as exc:
        if blocking and exc.timed_out:
            ctx.err.write(f"ok: {invoked}, but the request has not yet finished, with id {_activation_id(exc.body)}\n")
            raise
        if blocking and exc.application_error:
            if header:
                ctx.err.write(f"ok: {invoked} with id {_activation_id(exc.body)}\n")
            print_json(exc.body, ctx.err)
            raise
        raise exc.wrap(f"Unable to invoke action '{qn.entity_name}': {exc.message}", display_usage=True) from exc
    if header:
        ctx.ok(f"{invoked} with id {_activation_id(resp.body, resp)}")
    if blocking:
        print_json(resp.body, ctx.out)
    return 0


COMMANDS: dict[str, Command] = {
    "create": Command(
        "create",
        "create a new action",
        "create ACTION_NAME ACTION [flags]",
        lambda p: _build_insert(p, False),
        lambda c, o: _run_insert(c, o, False),
    ),
    "update": Command(
        "update",
        "update an existing action, or create an action if it does not exist",
        "update ACTION_NAME [ACTION] [flags]",
        lambda p: _build_insert(p, True),
        lambda c, o: _run_insert(c, o, True),
    ),
    "invoke": Command("invoke", "invoke action", "invoke ACTION_NAME [flags]", _build_invoke, _run_invoke),
    "get": Command(
        "get", "get action", "get ACTION_NAME [FIELD_FILTER | --summary | --url] [flags]", _build_get, _run_get
    ),
    "delete": Command("delete", "delete action", "delete ACTION_NAME [flags]", _build_delete, _run_delete),
    "list": Command(
        "list",
        "list all actions in a namespace or actions contained in a package",
        "list [ NAMESPACE | PACKAGE_NAME ] [flags]",
        _build_list,
        _run_list,
    ),
}
