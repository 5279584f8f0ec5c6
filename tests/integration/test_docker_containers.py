"""The Docker container factory against the real Docker engine and the runtime images.

Needs a Docker engine on /var/run/docker.sock and the images `pywhisk/action-python:3.11` and
`pywhisk/action-nodejs:22` (built by deploy/images.sh); without them these tests fail, they do not skip.
Every test runs as an invoker id of its own, drawn at random, and removes every container labelled with it.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import sys
import textwrap
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from invoker import Invoker
from invoker.containers import Crashed, OutOfMemory, StartError, TimedOut
from invoker.containers.docker import (
    API_VERSION,
    DOCKER_SOCKET,
    NETWORK,
    PIDS_LIMIT,
    DockerContainer,
    DockerContainerFactory,
    engine_answers,
)
from invoker.logs import SENTINEL
from invoker.pool import ContainerPool
from invoker.pool.policy import ActionKey
from tests.integration.conftest import Harness
from whisk.bus.local import LocalBus
from whisk.config import InvokerSettings
from whisk.entities.action import Exec, WhiskAction
from whisk.entities.limits import ActionLimits
from whisk.messages import ActionRef
from whisk.runtimes import BLACKBOX, Runtime, manifest
from whisk.store import open_store

PYTHON = "python:3.11"
NODEJS = "nodejs:22"
DOCKER = f"http://docker/{API_VERSION}"
LOG_LINE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z +(stdout|stderr): (.*)")

Start = Callable[..., Awaitable[DockerContainer]]


def _runtime(kind: str) -> Runtime:
    runtime = manifest().get(kind)
    assert runtime is not None
    return runtime


def _blackbox(image: str) -> Runtime:
    return Runtime(BLACKBOX, BLACKBOX, BLACKBOX, image, False, 0, 256)


def _init_payload(code: str) -> dict[str, Any]:
    return {"value": {"name": "test", "main": "main", "code": textwrap.dedent(code), "binary": False, "env": {}}}


async def _run(container: DockerContainer, params: dict[str, Any] | None = None, timeout_s: float = 30) -> Any:
    result = await container.run({"value": params or {}, "activation_id": "a1"}, timeout_s, 1024 * 1024)
    assert result.status == 200, result.body
    return json.loads(result.body)


@pytest.fixture
async def docker() -> AsyncIterator[aiohttp.ClientSession]:
    """A raw Docker API session, for what the tests check and clean up behind the factory."""
    async with aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=DOCKER_SOCKET)) as session:
        try:
            async with session.get(f"{DOCKER}/_ping", timeout=aiohttp.ClientTimeout(total=10)) as response:
                assert response.status == 200
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            pytest.fail(f"These tests need a Docker engine on {DOCKER_SOCKET} ('docker info' must work): {exc!r}")
        missing = []
        for kind in (PYTHON, NODEJS):
            async with session.get(f"{DOCKER}/images/{_runtime(kind).image}/json") as response:
                if response.status != 200:
                    missing.append(_runtime(kind).image)
        if missing:
            pytest.fail(f"These tests need the runtime images {missing}: build them with deploy/images.sh")
        yield session


async def _labelled(docker: aiohttp.ClientSession, invoker_id: int) -> list[dict[str, Any]]:
    filters = json.dumps({"label": [f"pywhisk.invoker={invoker_id}"]})
    async with docker.get(f"{DOCKER}/containers/json", params={"all": "1", "filters": filters}) as response:
        return await response.json()


async def _remove_labelled(docker: aiohttp.ClientSession, invoker_id: int) -> None:
    for container in await _labelled(docker, invoker_id):
        async with docker.delete(f"{DOCKER}/containers/{container['Id']}", params={"force": "1"}):
            pass


async def _inspect(docker: aiohttp.ClientSession, container_id: str) -> dict[str, Any]:
    async with docker.get(f"{DOCKER}/containers/{container_id}/json") as response:
        assert response.status == 200
        return await response.json()


@pytest.fixture
async def invoker_id(docker: aiohttp.ClientSession) -> AsyncIterator[int]:
    """An invoker id no real invoker on this engine uses; whatever carries its label is removed afterwards."""
    chosen = random.randint(100_000, 999_999)
    try:
        yield chosen
    finally:
        await _remove_labelled(docker, chosen)


@pytest.fixture
async def factory(invoker_id: int) -> AsyncIterator[DockerContainerFactory]:
    opened = DockerContainerFactory(InvokerSettings(invoker_id=invoker_id))
    try:
        await opened.cleanup()
        yield opened
    finally:
        await opened.close()


@pytest.fixture
def start(factory: DockerContainerFactory) -> Start:
    """Start a container of `kind` and initialise it with `code` (when given)."""

    async def _start(code: str | None = None, kind: str = PYTHON, memory_mb: int = 256) -> DockerContainer:
        container = await factory.create("test", _runtime(kind), memory_mb, {"TEST_VARIABLE": "yes"})
        if code is not None:
            result = await container.initialize(_init_payload(code), 30)
            assert result.ok, result.body
        return container

    return _start


async def _activation_logs(container: DockerContainer) -> list[tuple[str, str]]:
    """The stream and text of each line, sorted: the order between both streams depends on when Docker read them."""
    lines, truncated = await container.logs(1024 * 1024)
    assert not truncated
    parsed = [LOG_LINE.fullmatch(line) for line in lines]
    assert all(parsed), lines
    return sorted((m[1], m[2]) for m in parsed if m)


# the container's life


async def test_a_python_container_initialises_runs_and_hands_out_each_activations_logs(
    start: Start, invoker_id: int
) -> None:
    container = await start(
        """
        import os, sys
        def main(args):
            print("out", args["n"])
            print("err", args["n"], file=sys.stderr)
            return {"n": args["n"], "variable": os.environ.get("TEST_VARIABLE"),
                    "api_host": os.environ.get("__OW_API_HOST")}
        """
    )
    assert container.name.startswith(f"wsk{invoker_id}_")
    first = await _run(container, {"n": 1})
    assert first == {"n": 1, "variable": "yes", "api_host": InvokerSettings().api_host}
    assert await _activation_logs(container) == [("stderr", "err 1"), ("stdout", "out 1")]
    await _run(container, {"n": 2})
    logs = await _activation_logs(container)
    assert logs == [("stderr", "err 2"), ("stdout", "out 2")]
    assert all(SENTINEL not in text for _, text in logs)


async def test_a_nodejs_container_initialises_runs_and_hands_out_each_activations_logs(start: Start) -> None:
    container = await start(
        """
        function main(args) {
            console.log("out " + args.n);
            console.error("err " + args.n);
            return {n: args.n, variable: process.env.TEST_VARIABLE};
        }
        """,
        kind=NODEJS,
    )
    assert await _run(container, {"n": 7}) == {"n": 7, "variable": "yes"}
    assert await _activation_logs(container) == [("stderr", "err 7"), ("stdout", "out 7")]


async def test_a_warm_container_answers_100_sequential_runs_in_one_process(start: Start) -> None:
    container = await start(
        """
        import os
        count = 0
        def main(args):
            global count
            count += 1
            print("run", count)
            return {"count": count, "pid": os.getpid()}
        """
    )
    pids = set()
    for n in range(1, 101):
        answer = await _run(container, {})
        assert answer["count"] == n
        pids.add(answer["pid"])
        assert await _activation_logs(container) == [("stdout", f"run {n}")]
    assert len(pids) == 1


async def test_a_suspended_container_runs_again_after_resume(start: Start, docker: aiohttp.ClientSession) -> None:
    container = await start("def main(args):\n    return {'ok': True}\n")
    await container.suspend()
    assert (await _inspect(docker, container.id))["State"]["Paused"] is True
    await container.resume()
    assert (await _inspect(docker, container.id))["State"]["Paused"] is False
    assert await _run(container) == {"ok": True}


async def test_a_run_past_its_time_limit_raises_timed_out(start: Start) -> None:
    container = await start("import time\ndef main(args):\n    time.sleep(30)\n    return {}\n")
    with pytest.raises(TimedOut):
        await container.run({"value": {}}, 0.5, 1024)
    lines, _ = await container.logs(1024, wait_for_sentinel=False)
    assert lines[-1].endswith("The action did not initialize or run as expected. Log data might be missing.")


async def test_an_action_that_exits_the_proxy_raises_crashed(start: Start, docker: aiohttp.ClientSession) -> None:
    container = await start("import os\ndef main(args):\n    print('bye', flush=True)\n    os._exit(1)\n")
    with pytest.raises(Crashed) as raised:
        await container.run({"value": {}}, 30, 1024)
    assert not isinstance(raised.value, OutOfMemory)
    assert (await _inspect(docker, container.id))["State"]["ExitCode"] == 1


async def test_destroy_removes_the_container_and_is_idempotent(start: Start, docker: aiohttp.ClientSession) -> None:
    container = await start()
    await container.destroy()
    await container.destroy()
    async with docker.get(f"{DOCKER}/containers/{container.id}/json") as response:
        assert response.status == 404
    with pytest.raises(Crashed):
        await container.run({"value": {}}, 5, 1024)


async def test_a_missing_image_is_a_start_error_and_leaves_no_container(
    factory: DockerContainerFactory, docker: aiohttp.ClientSession, invoker_id: int
) -> None:
    with pytest.raises(StartError, match="not present"):
        await factory.create("test", _blackbox("pywhisk/no-such-image:0"), 256, {})
    assert await _labelled(docker, invoker_id) == []


async def test_a_blackbox_image_implementing_init_and_run_runs(factory: DockerContainerFactory) -> None:
    factory.check_kind("blackbox")
    container = await factory.create("bb", _blackbox(_runtime(PYTHON).image), 256, {})
    assert (await container.initialize(_init_payload("def main(args):\n    return {'bb': 1}\n"), 30)).ok
    assert await _run(container) == {"bb": 1}


async def test_engine_answers_tells_whether_a_docker_engine_listens(tmp_path: Path) -> None:
    assert await engine_answers()
    assert not await engine_answers(str(tmp_path / "no-docker.sock"))


async def test_the_kinds_available_are_those_whose_image_is_present(factory: DockerContainerFactory) -> None:
    assert sorted(factory.available_kinds()) == sorted([PYTHON, NODEJS])


async def test_cleanup_removes_what_an_earlier_run_of_the_same_invoker_left(
    factory: DockerContainerFactory, docker: aiohttp.ClientSession, invoker_id: int
) -> None:
    other_id = invoker_id + 1
    script = textwrap.dedent(
        f"""
        import asyncio, os
        from invoker.containers.docker import DockerContainerFactory
        from whisk.config import InvokerSettings
        from whisk.runtimes import manifest

        async def main():
            runtime = manifest().get("{PYTHON}")
            for invoker_id, count in (({invoker_id}, 2), ({other_id}, 1)):
                factory = DockerContainerFactory(InvokerSettings(invoker_id=invoker_id))
                for _ in range(count):
                    await factory.create("left", runtime, 128, {{}})
            os._exit(0)  # an invoker that died: nothing closed, nothing removed

        asyncio.run(main())
        """
    )
    try:
        process = await asyncio.create_subprocess_exec(sys.executable, "-c", script, cwd=Path(__file__).parents[2])
        assert await process.wait() == 0
        assert len(await _labelled(docker, invoker_id)) == 2
        assert len(await _labelled(docker, other_id)) == 1
        later = DockerContainerFactory(InvokerSettings(invoker_id=invoker_id))
        try:
            await later.cleanup()
        finally:
            await later.close()
        assert await _labelled(docker, invoker_id) == []
        assert len(await _labelled(docker, other_id)) == 1
    finally:
        await _remove_labelled(docker, other_id)


async def test_containers_are_created_hardened(start: Start, docker: aiohttp.ClientSession) -> None:
    container = await start(memory_mb=256)
    details = await _inspect(docker, container.id)
    host = details["HostConfig"]
    assert host["Memory"] == host["MemorySwap"] == 256 * 1024 * 1024
    assert host["CpuShares"] == 1024 * 256 // InvokerSettings().user_memory_mb
    assert host["PidsLimit"] == PIDS_LIMIT
    assert host["CapDrop"] == ["ALL"]
    assert host["SecurityOpt"] == ["no-new-privileges"]
    assert host["ReadonlyRootfs"] is True
    assert host["NetworkMode"] == NETWORK
    assert details["Config"]["User"] == "1000:1000"
    assert list(details["NetworkSettings"]["Networks"]) == [NETWORK]


# protections, proven from inside an action

PROBE = """
import errno, os, socket, sys, time
def main(args):
    return globals()[args["probe"]](args)

def writes(args):
    outcome = {}
    for directory in ("/", "/opt", "/home", "/etc", "/tmp"):
        try:
            with open(os.path.join(directory, "probe.txt"), "w") as file:
                file.write("x")
            outcome[directory] = "written"
        except OSError as exc:
            outcome[directory] = errno.errorcode[exc.errno]
    outcome["tmp_options"] = next(line.split()[3] for line in open("/proc/mounts") if line.split()[1] == "/tmp")
    return outcome

def identity(args):
    status = dict(line.split(":\\t", 1) for line in open("/proc/self/status").read().splitlines() if ":\\t" in line)
    return {"uid": os.getuid(), "euid": os.geteuid(), "CapEff": int(status["CapEff"], 16),
            "CapBnd": int(status["CapBnd"], 16), "NoNewPrivs": status.get("NoNewPrivs", "").strip()}

def allocate(args):
    chunks = []
    for _ in range(args["mb"] // 10):
        chunk = bytearray(10 << 20)
        chunk[::4096] = b"\\x01" * len(range(0, 10 << 20, 4096))
        chunks.append(chunk)
    return {"allocated_mb": 10 * len(chunks)}

def fork(args):
    forked, failures, last_error = [], 0, None
    deadline = time.monotonic() + args["seconds"]
    while time.monotonic() < deadline and failures < 100:
        try:
            pid = os.fork()
        except OSError as exc:
            failures, last_error = failures + 1, errno.errorcode.get(exc.errno, str(exc.errno))
            continue
        if pid == 0:
            time.sleep(args["hold"])
            os._exit(0)
        forked.append(pid)
    return {"forked": len(forked), "failures": failures, "error": last_error}

def connect(args):
    outcome = {}
    for host in args["hosts"]:
        try:
            with socket.create_connection((host, args["port"]), timeout=3) as connection:
                connection.sendall(b"hello from an action")
            outcome[host] = "connected"
        except OSError as exc:
            outcome[host] = type(exc).__name__
    return outcome
"""


async def test_an_action_cannot_write_outside_tmp(start: Start) -> None:
    outcome = await _run(await start(PROBE), {"probe": "writes"})
    tmp_options = outcome.pop("tmp_options").split(",")
    assert outcome == {"/": "EROFS", "/opt": "EROFS", "/home": "EROFS", "/etc": "EROFS", "/tmp": "written"}
    assert "nosuid" in tmp_options and "nodev" in tmp_options and "noexec" not in tmp_options


async def test_an_action_runs_as_non_root_without_capabilities(start: Start) -> None:
    outcome = await _run(await start(PROBE), {"probe": "identity"})
    assert outcome["uid"] != 0 and outcome["euid"] != 0
    assert outcome["CapEff"] == 0 and outcome["CapBnd"] == 0
    assert outcome["NoNewPrivs"] == "1"


async def test_an_action_allocating_past_its_memory_limit_raises_out_of_memory(start: Start) -> None:
    container = await start(PROBE, memory_mb=128)
    with pytest.raises(OutOfMemory):
        await container.run({"value": {"probe": "allocate", "mb": 300}}, 60, 1024)


async def test_a_nodejs_action_exhausting_its_heap_raises_out_of_memory(start: Start) -> None:
    code = "function main(args) { const keep = []; for (;;) keep.push(new Array(1e6).fill(1)); }"
    container = await start(code, kind=NODEJS, memory_mb=128)
    with pytest.raises(OutOfMemory):
        await container.run({"value": {}}, 60, 1024)


async def test_a_fork_bomb_is_stopped_by_the_pids_limit_and_the_host_can_still_fork(
    start: Start, docker: aiohttp.ClientSession
) -> None:
    container = await start(PROBE, memory_mb=512)
    outcome = await _run(container, {"probe": "fork", "seconds": 20, "hold": 60}, timeout_s=60)
    assert 0 < outcome["forked"] < PIDS_LIMIT
    assert outcome["failures"] > 0 and outcome["error"] == "EAGAIN"
    async with docker.get(f"{DOCKER}/containers/{container.id}/stats", params={"stream": "0"}) as response:
        stats = await response.json()
    assert outcome["forked"] < stats["pids_stats"]["current"] <= PIDS_LIMIT
    host_process = await asyncio.create_subprocess_exec("true")
    assert await host_process.wait() == 0
    print(f"fork bomb: {outcome}, pids in the container: {stats['pids_stats']['current']}")


async def _listener(host: str) -> tuple[asyncio.Server, list[bytes]]:
    received: list[bytes] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        received.append(await reader.read(100))
        writer.close()

    return await asyncio.start_server(serve, host, 0), received


async def test_an_action_cannot_reach_a_port_on_the_hosts_loopback(start: Start) -> None:
    server, received = await _listener("127.0.0.1")
    async with server:
        port = server.sockets[0].getsockname()[1]
        outcome = await _run(
            await start(PROBE), {"probe": "connect", "hosts": ["127.0.0.1", "localhost"], "port": port}
        )
    assert outcome["127.0.0.1"] == "ConnectionRefusedError"
    assert outcome["localhost"] != "connected"
    assert received == []


@pytest.mark.xfail(
    raises=AssertionError,
    reason="the host accepts connections from the actions' bridge on every address it has (INPUT policy ACCEPT); "
    "blocking them is the host's firewall: iptables -I INPUT -i pywhisk0 -m conntrack --ctstate ESTABLISHED,RELATED "
    "-j ACCEPT; iptables -I INPUT 2 -i pywhisk0 -j DROP (the invoker still reaches the proxies)",
)
async def test_an_action_cannot_reach_a_port_on_its_networks_gateway(
    start: Start, docker: aiohttp.ClientSession
) -> None:
    async with docker.get(f"{DOCKER}/networks/{NETWORK}") as response:
        gateway = (await response.json())["IPAM"]["Config"][0]["Gateway"]
    container = await start(PROBE)
    server, received = await _listener(gateway)
    async with server:
        port = server.sockets[0].getsockname()[1]
        outcome = await _run(container, {"probe": "connect", "hosts": [gateway], "port": port})
    print(f"connecting to the gateway {gateway}: {outcome}")
    assert outcome[gateway] != "connected"
    assert received == []


# through the pool


async def test_the_pool_runs_activations_in_docker_containers_and_pauses_idle_ones(
    factory: DockerContainerFactory, invoker_id: int
) -> None:
    pool = ContainerPool(
        factory,
        user_memory_mb=1024,
        pause_grace_s=0.1,
        idle_timeout_s=60,
        env={},
        name_prefix=f"wsk{invoker_id}",
    )
    await pool.start()
    action = ActionKey("guest", "guest/hello", "1")
    try:
        for n in range(3):
            async with pool.lease(action, _runtime(PYTHON), 256) as lease:
                if lease.needs_init:
                    code = "def main(args):\n    return {'n': args['n']}\n"
                    assert (await lease.container.initialize(_init_payload(code), 30)).ok
                result = await lease.container.run({"value": {"n": n}}, 30, 1024)
                assert json.loads(result.body) == {"n": n}
            if n == 1:
                for _ in range(100):
                    if pool.stats.pauses:
                        break
                    await asyncio.sleep(0.05)
        assert pool.stats.cold_starts == 1 and pool.stats.warm_reuses == 2
        assert pool.stats.pauses >= 1 and pool.stats.resumes >= 1
    finally:
        await pool.close()


# through the invoker


@pytest.fixture
async def harness(tmp_path: Path, invoker_id: int) -> AsyncIterator[Harness]:
    """An invoker on Docker containers (prewarming both kinds), a SQLite store and the in-process bus."""
    store = await open_store(f"sqlite:///{tmp_path / 'store.db'}")
    settings = InvokerSettings(invoker_id=invoker_id, containers="docker", prewarm=True)
    factory = DockerContainerFactory(settings)
    bus = LocalBus()
    invoker = Invoker(settings, store, bus, factory)
    opened = Harness(invoker, factory, store, bus)  # type: ignore[arg-type]  # Harness names the process factory
    reader = asyncio.create_task(opened.read_completions())
    try:
        await invoker.start()
        yield opened
    finally:
        await invoker.stop()
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)
        await opened.bus.close()
        await store.close()


async def _blackbox_action(harness: Harness, name: str, image: str, code: str) -> ActionRef:
    action = WhiskAction(
        namespace="guest",
        name=name,
        exec=Exec(kind=BLACKBOX, image=image, code=code),
        limits=ActionLimits(),
        updated=1,
    )
    revision = await harness.store.put_entity(f"guest/{name}", "actions", action.model_dump(), None)
    return ActionRef(path="guest", name=name, version=action.version, revision=revision)


async def test_the_invoker_runs_python_and_nodejs_actions_on_prewarmed_docker_containers(harness: Harness) -> None:
    python = await harness.action("py", "def main(args):\n    print('py', args['n'])\n    return {'n': args['n']}\n")
    nodejs = await harness.action(
        "js", "function main(args) { console.log('js', args.n); return {n: args.n}; }", kind=NODEJS
    )
    for n, ref in enumerate((python, nodejs, python)):
        activation = await harness.invoke(ref, {"n": n})
        assert activation.response.statusCode == 0
        assert activation.response.result == {"n": n}
        assert [LOG_LINE.fullmatch(line)[2] for line in activation.logs] == [f"{ref.name} {n}"]  # type: ignore[index]
    assert harness.stats.prewarms_taken == 2 and harness.stats.warm_reuses == 1
    assert harness.stats.cold_starts == 0


async def test_the_invoker_reports_an_action_exhausting_its_memory(harness: Harness) -> None:
    ref = await harness.action("hungry", PROBE, memory=128)
    activation = await harness.invoke(ref, {"probe": "allocate", "mb": 300})
    assert activation.response.statusCode == 2
    assert activation.response.result == {"error": "The action exhausted its memory and was aborted."}
    assert (await harness.invoke(ref, {"probe": "allocate", "mb": 20})).response.result == {"allocated_mb": 20}


async def test_the_invoker_runs_a_blackbox_action_from_a_local_image(harness: Harness) -> None:
    ref = await _blackbox_action(harness, "bb", _runtime(PYTHON).image, "def main(args):\n    return {'bb': True}\n")
    activation = await harness.invoke(ref, {})
    assert activation.response.result == {"bb": True}
    missing = await _blackbox_action(harness, "missing", "pywhisk/no-such-image:0", "")
    failed = await harness.invoke(missing, {})
    assert failed.response.statusCode != 0 and "error" in failed.response.result


async def test_long_lines_are_split_and_logs_past_the_limit_are_cut(start: Start) -> None:
    container = await start("def main(args):\n    print('x' * args['size'])\n    print('after')\n    return {}\n")
    await _run(container, {"size": 40_000})
    lines, truncated = await container.logs(1024 * 1024)
    texts = [LOG_LINE.fullmatch(line)[2] for line in lines]  # type: ignore[index]
    assert "".join(texts[:-1]) == "x" * 40_000 and texts[-1] == "after"
    assert max(len(text) for text in texts) == 16 * 1024  # as Docker's json-file splits them
    await _run(container, {"size": 100})
    lines, truncated = await container.logs(102)
    assert truncated and len(lines) == 1
