"""The distributed stack with docker-compose and the offline override, on this machine's Docker.

`deploy/compose.sh up --offline` builds every image locally (no registry), brings up CouchDB (pouchdb-server), Kafka
(tansu), the init job, a controller, an invoker and nginx under a project name of its own on free loopback ports, and
waits until the API answers through the gateway. The test then creates an action, invokes it blocking through nginx
over TLS, trusting only the certificate the init job generated (verification on), reads the activation by its id,
stores and reads a record through the LoopBack catalog's routes (its actions reach the stack's own registry, the
`catalogdb` service, on the actions' network), and finally removes the whole stack with its volumes and action
containers (`down --volumes`), whatever happened.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import secrets
import signal
import socket
import ssl
import subprocess
from pathlib import Path

import aiohttp
import pytest

from controller.system import api_path

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_SH = ROOT / "deploy" / "compose.sh"
#: a cold build of every image (bases, runtimes, stand-ins) plus `up` until the API answers
UP_TIMEOUT_S = 720
DOWN_TIMEOUT_S = 120

CODE = '''
def main(args):
    print("compose test", args.get("name"))
    return {"greeting": "Hello " + args.get("name", "?")}
'''


def _free_ports(count: int) -> list[int]:
    """`count` distinct free loopback ports (all bound at once while choosing, so none is chosen twice)."""
    with contextlib.ExitStack() as stack:
        ports = []
        for _ in range(count):
            probe = stack.enter_context(socket.socket())
            probe.bind(("127.0.0.1", 0))
            ports.append(int(probe.getsockname()[1]))
        return ports


def _run(args: list[str], env: dict[str, str], timeout_s: float) -> subprocess.CompletedProcess[str]:
    """`deploy/compose.sh ARGS` in its own process group, killed as a group when it overruns `timeout_s`."""
    process = subprocess.Popen([str(COMPOSE_SH), *args], cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        output, _ = process.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        raise AssertionError(f"compose.sh {' '.join(args)} took longer than {timeout_s} s:\n{output[-5000:]}") from None
    return subprocess.CompletedProcess(process.args, process.returncode, output, None)


def _printed(output: str) -> dict[str, str]:
    values = {}
    for line in output.splitlines():
        name, sep, value = line.partition("=")
        if sep and name in ("APIHOST", "AUTH", "CACERT"):
            values[name] = value.strip()
    return values


@pytest.mark.timeout(UP_TIMEOUT_S + DOWN_TIMEOUT_S + 60)
async def test_offline_stack_invokes_an_action_through_nginx_over_tls() -> None:
    project = f"pywhisk-test-{secrets.token_hex(4)}"
    https_port, http_port, couchdb_port, kafka_port, catalogdb_port = _free_ports(5)
    env = {
        **os.environ,
        "PYWHISK_HTTPS_PORT": str(https_port),
        "PYWHISK_HTTP_PORT": str(http_port),
        "PYWHISK_COUCHDB_PORT": str(couchdb_port),
        "PYWHISK_KAFKA_PORT": str(kafka_port),
        "PYWHISK_CATALOGDB_PORT": str(catalogdb_port),
        # action containers are named and labelled by invoker id on the shared engine: stay clear of other runs
        "PYWHISK_INVOKER_ID_BASE": str(5000 + secrets.randbelow(4000)),
        "PYWHISK_UP_TIMEOUT_S": str(UP_TIMEOUT_S - 60),
    }
    try:
        up = await asyncio.to_thread(_run, ["up", "--offline", "--project", project], env, UP_TIMEOUT_S)
        assert up.returncode == 0, up.stdout[-5000:]
        printed = _printed(up.stdout)
        assert printed.keys() == {"APIHOST", "AUTH", "CACERT"}, up.stdout[-3000:]
        assert printed["APIHOST"] == f"https://127.0.0.1:{https_port}"

        tls = ssl.create_default_context(cafile=printed["CACERT"])
        basic = base64.b64encode(printed["AUTH"].encode()).decode()
        api = f"{printed['APIHOST']}/api/v1/namespaces/_"
        name = f"compose-{secrets.token_hex(3)}"
        async with aiohttp.ClientSession(
            headers={"Authorization": f"Basic {basic}"}, connector=aiohttp.TCPConnector(ssl=tls),
            timeout=aiohttp.ClientTimeout(total=90),
        ) as session:
            async with session.put(f"{api}/actions/{name}",
                                   json={"exec": {"kind": "python:3.11", "code": CODE}}) as created:
                assert created.status == 200, await created.text()
            async with session.post(f"{api}/actions/{name}", params={"blocking": "true"},
                                    json={"name": "compose"}) as invoked:
                record = await invoked.json()
                assert invoked.status == 200, record
                assert invoked.headers["x-openwhisk-activation-id"] == record["activationId"]
            assert record["response"]["result"] == {"greeting": "Hello compose"}
            async with session.get(f"{api}/activations/{record['activationId']}") as fetched:
                stored = await fetched.json()
                assert fetched.status == 200, stored
            assert stored["activationId"] == record["activationId"]
            assert stored["name"] == name
            assert stored["response"]["success"] is True
            assert stored["response"]["result"] == {"greeting": "Hello compose"}
            assert any("compose test compose" in line for line in stored["logs"]), stored["logs"]

            # the LoopBack catalog: a memory datasource keeps its records in the stack's registry
            routes = f"{printed['APIHOST']}{api_path('/loopback')}"
            async with session.post(f"{routes}/datasources", json={"connector": "memory"}) as made:
                datasource = await made.json()
                assert made.status == 201, datasource
            async with session.post(f"{routes}/models", json={
                    "name": "Note", "datasourceId": datasource["id"], "properties": {"text": "string"}}) as made:
                model = await made.json()
                assert made.status == 201, model
            async with session.post(f"{routes}{model['path']}", json={"text": "from compose"}) as made:
                assert made.status == 201, await made.text()
            async with session.get(f"{routes}{model['path']}") as found:
                assert found.status == 200, await found.text()
                assert [note["text"] for note in await found.json()] == ["from compose"]

        # Verification is really on: a client that does not trust the generated certificate is refused.
        async with aiohttp.ClientSession() as strict:
            with pytest.raises(aiohttp.ClientConnectorCertificateError):
                await strict.get(f"{printed['APIHOST']}/api/v1")
    finally:
        down = await asyncio.to_thread(_run, ["down", "--volumes", "--project", project], env, DOWN_TIMEOUT_S)
        assert down.returncode == 0, down.stdout[-3000:]
