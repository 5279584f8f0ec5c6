"""Per-namespace throttles, end to end: 429 with OpenWhisk's messages, other namespaces unaffected."""

from __future__ import annotations

import secrets

from tests.e2e.platform import Api

SLEEP = "import time\ndef main(args):\n    time.sleep(args.get('s', 0))\n    return {}\n"



async def test_exceeding_the_invocations_per_minute_gives_429_and_spares_other_namespaces(api: Api) -> None:
    auth = api.new_namespace("throttled", invocationsPerMinute=3)
    status, body, _ = await api.request(
        "PUT", "namespaces/_/actions/quick", json={"exec": {"kind": "python:3.11", "code": SLEEP}}, auth=auth)
    assert status == 200, body
    status, limits, _ = await api.request("GET", "namespaces/_/limits", auth=auth)
    assert limits["invocationsPerMinute"] == 3
    # the count starts again each minute, so a boundary may pass a few more: within 7 calls one must be refused
    statuses, refusal = [], None
    for _ in range(7):
        status, body, _ = await api.request("POST", "namespaces/_/actions/quick", json={}, auth=auth)
        statuses.append(status)
        if status == 429:
            refusal = body
            break
    assert refusal is not None, statuses
    assert statuses.count(202) >= 3
    assert refusal["error"] == "Too many requests in the last minute (count: 4, allowed: 3)." and refusal["code"]
    # another namespace goes on
    name = f"free-{secrets.token_hex(4)}"
    await api.put_action(name, SLEEP)
    for _ in range(5):
        status, body, _ = await api.invoke(name, blocking="true")
        assert status == 200, body


async def test_too_many_concurrent_invocations_give_429(api: Api) -> None:
    auth = api.new_namespace("throttled", concurrentInvocations=1)
    await api.request(
        "PUT", "namespaces/_/actions/slow", json={"exec": {"kind": "python:3.11", "code": SLEEP}}, auth=auth)
    status, body, _ = await api.request("POST", "namespaces/_/actions/slow", json={"s": 3}, auth=auth)
    assert status == 202, body
    status, body, _ = await api.request("POST", "namespaces/_/actions/slow", json={"s": 0}, auth=auth)
    assert status == 429, body
    assert body["error"] == "Too many concurrent requests in flight (count: 2, allowed: 1)."
