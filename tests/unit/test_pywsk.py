"""Unit tests of the `pywsk` CLI against a fake OpenWhisk REST server on a loopback port.

The CLI's `main([...])` runs in-process; the fake server records every request (method, raw path, query, headers,
JSON body) and answers canned OpenWhisk-shaped bodies. `WSK_CONFIG_FILE` always points into `tmp_path`.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from pywsk.__main__ import main
from pywsk.client import Client
from pywsk.config import Properties
from pywsk.output import go_duration, strip_timestamp, truncate

GUEST_AUTH = "23bc46b1-71f6-4ed5-8c54-816aa4f8c502:123zO3xZCLrMN6v2BKK1dXYFpXlPkccOFqm12CdAsMgRU4VrNZ9lyGVCGuMDGIwP"
ACT_ID = "3d8d1d9d1c3a4c7e8d1d9d1c3a4c7e8d"
ACT_ID2 = "9f2c1b7a0e6d4c3b8a9f2c1b7a0e6d4c"
USAGE = "Run 'pywsk --help' for usage.\n"
NOT_FOUND = "The requested resource does not exist. (code tid404)"


# -- fake server ----------------------------------------------------------------------------------------------------


@dataclass
class Recorded:
    method: str
    path: str  # raw, still percent-encoded
    query: dict[str, str]
    raw_query: str
    headers: dict[str, str]
    body: Any
    raw_body: bytes


@dataclass
class Canned:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


class FakeWhisk:
    """A tiny OpenWhisk look-alike: canned answers per (method, path); unknown routes answer 404."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.routes: dict[tuple[str, str], list[Canned]] = {}
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                fake.handle(self)

            do_GET = do_PUT = do_POST = do_DELETE = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    @property
    def apihost(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def on(self, method: str, path: str, status: int = 200, body: Any = None, **headers: str) -> None:
        """Answer `method path` with `status`/`body`; several calls for one route answer in turn (last repeats)."""
        self.routes.setdefault((method, path), []).append(Canned(status, body, headers))

    def handle(self, h: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(h.path)
        length = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(length) if length else b""
        with self.lock:
            self.requests.append(
                Recorded(
                    h.command,
                    parts.path,
                    dict(parse_qsl(parts.query, keep_blank_values=True)),
                    parts.query,
                    {k.lower(): v for k, v in h.headers.items()},
                    json.loads(raw) if raw else None,
                    raw,
                )
            )
            answers = self.routes.get((h.command, parts.path))
            if answers:
                canned = answers.pop(0) if len(answers) > 1 else answers[0]
            else:
                canned = Canned(404, {"error": "The requested resource does not exist.", "code": "tid404"})
        data = b"" if canned.body is None else json.dumps(canned.body).encode()
        h.send_response(canned.status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        for k, v in canned.headers.items():
            h.send_header(k.replace("_", "-"), v)
        h.end_headers()
        h.wfile.write(data)

    @property
    def last(self) -> Recorded:
        return self.requests[-1]


# -- fixtures -------------------------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def wskprops(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Never touch the real ~/.wskprops: point WSK_CONFIG_FILE (and HOME) into tmp_path, clear WHISK_* variables."""
    path = tmp_path / "wskprops"
    monkeypatch.setenv("WSK_CONFIG_FILE", str(path))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for name in ("WHISK_AUTH", "WHISK_APIHOST", "WHISK_NAMESPACE", "WHISK_APIVERSION"):
        monkeypatch.delenv(name, raising=False)
    return path


@pytest.fixture
def whisk(wskprops: Path) -> Iterator[FakeWhisk]:
    fake = FakeWhisk()
    fake.thread.start()
    wskprops.write_text(f"APIHOST={fake.apihost}\nAUTH={GUEST_AUTH}\n")
    try:
        yield fake
    finally:
        fake.server.shutdown()
        fake.server.server_close()
        fake.thread.join(timeout=5)


@pytest.fixture
def utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@dataclass
class Run:
    code: int
    out: str
    err: str


@pytest.fixture
def wsk(capsys: pytest.CaptureFixture[str]):
    def run(*args: str) -> Run:
        code = main(list(args))
        captured = capsys.readouterr()
        return Run(code, captured.out, captured.err)

    return run


def activation_record(**overrides: Any) -> dict[str, Any]:
    record = {
        "namespace": "guest",
        "name": "hello",
        "version": "0.0.1",
        "subject": "guest",
        "activationId": ACT_ID,
        "start": 1700000000000,
        "end": 1700000000012,
        "duration": 12,
        "publish": False,
        "response": {"status": "success", "success": True, "result": {"zeta": 1, "alpha": "a"}},
        "logs": ["2023-11-14T22:13:20.001Z    stdout: hello world"],
        "annotations": [
            {"key": "path", "value": "guest/hello"},
            {"key": "waitTime", "value": 7},
            {"key": "kind", "value": "python:3.11"},
            {"key": "limits", "value": {"timeout": 60000, "memory": 256, "logs": 10, "concurrency": 1}},
            {"key": "initTime", "value": 34},
        ],
    }
    record.update(overrides)
    return record


def basic(auth: str) -> str:
    return "Basic " + base64.b64encode(auth.encode()).decode()


# -- property -------------------------------------------------------------------------------------------------------


def test_property_set_writes_wskprops_and_keeps_other_lines(wsk, wskprops: Path) -> None:
    wskprops.write_text("# my settings\nNAMESPACE=guest\nAUTH=old:key\nFOO=bar\n")
    r = wsk("property", "set", "--apihost", "localhost:3233", "--auth", "new:key")
    assert r.code == 0, r.err
    assert r.out == (
        "ok: whisk auth set. Run 'pywsk property get --auth' to see the new value.\n"
        "ok: whisk API host set to localhost:3233\n"
    )
    assert r.err == ""
    assert wskprops.read_text() == "# my settings\nNAMESPACE=guest\nAUTH=new:key\nFOO=bar\nAPIHOST=localhost:3233\n"


def test_property_set_creates_file_owner_only(wsk, wskprops: Path) -> None:
    r = wsk("property", "set", "-u", "abc:def")
    assert r.code == 0
    assert wskprops.read_text() == "AUTH=abc:def\n"
    assert (wskprops.stat().st_mode & 0o777) == 0o600


def test_property_get_values_env_overrides_file(wsk, wskprops: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    wskprops.write_text("APIHOST=http://10.0.0.1:3233\nAUTH=a:b\n")
    assert wsk("property", "get", "--auth").out == "whisk auth\t\ta:b\n"
    r = wsk("property", "get", "--apihost", "--namespace", "--apiversion")
    assert r.code == 0
    assert r.out == "whisk API host\t\thttp://10.0.0.1:3233\nwhisk API version\tv1\nwhisk namespace\t\t_\n"
    monkeypatch.setenv("WHISK_AUTH", "env:key")
    assert wsk("property", "get", "--auth").out == "whisk auth\t\tenv:key\n"


def test_property_unset(wsk, wskprops: Path) -> None:
    wskprops.write_text("APIHOST=h\n# keep me\nAUTH=a:b\nNAMESPACE=guest\n")
    r = wsk("property", "unset", "--auth", "--namespace")
    assert r.code == 0
    assert r.out == "ok: whisk auth unset.\nok: whisk namespace unset; the default value of _ will be used.\n"
    assert wskprops.read_text() == "APIHOST=h\n# keep me\n"
    assert wsk("property", "get", "--auth").out == "whisk auth\t\t\n"


def test_property_get_all_reads_api_build(wsk, whisk: FakeWhisk) -> None:
    whisk.on("GET", "/api/v1", body={"build": "2024-01-01T00:00:00Z", "buildno": "abc123"})
    r = wsk("property", "get", "--all")
    assert r.code == 0, r.err
    assert r.out == (
        "client cert\t\t\n"
        "Client key\t\t\n"
        "CA certificate\t\t\n"
        f"whisk auth\t\t{GUEST_AUTH}\n"
        f"whisk API host\t\t{whisk.apihost}\n"
        "whisk API version\tv1\n"
        "whisk namespace\t\t_\n"
        "whisk CLI version\t0.1.0\n"
        "whisk API build\t\t2024-01-01T00:00:00Z\n"
        "whisk API build number\tabc123\n"
    )
    assert "authorization" not in whisk.last.headers


def test_property_get_all_requires_api_host(wsk) -> None:
    r = wsk("property", "get")
    assert r.code == 1
    assert r.err == "error: The API host is not valid: An API host must be provided.\n" + USAGE


def test_api_host_without_scheme_gets_https() -> None:
    assert Client(Properties(apihost="example.com:8443")).api_base == "https://example.com:8443/api/v1"
    assert Client(Properties(apihost="http://127.0.0.1:3233/")).api_base == "http://127.0.0.1:3233/api/v1"
    assert Client(Properties(apihost="https://h", apiversion="v2")).api_base == "https://h/api/v2"


def test_global_flags_override_wskprops(wsk, whisk: FakeWhisk, wskprops: Path) -> None:
    wskprops.write_text("APIHOST=http://127.0.0.1:1\nAUTH=wrong:key\n")
    whisk.on("GET", "/api/v1/namespaces", body=["guest"])
    r = wsk("namespace", "list", "--apihost", whisk.apihost, "-u", "x:y", "-i")
    assert r.code == 0, r.err
    assert whisk.last.headers["authorization"] == basic("x:y")


# -- action create / update -------------------------------------------------------------------------------------------


def test_action_create_python(wsk, whisk: FakeWhisk, tmp_path: Path) -> None:
    src = tmp_path / "hello.py"
    src.write_text("def main(args):\n    return {'greeting': 'hi'}\n")
    whisk.on("PUT", "/api/v1/namespaces/_/actions/hello", body={"name": "hello"})
    r = wsk("action", "create", "hello", str(src))
    assert (r.code, r.out, r.err) == (0, "ok: created action hello\n", "")
    req = whisk.last
    assert req.method == "PUT"
    assert req.raw_query == "overwrite=false"
    assert req.body == {"exec": {"kind": "python:default", "code": src.read_text()}}
    assert req.headers["authorization"] == basic(GUEST_AUTH)
    assert req.headers["user-agent"] == "pywsk"
    assert req.headers["content-type"] == "application/json"


def test_action_create_with_params_annotations_limits_and_web(wsk, whisk: FakeWhisk, tmp_path: Path) -> None:
    src = tmp_path / "hello.js"
    src.write_text("function main() { return {} }")
    pfile = tmp_path / "params.json"
    pfile.write_text('{"fromfile": {"deep": [1, 2]}, "count": 1}')
    afile = tmp_path / "annots.json"
    afile.write_text('{"description": "says hello"}')
    whisk.on("PUT", "/api/v1/namespaces/_/actions/hello", body={})
    r = wsk(
        "action", "create", "hello", str(src),
        "-p", "name", "World", "-p", "count", "5", "-p", "obj", '{"a": true}', "-P", str(pfile),
        "-a", "owner", "me", "-A", str(afile),
        "--kind", "nodejs:20", "--main", "handler",
        "-t", "3000", "-m", "128", "-l", "5", "-c", "2", "--web", "true",
    )  # fmt: skip
    assert r.code == 0, r.err
    assert whisk.last.body == {
        "exec": {"kind": "nodejs:20", "code": src.read_text(), "main": "handler"},
        "annotations": [
            {"key": "owner", "value": "me"},
            {"key": "description", "value": "says hello"},
            {"key": "web-export", "value": True},
            {"key": "raw-http", "value": False},
            {"key": "final", "value": True},
        ],
        "parameters": [
            {"key": "name", "value": "World"},
            {"key": "count", "value": 1},
            {"key": "obj", "value": {"a": True}},
            {"key": "fromfile", "value": {"deep": [1, 2]}},
        ],
        "limits": {"timeout": 3000, "memory": 128, "logs": 5, "concurrency": 2},
    }


def test_action_update_without_artifact(wsk, whisk: FakeWhisk) -> None:
    whisk.on("PUT", "/api/v1/namespaces/_/actions/hello", body={})
    r = wsk("action", "update", "hello", "-p", "x", "1", "--memory", "512")
    assert (r.code, r.out) == (0, "ok: updated action hello\n")
    assert whisk.last.raw_query == "overwrite=true"
    assert whisk.last.body == {"parameters": [{"key": "x", "value": 1}], "limits": {"memory": 512}}


def test_action_update_web_raw_keeps_existing_annotations(wsk, whisk: FakeWhisk) -> None:
    existing = {
        "namespace": "guest",
        "name": "hello",
        "annotations": [{"key": "exec", "value": "python:3.11"}, {"key": "web-export", "value": False}],
    }
    whisk.on("GET", "/api/v1/namespaces/_/actions/hello", body=existing)
    whisk.on("PUT", "/api/v1/namespaces/_/actions/hello", body={})
    r = wsk("action", "update", "hello", "--web", "raw")
    assert r.code == 0, r.err
    get, put = whisk.requests
    assert (get.method, get.raw_query) == ("GET", "code=false")
    assert put.body == {
        "annotations": [
            {"key": "exec", "value": "python:3.11"},
            {"key": "web-export", "value": True},
            {"key": "raw-http", "value": True},
            {"key": "final", "value": True},
        ]
    }


def test_action_create_zip_needs_kind_and_is_sent_base64(wsk, whisk: FakeWhisk, tmp_path: Path) -> None:
    archive = tmp_path / "bundle.zip"
    archive.write_bytes(b"PK\x03\x04binary\xff\x00")
    r = wsk("action", "create", "bundle", str(archive))
    assert r.code == 2
    assert r.err == (
        "error: Invalid argument(s). creating an action from a .zip artifact requires specifying the action kind "
        "explicitly\n" + USAGE
    )
    assert whisk.requests == []
    whisk.on("PUT", "/api/v1/namespaces/_/actions/bundle", body={})
    r = wsk("action", "create", "bundle", str(archive), "--kind", "python:3.11")
    assert r.code == 0, r.err
    assert whisk.last.body == {
        "exec": {"kind": "python:3.11", "code": base64.b64encode(archive.read_bytes()).decode(), "binary": True}
    }


def test_action_create_docker(wsk, whisk: FakeWhisk) -> None:
    whisk.on("PUT", "/api/v1/namespaces/_/actions/img", body={})
    r = wsk("action", "create", "img", "--docker", "openwhisk/example")
    assert r.code == 0, r.err
    assert whisk.last.body == {"exec": {"kind": "blackbox", "image": "openwhisk/example"}}
    r = wsk("action", "create", "img", "--docker", "x/y", "--kind", "python:3")
    assert r.code == 149
    assert r.err == "error: Invalid argument(s). Cannot specify both --kind and --docker at the same time.\n" + USAGE


def test_action_create_sequence(wsk, whisk: FakeWhisk) -> None:
    whisk.on("PUT", "/api/v1/namespaces/_/actions/seq", body={})
    assert wsk("action", "create", "seq", "--sequence", "a,pkg/b,/other/c").code == 0
    assert whisk.last.body == {"exec": {"kind": "sequence", "components": ["/_/a", "/_/pkg/b", "/other/c"]}}


def test_action_create_conflict(wsk, whisk: FakeWhisk, tmp_path: Path) -> None:
    src = tmp_path / "hello.py"
    src.write_text("x = 1\n")
    whisk.on("PUT", "/api/v1/namespaces/_/actions/hello", 409, {"error": "resource already exists", "code": "t409"})
    r = wsk("action", "create", "hello", str(src))
    assert (r.code, r.out) == (153, "")
    assert r.err == "error: Unable to create action 'hello': resource already exists (code t409)\n" + USAGE


NEED_ARTIFACT = "Invalid argument(s). An action name and code artifact are required."
NOT_QUALIFIED = "A valid qualified name must be specified."
BAD_PARAM = "Failed to parse arguments: The parameter arguments are invalid:"
NO_FILE = "is not a valid file or it does not exist"


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["action", "create"], 1, NEED_ARTIFACT),
        (["action", "create", "hello"], 2, NEED_ARTIFACT),
        (["action", "create", "a", "b", "c"], 1, NEED_ARTIFACT.replace("(s).", "(s): c.")),
        (["action", "update"], 1, "Invalid argument(s). An action name is required. A code artifact is optional."),
        (["action", "create", "x", "nope.py"], 2, f"Invalid argument(s). File 'nope.py' {NO_FILE}"),
        (["action", "create", "x", "-p", "k"], 1, f"{BAD_PARAM} Arguments for '-p' must be a key/value pair"),
        (["action", "create", "x", "-P", "no.json"], 2, f"Failed to parse arguments: File 'no.json' {NO_FILE}"),
        (["action", "invoke"], 1, "Invalid argument(s). An action name is required."),
        (["action", "get", "a", "b", "c"], 1, "Invalid argument(s): c. An action name is required."),
        (["action", "get", "hello", "nosuchfield"], 2, "Invalid field filter 'nosuchfield'."),
        (["action", "delete", "//x"], 1, f"'//x' is not a valid qualified name: {NOT_QUALIFIED}"),
    ],
)
def test_action_argument_errors(wsk, whisk: FakeWhisk, args: list[str], code: int, message: str) -> None:
    r = wsk(*args)
    assert (r.code, r.out) == (code, "")
    assert r.err == f"error: {message}\n" + USAGE
    assert whisk.requests == []


def test_action_create_unsupported_extension(wsk, whisk: FakeWhisk, tmp_path: Path) -> None:
    src = tmp_path / "notes.txt"
    src.write_text("hi")
    r = wsk("action", "create", "x", str(src))
    assert r.code == 2
    assert r.err == "error: Invalid argument(s). '.txt' is not a supported action runtime\n" + USAGE


def test_qualified_names_are_url_encoded(wsk, whisk: FakeWhisk) -> None:
    whisk.on("DELETE", "/api/v1/namespaces/ns/actions/pkg/hello", body={})
    whisk.on("DELETE", "/api/v1/namespaces/_/actions/my%20pkg/a%20b", body={})
    whisk.on("DELETE", "/api/v1/namespaces/ns/actions/a", body={})
    assert wsk("action", "delete", "/ns/pkg/hello").out == "ok: deleted action pkg/hello\n"
    assert wsk("action", "delete", "my pkg/a b").out == "ok: deleted action my pkg/a b\n"
    assert wsk("action", "delete", "/ns/a").out == "ok: deleted action a\n"
    assert wsk("action", "delete", "ns/pkg/hello").code == 0  # three parts read as /ns/pkg/hello
    assert [r.path for r in whisk.requests] == [
        "/api/v1/namespaces/ns/actions/pkg/hello",
        "/api/v1/namespaces/_/actions/my%20pkg/a%20b",
        "/api/v1/namespaces/ns/actions/a",
        "/api/v1/namespaces/ns/actions/pkg/hello",
    ]


def test_default_namespace_from_wskprops(wsk, whisk: FakeWhisk, wskprops: Path) -> None:
    wskprops.write_text(wskprops.read_text() + "NAMESPACE=guest\n")
    whisk.on("DELETE", "/api/v1/namespaces/guest/actions/hello", body={})
    assert wsk("action", "delete", "hello").code == 0


# -- action get / list / delete -------------------------------------------------------------------------------------

ACTION = {
    "updated": 1700000000000,
    "publish": False,
    "name": "hello",
    "namespace": "guest",
    "version": "0.0.1",
    "limits": {"memory": 256, "timeout": 60000, "logs": 10, "concurrency": 1},
    "exec": {"binary": False, "kind": "python:3.11"},
    "parameters": [{"key": "name", "value": {"z": 1, "a": 2}}],
    "annotations": [{"key": "provide-api-key", "value": False}, {"key": "exec", "value": "python:3.11"}],
}


def test_action_get_prints_struct_order(wsk, whisk: FakeWhisk) -> None:
    whisk.on("GET", "/api/v1/namespaces/_/actions/hello", body=ACTION)
    r = wsk("action", "get", "hello")
    assert r.code == 0, r.err
    assert whisk.last.raw_query == "code=false"
    header, body = r.out.split("\n", 1)
    assert header == "ok: got action hello"
    assert list(json.loads(body)) == [
        "namespace", "name", "version", "exec", "annotations", "parameters", "limits", "publish", "updated"
    ]  # fmt: skip
    assert body.startswith('{\n    "namespace": "guest",\n    "name": "hello",\n')
    assert '"exec": {\n        "kind": "python:3.11",\n        "binary": false\n    },' in body
    assert '"value": {\n                "a": 2,\n                "z": 1\n            }' in body
    assert '"limits": {\n        "timeout": 60000,\n        "memory": 256,\n        "logs": 10,' in body
    assert json.loads(body) == ACTION


def test_action_get_field_summary_and_url(wsk, whisk: FakeWhisk) -> None:
    web = dict(ACTION, annotations=[{"key": "web-export", "value": True}, {"key": "description", "value": ""}])
    whisk.on("GET", "/api/v1/namespaces/_/actions/hello", body=ACTION)
    whisk.on("GET", "/api/v1/namespaces/_/actions/pkg/web", body=dict(web, name="web", namespace="guest/pkg"))
    r = wsk("action", "get", "hello", "exec")
    exec_json = '{\n    "kind": "python:3.11",\n    "binary": false\n}\n'
    assert r.out == "ok: got action hello, displaying field exec\n" + exec_json
    r = wsk("action", "get", "hello", "--summary")
    assert r.out == "action /guest/hello: Returns a result based on parameter name\n   (parameters: *name)\n"
    r = wsk("action", "get", "pkg/web", "--url")
    assert r.out == f"ok: got action web\n{whisk.apihost}/api/v1/web/guest/pkg/web\n"
    r = wsk("action", "get", "hello", "-r")
    assert r.out == f"ok: got action hello\n{whisk.apihost}/api/v1/namespaces/guest/actions/hello\n"


def test_action_get_not_found(wsk, whisk: FakeWhisk) -> None:
    r = wsk("action", "get", "missing")
    assert (r.code, r.out) == (148, "")
    assert r.err == f"error: Unable to get action 'missing': {NOT_FOUND}\n" + USAGE


def test_action_list(wsk, whisk: FakeWhisk) -> None:
    rows = [
        {"namespace": "guest", "name": "hello", "publish": False, "annotations": [{"key": "exec", "value": "py:3"}]},
        {
            "namespace": "guest/pkg",
            "name": "a",
            "publish": True,
            "annotations": [{"key": "exec", "value": "nodejs:20"}],
        },
    ]
    whisk.on("GET", "/api/v1/namespaces/_/actions", body=rows)
    r = wsk("action", "list")
    assert r.code == 0, r.err
    assert whisk.last.raw_query == "limit=30&skip=0"
    assert r.out == (
        "actions\n"
        + "/guest/hello".ljust(70) + " private py:3\n"
        + "/guest/pkg/a".ljust(70) + " shared nodejs:20\n"
    )  # fmt: skip
    whisk.on("GET", "/api/v1/namespaces/guest/actions", body=[])
    r = wsk("action", "list", "/guest", "--limit", "5", "--skip", "2")
    assert r.out == "actions\n"
    assert whisk.last.raw_query == "limit=5&skip=2"


def test_action_delete_not_found(wsk, whisk: FakeWhisk) -> None:
    r = wsk("action", "delete", "gone")
    assert r.code == 148
    assert whisk.last.method == "DELETE"
    assert r.err == f"error: Unable to delete action 'gone': {NOT_FOUND}\n" + USAGE


# -- action invoke --------------------------------------------------------------------------------------------------


def test_invoke_non_blocking(wsk, whisk: FakeWhisk) -> None:
    whisk.on("POST", "/api/v1/namespaces/_/actions/hello", 202, {"activationId": ACT_ID})
    r = wsk("action", "invoke", "hello", "-p", "name", "Bob", "-p", "n", "3")
    assert (r.code, r.out, r.err) == (0, f"ok: invoked /_/hello with id {ACT_ID}\n", "")
    assert whisk.last.query == {"blocking": "false", "result": "false"}
    assert whisk.last.body == {"name": "Bob", "n": 3}
    wsk("action", "invoke", "/guest/pkg/hello")
    assert whisk.last.path == "/api/v1/namespaces/guest/actions/pkg/hello"


def test_invoke_sends_empty_object_without_params(wsk, whisk: FakeWhisk) -> None:
    whisk.on("POST", "/api/v1/namespaces/_/actions/hello", 202, {"activationId": ACT_ID})
    assert wsk("action", "invoke", "hello").code == 0
    assert whisk.last.raw_body == b"{}"


def test_invoke_blocking_prints_record(wsk, whisk: FakeWhisk) -> None:
    whisk.on("POST", "/api/v1/namespaces/_/actions/hello", 200, activation_record())
    r = wsk("action", "invoke", "hello", "--blocking")
    assert r.code == 0, r.err
    assert whisk.last.query == {"blocking": "true", "result": "false"}
    header, body = r.out.split("\n", 1)
    assert header == f"ok: invoked /_/hello with id {ACT_ID}"
    assert json.loads(body) == activation_record()
    assert list(json.loads(body)) == sorted(activation_record())  # map keys sorted, like Go
    assert body.startswith('{\n    "activationId": ')


def test_invoke_result_only(wsk, whisk: FakeWhisk) -> None:
    whisk.on("POST", "/api/v1/namespaces/_/actions/hello", 200, {"zeta": 1, "alpha": "a"})
    r = wsk("action", "invoke", "hello", "-r")
    assert (r.code, r.err) == (0, "")
    assert r.out == '{\n    "alpha": "a",\n    "zeta": 1\n}\n'
    assert whisk.last.query == {"blocking": "true", "result": "true"}


def test_invoke_blocking_application_error(wsk, whisk: FakeWhisk) -> None:
    failed = activation_record(response={"status": "application error", "success": False, "result": {"error": "boom"}})
    whisk.on("POST", "/api/v1/namespaces/_/actions/fails", 502, failed)
    r = wsk("action", "invoke", "fails", "-b")
    assert (r.code, r.out) == (246, "")
    header, body = r.err.split("\n", 1)
    assert header == f"ok: invoked /_/fails with id {ACT_ID}"
    assert json.loads(body) == failed

    whisk.on("POST", "/api/v1/namespaces/_/actions/fails2", 502, {"error": "boom"})
    r = wsk("action", "invoke", "fails2", "-r")
    assert (r.code, r.out, r.err) == (246, "", '{\n    "error": "boom"\n}\n')


def test_invoke_blocking_still_running(wsk, whisk: FakeWhisk) -> None:
    whisk.on("POST", "/api/v1/namespaces/_/actions/slow", 202, {"activationId": ACT_ID})
    r = wsk("action", "invoke", "slow", "-b")
    assert (r.code, r.out) == (202, "")
    assert r.err == f"ok: invoked /_/slow, but the request has not yet finished, with id {ACT_ID}\n"


def test_invoke_server_error(wsk, whisk: FakeWhisk) -> None:
    whisk.on("POST", "/api/v1/namespaces/_/actions/hello", 429, {"error": "Too many requests", "code": "t429"})
    r = wsk("action", "invoke", "hello")
    assert r.code == 173
    assert r.err == "error: Unable to invoke action 'hello': Too many requests (code t429)\n" + USAGE


def test_network_error_exit_3(wsk, wskprops: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    wskprops.write_text(f"APIHOST=http://127.0.0.1:{port}\nAUTH=a:b\n")
    r = wsk("action", "invoke", "hello")
    assert r.code == 3
    assert r.err.startswith(
        f"error: Unable to invoke action 'hello': Post \"http://127.0.0.1:{port}/api/v1/namespaces/_/actions/hello"
        '?blocking=false&result=false": dial tcp'
    )


def test_missing_auth_is_a_usage_error(wsk, whisk: FakeWhisk, wskprops: Path) -> None:
    wskprops.write_text(f"APIHOST={whisk.apihost}\n")
    r = wsk("action", "get", "hello")
    assert r.code == 2
    assert r.err == (
        "error: Unable to get action 'hello': Unable to create HTTP request for GET 'actions/hello?code=false': "
        "Unable to add the HTTP authentication header: Authorization key is not configured (--auth is required)\n"
        + USAGE
    )
    assert whisk.requests == []


# -- activations ----------------------------------------------------------------------------------------------------


def test_activation_list_table(wsk, whisk: FakeWhisk, utc: None) -> None:
    rows = [
        activation_record(statusCode=0),
        {"namespace": "guest", "name": "fails", "version": "0.0.2", "activationId": ACT_ID2, "start": 1700000060000,
         "end": 1700000061500, "duration": 1500, "statusCode": 2,
         "annotations": [{"key": "kind", "value": "nodejs:20"}]},
    ]  # fmt: skip
    whisk.on("GET", "/api/v1/namespaces/_/activations", body=rows)
    r = wsk("activation", "list")
    assert r.code == 0, r.err
    assert whisk.last.raw_query == "limit=30&skip=0"
    assert r.out == (
        "Datetime            Activation ID                    Kind        Start Duration   Status          Entity\n"
        f"2023-11-14 22:13:20 {ACT_ID} python:3.11 cold  12ms       success         guest/hello:0.0.1\n"
        f"2023-11-14 22:14:20 {ACT_ID2} nodejs:20   warm  1.5s       developer error guest/fails:0.0.2\n"
    )
    wsk("activation", "list", "hello", "--limit", "5", "--since", "10", "--upto", "20", "--skip", "1")
    assert whisk.last.raw_query == "limit=5&name=hello&since=10&skip=1&upto=20"


def test_activation_list_full_and_empty(wsk, whisk: FakeWhisk) -> None:
    whisk.on("GET", "/api/v1/namespaces/_/activations", body=[activation_record()])
    r = wsk("activation", "list", "--full")
    assert whisk.last.query["docs"] == "true"
    header, body = r.out.split("\n", 1)
    assert header == "activations"
    assert json.loads(body)["activationId"] == ACT_ID
    whisk.routes.clear()
    whisk.on("GET", "/api/v1/namespaces/_/activations", body=[])
    assert wsk("activation", "list").out == "\n"


def test_activation_get(wsk, whisk: FakeWhisk) -> None:
    whisk.on("GET", f"/api/v1/namespaces/_/activations/{ACT_ID}", body=activation_record())
    r = wsk("activation", "get", ACT_ID)
    assert r.code == 0, r.err
    header, body = r.out.split("\n", 1)
    assert header == f"ok: got activation {ACT_ID}"
    record = json.loads(body)
    assert list(record)[:11] == [
        "namespace", "name", "version", "subject", "activationId", "start", "end", "duration", "statusCode",
        "response", "logs",
    ]  # fmt: skip
    assert record["response"] == {"status": "success", "statusCode": 0, "success": True,
                                  "result": {"alpha": "a", "zeta": 1}}  # fmt: skip
    r = wsk("activation", "get", ACT_ID, "logs")
    assert r.out == (
        f"ok: got activation {ACT_ID}, displaying field logs\n"
        '[\n    "2023-11-14T22:13:20.001Z    stdout: hello world"\n]\n'
    )


def test_activation_last_logs_and_result(wsk, whisk: FakeWhisk) -> None:
    whisk.on("GET", "/api/v1/namespaces/_/activations", body=[activation_record()])
    whisk.on("GET", f"/api/v1/namespaces/_/activations/{ACT_ID}/logs", body={"logs": activation_record()["logs"]})
    whisk.on("GET", f"/api/v1/namespaces/_/activations/{ACT_ID}/result", body=activation_record()["response"])
    r = wsk("activation", "logs", "--last")
    assert r.out == "2023-11-14T22:13:20.001Z    stdout: hello world\n"
    assert whisk.requests[0].raw_query == "limit=1&skip=0"
    assert wsk("activation", "logs", ACT_ID, "--strip").out == "hello world\n"
    assert wsk("activation", "result", ACT_ID).out == '{\n    "alpha": "a",\n    "zeta": 1\n}\n'
    assert wsk("activation", "result", "-l").code == 0


def test_activation_get_not_found_has_no_usage_hint(wsk, whisk: FakeWhisk) -> None:
    r = wsk("activation", "get", "nope")
    assert r.code == 148
    assert r.err == f"error: Unable to get activation 'nope': {NOT_FOUND}\n"


def test_activation_last_with_no_activations(wsk, whisk: FakeWhisk) -> None:
    whisk.on("GET", "/api/v1/namespaces/_/activations", body=[])
    r = wsk("activation", "get", "--last")
    assert r.code == 1
    assert r.err == "error: Unable to get activation: Activation list does not contain any activations.\n" + USAGE


def test_activation_poll(wsk, whisk: FakeWhisk, monkeypatch: pytest.MonkeyPatch) -> None:
    from pywsk.commands import activation

    monkeypatch.setattr(activation, "POLL_INTERVAL_SECONDS", 0.05)
    second = activation_record(activationId=ACT_ID2, start=1700000000500, logs=["second"])
    whisk.on("GET", "/api/v1/namespaces/_/activations", body=[activation_record()])  # newest at start
    whisk.on("GET", "/api/v1/namespaces/_/activations", body=[])
    whisk.on("GET", "/api/v1/namespaces/_/activations", body=[second])
    started = time.monotonic()
    r = wsk("activation", "poll", "--exit", "1")
    assert r.code == 0, r.err
    assert time.monotonic() - started < 10
    assert r.out == (
        "Enter Ctrl-c to exit.\nPolling for activation logs\n"
        f"\nActivation: 'hello' ({ACT_ID2})\n" + '[\n    "second"\n]\n'
    )
    first, poll = whisk.requests[0], whisk.requests[1]
    assert first.raw_query == "docs=true&limit=1&skip=0"
    assert poll.raw_query == "docs=true&limit=0&since=1700000000001&skip=0"
    assert whisk.last.query["since"] == "1700000000501"


# -- namespace and misc ---------------------------------------------------------------------------------------------


def test_namespace_list(wsk, whisk: FakeWhisk) -> None:
    whisk.on("GET", "/api/v1/namespaces", body=["guest", "other"])
    r = wsk("namespace", "list")
    assert (r.code, r.out) == (0, "namespaces\nguest\nother\n")
    assert whisk.last.headers["authorization"] == basic(GUEST_AUTH)


def test_usage_errors(wsk) -> None:
    r = wsk("action", "list", "--bogus")
    assert r.code == 2
    assert r.err == "error: unrecognized arguments: --bogus\n" + USAGE
    r = wsk("nothing")
    assert (r.code, r.err) == (2, 'error: unknown command "nothing" for "pywsk"\n' + USAGE)
    assert wsk("action", "create", "x", "y.py", "--timeout", "soon").code == 2


def test_help(wsk) -> None:
    r = wsk()
    assert r.code == 0 and "Available Commands:" in r.out
    r = wsk("action")
    assert r.code == 0 and "invoke" in r.out
    r = wsk("action", "invoke", "--help")
    assert r.code == 0 and "--blocking" in r.out


def test_output_helpers() -> None:
    assert [go_duration(ms) for ms in (0, 7, 999, 1000, 1500, 61234, 3600000)] == [
        "0s", "7ms", "999ms", "1s", "1.5s", "1m1.234s", "1h0m0s"
    ]  # fmt: skip
    assert strip_timestamp("2017-04-27T21:14:13.123Z    stderr: oops") == "oops"
    assert strip_timestamp("plain line") == "plain line"
    assert truncate("abcdefghij", 7) == "abcd..."
    assert truncate("abcdefghijkl", 8) == "abcd...l"
    assert truncate("short", 20) == "short"


def test_cli_imports_are_light() -> None:
    """No HTTP/TLS machinery is imported until a request is sent (fast start-up)."""
    root = Path(__file__).resolve().parents[2]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")])))
    code = (
        "import sys, pywsk.__main__, pywsk.cli, pywsk.commands.action, pywsk.commands.activation; "
        "print(sorted(m for m in ('http.client', 'ssl', 'email', 'urllib.request') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    assert out.stdout.strip() == "[]"


def test_property_set_namespace_is_validated(wsk, whisk: FakeWhisk, wskprops: Path) -> None:
    whisk.on("GET", "/api/v1/namespaces", body=["guest"])
    r = wsk("property", "set", "--namespace", "guest", "--auth", "new:key")
    assert r.code == 0, r.err
    assert r.out.endswith("ok: whisk namespace set to guest\n")
    assert whisk.last.headers["authorization"] == basic("new:key")
    assert "NAMESPACE=guest\n" in wskprops.read_text()
    r = wsk("property", "set", "--namespace", "other")
    assert r.code == 1
    assert r.err == "error: Namespace 'other' is not in the list of entitled namespaces\n"
    assert "other" not in wskprops.read_text()


def test_verbose_prints_request_and_response(wsk, whisk: FakeWhisk) -> None:
    whisk.on("GET", "/api/v1/namespaces", body=["guest"])
    r = wsk("namespace", "list", "-v")
    assert r.code == 0
    assert r.out.startswith(f"REQUEST:\n[GET]\t{whisk.apihost}/api/v1/namespaces\nReq Headers\n")
    assert "RESPONSE:Got response with code 200\n" in r.out
    assert r.out.endswith('Response body received:\n["guest"]\nnamespaces\nguest\n')
