"""API errors and their mapping to HTTP, in one place.

Handlers raise; they never build error bodies. The middleware here turns every exception into OpenWhisk's error body
`{"error": <message>, "code": <transaction id>}` with the status found by walking the exception's class hierarchy
against `STATUS_BY_ERROR`. Unexpected exceptions become 500 with a generic message; their traceback goes to the log,
never to the client.

    ApiError (status on the class)
     ├── BadRequest 400        ├── Conflict 409
     ├── Unauthorized 401      ├── PayloadTooLarge 413
     ├── Forbidden 403         ├── TooManyRequests 429
     ├── NotFound 404          └── ServiceUnavailable 503
     └── MethodNotAllowed 405
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web
from pydantic import ValidationError

from controller import messages
from controller.balancer import NoInvokers
from whisk import logs
from whisk.bus import BusError
from whisk.entities.names import InvalidName
from whisk.ids import new_transaction_id
from whisk.store import Conflict as StoreConflict
from whisk.store import NotFound as StoreNotFound
from whisk.store import Unavailable as StoreUnavailable

log = logging.getLogger(__name__)

TRANSACTION_HEADER = "X-Request-ID"


class ApiError(Exception):
    status = 500

    def __init__(self, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.headers = headers or {}


class BadRequest(ApiError):
    status = 400


class Unauthorized(ApiError):
    status = 401


class Forbidden(ApiError):
    status = 403


class NotFound(ApiError):
    status = 404


class MethodNotAllowed(ApiError):
    status = 405


class Conflict(ApiError):
    status = 409


class PayloadTooLarge(ApiError):
    status = 413


class TooManyRequests(ApiError):
    status = 429


class ServiceUnavailable(ApiError):
    status = 503


#: Exceptions from below the API, by class: (status, message). The most specific class in an MRO wins.
STATUS_BY_ERROR: dict[type[BaseException], tuple[int, str]] = {
    StoreNotFound: (404, messages.NOT_FOUND),
    StoreConflict: (409, messages.CONCURRENT_MODIFICATION),
    StoreUnavailable: (503, messages.STORE_UNAVAILABLE),
    InvalidName: (400, messages.ILLEGAL_NAME),
    NoInvokers: (503, messages.NO_INVOKERS),
    BusError: (503, messages.SERVICE_UNAVAILABLE),
}

_HTTP_MESSAGES = {
    404: messages.NOT_FOUND,
    405: messages.METHOD_NOT_ALLOWED,
    401: messages.AUTH_REQUIRED,
}


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    tid = logs.transaction_id.get()
    response = web.json_response({"error": message, "code": tid}, status=status, headers=headers)
    response.headers[TRANSACTION_HEADER] = tid
    return response


def mapped_status(exc: BaseException) -> tuple[int, str] | None:
    """The (status, message) an API error or an error from below the API answers with; None when unknown."""
    if isinstance(exc, ApiError):
        return exc.status, exc.message
    for cls in type(exc).__mro__:
        if cls in STATUS_BY_ERROR:
            return STATUS_BY_ERROR[cls]
    return None


def _validation_message(exc: ValidationError) -> str:
    details = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error["loc"])
        text = error["msg"].removeprefix("Value error, ")
        details.append(f"{where}: {text}" if where else text)
    return messages.MALFORMED.format(detail="; ".join(details))


@web.middleware
async def error_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    tid = request.headers.get(TRANSACTION_HEADER) or new_transaction_id()
    logs.transaction_id.set(tid)
    try:
        response = await handler(request)
    except ApiError as exc:
        return error_response(exc.status, exc.message, exc.headers)
    except ValidationError as exc:
        return error_response(400, _validation_message(exc))
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        if exc.status == 413:
            return error_response(413, exc.text or "Request entity too large")
        kept = {k: v for k, v in exc.headers.items() if k.lower() in ("allow", "www-authenticate")}
        return error_response(exc.status, _HTTP_MESSAGES.get(exc.status, exc.reason), kept)
    except Exception as exc:
        mapped = mapped_status(exc)
        if mapped is None:
            log.exception("unhandled error on %s %s", request.method, request.path)
            return error_response(500, messages.INTERNAL_ERROR)
        if mapped[0] >= 500:
            log.warning("%s on %s %s: %s", type(exc).__name__, request.method, request.path, exc)
        return error_response(*mapped)
    response.headers.setdefault(TRANSACTION_HEADER, tid)
    return response
