#!/usr/bin/env python3
"""pywhisk action runtime proxy for Python actions.

Speaks OpenWhisk's action container protocol (POST /init, POST /run) over HTTP/1.1 on a TCP port
or a Unix socket. Standard library only: this file is the whole runtime.

    python3 proxy.py [--port N | --socket PATH]      (default: TCP 0.0.0.0:8080)

The action runs in the main thread of this process, one request at a time. A small
selector loop serves any number of keep-alive connections without threads, so actions
may use signals and may call asyncio.run() themselves.
"""

from __future__ import annotations

import json
import os
import selectors
import socket
import sys
import types
from collections.abc import Callable
from typing import Any

SENTINEL = "XXX_THE_END_OF_A_WHISK_ACTIVATION_XXX\n"
DEFAULT_PORT = 8080
MAX_HEAD = 64 * 1024
MAX_BODY = 64 * 1024 * 1024
RECV_SIZE = 256 * 1024
MODULE_NAME = "main__"

REASONS = {
    100: "Continue",
    200: "OK",
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    413: "Payload Too Large",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    502: "Bad Gateway",
}

Reply = tuple[int, Any]


# --------------------------------------------------------------------------- the action


class InitError(Exception):
    """An /init failure whose message is shown to the user as is."""


def _env_value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _end_activation() -> None:
    """Flush the action's output, then mark the end of its logs on both streams."""
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):
            pass
    for stream in (sys.__stdout__, sys.__stderr__):
        try:
            if stream is not None:
                stream.write(SENTINEL)
                stream.flush()
        except (OSError, ValueError):
            pass


def _print_exception(exc: BaseException, skip_frames: int = 0) -> None:
    import traceback

    tb = exc.__traceback__
    for _ in range(skip_frames):
        if tb is not None and tb.tb_next is not None:
            tb = tb.tb_next
    traceback.print_exception(type(exc), exc, tb, file=sys.stderr)


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class Action:
    def __init__(self) -> None:
        self.state = "new"  # new -> ready | failed; never back
        self.main: Callable[[Any], Any] | None = None
        self.loop: Any = None  # asyncio loop, created on the first async result and kept

    # -- /init

    def init(self, payload: dict[str, Any]) -> Reply:
        if self.state != "new":
            return 403, {"error": "Cannot initialize the action more than once."}
        value = payload.get("value")
        if not isinstance(value, dict):
            value = {}
        code = value.get("code")
        if not isinstance(code, str) or not code.strip():
            return 403, {"error": "Missing main/no code to execute."}
        main_name = value.get("main")
        if not isinstance(main_name, str) or not main_name:
            main_name = "main"

        self.state = "failed"  # whatever happens next, a second /init is refused
        try:
            env = value.get("env")
            if isinstance(env, dict):
                for key, val in env.items():
                    if val is not None:
                        try:
                            os.environ[str(key)] = _env_value(val)
                        except ValueError as exc:  # e.g. an embedded NUL
                            raise InitError(f"Invalid environment variable {key!r}: {exc}") from None
            if value.get("binary") is True:
                module = self._load_archive(code)
            else:
                module = self._load_source(code)
            self.main = self._lookup(module, main_name)
        except Exception as exc:
            if isinstance(exc, InitError):
                message, detail = str(exc), exc.__cause__
            else:
                message, detail = f"Initialization has failed due to: {_describe(exc)}", exc
            if detail is not None:
                _print_exception(detail)
            else:
                print(f"Initialization failed: {message}", file=sys.stderr)
            _end_activation()
            return 502, {"error": message}
        self.state = "ready"
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        return 200, {"ok": True}

    @staticmethod
    def _execute(module: types.ModuleType, loader: Callable[[], None]) -> types.ModuleType:
        sys.modules[MODULE_NAME] = module
        try:
            loader()
        except Exception as exc:
            sys.modules.pop(MODULE_NAME, None)
            raise InitError(f"Initialization has failed due to: {_describe(exc)}") from exc
        return module

    def _load_source(self, code: str) -> types.ModuleType:
        import linecache

        filename = f"{MODULE_NAME}.py"
        # Lets tracebacks show the action's source lines (mtime None: never invalidated).
        linecache.cache[filename] = (len(code), None, code.splitlines(keepends=True), filename)
        module = types.ModuleType(MODULE_NAME)
        module.__file__ = filename

        def load() -> None:
            exec(compile(code, filename, "exec"), module.__dict__)

        return self._execute(module, load)

    def _load_archive(self, code: str) -> types.ModuleType:
        import base64
        import binascii
        import glob
        import importlib.util
        import io
        import site
        import tempfile
        import zipfile

        try:
            data = base64.b64decode(code, validate=False)
            archive = zipfile.ZipFile(io.BytesIO(data))
        except (binascii.Error, ValueError, zipfile.BadZipFile) as exc:
            raise InitError(f"Invalid action archive: {exc}") from None
        root = tempfile.mkdtemp(prefix="action-")
        try:
            with archive:
                for info in archive.infolist():
                    target = archive.extract(info, root)
                    mode = (info.external_attr >> 16) & 0o777
                    if mode & 0o111 and not info.is_dir():
                        os.chmod(target, mode | 0o400)
        except (OSError, ValueError, RuntimeError, zipfile.BadZipFile, EOFError) as exc:
            raise InitError(f"Invalid action archive: {exc}") from None
        entry = os.path.join(root, "__main__.py")
        if not os.path.isfile(entry):
            raise InitError("Zipped actions must contain __main__.py at the root.")

        extra = [root]
        before = list(sys.path)
        for site_dir in sorted(glob.glob(os.path.join(root, "virtualenv", "lib", "python3*", "site-packages"))):
            site.addsitedir(site_dir)  # also honours .pth files
        extra += [p for p in sys.path if p not in before]
        sys.path[:] = extra + [p for p in before if p not in extra]
        os.chdir(root)

        spec = importlib.util.spec_from_file_location(MODULE_NAME, entry)
        if spec is None or spec.loader is None:
            raise InitError("Cannot load __main__.py from the action archive.")
        module = importlib.util.module_from_spec(spec)
        loader = spec.loader
        return self._execute(module, lambda: loader.exec_module(module))

    @staticmethod
    def _lookup(module: types.ModuleType, main_name: str) -> Callable[[Any], Any]:
        target: Any = module
        for part in main_name.split("."):
            if not hasattr(target, part):
                raise InitError(f"The action has no function named '{main_name}'.")
            target = getattr(target, part)
        if not callable(target):
            raise InitError(f"Action entrypoint '{main_name}' is not a function.")
        return target

    # -- /run

    def run(self, payload: dict[str, Any]) -> Reply:
        if self.state != "ready" or self.main is None:
            return 403, {"error": "Cannot run before the action is initialized."}
        for key, val in payload.items():
            if key == "value":
                continue
            name = "__OW_" + str(key).upper()
            try:
                if val is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = _env_value(val)
            except ValueError:  # not representable in the environment (e.g. an embedded NUL)
                os.environ.pop(name, None)
        try:
            return self._invoke(payload.get("value", {}))
        finally:
            _end_activation()

    def _invoke(self, value: Any) -> Reply:
        try:
            result = self.main(value)  # type: ignore[misc]
            if not isinstance(result, (dict, list)) and hasattr(result, "__await__"):
                result = self._await(result)
        except Exception as exc:
            _print_exception(exc, skip_frames=1)
            return 502, {"error": f"An error has occurred: {_describe(exc)}"}
        if not isinstance(result, (dict, list)):
            return 502, {"error": "The action did not return a dictionary or array."}
        try:
            return 200, json.dumps(result, allow_nan=False).encode()
        except (TypeError, ValueError, RecursionError) as exc:
            print(f"Result is not JSON serializable: {exc}", file=sys.stderr)
            return 502, {"error": f"The action returned a result that is not JSON serializable: {exc}"}

    def _await(self, awaitable: Any) -> Any:
        import asyncio

        if self.loop is None or self.loop.is_closed():
            self.loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self.loop)

        async def wait() -> Any:
            return await awaitable

        return self.loop.run_until_complete(wait())


# --------------------------------------------------------------------------- HTTP/1.1


class HttpError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class Request:
    __slots__ = ("body", "headers", "keep_alive", "method", "path")

    def __init__(self, method: str, path: str, headers: dict[str, str], body: bytes, keep_alive: bool) -> None:
        self.method = method
        self.path = path
        self.headers = headers
        self.body = body
        self.keep_alive = keep_alive


def _dechunk(buf: bytearray, start: int) -> tuple[bytes, int] | None:
    """Decode a chunked body starting at buf[start]; None while it is incomplete."""
    out = bytearray()
    pos = start
    while True:
        eol = buf.find(b"\r\n", pos)
        if eol < 0:
            if len(buf) - pos > 1024:
                raise HttpError(400, "Malformed chunk header")
            return None
        size_text = bytes(buf[pos:eol]).split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            raise HttpError(400, "Malformed chunk header") from None
        pos = eol + 2
        if size == 0:
            # Skip trailer fields up to the empty line.
            while True:
                eol = buf.find(b"\r\n", pos)
                if eol < 0:
                    return None
                if eol == pos:
                    return bytes(out), eol + 2
                pos = eol + 2
        if len(out) + size > MAX_BODY:
            raise HttpError(413, "Request body too large")
        if len(buf) < pos + size + 2:
            return None
        out += buf[pos : pos + size]
        pos += size + 2


class Connection:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = bytearray()
        self.sent_continue = False
        self.chunked_seen = 0  # buffer length at the last incomplete chunked-body attempt

    def next_request(self) -> Request | None:
        """Parse one complete request off the buffer, or None if more bytes are needed."""
        buf = self.buf
        while buf.startswith(b"\r\n"):  # tolerated before a request line (RFC 9112 2.2)
            del buf[:2]
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            if len(buf) > MAX_HEAD:
                raise HttpError(431, "Request header too large")
            return None
        lines = bytes(buf[:end]).decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            raise HttpError(400, "Malformed request line")
        method, target, version = parts
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, sep, val = line.partition(":")
            if not sep or not name or name != name.strip():
                raise HttpError(400, "Malformed header line")
            name = name.lower()
            headers[name] = f"{headers[name]}, {val.strip()}" if name in headers else val.strip()

        start = end + 4
        if "chunked" in headers.get("transfer-encoding", "").lower():
            # A chunked body ends with an empty line: decode only once one may have arrived.
            if self.chunked_seen and buf.find(b"\r\n\r\n", max(start, self.chunked_seen - 3)) < 0:
                self.chunked_seen = len(buf)
                return None
            decoded = _dechunk(buf, start)
            if decoded is None:
                self.chunked_seen = len(buf)
                self._maybe_continue(headers)
                return None
            body, consumed = decoded
        else:
            try:
                length = int(headers.get("content-length", "0"))
            except ValueError:
                raise HttpError(400, "Invalid Content-Length") from None
            if length < 0:
                raise HttpError(400, "Invalid Content-Length")
            if length > MAX_BODY:
                raise HttpError(413, "Request body too large")
            if len(buf) < start + length:
                self._maybe_continue(headers)
                return None
            body = bytes(buf[start : start + length])
            consumed = start + length
        del buf[:consumed]
        self.sent_continue = False
        self.chunked_seen = 0

        tokens = {t.strip().lower() for t in headers.get("connection", "").split(",")}
        keep_alive = "keep-alive" in tokens if version == "HTTP/1.0" else "close" not in tokens
        return Request(method, target.split("?", 1)[0], headers, body, keep_alive)

    def _maybe_continue(self, headers: dict[str, str]) -> None:
        if not self.sent_continue and headers.get("expect", "").lower() == "100-continue":
            self.sent_continue = True
            self.sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")

    def respond(self, status: int, payload: Any, keep_alive: bool, head_only: bool = False, allow: str = "") -> None:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        head = (
            f"HTTP/1.1 {status} {REASONS.get(status, 'Unknown')}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        )
        if allow:
            head += f"Allow: {allow}\r\n"
        if not keep_alive:
            head += "Connection: close\r\n"
        self.sock.sendall(head.encode() + b"\r\n" + (b"" if head_only else body))


ROUTES = ("/init", "/run")


def _dispatch(action: Action, request: Request) -> tuple[int, Any, str]:
    if request.path not in ROUTES:
        return 404, {"error": f"The requested resource {request.path} does not exist."}, ""
    if request.method != "POST":
        return 405, {"error": f"Method {request.method} is not allowed on {request.path}."}, "POST"
    try:
        payload = json.loads(request.body)
    except (ValueError, UnicodeDecodeError) as exc:
        return 400, {"error": f"The request body is not valid JSON: {exc}"}, ""
    if not isinstance(payload, dict):
        return 400, {"error": "The request body must be a JSON object."}, ""
    status, reply = action.init(payload) if request.path == "/init" else action.run(payload)
    return status, reply, ""


def _handle_readable(action: Action, conn: Connection) -> bool:
    """Serve what arrived on conn; False once the connection is done."""
    try:
        data = conn.sock.recv(RECV_SIZE)
    except (ConnectionError, TimeoutError, OSError):
        return False
    if not data:
        return False
    conn.buf += data
    try:
        while True:
            try:
                request = conn.next_request()
            except HttpError as exc:
                conn.respond(exc.status, {"error": str(exc)}, keep_alive=False)
                return False
            if request is None:
                return True
            try:
                status, reply, allow = _dispatch(action, request)
            except Exception as exc:  # a proxy bug must not take the container down
                _print_exception(exc)
                status, reply, allow = 500, {"error": f"Internal proxy error: {_describe(exc)}"}, ""
            conn.respond(status, reply, request.keep_alive, head_only=request.method == "HEAD", allow=allow)
            if not request.keep_alive:
                return False
    except OSError:
        return False


def serve(listener: socket.socket, action: Action) -> None:
    is_tcp = listener.family in (socket.AF_INET, socket.AF_INET6)
    listener.setblocking(False)
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ, None)
    while True:
        for key, _ in selector.select():
            conn: Connection | None = key.data
            if conn is None:
                try:
                    sock, _addr = listener.accept()
                except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                    continue
                sock.setblocking(True)
                if is_tcp:
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                selector.register(sock, selectors.EVENT_READ, Connection(sock))
            elif not _handle_readable(action, conn):
                selector.unregister(conn.sock)
                conn.sock.close()


# --------------------------------------------------------------------------- command line

USAGE = "usage: proxy.py [--port N | --socket PATH]"


def _parse_args(argv: list[str]) -> tuple[int, str | None]:
    port, path = DEFAULT_PORT, None
    args = list(argv)
    while args:
        arg = args.pop(0)
        name, eq, val = arg.partition("=")
        if name in ("-h", "--help"):
            print(USAGE)
            sys.exit(0)
        if name not in ("--port", "--socket"):
            sys.exit(f"{USAGE}\nunknown argument: {arg}")
        if not eq:
            if not args:
                sys.exit(f"{USAGE}\n{name} needs a value")
            val = args.pop(0)
        if name == "--socket":
            path = val
        else:
            try:
                port = int(val)
            except ValueError:
                sys.exit(f"{USAGE}\ninvalid port: {val}")
    return port, path


def _listen(port: int, path: str | None) -> socket.socket:
    if path is not None:
        import stat

        try:
            if stat.S_ISSOCK(os.stat(path).st_mode):
                os.unlink(path)  # stale socket from an earlier run
        except FileNotFoundError:
            pass
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(path)
    else:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("0.0.0.0", port))
    listener.listen(128)
    return listener


def main(argv: list[str]) -> None:
    port, path = _parse_args(argv)
    try:
        listener = _listen(port, path)
    except OSError as exc:
        sys.exit(f"proxy: cannot listen on {path or port}: {exc}")
    try:
        serve(listener, Action())
    except KeyboardInterrupt:
        pass
    finally:
        listener.close()


if __name__ == "__main__":
    main(sys.argv[1:])
