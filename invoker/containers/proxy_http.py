"""The one HTTP exchange every container kind has with its runtime proxy: POST JSON, read at most a bound of the
answer, and map failures into the container errors."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from invoker.containers import Crashed, RunResult, TimedOut

#: how much of an `/init` answer is kept (its body only matters for errors)
INIT_BODY_BYTES = 64 * 1024


async def post(
    session: aiohttp.ClientSession,
    url: str,
    payload: dict[str, Any],
    timeout_s: float,
    max_body_bytes: int,
    crashed: Callable[[BaseException], Awaitable[Crashed]],
) -> RunResult:
    """POST `payload` to the proxy at `url`; `TimedOut` after `timeout_s`, and `crashed(exc)` (which tells a crash
    from running out of memory) when the connection fails."""
    start_ms = now_ms()
    kept, size = bytearray(), 0
    try:
        async with session.post(url, json=payload, timeout=aiohttp.ClientTimeout(total=timeout_s)) as response:
            async for chunk in response.content.iter_chunked(65536):
                size += len(chunk)
                if len(kept) < max_body_bytes:
                    kept += chunk[: max_body_bytes - len(kept)]
            status = response.status
    except TimeoutError:
        raise TimedOut(f"No answer from {urlsplit(url).path} within {timeout_s:g} s.") from None
    except (aiohttp.ClientError, OSError, RuntimeError) as exc:
        raise await crashed(exc) from exc
    return RunResult(status, bytes(kept), size, start_ms, now_ms())


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def since_ms(started: float) -> int:
    """Milliseconds since `started`, a `time.monotonic()` reading."""
    return int((time.monotonic() - started) * 1000)
