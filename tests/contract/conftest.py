"""Fixtures for the contract suites: each seam's fixture is parametrised by implementation name."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

import pytest

from tests.services.couchdb import CouchServer, couchdb_server, drop_databases
from whisk.store import Store, open_store


@asynccontextmanager
async def _sqlite_store(tmp_path: Path) -> AsyncIterator[Store]:
    store = await open_store(f"sqlite://{tmp_path}/store.db")
    try:
        yield store
    finally:
        await store.close()


_couch: dict[str, CouchServer] = {}


@asynccontextmanager
async def _couchdb_store(tmp_path: Path) -> AsyncIterator[Store]:
    server = _couch.get("server")
    if server is None:
        raise RuntimeError("the couchdb store needs the session's `couchdb` fixture")
    prefix = f"test_{secrets.token_hex(6)}_"
    try:
        store = await open_store(f"{server.url}/?prefix={prefix}")
        try:
            yield store
        finally:
            await store.close()
    finally:
        await drop_databases(server.url, prefix)


#: A fresh, empty store of each implementation, cleaned up on exit. CouchDB's databases live under a random
#: prefix on the session's server, dropped after the store is closed.
STORE_FACTORIES: dict[str, Callable[[Path], AbstractAsyncContextManager[Store]]] = {
    "sqlite": _sqlite_store,
    "couchdb": _couchdb_store,
}


@pytest.fixture(scope="session")
def couchdb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CouchServer]:
    """One pouchdb-server for the whole session, started when a test first needs it."""
    with couchdb_server(tmp_path_factory.mktemp("couchdb")) as server:
        _couch["server"] = server
        try:
            yield server
        finally:
            _couch.pop("server", None)


@pytest.fixture(params=list(STORE_FACTORIES))
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    if request.param == "couchdb":
        request.getfixturevalue("couchdb")
    async with STORE_FACTORIES[request.param](tmp_path) as opened:
        yield opened
