"""API routes, the platform's API gateway: verbs and paths under a base path mapped onto web actions.

Management is what OpenWhisk's clients call, the system web actions `whisk.system/apimgmt/createApi`, `getApi`
and `deleteApi` (OpenWhisk runs them as actions that configure its separate gateway; here the controller answers
them itself). They authenticate with the caller's key: Basic credentials, or else `spaceguid` (the uuid) with
`accesstoken` (the key). The responses have OpenWhisk's shapes: `{"apis": [{"id", "key", "value": {"namespace",
"gwApiUrl", "gwApiActivated", "tenantId", "apidoc": <swagger>}}]}` for getApi, the `value` alone for createApi,
swagger 2.0 with an `x-openwhisk` block (`namespace`, `package`, `action`, `url`) on each operation.

Each API (a namespace's base path) is one entity of type `apis` in the whisks store, id `+apis/{apiId}{basePath}`
(`+` never starts an entity name), with the swagger as its source of truth. `apiId` is 32 hex characters derived
from the namespace, so the served URL `{host}/api/{apiId}{basePath}{relPath}` is stable. A route request tries the
longest base path first; a relative path matches literally or through `{param}` segments (literal paths win), then
the verb. The operation's web action is then served exactly as its web URL is, with the path parameters as
arguments; the route's response type is the extension, and with `http` the request's path below `/api/{apiId}` is
`__ow_path` (OpenWhisk's gateway appends `$(request.path)` to `.http` backends only). A route's `X-Require-Whisk-Auth`
secret (`apidoc.action.secureKey`, which the CLI sends) is sent on the caller's behalf, as the gateway does.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

from controller import messages
from controller.context import Controller, controller_of
from controller.errors import ApiError, NotFound, Unauthorized
from controller.requests import read_json
from controller.web.request import EXTENSIONS, split_extension
from controller.web.response import default_cors
from whisk.entities.identity import Identity
from whisk.entities.names import EntityPath, FullyQualifiedName, is_valid_name
from whisk.store import Conflict as StoreConflict
from whisk.store import Document
from whisk.store import NotFound as StoreNotFound

APIS = "apis"
MANAGEMENT_NAMESPACE = "whisk.system"
MANAGEMENT_PACKAGE = "apimgmt"
VERBS = ("get", "put", "post", "delete", "patch", "head", "options")
DEFAULT_RESPONSE_TYPE = "json"
_ROUTE_PATH = re.compile(r"\A/api/[0-9a-f]{32}(/|\Z)")
_SEGMENT = re.compile(r"\A[A-Za-z0-9._~!$&'()*+,;=:@%-]+\Z")
_PARAM = re.compile(r"\A\{([A-Za-z0-9_.-]+)\}\Z")
#: deepest base path a route request looks for
MAX_BASE_PATH_SEGMENTS = 8


class ApiManagementError(ApiError):
    """A refused management request: OpenWhisk's apimgmt actions answer these as 502 with `{"error": ...}`."""

    status = 502


def is_management(namespace: str, package: str) -> bool:
    return namespace == MANAGEMENT_NAMESPACE and package == MANAGEMENT_PACKAGE


def is_route_path(path: str) -> bool:
    return bool(_ROUTE_PATH.match(path))


def api_id_of(namespace: str) -> str:
    return hashlib.sha256(f"pywhisk-api:{namespace}".encode()).hexdigest()[:32]


def doc_id_of(api_id: str, base_path: str) -> str:
    return f"+{APIS}/{api_id}{base_path}"


def api_host(request: web.Request) -> str:
    """The scheme and host clients reach this controller at, through a proxy's `X-Forwarded-*` headers if any."""
    scheme = request.headers.get("X-Forwarded-Proto", request.scheme).split(",")[0].strip()
    host = request.headers.get("X-Forwarded-Host", "").split(",")[0].strip()
    if not host:
        return f"{scheme}://{request.host}"
    port = request.headers.get("X-Forwarded-Port", "").strip()
    if ":" not in host and port and port != {"http": "80", "https": "443"}.get(scheme):
        host = f"{host}:{port}"
    return f"{scheme}://{host}"


# --- paths and templates (pure) ------------------------------------------------------------------------------


def normalize_base_path(base_path: Any) -> str:
    if not isinstance(base_path, str) or not base_path.startswith("/"):
        raise ApiManagementError(f"'{base_path}' must begin with '/'.")
    segments = [s for s in base_path.split("/") if s]
    if len(segments) > MAX_BASE_PATH_SEGMENTS or not all(_SEGMENT.match(s) and "{" not in s for s in segments):
        raise ApiManagementError(f"The base path '{base_path}' is not valid.")
    return "/" + "/".join(segments)


def path_parameter_names(rel_path: str) -> list[str]:
    return [m.group(1) for s in rel_path.split("/") if (m := _PARAM.match(s))]


def check_rel_path(rel_path: Any) -> str:
    if not isinstance(rel_path, str) or not rel_path.startswith("/"):
        raise ApiManagementError(f"'{rel_path}' must begin with '/'.")
    for segment in (s for s in rel_path.split("/") if s):
        param = _PARAM.match(segment)
        if param is not None and param.group(1).startswith("__ow_"):
            raise ApiManagementError(f"The path parameter '{param.group(1)}' is reserved.")
        if param is None and not _SEGMENT.match(segment):
            raise ApiManagementError(f"The path '{rel_path}' is not valid.")
    return rel_path


def match_template(template: str, path: str) -> dict[str, str] | None:
    """The path parameters if `path` matches `template` (`/users/{id}`), else None; trailing slashes are ignored."""
    want = [s for s in template.split("/") if s]
    got = [s for s in path.split("/") if s]
    if len(want) != len(got):
        return None
    found: dict[str, str] = {}
    for pattern, value in zip(want, got, strict=True):
        param = _PARAM.match(pattern)
        if param is not None:
            found[param.group(1)] = value
        elif pattern != value:
            return None
    return found


@dataclass(frozen=True)
class Operation:
    """What one verb of one path of an API calls."""

    action: FullyQualifiedName
    response_type: str
    path_params: dict[str, str]
    secure_key: str | None


def find_operation(api: dict[str, Any], rel_path: str, method: str) -> Operation | bool | None:
    """The operation of `api` for `method` on `rel_path`; False when the path matches but not the verb (None when
    the path matches nothing)."""
    paths: dict[str, Any] = api.get("swagger", {}).get("paths", {})
    matches = [(template, params) for template in paths if (params := match_template(template, rel_path)) is not None]
    if not matches:
        return None
    matches.sort(key=lambda m: len(m[1]))  # literal paths before templated ones
    for template, params in matches:
        op = paths[template].get(method.lower())
        if isinstance(op, dict) and isinstance(op.get("x-openwhisk"), dict):
            target = op["x-openwhisk"]
            name = FullyQualifiedName(EntityPath(target["namespace"], target.get("package") or None), target["action"])
            secure = api.get("secureKeys", {}).get(op.get("operationId", ""))
            return Operation(name, _extension_of(target.get("url", "")), params, secure)
    return False


def _extension_of(url: str) -> str:
    last = url.rsplit("/", 1)[-1]
    return next((ext for ext in EXTENSIONS if last.endswith("." + ext)), DEFAULT_RESPONSE_TYPE)


def add_endpoint(swagger: dict[str, Any], rel_path: str, verb: str, target: dict[str, str], params: list[str]) -> str:
    """Put one operation into `swagger`; its operation id."""
    operation_id = f"{verb}_{rel_path}"
    entry: dict[str, Any] = {
        "operationId": operation_id,
        "x-openwhisk": target,
        "responses": {"default": {"description": "Default response"}},
    }
    if params:
        entry["parameters"] = [
            {"name": p, "in": "path", "required": True, "type": "string",
             "description": f"Default description for '{p}'"}
            for p in params
        ]
    swagger.setdefault("paths", {}).setdefault(rel_path, {})[verb] = entry
    return operation_id


def remove_endpoint(swagger: dict[str, Any], rel_path: str, verb: str | None) -> None:
    paths = swagger.get("paths", {})
    if rel_path not in paths:
        raise ApiManagementError(messages.API_PATH_DOES_NOT_EXIST.format(relpath=rel_path))
    if verb is None:
        del paths[rel_path]
        return
    if verb not in paths[rel_path]:
        raise ApiManagementError(messages.API_OPERATION_DOES_NOT_EXIST.format(relpath=rel_path, operation=verb))
    del paths[rel_path][verb]
    if not any(v in paths[rel_path] for v in VERBS):
        del paths[rel_path]


def base_swagger(base_path: str, name: str | None) -> dict[str, Any]:
    return {"swagger": "2.0", "info": {"title": name or base_path, "version": "1.0.0"}, "basePath": base_path,
            "paths": {}}


# --- management ----------------------------------------------------------------------------------------------


async def manage(request: web.Request, segment: str) -> web.StreamResponse:
    name, _ = split_extension(segment)
    handler = _HANDLERS.get(name)
    if handler is None:
        raise NotFound(messages.NOT_FOUND)
    if request.method == "OPTIONS":
        return web.Response(status=200, headers=_CORS)
    ctl = controller_of(request)
    args = await _arguments(request, ctl.settings.max_body_bytes)
    identity = await _caller(ctl, request, args)
    try:
        body = await handler(ctl, request, identity, args)
    except ApiError as exc:
        exc.headers = {**_CORS, **exc.headers}
        raise
    return web.json_response(body, headers=_CORS)


_CORS = default_cors(None)


async def _arguments(request: web.Request, max_bytes: int) -> dict[str, Any]:
    """Query parameters, with a JSON object body over them."""
    args: dict[str, Any] = dict(parse_qsl(request.rel_url.raw_query_string, keep_blank_values=True))
    body = await read_json(request, max_bytes)
    if isinstance(body, dict):
        args |= body
    return args


async def _caller(ctl: Controller, request: web.Request, args: dict[str, Any]) -> Identity:
    if "Authorization" in request.headers:
        return await ctl.caller(request)
    uuid, key = args.get("spaceguid"), args.get("accesstoken")
    if isinstance(uuid, str) and isinstance(key, str) and uuid and key:
        token = base64.b64encode(f"{uuid}:{key}".encode()).decode()
        return await ctl.authenticator.identify(f"Basic {token}")
    raise Unauthorized(messages.AUTH_REQUIRED)


async def _find_api(ctl: Controller, namespace: str, base_path_or_name: str) -> Document | None:
    if base_path_or_name.startswith("/"):
        try:
            return await ctl.store.get_entity(doc_id_of(api_id_of(namespace), normalize_base_path(base_path_or_name)))
        except StoreNotFound:
            return None
    for doc in await ctl.store.list_entities(namespace, APIS, 0, 0):
        if doc.body.get("swagger", {}).get("info", {}).get("title") == base_path_or_name:
            return doc
    return None


def _value(request: web.Request, api: dict[str, Any]) -> dict[str, Any]:
    return {
        "namespace": api["namespace"],
        "gwApiActivated": True,
        "tenantId": api["apiId"],
        "gwApiUrl": f"{api_host(request)}/api/{api['apiId']}{api['basePath']}",
        "apidoc": api["swagger"],
    }


def _apidoc(args: dict[str, Any]) -> dict[str, Any]:
    apidoc = args.get("apidoc")
    if isinstance(apidoc, str):
        try:
            apidoc = json.loads(apidoc)
        except ValueError:
            raise ApiManagementError("apidoc field cannot be parsed. Ensure it is valid JSON.") from None
    if not isinstance(apidoc, dict):
        raise ApiManagementError("apidoc is required.")
    return apidoc


async def create_api(ctl: Controller, request: web.Request, identity: Identity, args: dict[str, Any]) -> Any:
    apidoc = _apidoc(args)
    namespace = identity.namespace
    response_type = args.get("responsetype") or DEFAULT_RESPONSE_TYPE
    if response_type not in EXTENSIONS:
        raise ApiManagementError(f"Invalid response type '{response_type}'. Valid values are: {', '.join(EXTENSIONS)}")
    swagger_doc = apidoc.get("swagger")
    secure_keys: dict[str, str] = {}
    if swagger_doc:
        swagger = _uploaded_swagger(swagger_doc, namespace)
        base_path = normalize_base_path(swagger["basePath"])
        swagger["basePath"] = base_path
        existing = await _find_api(ctl, namespace, base_path)
    else:
        endpoint = _endpoint(apidoc, namespace)
        base_path = normalize_base_path(apidoc["gatewayBasePath"])
        existing = await _find_api(ctl, namespace, base_path)
        swagger = existing.body["swagger"] if existing else base_swagger(base_path, apidoc.get("apiName"))
        if existing is not None:
            secure_keys = dict(existing.body.get("secureKeys", {}))
        action = await _web_action(ctl, endpoint["namespace"], endpoint["name"])
        package, _, name = endpoint["name"].rpartition("/")
        target = {
            "namespace": endpoint["namespace"],
            "package": package,
            "action": name,
            "url": f"{api_host(request)}/api/v1/web/{endpoint['namespace']}/{package or 'default'}/{name}"
                   f".{response_type}",
        }
        verb = endpoint["method"]
        operation_id = add_endpoint(swagger, endpoint["path"], verb, target, path_parameter_names(endpoint["path"]))
        secret = apidoc.get("action", {}).get("secureKey")
        if secret is None and action is not None and endpoint["namespace"] == namespace:
            secret = action.get("require-whisk-auth")  # only the owner's own secrets, never another namespace's
        if isinstance(secret, str | int) and not isinstance(secret, bool):
            secure_keys[operation_id] = str(secret)
        else:
            secure_keys.pop(operation_id, None)
    api_id = api_id_of(namespace)
    body = {
        "namespace": namespace,
        "name": base_path,
        "updated": int(time.time() * 1000),
        "apiId": api_id,
        "basePath": base_path,
        "swagger": swagger,
        "secureKeys": secure_keys,
    }
    doc_id = doc_id_of(api_id, base_path)
    try:
        await ctl.store.put_entity(doc_id, APIS, body, existing.rev if existing else None)
    except StoreConflict:
        raise ApiManagementError(messages.CONCURRENT_MODIFICATION) from None
    await ctl.entities.invalidate(doc_id)
    return _value(request, body)


def _endpoint(apidoc: dict[str, Any], namespace: str) -> dict[str, str]:
    """The one operation a create request adds, validated, its namespaces resolved to the caller's."""
    for required in ("namespace", "gatewayBasePath", "gatewayPath", "gatewayMethod", "action"):
        if not apidoc.get(required):
            raise ApiManagementError(messages.API_MISSING_FIELD.format(field=required))
    action = apidoc["action"]
    if not isinstance(action, dict):
        raise ApiManagementError(messages.API_MISSING_FIELD.format(field="action"))
    for required in ("backendMethod", "backendUrl", "namespace", "name"):
        if not action.get(required):
            raise ApiManagementError(messages.API_ACTION_MISSING_FIELD.format(field=required))
    verb = str(apidoc["gatewayMethod"]).lower()
    if verb not in VERBS:
        raise ApiManagementError(f"'{apidoc['gatewayMethod']}' is not a valid API verb.")
    action_namespace = action["namespace"]
    if action_namespace in ("_", apidoc["namespace"]):
        action_namespace = namespace
    name = str(action["name"]).strip("/")
    if name.count("/") > 1 or not all(is_valid_name(p) for p in [action_namespace, *name.split("/")]):
        raise ApiManagementError(f"'{action['name']}' is not a valid action name.")
    return {"namespace": action_namespace, "name": name, "method": verb, "path": check_rel_path(apidoc["gatewayPath"])}


async def _web_action(ctl: Controller, namespace: str, name: str) -> dict[str, Any] | None:
    """The annotations of the web action a route targets; an error unless it exists and is exported."""
    package, _, action = name.rpartition("/")
    fqn = FullyQualifiedName(EntityPath(namespace, package or None), action)
    try:
        doc = await ctl.store.get_entity(fqn.doc_id())
    except StoreNotFound:
        doc = None
    if doc is not None and doc.entity_type == "actions":
        annotations = {a["key"]: a.get("value") for a in doc.body.get("annotations", [])}
        if annotations.get("web-export") is True:
            return annotations
    if doc is None and package:
        return None  # may be reached through a binding; checked when the route is called
    raise ApiManagementError(
        f"Action '/{namespace}/{name}' is not a web action. Issue 'wsk action update \"/{namespace}/{name}\" "
        "--web true' to convert the action to a web action.")


def _uploaded_swagger(raw: Any, namespace: str) -> dict[str, Any]:
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            raise ApiManagementError("swagger field cannot be parsed. Ensure it is valid JSON.") from None
    if not isinstance(raw, dict):
        raise ApiManagementError("swagger field should be an object or a JSON string.")
    for required in ("basePath", "paths", "info"):
        if not raw.get(required):
            raise ApiManagementError(f"swagger is missing the {required} field.")
    for rel_path, ops in raw["paths"].items():
        check_rel_path(rel_path)
        for verb, op in (ops or {}).items():
            target = op.get("x-openwhisk") if isinstance(op, dict) else None
            if verb not in VERBS or not isinstance(target, dict):
                continue
            if not target.get("action") or not target.get("namespace"):
                raise ApiManagementError(f"Missing x-openwhisk.action field in API configuration for operation {verb}")
            if target["namespace"] == "_":
                target["namespace"] = namespace
            op.setdefault("operationId", f"{verb}_{rel_path}")
    return raw


async def get_api(ctl: Controller, request: web.Request, identity: Identity, args: dict[str, Any]) -> Any:
    base_path = args.get("basepath")
    if base_path:
        found = await _find_api(ctl, identity.namespace, str(base_path))
        docs = [found] if found is not None else []
    else:
        docs = sorted(await ctl.store.list_entities(identity.namespace, APIS, 0, 0), key=lambda d: d.body["basePath"])
        skip, limit = _int(args.get("skip"), 0), _int(args.get("limit"), 0)
        docs = docs[skip:skip + limit] if limit > 0 else docs[skip:]
    return {"apis": [
        {"id": f"API:{doc.body['namespace']}:{doc.body['basePath']}",
         "key": f"API:{doc.body['namespace']}:{doc.body['basePath']}",
         "value": _value(request, doc.body)}
        for doc in docs
    ]}


def _int(raw: Any, default: int) -> int:
    try:
        return max(int(raw), 0)
    except (TypeError, ValueError):
        return default


async def delete_api(ctl: Controller, request: web.Request, identity: Identity, args: dict[str, Any]) -> Any:
    base_path = args.get("basepath")
    if not base_path:
        raise ApiManagementError("basepath is required.")
    rel_path, operation = args.get("relpath") or None, args.get("operation") or None
    if operation and not rel_path:
        raise ApiManagementError("When specifying an operation, the path is required.")
    doc = await _find_api(ctl, identity.namespace, str(base_path))
    if doc is None:
        raise ApiManagementError(messages.API_DOES_NOT_EXIST.format(basepath=base_path))
    swagger = doc.body["swagger"]
    if rel_path is not None:
        remove_endpoint(swagger, str(rel_path), str(operation).lower() if operation else None)
    try:
        if rel_path is None or not swagger.get("paths"):
            await ctl.store.delete_entity(doc.doc_id, doc.rev)
        else:
            body = {**doc.body, "swagger": swagger, "updated": int(time.time() * 1000)}
            await ctl.store.put_entity(doc.doc_id, APIS, body, doc.rev)
    except (StoreConflict, StoreNotFound):
        raise ApiManagementError(messages.CONCURRENT_MODIFICATION) from None
    await ctl.entities.invalidate(doc.doc_id)
    return {}


_HANDLERS = {"createApi": create_api, "getApi": get_api, "deleteApi": delete_api}


# --- serving -------------------------------------------------------------------------------------------------


async def serve_route(request: web.Request) -> web.StreamResponse:
    from controller.api.web import Via, serve  # web imports this module

    ctl = controller_of(request)
    api_id, path = request.match_info["api_id"], request.match_info["path"]
    segments = [s for s in path.split("/") if s]
    path_matched = False
    for depth in range(min(len(segments), MAX_BASE_PATH_SEGMENTS), -1, -1):
        base_path = "/" + "/".join(segments[:depth])
        try:
            doc = await ctl.entities.get(doc_id_of(api_id, base_path))
        except StoreNotFound:
            continue
        if doc.entity_type != APIS:
            continue
        operation = find_operation(doc.body, "/" + "/".join(segments[depth:]), request.method)
        if operation is False:
            path_matched = True
        if isinstance(operation, Operation):
            via = Via(path_params=operation.path_params, secure_key=operation.secure_key)
            # OpenWhisk's gateway appends the request path to `.http` backends only (`__ow_path`)
            rest = path if operation.response_type == "http" else ""
            return await serve(request, operation.action, operation.response_type, rest, via)
    if path_matched and request.method == "OPTIONS":
        return web.Response(status=200, headers=default_cors(request.headers.get("Access-Control-Request-Headers")))
    raise NotFound(messages.NOT_FOUND)


ROUTES: list[web.RouteDef] = [
    web.route("*", "/api/{api_id:[0-9a-f]{32}}{path:(?:/.*)?}", serve_route),
]
