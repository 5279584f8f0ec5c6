"""Cold start and warm invoke on Docker containers, each beside its baseline measured in the same run.

    python -m bench.containers [--samples N] [--json FILE]

- cold: a blocking invoke of a never-seen action (no prewarmed container), beside a raw `docker run` of the same
  runtime image until its proxy answers;
- warm: a blocking no-op invoke through the API, beside a direct `/run` to the same warm container.

Figures are printed, never asserted. A standalone platform is started for the run and stopped after it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from tests.e2e.platform import Platform
from whisk.runtimes import manifest

NOOP = "def main(args):\n    return {}\n"


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def summary(samples_s: list[float]) -> dict[str, float]:
    ms = [s * 1000 for s in samples_s]
    return {"n": len(ms), "p50_ms": statistics.median(ms), "p99_ms": percentile(ms, 0.99), "min_ms": min(ms)}


async def docker(*args: str) -> str:
    """The docker CLI's output (the raw baseline goes through the CLI, as a person would)."""
    process = await asyncio.create_subprocess_exec(
        "docker", *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"docker {' '.join(args)}: {err.decode().strip()}")
    return out.decode().strip()


async def raw_docker_run(session: aiohttp.ClientSession, image: str) -> float:
    """Seconds from `docker run` until the proxy in the container answers."""
    started = time.perf_counter()
    container = await docker("run", "-d", "--rm", image)
    try:
        ip = await docker("inspect", "--format", "{{.NetworkSettings.IPAddress}}", container)
        while True:
            try:
                async with session.get(f"http://{ip}:8080/", timeout=aiohttp.ClientTimeout(total=1)):
                    return time.perf_counter() - started
            except (aiohttp.ClientError, TimeoutError):
                await asyncio.sleep(0.005)
    finally:
        await docker("rm", "-f", container)


async def timed_invoke(session: aiohttp.ClientSession, platform: Platform, name: str) -> float:
    started = time.perf_counter()
    async with session.post(f"{platform.api_host}/api/v1/namespaces/_/actions/{name}?blocking=true",
                            json={}, headers=platform.headers()) as response:
        await response.read()
        if response.status != 200:
            raise RuntimeError(f"invoke of {name} answered {response.status}")
    return time.perf_counter() - started


async def put_action(session: aiohttp.ClientSession, platform: Platform, name: str) -> None:
    async with session.put(f"{platform.api_host}/api/v1/namespaces/_/actions/{name}?overwrite=true",
                           json={"exec": {"kind": "python:default", "code": NOOP}}, headers=platform.headers()) as r:
        if r.status != 200:
            raise RuntimeError(await r.text())


async def warm_container_ip(invoker_id: int) -> str:
    names = (await docker("ps", "--filter", f"name=^wsk{invoker_id}_", "--format", "{{.Names}}")).split()
    if len(names) != 1:
        raise RuntimeError(f"expected one warm container, found {names}")
    return await docker("inspect", "--format", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", names[0])


async def direct_run(session: aiohttp.ClientSession, ip: str) -> float:
    started = time.perf_counter()
    async with session.post(f"http://{ip}:8080/run", json={"value": {}, "activation_id": "0" * 32}) as response:
        await response.read()
    return time.perf_counter() - started


async def measure(samples: int) -> dict[str, Any]:
    image = manifest().get("python:default").image  # type: ignore[union-attr]
    invoker_id = random.randint(100, 999)
    with tempfile.TemporaryDirectory() as data_dir:
        platform = Platform(Path(data_dir), "docker", env={
            "PYWHISK_INVOKER_ID": str(invoker_id), "PYWHISK_PREWARM": "false", "PYWHISK_PAUSE_GRACE_S": "600",
            "PYWHISK_LOG_LEVEL": "WARNING"})
        platform.start()
        try:
            async with aiohttp.ClientSession() as session:
                raw = [await raw_docker_run(session, image) for _ in range(samples)]
                cold = []
                for n in range(samples):
                    await put_action(session, platform, f"cold{n}")
                    cold.append(await timed_invoke(session, platform, f"cold{n}"))
                # one warm action left alone: remove the cold ones' containers by letting the platform restart
                platform.stop()
                platform.start()
                await put_action(session, platform, "warm")
                await timed_invoke(session, platform, "warm")
                warm = [await timed_invoke(session, platform, "warm") for _ in range(samples * 20)]
                ip = await warm_container_ip(invoker_id)
                direct = [await direct_run(session, ip) for _ in range(samples * 20)]
        finally:
            platform.stop()
    return {
        "cold_invoke": summary(cold), "raw_docker_run": summary(raw),
        "warm_invoke_api": summary(warm), "warm_direct_run": summary(direct),
    }


def print_table(results: dict[str, Any]) -> None:
    rows = [
        ("cold start: invoke of a new action", "cold_invoke", "baseline: raw docker run until the proxy answers",
         "raw_docker_run"),
        ("warm invoke through the API", "warm_invoke_api", "baseline: direct /run to the same container",
         "warm_direct_run"),
    ]
    print(f"{'measurement':<40} {'p50 ms':>9} {'p99 ms':>9} {'n':>5}")
    for label, key, base_label, base_key in rows:
        for text, name in ((label, key), (base_label, base_key)):
            figures = results[name]
            print(f"{text:<40.40} {figures['p50_ms']:>9.2f} {figures['p99_ms']:>9.2f} {figures['n']:>5}")
        added = results[key]["p50_ms"] - results[base_key]["p50_ms"]
        print(f"{'  added by pywhisk (p50)':<40} {added:>9.2f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.containers", description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=10, help="cold samples; warm takes 20 times as many")
    parser.add_argument("--json", type=Path, default=Path("bench/results/containers.json"))
    args = parser.parse_args(argv)
    results = asyncio.run(measure(args.samples))
    print_table(results)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **results}, indent=2))
    print(f"(written to {args.json})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
