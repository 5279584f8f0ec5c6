"""Actions, invocation and activations through the REST API of a standalone platform started by the tests."""

import asyncio
import time

import pytest

from tests.e2e.platform import Api

pytestmark = pytest.mark.e2e

HELLO_PY = """
def main(args):
    name = args.get("name", "stranger")
    print(f"hello {name} on stdout")
    return {"greeting": f"Hello {name}"}
"""

HELLO_JS = """
function main(params) {
    console.log('hello from node');
    return { greeting: 'Hello ' + (params.name || 'stranger') };
}
"""

SLEEPY_PY = """
import time
def main(args):
    time.sleep(args.get("seconds", 1))
    return {"slept": args.get("seconds", 1)}
"""


def unique(prefix: str) -> str:
    return f"{prefix}-{time.monotonic_ns()}"


async def test_a_python_action_is_created_invoked_and_its_record_has_the_logs(api: Api) -> None:
    name = unique("hello")
    created = await api.put_action(name, HELLO_PY)
    assert created["exec"]["kind"] == "python:3.11"
    assert {"key": "exec", "value": "python:3.11"} in created["annotations"]
    status, body, headers = await api.invoke(name, {"name": "Ada"}, blocking="true", result="true")
    assert status == 200
    assert body == {"greeting": "Hello Ada"}
    activation_id = headers["x-openwhisk-activation-id"]
    record = await api.wait_for_activation(activation_id)
    assert record["response"] == {"status": "success", "success": True, "result": {"greeting": "Hello Ada"},
                                  "size": record["response"]["size"]}
    assert any(line.endswith("stdout: hello Ada on stdout") for line in record["logs"]), record["logs"]
    keys = {a["key"] for a in record["annotations"]}
    assert {"path", "waitTime", "kind", "limits", "timeout", "initTime"} <= keys
    assert record["namespace"] == "guest" and record["name"] == name


async def test_a_nodejs_action_is_invoked_with_its_default_kind(api: Api) -> None:
    name = unique("hello-js")
    created = await api.put_action(name, HELLO_JS, kind="nodejs:default")
    assert created["exec"]["kind"].startswith("nodejs:")
    status, body, _ = await api.invoke(name, {"name": "Grace"}, blocking="true")
    assert status == 200, body
    assert body["response"]["result"] == {"greeting": "Hello Grace"}
    assert any("stdout: hello from node" in line for line in body["logs"])


async def test_a_non_blocking_invoke_answers_202_with_an_id_that_resolves_to_the_record(api: Api) -> None:
    name = unique("nb")
    await api.put_action(name, HELLO_PY)
    status, body, headers = await api.invoke(name, {"name": "Bob"})
    assert status == 202
    assert set(body) == {"activationId"} and headers["x-openwhisk-activation-id"] == body["activationId"]
    record = await api.wait_for_activation(body["activationId"])
    assert record["response"]["result"] == {"greeting": "Hello Bob"}
    status, result, _ = await api.request("GET", f"namespaces/_/activations/{body['activationId']}/result")
    assert status == 200 and result["result"] == {"greeting": "Hello Bob"}
    status, logs, _ = await api.request("GET", f"namespaces/_/activations/{body['activationId']}/logs")
    assert status == 200 and any("hello Bob" in line for line in logs["logs"])


async def test_a_blocking_invoke_past_its_wait_answers_202_and_the_record_comes_later(api: Api) -> None:
    name = unique("sleepy")
    await api.put_action(name, SLEEPY_PY)
    status, body, headers = await api.invoke(name, {"seconds": 2}, blocking="true", timeout="300")
    assert status == 202, body
    assert body == {"activationId": headers["x-openwhisk-activation-id"]}
    record = await api.wait_for_activation(body["activationId"])
    assert record["response"]["result"] == {"slept": 2}


async def test_an_action_returning_an_error_is_an_application_error_with_502(api: Api) -> None:
    name = unique("apperr")
    await api.put_action(name, "def main(args):\n    return {'error': 'bad input'}\n")
    status, body, headers = await api.invoke(name, blocking="true")
    assert status == 502
    assert body["response"]["status"] == "application error"
    assert body["response"]["result"] == {"error": "bad input"}
    assert headers["x-openwhisk-activation-id"] == body["activationId"]


async def test_an_action_that_raises_is_a_developer_error_with_502(api: Api) -> None:
    name = unique("raises")
    await api.put_action(name, "def main(args):\n    raise ValueError('boom')\n")
    status, body, _ = await api.invoke(name, blocking="true")
    assert status == 502
    assert body["response"]["status"] == "action developer error"
    assert "boom" in body["response"]["result"]["error"]


async def test_an_action_over_its_time_limit_gets_the_time_limit_message_and_the_next_call_works(api: Api) -> None:
    name = unique("slow")
    await api.put_action(name, SLEEPY_PY, limits={"timeout": 1000})
    status, body, _ = await api.invoke(name, {"seconds": 5}, blocking="true")
    assert status == 502
    assert body["response"]["status"] == "action developer error"
    assert body["response"]["result"] == {"error": "The action exceeded its time limits of 1000 milliseconds."}
    assert {"key": "timeout", "value": True} in body["annotations"]
    status, body, _ = await api.invoke(name, {"seconds": 0}, blocking="true", result="true")
    assert status == 200 and body == {"slept": 0}


async def test_fifty_concurrent_blocking_invocations_all_succeed(api: Api) -> None:
    name = unique("busy")
    await api.put_action(name, "import time\ndef main(a):\n    time.sleep(0.2)\n    return {'n': a['n']}\n")
    results = await asyncio.gather(*(api.invoke(name, {"n": n}, blocking="true", result="true") for n in range(50)))
    assert [status for status, _, _ in results] == [200] * 50
    assert sorted(body["n"] for _, body, _ in results) == list(range(50))


async def test_actions_are_listed_got_without_code_updated_with_a_version_bump_and_deleted(api: Api) -> None:
    name = unique("crud")
    first = await api.put_action(name, HELLO_PY)
    assert first["version"] == "0.0.1"
    status, body, _ = await api.request("PUT", f"namespaces/_/actions/{name}",
                                        json={"exec": {"kind": "python:3.11", "code": HELLO_PY}})
    assert status == 409 and body["error"] == "resource already exists" and body["code"]
    second = await api.put_action(name, HELLO_PY, parameters=[{"key": "name", "value": "Default"}])
    assert second["version"] == "0.0.2"
    status, got, _ = await api.request("GET", f"namespaces/_/actions/{name}", params={"code": "false"})
    assert status == 200 and "code" not in got["exec"] and got["parameters"] == [{"key": "name", "value": "Default"}]
    status, listed, _ = await api.request("GET", "namespaces/_/actions", params={"limit": "200"})
    assert status == 200 and name in [a["name"] for a in listed]
    status, counted, _ = await api.request("GET", "namespaces/guest/actions", params={"count": "true"})
    assert status == 200 and counted["actions"] >= 1
    status, result, _ = await api.invoke(name, blocking="true", result="true")
    assert result == {"greeting": "Hello Default"}
    status, _, _ = await api.request("DELETE", f"namespaces/_/actions/{name}")
    assert status == 200
    status, body, _ = await api.request("GET", f"namespaces/_/actions/{name}")
    assert status == 404 and body["error"] == "The requested resource does not exist."


async def test_activations_are_listed_by_name_and_counted(api: Api) -> None:
    name = unique("listed")
    await api.put_action(name, HELLO_PY)
    for _ in range(3):
        status, _, _ = await api.invoke(name, blocking="true")
        assert status == 200
    await api.wait_for_listed(name, 3)
    status, rows, _ = await api.request("GET", "namespaces/_/activations", params={"name": name})
    assert status == 200 and len(rows) == 3 and all(r["name"] == name for r in rows)
    assert "logs" not in rows[0]
    status, docs, _ = await api.request("GET", "namespaces/_/activations", params={"name": name, "docs": "true",
                                                                                   "limit": "2"})
    assert status == 200 and len(docs) == 2 and "logs" in docs[0]
    status, counted, _ = await api.request("GET", "namespaces/_/activations", params={"name": name, "count": "true"})
    assert counted == {"activations": 3}
