"""pywhisk's benchmark: every figure beside a baseline measured in the same run, one table, and a JSON file.

    python -m bench [--quick] [--only memory,latency,cold,api,throughput] [--json PATH | --name NAME]

Sections (run in this order): memory (per warm container, each service at idle), latency (warm invoke, standalone and
distributed), cold (cold starts with and without a prewarmed container), api (create, get, activation get),
throughput (one action, many actions). Platforms are started when a section first needs one, and stopped once no
section left needs it. Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform as host
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp

from bench import api_ops, cold, latency, memory, throughput
from bench.measure import Row, format_table
from bench.platforms import Platforms

RESULTS = Path(__file__).resolve().parent / "results"
SECTIONS: dict[str, Any] = {"memory": memory, "latency": latency, "cold": cold, "api": api_ops,
                            "throughput": throughput}


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer samples and shorter windows (about 2 minutes)")
    parser.add_argument("--only", default=",".join(SECTIONS),
                        help=f"comma-separated sections among {', '.join(SECTIONS)} (default: all)")
    parser.add_argument("--name", default="latest", help="results go to bench/results/NAME.json")
    parser.add_argument("--json", type=Path, help="results file (overrides --name)")
    parser.add_argument("--samples", type=int, help="cold: cold starts per platform (default 15; quick: 5)")
    parser.add_argument("--concurrency", type=int, default=8, help="throughput: workers of the closed loop")
    parser.add_argument("--duration", type=float, help="throughput: seconds of each timed window (10; quick: 3)")
    parser.add_argument("--actions", type=int, default=100, help="throughput: distinct actions, round-robin")
    parser.add_argument("--log-level", default="INFO", help="the platforms' PYWHISK_LOG_LEVEL (their default: INFO)")
    args = parser.parse_args(argv)
    args.sections = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = [s for s in args.sections if s not in SECTIONS]
    if unknown:
        parser.error(f"unknown sections {unknown}; choose among {list(SECTIONS)}")
    args.sections = [s for s in SECTIONS if s in args.sections]
    return args


async def measure(args: argparse.Namespace) -> tuple[dict[str, Any], list[Row], list[str]]:
    platforms = Platforms(log_level=args.log_level)
    results: dict[str, Any] = {}
    rows: list[Row] = []
    notes: list[str] = []
    failed = True
    timeout = aiohttp.ClientTimeout(total=120)
    try:
        async with aiohttp.ClientSession(timeout=timeout, connector=aiohttp.TCPConnector(limit=0)) as session:
            for n, name in enumerate(args.sections):
                module = SECTIONS[name]
                started = time.perf_counter()
                print(f"[bench] {name} ...", file=sys.stderr, flush=True)
                platforms.keep = {p for later in args.sections[n + 1:] for p in SECTIONS[later].NEEDS}
                run: Callable[..., Awaitable[dict[str, Any]]] = module.run
                results[name] = await run(session, platforms, args)
                results[name]["section_s"] = time.perf_counter() - started
                rows += module.rows(results[name])
                notes += getattr(module, "notes", lambda _: [])(results[name])
                for which in list(platforms.running):
                    await platforms.done_with(which)
        failed = False
    finally:
        results["platform_start_s"] = dict(platforms.start_s)
        results["invoker_ids"] = dict(platforms.invoker_ids)
        await platforms.close(keep_logs=failed)
    return results, rows, notes


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    started = time.perf_counter()
    results, rows, notes = asyncio.run(measure(args))
    print(format_table(rows))
    for note in notes:
        print(f"- {note}")
    output = args.json or RESULTS / f"{args.name}.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "host": {"cpus": os.cpu_count(), "kernel": host.release(), "python": sys.version.split()[0]},
        "run_s": time.perf_counter() - started,
        "table": [row.as_dict() for row in rows],
        "notes": notes,
        "results": results,
    }
    output.write_text(json.dumps(document, indent=2) + "\n")
    print(f"(run took {document['run_s']:.0f} s; results in {output})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
