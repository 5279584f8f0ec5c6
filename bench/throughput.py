"""Throughput of blocking no-op invokes on standalone (Docker containers): a closed loop of a fixed number of workers
for a bounded time, with one action and with many distinct actions taken round-robin. Baselines: the same closed loop
of direct `/run` calls to one warm container (the physical floor), and the one-action figure for the many.

The platform is restarted first (an empty container pool). Before each timed window the loop runs unmeasured for a
moment, the one action is first invoked by all workers at once (a container each) and the many actions are first
invoked once each (their cold starts, timed apart), so that the window measures warm containers."""

from __future__ import annotations

import asyncio
import time
from argparse import Namespace
from typing import Any

import aiohttp

from bench.measure import Row, closed_loop
from bench.platforms import (
    Platforms,
    container_ip,
    containers_of,
    direct_run,
    invoke,
    put_action,
    service_pids,
    unique_name,
)

NEEDS = ("standalone",)
MEMORY_MB = 128


async def run(session: aiohttp.ClientSession, platforms: Platforms, args: Namespace) -> dict[str, Any]:
    concurrency, actions = args.concurrency, args.actions
    duration = args.duration or (3.0 if args.quick else 10.0)
    warmup = 1.0 if args.quick else 2.0
    platform = await (platforms.restart if "standalone" in platforms.running else platforms.get)("standalone")
    invoker_id = platforms.invoker_ids["standalone"]
    one = unique_name("bone")
    await put_action(session, platform, one, MEMORY_MB)
    for _ in range(2):  # as many containers as workers: their cold starts before the loop
        await asyncio.gather(*(invoke(session, platform, one) for _ in range(concurrency)))
    pids = service_pids(platform)
    single = await closed_loop(lambda _: invoke(session, platform, one), concurrency, duration, warmup, pids)
    warm = [n for n in await containers_of(invoker_id) if n.endswith(f"_guest_{one}")]
    single["containers"] = len(warm)
    ip = await container_ip(warm[0])
    direct = await closed_loop(lambda _: direct_run(session, ip), concurrency, duration, warmup, pids)

    prefix = unique_name("bmany")
    many_names = [f"{prefix}_{n}" for n in range(actions)]
    started = time.perf_counter()
    for name in many_names:
        await put_action(session, platform, name, MEMORY_MB)
    created_s = time.perf_counter() - started
    queue = list(many_names)

    async def first_invokes() -> None:
        while queue:
            await invoke(session, platform, queue.pop())

    started = time.perf_counter()
    await asyncio.gather(*(first_invokes() for _ in range(concurrency)))
    first_round_s = time.perf_counter() - started
    many = await closed_loop(lambda n: invoke(session, platform, many_names[n % actions]), concurrency, duration,
                             warmup, pids)
    many.update(actions=actions, create_s=created_s, first_round_s=first_round_s,
                containers=len(await containers_of(invoker_id)))
    return {"one_action": single, "many_actions": many, "direct": direct}


def rows(results: dict[str, Any]) -> list[Row]:
    single, many, direct = results["one_action"], results["many_actions"], results["direct"]
    workers = single["concurrency"]
    return [
        Row(f"throughput, 1 action, {workers} workers", single["per_s"], "/s",
            f"direct /run, 1 container, {workers} workers", direct["per_s"], "ratio"),
        Row(f"throughput, {many['actions']} actions round-robin", many["per_s"], "/s",
            "throughput, 1 action", single["per_s"], "ratio"),
    ]


def notes(results: dict[str, Any]) -> list[str]:
    single, many, direct = results["one_action"], results["many_actions"], results["direct"]
    out = [f"throughput: {many['actions']} actions' first invokes (cold starts, {many['concurrency']} workers) took"
           f" {many['first_round_s']:.1f} s; warm containers: {single['containers']} for the one action,"
           f" {many['containers']} in all at the end"]
    for label, figures in (("1 action", single), (f"{many['actions']} actions", many), ("direct /run", direct)):
        if figures["errors"]:
            out.append(f"throughput, {label}: {figures['errors']} errors, e.g. {figures['first_errors'][0]}")
        if figures["latency"]:
            cpu = ", ".join(f"{name} {ms:.2f}" for name, ms in figures["cpu_ms_per_call"].items())
            out.append(f"throughput, {label}: latency under load p50 {figures['latency']['p50_ms']:.1f} ms,"
                       f" p99 {figures['latency']['p99_ms']:.1f} ms; CPU ms per call: {cpu}")
    return out
