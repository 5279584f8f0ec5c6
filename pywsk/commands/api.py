"""`pywsk api create|get|list|delete` (wsk `commands/api.go`, client-go `whisk/api.go`).

The routes are managed by the platform's API management web actions, called with the caller's key:
`POST|GET|DELETE {apihost}/api/v1/web/whisk.system/apimgmt/{createApi|getApi|deleteApi}.http`. Every call carries the
query options `accesstoken` (`APIGW_ACCESS_TOKEN` from the properties file, else `DUMMY TOKEN`) and `spaceguid` (the
uuid part of the API key); create POSTs `{"apidoc": {...}}` and adds `responsetype`; get/list/delete filter with
`basepath`, `relpath` and `operation` (list without arguments sends `limit` and `skip`). Query keys are sorted, as
Go's `url.Values.Encode` sorts them.
"""

from __future__ import annotations

import argparse
import re
from typing import Any

from pywsk.cli import PROG, Command, Context, check_args
from pywsk.config import read_props
from pywsk.errors import EXIT_CODE_ERR_GENERAL, WskError
from pywsk.names import QualifiedName, parse_name, quote_path
from pywsk.output import kv_get, print_json

API_VERBS = ("GET", "PUT", "POST", "DELETE", "PATCH", "HEAD", "OPTIONS")
APIMGMT = "web/whisk.system/apimgmt"
DEFAULT_ACCESS_TOKEN = "DUMMY TOKEN"
WEB_SECURE = "require-whisk-auth"
_PATH_SEGMENT_PARAM = re.compile(r"^/\{([^/]+)\}/$")


def _error(message: str, *, usage: bool = False) -> WskError:
    return WskError(message, EXIT_CODE_ERR_GENERAL, display_usage=usage)


def _check_path(path: str) -> None:
    if not path.startswith("/"):
        raise _error(f"'{path}' must begin with '/'.", usage=True)


def _check_verb(verb: str) -> str:
    if verb.upper() not in API_VERBS:
        raise _error(f"'{verb}' is not a valid API verb.  Valid values are: [{' '.join(API_VERBS)}]", usage=True)
    return verb.upper()


def path_parameters(path: str) -> list[str]:
    """Names of the `{param}` segments of a path, once each, in order."""
    names: list[str] = []
    for segment in path.split("/"):
        match = _PATH_SEGMENT_PARAM.match(f"/{segment}/")
        if match and match.group(1) not in names:
            names.append(match.group(1))
    return names


def _user_options(ctx: Context) -> list[tuple[str, str]]:
    """wsk's `getAccessToken` and `getUserContextId`."""
    if not ctx.props.auth:
        raise _error("Authorization key is not configured (--auth is required)")
    token = read_props(ctx.props.props_file).get("APIGW_ACCESS_TOKEN") if ctx.props.props_file else None
    return [("accesstoken", token or DEFAULT_ACCESS_TOKEN), ("spaceguid", ctx.props.auth.split(":")[0])]


def _call(ctx: Context, method: str, operation: str, query: list[tuple[str, str]], body: Any = None) -> Any:
    resp = ctx.client().request(method, f"{APIMGMT}/{operation}.http", query=sorted(query), body=body)
    return resp.body


# -- create -------------------------------------------------------------------------------------------------------


def _build_create(p: argparse.ArgumentParser) -> None:
    p.add_argument("args", nargs="*", metavar="[BASE_PATH] API_PATH API_VERB ACTION")
    p.add_argument("-n", "--apiname", default="", metavar="NAME", help="Friendly name of the API (default BASE_PATH)")
    p.add_argument(
        "--response-type",
        default="json",
        metavar="TYPE",
        help="Set the web action response TYPE. Possible values are html, http, json, text, svg",
    )


def _web_action(ctx: Context, qn: QualifiedName) -> dict[str, Any]:
    """wsk's `isWebAction`: the action, which must carry `web-export: true`."""
    shown = f"/{qn.namespace}/{qn.entity_name}"
    try:
        resp = ctx.client().entity(
            "GET", qn.namespace, f"actions/{quote_path(qn.entity_name)}", query=[("code", "false")]
        )
    except WskError as exc:
        raise WskError(
            f"Unable to get action '{shown}': {exc.message}", EXIT_CODE_ERR_GENERAL, display_usage=True
        ) from exc
    action = resp.body if isinstance(resp.body, dict) else {}
    if kv_get(action.get("annotations"), "web-export") is not True:
        raise _error(
            f"Action '{shown}' is not a web action. Issue '{PROG} action update \"{shown}\" --web true' to convert "
            "the action to a web action.",
            usage=True,
        )
    return action


def _parse_api(ctx: Context, opts: argparse.Namespace) -> tuple[dict[str, Any], QualifiedName]:
    """The `apidoc` for `api create` (wsk's `parseApi`)."""
    args: list[str] = list(opts.args)
    base_path, base_is_name = "/", False
    if len(args) > 3:
        base_is_name = not args[0].startswith("/")
        if path_parameters(args[0]):
            raise _error(
                f"The base path '{args[0]}' cannot have parameters. Only the relative path supports path parameters.",
                usage=True,
            )
        base_path, args = args[0], args[1:]
    rel_path = args[0]
    _check_path(rel_path)
    params = path_parameters(rel_path)
    if params and opts.response_type != "http":
        raise _error("A response type of 'http' is required when using path parameters.", usage=True)
    verb = _check_verb(args[1])
    try:
        qn = parse_name(args[2], ctx.props.namespace)
    except WskError as exc:
        raise _error(f"'{args[2]}' is not a valid action name: {exc.message}", usage=True) from exc
    if opts.apiname and base_is_name:
        raise _error("An API name can only be specified once.", usage=True)
    host = ctx.props.apihost.strip().rstrip("/")
    backend_url = f"{host}/api/v1/web/{qn.namespace}/{qn.package or 'default'}/{qn.entity}.http"
    if not backend_url.startswith("http"):
        backend_url = "https://" + backend_url
    namespace = ctx.props.namespace or "_"
    apidoc: dict[str, Any] = {"namespace": namespace}
    if opts.apiname:
        apidoc["apiName"] = opts.apiname
    apidoc["gatewayBasePath"] = base_path
    apidoc["gatewayPath"] = rel_path
    apidoc["gatewayMethod"] = verb
    if not base_is_name:
        apidoc["id"] = f"API:{namespace}:{base_path}"
    apidoc["action"] = {
        "name": qn.entity_name,
        "namespace": qn.namespace,
        "backendMethod": verb,
        "backendUrl": backend_url,
        "authkey": ctx.props.auth,
    }
    if params:
        apidoc["pathParameters"] = [
            {"name": name, "in": "path", "description": f"Default description for '{name}'", "required": True,
             "type": "string"}
            for name in params
        ]  # fmt: skip
    return apidoc, qn


def _run_create(ctx: Context, opts: argparse.Namespace) -> int:
    if not opts.args:
        raise _error(
            "Invalid argument(s). Specify an API base path with an API path, an API verb, and an action name.",
            usage=True,
        )
    check_args(opts.args, 3, 4, "Specify an API base path with an API path, an API verb, and an action name.")
    try:
        apidoc, qn = _parse_api(ctx, opts)
    except WskError as exc:
        raise exc.wrap(f"Unable to parse api command arguments: {exc.message}") from exc
    action = _web_action(ctx, qn)
    secret = kv_get(action.get("annotations"), WEB_SECURE)
    if secret is not None:
        apidoc["action"]["secureKey"] = secret
    query = [*_user_options(ctx), ("responsetype", opts.response_type)]
    try:
        created = _call(ctx, "POST", "createApi", query, {"apidoc": apidoc})
    except WskError as exc:
        raise _error(f"Unable to create API: {exc.message}") from exc
    base_url = str(created.get("gwApiUrl", "")) if isinstance(created, dict) else ""
    path = apidoc["gatewayBasePath"].rstrip("/") + apidoc["gatewayPath"]
    name = f"/{apidoc['action']['namespace']}/{apidoc['action']['name']}"
    ctx.ok(f"created API {path} {apidoc['gatewayMethod']} for action {name}")
    ctx.out.write(base_url.rstrip("/") + apidoc["gatewayPath"] + "\n")
    return 0


# -- get ----------------------------------------------------------------------------------------------------------


def _build_get(p: argparse.ArgumentParser) -> None:
    p.add_argument("args", nargs="*", metavar="BASE_PATH | API_NAME")
    p.add_argument("-f", "--full", action="store_true", help="display full API configuration details")


def _apis(body: Any) -> list[dict[str, Any]]:
    """The route documents (`value`s) of a getApi answer `{"apis": [{"id", "key", "value"}]}`."""
    apis = body.get("apis") if isinstance(body, dict) else None
    if not isinstance(apis, list):
        return []
    return [item["value"] for item in apis if isinstance(item, dict) and isinstance(item.get("value"), dict)]


def _run_get(ctx: Context, opts: argparse.Namespace) -> int:
    check_args(opts.args, 1, 1, "An API base path or API name is required.")
    base = opts.args[0]
    query = [*_user_options(ctx), ("basepath", base)]
    try:
        apis = _apis(_call(ctx, "GET", "getApi", query))
    except WskError as exc:
        raise _error(f"Unable to get API '{base}': {exc.message}") from exc
    shown: Any = None
    if apis:
        shown = apis[0] if opts.full else apis[0].get("apidoc")
    if shown is None:
        what = f"basepath {base}" if base.startswith("/") else f"API name {base}"
        raise _error(f"API does not exist for {what}")
    print_json(shown, ctx.out)
    return 0


# -- list ---------------------------------------------------------------------------------------------------------


def _build_list(p: argparse.ArgumentParser) -> None:
    p.add_argument("args", nargs="*", metavar="[BASE_PATH | API_NAME] [API_PATH [API_VERB]]")
    p.add_argument("-s", "--skip", type=int, default=0, metavar="SKIP", help="exclude the first SKIP number of APIs")
    p.add_argument("-l", "--limit", type=int, default=30, metavar="LIMIT", help="only return LIMIT number of APIs")
    p.add_argument("-f", "--full", action="store_true", help="display full description of each API")
    p.add_argument(
        "-n",
        "--name-sort",
        action="store_true",
        help="sorts a list alphabetically by order of [BASE_PATH | API_NAME], API_PATH, then API_VERB",
    )


def api_rows(apis: list[dict[str, Any]], rel_path: str = "", verb: str = "") -> list[dict[str, str]]:
    """One row per (path, operation) of the routes, filtered by path and verb (wsk's `genFilteredRow`)."""
    rows: list[dict[str, str]] = []
    for api in apis:
        doc = api.get("apidoc") if isinstance(api.get("apidoc"), dict) else {}
        info = doc.get("info") if isinstance(doc.get("info"), dict) else {}
        base_url = str(api.get("gwApiUrl", "")).rstrip("/")
        paths = doc.get("paths") if isinstance(doc.get("paths"), dict) else {}
        for path, operations in paths.items():
            if (rel_path and path != rel_path) or not isinstance(operations, dict):
                continue
            for op, spec in operations.items():
                if verb and op.lower() != verb.lower():
                    continue
                ext = spec.get("x-openwhisk") if isinstance(spec, dict) else None
                action = ""
                if isinstance(ext, dict):
                    package = f"{ext['package']}/" if ext.get("package") else ""
                    action = f"/{ext.get('namespace', '')}/{package}{ext.get('action', '')}"
                rows.append({
                    "action": action, "verb": op, "api_name": str(info.get("title", "")),
                    "base_path": str(doc.get("basePath", "")), "rel_path": path, "url": base_url + path,
                })  # fmt: skip
    return rows


def api_table(rows: list[dict[str, str]]) -> str:
    """The `api list` table: Action, Verb, API Name and URL, the first columns sized to their content."""
    action_w, name_w = 30, 19
    if rows:
        action_w = min(40, max(len("Action"), *(len(r["action"]) for r in rows)))
        name_w = min(30, max(len("API Name"), *(len(r["api_name"]) for r in rows)))

    def line(action: str, verb: str, name: str, url: str) -> str:
        return f"{action:<{action_w}} {verb:>7} {name:>{name_w + 1}}  {url}\n"

    text = line("Action", "Verb", "API Name", "URL")
    for r in rows:
        text += line(r["action"][:action_w], r["verb"], r["api_name"][:name_w], r["url"])
    return text


def _full_rows(rows: list[dict[str, str]]) -> str:
    return "".join(
        f"Action: {r['action']}\n  API Name: {r['api_name']}\n  Base path: {r['base_path']}\n"
        f"  Path: {r['rel_path']}\n  Verb: {r['verb']}\n  URL: {r['url']}\n"
        for r in rows
    )


def _run_list(ctx: Context, opts: argparse.Namespace) -> int:
    args: list[str] = opts.args
    check_args(args, 0, 3, "Optional parameters are: API base path (or API name), API relative path and operation.")
    rel_path = verb = ""
    query = _user_options(ctx)
    if args:
        query.append(("basepath", args[0]))
        if len(args) > 1:
            _check_path(args[1])
            rel_path = args[1]
            query.append(("relpath", rel_path))
        if len(args) > 2:
            verb = _check_verb(args[2])
            query.append(("operation", verb))
    else:
        query += [("limit", str(opts.limit)), ("skip", str(opts.skip))]
    try:
        apis = _apis(_call(ctx, "GET", "getApi", query))
    except WskError as exc:
        if args:
            raise exc.wrap(f"Unable to obtain the API list: {exc.message}") from exc
        raise _error(f"Unable to obtain the API list: {exc.message}") from exc
    rows = api_rows(apis, rel_path, verb)
    if opts.name_sort:
        rows.sort(key=lambda r: (r["base_path"], r["rel_path"], r["verb"]))
    ctx.ok("APIs")
    ctx.out.write(_full_rows(rows) if opts.full else api_table(rows))
    return 0


# -- delete -------------------------------------------------------------------------------------------------------


def _build_delete(p: argparse.ArgumentParser) -> None:
    p.add_argument("args", nargs="*", metavar="BASE_PATH | API_NAME [API_PATH [API_VERB]]")


def _run_delete(ctx: Context, opts: argparse.Namespace) -> int:
    args: list[str] = opts.args
    check_args(
        args,
        1,
        3,
        "An API base path or API name is required.  An optional API relative path and operation may also be provided.",
    )
    query = [*_user_options(ctx), ("basepath", args[0])]
    verb = ""
    if len(args) > 1:
        _check_path(args[1])
        query.append(("relpath", args[1]))
    if len(args) > 2:
        verb = _check_verb(args[2])
        query.append(("operation", verb))
    try:
        _call(ctx, "DELETE", "deleteApi", query)
    except WskError as exc:
        raise _error(f"Unable to delete API: {exc.message}") from exc
    if len(args) == 1:
        ctx.ok(f"deleted API {args[0]}")
    elif len(args) == 2:
        ctx.ok(f"deleted {args[1]} from {args[0]}")
    else:
        ctx.ok(f"deleted {args[1]} {verb} from {args[0]}")
    return 0


COMMANDS: dict[str, Command] = {
    "create": Command(
        "create", "create a new API", "create [BASE_PATH] API_PATH API_VERB ACTION [flags]", _build_create, _run_create
    ),
    "get": Command("get", "get API details", "get BASE_PATH | API_NAME [flags]", _build_get, _run_get),
    "delete": Command(
        "delete",
        "delete an API",
        "delete BASE_PATH | API_NAME [API_PATH [API_VERB]] [flags]",
        _build_delete,
        _run_delete,
    ),
    "list": Command(
        "list", "list APIs", "list [[BASE_PATH | API_NAME] [API_PATH [API_VERB]] [flags]", _build_list, _run_list
    ),
}
