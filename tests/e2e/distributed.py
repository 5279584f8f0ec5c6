"""The distributed stack for end-to-end tests: CouchDB-compatible store, Kafka-protocol broker, controller and
invoker processes, and nginx in front, all real and started here."""

from __future__ import annotations

import base64
import contextlib
import os
import random
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from tests.e2e.platform import GENEROUS_THROTTLES, REPO, run_admin
from tests.services.couchdb import couchdb_server
from tests.services.kafka import free_port, kafka_broker
from tests.services.nginx import nginx_gateway

START_TIMEOUT_S = 90.0


@dataclass
class ServiceProcess:
    """One `python -m pywhisk <command>` process, its output in a file."""

    name: str
    args: list[str]
    env: dict[str, str]
    log_dir: Path
    ready_line: str
    process: subprocess.Popen[bytes] | None = None

    @property
    def out_file(self) -> Path:
        return self.log_dir / f"{self.name}.out"

    def start(self) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYWHISK_")} | self.env
        with open(self.out_file, "wb") as out, open(self.log_dir / f"{self.name}.log", "ab") as err:
            self.process = subprocess.Popen([sys.executable, "-m", "pywhisk", *self.args], stdout=out, stderr=err,
                                            cwd=REPO, env=env, start_new_session=True)
        deadline = time.monotonic() + START_TIMEOUT_S
        while self.ready_line not in self.out_file.read_text():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                log = (self.log_dir / f"{self.name}.log").read_text()[-3000:]
                raise RuntimeError(f"{self.name} did not start:\n{log}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        self.process = None

    def kill(self) -> None:
        """Die without cleaning up, as a crash would."""
        if self.process is not None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
            self.process = None


@dataclass
class DistributedPlatform:
    data_dir: Path
    containers: str = "docker"
    invoker_count: int = 1
    controller_count: int = 1
    api_host: str = ""
    auth: str = ""
    controllers: list[ServiceProcess] = field(default_factory=list)
    invokers: list[ServiceProcess] = field(default_factory=list)
    controller_urls: list[str] = field(default_factory=list)
    _stack: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)
    store_url: str = ""
    feeds: ServiceProcess | None = None
    #: more settings for every process (controllers, invokers, the feed service)
    env: dict[str, str] = field(default_factory=dict)

    def admin(self, *argv: str) -> str:
        return run_admin(self.store_url, *argv)

    @property
    def wskprops(self) -> Path:
        return self.data_dir / "wskprops"

    def headers(self, auth: str | None = None) -> dict[str, str]:
        return {"Authorization": "Basic " + base64.b64encode((auth or self.auth).encode()).decode()}

    def start(self) -> None:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        couch = self._stack.enter_context(couchdb_server(self.data_dir / "couchdb"))
        self.couchdb = couch
        self.kafka = self._stack.enter_context(kafka_broker())
        prefix = f"pw{random.randint(0, 1 << 30):x}_"
        self.store_url = f"{couch.url.rstrip('/')}/?prefix={prefix}"
        self.auth = subprocess.run(
            [sys.executable, "-m", "pywhisk", "admin", "--store", self.store_url, "user", "create", "guest"],
            capture_output=True, text=True, check=True, cwd=REPO, timeout=60).stdout.strip().splitlines()[-1]
        # short sessions make the broker's group joins quick (see tests/services/kafka.py)
        bus_url = f"{self.kafka.url}?session_timeout_ms=2000"
        base_env = {"PYWHISK_STORE_URL": self.store_url, "PYWHISK_BUS_URL": bus_url, "PYWHISK_LOG_LEVEL": "INFO",
                    **GENEROUS_THROTTLES, **self.env}
        upstreams = []
        for n in range(self.controller_count):
            port = free_port()
            upstreams.append(f"127.0.0.1:{port}")
            controller = ServiceProcess(
                f"controller{n}", ["controller", "--host", "127.0.0.1", "--port", str(port)],
                base_env | {"PYWHISK_CONTROLLER_ID": str(n), "PYWHISK_API_HOST": f"http://127.0.0.1:{port}"},
                self.data_dir, "listening on port")
            controller.start()
            self.controllers.append(controller)
            self.controller_urls.append(f"http://127.0.0.1:{port}")
        first_id = random.randint(100, 900)
        for n in range(self.invoker_count):
            self.add_invoker(first_id + n, base_env)
        gateway = self._stack.enter_context(nginx_gateway(self.data_dir / "nginx", upstreams))
        self.gateway = gateway
        self.api_host = gateway.http_url
        # one feed service for the stack, firing triggers through nginx as an outside caller would
        self.feeds = ServiceProcess("feeds", ["feeds"], base_env | {"PYWHISK_API_URL": self.api_host},
                                    self.data_dir, "feed service running")
        self.feeds.start()
        self.wskprops.write_text(f"APIHOST={self.api_host}\nAUTH={self.auth}\n")
        self._wait_until_invocable()

    def add_invoker(self, invoker_id: int, env: dict[str, str]) -> ServiceProcess:
        invoker = ServiceProcess(
            f"invoker{invoker_id}", ["invoker"],
            env | {"PYWHISK_INVOKER_ID": str(invoker_id), "PYWHISK_CONTAINERS": self.containers,
                   "PYWHISK_API_HOST": self.api_host or "http://127.0.0.1"},
            self.data_dir, "running")
        invoker.start()
        self.invokers.append(invoker)
        return invoker

    def _request(self, method: str, path: str, body: bytes | None = None) -> int:
        request = urllib.request.Request(f"{self.api_host}/api/v1/{path}", data=body, method=method,
                                         headers={**self.headers(), "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status
        except urllib.error.HTTPError as exc:
            return exc.code

    def _wait_until_invocable(self) -> None:
        code = b'{"exec": {"kind": "python:3.11", "code": "def main(a):\\n    return {}\\n"}}'
        assert self._request("PUT", "namespaces/_/actions/ready-probe?overwrite=true", code) == 200
        deadline = time.monotonic() + START_TIMEOUT_S
        while self._request("POST", "namespaces/_/actions/ready-probe?blocking=true", b"{}") != 200:
            if time.monotonic() > deadline:
                raise RuntimeError("the distributed stack did not become invocable")
            time.sleep(0.5)

    def stop(self) -> None:
        for process in [*self.controllers, *self.invokers, *([self.feeds] if self.feeds else [])]:
            process.stop()
        self._stack.close()
