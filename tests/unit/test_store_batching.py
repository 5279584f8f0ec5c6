"""The stores' activation batcher: a lone write goes out at once, writes under load are batched behind the one in
flight, and each item gets its own outcome. A stand-in write function records each batch and holds it until
released."""

from __future__ import annotations

import asyncio

from whisk.store import Conflict, StoreError, Unavailable
from whisk.store.batching import Batcher


class HeldWrites:
    def __init__(self, conflicts: frozenset[str] = frozenset()) -> None:
        self.batches: list[list[str]] = []
        self.release = asyncio.Event()
        self.conflicts = conflicts

    async def write(self, items: list[str]) -> list[StoreError | None]:
        self.batches.append(list(items))
        await self.release.wait()
        return [Conflict(item) if item in self.conflicts else None for item in items]


def batcher_on(writes: HeldWrites, size: int = 100) -> Batcher[str]:
    return Batcher(writes.write, lambda item: item.split("#")[0], size)


async def turns(n: int = 3) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


async def test_a_lone_activation_is_written_without_waiting_for_a_timer() -> None:
    writes = HeldWrites()
    batcher = batcher_on(writes)

    written = batcher.add("a")
    await turns()

    assert writes.batches == [["a"]]
    writes.release.set()
    await written


async def test_activations_added_during_a_write_go_out_together_after_it() -> None:
    writes = HeldWrites()
    batcher = batcher_on(writes)
    first = batcher.add("a")
    await turns()

    later = [batcher.add(name) for name in ("b", "c", "d")]
    await turns()
    assert writes.batches == [["a"]]

    writes.release.set()
    await asyncio.gather(first, *later)
    assert writes.batches == [["a"], ["b", "c", "d"]]
    assert batcher.writes == 2


async def test_a_full_batch_goes_out_even_while_a_write_is_in_flight() -> None:
    writes = HeldWrites()
    batcher = batcher_on(writes, size=2)
    pending = [batcher.add("a")]
    await turns()

    pending += [batcher.add("b"), batcher.add("c")]
    await turns()
    assert writes.batches == [["a"], ["b", "c"]]

    writes.release.set()
    await asyncio.gather(*pending)


async def test_each_item_gets_its_own_outcome_and_the_same_key_twice_is_never_in_one_batch() -> None:
    writes = HeldWrites(conflicts=frozenset({"a#2"}))
    writes.release.set()
    batcher = batcher_on(writes)

    outcomes = await asyncio.gather(batcher.add("a#1"), batcher.add("b"), batcher.add("a#2"), return_exceptions=True)

    assert outcomes[0] is None and outcomes[1] is None and isinstance(outcomes[2], Conflict)
    assert all(len({item.split("#")[0] for item in batch}) == len(batch) for batch in writes.batches)


async def test_a_failed_write_fails_every_item_of_its_batch_and_drain_waits_for_what_is_queued() -> None:
    async def broken(items: list[str]) -> list[StoreError | None]:
        raise Unavailable("disk full")

    batcher: Batcher[str] = Batcher(broken, lambda item: item)
    results = await asyncio.gather(batcher.add("a"), batcher.add("b"), return_exceptions=True)
    assert all(isinstance(result, Unavailable) for result in results)

    writes = HeldWrites()
    writes.release.set()
    batcher = batcher_on(writes)
    queued = batcher.add("c")
    await batcher.drain()
    assert queued.done() and writes.batches == [["c"]]
