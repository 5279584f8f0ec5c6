"""Cold start of a never-seen action: taking a prewarmed container of its kind (`prewarm` platform, waiting before
each sample until the pool has a fresh prewarmed container), and starting one (`standalone`, no prewarm); beside a
raw `docker run` of the runtime image until its proxy answers, and beside a warm invoke on the same platform."""

from __future__ import annotations

import asyncio
import statistics
import time
from argparse import Namespace
from typing import Any

import aiohttp

from bench.measure import Row, docker, summary, timed
from bench.platforms import (
    KIND,
    Platforms,
    annotation,
    container_ip,
    containers_of,
    invoke,
    proxy_answers,
    put_action,
    unique_name,
)
from whisk.runtimes import manifest

NEEDS = ("standalone", "prewarm")
PREWARM_WAIT_S = 60.0


async def raw_docker_run(session: aiohttp.ClientSession, image: str) -> float:
    """Seconds from `docker run` until the proxy in the container answers."""
    started = time.perf_counter()
    container = await docker("run", "-d", "--rm", image)
    try:
        ip = await docker("inspect", "--format", "{{.NetworkSettings.IPAddress}}", container)
        while True:
            if await proxy_answers(session, ip):
                return time.perf_counter() - started
            await asyncio.sleep(0.005)
    finally:
        await docker("rm", "-f", container)


async def fresh_prewarm(session: aiohttp.ClientSession, invoker_id: int, taken: set[str]) -> str:
    """The name of a prewarmed container not taken yet whose proxy answers; waits for the pool to start one."""
    deadline = time.monotonic() + PREWARM_WAIT_S
    marker = "_prewarm_" + KIND.replace(":", "_")
    while time.monotonic() < deadline:
        for name in await containers_of(invoker_id):
            if marker in name and name not in taken and await proxy_answers(session, await container_ip(name)):
                await asyncio.sleep(0.2)  # the pool's own readiness probe answers within its poll interval
                return name
        await asyncio.sleep(0.1)
    raise RuntimeError(f"no prewarmed container of invoker {invoker_id} in {PREWARM_WAIT_S} s")


async def cold_samples(session: aiohttp.ClientSession, platforms: Platforms, which: str, samples: int,
                       image: str) -> dict[str, Any]:
    """`samples` first invokes of new actions on `which` (on `standalone`, each after a raw `docker run` of
    `image`), then warm invokes of the last of them."""
    platform = await platforms.get(which)
    taken: set[str] = set()
    cold, raw, parts = [], [], []
    name = ""
    for _ in range(samples):
        name = unique_name("bcold")
        await put_action(session, platform, name)
        if which == "prewarm":
            taken.add(await fresh_prewarm(session, platforms.invoker_ids[which], taken))
        else:
            raw.append(await raw_docker_run(session, image))
        started = time.perf_counter()
        record = await invoke(session, platform, name)
        cold.append(time.perf_counter() - started)
        parts.append({"wait_ms": annotation(record, "waitTime"), "init_ms": annotation(record, "initTime"),
                      "duration_ms": record.get("duration")})
    warm = [await timed(lambda: invoke(session, platform, name)) for _ in range(max(50, samples * 5))]
    results: dict[str, Any] = {"cold": summary(cold), "warm": summary(warm), "cold_parts": parts}
    if raw:
        results["raw_docker_run"] = summary(raw)
    return results


def rows(results: dict[str, Any]) -> list[Row]:
    out = []
    if "prewarm" in results:
        prewarm = results["prewarm"]
        for p in ("p50", "p99"):
            out.append(Row(f"cold start, prewarmed container, {p}", prewarm["cold"][f"{p}_ms"], "ms",
                           f"warm invoke, same platform, {p}", prewarm["warm"][f"{p}_ms"]))
    if "standalone" in results:
        fresh = results["standalone"]
        for p in ("p50", "p99"):
            out.append(Row(f"cold start, no prewarm, {p}", fresh["cold"][f"{p}_ms"], "ms",
                           f"docker run until proxy answers, {p}", fresh["raw_docker_run"][f"{p}_ms"]))
        out.append(Row("cold start, no prewarm, p50, over warm", fresh["cold"]["p50_ms"], "ms",
                       "warm invoke, same platform, p50", fresh["warm"]["p50_ms"]))
    return out


def notes(results: dict[str, Any]) -> list[str]:
    """Where a cold start's time goes, from the activation records' annotations (medians)."""
    out = []
    labels = {"prewarm": "prewarmed", "standalone": "no prewarm"}
    for which, label in labels.items():
        parts = results.get(which, {}).get("cold_parts") or []
        if parts:
            med = {key: statistics.median(p[key] or 0 for p in parts) for key in ("wait_ms", "init_ms", "duration_ms")}
            out.append(f"cold start, {label}: median waitTime {med['wait_ms']:.0f} ms (until the container is had),"
                       f" initTime {med['init_ms']:.0f} ms, duration {med['duration_ms']:.0f} ms (init and run)")
    return out


async def run(session: aiohttp.ClientSession, platforms: Platforms, args: Namespace) -> dict[str, Any]:
    samples = args.samples or (5 if args.quick else 15)
    image = manifest().get(KIND).image  # type: ignore[union-attr]
    prewarm = await cold_samples(session, platforms, "prewarm", samples, image)
    await platforms.done_with("prewarm")
    return {"prewarm": prewarm, "standalone": await cold_samples(session, platforms, "standalone", samples, image)}
