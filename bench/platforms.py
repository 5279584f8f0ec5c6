"""The platforms a benchmark run starts (lazily, once each) and how the benchmarks talk to them and their containers.

- `standalone`: one `pywhisk standalone` process on Docker containers, no prewarmed containers;
- `prewarm`: the same with prewarmed containers (the manifest's, one per default kind, 256 MB);
- `distributed`: CouchDB-compatible store, Kafka-protocol broker, controller, invoker, feed service, nginx in front.

Each invoker gets an id of its own (`wsk{id}_` prefixes its containers' names) that no container on the engine uses
yet, so the benchmark never touches another platform's containers (a test run's, say). Idle containers are not paused
during a run (`PYWHISK_PAUSE_GRACE_S`), so direct calls reach them; user memory is large enough that no benchmark
evicts another's containers.
"""

from __future__ import annotations

import asyncio
import random
import secrets
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from bench.measure import docker, rss_mb
from tests.e2e.distributed import DistributedPlatform
from tests.e2e.platform import Platform

NOOP = "def main(args):\n    return {}\n"
KIND = "python:3.11"
#: memory of the benchmark's actions in MB (the prewarmed containers' size, so that a prewarm can be taken)
ACTION_MEMORY_MB = 256
#: user memory of the standalone platforms: room for every container a run keeps warm (the 100 actions of the
#: throughput benchmark at 128 MB each and the cold-start samples), only a limit: idle containers use far less
USER_MEMORY_MB = 20480
PROXY_PORT = 8080
RUN_BODY = {"value": {}, "activation_id": "0" * 32, "action_name": "/guest/direct", "namespace": "guest",
            "deadline": "0"}

AnyPlatform = Platform | DistributedPlatform


def unique_name(prefix: str) -> str:
    """An action name nobody used yet (short: container names keep 40 characters of it)."""
    return f"{prefix}{secrets.token_hex(3)}"


async def free_invoker_id(low: int, high: int) -> int:
    """An invoker id in [low, high] whose container name prefix no container on the engine has."""
    names = (await docker("ps", "-a", "--format", "{{.Names}}")).split()
    taken = {name.split("_", 1)[0] for name in names if name.startswith("wsk")}
    for _ in range(1000):
        candidate = random.randint(low, high)
        if f"wsk{candidate}" not in taken:
            return candidate
    raise RuntimeError("no free invoker id")


@dataclass
class _BenchDistributed(DistributedPlatform):
    """The e2e suite's distributed stack, with the invoker ids chosen by the benchmark."""

    first_invoker_id: int = 0

    def add_invoker(self, invoker_id: int, env: dict[str, str]) -> Any:
        return super().add_invoker(self.first_invoker_id + len(self.invokers), env)


@dataclass
class Platforms:
    """The run's platforms, each started on first use and stopped by `stop` (or `close`)."""

    log_level: str = "INFO"
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="pywhisk-bench-")))
    running: dict[str, AnyPlatform] = field(default_factory=dict)
    invoker_ids: dict[str, int] = field(default_factory=dict)
    #: each process's resident memory (MB) right after its platform started, by platform and service
    idle_rss_mb: dict[str, dict[str, float]] = field(default_factory=dict)
    start_s: dict[str, float] = field(default_factory=dict)
    #: the platforms sections still to come will use (set by the orchestrator before each section)
    keep: set[str] = field(default_factory=set)

    def _env(self, invoker_id: int, prewarm: bool) -> dict[str, str]:
        return {"PYWHISK_INVOKER_ID": str(invoker_id), "PYWHISK_PREWARM": str(prewarm).lower(),
                "PYWHISK_PAUSE_GRACE_S": "3600", "PYWHISK_IDLE_TIMEOUT_S": "3600",
                "PYWHISK_USER_MEMORY_MB": str(USER_MEMORY_MB), "PYWHISK_LOG_LEVEL": self.log_level}

    async def get(self, which: str) -> AnyPlatform:
        """The platform `which` (standalone, prewarm or distributed), started now if it is not running."""
        if which in self.running:
            return self.running[which]
        started = time.perf_counter()
        if which in ("standalone", "prewarm"):
            invoker_id = await free_invoker_id(7000, 7999)
            platform: AnyPlatform = Platform(self.root / which, "docker",
                                             env=self._env(invoker_id, which == "prewarm"))
            await asyncio.to_thread(platform.start)
        elif which == "distributed":
            invoker_id = await free_invoker_id(8000, 8999)
            env = self._env(invoker_id, False)
            del env["PYWHISK_INVOKER_ID"]
            platform = _BenchDistributed(self.root / which, env=env, first_invoker_id=invoker_id)
            await asyncio.to_thread(platform.start)
        else:
            raise ValueError(which)
        self.start_s[which] = time.perf_counter() - started
        self.running[which], self.invoker_ids[which] = platform, invoker_id
        self.idle_rss_mb[which] = {name: rss_mb(pid) for name, pid in service_pids(platform).items()}
        return platform

    async def restart(self, which: str) -> AnyPlatform:
        """`which` started afresh: an empty container pool (the store keeps its entities)."""
        platform = self.running.get(which)
        if isinstance(platform, Platform):
            await asyncio.to_thread(platform.stop)
            await asyncio.to_thread(platform.start)
            return platform
        await self.stop(which)
        return await self.get(which)

    async def done_with(self, which: str) -> None:
        """Stop `which` now unless a later section needs it (so that it does not run beside what comes next)."""
        if which not in self.keep:
            await self.stop(which)

    async def stop(self, which: str) -> None:
        platform = self.running.pop(which, None)
        if platform is not None:
            await asyncio.to_thread(platform.stop)

    async def close(self, keep_logs: bool = False) -> None:
        """Stop every platform; remove their data and logs unless `keep_logs` (said on stderr)."""
        for which in list(self.running):
            await self.stop(which)
        if keep_logs:
            print(f"[bench] the platforms' data and logs are kept in {self.root}", file=sys.stderr)
        else:
            shutil.rmtree(self.root, ignore_errors=True)


def service_pids(platform: AnyPlatform) -> dict[str, int]:
    """The pid of each process of `platform`, by service name (nginx: its master and each worker)."""
    if isinstance(platform, Platform):
        assert platform.process is not None
        return {"standalone": platform.process.pid}
    pids: dict[str, int] = {}
    for service in [*platform.controllers, *platform.invokers, *([platform.feeds] if platform.feeds else [])]:
        assert service.process is not None
        pids[service.name] = service.process.pid
    pids["store (pouchdb-server)"] = platform.couchdb.pid
    assert platform.kafka.process is not None
    pids["broker (tansu)"] = platform.kafka.process.pid
    assert platform.gateway.process is not None
    pids["nginx master"] = platform.gateway.process.pid
    for n, pid in enumerate(sorted(platform.gateway.worker_pids())):
        pids[f"nginx worker {n}"] = pid
    return pids


async def put_action(session: aiohttp.ClientSession, platform: AnyPlatform, name: str,
                     memory_mb: int = ACTION_MEMORY_MB, overwrite: bool = True) -> float:
    """Create (or replace) the no-op action `name`; seconds the request took."""
    body = {"exec": {"kind": KIND, "code": NOOP}, "limits": {"memory": memory_mb}}
    started = time.perf_counter()
    async with session.put(f"{platform.api_host}/api/v1/namespaces/_/actions/{name}",
                           params={"overwrite": str(overwrite).lower()}, json=body, headers=platform.headers()) as r:
        text = await r.text()
        if r.status != 200:
            raise RuntimeError(f"PUT of action {name} answered {r.status}: {text[:300]}")
    return time.perf_counter() - started


async def invoke(session: aiohttp.ClientSession, platform: AnyPlatform, name: str,
                 api_host: str | None = None) -> dict[str, Any]:
    """A blocking invoke of `name` (through `api_host`, by default the platform's); the activation record."""
    url = f"{api_host or platform.api_host}/api/v1/namespaces/_/actions/{name}"
    async with session.post(url, params={"blocking": "true"}, json={}, headers=platform.headers()) as response:
        body = await response.json(content_type=None)
        if response.status != 200:
            raise RuntimeError(f"invoke of {name} answered {response.status}: {str(body)[:300]}")
    return body


async def direct_run(session: aiohttp.ClientSession, ip: str) -> None:
    """POST /run straight to the warm container at `ip`, as the invoker does."""
    async with session.post(f"http://{ip}:{PROXY_PORT}/run", json=RUN_BODY) as response:
        await response.read()
        if response.status != 200:
            raise RuntimeError(f"/run at {ip} answered {response.status}")


def annotation(record: dict[str, Any], key: str) -> float | None:
    """An annotation of an activation record (waitTime, initTime), None when it has none."""
    for pair in record.get("annotations") or []:
        if pair.get("key") == key:
            return float(pair["value"])
    return None


async def containers_of(invoker_id: int) -> list[str]:
    """Names of the running containers of invoker `invoker_id`."""
    out = await docker("ps", "--filter", f"name=^wsk{invoker_id}_", "--format", "{{.Names}}")
    return [name for name in out.split() if name.startswith(f"wsk{invoker_id}_")]


async def container_ip(name: str) -> str:
    return await docker("inspect", "--format", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", name)


async def action_container(invoker_id: int, action: str) -> str:
    """The one container invoker `invoker_id` started for the action `action` (of the guest namespace)."""
    names = [n for n in await containers_of(invoker_id) if n.endswith(f"_guest_{action}")]
    if len(names) != 1:
        raise RuntimeError(f"expected one container of {action}, found {names}")
    return names[0]


async def proxy_answers(session: aiohttp.ClientSession, ip: str) -> bool:
    try:
        async with session.get(f"http://{ip}:{PROXY_PORT}/", timeout=aiohttp.ClientTimeout(total=1)):
            return True
    except (aiohttp.ClientError, TimeoutError):
        return False
