"""What every benchmark shares: timing, percentiles, a closed loop, process memory, the docker CLI, table rows."""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal


def percentile(samples: list[float], fraction: float) -> float:
    """The nearest-rank percentile of `samples` (`fraction` in 0..1)."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def summary(samples_s: list[float]) -> dict[str, float]:
    """n, p50, p99, min and mean of durations given in seconds, in milliseconds."""
    ms = [s * 1000 for s in samples_s]
    return {"n": len(ms), "p50_ms": statistics.median(ms), "p99_ms": percentile(ms, 0.99), "min_ms": min(ms),
            "mean_ms": statistics.fmean(ms)}


async def timed(call: Callable[[], Awaitable[Any]]) -> float:
    """Seconds `call()` takes."""
    started = time.perf_counter()
    await call()
    return time.perf_counter() - started


async def closed_loop(
    call: Callable[[int], Awaitable[Any]], concurrency: int, duration_s: float, warmup_s: float = 0.0,
    cpu_of: dict[str, int] | None = None,
) -> dict[str, Any]:
    """`concurrency` workers each calling `call(n)` (n counts calls across workers) back to back for `warmup_s`
    (not counted), then for `duration_s`; completed calls per second, errors, the latency of counted calls and, with
    `cpu_of` (pids by name), the CPU time each of those processes, this one and the rest of the machine took per
    counted call."""
    counter = 0
    loop = asyncio.get_running_loop()
    measure_from = loop.time() + warmup_s
    stop_at = measure_from + duration_s
    cpu_before: dict[str, float] = {}

    async def meter() -> dict[str, float]:
        await asyncio.sleep(max(0.0, measure_from - loop.time()))
        cpu_before.update(cpu_seconds(cpu_of or {}))
        await asyncio.sleep(max(0.0, stop_at - loop.time()))
        return cpu_seconds(cpu_of or {})

    metering = asyncio.create_task(meter())
    latencies: list[float] = []
    errors: list[str] = []

    async def worker() -> None:
        nonlocal counter
        while (now := loop.time()) < stop_at:
            n, counter = counter, counter + 1
            started = time.perf_counter()
            try:
                await call(n)
            except Exception as exc:  # counted, the loop goes on
                if now >= measure_from:
                    errors.append(repr(exc)[:200])
                continue
            if now >= measure_from and loop.time() <= stop_at:
                latencies.append(time.perf_counter() - started)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    cpu_after = await metering
    calls = max(len(latencies), 1)
    cpu_ms = {name: (cpu_after[name] - cpu_before[name]) * 1000 / calls for name in cpu_after}
    cpu_ms["rest of the machine"] = cpu_ms.pop("machine") - sum(v for k, v in cpu_ms.items() if k != "machine")
    return {"per_s": len(latencies) / duration_s, "completed": len(latencies), "errors": len(errors),
            "first_errors": errors[:3], "concurrency": concurrency, "duration_s": duration_s,
            "latency": summary(latencies) if latencies else None, "cpu_ms_per_call": cpu_ms}


def cpu_seconds(pids: dict[str, int]) -> dict[str, float]:
    """CPU time (user + system) so far of each process in `pids`, of this process ("bench client") and of the
    whole machine ("machine": every CPU's busy time), in seconds."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for name, pid in pids.items():
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        out[name] = (int(fields[11]) + int(fields[12])) / tick
    out["bench client"] = time.process_time()
    cpu = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in cpu[:8])
    out["machine"] = (user + nice + system + irq + softirq + steal) / tick
    return out


def rss_mb(pid: int) -> float:
    """Resident memory of process `pid` (VmRSS in /proc/<pid>/status), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"process {pid} has no VmRSS (a kernel thread, or gone)")


async def docker(*args: str) -> str:
    """The docker CLI's output (the raw baselines go through the CLI, as a person would)."""
    process = await asyncio.create_subprocess_exec(
        "docker", *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"docker {' '.join(args)}: {err.decode().strip()}")
    return out.decode().strip()


@dataclass
class Row:
    """One line of the table: a figure beside its baseline, compared by difference or by ratio."""

    measurement: str
    value: float
    unit: str
    baseline: str
    baseline_value: float
    compare: Literal["added", "ratio"] = "added"

    @property
    def comparison(self) -> float:
        if self.compare == "added":
            return self.value - self.baseline_value
        return self.value / self.baseline_value if self.baseline_value else float("nan")

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "comparison": self.comparison}


def _number(value: float, unit: str) -> str:
    if unit == "/s" or abs(value) >= 1000:
        digits = 0
    elif abs(value) >= 100 or (unit == "MB" and abs(value) >= 10):
        digits = 1
    else:
        digits = 2
    return f"{value:,.{digits}f} {unit}"


def format_table(rows: list[Row]) -> str:
    """measurement | value | baseline | baseline value | added or ratio, as aligned text."""
    header = ("measurement", "value", "baseline", "baseline value", "added or ratio")
    lines = [header]
    for row in rows:
        if row.compare == "added":
            compared = f"{'+' if row.comparison >= 0 else ''}{_number(row.comparison, row.unit)}"
        else:
            compared = f"x{row.comparison:.2f}"
        lines.append((row.measurement, _number(row.value, row.unit), row.baseline,
                      _number(row.baseline_value, row.unit), compared))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    right = {1, 3, 4}
    out = []
    for n, line in enumerate(lines):
        cells = [cell.rjust(widths[i]) if i in right else cell.ljust(widths[i]) for i, cell in enumerate(line)]
        out.append(" | ".join(cells).rstrip())
        if n == 0:
            out.append("-+-".join("-" * w for w in widths))
    return "\n".join(out)
