"""Warm latency of a blocking no-op invoke, standalone and distributed (through nginx), each beside a direct `/run`
to the same warm container. The calls are interleaved one by one, so that drift (another process waking up, the
CPU's clock) reaches all alike. On the distributed stack a third call goes straight to the controller (no nginx),
and the activation records' waitTime (controller received it -> the invoker started it) and duration tell where
the time goes, with one Kafka hop (send -> peek) on the same broker: an invoke takes two."""

from __future__ import annotations

import asyncio
import random
import statistics
import time
from argparse import Namespace
from typing import Any

import aiohttp

from bench.measure import Row, summary, timed
from bench.platforms import (
    Platforms,
    action_container,
    annotation,
    container_ip,
    direct_run,
    invoke,
    put_action,
    unique_name,
)
from tests.e2e.distributed import DistributedPlatform
from whisk.bus import open_bus

NEEDS = ("standalone", "distributed")


async def warm_pair(session: aiohttp.ClientSession, platforms: Platforms, which: str, samples: int) -> dict[str, Any]:
    """`samples` interleaved calls: a blocking invoke through the API, a direct /run to its container and, on the
    distributed stack, a blocking invoke straight to the controller."""
    platform = await platforms.get(which)
    controller = platform.controller_urls[0] if isinstance(platform, DistributedPlatform) else None
    name = unique_name("bwarm")
    await put_action(session, platform, name)
    for _ in range(5):  # the cold start, then a few to settle connections and caches
        await invoke(session, platform, name)
    ip = await container_ip(await action_container(platforms.invoker_ids[which], name))
    for _ in range(5):
        await direct_run(session, ip)
    api, direct, straight, wait_ms, duration_ms = [], [], [], [], []
    for _ in range(samples):
        started = time.perf_counter()
        record = await invoke(session, platform, name)
        api.append(time.perf_counter() - started)
        wait_ms.append(annotation(record, "waitTime") or 0.0)
        duration_ms.append(float(record.get("duration") or 0))
        direct.append(await timed(lambda: direct_run(session, ip)))
        if controller is not None:
            straight.append(await timed(lambda: invoke(session, platform, name, controller)))
    results = {"api": summary(api), "direct": summary(direct),
               "record_median_ms": {"wait": statistics.median(wait_ms), "duration": statistics.median(duration_ms)}}
    if straight:
        results["controller_direct"] = summary(straight)
    if isinstance(platform, DistributedPlatform):
        results["bus_hop"] = summary(await bus_hops(f"{platform.kafka.url}?session_timeout_ms=2000", samples // 2))
    return results


async def bus_hops(url: str, samples: int) -> list[float]:
    """Seconds from a send to the peek that returns it, on the platform's broker with the settings of the consumers
    on its invoke path (an invoke takes two such hops: to the invoker and back)."""
    bus = await open_bus(url)
    topic = unique_name("benchhop")
    try:
        consumer = await bus.consumer(topic, topic)
        hops = []
        for n in range(samples + 5):
            await asyncio.sleep(random.uniform(0, 0.01))  # arrive at any point of a held fetch, as invokes do
            started = time.perf_counter()
            await bus.send(topic, b"hop")
            while not await consumer.peek(1.0):
                pass
            if n >= 5:
                hops.append(time.perf_counter() - started)
            await consumer.commit()
        await consumer.close()
        return hops
    finally:
        await bus.close()


def rows(results: dict[str, Any]) -> list[Row]:
    labels = {"standalone": "warm invoke, standalone", "distributed": "warm invoke, distributed (nginx)"}
    out = []
    for which, label in labels.items():
        if which in results:
            for p in ("p50", "p99"):
                out.append(Row(f"{label}, {p}", results[which]["api"][f"{p}_ms"], "ms",
                               f"direct /run, same container, {p}", results[which]["direct"][f"{p}_ms"]))
    return out


def notes(results: dict[str, Any]) -> list[str]:
    out = []
    for which, figures in results.items():
        if not isinstance(figures, dict) or "record_median_ms" not in figures:
            continue
        record = figures["record_median_ms"]
        line = (f"warm invoke, {which}: p50 {figures['api']['p50_ms']:.1f} ms, of which the record's median waitTime"
                f" {record['wait']:.0f} ms (received -> started) and duration {record['duration']:.0f} ms")
        if "controller_direct" in figures:
            line += f"; straight to the controller (no nginx) p50 {figures['controller_direct']['p50_ms']:.1f} ms"
        if "bus_hop" in figures:
            line += (f"; one Kafka hop on the same broker (send -> peek, the invoke path's consumer settings) p50"
                     f" {figures['bus_hop']['p50_ms']:.1f} ms, and an invoke takes two")
        out.append(line)
    return out


async def run(session: aiohttp.ClientSession, platforms: Platforms, args: Namespace) -> dict[str, Any]:
    samples = 100 if args.quick else 500
    distributed = await warm_pair(session, platforms, "distributed", samples)
    await platforms.done_with("distributed")  # its idle services (Kafka consumers polling) off the machine
    return {"standalone": await warm_pair(session, platforms, "standalone", samples), "distributed": distributed}
