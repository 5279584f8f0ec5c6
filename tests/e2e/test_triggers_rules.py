"""Triggers and rules, end to end: firing runs every active rule's action and records each rule's outcome in the
trigger's activation; rules enable, disable, move and go; OpenWhisk's errors."""

from __future__ import annotations

import json
import secrets
from typing import Any

from tests.e2e.platform import Api

ECHO = "def main(args):\n    return args\n"


def unique(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


def kv(**values: Any) -> list[dict[str, Any]]:
    return [{"key": k, "value": v} for k, v in values.items()]


async def put_trigger(api: Api, name: str, body: dict[str, Any] | None = None, *, overwrite: bool = False,
                      auth: str | None = None) -> tuple[int, Any]:
    params = {"overwrite": "true"} if overwrite else None
    status, got, _ = await api.request("PUT", f"namespaces/_/triggers/{name}", json=body or {}, params=params,
                                       auth=auth)
    return status, got


async def put_rule(api: Api, name: str, trigger: Any, action: Any, *, overwrite: bool = False,
                   auth: str | None = None) -> tuple[int, Any]:
    params = {"overwrite": "true"} if overwrite else None
    body = {"name": name, "status": "", "trigger": trigger, "action": action}
    status, got, _ = await api.request("PUT", f"namespaces/_/rules/{name}", json=body, params=params, auth=auth)
    return status, got


async def set_status(api: Api, rule: str, status: str) -> tuple[int, Any]:
    code, body, _ = await api.request("POST", f"namespaces/_/rules/{rule}", json={"status": status})
    return code, body


async def fire(api: Api, trigger: str, payload: dict[str, Any] | None = None,
               auth: str | None = None) -> tuple[int, Any, Any]:
    return await api.request("POST", f"namespaces/_/triggers/{trigger}", json=payload or {}, auth=auth)


async def trigger_record(api: Api, activation_id: str, auth: str | None = None) -> tuple[dict[str, Any], list[Any]]:
    """The trigger's activation, stored by the time the fire is answered, and its logs parsed."""
    status, record, _ = await api.request("GET", f"namespaces/_/activations/{activation_id}", auth=auth)
    assert status == 200, record
    return record, [json.loads(line) for line in record["logs"]]


async def test_firing_a_trigger_with_two_active_rules_runs_both_actions_and_records_both(api: Api) -> None:
    first, second = unique("first"), unique("second")
    await api.put_action(first, ECHO, parameters=kv(who="first"))
    await api.put_action(second, ECHO)
    trigger = unique("events")
    status, body = await put_trigger(api, trigger, {"parameters": kv(a="trigger", b="trigger")})
    assert status == 200, body
    rule1, rule2 = unique("rule1"), unique("rule2")
    status, body = await put_rule(api, rule1, f"/_/{trigger}", f"/_/{first}")
    assert status == 200, body
    assert body["status"] == "active"
    assert body["trigger"] == {"path": "guest", "name": trigger}
    assert body["action"] == {"path": "guest", "name": first}
    status, body = await put_rule(api, rule2, f"/guest/{trigger}", f"/guest/{second}")
    assert status == 200, body

    status, fired, headers = await fire(api, trigger, {"b": "payload", "c": 1})
    assert status == 202, fired
    activation_id = fired["activationId"]
    assert headers["x-openwhisk-activation-id"] == activation_id

    record, entries = await trigger_record(api, activation_id)
    assert record["name"] == trigger and record["namespace"] == "guest" and record["subject"] == "guest"
    assert record["response"] == {"status": "success", "success": True, "result": {"b": "payload", "c": 1}}
    assert "cause" not in record
    assert sorted(e["rule"] for e in entries) == sorted([f"guest/{rule1}", f"guest/{rule2}"])
    by_action = {e["action"]: e for e in entries}
    assert set(by_action) == {f"guest/{first}", f"guest/{second}"}
    for entry in entries:
        assert entry["statusCode"] == 0 and entry["success"] is True and "error" not in entry
    assert list(entries[0]) == ["statusCode", "success", "activationId", "rule", "action"]

    ran = await api.wait_for_activation(by_action[f"guest/{first}"]["activationId"])
    assert ran["name"] == first and ran["cause"] == activation_id
    assert ran["response"]["result"] == {"who": "first", "a": "trigger", "b": "payload", "c": 1}
    ran = await api.wait_for_activation(by_action[f"guest/{second}"]["activationId"])
    assert ran["name"] == second and ran["cause"] == activation_id
    assert ran["response"]["result"] == {"a": "trigger", "b": "payload", "c": 1}

    status, listed, _ = await api.request("GET", "namespaces/_/activations", params={"name": trigger})
    assert status == 200 and [a["activationId"] for a in listed] == [activation_id]


async def test_a_disabled_rule_does_not_run_and_the_trigger_activation_says_so(api: Api) -> None:
    on, off = unique("on"), unique("off")
    await api.put_action(on, ECHO)
    await api.put_action(off, ECHO)
    trigger = unique("events")
    await put_trigger(api, trigger)
    rule_on, rule_off = unique("rule-on"), unique("rule-off")
    await put_rule(api, rule_on, f"/_/{trigger}", f"/_/{on}")
    await put_rule(api, rule_off, f"/_/{trigger}", f"/_/{off}")

    status, body = await set_status(api, rule_off, "inactive")
    assert status == 200, body
    status, body = await set_status(api, rule_off, "inactive")
    assert status == 200, "already in that state is fine"
    status, got, _ = await api.request("GET", f"namespaces/_/rules/{rule_off}")
    assert status == 200 and got["status"] == "inactive"
    status, got, _ = await api.request("GET", f"namespaces/_/triggers/{trigger}")
    assert got["rules"] == {
        f"guest/{rule_on}": {"action": {"path": "guest", "name": on}, "status": "active"},
        f"guest/{rule_off}": {"action": {"path": "guest", "name": off}, "status": "inactive"},
    }

    status, fired, _ = await fire(api, trigger, {"x": 1})
    assert status == 202, fired
    _, entries = await trigger_record(api, fired["activationId"])
    by_rule = {e["rule"]: e for e in entries}
    assert by_rule[f"guest/{rule_off}"] == {
        "statusCode": 1, "success": False, "rule": f"guest/{rule_off}", "action": f"guest/{off}",
        "error": f"Rule 'guest/{rule_off}' is inactive, action 'guest/{off}' was not activated.",
    }
    assert by_rule[f"guest/{rule_on}"]["success"] is True
    await api.wait_for_activation(by_rule[f"guest/{rule_on}"]["activationId"])
    status, listed, _ = await api.request("GET", "namespaces/_/activations", params={"name": off})
    assert status == 200 and listed == []

    # enabled again, it runs
    status, _ = await set_status(api, rule_off, "active")
    assert status == 200
    status, fired, _ = await fire(api, trigger)
    _, entries = await trigger_record(api, fired["activationId"])
    assert all(e["success"] for e in entries) and len(entries) == 2


async def test_a_trigger_without_an_active_rule_answers_204_and_records_nothing(api: Api) -> None:
    trigger = unique("lonely")
    await put_trigger(api, trigger)
    status, body, headers = await fire(api, trigger, {"x": 1})
    assert status == 204 and body is None
    assert "x-openwhisk-activation-id" not in headers

    action, rule = unique("echo"), unique("rule")
    await api.put_action(action, ECHO)
    await put_rule(api, rule, f"/_/{trigger}", f"/_/{action}")
    await set_status(api, rule, "inactive")
    status, body, _ = await fire(api, trigger)
    assert status == 204 and body is None
    status, listed, _ = await api.request("GET", "namespaces/_/activations", params={"name": trigger})
    assert status == 200 and listed == []


async def test_trigger_create_update_get_list_and_delete(api: Api) -> None:
    trigger = unique("crud")
    status, body = await put_trigger(api, trigger, {
        "parameters": kv(p=1), "annotations": kv(note="x"), "limits": {}, "rules": {"fake/rule": {}}})
    assert status == 200, body
    assert body == {"namespace": "guest", "name": trigger, "version": "0.0.1", "publish": False,
                    "annotations": [{"key": "note", "value": "x"}], "parameters": [{"key": "p", "value": 1}],
                    "limits": {}, "updated": body["updated"]}
    status, body = await put_trigger(api, trigger, {"parameters": kv(p=2)})
    assert status == 409 and body["error"] == "resource already exists"
    status, body = await put_trigger(api, trigger, {"parameters": kv(p=2)}, overwrite=True)
    assert status == 200, body
    assert body["version"] == "0.0.2" and body["parameters"] == [{"key": "p", "value": 2}]
    assert body["annotations"] == [{"key": "note", "value": "x"}], "what the update leaves out is kept"

    status, got, _ = await api.request("GET", f"namespaces/_/triggers/{trigger}")
    assert status == 200 and got == body
    status, listed, _ = await api.request("GET", "namespaces/_/triggers", params={"limit": "0"})
    assert status == 200
    mine = [t for t in listed if t["name"] == trigger]
    assert len(mine) == 1 and "parameters" not in mine[0] and mine[0]["version"] == "0.0.2"
    status, counted, _ = await api.request("GET", "namespaces/_/triggers", params={"count": "true"})
    assert status == 200 and counted["triggers"] >= 1

    status, deleted, _ = await api.request("DELETE", f"namespaces/_/triggers/{trigger}")
    assert status == 200 and deleted["name"] == trigger
    for method in ("GET", "DELETE", "POST"):
        status, body, _ = await api.request(method, f"namespaces/_/triggers/{trigger}", json={})
        assert status == 404, (method, body)
        assert body["error"] == "The requested resource does not exist."


async def test_trigger_errors(api: Api) -> None:
    status, body = await put_trigger(api, "bad%20name%20")
    assert status == 400 and body["error"] == "The name of the entity contains illegal characters."
    status, body = await put_trigger(api, unique("feed"), {"annotations": kv(feed="/not a/feed/at/all")})
    assert status == 400 and body["error"] == "Feed name is not valid"
    status, body, _ = await api.request("GET", "namespaces/whisk.system/triggers")
    assert status == 403, body
    status, body, _ = await api.request("PUT", "namespaces/whisk.system/triggers/mine", json={})
    assert status == 403, body
    trigger = unique("t")
    await put_trigger(api, trigger)
    status, body, _ = await api.request("POST", f"namespaces/_/triggers/{trigger}", json=[1, 2])
    assert status == 400, body
    clash = unique("clash")
    await api.put_action(clash, ECHO)
    status, body = await put_trigger(api, clash, overwrite=True)
    assert status == 409 and body["error"] == "Resource by this name exists but is not in this collection."


async def test_rule_create_get_list_update_and_delete(api: Api) -> None:
    a1, a2 = unique("a1"), unique("a2")
    await api.put_action(a1, ECHO)
    await api.put_action(a2, ECHO)
    t1, t2 = unique("t1"), unique("t2")
    await put_trigger(api, t1)
    await put_trigger(api, t2)
    rule = unique("rule")
    status, body = await put_rule(api, rule, f"/_/{t1}", f"/_/{a1}")
    assert status == 200, body
    assert body == {"namespace": "guest", "name": rule, "version": "0.0.1", "publish": False, "annotations": [],
                    "status": "active", "trigger": {"path": "guest", "name": t1},
                    "action": {"path": "guest", "name": a1}, "updated": body["updated"]}
    status, got, _ = await api.request("GET", f"namespaces/_/rules/{rule}")
    assert status == 200 and got == body
    status, again = await put_rule(api, rule, f"/_/{t1}", f"/_/{a1}")
    assert status == 409 and again["error"] == "resource already exists"

    status, listed, _ = await api.request("GET", "namespaces/_/rules", params={"limit": "0"})
    assert status == 200 and [r["status"] for r in listed if r["name"] == rule] == ["active"]
    status, counted, _ = await api.request("GET", "namespaces/_/rules", params={"count": "true"})
    assert status == 200 and counted["rules"] >= 1

    # an update keeps the status, also when the rule moves to another trigger
    await set_status(api, rule, "inactive")
    status, body = await put_rule(api, rule, f"/_/{t2}", f"/_/{a2}", overwrite=True)
    assert status == 200, body
    assert body["version"] == "0.0.2" and body["status"] == "inactive"
    assert body["trigger"]["name"] == t2 and body["action"]["name"] == a2
    status, old, _ = await api.request("GET", f"namespaces/_/triggers/{t1}")
    assert old["rules"] == {}
    status, new, _ = await api.request("GET", f"namespaces/_/triggers/{t2}")
    assert new["rules"] == {f"guest/{rule}": {"action": {"path": "guest", "name": a2}, "status": "inactive"}}

    # deleting an active rule is allowed and unlinks it from its trigger
    await set_status(api, rule, "active")
    status, deleted, _ = await api.request("DELETE", f"namespaces/_/rules/{rule}")
    assert status == 200 and deleted["name"] == rule and deleted["status"] == "inactive"
    status, new, _ = await api.request("GET", f"namespaces/_/triggers/{t2}")
    assert new["rules"] == {}
    status, body, _ = await api.request("GET", f"namespaces/_/rules/{rule}")
    assert status == 404, body
    status, body = await set_status(api, rule, "active")
    assert status == 404, body


async def test_rules_of_a_deleted_trigger_stay_inactive_and_cannot_be_enabled(api: Api) -> None:
    action, trigger, rule = unique("a"), unique("t"), unique("r")
    await api.put_action(action, ECHO)
    await put_trigger(api, trigger)
    await put_rule(api, rule, f"/_/{trigger}", f"/_/{action}")
    status, _, _ = await api.request("DELETE", f"namespaces/_/triggers/{trigger}")
    assert status == 200
    status, got, _ = await api.request("GET", f"namespaces/_/rules/{rule}")
    assert status == 200 and got["status"] == "inactive"
    status, body = await set_status(api, rule, "active")
    assert status == 404 and body["error"] == "Only rules with existing triggers can be activated"
    status, body = await set_status(api, rule, "inactive")
    assert status == 200, body
    # once the trigger exists again, enabling links the rule to it
    await put_trigger(api, trigger)
    status, body = await set_status(api, rule, "active")
    assert status == 200, body
    status, fired, _ = await fire(api, trigger)
    assert status == 202, fired


async def test_rule_errors(api: Api) -> None:
    action, trigger = unique("a"), unique("t")
    await api.put_action(action, ECHO)
    await put_trigger(api, trigger)
    status, body = await put_rule(api, unique("r"), f"/_/{unique('missing')}", f"/_/{action}")
    assert status == 400 and body["error"].startswith("trigger /guest/missing-") and "does not exist" in body["error"]
    status, body = await put_rule(api, unique("r"), f"/_/{trigger}", "/_/nothing-here")
    assert status == 400 and body["error"] == "action /guest/nothing-here does not exist"
    status, body, _ = await api.request("PUT", f"namespaces/_/rules/{unique('r')}", json={"trigger": f"/_/{trigger}"})
    assert status == 400 and body["error"] == "rule requires a valid trigger and a valid action"
    status, body = await put_rule(api, unique("r"), trigger, f"/_/{action}")
    assert status == 400 and "fully qualified name malformed" in body["error"]
    status, body = await put_rule(api, "bad%20rule%20", f"/_/{trigger}", f"/_/{action}")
    assert status == 400 and body["error"] == "The name of the entity contains illegal characters."
    status, body = await put_rule(api, unique("r"), "/whisk.system/anything", f"/_/{action}")
    assert status == 403, body
    status, body, _ = await api.request("GET", "namespaces/whisk.system/rules")
    assert status == 403, body
    rule = unique("r")
    await put_rule(api, rule, f"/_/{trigger}", f"/_/{action}")
    status, body = await set_status(api, rule, "paused")
    assert status == 400 and "'paused' is not a recognized rule state" in body["error"]
    status, body, _ = await api.request("POST", f"namespaces/_/rules/{rule}", json={})
    assert status == 400, body


async def test_a_rule_runs_an_action_of_a_package_and_reports_a_missing_action(api: Api) -> None:
    package, action = unique("pkg"), unique("echo")
    status, body, _ = await api.request(
        "PUT", f"namespaces/_/packages/{package}", json={"parameters": kv(source="package", a="package")})
    assert status == 200, body
    await api.put_action(f"{package}/{action}", ECHO)
    gone = unique("gone")
    await api.put_action(gone, ECHO)
    trigger = unique("t")
    await put_trigger(api, trigger, {"parameters": kv(a="trigger")})
    in_package, missing = unique("r-pkg"), unique("r-missing")
    status, body = await put_rule(api, in_package, f"/_/{trigger}", f"/_/{package}/{action}")
    assert status == 200, body
    assert body["action"] == {"path": f"guest/{package}", "name": action}
    status, body = await put_rule(api, missing, f"/_/{trigger}", f"/_/{gone}")
    assert status == 200, body
    status, _, _ = await api.request("DELETE", f"namespaces/_/actions/{gone}")
    assert status == 200

    status, fired, _ = await fire(api, trigger, {"p": 1})
    assert status == 202, fired
    _, entries = await trigger_record(api, fired["activationId"])
    by_rule = {e["rule"]: e for e in entries}
    assert by_rule[f"guest/{missing}"] == {
        "statusCode": 1, "success": False, "error": "The requested resource does not exist.",
        "rule": f"guest/{missing}", "action": f"guest/{gone}"}
    ok = by_rule[f"guest/{in_package}"]
    assert ok["action"] == f"guest/{package}/{action}" and ok["success"] is True
    ran = await api.wait_for_activation(ok["activationId"])
    assert ran["response"]["result"] == {"source": "package", "a": "trigger", "p": 1}



async def test_exceeding_the_fires_per_minute_gives_429(api: Api) -> None:
    auth = api.new_namespace("triggers", firesPerMinute=2)
    trigger = unique("t")
    status, body = await put_trigger(api, trigger, auth=auth)
    assert status == 200, body
    # the count starts again each minute, so a boundary may pass a few more: within 6 fires one must be refused
    statuses, refusal = [], None
    for _ in range(6):
        status, body, _ = await fire(api, trigger, auth=auth)
        statuses.append(status)
        if status == 429:
            refusal = body
            break
    assert refusal is not None, statuses
    assert statuses.count(204) >= 2
    assert refusal["error"] == "Too many requests in the last minute (count: 3, allowed: 2)."
    # the guest namespace fires on
    mine = unique("t")
    await put_trigger(api, mine)
    for _ in range(4):
        status, body, _ = await fire(api, mine)
        assert status == 204, body


async def test_rule_invocations_count_as_invocations_of_the_namespace(api: Api) -> None:
    auth = api.new_namespace("triggers", invocationsPerMinute=1)
    trigger = unique("t")
    await put_trigger(api, trigger, auth=auth)
    for n in range(2):
        action, rule = f"echo{n}", f"rule{n}"
        status, body, _ = await api.request(
            "PUT", f"namespaces/_/actions/{action}", json={"exec": {"kind": "python:3.11", "code": ECHO}}, auth=auth)
        assert status == 200, body
        status, body = await put_rule(api, rule, f"/_/{trigger}", f"/_/{action}", auth=auth)
        assert status == 200, body
    # a minute boundary between the two rules may let both through once; the third fire cannot miss
    throttled = []
    for _ in range(3):
        status, fired, _ = await fire(api, trigger, auth=auth)
        assert status == 202, fired
        _, entries = await trigger_record(api, fired["activationId"], auth=auth)
        throttled = [e for e in entries if not e["success"]]
        if throttled:
            break
    assert throttled, "one rule's action must have been refused"
    assert throttled[0]["statusCode"] == 1
    assert throttled[0]["error"].startswith("Too many requests in the last minute")
