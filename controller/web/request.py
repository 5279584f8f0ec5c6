"""From an HTTP request to a web action's arguments (OpenWhisk's `WebActions.scala` `Context`).

The action receives `__ow_method` (lowercase), `__ow_headers` (names lowercased), `__ow_path` (the path after the
action's name and extension) and, when the request carried valid credentials, `__ow_user`. Then:

- normally, the query parameters and a JSON object or form body become first-class arguments (body over query);
  any other body arrives as `__ow_body` (text, or base64 when the content type is binary or `application/json`);
  the request may not name an `__ow_` field or a final parameter (400);
- in raw mode (`raw-http`), `__ow_query` is the undecoded query string and `__ow_body` the body as above, with JSON
  base64-encoded too, and nothing else is merged.

Route (API gateway) path parameters are added last in both modes; they too may not name a final parameter.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from controller import messages

EXTENSIONS = ("http", "json", "html", "svg", "text")
DEFAULT_EXTENSION = "http"
METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})

OW_METHOD = "__ow_method"
OW_HEADERS = "__ow_headers"
OW_PATH = "__ow_path"
OW_USER = "__ow_user"
OW_QUERY = "__ow_query"
OW_BODY = "__ow_body"
RESERVED = frozenset({OW_METHOD, OW_HEADERS, OW_PATH, OW_USER, OW_QUERY, OW_BODY})

FORM = "application/x-www-form-urlencoded"
JSON = "application/json"
#: media types under `application/` that are text (everything else there is binary, as in Akka's registry)
_TEXT_APPLICATION = frozenset({
    JSON, FORM, "application/xml", "application/javascript", "application/x-javascript", "application/ecmascript",
    "application/graphql", "application/x-yaml", "application/yaml", "application/sql", "application/x-sh",
    "application/xhtml+xml", "application/ld+json",
})


class RequestRejected(Exception):
    """The request cannot become arguments: a status and OpenWhisk's message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class WebRequest:
    method: str
    #: header (name, value) pairs in the order received
    headers: list[tuple[str, str]]
    #: the path after the action's name and extension, `""` or starting with `/`
    path: str = ""
    #: the query string as sent, undecoded
    query: str = ""
    body: bytes = b""
    #: the media type of the body, lowercased, without parameters; `""` when none was sent
    media_type: str = ""
    #: parameters taken from a route's path template (`/users/{id}`)
    path_params: dict[str, str] = field(default_factory=dict)


def split_extension(segment: str) -> tuple[str, str]:
    """`("hello", "json")` for `hello.json`; a segment without a known extension is the name, served as `.http`."""
    for extension in EXTENSIONS:
        if segment.endswith("." + extension):
            return segment[: -len(extension) - 1], extension
    return segment, DEFAULT_EXTENSION


def media_type_of(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def is_json_family(media_type: str) -> bool:
    return media_type == JSON or media_type.endswith("+json")


def is_binary(media_type: str) -> bool:
    """Whether bodies of `media_type` are bytes rather than text: text is `text/*`, JSON and XML families, forms
    and a few scripting types; everything else (images, audio, octet streams, multipart, unknown types) is binary."""
    main, _, sub = media_type.partition("/")
    if main == "text":
        return False
    if main == "application":
        return not (media_type in _TEXT_APPLICATION or sub.endswith(("+json", "+xml")))
    if main == "image" and sub.endswith("+xml"):
        return False
    return True


def is_truthy(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.strip().lower() in ("true", "yes"))


def immutable_parameters(final: bool, parameters: dict[str, Any]) -> frozenset[str]:
    """The parameters a request may not override: with `final`, every parameter that has a value."""
    if not final:
        return frozenset()
    return frozenset(name for name, value in parameters.items() if value is not None)


def parse_query(query: str) -> dict[str, str]:
    """Query parameters as strings; a repeated name keeps its last value."""
    return dict(parse_qsl(query, keep_blank_values=True))


def decode_body(request: WebRequest, raw: bool) -> Any:
    """The body as the action sees it; None when there is none."""
    if not request.body:
        return None
    media = request.media_type or "application/octet-stream"
    if not raw and is_json_family(media):
        try:
            return json.loads(request.body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise RequestRejected(400, messages.MALFORMED.format(detail=str(exc))) from None
    if not raw and media == FORM:
        return parse_query(request.body.decode("utf-8", errors="replace"))
    if is_binary(media) or media == JSON:
        return base64.b64encode(request.body).decode("ascii")
    return request.body.decode("utf-8", errors="replace")


def action_arguments(
    request: WebRequest, *, raw: bool, user: str | None = None, immutable: frozenset[str] = frozenset()
) -> dict[str, Any]:
    """The arguments of a web action's activation (before the action's own parameters are merged under them)."""
    body = decode_body(request, raw)
    query = parse_query(request.query)
    if not raw:
        given = set(query) | (set(body) if isinstance(body, dict) else set())
        if given & (RESERVED | immutable):
            raise RequestRejected(400, messages.RESERVED_PARAMETERS)
    if set(request.path_params) & (RESERVED | immutable):
        raise RequestRejected(400, messages.RESERVED_PARAMETERS)
    args: dict[str, Any] = {
        OW_METHOD: request.method.lower(),
        OW_HEADERS: {name.lower(): value for name, value in request.headers},
        OW_PATH: request.path,
    }
    if user is not None:
        args[OW_USER] = user
    if raw:
        args[OW_QUERY] = request.query
        args[OW_BODY] = body if body is not None else ""
    else:
        args |= query
        if isinstance(body, dict):
            args |= body
        elif body is not None:
            args[OW_BODY] = body
    return args | request.path_params
