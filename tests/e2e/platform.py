"""Starting a standalone platform as a real process, and talking to it."""

from __future__ import annotations

import asyncio
import base64
import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 60.0
#: system throttles far above what the suite sends, so that only the throttle tests (which set a namespace's own
#: limits) meet a 429
GENEROUS_THROTTLES = {
    "PYWHISK_INVOCATIONS_PER_MINUTE": "100000",
    "PYWHISK_CONCURRENT_INVOCATIONS": "10000",
    "PYWHISK_FIRES_PER_MINUTE": "100000",
}


def run_admin(store_url: str, *argv: str) -> str:
    """`pywhisk admin ARGV` against the store at `store_url`; its output."""
    done = subprocess.run([sys.executable, "-m", "pywhisk", "admin", "--store", store_url, *argv],
                          cwd=REPO, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, f"pywhisk admin {' '.join(argv)} failed: {done.stdout}{done.stderr}"
    return done.stdout


@dataclass
class Platform:
    data_dir: Path
    containers: str
    process: subprocess.Popen[bytes] | None = None
    api_host: str = ""
    auth: str = ""
    env: dict[str, str] = field(default_factory=dict)

    @property
    def wskprops(self) -> Path:
        return self.data_dir / "wskprops"

    @property
    def store_url(self) -> str:
        return f"sqlite:///{self.data_dir.resolve() / 'pywhisk.db'}"

    def admin(self, *argv: str) -> str:
        return run_admin(self.store_url, *argv)

    @property
    def log_file(self) -> Path:
        return self.data_dir / "standalone.log"

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        out_file = self.data_dir / "standalone.out"
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYWHISK_")}
        env.update(GENEROUS_THROTTLES)
        env.update(self.env)
        with open(out_file, "wb") as out, open(self.log_file, "ab") as err:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "pywhisk", "standalone", "--port", "0", "--data-dir", str(self.data_dir),
                 "--containers", self.containers, "--wskprops", str(self.wskprops)],
                stdout=out, stderr=err, cwd=REPO, env=env, start_new_session=True)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            lines = out_file.read_text().splitlines()
            values = dict(line.split("=", 1) for line in lines if line.startswith(("APIHOST=", "AUTH=")))
            if "AUTH" in values:
                self.api_host, self.auth = values["APIHOST"], values["AUTH"]
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"standalone did not start; log:\n{self.log_file.read_text()[-4000:]}")

    def stop(self) -> int | None:
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        code = self.process.returncode
        self.process = None
        return code

    def headers(self, auth: str | None = None) -> dict[str, str]:
        token = base64.b64encode((auth or self.auth).encode()).decode()
        return {"Authorization": f"Basic {token}"}


class Api:
    """A thin REST client for tests: returns (status, json body, headers)."""

    def __init__(self, platform: Platform, session: aiohttp.ClientSession) -> None:
        self.platform = platform
        self.session = session

    def url(self, path: str) -> str:
        return f"{self.platform.api_host}/api/v1/{path.lstrip('/')}"

    async def request(
        self, method: str, path: str, *, json: Any = None, data: Any = None,
        params: dict[str, str] | None = None, auth: str | None = None, headers: dict[str, str] | None = None,
    ) -> tuple[int, Any, Any]:
        all_headers = {**self.platform.headers(auth), **(headers or {})}
        async with self.session.request(
            method, self.url(path), json=json, data=data, params=params, headers=all_headers
        ) as response:
            body = await response.json(content_type=None) if await response.read() else None
            return response.status, body, response.headers

    def new_namespace(self, prefix: str, **limits: int) -> str:
        """A subject and namespace of its own (`prefix` + random hex) with the given limits; its `uuid:key`."""
        name = f"{prefix}{secrets.token_hex(4)}"
        auth = self.platform.admin("user", "create", name).strip()
        flags = [arg for key, value in limits.items() for arg in (f"--{key}", str(value))]
        self.platform.admin("limits", "set", name, *flags)
        return auth

    async def put_action(self, name: str, code: str, kind: str = "python:3.11", **extra: Any) -> dict[str, Any]:
        status, body, _ = await self.request(
            "PUT", f"namespaces/_/actions/{name}", params={"overwrite": "true"},
            json={"exec": {"kind": kind, "code": code}, **extra})
        assert status == 200, body
        return body

    async def invoke(self, name: str, payload: dict[str, Any] | None = None, **params: str) -> tuple[int, Any, Any]:
        return await self.request("POST", f"namespaces/_/actions/{name}", json=payload or {}, params=params)

    async def wait_for_activation(self, activation_id: str, timeout_s: float = 60.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            status, body, _ = await self.request("GET", f"namespaces/_/activations/{activation_id}")
            if status == 200:
                return body
            assert status == 404, body
            await asyncio.sleep(0.1)
        raise AssertionError(f"activation {activation_id} was not recorded in {timeout_s} s")

    async def wait_for_listed(self, name: str, count: int, timeout_s: float = 30.0) -> None:
        """Until `count` activations of `name` are stored (an invoker stores a record after it answers)."""
        deadline = time.monotonic() + timeout_s
        while True:
            status, body, _ = await self.request("GET", "namespaces/_/activations",
                                                 params={"name": name, "count": "true"})
            assert status == 200, body
            if body["activations"] >= count:
                return
            assert time.monotonic() < deadline, f"{body['activations']} of {count} activations of {name} stored"
            await asyncio.sleep(0.05)
