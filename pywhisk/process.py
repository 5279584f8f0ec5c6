"""Running a service until SIGINT or SIGTERM, on uvloop, with JSON logs."""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Awaitable, Callable

from whisk import logs
from whisk.config import SettingsError


def run_until_signalled(serve: Callable[[asyncio.Event], Awaitable[None]], log_level: str = "INFO") -> int:
    """Run `serve(stop)` where `stop` is set on SIGINT/SIGTERM; 0 on a clean stop, 1 on a start-up error."""
    logs.setup(log_level)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await serve(stop)

    try:
        import uvloop

        runner = uvloop.run
    except ImportError:  # pragma: no cover - uvloop is a dependency; this keeps other platforms working
        runner = asyncio.run
    try:
        runner(main())
    except (OSError, SettingsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    sys.stdout.flush()
    return 0
