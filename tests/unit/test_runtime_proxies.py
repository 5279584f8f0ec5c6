"""The action runtime proxies in runtime-images/ (Python and Node.js), driven over HTTP as the invoker does."""

from __future__ import annotations

import base64
import http.client
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
NODE = shutil.which("node")
SENTINEL = "XXX_THE_END_OF_A_WHISK_ACTIVATION_XXX"
NOT_A_DICT = "The action did not return a dictionary or array."

LANGS = [
    "python",
    pytest.param("nodejs", marks=pytest.mark.skipif(NODE is None, reason="node is not installed")),
]


def proxy_command(lang: str) -> list[str]:
    if lang == "python":
        return [sys.executable, str(ROOT / "runtime-images" / "python" / "proxy.py")]
    assert NODE is not None
    return [NODE, str(ROOT / "runtime-images" / "nodejs" / "proxy.js")]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self.unix_path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


class Proxy:
    """One proxy process, its log files and a keep-alive HTTP connection to it."""

    def __init__(
        self, lang: str, workdir: Path, index: int, *, tcp: bool, wrapper: list[str] | None, name: str | None
    ) -> None:
        self.lang = lang
        self.socket_path = None if tcp else str(workdir / f"{name or f'p{index}'}.sock")
        self.port = free_port() if tcp else None
        args = ["--port", str(self.port)] if tcp else ["--socket", str(self.socket_path)]
        self.out_path = workdir / f"p{index}.stdout"
        self.err_path = workdir / f"p{index}.stderr"
        self.conns: list[http.client.HTTPConnection] = []
        with open(self.out_path, "wb") as out, open(self.err_path, "wb") as err:
            # TMPDIR keeps extracted archives inside workdir, which the fixture removes.
            env = {**os.environ, "TMPDIR": str(workdir)}
            self.proc = subprocess.Popen(
                [*(wrapper or []), *proxy_command(lang), *args], stdout=out, stderr=err, cwd=workdir, env=env
            )
        try:
            self._wait_ready()
            self.conn = self.connect()
        except BaseException:
            self.close()
            raise

    def _open_socket(self) -> socket.socket:
        if self.socket_path is not None:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            address: Any = self.socket_path
        else:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            address = ("127.0.0.1", self.port)
        sock.settimeout(30)
        try:
            sock.connect(address)
        except OSError:
            sock.close()
            raise
        return sock

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 20
        while True:
            if self.proc.poll() is not None:
                pytest.fail(f"proxy exited with {self.proc.returncode}: {self.stderr()}")
            try:
                self._open_socket().close()
                return
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"proxy did not start listening: {self.stderr()}")
                time.sleep(0.02)

    def connect(self) -> http.client.HTTPConnection:
        conn: http.client.HTTPConnection
        if self.socket_path is not None:
            conn = UnixHTTPConnection(self.socket_path, timeout=30)
        else:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        self.conns.append(conn)
        return conn

    def raw_socket(self) -> socket.socket:
        return self._open_socket()

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        conn: http.client.HTTPConnection | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any, http.client.HTTPResponse]:
        conn = conn or self.conn
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        data = resp.read()
        assert resp.getheader("Content-Type") == "application/json"
        return resp.status, json.loads(data) if data else None, resp

    def post(self, path: str, payload: Any) -> tuple[int, Any]:
        status, body, _ = self.request("POST", path, json.dumps(payload).encode())
        return status, body

    def init(self, code: str, *, main: str = "main", binary: bool = False, env: dict[str, Any] | None = None) -> Any:
        value: dict[str, Any] = {"name": "action", "main": main, "code": code, "binary": binary}
        if env is not None:
            value["env"] = env
        return self.post("/init", {"value": value})

    def run(self, value: Any = None, **meta: Any) -> tuple[int, Any]:
        return self.post("/run", {"value": {} if value is None else value, **meta})

    def stdout(self) -> str:
        return self.out_path.read_text()

    def stderr(self) -> str:
        return self.err_path.read_text()

    def close(self) -> None:
        for conn in self.conns:
            conn.close()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


class StartProxy:
    """Starts proxies in one short-named scratch folder (Unix socket paths are limited to ~107 bytes)."""

    def __init__(self) -> None:
        self.workdir = Path(tempfile.mkdtemp(prefix="pwproxy-"))
        self.proxies: list[Proxy] = []

    def __call__(
        self, lang: str, *, tcp: bool = False, wrapper: list[str] | None = None, name: str | None = None
    ) -> Proxy:
        proxy = Proxy(lang, self.workdir, len(self.proxies), tcp=tcp, wrapper=wrapper, name=name)
        self.proxies.append(proxy)
        return proxy

    def close(self) -> None:
        for proxy in self.proxies:
            proxy.close()
        shutil.rmtree(self.workdir, ignore_errors=True)


@pytest.fixture
def start_proxy() -> Iterator[StartProxy]:
    starter = StartProxy()
    yield starter
    starter.close()


def zip_b64(files: dict[str, str], compression: int = zipfile.ZIP_DEFLATED) -> str:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return base64.b64encode(buf.getvalue()).decode()


ECHO = {
    "python": "def main(args):\n    return {'echo': args}\n",
    "nodejs": "function main(args) {\n  return { echo: args };\n}\n",
}


# ------------------------------------------------------------------------------- basics


@pytest.mark.parametrize("lang", LANGS)
def test_source_action_over_unix_socket_with_keep_alive(start_proxy: StartProxy, lang: str) -> None:
    proxy = start_proxy(lang)
    assert proxy.init(ECHO[lang]) == (200, {"ok": True})
    sock = proxy.conn.sock
    for n in range(3):
        assert proxy.run({"n": n, "name": "Ada"}) == (200, {"echo": {"n": n, "name": "Ada"}})
    assert proxy.conn.sock is sock  # one connection served every request

    other = proxy.connect()  # a second connection works while the first stays open
    status, body, _ = proxy.request("POST", "/run", json.dumps({"value": {"x": 1}}).encode(), conn=other)
    assert (status, body) == (200, {"echo": {"x": 1}})
    assert proxy.run({"y": 2}) == (200, {"echo": {"y": 2}})


@pytest.mark.parametrize("lang", LANGS)
def test_source_action_over_tcp(start_proxy: StartProxy, lang: str) -> None:
    proxy = start_proxy(lang, tcp=True)
    assert proxy.init(ECHO[lang]) == (200, {"ok": True})
    assert proxy.run({"a": [1, 2, {"b": None}]}) == (200, {"echo": {"a": [1, 2, {"b": None}]}})
    assert proxy.run({"u": "zürich ✓"}) == (200, {"echo": {"u": "zürich ✓"}})


@pytest.mark.parametrize("lang", LANGS)
def test_stale_socket_file_is_replaced(start_proxy: StartProxy, lang: str) -> None:
    first = start_proxy(lang, name="same")
    first.proc.kill()  # leaves its socket file behind
    first.proc.wait(10)
    assert first.socket_path is not None
    assert Path(first.socket_path).exists()
    second = start_proxy(lang, name="same")
    assert second.socket_path == first.socket_path
    assert second.init(ECHO[lang]) == (200, {"ok": True})


ENV_ACTION = {
    "python": ("import os\ndef main(args):\n    return {k: os.environ.get(k) for k in args['keys']}\n"),
    "nodejs": (
        "function main(args) {\n"
        "  const out = {};\n"
        "  for (const k of args.keys) out[k] = process.env[k] === undefined ? null : process.env[k];\n"
        "  return out;\n"
        "}\n"
    ),
}


@pytest.mark.parametrize("lang", LANGS)
def test_environment_from_init_and_run(start_proxy: StartProxy, lang: str) -> None:
    proxy = start_proxy(lang)
    assert proxy.init(ENV_ACTION[lang], env={"GREETING": "hello", "COUNT": 3}) == (200, {"ok": True})
    meta = {
        "namespace": "guest",
        "action_name": "/guest/pkg/act",
        "action_version": "0.0.2",
        "activation_id": "a1b2c3",
        "transaction_id": "tid_7",
        "deadline": 1700000000123,
        "api_key": "uuid:secret",
    }
    keys = ["GREETING", "COUNT", *(f"__OW_{k.upper()}" for k in meta)]
    status, result = proxy.run({"keys": keys}, **meta)
    assert status == 200
    assert result == {
        "GREETING": "hello",
        "COUNT": "3",
        "__OW_NAMESPACE": "guest",
        "__OW_ACTION_NAME": "/guest/pkg/act",
        "__OW_ACTION_VERSION": "0.0.2",
        "__OW_ACTIVATION_ID": "a1b2c3",
        "__OW_TRANSACTION_ID": "tid_7",
        "__OW_DEADLINE": "1700000000123",
        "__OW_API_KEY": "uuid:secret",
    }
    status, result = proxy.run({"keys": ["__OW_ACTIVATION_ID"]}, activation_id="d4e5")
    assert (status, result) == (200, {"__OW_ACTIVATION_ID": "d4e5"})


NODE_ENTRY_STYLES = {
    "function-main": ("function main(a) { return { style: 'function', a }; }", "main"),
    "const-arrow": ("const main = (a) => ({ style: 'arrow', a });", "main"),
    "exports-main": ("exports.main = function (a) { return { style: 'exports', a }; };", "main"),
    "module-exports-main": ("module.exports.main = (a) => ({ style: 'module.exports.main', a });", "main"),
    "module-exports-fn": ("module.exports = function (a) { return { style: 'module.exports', a }; };", "main"),
    "named-handler": ("function handler(a) { return { style: 'handler', a }; }", "handler"),
    "exported-handler": ("module.exports = { handler: (a) => ({ style: 'exported handler', a }) };", "handler"),
    "require-builtin": (
        "const path = require('path');\nfunction main(a) { return { style: path.join('x', 'y'), a }; }",
        "main",
    ),
}


@pytest.mark.skipif(NODE is None, reason="node is not installed")
@pytest.mark.parametrize("style", list(NODE_ENTRY_STYLES))
def test_node_entry_point_styles(start_proxy: StartProxy, style: str) -> None:
    code, main = NODE_ENTRY_STYLES[style]
    proxy = start_proxy("nodejs")
    assert proxy.init(code, main=main) == (200, {"ok": True})
    status, result = proxy.run({"k": 1})
    assert status == 200
    assert result["a"] == {"k": 1}


def test_python_named_entry_point(start_proxy: StartProxy) -> None:
    proxy = start_proxy("python")
    code = "import json\n\ndef handler(args):\n    return {'dumped': json.dumps(args, sort_keys=True)}\n"
    assert proxy.init(code, main="handler") == (200, {"ok": True})
    assert proxy.run({"b": 1, "a": 2}) == (200, {"dumped": '{"a": 2, "b": 1}'})


# ------------------------------------------------------------------------------- /init refusals and failures


@pytest.mark.parametrize("lang", LANGS)
def test_second_init_is_refused(start_proxy: StartProxy, lang: str) -> None:
    proxy = start_proxy(lang)
    assert proxy.init(ECHO[lang]) == (200, {"ok": True})
    assert proxy.init(ECHO[lang]) == (403, {"error": "Cannot initialize the action more than once."})
    assert proxy.run({"still": "works"}) == (200, {"echo": {"still": "works"}})


@pytest.mark.parametrize("lang", LANGS)
def test_missing_code_is_refused_without_locking_init(start_proxy: StartProxy, lang: str) -> None:
    proxy = start_proxy(lang)
    missing = (403, {"error": "Missing main/no code to execute."})
    assert proxy.post("/init", {"value": {"main": "main"}}) == missing
    assert proxy.post("/init", {}) == missing
    assert proxy.init("") == missing
    assert proxy.init(ECHO[lang]) == (200, {"ok": True})


@pytest.mark.parametrize("lang", LANGS)
def test_run_before_init_is_refused(start_proxy: StartProxy, lang: str) -> None:
    proxy = start_proxy(lang)
    assert proxy.run({"a": 1}) == (403, {"error": "Cannot run before the action is initialized."})
    assert proxy.stdout() == ""


INIT_FAILURES: dict[str, dict[str, tuple[dict[str, Any], str]]] = {
    "python": {
        "syntax-error": ({"code": "def main(args)\n    return {}\n"}, "SyntaxError"),
        "missing-main": ({"code": "def other(args):\n    return {}\n"}, "no function named 'main'"),
        "main-not-callable": ({"code": "main = 42\n"}, "Action entrypoint 'main' is not a function."),
        "raises-at-import": ({"code": "raise RuntimeError('no config')\n"}, "RuntimeError: no config"),
        "import-missing-module": ({"code": "import no_such_module_xyz\n"}, "ModuleNotFoundError"),
        "bad-archive": ({"code": "bm90IGEgemlw", "binary": True}, "Invalid action archive"),
        "archive-without-entry": (
            {"code": zip_b64({"helper.py": "X = 1\n"}), "binary": True},
            "__main__.py",
        ),
    },
    "nodejs": {
        "syntax-error": ({"code": "function main(args) { return {; }"}, "SyntaxError"),
        "missing-main": ({"code": "function other() { return {}; }"}, "no function named 'main'"),
        "main-not-callable": ({"code": "const main = 42;"}, "Action entrypoint 'main' is not a function."),
        "raises-at-import": ({"code": "throw new Error('no config');"}, "Error: no config"),
        "import-missing-module": ({"code": "require('no-such-module-xyz');"}, "Cannot find module"),
        "bad-archive": ({"code": "bm90IGEgemlw", "binary": True}, "Invalid action archive"),
        "archive-without-entry": (
            {"code": zip_b64({"helper.js": "exports.x = 1;\n"}), "binary": True},
            "index.js",
        ),
    },
}


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("case", list(INIT_FAILURES["python"]))
def test_init_failure(start_proxy: StartProxy, lang: str, case: str) -> None:
    value, expected = INIT_FAILURES[lang][case]
    proxy = start_proxy(lang)
    status, body = proxy.post("/init", {"value": {"name": "action", "main": "main", "binary": False, **value}})
    assert status == 502
    assert set(body) == {"error"}
    assert expected in body["error"]
    # The failure is logged, then both streams end with the sentinel.
    assert proxy.stdout() == SENTINEL + "\n"
    stderr = proxy.stderr()
    assert stderr.endswith(SENTINEL + "\n")
    assert len(stderr) > len(SENTINEL) + 1
    # The container is done for: no second init, no run.
    assert proxy.init(ECHO[lang]) == (403, {"error": "Cannot initialize the action more than once."})
    assert proxy.run({}) == (403, {"error": "Cannot run before the action is initialized."})


def test_python_init_failure_logs_traceback(start_proxy: StartProxy) -> None:
    proxy = start_proxy("python")
    code = "def helper():\n    raise KeyError('missing setting')\n\nhelper()\n"
    status, body = proxy.init(code)
    assert (status, body) == (502, {"error": "Initialization has failed due to: KeyError: 'missing setting'"})
    stderr = proxy.stderr()
    assert "Traceback (most recent call last)" in stderr
    assert "raise KeyError('missing setting')" in stderr  # source lines of the action are shown


# ------------------------------------------------------------------------------- zip actions


@pytest.mark.parametrize("compression", [zipfile.ZIP_DEFLATED, zipfile.ZIP_STORED])
def test_python_zip_action_with_virtualenv(start_proxy: StartProxy, compression: int) -> None:
    files = {
        "__main__.py": (
            "import helper\n"
            "import fakepkg\n"
            "def main(args):\n"
            "    with open('data.txt') as f:\n"
            "        data = f.read().strip()\n"
            "    return {'helper': helper.twice(args['n']), 'pkg': fakepkg.NAME, 'data': data}\n"
        ),
        "helper.py": "def twice(n):\n    return 2 * n\n",
        "data.txt": "from the archive\n",
        "virtualenv/bin/activate_this.py": "",
        f"virtualenv/lib/python{sys.version_info.major}.{sys.version_info.minor}/site-packages/fakepkg/__init__.py": (
            "NAME = 'fakepkg from the virtualenv'\n"
        ),
    }
    proxy = start_proxy("python")
    assert proxy.init(zip_b64(files, compression), binary=True) == (200, {"ok": True})
    assert proxy.run({"n": 21}) == (
        200,
        {"helper": 42, "pkg": "fakepkg from the virtualenv", "data": "from the archive"},
    )


NODE_ZIPS = {
    "package-json-main": {
        "package.json": json.dumps({"name": "act", "main": "lib/entry.js"}),
        "lib/entry.js": (
            "const pad = require('fakepad');\n"
            "const fs = require('fs');\n"
            "exports.main = (args) => ({ padded: pad(String(args.n), 5),"
            " data: fs.readFileSync('data.txt', 'utf8').trim() });\n"
        ),
        "node_modules/fakepad/package.json": json.dumps({"name": "fakepad", "main": "pad.js"}),
        "node_modules/fakepad/pad.js": "module.exports = (s, n) => s.padStart(n, '0');\n",
        "data.txt": "from the archive\n",
    },
    "index-js": {
        "index.js": (
            "const pad = require('fakepad');\n"
            "const fs = require('fs');\n"
            "module.exports = function (args) { return { padded: pad(String(args.n), 5),"
            " data: fs.readFileSync('data.txt', 'utf8').trim() }; };\n"
        ),
        "node_modules/fakepad/index.js": "module.exports = (s, n) => s.padStart(n, '0');\n",
        "data.txt": "from the archive\n",
    },
    "es-module": {
        "package.json": json.dumps({"name": "act", "type": "module", "main": "main.js"}),
        "main.js": (
            "import { readFileSync } from 'fs';\n"
            "import pad from './pad.js';\n"
            "export function main(args) { return { padded: pad(String(args.n), 5),"
            " data: readFileSync('data.txt', 'utf8').trim() }; }\n"
        ),
        "pad.js": "export default (s, n) => s.padStart(n, '0');\n",
        "data.txt": "from the archive\n",
    },
}


@pytest.mark.skipif(NODE is None, reason="node is not installed")
@pytest.mark.parametrize("compression", [zipfile.ZIP_DEFLATED, zipfile.ZIP_STORED])
@pytest.mark.parametrize("layout", list(NODE_ZIPS))
def test_node_zip_action(start_proxy: StartProxy, layout: str, compression: int) -> None:
    proxy = start_proxy("nodejs")
    assert proxy.init(zip_b64(NODE_ZIPS[layout], compression), binary=True) == (200, {"ok": True})
    assert proxy.run({"n": 42}) == (200, {"padded": "00042", "data": "from the archive"})


@pytest.mark.skipif(NODE is None, reason="node is not installed")
def test_node_zip_rejects_paths_outside_the_action_dir(start_proxy: StartProxy) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr("index.js", "exports.main = () => ({});\n")
        archive.writestr(zipfile.ZipInfo("../escaped.js"), "bad\n")
    proxy = start_proxy("nodejs")
    status, body = proxy.init(base64.b64encode(buf.getvalue()).decode(), binary=True)
    assert status == 502
    assert "unsafe path" in body["error"]


@pytest.mark.parametrize("lang", LANGS)
def test_zip_action_under_bwrap_with_read_only_root(start_proxy: StartProxy, lang: str) -> None:
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        pytest.skip("bwrap is not installed")
    probe = subprocess.run(
        [bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp", "true"],
        capture_output=True,
        check=False,
    )
    if probe.returncode != 0:
        pytest.skip(f"bwrap cannot create a sandbox here: {probe.stderr.decode().strip()}")
    wrapper = [
        bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp",
        "--bind", str(start_proxy.workdir), str(start_proxy.workdir), "--die-with-parent", "--setenv", "TMPDIR", "/tmp",
    ]  # fmt: skip
    # The private /tmp hides anything the proxy needs that lives under the host's /tmp.
    interpreter = Path(proxy_command(lang)[0])
    for needed in (ROOT, Path(sys.prefix) if lang == "python" else interpreter.resolve().parent.parent):
        if needed.resolve().is_relative_to("/tmp") or needed.is_relative_to("/tmp"):
            wrapper += ["--ro-bind", str(needed.resolve()), str(needed)]
    proxy = start_proxy(lang, wrapper=wrapper)
    files = {
        "python": {"__main__.py": "import os\ndef main(args):\n    return {'cwd': os.getcwd()}\n"},
        "nodejs": {"index.js": "exports.main = () => ({ cwd: process.cwd() });\n"},
    }[lang]
    assert proxy.init(zip_b64(files), binary=True) == (200, {"ok": True})
    status, result = proxy.run({})
    assert status == 200
    assert result["cwd"].startswith("/tmp/")
    # The archive went to the sandbox's private /tmp, not the host's.
    assert not Path(result["cwd"]).exists()


# ------------------------------------------------------------------------------- /run results and errors

RESULT_ACTION = {
    "python": (
        "def main(args):\n"
        "    mode = args['mode']\n"
        "    if mode == 'raise':\n"
        "        raise ValueError('boom')\n"
        "    if mode == 'string':\n"
        "        return 'text'\n"
        "    if mode == 'nothing':\n"
        "        return None\n"
        "    if mode == 'number':\n"
        "        return 42\n"
        "    if mode == 'error-key':\n"
        "        return {'error': 'application failure'}\n"
        "    if mode == 'array':\n"
        "        return [1, 'two', {'three': 3}]\n"
        "    if mode == 'unserializable':\n"
        "        return {'value': object()}\n"
        "    return {'ok': True}\n"
    ),
    "nodejs": (
        "function main(args) {\n"
        "  switch (args.mode) {\n"
        "    case 'raise': throw new Error('boom');\n"
        "    case 'string': return 'text';\n"
        "    case 'nothing': return undefined;\n"
        "    case 'number': return 42;\n"
        "    case 'error-key': return { error: 'application failure' };\n"
        "    case 'array': return [1, 'two', { three: 3 }];\n"
        "    case 'unserializable': return { value: 10n };\n"
        "    default: return { ok: true };\n"
        "  }\n"
        "}\n"
    ),
}

RAISE_MESSAGE = {"python": "An error has occurred: ValueError: boom", "nodejs": "An error has occurred: boom"}


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("raise", None),
        ("string", (502, {"error": NOT_A_DICT})),
        ("nothing", (502, {"error": NOT_A_DICT})),
        ("number", (502, {"error": NOT_A_DICT})),
        ("error-key", (200, {"error": "application failure"})),
        ("array", (200, [1, "two", {"three": 3}])),
        ("unserializable", None),
    ],
)
def test_run_results_and_errors(
    start_proxy: StartProxy, lang: str, mode: str, expected: tuple[int, Any] | None
) -> None:
    proxy = start_proxy(lang)
    assert proxy.init(RESULT_ACTION[lang]) == (200, {"ok": True})
    status, body = proxy.run({"mode": mode})
    if mode == "raise":
        assert (status, body) == (502, {"error": RAISE_MESSAGE[lang]})
        assert "boom" in proxy.stderr()  # traceback / stack on stderr
    elif mode == "unserializable":
        assert status == 502
        assert "not JSON serializable" in body["error"]
    else:
        assert (status, body) == expected
    # Whatever happened, the proxy carries on and the activation was closed on both streams.
    assert proxy.run({"mode": "fine"}) == (200, {"ok": True})
    assert proxy.stdout().count(SENTINEL) == 2
    assert proxy.stderr().count(SENTINEL) == 2


def test_python_async_main_keeps_one_event_loop(start_proxy: StartProxy) -> None:
    code = (
        "import asyncio\n"
        "state = {'ticks': 0}\n"
        "async def ticker():\n"
        "    while True:\n"
        "        state['ticks'] += 1\n"
        "        await asyncio.sleep(0.001)\n"
        "async def main(args):\n"
        "    loop = asyncio.get_running_loop()\n"
        "    if 'task' not in state:\n"
        "        state['task'] = loop.create_task(ticker())\n"
        "        state['loop'] = id(loop)\n"
        "    await asyncio.sleep(0.02)\n"
        "    return {'same_loop': state['loop'] == id(loop), 'alive': not state['task'].done(),"
        " 'ticks': state['ticks']}\n"
    )
    proxy = start_proxy("python")
    assert proxy.init(code) == (200, {"ok": True})
    status, first = proxy.run({})
    assert status == 200
    assert first["same_loop"] and first["alive"]
    status, second = proxy.run({})
    assert status == 200
    assert second["same_loop"] and second["alive"]
    assert second["ticks"] > first["ticks"]


def test_python_async_main_exception(start_proxy: StartProxy) -> None:
    code = "import asyncio\nasync def main(args):\n    await asyncio.sleep(0)\n    raise KeyError('k')\n"
    proxy = start_proxy("python")
    assert proxy.init(code) == (200, {"ok": True})
    assert proxy.run({}) == (502, {"error": "An error has occurred: KeyError: 'k'"})


def test_python_sync_main_may_run_its_own_event_loop(start_proxy: StartProxy) -> None:
    code = (
        "import asyncio\n"
        "async def work(n):\n"
        "    await asyncio.sleep(0)\n"
        "    return n + 1\n"
        "def main(args):\n"
        "    return {'n': asyncio.run(work(args['n']))}\n"
    )
    proxy = start_proxy("python")
    assert proxy.init(code) == (200, {"ok": True})
    assert proxy.run({"n": 1}) == (200, {"n": 2})
    assert proxy.run({"n": 2}) == (200, {"n": 3})


NODE_PROMISES = (
    "function main(args) {\n"
    "  switch (args.mode) {\n"
    "    case 'resolve': return new Promise((resolve) => setTimeout(() => resolve({ done: 'later' }), 5));\n"
    "    case 'async': return (async () => ({ done: 'async' }))();\n"
    "    case 'resolve-string': return Promise.resolve('text');\n"
    "    case 'reject-object': return Promise.reject({ code: 42, why: 'nope' });\n"
    "    case 'reject-error': return Promise.reject(new Error('went wrong'));\n"
    "    case 'reject-string': return Promise.reject('plain text');\n"
    "    case 'reject-nothing': return Promise.reject();\n"
    "    case 'late-crash':\n"
    "      return new Promise(() => setTimeout(() => { throw new Error('late crash'); }, 5));\n"
    "    case 'unhandled':\n"
    "      Promise.reject(new Error('nobody listens'));\n"
    "      return { ok: 'unhandled' };\n"
    "  }\n"
    "}\n"
)


@pytest.mark.skipif(NODE is None, reason="node is not installed")
@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("resolve", (200, {"done": "later"})),
        ("async", (200, {"done": "async"})),
        ("resolve-string", (502, {"error": NOT_A_DICT})),
        ("reject-object", (200, {"error": {"code": 42, "why": "nope"}})),
        ("reject-error", (200, {"error": "went wrong"})),
        ("reject-string", (200, {"error": "plain text"})),
        ("reject-nothing", (200, {"error": {}})),
        ("late-crash", (502, {"error": "An error has occurred: late crash"})),
        ("unhandled", (200, {"ok": "unhandled"})),
    ],
)
def test_node_promises(start_proxy: StartProxy, mode: str, expected: tuple[int, Any]) -> None:
    proxy = start_proxy("nodejs")
    assert proxy.init(NODE_PROMISES) == (200, {"ok": True})
    assert proxy.run({"mode": mode}) == expected
    assert proxy.run({"mode": "async"}) == (200, {"done": "async"})  # the proxy survived


@pytest.mark.skipif(NODE is None, reason="node is not installed")
def test_node_async_main(start_proxy: StartProxy) -> None:
    proxy = start_proxy("nodejs")
    code = "let runs = 0;\nasync function main(args) { await null; runs += 1; return { runs }; }\n"
    assert proxy.init(code) == (200, {"ok": True})
    assert proxy.run({}) == (200, {"runs": 1})
    assert proxy.run({}) == (200, {"runs": 2})


# ------------------------------------------------------------------------------- HTTP edges


@pytest.mark.parametrize("lang", LANGS)
def test_bad_requests_do_not_hurt(start_proxy: StartProxy, lang: str) -> None:
    proxy = start_proxy(lang)
    status, body, _ = proxy.request("POST", "/init", b'{"value": {"code": ')
    assert status == 400
    assert "error" in body
    status, body, _ = proxy.request("POST", "/run", b"[1, 2]")
    assert status == 400
    assert "error" in body
    status, body, _ = proxy.request("POST", "/nope", b"{}")
    assert status == 404
    assert "error" in body
    status, body, resp = proxy.request("GET", "/run")
    assert status == 405
    assert resp.getheader("Allow") == "POST"
    assert "error" in body
    status, body, _ = proxy.request("PUT", "/init", b"{}")
    assert status == 405
    assert proxy.init(ECHO[lang]) == (200, {"ok": True})
    status, body, _ = proxy.request("POST", "/run", b"not json")
    assert status == 400
    assert proxy.run({"fine": True}) == (200, {"echo": {"fine": True}})


def read_response(sock: socket.socket) -> tuple[bytes, bytes]:
    """Read one HTTP response with a Content-Length off a raw socket: (head, body)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, "connection closed before the response head"
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(rest) < length:
        chunk = sock.recv(65536)
        assert chunk, "connection closed before the response body"
        rest += chunk
    return head, rest[:length]


@pytest.mark.parametrize("lang", LANGS)
def test_chunked_body_expect_continue_and_connection_close(start_proxy: StartProxy, lang: str) -> None:
    proxy = start_proxy(lang)
    assert proxy.init(ECHO[lang]) == (200, {"ok": True})

    with proxy.raw_socket() as sock:
        # A chunked request body, arriving in pieces.
        pieces = [b'{"value": {"pie', b'ces": [1, 2, 3]}', b', "activation_id": "c1"}']
        chunked = b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for piece in pieces) + b"0\r\n\r\n"
        sock.sendall(b"POST /run HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked[:7])
        time.sleep(0.05)
        sock.sendall(chunked[7:])
        head, body_bytes = read_response(sock)
        assert head.startswith(b"HTTP/1.1 200")
        assert json.loads(body_bytes) == {"echo": {"pieces": [1, 2, 3]}}

        # Expect: 100-continue gets an interim response before the body is sent.
        payload = json.dumps({"value": {"big": "x" * 5000}}).encode()
        sock.sendall(
            b"POST /run HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Expect: 100-continue\r\nContent-Length: %d\r\n\r\n" % len(payload)
        )
        interim = b""
        while b"\r\n\r\n" not in interim:
            interim += sock.recv(1)
        assert interim.startswith(b"HTTP/1.1 100")
        sock.sendall(payload)
        head, body_bytes = read_response(sock)
        assert head.startswith(b"HTTP/1.1 200")
        assert json.loads(body_bytes) == {"echo": {"big": "x" * 5000}}

        # Connection: close is honoured.
        body2 = b'{"value": {"last": 1}}'
        sock.sendall(
            b"POST /run HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(body2), body2)
        )
        head, body_bytes = read_response(sock)
        assert head.startswith(b"HTTP/1.1 200")
        assert json.loads(body_bytes) == {"echo": {"last": 1}}
        assert sock.recv(1) == b""


# ------------------------------------------------------------------------------- logs and lifecycle

LOGGING_ACTION = {
    "python": (
        "import sys\n"
        "print('loaded')\n"
        "def main(args):\n"
        "    for i in range(args['lines']):\n"
        "        print(f\"out {args['n']}.{i}\")\n"
        "        print(f\"err {args['n']}.{i}\", file=sys.stderr)\n"
        "    return {'n': args['n']}\n"
    ),
    "nodejs": (
        "console.log('loaded');\n"
        "function main(args) {\n"
        "  for (let i = 0; i < args.lines; i++) {\n"
        "    console.log(`out ${args.n}.${i}`);\n"
        "    console.error(`err ${args.n}.${i}`);\n"
        "  }\n"
        "  return { n: args.n };\n"
        "}\n"
    ),
}


@pytest.mark.parametrize("lang", LANGS)
def test_sentinel_follows_each_activations_output(start_proxy: StartProxy, lang: str) -> None:
    proxy = start_proxy(lang)
    assert proxy.init(LOGGING_ACTION[lang]) == (200, {"ok": True})
    expected_out = ["loaded"]
    expected_err: list[str] = []
    for n in range(3):
        lines = 200 if n == 1 else 2
        assert proxy.run({"n": n, "lines": lines}) == (200, {"n": n})
        expected_out += [f"out {n}.{i}" for i in range(lines)] + [SENTINEL]
        expected_err += [f"err {n}.{i}" for i in range(lines)] + [SENTINEL]
        # By the time the reply arrives, the activation's logs and its sentinels are written.
        assert proxy.stdout().splitlines() == expected_out
        assert proxy.stderr().splitlines() == expected_err


EXIT_ACTION = {
    "python": "import sys\ndef main(args):\n    sys.exit(3)\n",
    "nodejs": "function main(args) { process.exit(3); }\n",
}


@pytest.mark.parametrize("lang", LANGS)
def test_exit_in_action_ends_the_process(start_proxy: StartProxy, lang: str) -> None:
    proxy = start_proxy(lang)
    assert proxy.init(EXIT_ACTION[lang]) == (200, {"ok": True})
    with pytest.raises((http.client.HTTPException, OSError)):
        proxy.run({})
    assert proxy.proc.wait(10) == 3


@pytest.mark.parametrize("lang", LANGS)
def test_many_warm_runs_on_one_connection_all_succeed(start_proxy: StartProxy, lang: str) -> None:
    proxy = start_proxy(lang)
    assert proxy.init("def main(a):\n    return a\n" if lang == "python" else "const main = (a) => a;") == (
        200,
        {"ok": True},
    )
    body = json.dumps({"value": {"k": "v"}, "activation_id": "x"}).encode()
    for _ in range(300):
        status, _, _ = proxy.request("POST", "/run", body)
        assert status == 200
