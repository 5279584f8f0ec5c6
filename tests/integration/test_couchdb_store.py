"""CouchDB-only behaviour of `CouchStore` against a real pouchdb-server: initialiser, batching, outages."""

from __future__ import annotations

import asyncio
import base64
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.contract.test_store import Credentials, action_body, make_activation
from tests.services.couchdb import CouchServer, couchdb_server, drop_databases, free_port
from whisk.entities.activation import WhiskActivation
from whisk.store import Conflict, NotFound, Unavailable, open_store
from whisk.store.couchdb import DESIGN_VERSION, CouchStore

#: A guard against hangs, far above the store's own request timeout; not a measurement.
HANG_GUARD_S = 15


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CouchServer]:
    with couchdb_server(tmp_path_factory.mktemp("couchdb")) as started:
        yield started


@pytest.fixture
async def prefix(server: CouchServer) -> AsyncIterator[str]:
    chosen = f"test_{secrets.token_hex(6)}_"
    yield chosen
    await drop_databases(server.url, chosen)


@pytest.fixture
async def store(server: CouchServer, prefix: str) -> AsyncIterator[CouchStore]:
    opened = await CouchStore.open(server.url, prefix)
    yield opened
    await opened.close()


async def get_json(server: CouchServer, path: str) -> Any:
    async with aiohttp.ClientSession(headers={"Accept": "application/json"}) as session:
        url = f"http://127.0.0.1:{server.port}/{path}"
        async with session.get(url, headers=_auth(server)) as response:
            return await response.json(content_type=None)


def _auth(server: CouchServer) -> dict[str, str]:
    token = base64.b64encode(f"admin:{server.password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


async def test_open_creates_the_databases_and_design_documents(server: CouchServer, prefix: str) -> None:
    store = await open_store(f"{server.url}/?prefix={prefix}")
    await store.close()

    all_dbs = await get_json(server, "_all_dbs")
    assert {f"{prefix}subjects", f"{prefix}whisks", f"{prefix}activations"} <= set(all_dbs)
    whisks = await get_json(server, f"{prefix}whisks/_design/whisks.{DESIGN_VERSION}")
    activations = await get_json(server, f"{prefix}activations/_design/activations.{DESIGN_VERSION}")
    assert set(whisks["views"]) == {"by_root", "by_namespace"}
    assert set(activations["views"]) == {"by_start", "by_path"}


async def test_the_initialiser_is_idempotent_and_safe_to_run_concurrently(server: CouchServer, prefix: str) -> None:
    stores = await asyncio.gather(*(CouchStore.open(server.url, prefix) for _ in range(8)))
    try:
        await asyncio.gather(*(s.initialise() for s in stores))
        await stores[0].put_entity("guest/hello", "action", action_body("guest", "hello", 1), None)
        assert await stores[-1].count_entities("guest", "action") == 1
    finally:
        for opened in stores:
            await opened.close()

    again = await CouchStore.open(server.url, prefix)
    await again.close()
    design = await get_json(server, f"{prefix}whisks/_design/whisks.{DESIGN_VERSION}")
    assert design["_rev"].startswith("1-")


async def test_concurrent_activations_are_batched_and_a_duplicate_id_is_a_conflict(store: CouchStore) -> None:
    activations = [make_activation(start=i) for i in range(200)]
    duplicate = make_activation(start=999, activation_id=activations[17].activationId)

    results = await asyncio.gather(
        *(store.put_activation(a) for a in [*activations, duplicate]), return_exceptions=True
    )

    conflicts = [r for r in results if isinstance(r, Conflict)]
    assert len(conflicts) == 1
    assert all(r is None for r in results if not isinstance(r, Conflict))
    assert await store.count_activations("guest") == 200
    assert (await store.get_activation("guest", duplicate.activationId)).start in (17, 999)
    assert 2 <= store.activation_batches < 20


async def test_closing_the_store_writes_the_activations_still_buffered(server: CouchServer, prefix: str) -> None:
    store = await CouchStore.open(server.url, prefix)
    pending = [asyncio.ensure_future(store.put_activation(make_activation(start=i))) for i in range(30)]
    await asyncio.sleep(0)

    await store.close()

    assert all(task.done() and task.exception() is None for task in pending)
    reopened = await CouchStore.open(server.url, prefix)
    try:
        assert await reopened.count_activations("guest") == 30
    finally:
        await reopened.close()


async def test_a_database_prefix_keeps_stores_apart(server: CouchServer, prefix: str) -> None:
    other_prefix = f"test_{secrets.token_hex(6)}_"
    first = await CouchStore.open(server.url, prefix)
    second = await open_store(f"{server.url}?prefix={other_prefix}")
    try:
        await first.put_entity("guest/hello", "action", action_body("guest", "hello", 1), None)
        assert await second.count_entities("guest", "action") == 0
    finally:
        await first.close()
        await second.close()
        await drop_databases(server.url, other_prefix)


async def test_wrong_credentials_or_no_server_are_unavailable(server: CouchServer) -> None:
    with pytest.raises(Unavailable):
        await CouchStore.open(f"http://admin:wrong@127.0.0.1:{server.port}/?prefix=test_nope_")
    with pytest.raises(Unavailable):
        await CouchStore.open(f"http://admin:x@127.0.0.1:{free_port()}?timeout=2")


@pytest.mark.parametrize("url", ["ftp://host/", "http:///nohost", "http://h/?prefix=Upper", "http://h/?timeout=x"])
async def test_bad_urls_are_refused(url: str) -> None:
    with pytest.raises(ValueError):
        await CouchStore.open(url)


def every_method(creds: Credentials, activation: WhiskActivation) -> list[Callable[[CouchStore], Awaitable[Any]]]:
    uuid, key = creds.uuid("alice-ns"), creds.key("alice-ns")
    rev = "1-" + "0" * 32
    return [
        lambda s: s.put_subject(creds.subject),
        lambda s: s.get_subject("alice"),
        lambda s: s.delete_subject("alice", rev),
        lambda s: s.identity_by_key(uuid, key),
        lambda s: s.identity_by_namespace("alice-ns"),
        lambda s: s.get_entity("guest/hello"),
        lambda s: s.put_entity("guest/other", "action", action_body("guest", "other", 2), None),
        lambda s: s.delete_entity("guest/hello", rev),
        lambda s: s.list_entities("guest", "action", 0, 0),
        lambda s: s.count_entities("guest", "action"),
        lambda s: s.put_activation(activation),
        lambda s: s.get_activation("guest", activation.activationId),
        lambda s: s.list_activations("guest"),
        lambda s: s.count_activations("guest"),
    ]


async def test_every_method_is_unavailable_while_the_server_is_down_and_works_when_it_returns(
    tmp_path: Path,
) -> None:
    with couchdb_server(tmp_path) as own:
        store = await CouchStore.open(f"{own.url}/?prefix=outage_&timeout=3")
        try:
            creds = Credentials("alice", "alice-ns")
            await store.put_subject(creds.subject)
            entity_rev = await store.put_entity("guest/hello", "action", action_body("guest", "hello", 1), None)
            stored = make_activation(start=1)
            await store.put_activation(stored)

            await asyncio.to_thread(own.stop)
            for call in every_method(creds, make_activation(start=2)):
                with pytest.raises(Unavailable):
                    await asyncio.wait_for(call(store), HANG_GUARD_S)

            await asyncio.to_thread(own.start)
            assert (await store.get_subject("alice"))[0] == creds.subject
            assert (await store.identity_by_key(creds.uuid("alice-ns"), creds.key("alice-ns"))).subject == "alice"
            assert (await store.get_entity("guest/hello")).rev == entity_rev
            assert await store.get_activation("guest", stored.activationId) == stored
            await store.put_activation(make_activation(start=3))
            assert await store.count_activations("guest") == 2
            await store.put_entity("guest/hello", "action", action_body("guest", "hello", 2), entity_rev)
        finally:
            await store.close()


async def test_concurrent_subjects_claiming_one_namespace_leave_exactly_one_owner(store: CouchStore) -> None:
    contenders = [Credentials(f"user{i}", f"own{i}", "shared") for i in range(12)]

    results = await asyncio.gather(*(store.put_subject(c.subject) for c in contenders), return_exceptions=True)

    winners = [c for c, r in zip(contenders, results, strict=True) if isinstance(r, str)]
    assert len(winners) == 1, results
    assert all(isinstance(r, Conflict) for r in results if not isinstance(r, str))
    owner = await store.identity_by_namespace("shared")
    assert owner.subject == winners[0].subject.subject
    shared_uuid = winners[0].uuid("shared")
    assert (await store.identity_by_key(shared_uuid, winners[0].key("shared"))).namespace == "shared"
    for loser in contenders:
        if loser is not winners[0]:
            with pytest.raises(NotFound):
                await store.get_subject(loser.subject.subject)


async def test_a_claim_left_behind_by_a_writer_that_died_is_taken_over(
    server: CouchServer, prefix: str, store: CouchStore
) -> None:
    async with aiohttp.ClientSession(headers={"Accept": "application/json", **_auth(server)}) as session:
        url = f"http://127.0.0.1:{server.port}/{prefix}subjects/namespace%2Forphan"
        async with session.put(url, json={"owner": "ghost"}) as response:
            assert response.status == 201

    creds = Credentials("alice", "orphan")
    await store.put_subject(creds.subject)

    assert (await store.identity_by_namespace("orphan")).subject == "alice"


async def test_an_empty_time_range_lists_nothing_rather_than_failing(store: CouchStore) -> None:
    await store.put_activation(make_activation(start=15))

    assert await store.list_activations("guest", since=20, upto=10) == []
    assert await store.count_activations("guest", name="hello", since=20, upto=10) == 0


async def test_ids_that_need_escaping_stay_one_document(store: CouchStore) -> None:
    body = action_body("guest/p k g", "a?b#c%d", 1)
    rev = await store.put_entity("guest/p k g/a?b#c%d", "action", body, None)

    assert (await store.get_entity("guest/p k g/a?b#c%d")).rev == rev
    assert [d.doc_id for d in await store.list_entities("guest/p k g", "action", 0, 0)] == ["guest/p k g/a?b#c%d"]
    await store.delete_entity("guest/p k g/a?b#c%d", rev)
    assert await store.count_entities("guest", "action") == 0
