"""The container pool: the asyncio shell that carries out `policy`'s decisions.

Each container runs one activation at a time. An activation takes a `Lease` on a container (warm, prewarmed or
started for it), waits in a FIFO queue while the pool is full, and hands the container back when done; a lease
marked failed (or left by an exception) destroys its container, which is never reused. Idle containers are paused
and removed by a housekeeping task, and prewarmed containers are started and replenished per the manifest.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import itertools
import logging
import re
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from invoker.containers import Container, ContainerError, ContainerFactory, StartError
from invoker.pool import policy
from invoker.pool.policy import ActionKey
from whisk.logs import fields
from whisk.runtimes import Runtime

log = logging.getLogger(__name__)

#: how long a (kind, memory) whose prewarm failed to start waits before the next attempt, in seconds
PREWARM_RETRY_S = 30.0


@dataclass
class PoolStats:
    """Counters since the pool started (for tests and metrics)."""

    cold_starts: int = 0
    prewarm_starts: int = 0
    prewarms_taken: int = 0
    warm_reuses: int = 0
    evictions: int = 0
    pauses: int = 0
    resumes: int = 0
    removals: int = 0
    destroyed_failed: int = 0
    start_failures: int = 0
    queued: int = 0


@dataclass(frozen=True)
class PrewarmSpec:
    runtime: Runtime
    memory_mb: int
    count: int


@dataclass(eq=False)
class _Entry:
    id: str
    kind: str
    memory_mb: int
    action: ActionKey | None
    busy: bool = True
    paused: bool = False
    last_used: float = 0.0
    container: Container | None = None
    initialized: bool = False

    def slot(self) -> policy.Slot:
        return policy.Slot(self.id, self.kind, self.memory_mb, self.action, self.busy, self.paused, self.last_used)


@dataclass(eq=False)
class _Waiter:
    request: policy.Request
    future: asyncio.Future[tuple[_Entry, str, list[_Entry]]]


@dataclass
class Lease:
    """A container held by one activation. `needs_init` when it has not run `/init` (cold or prewarmed);
    `origin` is how it was obtained: "warm", "prewarm" or "cold". A lease that ends without `fail()` (and
    without an exception) leaves the container initialised for the action, ready for the next activation."""

    container: Container
    needs_init: bool
    origin: str
    failed: bool = field(default=False)

    def fail(self) -> None:
        """Destroy the container when the lease ends instead of keeping it warm."""
        self.failed = True


class ContainerPool:
    def __init__(
        self,
        factory: ContainerFactory,
        *,
        user_memory_mb: int,
        pause_grace_s: float,
        idle_timeout_s: float,
        env: dict[str, str],
        name_prefix: str = "wsk0",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._factory = factory
        self._user_memory_mb = user_memory_mb
        self._pause_grace_s = pause_grace_s
        self._idle_timeout_s = idle_timeout_s
        self._env = env
        self._prewarm: dict[tuple[str, int], PrewarmSpec] = {}
        self._prewarm_failed_at: dict[tuple[str, int], float] = {}
        self._name_prefix = name_prefix
        self._clock = clock
        self._entries: dict[str, _Entry] = {}
        self._queue: deque[_Waiter] = deque()
        self._ids = itertools.count()
        self._tasks: set[asyncio.Task[None]] = set()  # destroying containers
        self._prewarming: set[asyncio.Task[None]] = set()
        self._housekeeper: asyncio.Task[None] | None = None
        self._closed = False
        self.stats = PoolStats()

    @property
    def buffered(self) -> int:
        """Activations waiting for capacity."""
        return len(self._queue)

    def containers(self) -> list[policy.Slot]:
        """A snapshot of every container (starting ones included)."""
        return [entry.slot() for entry in self._entries.values()]

    async def start(self, prewarm: list[PrewarmSpec] | None = None) -> None:
        """Start the prewarmed containers (in parallel, waiting for them) and the housekeeping task."""
        self._prewarm = {(s.runtime.kind, s.memory_mb): s for s in prewarm or [] if s.count > 0}
        self._replenish()
        await asyncio.gather(*list(self._prewarming), return_exceptions=True)
        self._housekeeper = asyncio.create_task(self._housekeeping())

    async def close(self) -> None:
        """Stop housekeeping and destroy every container; idempotent."""
        self._closed = True
        if self._housekeeper is not None:
            self._housekeeper.cancel()
            await asyncio.gather(self._housekeeper, return_exceptions=True)
        for waiter in self._queue:
            if not waiter.future.done():
                waiter.future.set_exception(StartError("The invoker is shutting down."))
        self._queue.clear()
        for task in self._prewarming:
            task.cancel()
        await asyncio.gather(*list(self._prewarming), return_exceptions=True)
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        entries, self._entries = list(self._entries.values()), {}
        await asyncio.gather(*(e.container.destroy() for e in entries if e.container is not None))

    @contextlib.asynccontextmanager
    async def lease(self, action: ActionKey, runtime: Runtime, memory_mb: int) -> AsyncIterator[Lease]:
        """Hold a container for `action` while the body runs; waits FIFO while the pool is full.

        Raises `StartError` when no container can be had (the start failed, the memory can never fit, the pool
        is closing), never for what the action does."""
        request = policy.Request(action, runtime.kind, memory_mb)
        entry, how = await self._ready(request, runtime)
        assert entry.container is not None
        lease = Lease(entry.container, needs_init=not entry.initialized, origin=how)
        try:
            yield lease
        except BaseException:
            lease.failed = True
            raise
        finally:
            self._release(entry, lease.failed)

    async def _ready(self, request: policy.Request, runtime: Runtime) -> tuple[_Entry, str]:
        while True:
            entry, how, evicted = await self._reserve(request)
            try:
                for old in evicted:
                    await asyncio.shield(self._spawn(self._destroy(old)))
                if how == "cold":
                    entry.container = await self._factory.create(
                        self._name(request.action.doc_id), runtime, request.memory_mb, self._env
                    )
                    self.stats.cold_starts += 1
                elif entry.paused:
                    assert entry.container is not None
                    await entry.container.resume()
                    entry.paused = False
                    self.stats.resumes += 1
            except ContainerError as exc:
                self._entries.pop(entry.id, None)
                if entry.container is not None:
                    await asyncio.shield(self._spawn(self._destroy(entry)))
                self._drain()
                if how == "cold":
                    self.stats.start_failures += 1
                    raise StartError(str(exc)) from exc
                log.warning("resuming a container failed", extra=fields(container=entry.id, error=str(exc)))
                continue
            except BaseException:
                self._entries.pop(entry.id, None)
                if entry.container is not None:
                    self._spawn(self._destroy(entry))
                self._drain()
                raise
            if self._closed:
                self._release(entry, failed=True)
                raise StartError("The invoker is shutting down.")
            if how == "prewarm":
                self._replenish()
            return entry, how

    async def _reserve(self, request: policy.Request) -> tuple[_Entry, str, list[_Entry]]:
        if self._closed:
            raise StartError("The invoker is shutting down.")
        if not self._queue:
            reserved = self._apply(request)
            if reserved is not None:
                return reserved
        self.stats.queued += 1
        waiter = _Waiter(request, asyncio.get_running_loop().create_future())
        self._queue.append(waiter)
        try:
            return await waiter.future
        except asyncio.CancelledError:
            if waiter in self._queue:
                self._queue.remove(waiter)
            elif waiter.future.done() and not waiter.future.cancelled() and waiter.future.exception() is None:
                entry, how, evicted = waiter.future.result()
                for old in evicted:
                    self._spawn(self._destroy(old))
                self._release(entry, failed=how != "warm")
            raise

    def _apply(self, request: policy.Request) -> tuple[_Entry, str, list[_Entry]] | None:
        """Decide for `request` and reserve what the decision takes, without awaiting; None to wait."""
        decision = policy.schedule(request, self.containers(), self._user_memory_mb)
        if isinstance(decision, policy.Wait):
            return None
        if isinstance(decision, policy.Reject):
            raise StartError(decision.reason)
        if isinstance(decision, policy.UseWarm):
            entry = self._entries[decision.container_id]
            entry.busy = True
            self.stats.warm_reuses += 1
            return entry, "warm", []
        evicted = [self._entries.pop(i) for i in decision.evict]
        self.stats.evictions += len(evicted)
        if decision.prewarm_id is not None:
            entry = self._entries[decision.prewarm_id]
            entry.action, entry.busy = request.action, True
            self.stats.prewarms_taken += 1
            return entry, "prewarm", evicted
        entry = _Entry(f"c{next(self._ids)}", request.kind, request.memory_mb, request.action)
        self._entries[entry.id] = entry
        return entry, "cold", evicted

    def _drain(self) -> None:
        """Schedule the queue's head while capacity allows (FIFO)."""
        while self._queue and not self._closed:
            waiter = self._queue[0]
            if waiter.future.done():
                self._queue.popleft()
                continue
            try:
                reserved = self._apply(waiter.request)
            except StartError as exc:
                self._queue.popleft()
                waiter.future.set_exception(exc)
                continue
            if reserved is None:
                return
            self._queue.popleft()
            waiter.future.set_result(reserved)

    def _release(self, entry: _Entry, failed: bool) -> None:
        if failed or self._closed or entry.container is None:
            self._entries.pop(entry.id, None)
            if entry.container is not None:
                if failed:
                    self.stats.destroyed_failed += 1
                self._spawn(self._destroy(entry))
        else:
            entry.busy, entry.initialized, entry.last_used = False, True, self._clock()
        self._drain()

    async def _destroy(self, entry: _Entry) -> None:
        if entry.container is not None:
            await entry.container.destroy()

    def _spawn(
        self, coro: Coroutine[Any, Any, None], tasks: set[asyncio.Task[None]] | None = None
    ) -> asyncio.Task[None]:
        """Run `coro` as a task the pool waits for on `close` (destroying survives a cancelled caller)."""
        tasks = self._tasks if tasks is None else tasks
        task = asyncio.create_task(coro, context=contextvars.Context())  # not the activation's transaction id
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        return task

    def _name(self, what: str) -> str:
        return f"{self._name_prefix}_{next(self._ids)}_{re.sub(r'[^A-Za-z0-9_.-]', '_', what)[:40]}"

    # housekeeping

    async def _housekeeping(self) -> None:
        interval = min(max(min(self._pause_grace_s, self._idle_timeout_s) / 2, 0.05), 5.0)
        while True:
            await asyncio.sleep(interval)
            try:
                await self._tidy()
            except Exception:
                log.exception("housekeeping failed")

    async def _tidy(self) -> None:
        now = self._clock()
        slots = self.containers()
        for entry_id in policy.to_remove(slots, now, self._idle_timeout_s):
            entry = self._entries.pop(entry_id)
            self.stats.removals += 1
            self._spawn(self._destroy(entry))
        for entry_id in policy.to_pause(slots, now, self._pause_grace_s):
            entry = self._entries.get(entry_id)
            if entry is None or entry.container is None:
                continue
            entry.busy = True
            try:
                await entry.container.suspend()
                entry.paused = True
                self.stats.pauses += 1
            except ContainerError as exc:
                log.warning("pausing a container failed", extra=fields(container=entry.id, error=str(exc)))
                self._entries.pop(entry.id, None)
                self._spawn(self._destroy(entry))
            finally:
                entry.busy = False
        self._replenish()
        self._drain()

    def _replenish(self) -> None:
        if self._closed:
            return
        wanted = {key: spec.count for key, spec in self._prewarm.items()}
        now = self._clock()
        for key, count in policy.prewarm_deficit(wanted, self.containers()).items():
            failed_at = self._prewarm_failed_at.get(key)
            if failed_at is not None and now - failed_at < PREWARM_RETRY_S:
                continue
            for _ in range(count):
                spec = self._prewarm[key]
                entry = _Entry(f"c{next(self._ids)}", spec.runtime.kind, spec.memory_mb, None)
                self._entries[entry.id] = entry
                self._spawn(self._start_prewarm(entry, spec), self._prewarming)

    async def _start_prewarm(self, entry: _Entry, spec: PrewarmSpec) -> None:
        try:
            container = await self._factory.create(
                self._name(f"prewarm_{spec.runtime.kind}"), spec.runtime, spec.memory_mb, self._env
            )
        except ContainerError as exc:
            self._entries.pop(entry.id, None)
            self._prewarm_failed_at[(spec.runtime.kind, spec.memory_mb)] = self._clock()
            log.warning("starting a prewarmed container failed", extra=fields(kind=spec.runtime.kind, error=str(exc)))
            return
        except BaseException:
            self._entries.pop(entry.id, None)
            raise
        entry.container = container
        self.stats.prewarm_starts += 1
        if self._closed or entry.id not in self._entries:
            await container.destroy()
            return
        entry.busy, entry.last_used = False, self._clock()
        self._drain()
