"""The CouchDB store's activation batcher: a lone write goes out at once, writes under load are batched behind the
one in flight. A stand-in for the store's `_bulk_docs` records each request and holds it until released."""

from __future__ import annotations

import asyncio
from typing import Any

from whisk.store.couchdb import _Batcher


class HeldBulkDocs:
    _activations = "activations"

    def __init__(self) -> None:
        self.requests: list[list[str]] = []
        self.release = asyncio.Event()

    async def _bulk_docs(self, db: str, docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        self.requests.append([doc["_id"] for doc in docs])
        await self.release.wait()
        return [{"id": doc["_id"], "rev": "1-x"} for doc in docs]


async def turns(n: int = 3) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


async def test_a_lone_activation_is_written_without_waiting_for_a_timer() -> None:
    store = HeldBulkDocs()
    batcher = _Batcher(store, size=100)  # type: ignore[arg-type]

    written = batcher.add({"_id": "a"})
    await turns()

    assert store.requests == [["a"]]
    store.release.set()
    await written


async def test_activations_added_during_a_write_go_out_together_after_it() -> None:
    store = HeldBulkDocs()
    batcher = _Batcher(store, size=100)  # type: ignore[arg-type]
    first = batcher.add({"_id": "a"})
    await turns()

    later = [batcher.add({"_id": name}) for name in ("b", "c", "d")]
    await turns()
    assert store.requests == [["a"]]

    store.release.set()
    await asyncio.gather(first, *later)
    assert store.requests == [["a"], ["b", "c", "d"]]


async def test_a_full_batch_goes_out_even_while_a_write_is_in_flight() -> None:
    store = HeldBulkDocs()
    batcher = _Batcher(store, size=2)  # type: ignore[arg-type]
    pending = [batcher.add({"_id": "a"})]
    await turns()

    pending += [batcher.add({"_id": "b"}), batcher.add({"_id": "c"})]
    await turns()
    assert store.requests == [["a"], ["b", "c"]]

    store.release.set()
    await asyncio.gather(*pending)
    await batcher.drain()
