"""The feed service against a real CouchDB-compatible server (as its store and as the watched database) and a
recording HTTP server in the place of the platform's triggers API."""

from __future__ import annotations

import asyncio
import base64
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from feeds import FeedService
from tests.integration.conftest import eventually
from tests.services.couchdb import CouchServer, couchdb_server, drop_databases
from whisk.bus.local import LocalBus
from whisk.config import ServiceSettings
from whisk.couch_source import CouchSource
from whisk.entities.feed import FeedRegistration, FeedStatus, now_ms
from whisk.feed_config import validate
from whisk.loopback_registry import Registry
from whisk.messages import FEEDS_TOPIC, FeedChangedMessage
from whisk.store import Conflict, NotFound, Store, open_store

AUTH = "7cc3bb0f-0000-4000-8000-000000000001:" + "k" * 64


@dataclass
class Fire:
    trigger: str
    payload: Any
    authorization: str


@dataclass
class Platform:
    """Records what the feed service asks of the platform; `answers` scripts the status of the next fires."""

    url: str = ""
    fires: list[Fire] = field(default_factory=list)
    attempts: int = 0
    answers: list[int] = field(default_factory=list)
    requests: list[tuple[str, str]] = field(default_factory=list)
    rules: dict[str, Any] = field(default_factory=dict)

    def fired(self, trigger: str) -> list[Any]:
        return [fire.payload for fire in self.fires if fire.trigger == trigger]

    async def on_fire(self, request: web.Request) -> web.Response:
        self.attempts += 1
        status = self.answers.pop(0) if self.answers else 202
        if status != 202:
            return web.json_response({"error": "scripted", "code": "t"}, status=status)
        trigger = f"{request.match_info['ns']}/{request.match_info['name']}"
        self.fires.append(Fire(trigger, await request.json(), request.headers.get("Authorization", "")))
        return web.json_response({"activationId": secrets.token_hex(16)}, status=202)

    async def on_other(self, request: web.Request) -> web.Response:
        self.requests.append((request.method, request.path))
        if request.method == "GET":
            return web.json_response({"name": request.match_info["name"], "rules": self.rules})
        return web.json_response({})


@pytest.fixture
async def platform() -> AsyncIterator[Platform]:
    recorder = Platform()
    app = web.Application()
    app.router.add_post("/api/v1/namespaces/{ns}/triggers/{name}", recorder.on_fire)
    app.router.add_route("*", "/api/v1/namespaces/{ns}/{collection}/{name}", recorder.on_other)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    recorder.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    yield recorder
    await runner.cleanup()


@pytest.fixture(scope="module")
def couch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CouchServer]:
    with couchdb_server(tmp_path_factory.mktemp("couchdb")) as server:
        yield server


class Database:
    """A user's database on the test server, written to over HTTP as an application would."""

    def __init__(self, couch: CouchServer, name: str) -> None:
        self.couch = couch
        self.name = name
        token = base64.b64encode(f"admin:{couch.password}".encode()).decode()
        self.headers = {"Authorization": f"Basic {token}", "Accept": "application/json"}
        self.base = f"http://127.0.0.1:{couch.port}/{name}"

    @property
    def config(self) -> dict[str, Any]:
        return validate("couchdb/changes", {"url": self.couch.url, "dbname": self.name}, now_ms())

    async def _call(self, method: str, path: str = "", body: Any = None) -> Any:
        async with aiohttp.ClientSession(headers=self.headers) as session:
            async with session.request(method, f"{self.base}{path}", json=body) as response:
                assert response.status < 300 or response.status == 404, await response.text()
                return await response.json(content_type=None)

    async def create(self) -> None:
        await self._call("PUT")

    async def drop(self) -> None:
        await self._call("DELETE")

    async def write(self, doc_id: str, **fields: Any) -> None:
        await self._call("PUT", f"/{doc_id}", fields)


@pytest.fixture
async def database(couch: CouchServer) -> AsyncIterator[Database]:
    db = Database(couch, f"orders_{secrets.token_hex(4)}")
    await db.create()
    yield db
    await db.drop()


@pytest.fixture(params=["sqlite", "couchdb"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    if request.param == "sqlite":
        opened = await open_store(f"sqlite:///{tmp_path / 'store.db'}")
        yield opened
        await opened.close()
        return
    couch: CouchServer = request.getfixturevalue("couch")
    prefix = f"feeds_{secrets.token_hex(4)}_"
    opened = await open_store(f"{couch.url}/?prefix={prefix}")
    yield opened
    await opened.close()
    await drop_databases(couch.url, prefix)


MakeService = Callable[..., Awaitable[FeedService]]


@pytest.fixture
async def make_service(store: Store, platform: Platform) -> AsyncIterator[MakeService]:
    """`await make_service()`: a started feed service on the test's store and a LocalBus, closed after the test."""
    started: list[FeedService] = []
    bus = LocalBus()

    async def make(**options: Any) -> FeedService:
        options.setdefault("resync_s", 3600)
        options.setdefault("retry_first_s", 0.05)
        options.setdefault("retry_max_s", 0.2)
        options.setdefault("longpoll_ms", 1000)
        service = FeedService(store, bus, platform.url, **options)
        await service.start()
        started.append(service)
        return service

    make.bus = bus  # type: ignore[attr-defined]
    yield make
    for service in started:
        await service.close()
    await bus.close()


def registration(trigger: str, feed: str, config: dict[str, Any], **extra: Any) -> FeedRegistration:
    return FeedRegistration(trigger=trigger, feed=feed, authKey=AUTH, config=config, **extra)  # type: ignore[arg-type]


async def changes_registration(store: Store, database: Database, trigger: str = "guest/orders", **extra: Any
                               ) -> FeedRegistration:
    """A registration as CREATE leaves it: its cursor at the database's sequence when it was created."""
    async with aiohttp.ClientSession() as session:
        seq = await CouchSource(session, database.config).update_seq()
    created = registration(trigger, "couchdb/changes", database.config, cursor=seq, **extra)
    await store.put_feed(created, None)
    return created


async def test_an_alarm_fires_on_its_cron_schedule_with_the_owners_key_and_payload(
    store: Store, platform: Platform, make_service: MakeService
) -> None:
    config = validate("alarms/alarm", {"cron": "* * * * * *", "trigger_payload": {"tick": True}}, now_ms())
    await store.put_feed(registration("guest/clock", "alarms/alarm", config), None)

    await make_service()
    await eventually(lambda: len(platform.fired("guest/clock")) >= 2, timeout_s=10)

    assert platform.fired("guest/clock")[:2] == [{"tick": True}, {"tick": True}]
    assert platform.fires[0].authorization == "Basic " + base64.b64encode(AUTH.encode()).decode()
    stored, _ = await store.get_feed("guest/clock")
    assert isinstance(stored.cursor, int) and stored.cursor % 1000 == 0 and stored.status.active


async def test_once_fires_once_and_then_the_registration_is_disabled(
    store: Store, platform: Platform, make_service: MakeService
) -> None:
    config = validate("alarms/once", {"date": now_ms() + 500, "trigger_payload": "ring"}, now_ms())
    await store.put_feed(registration("guest/bell", "alarms/once", config), None)

    service = await make_service()
    await eventually(lambda: _equals(store_active(store, "guest/bell"), False), timeout_s=10)

    assert platform.fired("guest/bell") == [{"payload": "ring"}]
    stored, _ = await store.get_feed("guest/bell")
    assert stored.status.reason is not None and stored.status.reason.message == (
        "Automatically disabled after firing once")
    await service.resync()
    assert "guest/bell" not in service.running


async def store_active(store: Store, trigger: str) -> bool:
    return (await store.get_feed(trigger))[0].status.active


async def cursor_is(store: Store, trigger: str, cursor: Any) -> bool:
    return (await store.get_feed(trigger))[0].cursor == cursor


async def test_once_with_delete_after_fire_rules_deletes_the_rules_the_trigger_and_its_registration(
    store: Store, platform: Platform, make_service: MakeService
) -> None:
    platform.rules = {"guest/on-bell": {"status": "active"}}
    config = validate("alarms/once", {"date": now_ms() + 300, "deleteAfterFire": "rules"}, now_ms())
    await store.put_feed(registration("guest/bell", "alarms/once", config), None)

    await make_service()

    async def registration_gone() -> bool:
        try:
            await store.get_feed("guest/bell")
        except NotFound:
            return True
        return False

    await eventually(registration_gone, timeout_s=10)
    assert platform.fired("guest/bell") == [{}]
    assert platform.requests == [("GET", "/api/v1/namespaces/guest/triggers/bell"),
                                 ("DELETE", "/api/v1/namespaces/guest/rules/on-bell"),
                                 ("DELETE", "/api/v1/namespaces/guest/triggers/bell")]


async def test_a_once_whose_date_passed_while_the_service_was_down_fires_when_it_starts(
    store: Store, platform: Platform, make_service: MakeService
) -> None:
    config = {"date": now_ms() - 60_000, "deleteAfterFire": "false", "payload": {}}
    await store.put_feed(registration("guest/late", "alarms/once", config), None)

    await make_service()

    await eventually(lambda: len(platform.fired("guest/late")) == 1, timeout_s=10)


async def test_a_change_fires_the_trigger_with_the_document(
    store: Store, platform: Platform, database: Database, make_service: MakeService
) -> None:
    await database.write("before", n=0)
    await changes_registration(store, database)
    await make_service()

    await database.write("order-1", item="tea", n=1)
    await eventually(lambda: len(platform.fired("guest/orders")) == 1, timeout_s=15)

    (payload,) = platform.fired("guest/orders")
    assert payload["dbname"] == database.name and payload["id"] == "order-1"
    assert payload["doc"]["item"] == "tea" and payload["doc"]["_id"] == "order-1"
    assert payload["changes"][0]["rev"] == payload["doc"]["_rev"] and "seq" in payload
    # the cursor is saved after the fire returns
    await eventually(lambda: cursor_is(store, "guest/orders", payload["seq"]), timeout_s=15)


async def loopback_registry(couch: CouchServer, tenant: str, connector: str, **settings: Any
                            ) -> tuple[Registry, dict[str, Database]]:
    """A LoopBack registry on the test server holding one model `m1` of `tenant` on a `connector` datasource."""
    prefix = f"lb{secrets.token_hex(3)}_"
    dbs = {name: Database(couch, f"{prefix}{name}") for name in ("datasources", "models", "changes")}
    for db in dbs.values():
        await db.create()
    await dbs["datasources"].write(f"{tenant}%2Fd1", tenant=tenant, connector=connector, settings=settings)
    await dbs["models"].write(f"{tenant}%2Fm1", tenant=tenant, name="Contact", datasourceId="d1")
    return Registry.at(couch.url, prefix), dbs


async def test_a_loopback_changes_feed_fires_only_its_own_models_changes_without_the_registrys_fields(
    store: Store, platform: Platform, couch: CouchServer, make_service: MakeService
) -> None:
    registry, dbs = await loopback_registry(couch, "alice", "postgresql", host="db")
    async with aiohttp.ClientSession() as session:
        seq = await CouchSource(session, registry.database("changes")).update_seq()
    config = validate("loopback/changes", {"modelId": "m1"}, now_ms())
    await store.put_feed(registration("alice/changed", "loopback/changes", config, cursor=seq), None)
    await make_service(loopback_registry=registry)

    change = {"modelId": "m1", "model": "Contact", "op": "create", "id": 7, "record": {"id": 7, "name": "Ada"}}
    log = dbs["changes"]
    await log.write("c1", tenant="bob", **change)  # another tenant's model with the same id
    await log.write("c2", tenant="alice", **{**change, "modelId": "m2"})  # another model
    await log.write("c3", tenant="alice", **change)
    await log.write("c4", tenant="alice", **{**change, "op": "delete", "record": None})
    await eventually(lambda: len(platform.fired("alice/changed")) == 2, timeout_s=15)

    assert platform.fired("alice/changed") == [change, {**change, "op": "delete", "record": None}]
    assert platform.fires[0].authorization == "Basic " + base64.b64encode(AUTH.encode()).decode()


async def test_a_loopback_changes_feed_of_a_couchdb_model_follows_the_models_own_database(
    store: Store, platform: Platform, couch: CouchServer, database: Database, make_service: MakeService
) -> None:
    registry, _ = await loopback_registry(couch, "alice", "couchdb", url=f"http://127.0.0.1:{couch.port}",
                                          database=database.name, username="admin", password=couch.password)
    async with aiohttp.ClientSession() as session:
        seq = await CouchSource(session, database.config).update_seq()
    config = validate("loopback/changes", {"modelId": "m1"}, now_ms())
    await store.put_feed(registration("alice/changed", "loopback/changes", config, cursor=seq), None)
    await make_service(loopback_registry=registry)

    await database.write("other", loopback__model__name="Invoice", total=3)  # another model's record
    await database.write("ada", loopback__model__name="Contact", name="Ada")  # as if written by another app
    await eventually(lambda: len(platform.fired("alice/changed")) == 1, timeout_s=15)
    [created] = platform.fired("alice/changed")
    assert created == {"model": "Contact", "modelId": "m1", "op": "create", "id": "ada",
                       "record": {"id": "ada", "name": "Ada"}}

    current = await database._call("GET", "/ada")
    await database.write("ada", _rev=current["_rev"], loopback__model__name="Contact", name="Ada L.")
    # CouchDB's _changes lists a document once, at its latest revision: let the update fire before the delete
    await eventually(lambda: len(platform.fired("alice/changed")) == 2, timeout_s=15)
    current = await database._call("GET", "/ada")
    # a tombstone that names its model, as the catalog's deleteRecord leaves it
    await database.write("ada", _rev=current["_rev"], _deleted=True, loopback__model__name="Contact")
    await eventually(lambda: len(platform.fired("alice/changed")) == 3, timeout_s=15)
    updated, deleted = platform.fired("alice/changed")[1:]
    assert (updated["op"], updated["record"]["name"]) == ("update", "Ada L.")
    assert (deleted["op"], deleted["id"], deleted["record"]) == ("delete", "ada", None)


async def test_a_loopback_changes_feed_finds_its_model_again_when_its_database_refuses_and_ends_with_the_model(
    store: Store, platform: Platform, couch: CouchServer, database: Database, make_service: MakeService
) -> None:
    settings = {"url": f"http://127.0.0.1:{couch.port}", "database": database.name, "username": "admin"}
    registry, dbs = await loopback_registry(couch, "alice", "couchdb", **settings, password="outdated")
    async with aiohttp.ClientSession() as session:
        seq = await CouchSource(session, database.config).update_seq()
    config = validate("loopback/changes", {"modelId": "m1"}, now_ms())
    await store.put_feed(registration("alice/changed", "loopback/changes", config, cursor=seq), None)
    await make_service(loopback_registry=registry)

    await database.write("ada", loopback__model__name="Contact", name="Ada")
    # the tenant updates the datasource with the database's real password: the feed reads on from its cursor
    current = await dbs["datasources"]._call("GET", "/alice%2Fd1")
    await dbs["datasources"].write("alice%2Fd1", **{**current, "settings": {**settings, "password": couch.password}})
    await eventually(lambda: len(platform.fired("alice/changed")) == 1, timeout_s=15)
    assert platform.fired("alice/changed")[0]["id"] == "ada"

    # the model is deleted: the registration ends with the reason
    model = await dbs["models"]._call("GET", "/alice%2Fm1")
    await dbs["models"]._call("DELETE", f"/alice%2Fm1?rev={model['_rev']}")
    await database.write("grace", loopback__model__name="Contact", name="Grace")  # wakes the follower

    await eventually(lambda: _equals(store_active(store, "alice/changed"), False), timeout_s=15)
    stored, _ = await store.get_feed("alice/changed")
    assert stored.status.reason is not None and "no longer exists" in stored.status.reason.message
    # "grace" fires or not depending on whether its poll ends before the follower sees the model gone
    assert [payload["id"] for payload in platform.fired("alice/changed")][:1] == ["ada"]


async def test_a_loopback_changes_feed_without_a_configured_registry_is_disabled_with_the_reason(
    store: Store, make_service: MakeService
) -> None:
    config = validate("loopback/changes", {"modelId": "m1"}, now_ms())
    await store.put_feed(registration("alice/changed", "loopback/changes", config, cursor=0), None)
    await make_service()

    await eventually(lambda: _equals(store_active(store, "alice/changed"), False), timeout_s=15)
    stored, _ = await store.get_feed("alice/changed")
    assert stored.status.reason is not None and "registry" in stored.status.reason.message


async def test_documents_written_while_the_service_was_down_fire_after_a_restart_and_none_twice(
    store: Store, platform: Platform, database: Database, make_service: MakeService
) -> None:
    await changes_registration(store, database)
    first = await make_service()
    await database.write("a", n=1)
    await eventually(lambda: len(platform.fired("guest/orders")) == 1, timeout_s=15)

    # a stop between a fire and its cursor save fires that change again (at least once): stop after the save
    await eventually(lambda: cursor_is(store, "guest/orders", platform.fired("guest/orders")[0]["seq"]), timeout_s=15)
    await first.close()

    await database.write("b", n=2)
    await database.write("c", n=3)
    await make_service()
    await eventually(lambda: len(platform.fired("guest/orders")) >= 3, timeout_s=15)
    await database.write("d", n=4)
    await eventually(lambda: len(platform.fired("guest/orders")) >= 4, timeout_s=15)

    assert [payload["id"] for payload in platform.fired("guest/orders")] == ["a", "b", "c", "d"]


async def test_a_paused_registration_does_not_fire_and_resumes_from_its_cursor_when_unpaused(
    store: Store, platform: Platform, database: Database, make_service: MakeService
) -> None:
    created = await changes_registration(store, database, status=FeedStatus(active=False))
    await changes_registration(store, database, trigger="guest/witness")
    service = await make_service()
    assert set(service.running) == {"guest/witness"}

    await database.write("while-paused", n=1)
    await eventually(lambda: len(platform.fired("guest/witness")) == 1, timeout_s=15)
    assert platform.fired("guest/orders") == []

    _, rev = await store.get_feed("guest/orders")
    await store.put_feed(created.model_copy(update={"status": FeedStatus(active=True)}), rev)
    await make_service.bus.send(FEEDS_TOPIC, FeedChangedMessage(trigger="guest/orders").serialize())  # type: ignore[attr-defined]

    await eventually(lambda: len(platform.fired("guest/orders")) == 1, timeout_s=15)
    assert platform.fired("guest/orders")[0]["id"] == "while-paused"


async def test_a_registration_created_after_start_runs_on_its_bus_message_and_stops_when_deleted(
    store: Store, platform: Platform, make_service: MakeService
) -> None:
    service = await make_service()
    config = validate("alarms/alarm", {"cron": "* * * * * *"}, now_ms())
    await store.put_feed(registration("guest/late", "alarms/alarm", config), None)
    bus = make_service.bus  # type: ignore[attr-defined]

    await bus.send(FEEDS_TOPIC, FeedChangedMessage(trigger="guest/late").serialize())
    await eventually(lambda: len(platform.fired("guest/late")) >= 1, timeout_s=10)
    async def deleted() -> bool:  # the running alarm moves the revision with each cursor it saves
        try:
            await store.delete_feed("guest/late", (await store.get_feed("guest/late"))[1])
        except Conflict:
            return False
        return True

    await eventually(deleted, timeout_s=10)
    await bus.send(FEEDS_TOPIC, FeedChangedMessage(trigger="guest/late").serialize())

    await eventually(lambda: "guest/late" not in service.running, timeout_s=10)


async def test_the_periodic_resync_picks_up_a_registration_without_a_message(
    store: Store, platform: Platform, make_service: MakeService
) -> None:
    service = await make_service(resync_s=0.2)
    config = validate("alarms/alarm", {"cron": "* * * * * *"}, now_ms())
    await store.put_feed(registration("guest/quiet", "alarms/alarm", config), None)

    await eventually(lambda: "guest/quiet" in service.running, timeout_s=10)


async def test_a_trigger_gone_from_the_platform_disables_its_registration_and_no_key_is_logged(
    store: Store, platform: Platform, make_service: MakeService, caplog: pytest.LogCaptureFixture
) -> None:
    platform.answers = [404]
    config = validate("alarms/alarm", {"cron": "* * * * * *"}, now_ms())
    await store.put_feed(registration("guest/gone", "alarms/alarm", config), None)

    service = await make_service()
    await eventually(lambda: _equals(store_active(store, "guest/gone"), False), timeout_s=10)

    stored, _ = await store.get_feed("guest/gone")
    assert stored.status.reason is not None and stored.status.reason.statusCode == 404
    assert "404 status code when firing" in stored.status.reason.message
    await service.resync()
    assert "guest/gone" not in service.running and platform.fires == []
    assert "guest/gone" in caplog.text and AUTH.split(":")[1] not in caplog.text


async def test_throttled_and_failing_fires_are_retried_until_the_platform_takes_them(
    store: Store, platform: Platform, database: Database, make_service: MakeService
) -> None:
    platform.answers = [429, 503, 502]
    await changes_registration(store, database)
    await make_service()

    await database.write("x", n=1)
    await eventually(lambda: len(platform.fired("guest/orders")) == 1, timeout_s=15)

    assert platform.attempts == 4
    assert (await store.get_feed("guest/orders"))[0].status.active


async def test_an_unreadable_database_is_reported_in_the_status_and_followed_once_it_exists(
    store: Store, platform: Platform, couch: CouchServer, make_service: MakeService
) -> None:
    database = Database(couch, f"later_{secrets.token_hex(4)}")
    await store.put_feed(registration("guest/later", "couchdb/changes", database.config, cursor=0), None)
    service = await make_service()

    async def reason() -> str | None:
        stored = (await store.get_feed("guest/later"))[0]
        return stored.status.reason.message if stored.status.reason else None

    await eventually(lambda: _equals(reason(), f"database {database.name} does not exist"), timeout_s=10)
    assert "guest/later" in service.running and (await store.get_feed("guest/later"))[0].status.active

    await database.create()
    try:
        await database.write("first", n=1)
        await eventually(lambda: len(platform.fired("guest/later")) == 1, timeout_s=15)
        await eventually(lambda: _equals(reason(), None), timeout_s=10)
    finally:
        await database.drop()


async def _equals(value: Awaitable[Any], expected: Any) -> bool:
    return await value == expected


async def test_the_feeds_role_runs_the_service_on_the_configured_store_until_stopped(
    platform: Platform, tmp_path: Path
) -> None:
    from pywhisk.services import serve_feeds  # the distributed roles module imports the controller too

    url = f"sqlite:///{tmp_path / 'role.db'}"
    store = await open_store(url)
    config = validate("alarms/alarm", {"cron": "* * * * * *"}, now_ms())
    await store.put_feed(registration("guest/clock", "alarms/alarm", config), None)
    await store.close()
    stop = asyncio.Event()
    service = ServiceSettings(store_url=url, bus_url="local:")

    running = asyncio.create_task(serve_feeds(service, {"PYWHISK_API_URL": platform.url}, stop))
    try:
        await eventually(lambda: len(platform.fired("guest/clock")) >= 1, timeout_s=10)
    finally:
        stop.set()
        await asyncio.wait_for(running, 10)
