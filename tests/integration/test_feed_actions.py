"""The built-in feed actions through a real controller (its REST API on a SQLite store and the in-process bus):
each lifecycle event of `/whisk.system/alarms/*` and `/whisk.system/couchdb/changes`, and what they refuse."""

from __future__ import annotations

import base64
import secrets
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

import controller.feeds  # noqa: F401  (registers the feed packages)
from controller.app import make_app
from feeds import FeedService
from tests.integration.conftest import eventually
from tests.services.couchdb import CouchServer, couchdb_server
from whisk.bus.local import LocalBus
from whisk.config import ControllerSettings
from whisk.entities.feed import now_ms
from whisk.entities.identity import NamespaceKey, Subject, generate_key, generate_uuid, hash_key
from whisk.store import NotFound, Store, open_store


@dataclass
class User:
    namespace: str
    uuid: str
    key: str

    @property
    def auth_key(self) -> str:
        return f"{self.uuid}:{self.key}"


@dataclass
class Api:
    url: str
    session: aiohttp.ClientSession
    store: Store

    async def feed(self, user: User, action: str, event: str, trigger: str, auth_key: str | None = None,
                   **params: Any) -> tuple[int, Any]:
        """Invoke a feed action blocking, as `wsk trigger create --feed` does; the status and the result."""
        token = base64.b64encode(user.auth_key.encode()).decode()
        body = {"lifecycleEvent": event, "triggerName": trigger, "authKey": auth_key or user.auth_key, **params}
        async with self.session.post(
            f"{self.url}/api/v1/namespaces/whisk.system/actions/{action}",
            params={"blocking": "true", "result": "true"}, json=body, headers={"Authorization": f"Basic {token}"},
        ) as response:
            return response.status, await response.json(content_type=None)


async def add_user(store: Store, namespace: str) -> User:
    user = User(namespace, generate_uuid(), generate_key())
    await store.put_subject(Subject(subject=namespace, namespaces=[
        NamespaceKey(name=namespace, uuid=user.uuid, key_hash=hash_key(user.key))]))
    return user


async def add_trigger(store: Store, namespace: str, name: str) -> None:
    body = {"namespace": namespace, "name": name, "updated": now_ms(), "parameters": [], "annotations": []}
    await store.put_entity(f"{namespace}/{name}", "triggers", body, None)


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    store = await open_store(f"sqlite:///{tmp_path / 'store.db'}")
    bus = LocalBus()
    runner = web.AppRunner(make_app(ControllerSettings(), store, bus), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        async with aiohttp.ClientSession() as session:
            yield Api(f"http://127.0.0.1:{runner.addresses[0][1]}", session, store)
    finally:
        await runner.cleanup()
        await bus.close()
        await store.close()


@pytest.fixture
async def guest(api: Api) -> User:
    user = await add_user(api.store, "guest")
    await add_trigger(api.store, "guest", "clock")
    return user


@pytest.fixture(scope="module")
def couch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CouchServer]:
    with couchdb_server(tmp_path_factory.mktemp("couchdb")) as server:
        yield server


async def test_an_alarm_feed_goes_through_its_whole_lifecycle(api: Api, guest: User) -> None:
    created = await api.feed(guest, "alarms/alarm", "CREATE", "/guest/clock", cron="*/2 * * * * *",
                             trigger_payload="tick")
    assert created == (200, {"status": "success"})
    registration, _ = await api.store.get_feed("guest/clock")
    assert (registration.feed, registration.authKey, registration.cursor) == ("alarms/alarm", guest.auth_key, None)

    status, read = await api.feed(guest, "alarms/alarm", "READ", "/_/clock")
    assert status == 200
    assert read["config"] == {"cron": "*/2 * * * * *", "payload": {"payload": "tick"}, "name": "clock",
                              "namespace": "guest"}
    assert read["status"]["active"] is True and guest.key not in str(read)

    assert await api.feed(guest, "alarms/alarm", "UPDATE", "/guest/clock", cron="0 * * * *") == (
        200, {"status": "success"})
    assert (await api.store.get_feed("guest/clock"))[0].config["cron"] == "0 * * * *"

    assert (await api.feed(guest, "alarms/alarm", "PAUSE", "/guest/clock"))[0] == 200
    status, read = await api.feed(guest, "alarms/alarm", "READ", "/guest/clock")
    assert read["status"]["active"] is False and read["status"]["reason"]["kind"] == "USER"
    assert (await api.feed(guest, "alarms/alarm", "UNPAUSE", "/guest/clock"))[0] == 200
    assert (await api.store.get_feed("guest/clock"))[0].status.active is True

    assert await api.feed(guest, "alarms/alarm", "DELETE", "/guest/clock") == (200, {"status": "success"})
    with pytest.raises(NotFound):
        await api.store.get_feed("guest/clock")


async def test_once_and_interval_keep_their_parameters(api: Api, guest: User) -> None:
    await add_trigger(api.store, "guest", "every")
    date = now_ms() + 3_600_000

    assert (await api.feed(guest, "alarms/once", "CREATE", "/guest/clock", date=date, deleteAfterFire="rules"))[0] \
        == 200
    assert (await api.feed(guest, "alarms/interval", "CREATE", "/guest/every", minutes=5))[0] == 200

    assert (await api.store.get_feed("guest/clock"))[0].config == {"date": date, "deleteAfterFire": "rules",
                                                                    "payload": {}}
    assert (await api.store.get_feed("guest/every"))[0].config["minutes"] == 5


@pytest.mark.parametrize(
    ("action", "event", "trigger", "params", "message"),
    [
        ("alarms/alarm", "CREATE", "/guest/clock", {"cron": "every minute"}, "cron pattern 'every minute' is not"),
        ("alarms/alarm", "CREATE", "/guest/clock", {}, "missing the cron parameter"),
        ("alarms/once", "CREATE", "/guest/clock", {"date": "2001-01-01T00:00:00Z"}, "must be in the future"),
        ("alarms/alarm", "CREATE", "/guest/nothing", {"cron": "* * * * *"}, "trigger /guest/nothing does not exist"),
        ("alarms/alarm", "CREATE", "/other/clock", {"cron": "* * * * *"}, "is not in your namespace"),
        ("alarms/alarm", "CREATE", "", {"cron": "* * * * *"}, "no trigger name parameter"),
        ("alarms/alarm", "START", "/guest/clock", {}, "unsupported lifecycleEvent 'START'"),
        ("alarms/alarm", "READ", "/guest/clock", {}, "trigger /guest/clock has no alarms/alarm feed"),
        ("alarms/alarm", "DELETE", "/guest/clock", {}, "has no alarms/alarm feed"),
        ("couchdb/changes", "CREATE", "/guest/clock", {"url": "http://127.0.0.1:9"}, "missing dbname"),
    ],
)
async def test_unusable_requests_are_application_errors_with_a_clear_message(
    api: Api, guest: User, action: str, event: str, trigger: str, params: dict[str, Any], message: str
) -> None:
    status, body = await api.feed(guest, action, event, trigger, **params)

    assert status == 502
    assert message in body["error"]


async def test_a_feed_needs_a_key_of_the_triggers_namespace(api: Api, guest: User) -> None:
    other = await add_user(api.store, "other")
    await add_trigger(api.store, "other", "clock")

    _, wrong_key = await api.feed(guest, "alarms/alarm", "CREATE", "/guest/clock", auth_key=other.auth_key,
                                  cron="* * * * *")
    _, bad_key = await api.feed(guest, "alarms/alarm", "CREATE", "/guest/clock", auth_key=f"{guest.uuid}:nope",
                                cron="* * * * *")
    _, theirs = await api.feed(guest, "alarms/alarm", "CREATE", "/other/clock", auth_key=other.auth_key,
                               cron="* * * * *")

    assert "not a key of the namespace of trigger /guest/clock" in wrong_key["error"]
    assert bad_key["error"] == "the authKey is not valid"
    assert "is not in your namespace" in theirs["error"]
    assert await api.store.list_feeds() == []


async def test_a_changes_feed_starts_at_the_databases_current_sequence_and_never_shows_its_password(
    api: Api, guest: User, couch: CouchServer
) -> None:
    dbname = f"orders_{secrets.token_hex(4)}"
    token = base64.b64encode(f"admin:{couch.password}".encode()).decode()
    headers = {"Authorization": f"Basic {token}", "Accept": "application/json"}
    base = f"http://127.0.0.1:{couch.port}/{dbname}"

    status, missing = await api.feed(guest, "couchdb/changes", "CREATE", "/guest/clock", url=couch.url,
                                     dbname=dbname)
    assert status == 502 and f"error connecting to database {dbname}" in missing["error"]

    async with aiohttp.ClientSession(headers=headers) as couch_session:
        await (await couch_session.put(base)).release()
        await (await couch_session.put(f"{base}/one", json={"n": 1})).release()
        try:
            assert (await api.feed(guest, "couchdb/changes", "CREATE", "/guest/clock", host="127.0.0.1",
                                   port=couch.port, protocol="http", username="admin", password=couch.password,
                                   dbname=dbname))[0] == 200
            registration, _ = await api.store.get_feed("guest/clock")
            _, read = await api.feed(guest, "couchdb/changes", "READ", "/guest/clock")
        finally:
            await (await couch_session.delete(base)).release()

    assert registration.cursor == 1 and registration.config["password"] == couch.password
    assert read["config"] == {"url": f"http://127.0.0.1:{couch.port}", "dbname": dbname, "username": "admin",
                              "name": "clock", "namespace": "guest"}
    assert couch.password not in str(read)
    status, update = await api.feed(guest, "couchdb/changes", "UPDATE", "/guest/clock", dbname="other")
    assert status == 502 and "no updatable parameters" in update["error"]


async def test_the_feed_actions_are_listed_as_feeds_in_whisk_system(api: Api, guest: User) -> None:
    token = base64.b64encode(guest.auth_key.encode()).decode()
    async with api.session.get(f"{api.url}/api/v1/namespaces/whisk.system/actions/alarms/alarm",
                               headers={"Authorization": f"Basic {token}"}) as response:
        action = await response.json()

    assert response.status == 200
    assert {"key": "feed", "value": True} in action["annotations"]
    assert action["exec"]["kind"] == "builtin"


async def test_a_lifecycle_change_reaches_the_feed_service_on_the_bus_at_once(tmp_path: Path) -> None:
    store = await open_store(f"sqlite:///{tmp_path / 'store.db'}")
    bus = LocalBus()
    runner = web.AppRunner(make_app(ControllerSettings(), store, bus), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    service = FeedService(store, bus, "http://127.0.0.1:9", resync_s=3600)
    await service.start()
    try:
        async with aiohttp.ClientSession() as session:
            api = Api(f"http://127.0.0.1:{runner.addresses[0][1]}", session, store)
            guest = await add_user(store, "guest")
            await add_trigger(store, "guest", "clock")

            await api.feed(guest, "alarms/alarm", "CREATE", "/guest/clock", cron="0 0 1 1 *")
            await eventually(lambda: "guest/clock" in service.running, timeout_s=5)
            await api.feed(guest, "alarms/alarm", "PAUSE", "/guest/clock")
            await eventually(lambda: "guest/clock" not in service.running, timeout_s=5)
    finally:
        await service.close()
        await runner.cleanup()
        await bus.close()
        await store.close()
