"""The built-in feeds through a standalone platform, the way `wsk trigger create --feed` uses them: create the
trigger with its `feed` annotation, invoke the feed action with CREATE, link a rule, and watch the action run."""

from __future__ import annotations

import asyncio
import base64
import secrets
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import pytest

from tests.e2e.platform import Api, Platform
from tests.services.couchdb import CouchServer, couchdb_server

pytestmark = pytest.mark.e2e

ECHO = "def main(args):\n    return {'seen': args}\n"


@pytest.fixture
async def own_api(fresh_platform: Platform) -> AsyncIterator[Api]:
    fresh_platform.start()
    async with aiohttp.ClientSession() as session:
        yield Api(fresh_platform, session)


@pytest.fixture(scope="module")
def couch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CouchServer]:
    with couchdb_server(tmp_path_factory.mktemp("couchdb")) as server:
        yield server


async def feed_trigger(api: Api, trigger: str, feed: str, action: str = "echo", **params: Any) -> None:
    """What `wsk trigger create TRIGGER --feed FEED -p ...` does, then a rule from it to the echo action."""
    status, body, _ = await api.request("PUT", f"namespaces/_/triggers/{trigger}",
                                        json={"annotations": [{"key": "feed", "value": f"/whisk.system/{feed}"}]})
    assert status == 200, body
    status, body, _ = await api.request(
        "POST", f"namespaces/whisk.system/actions/{feed}", params={"blocking": "true", "result": "true"},
        json={"lifecycleEvent": "CREATE", "triggerName": f"/_/{trigger}", "authKey": api.platform.auth, **params})
    assert (status, body) == (200, {"status": "success"})
    await api.put_action(action, ECHO)
    status, body, _ = await api.request("PUT", f"namespaces/_/rules/{trigger}-{action}",
                                        json={"trigger": f"/_/{trigger}", "action": f"/_/{action}"})
    assert status == 200, body


async def echoed(api: Api, count: int, timeout_s: float = 60.0, action: str = "echo") -> list[dict[str, Any]]:
    """The arguments the echo action saw, oldest first, once it has run at least `count` times."""
    deadline = time.monotonic() + timeout_s
    while True:
        status, rows, _ = await api.request("GET", "namespaces/_/activations",
                                            params={"name": action, "docs": "true", "limit": "200"})
        assert status == 200, rows
        results = [row["response"]["result"].get("seen", {}) for row in reversed(rows)]
        if len(results) >= count:
            return results
        assert time.monotonic() < deadline, f"echo ran {len(results)} times, not {count}"
        await asyncio.sleep(0.2)


async def test_an_alarm_trigger_fires_its_rule_on_schedule(own_api: Api) -> None:
    await feed_trigger(own_api, "every-second", "alarms/alarm", cron="* * * * * *",
                       trigger_payload={"tick": "yes"})

    seen = await echoed(own_api, 2)

    assert all(args.get("tick") == "yes" for args in seen)
    status, read, _ = await own_api.request(
        "POST", "namespaces/whisk.system/actions/alarms/alarm", params={"blocking": "true", "result": "true"},
        json={"lifecycleEvent": "READ", "triggerName": "/_/every-second", "authKey": own_api.platform.auth})
    assert status == 200 and read["status"]["active"] is True
    assert own_api.platform.auth.split(":")[1] not in str(read)


async def test_an_alarm_fires_on_every_platform_and_stops_when_its_feed_is_deleted(api: Api) -> None:
    # the shared platforms of tests/e2e/conftest.py: standalone (process, docker) and the distributed stack, whose
    # feed service runs as a process of its own and fires through nginx
    trigger, action = f"tick-{secrets.token_hex(4)}", f"echo-{secrets.token_hex(4)}"
    await feed_trigger(api, trigger, "alarms/alarm", action=action, cron="* * * * * *",
                       trigger_payload={"from": trigger})
    try:
        seen = await echoed(api, 2, action=action)
        assert all(args.get("from") == trigger for args in seen)
    finally:
        status, body, _ = await api.request(
            "POST", "namespaces/whisk.system/actions/alarms/alarm", params={"blocking": "true", "result": "true"},
            json={"lifecycleEvent": "DELETE", "triggerName": f"/_/{trigger}", "authKey": api.platform.auth})
        assert status == 200, body


async def test_documents_fire_a_changes_trigger_also_when_written_while_the_platform_was_down(
    own_api: Api, couch: CouchServer
) -> None:
    dbname = f"orders_{secrets.token_hex(4)}"
    token = base64.b64encode(f"admin:{couch.password}".encode()).decode()
    async with aiohttp.ClientSession(headers={"Authorization": f"Basic {token}", "Accept": "application/json"}
                                     ) as db:
        base = f"http://127.0.0.1:{couch.port}/{dbname}"
        await (await db.put(base)).release()
        await feed_trigger(own_api, "orders", "couchdb/changes", url=couch.url, dbname=dbname)

        await (await db.put(f"{base}/first", json={"item": "tea"})).release()
        seen = await echoed(own_api, 1)
        assert (seen[0]["id"], seen[0]["doc"]["item"], seen[0]["dbname"]) == ("first", "tea", dbname)

        own_api.platform.stop()
        await (await db.put(f"{base}/second", json={"item": "milk"})).release()
        own_api.platform.start()
        await (await db.put(f"{base}/third", json={"item": "sugar"})).release()

        seen = await echoed(own_api, 3)
        await (await db.delete(base)).release()

    # rules invoke their actions without waiting, so the runs may start out of order; none runs twice
    assert sorted(args["id"] for args in seen) == ["first", "second", "third"]
