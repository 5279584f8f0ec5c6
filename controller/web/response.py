"""From a web action's result to an HTTP response (OpenWhisk's `WebActions.scala` transcoders).

A successful result is projected along the path after the action's name (`/api/v1/web/ns/default/a.json/a/b`
answers `result["a"]["b"]`; the `.http` extension never projects, as its path is the action's `__ow_path`), an
application error's result is its `error` field; the value is then transcoded by the extension:

- `.http`: an object with optional `headers` (values string, number, boolean or an array of those, which repeats
  the header), `statusCode` (a number or numeric string) and `body`. A string body is sent as the declared
  `Content-Type` (default `text/html`): base64-decoded for binary types (and, as OpenWhisk keeps for old actions,
  for JSON types when the string is valid base64); any other JSON body is sent as `application/json`. No body, or
  an empty string, is 204 unless a status is given.
- `.json`: an object or array, as `application/json`.
- `.html`, `.svg`, `.text`: the `body` field (or `html`, `svg`, `text`) of an object, or the value itself; `.text`
  prints objects and arrays as indented JSON.

Bad shapes are `TranscodeError`s carrying OpenWhisk's status and message.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass, field
from typing import Any

from controller import messages
from controller.web.request import is_binary, is_json_family
from whisk.entities.activation import APPLICATION_ERROR, SUCCESS

_TOKEN = re.compile(r"\A[!#$%&'*+.^_`|~0-9A-Za-z-]+\Z")
_MEDIA_TYPE = re.compile(r"\A[!#$%&'*+.^_`|~0-9A-Za-z-]+/[!#$%&'*+.^_`|~0-9A-Za-z-]+\Z")
_BASE64 = re.compile(r"\A[A-Za-z0-9+/]*={0,2}\Z")
CONTENT_TYPE = "content-type"
HTML = "text/html; charset=UTF-8"
SVG = "image/svg+xml"
TEXT = "text/plain; charset=UTF-8"
JSON = "application/json"


CORS_ALLOW_METHODS = "OPTIONS, GET, DELETE, POST, PUT, HEAD, PATCH"
CORS_ALLOW_HEADERS = "Authorization, Origin, X-Requested-With, Content-Type, Accept, User-Agent"


def default_cors(requested_headers: str | None) -> dict[str, str]:
    """The CORS headers of web actions that do not answer OPTIONS themselves; `Access-Control-Allow-Headers`
    echoes the request's `Access-Control-Request-Headers` when it has one."""
    return {
        "Access-Control-Allow-Origin": "*",
        "Access-Control-Allow-Methods": CORS_ALLOW_METHODS,
        "Access-Control-Allow-Headers": requested_headers or CORS_ALLOW_HEADERS,
    }


class TranscodeError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class WebResponse:
    status: int
    #: header (name, value) pairs; a name may repeat
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    #: None for an empty body
    content_type: str | None = None


def project(value: Any, path: list[str]) -> Any:
    for name in path:
        if not isinstance(value, dict) or name not in value:
            raise TranscodeError(404, messages.PROPERTY_NOT_FOUND)
        value = value[name]
    return value


def projection_of(extension: str, rest: str) -> list[str]:
    """The result path a request asks for: the segments after the action, except for `.http`."""
    if extension == "http":
        return []
    return [segment for segment in rest.split("/") if segment]


def complete(extension: str, status_code: int, result: Any, projection: list[str]) -> WebResponse:
    """The response for an activation that ended with `status_code` and `result`."""
    if status_code == SUCCESS:
        value = project(result, projection)
    elif status_code == APPLICATION_ERROR:
        value = project(result, ["error"])
    else:
        raise TranscodeError(400, messages.ERROR_PROCESSING_REQUEST)
    return transcode(extension, value)


def transcode(extension: str, value: Any) -> WebResponse:
    if extension == "http":
        return as_http(value)
    if extension == "json":
        if isinstance(value, dict | list):
            return WebResponse(200, body=_compact(value), content_type=JSON)
        raise TranscodeError(400, messages.INVALID_MEDIA.format(media=JSON))
    if extension == "html":
        return _text_field(value, "html", HTML, "text/html")
    if extension == "svg":
        return _text_field(value, "svg", SVG, SVG)
    if extension == "text":
        return as_text(value)
    raise ValueError(f"unknown extension {extension!r}")


def _text_field(value: Any, name: str, content_type: str, media: str) -> WebResponse:
    if isinstance(value, dict):
        value = value.get("body", value.get(name))
    if isinstance(value, str):
        return WebResponse(200, body=value.encode(), content_type=content_type)
    raise TranscodeError(400, messages.INVALID_MEDIA.format(media=media))


def as_text(value: Any) -> WebResponse:
    if isinstance(value, dict):
        if "body" not in value and "text" not in value:
            raise TranscodeError(404, messages.PROPERTY_NOT_FOUND)
        value = value["body"] if "body" in value else value["text"]
    if isinstance(value, str):
        text = value
    elif isinstance(value, dict | list):
        text = json.dumps(value, indent=2)
    else:
        text = json.dumps(value)
    return WebResponse(200, body=text.encode(), content_type=TEXT)


def as_http(value: Any) -> WebResponse:
    invalid = TranscodeError(400, messages.INVALID_MEDIA.format(media="message/http"))
    if not isinstance(value, dict):
        raise invalid
    headers = _headers(value.get("headers"), invalid)
    status = _status(value.get("statusCode"), invalid)
    body = value.get("body")
    declared = next((v for k, v in headers if k.lower() == CONTENT_TYPE), None)
    headers = [(k, v) for k, v in headers if k.lower() != CONTENT_TYPE]
    if body is None or body == "":
        return WebResponse(status if status is not None else 204, headers)
    code = status if status is not None else 200
    if isinstance(body, str):
        content_type, data = _string_body(declared, body)
    else:
        content_type, data = _json_body(declared, body)
    return WebResponse(code, headers, data, content_type)


def _headers(raw: Any, invalid: TranscodeError) -> list[tuple[str, str]]:
    if raw is None:
        return []
    if not isinstance(raw, dict):
        raise invalid
    out: list[tuple[str, str]] = []
    for name, value in raw.items():
        if not _TOKEN.match(name):
            raise invalid
        for single in value if isinstance(value, list) else [value]:
            if isinstance(single, bool):
                out.append((name, "true" if single else "false"))
            elif isinstance(single, int | float | str):
                text = str(single)
                if "\r" in text or "\n" in text:
                    raise invalid
                out.append((name, text))
            else:
                raise invalid
    return out


def _status(raw: Any, invalid: TranscodeError) -> int | None:
    if raw is None:
        return None
    if isinstance(raw, bool):
        raise invalid
    if isinstance(raw, float) and raw.is_integer():
        raw = int(raw)
    if isinstance(raw, str):
        try:
            raw = int(raw.strip())
        except ValueError:
            raise invalid from None
    if not isinstance(raw, int) or not 100 <= raw <= 599:
        raise invalid
    return raw


def _media(declared: str | None, default: str) -> tuple[str, str]:
    """(media type, full content type) of a declared Content-Type."""
    if declared is None:
        return default, default
    media = declared.split(";", 1)[0].strip().lower()
    if not _MEDIA_TYPE.match(media):
        raise TranscodeError(400, messages.HTTP_UNKNOWN_CONTENT_TYPE)
    return media, declared.strip()


def _string_body(declared: str | None, body: str) -> tuple[str, bytes]:
    media, content_type = _media(declared, "text/html")
    if is_binary(media) or (is_json_family(media) and _is_base64(body)):
        try:
            data = base64.b64decode(body.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise TranscodeError(400, messages.HTTP_CONTENT_TYPE_ERROR) from None
        return content_type, data
    if "charset=" not in content_type.lower():
        content_type += "; charset=UTF-8"
    return content_type, body.encode()


def _json_body(declared: str | None, body: Any) -> tuple[str, bytes]:
    media, _ = _media(declared, JSON)
    if media == JSON:
        return JSON, _compact(body)
    if is_json_family(media):
        return f"{media}; charset=UTF-8", json.dumps(body, indent=2).encode()
    raise TranscodeError(400, messages.HTTP_CONTENT_TYPE_ERROR)


def _is_base64(text: str) -> bool:
    """OpenWhisk's test for code that is base64: non-empty, a multiple of four long, and decodable."""
    stripped = text.strip()
    return bool(stripped) and len(stripped) % 4 == 0 and bool(_BASE64.match(stripped))


def _compact(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
