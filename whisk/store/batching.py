"""Batched activation writes, shared by the stores: batching only under load.

An item added while no write is in flight goes out at once (with the items added in the same event-loop turn); items
added during a write wait for it and go out together after it, or at once when `size` of them are waiting. A lone
activation never waits for a timer, and under load the number of writes follows the store's speed, not the call
rate. Each item gets its own outcome: the write function answers one exception (or None) per item.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

from whisk.store import StoreError, Unavailable

T = TypeVar("T")

#: writes a batch; one outcome per item, in order: None when it was written, else the error to raise for it
WriteBatch = Callable[[list[T]], Awaitable[list[StoreError | None]]]


class Batcher(Generic[T]):
    def __init__(self, write: WriteBatch[T], key: Callable[[T], Hashable], size: int = 100) -> None:
        self._write_batch = write
        self._key = key
        self._size = size
        self._items: list[T] = []
        self._waiters: list[asyncio.Future[None]] = []
        self._scheduled = False
        self._flushing: set[asyncio.Task[None]] = set()
        #: how many batches were written (a counter for tests and metrics)
        self.writes = 0

    def add(self, item: T) -> asyncio.Future[None]:
        """Queue `item`; the future resolves once it is written (or fails with its own error)."""
        if any(self._key(pending) == self._key(item) for pending in self._items):
            self.flush()  # the same document twice in one batch would hide the second one's conflict
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._items.append(item)
        self._waiters.append(waiter)
        if len(self._items) >= self._size:
            self.flush()
        elif not self._flushing and not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self.flush)
        return waiter

    def flush(self) -> None:
        self._scheduled = False
        if not self._items:
            return
        items, waiters = self._items, self._waiters
        self._items, self._waiters = [], []
        task = asyncio.get_running_loop().create_task(self._write(items, waiters))
        self._flushing.add(task)
        task.add_done_callback(self._written)

    def _written(self, task: asyncio.Task[None]) -> None:
        self._flushing.discard(task)
        if not self._flushing and self._items and not self._scheduled:
            self.flush()  # what arrived during the write

    async def drain(self) -> None:
        """Write everything queued and wait for every write in flight."""
        self.flush()
        while self._flushing:
            await asyncio.gather(*self._flushing, return_exceptions=True)
            self.flush()

    async def _write(self, items: list[T], waiters: list[asyncio.Future[None]]) -> None:
        self.writes += 1
        try:
            outcomes = await self._write_batch(items)
        except StoreError as exc:
            _fail_all(waiters, exc)
            return
        except BaseException as exc:
            _fail_all(waiters, Unavailable(f"the batched write of activations did not finish: {exc!r}"))
            raise
        for waiter, outcome in zip(waiters, outcomes, strict=True):
            if waiter.done():
                continue
            if outcome is None:
                waiter.set_result(None)
            else:
                waiter.set_exception(outcome)


def _fail_all(waiters: list[asyncio.Future[None]], exc: BaseException) -> None:
    for waiter in waiters:
        if not waiter.done():
            waiter.set_exception(exc)
