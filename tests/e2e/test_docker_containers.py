"""Docker-specific behaviour of a standalone platform: warm reuse, pause and unpause, cleanup after a crash."""

import asyncio
import json
import os
import random
import signal
import subprocess
from pathlib import Path

import aiohttp
import pytest

from tests.e2e.platform import Api, Platform

pytestmark = pytest.mark.e2e


def containers_of(invoker_id: int) -> list[dict[str, object]]:
    out = subprocess.run(
        ["docker", "ps", "-a", "--filter", f"name=^wsk{invoker_id}_", "--format", "{{json .}}"],
        capture_output=True, text=True, check=True, timeout=30).stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def is_paused(name: str) -> bool:
    out = subprocess.run(["docker", "inspect", "--format", "{{.State.Paused}}", name],
                         capture_output=True, text=True, check=True, timeout=30).stdout
    return out.strip() == "true"


@pytest.fixture
def docker_platform(tmp_path: Path) -> Platform:
    invoker_id = random.randint(100, 999)
    own = Platform(data_dir=tmp_path / "standalone", containers="docker",
                   env={"PYWHISK_INVOKER_ID": str(invoker_id), "PYWHISK_PAUSE_GRACE_S": "0.5",
                        "PYWHISK_PREWARM": "false"})
    yield own
    if own.process is not None and own.process.poll() is None:
        own.stop()
    for container in containers_of(invoker_id):
        subprocess.run(["docker", "rm", "-f", str(container["ID"])], capture_output=True, timeout=60)


async def test_warm_reuse_pause_and_unpause_and_cleanup_after_a_crash(docker_platform: Platform) -> None:
    invoker_id = int(docker_platform.env["PYWHISK_INVOKER_ID"])
    docker_platform.start()
    async with aiohttp.ClientSession() as session:
        api = Api(docker_platform, session)
        await api.put_action("counter", "import os\ndef main(a):\n    return {'host': os.uname().nodename}\n")
        records = []
        for _ in range(100):
            status, body, _ = await api.invoke("counter", blocking="true")
            assert status == 200, body
            records.append(body)
        hosts = {r["response"]["result"]["host"] for r in records}
        assert len(hosts) == 1, "100 sequential invocations were served by more than one container"
        cold = [r for r in records if any(a["key"] == "initTime" for a in r["annotations"])]
        assert len(cold) == 1
        [container] = containers_of(invoker_id)

        for _ in range(100):
            if is_paused(str(container["Names"])):
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("the idle container was not paused after its grace period")
        status, body, _ = await api.invoke("counter", blocking="true")
        assert status == 200
        assert body["response"]["result"]["host"] in hosts
        assert not any(a["key"] == "initTime" for a in body["annotations"])

    # the invoker dies without cleaning up: its containers stay until it starts again
    assert docker_platform.process is not None
    os.killpg(docker_platform.process.pid, signal.SIGKILL)
    docker_platform.process.wait(30)
    docker_platform.process = None
    assert containers_of(invoker_id), "the killed invoker's container should still be there"
    docker_platform.start()
    assert containers_of(invoker_id) == []
    docker_platform.stop()


REACH_PLATFORM = """
import socket
import struct


def gateway():
    for line in open("/proc/net/route").read().splitlines()[1:]:
        fields = line.split()
        if fields[1] == "00000000":
            return socket.inet_ntoa(struct.pack("<L", int(fields[2], 16)))


def main(args):
    outcome = {}
    for host in ["127.0.0.1", "localhost", gateway(), args["host"]]:
        sock = socket.socket()
        sock.settimeout(2)
        try:
            sock.connect((host, args["port"]))
            outcome[host] = "connected"
        except OSError as exc:
            outcome[host] = type(exc).__name__
        finally:
            sock.close()
    return outcome
"""


async def test_an_action_in_docker_cannot_reach_the_controller(docker_platform: Platform) -> None:
    docker_platform.start()
    host, port = docker_platform.api_host.removeprefix("http://").rsplit(":", 1)
    async with aiohttp.ClientSession() as session:
        api = Api(docker_platform, session)
        await api.put_action("reach", REACH_PLATFORM)
        status, body, _ = await api.invoke("reach", {"host": host, "port": int(port)}, blocking="true", result="true")
        assert status == 200, body
        assert "connected" not in body.values(), body
