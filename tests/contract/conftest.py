"""Fixtures for the contract suites: each seam's fixture is parametrised by implementation name."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

import pytest

from whisk.store import Store, open_store


@asynccontextmanager
async def _sqlite_store(tmp_path: Path) -> AsyncIterator[Store]:
    store = await open_store(f"sqlite://{tmp_path}/store.db")
    try:
        yield store
    finally:
        await store.close()


#: A fresh, empty store of each implementation, cleaned up on exit. CouchDB goes here as `"couchdb"`, with
#: databases under a random prefix that its context manager drops after closing the store.
STORE_FACTORIES: dict[str, Callable[[Path], AbstractAsyncContextManager[Store]]] = {
    "sqlite": _sqlite_store,
}


@pytest.fixture(params=list(STORE_FACTORIES))
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    async with STORE_FACTORIES[request.param](tmp_path) as opened:
        yield opened
