"""The runtime images built by deploy/images.sh, run the way the invoker runs them.

Every test needs Docker and the images; the session fixture runs deploy/images.sh (which installs and starts
Docker when it may, and is a no-op when the images are current). Without Docker these tests fail with the
script's message; they never skip. Each test removes the containers it started, by id.
"""

from __future__ import annotations

import base64
import fcntl
import http.client
import io
import json
import os
import subprocess
import textwrap
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
IMAGES_SH = ROOT / "deploy" / "images.sh"
SENTINEL = "XXX_THE_END_OF_A_WHISK_ACTIVATION_XXX"
#: a cold build of all four images takes about a minute here; the bound is for slower machines
BUILD_TIMEOUT_S = 900

# The first test that asks for the images pays for a cold build, within its own timeout.
pytestmark = pytest.mark.timeout(BUILD_TIMEOUT_S + 60)

HARDENED = [
    "--read-only",
    "--tmpfs",
    "/tmp",
    "--cap-drop",
    "ALL",
    "--security-opt",
    "no-new-privileges",
    "--user",
    "1000",
    "--memory",
    "256m",
]


def images_sh(*args: str) -> str:
    """Runs deploy/images.sh and returns its stdout; fails the test with its output when it fails."""
    try:
        done = subprocess.run(
            ["bash", str(IMAGES_SH), *args], capture_output=True, text=True, timeout=BUILD_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"deploy/images.sh did not finish within {BUILD_TIMEOUT_S} s")
    if done.returncode != 0:
        pytest.fail(
            f"deploy/images.sh failed (exit {done.returncode}); these tests need Docker and the runtime images.\n"
            f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
        )
    return done.stdout


def docker(*args: str, timeout_s: float = 60) -> str:
    done = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout_s, check=False)
    assert done.returncode == 0, f"docker {' '.join(args)} failed: {done.stderr.strip()}"
    return done.stdout


@pytest.fixture(scope="session")
def images() -> str:
    """The output of a deploy/images.sh run: all four images exist and are current."""
    return images_sh()


def test_the_build_lock_is_free_once_a_run_has_finished(images: str) -> None:
    # dockerd, when the script starts it, outlives the script: it must not inherit the lock's descriptor
    default = "/var/tmp/pywhisk" if os.getuid() == 0 else str(Path.home() / ".cache" / "pywhisk")
    lock = Path(os.environ.get("PYWHISK_STATE_DIR") or default) / "images.lock"
    with lock.open("a") as held:
        try:
            fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pytest.fail(f"{lock} is still held after deploy/images.sh finished")
        fcntl.flock(held, fcntl.LOCK_UN)


@dataclass
class Runtime:
    image: str
    #: source of a `main` that uses a preinstalled module, prints a line to each stream and returns a dict
    source: str
    #: name of the entry file in a zipped action
    zip_entry: str
    #: the keys and values `main` returns for the parameters {"name": "ada", "when": "2024-05-01T12:00:00Z"}
    expected: dict[str, Any]


PYTHON = Runtime(
    image="pywhisk/action-python:3.11",
    source="""
        import os
        import sys

        import requests
        from dateutil import parser

        def main(args):
            print("hello to stdout")
            print("hello to stderr", file=sys.stderr)
            with open("/tmp/scratch", "w") as f:
                f.write("tmp is writable")
            return {
                "greeting": "Hello " + args["name"].title(),
                "year": parser.isoparse(args["when"]).year,
                "requests": requests.__version__ != "",
                "uid": os.getuid(),
            }
    """,
    zip_entry="__main__.py",
    expected={"greeting": "Hello Ada", "year": 2024, "requests": True, "uid": 1000},
)

NODEJS = Runtime(
    image="pywhisk/action-nodejs:22",
    source="""
        const fs = require('fs');
        const _ = require('lodash');
        const { v4: uuidv4 } = require('uuid');
        const openwhisk = require('openwhisk');

        function main(args) {
          console.log('hello to stdout');
          console.error('hello to stderr');
          fs.writeFileSync('/tmp/scratch', 'tmp is writable');
          return {
            greeting: `Hello ${_.capitalize(args.name)}`,
            year: new Date(args.when).getUTCFullYear(),
            uuid: uuidv4().length === 36,
            openwhisk: typeof openwhisk === 'function',
            uid: process.getuid(),
            node: Number(process.versions.node.split('.')[0]),
          };
        }
        module.exports.main = main;
    """,
    zip_entry="index.js",
    expected={"greeting": "Hello Ada", "year": 2024, "uuid": True, "openwhisk": True, "uid": 1000, "node": 22},
)

RUNTIMES = [pytest.param(PYTHON, id="python"), pytest.param(NODEJS, id="nodejs")]


class Container:
    """A started action container, reached on its published loopback port."""

    def __init__(self, container_id: str, port: int) -> None:
        self.id = container_id
        self.port = port

    def post(self, path: str, body: dict[str, Any], timeout_s: float = 30) -> tuple[int, Any]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout_s)
        try:
            conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
            response = conn.getresponse()
            return response.status, json.loads(response.read())
        finally:
            conn.close()

    def wait_ready(self, timeout_s: float = 30) -> None:
        """Until the proxy answers HTTP (a 404 for an unknown path; the published port alone accepts early)."""
        deadline = time.monotonic() + timeout_s
        while True:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
            try:
                conn.request("GET", "/ready")
                if conn.getresponse().status == 404:
                    return
            except (OSError, http.client.HTTPException):
                pass
            finally:
                conn.close()
            state = docker("inspect", "-f", "{{.State.Status}}", self.id).strip()
            assert state == "running", f"the container is {state}; logs:\n{self.logs()}"
            assert time.monotonic() < deadline, f"the proxy did not answer within {timeout_s} s"
            time.sleep(0.05)

    def logs(self) -> tuple[str, str]:
        done = subprocess.run(["docker", "logs", self.id], capture_output=True, text=True, timeout=30, check=False)
        assert done.returncode == 0, done.stderr
        return done.stdout, done.stderr

    def logs_until_sentinels(self, timeout_s: float = 10) -> tuple[str, str]:
        """The container's stdout and stderr once both carry the sentinel (Docker copies the streams async)."""
        deadline = time.monotonic() + timeout_s
        while True:
            stdout, stderr = self.logs()
            if SENTINEL in stdout and SENTINEL in stderr:
                return stdout, stderr
            assert time.monotonic() < deadline, f"no sentinel on both streams:\nstdout:\n{stdout}\nstderr:\n{stderr}"
            time.sleep(0.05)


@pytest.fixture
def start(images: str) -> Iterator[Any]:
    """`start(image)`: a hardened container of the image, as the invoker starts it; removed after the test."""
    started: list[str] = []

    def run(image: str) -> Container:
        container_id = docker("run", "-d", *HARDENED, "-p", "127.0.0.1::8080", image).strip()
        started.append(container_id)
        port = docker("port", container_id, "8080/tcp").splitlines()[0].rsplit(":", 1)[1]
        container = Container(container_id, int(port))
        container.wait_ready()
        return container

    try:
        yield run
    finally:
        for container_id in started:
            subprocess.run(["docker", "rm", "-f", container_id], capture_output=True, timeout=60, check=False)


def zipped(entry: str, source: str) -> str:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(entry, source)
    return base64.b64encode(buf.getvalue()).decode()


@pytest.mark.parametrize("binary", [False, True], ids=["source", "zip"])
@pytest.mark.parametrize("runtime", RUNTIMES)
def test_action_runs_hardened_with_a_preinstalled_module(start: Any, runtime: Runtime, binary: bool) -> None:
    container = start(runtime.image)
    source = textwrap.dedent(runtime.source)
    code = zipped(runtime.zip_entry, source) if binary else source

    status, body = container.post("/init", {"value": {"name": "t", "main": "main", "code": code, "binary": binary}})
    assert status == 200, body

    status, body = container.post(
        "/run", {"value": {"name": "ada", "when": "2024-05-01T12:00:00Z"}, "activation_id": "a1"}
    )
    assert status == 200, body
    assert body == runtime.expected

    stdout, stderr = container.logs_until_sentinels()
    assert stdout.index("hello to stdout") < stdout.index(SENTINEL)
    assert stderr.index("hello to stderr") < stderr.index(SENTINEL)


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_image_runs_as_uid_1000_with_the_proxy_on_8080(images: str, runtime: Runtime) -> None:
    config = json.loads(docker("image", "inspect", "-f", "{{json .Config}}", runtime.image))
    assert config["User"] == "1000:1000"
    assert "8080/tcp" in config["ExposedPorts"]
    assert config["Entrypoint"][1].startswith("/opt/pywhisk/proxy.")
    assert config["Cmd"] == ["--port", "8080"]


def test_a_second_run_rebuilds_nothing(images: str) -> None:
    again = images_sh()
    lines = again.splitlines()
    for image in ("pywhisk/base-python:bookworm", "pywhisk/base-nodejs:bookworm", PYTHON.image, NODEJS.image):
        line = next((line for line in lines if line.startswith(image + " ")), None)
        assert line is not None and "up to date" in line, again
    assert lines[-1] == "all images up to date", again
