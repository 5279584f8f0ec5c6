"""A small HTTP client for OpenWhisk's REST API (stdlib `http.client`), handling responses like wsk's Go client.

- Base URL `{apihost}/api/{version}/`; basic auth from `AUTH` (`uuid:key`); `User-Agent: pywsk`; JSON bodies.
- A 2xx response returns its parsed JSON body.
- An error response raises WskError with exit code `status - 256`: `{"error", "code"}` bodies read
  `<error> (code <code>)`; a 502 without `code` is an application error (the body is the activation record or the
  result of a blocking invoke) and carries the parsed body; other bodies read
  `The connection failed, or timed out. (HTTP status code N)`; an empty body reads
  `Command failed due to an HTTP failure`.
- A 202 on a blocking invoke raises a "timed out" WskError with exit code 202.
- A network failure raises WskError with exit code 3.
"""

from __future__ import annotations

import base64
import json
import socket
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO
from urllib.parse import urlencode, urlsplit

from pywsk.config import Properties, base_url
from pywsk.errors import (
    EXIT_CODE_ERR_GENERAL,
    EXIT_CODE_ERR_NETWORK,
    EXIT_CODE_ERR_USAGE,
    EXIT_CODE_TIMED_OUT,
    WskError,
    http_exit_code,
)
from pywsk.names import quote_path

USER_AGENT = "pywsk"
HTTP_TIMEOUT_SECONDS = 180.0
VERBOSE_BODY_LIMIT = 1000


@dataclass
class Response:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


def api_host_error(apihost: str) -> WskError | None:
    """wsk's check before any request: an API host must be set."""
    if not apihost.strip():
        return WskError(
            "The API host is not valid: An API host must be provided.", EXIT_CODE_ERR_GENERAL, display_usage=True
        )
    return None


def _describe_network_error(exc: BaseException, host: str, port: int) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return f"dial tcp {host}:{port}: connect: connection refused"
    if isinstance(exc, socket.gaierror):
        return f"dial tcp: lookup {host}: no such host"
    if isinstance(exc, TimeoutError):
        return "i/o timeout"
    text = str(exc) or type(exc).__name__
    return text


def _value_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


class Client:
    """Sends requests for one command."""

    def __init__(
        self,
        props: Properties,
        *,
        insecure: bool = False,
        verbose: bool = False,
        debug: bool = False,
        out: TextIO | None = None,
        err: TextIO | None = None,
    ) -> None:
        self.props = props
        self.insecure = insecure
        self.verbose = verbose or debug
        self.debug = debug
        self.out = out
        self.err = err

    # -- URLs -------------------------------------------------------------------------------------------------

    @property
    def api_base(self) -> str:
        """`{scheme://host}/api/{version}`."""
        return f"{base_url(self.props.apihost)}/api/{self.props.apiversion or 'v1'}"

    # -- requests ---------------------------------------------------------------------------------------------

    def entity(
        self,
        method: str,
        namespace: str,
        route: str,
        *,
        query: Sequence[tuple[str, str]] = (),
        body: Any = None,
        blocking: bool = False,
    ) -> Response:
        """A request under `namespaces/{namespace}/`; `route` is already URL-encoded (e.g. `actions/hello`)."""
        path = f"namespaces/{quote_path(namespace)}/{route}"
        return self.request(method, path, query=query, body=body, blocking=blocking, route=route)

    def request(
        self,
        method: str,
        path: str,
        *,
        query: Sequence[tuple[str, str]] = (),
        body: Any = None,
        blocking: bool = False,
        route: str | None = None,
        auth: bool = True,
        absolute: bool = False,
    ) -> Response:
        """Send one request to `{api_base}/{path}` (or `path` itself when `absolute`) and check the response."""
        qs = urlencode(list(query)) if query else ""
        shown_route = (route or "") + (f"?{qs}" if qs and route is not None else "")
        headers = {"User-Agent": USER_AGENT}
        if auth:
            if not self.props.auth:
                where = f" '{shown_route}'" if route else ""
                raise WskError(
                    f"Unable to create HTTP request for {method}{where}: Unable to add the HTTP authentication header: "
                    "Authorization key is not configured (--auth is required)",
                    EXIT_CODE_ERR_USAGE,
                    display_usage=True,
                )
            token = base64.b64encode(self.props.auth.encode("utf-8")).decode("ascii")
            headers["Authorization"] = f"Basic {token}"
        data: bytes | None = None
        if body is not None:
            data = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
            headers["Content-Type"] = "application/json"
        url = path if absolute else f"{self.api_base}/{path}"
        if qs:
            url = f"{url}?{qs}"
        status, raw, resp_headers = self._send(method, url, data, headers)
        return self._check(status, raw, resp_headers, blocking)

    def _send(self, method: str, url: str, data: bytes | None, headers: dict[str, str]) -> tuple[int, bytes, dict]:
        import http.client

        parts = urlsplit(url)
        host = parts.hostname or ""
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError as exc:
            raise WskError(f"Invalid request URL '{url}': {exc}", EXIT_CODE_ERR_GENERAL) from exc
        target = parts.path or "/"
        if parts.query:
            target += "?" + parts.query
        if self.verbose:
            self._print_request(method, url, headers, data)
        conn: http.client.HTTPConnection
        if parts.scheme == "https":
            import ssl

            ctx = ssl.create_default_context()
            if self.insecure:
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
            if self.props.cert and self.props.key:
                try:
                    ctx.load_cert_chain(self.props.cert, self.props.key)
                except (OSError, ssl.SSLError) as exc:
                    raise WskError(f"Unable to load the client certificate: {exc}", EXIT_CODE_ERR_GENERAL) from exc
            conn = http.client.HTTPSConnection(host, port, timeout=HTTP_TIMEOUT_SECONDS, context=ctx)
        elif parts.scheme == "http":
            conn = http.client.HTTPConnection(host, port, timeout=HTTP_TIMEOUT_SECONDS)
        else:
            raise WskError(f"Invalid request URL '{url}': unsupported protocol scheme", EXIT_CODE_ERR_GENERAL)
        try:
            conn.request(method, target, body=data, headers=headers)
            resp = conn.getresponse()
            raw = resp.read()
            status = resp.status
            resp_headers = {k.lower(): v for k, v in resp.getheaders()}
        except (OSError, http.client.HTTPException) as exc:
            reason = _describe_network_error(exc, host, port)
            raise WskError(f'{method.capitalize()} "{url}": {reason}', EXIT_CODE_ERR_NETWORK) from exc
        finally:
            conn.close()
        if self.verbose:
            self._print_response(status, resp_headers, raw)
        return status, raw, resp_headers

    @staticmethod
    def _check(status: int, raw: bytes, headers: dict[str, str], blocking: bool) -> Response:
        parsed: Any = None
        if raw:
            try:
                parsed = json.loads(raw.decode("utf-8", errors="replace"))
            except ValueError:
                parsed = None
        if not 200 <= status <= 299:
            code = http_exit_code(status)
            if not raw:
                raise WskError("Command failed due to an HTTP failure", code)
            if isinstance(parsed, dict):
                if parsed.get("code") is None and status == 502:
                    response = parsed.get("response")
                    if isinstance(response, dict) and response.get("status") is not None:
                        result = response.get("result")
                        raise WskError(
                            f"The following application error was received: {_value_text(result)}",
                            code,
                            display_msg=False,
                            application_error=True,
                            body=parsed,
                        )
                    if parsed.get("error") is not None:
                        raise WskError(
                            _value_text(parsed["error"]),
                            code,
                            display_msg=False,
                            application_error=True,
                            body=parsed,
                        )
                elif parsed.get("error") is not None:
                    message = _value_text(parsed["error"])
                    if parsed.get("code") is not None:
                        message = f"{message} (code {_value_text(parsed['code'])})"
                    raise WskError(message, code, body=parsed)
            raise WskError(f"The connection failed, or timed out. (HTTP status code {status})", code)
        if blocking and status == 202:
            raise WskError(
                "Request accepted, but processing not completed yet.",
                EXIT_CODE_TIMED_OUT,
                display_msg=False,
                timed_out=True,
                body=parsed,
            )
        return Response(status, parsed, headers)

    # -- verbose output (like wsk -v) ---------------------------------------------------------------------------

    def _print_request(self, method: str, url: str, headers: dict[str, str], data: bytes | None) -> None:
        out = self.out
        if out is None:
            return
        out.write("REQUEST:\n")
        out.write(f"[{method}]\t{url}\n")
        out.write("Req Headers\n")
        out.write(json.dumps({k: [v] for k, v in sorted(headers.items())}, indent=4) + "\n")
        if data is not None:
            out.write("Req Body\n")
            text = data.decode("utf-8", errors="replace")
            if not self.debug and len(text) > VERBOSE_BODY_LIMIT:
                text = text[:VERBOSE_BODY_LIMIT] + "..."
            out.write(text + "\n")

    def _print_response(self, status: int, headers: dict[str, str], raw: bytes) -> None:
        out = self.out
        if out is None:
            return
        out.write(f"RESPONSE:Got response with code {status}\n")
        out.write("Resp Headers\n")
        out.write(json.dumps({k: [v] for k, v in sorted(headers.items())}, indent=4) + "\n")
        out.write(f"Response body size is {len(raw)} bytes\n")
        text = raw.decode("utf-8", errors="replace")
        if not self.debug and len(text) > VERBOSE_BODY_LIMIT:
            text = text[:VERBOSE_BODY_LIMIT] + "..."
        out.write(f"Response body received:\n{text}\n")
