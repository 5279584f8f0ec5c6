"""Memory (resident set, /proc/<pid>/status VmRSS):

- the standalone process's growth per warm container (RSS with N more warm containers, of as many new actions, minus
  before, / N: whatever it keeps per container and per action), beside a warm container's own memory (`docker stats`);
- each service at idle, right after its platform started: the standalone process; the distributed controller,
  invoker and feed service beside a bare Python interpreter with aiohttp imported; the store (pouchdb-server) beside
  a bare Node.js; the broker, nginx and the whole distributed stack beside the standalone process.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import time
from argparse import Namespace
from typing import Any

import aiohttp

from bench.measure import Row, docker, rss_mb
from bench.platforms import Platforms, containers_of, invoke, put_action, unique_name

NEEDS = ("standalone", "distributed")
MEMORY_MB = 128
_UNITS = {"B": 1 / 2**20, "KiB": 1 / 1024, "MiB": 1.0, "GiB": 1024.0, "kB": 1e3 / 2**20, "MB": 1e6 / 2**20,
          "GB": 1e9 / 2**20}


def bare_rss_mb(command: list[str]) -> float:
    """RSS of `command` once it has printed its first line (then stopped by its pid)."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        assert process.stdout is not None
        process.stdout.readline()
        time.sleep(0.3)
        return rss_mb(process.pid)
    finally:
        process.kill()
        process.wait(10)


def bare_python_mb() -> float:
    return bare_rss_mb([sys.executable, "-c",
                        "import asyncio, sys, time, aiohttp.web; print('ready', flush=True); time.sleep(60)"])


def bare_node_mb() -> float:
    return bare_rss_mb(["node", "-e", "console.log('ready'); setInterval(() => {}, 1000)"])


async def container_memory_mb(names: list[str]) -> list[float]:
    """Each container's memory as `docker stats` reports it (usage less the page cache), in MB."""
    out = await docker("stats", "--no-stream", "--format", "{{.MemUsage}}", *names)
    values = []
    for line in out.splitlines():
        match = re.match(r"\s*([\d.]+)\s*([A-Za-z]+)", line)
        if match:
            values.append(float(match.group(1)) * _UNITS.get(match.group(2), float("nan")))
    return values


async def per_container(session: aiohttp.ClientSession, platforms: Platforms, count: int) -> dict[str, Any]:
    platform = await platforms.get("standalone")
    invoker_id = platforms.invoker_ids["standalone"]
    pid = platform.process.pid  # type: ignore[union-attr]
    first = unique_name("bmem")
    await put_action(session, platform, first, MEMORY_MB)
    for _ in range(20):  # the invoke path's code and buffers in place before the first reading
        await invoke(session, platform, first)
    await asyncio.sleep(1)
    before = rss_mb(pid)
    prefix = unique_name("bmem")
    queue = [f"{prefix}_{n}" for n in range(count)]
    for name in queue:
        await put_action(session, platform, name, MEMORY_MB)

    async def first_invokes() -> None:
        while queue:
            await invoke(session, platform, queue.pop())

    await asyncio.gather(*(first_invokes() for _ in range(4)))
    await asyncio.sleep(1)
    after = rss_mb(pid)
    names = [n for n in await containers_of(invoker_id) if f"_guest_{prefix}_" in n]
    own = await container_memory_mb(names)
    return {"containers": count, "rss_before_mb": before, "rss_after_mb": after,
            "per_container_mb": (after - before) / count, "container_own_mb": sum(own) / len(own),
            "container_own_samples_mb": own}


async def run(session: aiohttp.ClientSession, platforms: Platforms, args: Namespace) -> dict[str, Any]:
    if "distributed" not in platforms.idle_rss_mb:  # read when it started
        await platforms.get("distributed")
        await platforms.done_with("distributed")
    await platforms.get("standalone")
    results: dict[str, Any] = {
        "idle_mb": {which: dict(platforms.idle_rss_mb[which]) for which in ("standalone", "distributed")},
        "bare_python_mb": await asyncio.to_thread(bare_python_mb),
        "bare_node_mb": await asyncio.to_thread(bare_node_mb),
    }
    results["per_container"] = await per_container(session, platforms, 8 if args.quick else 16)
    return results


def rows(results: dict[str, Any]) -> list[Row]:
    per, idle = results["per_container"], results["idle_mb"]
    python, node = results["bare_python_mb"], results["bare_node_mb"]
    standalone = idle["standalone"]["standalone"]
    out = [Row("standalone RSS per warm container", per["per_container_mb"], "MB",
               "a warm container (docker stats)", per["container_own_mb"], "ratio"),
           Row("standalone process RSS, idle", standalone, "MB", "bare Python + aiohttp", python)]
    distributed = idle["distributed"]
    nginx = sum(mb for name, mb in distributed.items() if name.startswith("nginx"))
    for name, mb in distributed.items():
        if name.startswith(("controller", "invoker", "feeds")):
            label = re.sub(r"\d+$", "", name)
            out.append(Row(f"distributed {label} RSS, idle", mb, "MB", "bare Python + aiohttp", python))
    out += [
        Row("distributed store RSS, idle", distributed["store (pouchdb-server)"], "MB",
            "bare Node.js", node),
        Row("distributed broker RSS, idle", distributed["broker (tansu)"], "MB",
            "standalone process, idle", standalone, "ratio"),
        Row("distributed nginx RSS, idle", nginx, "MB",
            "standalone process, idle", standalone, "ratio"),
        Row("distributed stack RSS, idle", sum(distributed.values()), "MB",
            "standalone process, idle", standalone, "ratio"),
    ]
    return out
