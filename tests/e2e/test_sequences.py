"""Sequences, end to end: results passed along, the first error stops, component ids in the logs."""

from __future__ import annotations

import secrets
from typing import Any

from tests.e2e.platform import Api

ADD_ONE = "def main(args):\n    return {'n': args.get('n', 0) + 1, 'seen': args.get('seen', []) + ['add']}\n"
DOUBLE = "def main(args):\n    return {'n': args['n'] * 2, 'seen': args['seen'] + ['double']}\n"
FAIL = "def main(args):\n    return {'error': 'stopped at ' + str(args['n'])}\n"


def unique(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


async def put_sequence(api: Api, name: str, components: list[str], **extra: Any) -> tuple[int, Any]:
    status, body, _ = await api.request(
        "PUT", f"namespaces/_/actions/{name}", json={"exec": {"kind": "sequence", "components": components}, **extra})
    return status, body


async def test_a_three_step_sequence_passes_results_along(api: Api) -> None:
    add, double = unique("add"), unique("double")
    await api.put_action(add, ADD_ONE)
    await api.put_action(double, DOUBLE)
    name = unique("seq")
    status, body = await put_sequence(api, name, [add, f"/_/{double}", f"/guest/{add}"])
    assert status == 200, body
    assert body["exec"]["kind"] == "sequence"
    assert body["exec"]["components"] == [f"/guest/{add}", f"/guest/{double}", f"/guest/{add}"]

    status, record, headers = await api.invoke(name, {"n": 1}, blocking="true")
    assert status == 200, record
    assert record["response"]["result"] == {"n": 5, "seen": ["add", "double", "add"]}
    assert headers["x-openwhisk-activation-id"] == record["activationId"]
    annotations = {a["key"]: a["value"] for a in record["annotations"]}
    assert annotations["kind"] == "sequence" and annotations["topmost"] is True
    assert len(record["logs"]) == 3
    for component_id, component in zip(record["logs"], [add, double, add], strict=True):
        got = await api.wait_for_activation(component_id)
        assert got["name"] == component and got["cause"] == record["activationId"]
    # the stored record is the one returned
    stored = await api.wait_for_activation(record["activationId"])
    assert stored["logs"] == record["logs"] and stored["response"]["result"]["n"] == 5


async def test_the_first_error_stops_the_sequence(api: Api) -> None:
    add, fail, double = unique("add"), unique("fail"), unique("double")
    await api.put_action(add, ADD_ONE)
    await api.put_action(fail, FAIL)
    await api.put_action(double, DOUBLE)
    name = unique("seq")
    await put_sequence(api, name, [add, fail, double])

    status, record, _ = await api.invoke(name, {"n": 41}, blocking="true")
    assert status == 502, record
    assert record["response"]["status"] == "application error", record["response"]
    assert record["response"]["result"] == {"error": "stopped at 42"}
    assert len(record["logs"]) == 2  # the third component never ran
    assert (await api.wait_for_activation(record["logs"][1]))["name"] == fail


async def test_a_sequence_of_sequences_and_non_blocking_invocation(api: Api) -> None:
    add = unique("add")
    await api.put_action(add, ADD_ONE)
    inner, outer = unique("inner"), unique("outer")
    await put_sequence(api, inner, [add, add])
    await put_sequence(api, outer, [inner, add])
    status, body, _ = await api.invoke(outer, {"n": 0})
    assert status == 202, body
    record = await api.wait_for_activation(body["activationId"])
    assert record["response"]["result"]["n"] == 3
    inner_record = await api.wait_for_activation(record["logs"][0])
    assert inner_record["name"] == inner and inner_record["cause"] == record["activationId"]
    assert "topmost" not in {a["key"] for a in inner_record["annotations"]}


async def test_sequence_definitions_are_checked(api: Api) -> None:
    add = unique("add")
    await api.put_action(add, ADD_ONE)
    status, body = await put_sequence(api, unique("seq"), [add, unique("missing")])
    assert status == 400 and body["error"] == "Sequence component does not exist."
    name = unique("seq")
    assert (await put_sequence(api, name, [add]))[0] == 200
    status, body, _ = await api.request(
        "PUT", f"namespaces/_/actions/{name}", params={"overwrite": "true"},
        json={"exec": {"kind": "sequence", "components": [add, name]}})
    assert status == 400 and body["error"] == "Sequence may not refer to itself."
    status, body = await put_sequence(api, unique("seq"), [add] * 51)
    assert status == 400 and body["error"] == "Too many actions in the sequence."
    status, body = await put_sequence(api, unique("seq"), [])
    assert status == 400, body
