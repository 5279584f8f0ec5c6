"""Reading requests: JSON bodies within a size limit, and typed query parameters with OpenWhisk's errors."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from controller import messages
from controller.errors import BadRequest, PayloadTooLarge

_TRUE = {"true", "yes", "1", "on"}
_FALSE = {"false", "no", "0", "off", ""}


async def read_json(request: web.Request, max_bytes: int) -> Any:
    """The request body as JSON (None when empty); 413 past `max_bytes`, 400 when malformed."""
    if request.content_length is not None and request.content_length > max_bytes:
        raise PayloadTooLarge(messages.PAYLOAD_TOO_LARGE.format(size=request.content_length, allowed=max_bytes))
    body = bytearray()
    async for chunk in request.content.iter_chunked(64 * 1024):
        body += chunk
        if len(body) > max_bytes:
            raise PayloadTooLarge(messages.PAYLOAD_TOO_LARGE.format(size=len(body), allowed=max_bytes))
    if not body.strip():
        return None
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(messages.MALFORMED.format(detail=str(exc))) from None


async def read_json_object(request: web.Request, max_bytes: int) -> dict[str, Any]:
    """The body as a JSON object; an empty body is `{}`."""
    value = await read_json(request, max_bytes)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadRequest(messages.PAYLOAD_NOT_OBJECT)
    return value


def bool_param(request: web.Request, name: str, default: bool = False) -> bool:
    raw = request.query.get(name)
    if raw is None:
        return default
    lowered = raw.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise BadRequest(messages.NOT_A_BOOLEAN.format(value=raw, name=name))


def int_param(request: web.Request, name: str) -> int | None:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError:
        raise BadRequest(messages.NOT_AN_INTEGER.format(value=raw, name=name)) from None


#: list defaults (OpenWhisk `whisk.query-limit`)
DEFAULT_LIST_LIMIT = 30
MAX_LIST_LIMIT = 200


def list_window(request: web.Request, collection: str) -> tuple[int, int]:
    """`(limit, skip)` from the query, OpenWhisk's defaults and ranges; `limit=0` means the maximum."""
    limit = int_param(request, "limit")
    skip = int_param(request, "skip") or 0
    if limit is None:
        limit = DEFAULT_LIST_LIMIT
    if limit < 0 or limit > MAX_LIST_LIMIT:
        raise BadRequest(messages.LIST_LIMIT.format(value=limit, max=MAX_LIST_LIMIT, collection=collection))
    if skip < 0:
        raise BadRequest(messages.LIST_SKIP.format(value=skip))
    return (limit or MAX_LIST_LIMIT), skip
