"""Web actions: `/api/v1/web/{namespace}/{package|default}/{action}[.ext][/path]`, with no authentication by default.

The activation runs as, is throttled as and is recorded under the action's owner. The request becomes arguments in
`controller.web.request` and the result a response in `controller.web.response`; this module does the lookups, the
`require-whisk-auth` check, CORS, and the blocking wait (past `max_blocking_wait_ms`: 202 "Response not yet
ready."). The system web actions `whisk.system/apimgmt/*` (API routes) are answered natively by `controller.api.apis`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from multidict import CIMultiDict

from controller import messages
from controller.api import apis
from controller.api.actions import ACTIVATION_ID_HEADER
from controller.context import Controller, controller_of
from controller.errors import ApiError, Conflict, Forbidden, MethodNotAllowed, NotFound, PayloadTooLarge, Unauthorized
from controller.invoke import ResolvedAction, invoke, resolve_action
from controller.web.request import (
    METHODS,
    RequestRejected,
    WebRequest,
    action_arguments,
    immutable_parameters,
    is_truthy,
    media_type_of,
    split_extension,
)
from controller.web.response import TranscodeError, WebResponse, complete, default_cors, projection_of
from whisk.entities.identity import Identity
from whisk.entities.names import EntityPath, FullyQualifiedName, is_valid_name
from whisk.store import NotFound as StoreNotFound
from whisk.store import Store

WEB_PREFIX = "/api/v1/web/"
DEFAULT_PACKAGE = "default"
REQUIRE_AUTH_HEADER = "X-Require-Whisk-Auth"
#: how long the owner of a namespace stays cached, in seconds
OWNER_CACHE_S = 60.0
_MAX_CACHED = 10_000


class Accepted(ApiError):
    """The activation goes on past the blocking wait."""

    status = 202


class OwnerCache:
    """The identity owning each namespace, as web actions run as their owner; failures are not cached."""

    def __init__(self, store: Store, ttl_s: float = OWNER_CACHE_S) -> None:
        self._store = store
        self._ttl_s = ttl_s
        self._owners: dict[str, tuple[Identity, float]] = {}

    async def get(self, namespace: str) -> Identity:
        now = time.monotonic()
        cached = self._owners.get(namespace)
        if cached is not None and cached[1] > now:
            return cached[0]
        try:
            identity = await self._store.identity_by_namespace(namespace)
        except StoreNotFound:
            raise NotFound(messages.NOT_FOUND) from None
        if len(self._owners) >= _MAX_CACHED:
            self._owners.pop(next(iter(self._owners)))
        self._owners[namespace] = (identity, now + self._ttl_s)
        return identity


OWNERS = web.AppKey("web_action_owners", OwnerCache)


def owns_cors(path: str) -> bool:
    """Whether responses under `path` carry their own CORS headers (web actions and API routes do)."""
    return path.startswith(WEB_PREFIX) or apis.is_route_path(path)


@dataclass(frozen=True)
class Via:
    """How a web action is reached besides its own URL: through an API route."""

    path_params: dict[str, str] = field(default_factory=dict)
    #: the route's `X-Require-Whisk-Auth` secret, sent on the caller's behalf as OpenWhisk's gateway does
    secure_key: str | None = None


async def web_action(request: web.Request) -> web.StreamResponse:
    if request.method not in METHODS:
        raise MethodNotAllowed(messages.METHOD_NOT_ALLOWED)
    namespace = request.match_info["namespace"]
    package = request.match_info["package"]
    segment = request.match_info["action"]
    if apis.is_management(namespace, package):
        return await apis.manage(request, segment)
    name, extension = split_extension(segment)
    names = [namespace, name] + ([] if package == DEFAULT_PACKAGE else [package])
    if not all(is_valid_name(n) for n in names):
        raise NotFound(messages.NOT_FOUND)
    fqn = FullyQualifiedName(EntityPath(namespace, None if package == DEFAULT_PACKAGE else package), name)
    return await serve(request, fqn, extension, request.match_info["rest"])


async def serve(
    request: web.Request, fqn: FullyQualifiedName, extension: str, rest: str, via: Via | None = None
) -> web.StreamResponse:
    """Answer `request` with the web action `fqn`, transcoded by `extension`; `rest` is the path after the
    action (its `__ow_path`)."""
    ctl = controller_of(request)
    owner = await request.app[OWNERS].get(fqn.namespace)
    resolved = await _exported_action(ctl, owner, fqn)
    action = resolved.action
    custom_options = action.annotation("web-custom-options") is True
    headers: dict[str, str] = {} if custom_options else _cors(request)
    try:
        if request.method == "OPTIONS" and not custom_options:
            return web.Response(status=200, headers=headers)
        user = await _optional_caller(ctl, request)
        if request.method != "OPTIONS" and not _authenticated(action.annotation("require-whisk-auth"), request,
                                                              user, via):
            raise Unauthorized(messages.AUTH_REQUIRED if user is None else messages.AUTH_INVALID)
        body = await _read_body(request, ctl.settings.max_body_bytes)
        web_request = WebRequest(
            method=request.method,
            headers=list(request.headers.items()),
            path=rest,
            query=request.rel_url.raw_query_string,
            body=body,
            media_type=media_type_of(request.headers.get("Content-Type")),
            path_params=via.path_params if via else {},
        )
        immutable = immutable_parameters(is_truthy(action.annotation("final")), resolved.parameters)
        args = action_arguments(web_request, raw=action.annotation("raw-http") is True,
                                user=user.namespace if user else None, immutable=immutable)
        ctl.throttles.check_invocation(owner, ctl.balancer.in_flight(owner.namespace))
        outcome = await invoke(ctl, owner, resolved, args, blocking=True, wait_ms=ctl.settings.max_blocking_wait_ms)
        headers[ACTIVATION_ID_HEADER] = outcome.activation_id
        if outcome.record is None:
            raise Accepted(messages.RESPONSE_NOT_READY)
        response = outcome.record.response
        projection = projection_of(extension, rest) if via is None else []
        answer = complete(extension, response.statusCode, response.result, projection)
    except (RequestRejected, TranscodeError) as exc:
        raise _error(exc.status, exc.message, headers) from None
    except ApiError as exc:
        exc.headers = {**headers, **exc.headers}
        raise
    return _http_response(answer, headers)


async def _exported_action(ctl: Controller, owner: Identity, fqn: FullyQualifiedName) -> ResolvedAction:
    """The action if it exists, its owner may run it and it is exported; anything else is 404, leaking nothing."""
    try:
        resolved = await resolve_action(ctl, owner, fqn)
    except (NotFound, Forbidden, Conflict, StoreNotFound):
        raise NotFound(messages.NOT_FOUND) from None
    if resolved.action.annotation("web-export") is not True:
        raise NotFound(messages.NOT_FOUND)
    return resolved


async def _optional_caller(ctl: Controller, request: web.Request) -> Identity | None:
    """The identity of valid credentials; a request without them, or with bad ones, is anonymous."""
    if "Authorization" not in request.headers:
        return None
    try:
        return await ctl.caller(request)
    except Unauthorized:
        return None


def _authenticated(required: Any, request: web.Request, user: Identity | None, via: Via | None) -> bool:
    """OpenWhisk's `require-whisk-auth`: absent (or false), anyone; true, valid credentials; a string or number,
    the `X-Require-Whisk-Auth` header must equal it."""
    if required is None or required is False:
        return True
    if required is True:
        return user is not None
    if isinstance(required, str | int | float):
        secret = via.secure_key if via and via.secure_key is not None else request.headers.get(REQUIRE_AUTH_HEADER)
        return secret is not None and secret == str(required)
    return False


async def _read_body(request: web.Request, max_bytes: int) -> bytes:
    if request.content_length is not None and request.content_length > max_bytes:
        raise PayloadTooLarge(messages.PAYLOAD_TOO_LARGE.format(size=request.content_length, allowed=max_bytes))
    body = bytearray()
    async for chunk in request.content.iter_chunked(64 * 1024):
        body += chunk
        if len(body) > max_bytes:
            raise PayloadTooLarge(messages.PAYLOAD_TOO_LARGE.format(size=len(body), allowed=max_bytes))
    return bytes(body)


def _cors(request: web.Request) -> dict[str, str]:
    return default_cors(request.headers.get("Access-Control-Request-Headers"))


def _error(status: int, message: str, headers: dict[str, str]) -> ApiError:
    error = ApiError(message, dict(headers))
    error.status = status
    return error


def _http_response(answer: WebResponse, extra: dict[str, str]) -> web.Response:
    headers: CIMultiDict[str] = CIMultiDict(answer.headers)
    for name, value in extra.items():
        if name not in headers:
            headers[name] = value
    if answer.content_type is not None:
        headers["Content-Type"] = answer.content_type
    if not answer.body:
        return web.Response(status=answer.status, headers=headers)
    return web.Response(status=answer.status, body=answer.body, headers=headers)


ROUTES: list[web.RouteDef] = [
    web.route("*", "/api/v1/web/{namespace}/{package}/{action}{rest:(?:/.*)?}", web_action),
    *apis.ROUTES,
]
