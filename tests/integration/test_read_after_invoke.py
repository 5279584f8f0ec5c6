"""Reading an activation right after its blocking invoke, while the invoker's store write has not landed (it follows
the completion): a real controller (REST API, SQLite store, in-process bus) and a real invoker on process
containers, whose store writes wait until the test releases them."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from controller.app import make_app
from tests.integration.conftest import HeldWrites, MakeHarness, eventually
from tests.integration.test_feed_actions import User, add_user
from whisk.bus.local import LocalBus
from whisk.config import ControllerSettings
from whisk.store import open_store


class Client:
    def __init__(self, url: str, session: aiohttp.ClientSession, user: User) -> None:
        self.url, self.session = url, session
        self.headers = {"Authorization": "Basic " + base64.b64encode(user.auth_key.encode()).decode()}

    async def call(self, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
        async with self.session.request(method, f"{self.url}/api/v1/namespaces/_{path}", headers=self.headers,
                                        **kwargs) as response:
            return response.status, await response.json(content_type=None)


@pytest.fixture
async def platform(tmp_path: Path, make_harness: MakeHarness) -> AsyncIterator[tuple[Client, HeldWrites]]:
    store = await open_store(f"sqlite:///{tmp_path / 'store.db'}")
    held = HeldWrites(store)
    bus = LocalBus()
    await make_harness(sandbox=False, store=held, bus=bus)
    runner = web.AppRunner(make_app(ControllerSettings(), store, bus), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        user = await add_user(store, "guest")
        async with aiohttp.ClientSession() as session:
            yield Client(f"http://127.0.0.1:{runner.addresses[0][1]}", session, user), held
    finally:
        held.release.set()
        await runner.cleanup()
        await store.close()


async def test_an_activation_is_readable_by_id_right_after_its_blocking_invoke(
    platform: tuple[Client, HeldWrites],
) -> None:
    client, held = platform
    code = "def main(args):\n    print('hi')\n    return {'n': args.get('n')}\n"
    status, _ = await client.call("PUT", "/actions/echo", json={"exec": {"kind": "python:3.11", "code": code}})
    assert status == 200
    status, record = await client.call("POST", "/actions/echo", params={"blocking": "true"}, json={"n": 7})
    assert status == 200 and record["response"]["result"] == {"n": 7}
    activation_id = record["activationId"]

    # the store has not got it yet: the controller that answered shows what it answered
    status, listed = await client.call("GET", "/activations")
    assert status == 200 and listed == []
    status, got = await client.call("GET", f"/activations/{activation_id}")
    assert status == 200 and got["response"]["result"] == {"n": 7} and got["activationId"] == activation_id
    assert (await client.call("GET", f"/activations/{activation_id}/result"))[1]["result"] == {"n": 7}
    logs = (await client.call("GET", f"/activations/{activation_id}/logs"))[1]["logs"]
    assert len(logs) == 1 and logs[0].endswith("hi")

    held.release.set()

    async def listed_now() -> bool:
        return [a["activationId"] for a in (await client.call("GET", "/activations"))[1]] == [activation_id]

    await eventually(listed_now, timeout_s=10)
    assert (await client.call("GET", f"/activations/{activation_id}"))[1] == got


async def test_a_non_blocking_activation_is_not_found_until_it_is_stored(platform: tuple[Client, HeldWrites]) -> None:
    client, held = platform
    code = "def main(args):\n    return {'ok': True}\n"
    assert (await client.call("PUT", "/actions/quiet", json={"exec": {"kind": "python:3.11", "code": code}}))[0] == 200
    status, body = await client.call("POST", "/actions/quiet", json={})
    assert status == 202
    activation_id = body["activationId"]

    status, missing = await client.call("GET", f"/activations/{activation_id}")
    assert status == 404 and missing["code"]
    held.release.set()

    async def found() -> bool:
        return (await client.call("GET", f"/activations/{activation_id}"))[0] == 200

    await eventually(found, timeout_s=30)
