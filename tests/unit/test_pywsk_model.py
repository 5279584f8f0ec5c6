"""Unit tests of `pywsk package|trigger|rule|api` and `action --web-secure` against the fake OpenWhisk server.

Each test asserts the exact requests the CLI sends (method, path, query, body) and what it prints, as wsk does.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.unit import test_pywsk as base
from tests.unit.test_pywsk import ACT_ID, GUEST_AUTH, USAGE, FakeWhisk, basic

# the fake server and CLI runner of test_pywsk.py; pytest finds fixtures by these names
wskprops = base.wskprops
whisk = base.whisk
wsk = base.wsk

NS = "/api/v1/namespaces/_"
GUEST_UUID = GUEST_AUTH.split(":")[0]
APIMGMT = "/api/v1/web/whisk.system/apimgmt"


def kv(**values: object) -> list[dict[str, object]]:
    return [{"key": k, "value": v} for k, v in values.items()]


# -- package --------------------------------------------------------------------------------------------------------


def test_package_create_sends_params_annotations_and_publish(wsk, whisk: FakeWhisk) -> None:
    whisk.on("PUT", f"{NS}/packages/utils", body={"name": "utils"})
    r = wsk("package", "create", "utils", "-p", "color", "red", "-p", "n", "2", "-a", "description", "tools",
            "--shared", "yes")  # fmt: skip
    assert (r.code, r.out, r.err) == (0, "ok: created package utils\n", "")
    req = whisk.last
    assert (req.method, req.raw_query) == ("PUT", "overwrite=false")
    assert req.body == {
        "publish": True,
        "annotations": kv(description="tools"),
        "parameters": kv(color="red", n=2),
    }
    assert req.headers["authorization"] == basic(GUEST_AUTH)


def test_package_update_and_its_errors(wsk, whisk: FakeWhisk) -> None:
    whisk.on("PUT", f"{NS}/packages/utils", body={})
    r = wsk("package", "update", "utils", "--shared", "NO")
    assert (r.code, r.out) == (0, "ok: updated package utils\n")
    assert (whisk.last.raw_query, whisk.last.body) == ("overwrite=true", {"publish": False})

    r = wsk("package", "update", "utils", "--shared", "maybe")
    assert (r.code, r.err) == (1, "error: Cannot use value 'maybe' for shared.\n" + USAGE)

    whisk.on("PUT", f"{NS}/packages/taken", 409, {"error": "resource already exists", "code": "c1"})
    r = wsk("package", "create", "taken")
    assert (r.code, r.err) == (153, "error: Unable to create package 'taken': resource already exists (code c1)\n")
    whisk.on("PUT", f"{NS}/packages/bad", 400, {"error": "Package name 'default' is reserved.", "code": "c2"})
    r = wsk("package", "update", "bad")
    assert (r.code, r.err) == (144, "error: Package update failed: Package name 'default' is reserved. (code c2)\n")


def test_package_bind_points_the_binding_at_the_package(wsk, whisk: FakeWhisk) -> None:
    whisk.on("PUT", f"{NS}/packages/myAlarms", body={})
    r = wsk("package", "bind", "/whisk.system/alarms", "myAlarms", "-p", "cron", "* * * * *")
    assert (r.code, r.out) == (0, "ok: created binding myAlarms\n")
    assert whisk.last.raw_query == "overwrite=false"
    assert whisk.last.body == {
        "parameters": kv(cron="* * * * *"),
        "binding": {"namespace": "whisk.system", "name": "alarms"},
    }
    whisk.on("PUT", "/api/v1/namespaces/other/packages/b", body={})
    assert wsk("package", "bind", "utils", "/other/b").code == 0
    assert whisk.last.body == {"binding": {"namespace": "_", "name": "utils"}}
    r = wsk("package", "bind", "only-one")
    assert (r.code, r.err) == (1, "error: Invalid argument(s). A package name and binding name are required.\n" + USAGE)


PACKAGE = {
    "name": "utils",
    "namespace": "guest",
    "version": "0.0.2",
    "publish": True,
    "parameters": [{"key": "color", "value": "red"}],
    "annotations": [{"key": "description", "value": "handy tools"}],
    "binding": {},
    "actions": [
        {"name": "join", "version": "0.0.1", "annotations": [{"key": "parameters", "value": [{"name": "sep"}]}]},
        {"name": "split", "version": "0.0.1", "annotations": []},
    ],
    "feeds": [],
    "updated": 1700000000000,
}


def test_package_get_prints_struct_order_summary_and_field(wsk, whisk: FakeWhisk) -> None:
    whisk.on("GET", f"{NS}/packages/utils", body=PACKAGE)
    r = wsk("package", "get", "utils")
    assert r.code == 0, r.err
    header, body = r.out.split("\n", 1)
    assert header == "ok: got package utils"
    assert list(json.loads(body)) == [
        "namespace", "name", "version", "publish", "annotations", "parameters", "binding", "actions", "updated"
    ]  # fmt: skip
    assert json.loads(body)["actions"][0] == PACKAGE["actions"][0]
    r = wsk("package", "get", "utils", "--summary")
    assert r.out == (
        "package /guest/utils: handy tools\n"
        "   (parameters: *color)\n"
        " action /guest/utils/join: Returns a result based on parameter sep\n"
        "   (parameters: sep)\n"
        " action /guest/utils/split\n"
        "   (parameters: none defined)\n"
    )
    r = wsk("package", "get", "utils", "publish")
    assert r.out == "ok: got package utils, displaying field publish\ntrue\n"
    r = wsk("package", "get", "utils", "nosuch")
    assert (r.code, r.err) == (1, "error: Invalid field filter 'nosuch'.\n")
    r = wsk("package", "get", "missing")
    assert r.code == 148
    assert r.err == "error: Unable to get package 'missing': The requested resource does not exist. (code tid404)\n"


def test_package_list_table_and_namespace_argument(wsk, whisk: FakeWhisk) -> None:
    rows = [
        {"namespace": "guest", "name": "utils", "publish": True},
        {"namespace": "guest", "name": "private-one", "publish": False},
    ]
    whisk.on("GET", f"{NS}/packages", body=rows)
    r = wsk("package", "list")
    assert r.code == 0, r.err
    assert whisk.last.raw_query == "limit=30&skip=0"
    assert r.out == (
        "packages\n" + "/guest/utils".ljust(70) + " shared\n" + "/guest/private-one".ljust(70) + " private\n"
    )
    r = wsk("package", "list", "-n")
    assert r.out.splitlines()[1].startswith("/guest/private-one")
    whisk.on("GET", "/api/v1/namespaces/whisk.system/packages", body=[])
    assert wsk("package", "list", "/whisk.system", "--limit", "5", "--skip", "1").out == "packages\n"
    assert whisk.last.raw_query == "limit=5&skip=1"
    r = wsk("package", "list", "/guest/utils")
    assert r.code == 1
    assert r.err.startswith("error: An entity name, 'utils', was provided instead of a namespace.")


def test_package_delete(wsk, whisk: FakeWhisk) -> None:
    whisk.on("DELETE", f"{NS}/packages/utils", body={})
    assert wsk("package", "delete", "utils").out == "ok: deleted package utils\n"
    whisk.on("DELETE", f"{NS}/packages/full", 409, {"error": "Package not empty (contains 1 entity)", "code": "c"})
    r = wsk("package", "delete", "full")
    assert r.code == 153
    assert r.err == "error: Unable to delete package 'full': Package not empty (contains 1 entity) (code c)\n"


# -- trigger --------------------------------------------------------------------------------------------------------


def test_trigger_create_without_feed_carries_parameters(wsk, whisk: FakeWhisk) -> None:
    whisk.on("PUT", f"{NS}/triggers/events", body={})
    r = wsk("trigger", "create", "events", "-p", "level", "high", "-a", "owner", "me")
    assert (r.code, r.out, r.err) == (0, "ok: created trigger events\n", "")
    assert whisk.last.raw_query == "overwrite=false"
    assert whisk.last.body == {"name": "events", "annotations": kv(owner="me"), "parameters": kv(level="high")}
    whisk.on("PUT", f"{NS}/triggers/taken", 409, {"error": "resource already exists", "code": "c"})
    r = wsk("trigger", "create", "taken")
    assert (r.code, r.err) == (153, "error: Unable to create trigger 'taken': resource already exists (code c)\n")


FEED_ACTIVATION = {"activationId": ACT_ID, "response": {"status": "success", "success": True, "result": {}}}


def test_trigger_create_with_feed_invokes_the_feed_with_create(wsk, whisk: FakeWhisk) -> None:
    whisk.on("PUT", f"{NS}/triggers/tick", body={})
    whisk.on("POST", "/api/v1/namespaces/whisk.system/actions/alarms/alarm", body=FEED_ACTIVATION)
    r = wsk("trigger", "create", "tick", "--feed", "/whisk.system/alarms/alarm", "-p", "cron", "*/5 * * * * *")
    assert r.code == 0, r.err
    put, invoke = whisk.requests
    assert put.body == {"name": "tick", "annotations": kv(feed="/whisk.system/alarms/alarm")}
    assert invoke.raw_query == "blocking=true&result=false"
    assert invoke.body == {
        "cron": "*/5 * * * * *",
        "lifecycleEvent": "CREATE",
        "triggerName": "/_/tick",
        "authKey": GUEST_AUTH,
    }
    assert r.out == (
        f"ok: invoked /whisk.system/alarms/alarm with id {ACT_ID}\n"
        + json.dumps(FEED_ACTIVATION, indent=4, sort_keys=True)
        + "\nok: created trigger tick\n"
    )


def test_trigger_create_removes_the_trigger_when_the_feed_fails(wsk, whisk: FakeWhisk) -> None:
    failed = {"activationId": ACT_ID, "response": {"status": "application error", "success": False,
                                                   "result": {"error": "bad cron"}}}  # fmt: skip
    trigger = {"namespace": "guest", "name": "tick", "annotations": kv(feed="/whisk.system/alarms/alarm")}
    whisk.on("PUT", f"{NS}/triggers/tick", body={})
    whisk.on("POST", "/api/v1/namespaces/whisk.system/actions/alarms/alarm", 502, failed)
    whisk.on("GET", f"{NS}/triggers/tick", body=trigger)
    whisk.on("DELETE", f"{NS}/triggers/tick", body=trigger)
    r = wsk("trigger", "create", "tick", "-f", "/whisk.system/alarms/alarm", "-p", "cron", "nonsense")
    assert r.code == 246
    assert [(q.method, q.path) for q in whisk.requests] == [
        ("PUT", f"{NS}/triggers/tick"),
        ("POST", "/api/v1/namespaces/whisk.system/actions/alarms/alarm"),
        ("GET", f"{NS}/triggers/tick"),
        ("POST", "/api/v1/namespaces/whisk.system/actions/alarms/alarm"),
        ("DELETE", f"{NS}/triggers/tick"),
    ]
    assert whisk.requests[3].body["lifecycleEvent"] == "DELETE"
    assert r.out == "ok: deleted trigger tick\n"
    assert json.loads(r.err.split("\n}\n")[0] + "\n}") == failed


def test_trigger_fire_prints_the_activation_or_that_no_rule_is_active(wsk, whisk: FakeWhisk) -> None:
    whisk.on("POST", f"{NS}/triggers/events", 202, {"activationId": ACT_ID})
    r = wsk("trigger", "fire", "events", "-p", "temp", "21")
    assert (r.code, r.out, r.err) == (0, f"ok: triggered /_/events with id {ACT_ID}\n", "")
    assert (whisk.last.raw_query, whisk.last.body) == ("", {"temp": 21})
    whisk.on("POST", "/api/v1/namespaces/guest/triggers/quiet", 204)
    r = wsk("trigger", "fire", "/guest/quiet")
    assert (r.code, r.out) == (0, "trigger /guest/quiet did not fire as it is not associated with an active rule\n")
    assert whisk.last.raw_body == b"{}"
    r = wsk("trigger", "fire", "nosuch")
    assert r.code == 148
    assert r.err == "error: Unable to fire trigger 'nosuch': The requested resource does not exist. (code tid404)\n"


def test_trigger_update_puts_with_overwrite_or_creates_a_missing_trigger(wsk, whisk: FakeWhisk) -> None:
    whisk.on("GET", f"{NS}/triggers/events", body={"namespace": "guest", "name": "events", "annotations": []})
    whisk.on("PUT", f"{NS}/triggers/events", body={})
    r = wsk("trigger", "update", "events", "-p", "level", "low")
    assert (r.code, r.out) == (0, "ok: updated trigger events\n")
    assert (whisk.last.raw_query, whisk.last.body) == (
        "overwrite=true",
        {"name": "events", "parameters": kv(level="low")},
    )
    whisk.on("PUT", f"{NS}/triggers/fresh", body={})
    r = wsk("trigger", "update", "fresh")
    assert (r.code, r.out) == (0, "ok: created trigger fresh\n")
    assert [(q.method, q.raw_query) for q in whisk.requests[-2:]] == [("GET", ""), ("PUT", "overwrite=false")]


def test_trigger_update_of_a_feed_trigger_tells_the_feed(wsk, whisk: FakeWhisk) -> None:
    trigger = {"namespace": "guest", "name": "tick", "annotations": kv(feed="/whisk.system/alarms/alarm")}
    whisk.on("GET", f"{NS}/triggers/tick", body=trigger)
    whisk.on("POST", "/api/v1/namespaces/whisk.system/actions/alarms/alarm", body=FEED_ACTIVATION)
    r = wsk("trigger", "update", "tick", "-p", "cron", "0 * * * *")
    assert r.code == 0, r.err
    assert whisk.last.body == {"cron": "0 * * * *", "lifecycleEvent": "UPDATE", "triggerName": "/_/tick",
                               "authKey": GUEST_AUTH}  # fmt: skip
    assert r.out.endswith("}\nok: updated trigger tick\n")
    assert not any(q.method == "PUT" for q in whisk.requests)


def test_trigger_delete_tells_the_feed_first(wsk, whisk: FakeWhisk) -> None:
    trigger = {"namespace": "guest", "name": "tick", "annotations": kv(feed="/whisk.system/alarms/alarm")}
    whisk.on("GET", f"{NS}/triggers/tick", body=trigger)
    whisk.on("POST", "/api/v1/namespaces/whisk.system/actions/alarms/alarm", body=FEED_ACTIVATION)
    whisk.on("DELETE", f"{NS}/triggers/tick", body=trigger)
    r = wsk("trigger", "delete", "tick")
    assert r.code == 0, r.err
    assert [q.method for q in whisk.requests] == ["GET", "POST", "DELETE"]
    assert whisk.requests[1].body == {"lifecycleEvent": "DELETE", "triggerName": "/_/tick", "authKey": GUEST_AUTH}
    assert r.out.endswith("ok: deleted trigger tick\n")


def test_trigger_get_and_list(wsk, whisk: FakeWhisk) -> None:
    trigger = {
        "name": "events", "namespace": "guest", "version": "0.0.1", "publish": False,
        "parameters": [{"key": "level", "value": "high"}], "annotations": [], "limits": {},
        "rules": {"guest/r1": {"action": {"name": "hello", "path": "guest"}, "status": "active"}},
    }  # fmt: skip
    whisk.on("GET", f"{NS}/triggers/events", body=trigger)
    r = wsk("trigger", "get", "events")
    assert r.code == 0, r.err
    header, body = r.out.split("\n", 1)
    assert header == "ok: got trigger events"
    assert list(json.loads(body)) == ["namespace", "name", "version", "parameters", "limits", "publish", "rules"]
    assert wsk("trigger", "get", "events", "--summary").out == (
        "trigger /guest/events: Returns a result based on parameter level\n   (parameters: *level)\n"
    )
    whisk.on("GET", f"{NS}/triggers", body=[{"namespace": "guest", "name": "events", "publish": True}])
    assert wsk("trigger", "list").out == "triggers\n" + "/guest/events".ljust(70) + " private\n"


# -- rule -----------------------------------------------------------------------------------------------------------


def test_rule_create_and_update_qualify_trigger_and_action(wsk, whisk: FakeWhisk) -> None:
    whisk.on("PUT", f"{NS}/rules/r1", body={})
    r = wsk("rule", "create", "r1", "events", "pkg/hello")
    assert (r.code, r.out) == (0, "ok: created rule r1\n")
    assert whisk.last.raw_query == "overwrite=false"
    assert whisk.last.body == {"name": "r1", "status": "", "trigger": "/_/events", "action": "/_/pkg/hello"}
    r = wsk("rule", "update", "r1", "/guest/events", "/whisk.system/utils/echo")
    assert (r.code, r.out) == (0, "ok: updated rule r1\n")
    assert whisk.last.raw_query == "overwrite=true"
    assert whisk.last.body == {"name": "r1", "status": "", "trigger": "/guest/events",
                               "action": "/whisk.system/utils/echo"}  # fmt: skip
    r = wsk("rule", "create", "r1", "events")
    assert (r.code, r.err) == (
        1, "error: Invalid argument(s). A rule, trigger and action name are required.\n" + USAGE
    )  # fmt: skip


def test_rule_enable_disable_status(wsk, whisk: FakeWhisk) -> None:
    whisk.on("POST", f"{NS}/rules/r1", body={})
    assert wsk("rule", "enable", "r1").out == "ok: enabled rule r1\n"
    assert whisk.last.body == {"status": "active"}
    assert wsk("rule", "disable", "r1").out == "ok: disabled rule r1\n"
    assert whisk.last.body == {"status": "inactive"}
    whisk.on("GET", f"{NS}/rules/r1", body={"name": "r1", "namespace": "guest", "status": "inactive"})
    assert wsk("rule", "status", "r1").out == "ok: rule r1 is inactive\n"
    r = wsk("rule", "enable", "nosuch")
    assert r.code == 148
    assert r.err == "error: Unable to enable rule 'nosuch': The requested resource does not exist. (code tid404)\n"


def test_rule_get_list_and_delete_with_disable(wsk, whisk: FakeWhisk) -> None:
    rule = {
        "namespace": "guest", "name": "r1", "version": "0.0.1", "publish": False, "status": "active",
        "trigger": {"name": "events", "path": "guest"}, "action": {"name": "hello", "path": "guest"},
    }  # fmt: skip
    whisk.on("GET", f"{NS}/rules/r1", body=rule)
    r = wsk("rule", "get", "r1")
    header, body = r.out.split("\n", 1)
    assert header == "ok: got rule r1"
    assert list(json.loads(body)) == ["namespace", "name", "version", "status", "trigger", "action", "publish"]
    assert wsk("rule", "get", "r1", "--summary").out == "rule /guest/r1\n   (status: active)\n"
    assert wsk("rule", "get", "r1", "status").out == 'ok: got rule r1, displaying field status\n"active"\n'
    whisk.on("GET", f"{NS}/rules", body=[rule])
    assert wsk("rule", "list").out == "rules\n" + "/guest/r1".ljust(70) + " " + "private".ljust(20) + " active\n"
    whisk.on("POST", f"{NS}/rules/r1", body={})
    whisk.on("DELETE", f"{NS}/rules/r1", body={})
    r = wsk("rule", "delete", "r1", "--disable")
    assert (r.code, r.out) == (0, "ok: deleted rule r1\n")
    assert [(q.method, q.body) for q in whisk.requests[-2:]] == [("POST", {"status": "inactive"}), ("DELETE", None)]


# -- action --web / --web-secure / --sequence -----------------------------------------------------------------------


def test_action_create_web_secure_with_a_given_secret(wsk, whisk: FakeWhisk, tmp_path: Path) -> None:
    src = tmp_path / "api.py"
    src.write_text("def main(args):\n    return {}\n")
    whisk.on("PUT", f"{NS}/actions/api", body={})
    r = wsk("action", "create", "api", str(src), "--web", "true", "--web-secure", "s3cret")
    assert r.code == 0, r.err
    assert whisk.last.body["annotations"] == kv(**{"web-export": True, "raw-http": False, "final": True,
                                                   "require-whisk-auth": "s3cret"})  # fmt: skip


def test_action_web_secure_true_generates_a_js_safe_integer(wsk, whisk: FakeWhisk) -> None:
    whisk.on("PUT", f"{NS}/actions/seq", body={})
    r = wsk("action", "create", "seq", "--sequence", "a,b", "--web", "raw", "--web-secure", "true")
    assert r.code == 0, r.err
    body = whisk.last.body
    assert body["exec"] == {"kind": "sequence", "components": ["/_/a", "/_/b"]}
    secret = body["annotations"][-1]
    assert secret["key"] == "require-whisk-auth"
    assert isinstance(secret["value"], int) and 0 <= secret["value"] < 2**53
    assert body["annotations"][:3] == kv(**{"web-export": True, "raw-http": True, "final": True})


def test_action_web_secure_needs_a_web_action(wsk, whisk: FakeWhisk) -> None:
    r = wsk("action", "create", "seq", "--sequence", "a", "--web-secure", "x")
    assert r.code == 2
    assert r.err == (
        "error: Invalid argument(s). The --web-secure option is only valid when the --web option is enabled.\n" + USAGE
    )
    assert whisk.requests == []


def test_action_update_web_secure_false_removes_the_secret(wsk, whisk: FakeWhisk) -> None:
    existing = {"namespace": "guest", "name": "api",
                "annotations": kv(**{"web-export": True, "final": True, "require-whisk-auth": 12345})}  # fmt: skip
    whisk.on("GET", f"{NS}/actions/api", body=existing)
    whisk.on("PUT", f"{NS}/actions/api", body={})
    r = wsk("action", "update", "api", "--web-secure", "false")
    assert r.code == 0, r.err
    assert whisk.last.body == {
        "annotations": kv(**{"web-export": True, "final": True}),
        "delAnnotations": ["require-whisk-auth"],
    }
    r = wsk("action", "update", "api", "--web-secure", "true")
    assert whisk.last.body == {"annotations": existing["annotations"]}  # an existing generated secret is kept


def test_action_get_url_of_a_web_action_in_the_default_package(wsk, whisk: FakeWhisk) -> None:
    web = {"namespace": "guest", "name": "api", "annotations": kv(**{"web-export": True})}
    whisk.on("GET", f"{NS}/actions/api", body=web)
    r = wsk("action", "get", "api", "--url")
    assert r.out == f"ok: got action api\n{whisk.apihost}/api/v1/web/guest/default/api\n"


# -- api ------------------------------------------------------------------------------------------------------------

WEB_ACTION = {"namespace": "guest", "name": "getUser", "annotations": kv(**{"web-export": True})}


def test_api_create_posts_the_apidoc_and_prints_the_route_url(wsk, whisk: FakeWhisk) -> None:
    whisk.on("GET", f"{NS}/actions/getUser", body=WEB_ACTION)
    created = {"namespace": "guest", "gwApiUrl": "http://gw.example/api/abc/iot", "gwApiActivated": True}
    whisk.on("POST", f"{APIMGMT}/createApi.http", body=created)
    r = wsk("api", "create", "--apiname", "iot", "/iot", "/users/{id}", "get", "getUser", "--response-type", "http")
    assert r.code == 0, r.err
    get, post = whisk.requests
    assert (get.method, get.raw_query) == ("GET", "code=false")
    assert post.method == "POST"
    assert post.raw_query == f"accesstoken=DUMMY+TOKEN&responsetype=http&spaceguid={GUEST_UUID}"
    assert post.headers["authorization"] == basic(GUEST_AUTH)
    assert post.body == {
        "apidoc": {
            "namespace": "_",
            "apiName": "iot",
            "gatewayBasePath": "/iot",
            "gatewayPath": "/users/{id}",
            "gatewayMethod": "GET",
            "id": "API:_:/iot",
            "action": {
                "name": "getUser",
                "namespace": "_",
                "backendMethod": "GET",
                "backendUrl": f"{whisk.apihost}/api/v1/web/_/default/getUser.http",
                "authkey": GUEST_AUTH,
            },
            "pathParameters": [{"name": "id", "in": "path", "description": "Default description for 'id'",
                                "required": True, "type": "string"}],
        }
    }  # fmt: skip
    assert (
        r.out == "ok: created API /iot/users/{id} GET for action /_/getUser\nhttp://gw.example/api/abc/iot/users/{id}\n"
    )


def test_api_create_sends_the_access_token_and_web_secret(wsk, whisk: FakeWhisk, wskprops: Path) -> None:
    wskprops.write_text(wskprops.read_text() + "APIGW_ACCESS_TOKEN=tok\n")
    secured = {"namespace": "guest", "name": "x",
               "annotations": kv(**{"web-export": True, "require-whisk-auth": "pw"})}  # fmt: skip
    whisk.on("GET", "/api/v1/namespaces/guest/actions/pkg/x", body=secured)
    whisk.on("POST", f"{APIMGMT}/createApi.http", body={"gwApiUrl": "http://gw/api/1/"})
    r = wsk("api", "create", "/hello", "post", "/guest/pkg/x")
    assert r.code == 0, r.err
    assert whisk.last.query == {"accesstoken": "tok", "responsetype": "json", "spaceguid": GUEST_UUID}
    apidoc = whisk.last.body["apidoc"]
    assert (apidoc["gatewayBasePath"], apidoc["gatewayPath"], apidoc["id"]) == ("/", "/hello", "API:_:/")
    assert apidoc["action"]["backendUrl"] == f"{whisk.apihost}/api/v1/web/guest/pkg/x.http"
    assert apidoc["action"]["secureKey"] == "pw"
    assert r.out == "ok: created API /hello POST for action /guest/pkg/x\nhttp://gw/api/1/hello\n"


def test_api_create_refuses_bad_input_before_sending(wsk, whisk: FakeWhisk) -> None:
    r = wsk("api", "create", "/iot", "/users/{id}", "get", "getUser")
    assert r.code == 1
    assert r.err == (
        "error: Unable to parse api command arguments: A response type of 'http' is required when using path "
        "parameters.\n" + USAGE
    )
    r = wsk("api", "create", "/iot", "/users", "fetch", "getUser")
    assert r.err.startswith("error: Unable to parse api command arguments: 'fetch' is not a valid API verb.")
    r = wsk("api", "create", "/iot", "users", "get", "getUser")
    assert r.err == "error: Unable to parse api command arguments: 'users' must begin with '/'.\n" + USAGE
    assert whisk.requests == []
    whisk.on("GET", f"{NS}/actions/plain", body={"namespace": "guest", "name": "plain", "annotations": []})
    r = wsk("api", "create", "/iot", "/users", "get", "plain")
    assert (r.code, r.out) == (1, "")
    assert r.err == (
        "error: Action '/_/plain' is not a web action. Issue 'pywsk action update \"/_/plain\" --web true' to convert "
        "the action to a web action.\n" + USAGE
    )
    assert len(whisk.requests) == 1


API_LIST = {
    "apis": [
        {
            "id": "API:guest:/iot",
            "key": "API:guest:/iot",
            "value": {
                "namespace": "guest",
                "gwApiUrl": "http://gw/api/abc/iot",
                "apidoc": {
                    "basePath": "/iot",
                    "info": {"title": "iot"},
                    "paths": {
                        "/users": {
                            "get": {"operationId": "getUsers",
                                    "x-openwhisk": {"namespace": "guest", "package": "", "action": "listUsers"}},
                            "post": {"operationId": "postUsers",
                                     "x-openwhisk": {"namespace": "guest", "package": "crud", "action": "createUser"}},
                        }
                    },
                },
            },
        }
    ]
}  # fmt: skip


def test_api_list_prints_one_row_per_operation(wsk, whisk: FakeWhisk) -> None:
    whisk.on("GET", f"{APIMGMT}/getApi.http", body=API_LIST)
    r = wsk("api", "list")
    assert r.code == 0, r.err
    assert whisk.last.raw_query == f"accesstoken=DUMMY+TOKEN&limit=30&skip=0&spaceguid={GUEST_UUID}"
    assert r.out == (
        "ok: APIs\n"
        "Action                    Verb  API Name  URL\n"
        "/guest/listUsers           get       iot  http://gw/api/abc/iot/users\n"
        "/guest/crud/createUser    post       iot  http://gw/api/abc/iot/users\n"
    )
    r = wsk("api", "list", "/iot", "/users", "post")
    assert whisk.last.query == {"accesstoken": "DUMMY TOKEN", "basepath": "/iot", "operation": "POST",
                                "relpath": "/users", "spaceguid": GUEST_UUID}  # fmt: skip
    assert r.out.splitlines()[1:] == [
        "Action                    Verb  API Name  URL",
        "/guest/crud/createUser    post       iot  http://gw/api/abc/iot/users",
    ]
    whisk.routes.clear()
    whisk.on("GET", f"{APIMGMT}/getApi.http", body={"apis": []})
    assert wsk("api", "list").out == "ok: APIs\n" + "Action".ljust(30) + "    Verb             API Name  URL\n"


def test_api_get_and_delete(wsk, whisk: FakeWhisk) -> None:
    whisk.on("GET", f"{APIMGMT}/getApi.http", body=API_LIST)
    r = wsk("api", "get", "/iot")
    assert r.code == 0, r.err
    assert whisk.last.query == {"accesstoken": "DUMMY TOKEN", "basepath": "/iot", "spaceguid": GUEST_UUID}
    assert json.loads(r.out) == API_LIST["apis"][0]["value"]["apidoc"]
    whisk.routes.clear()
    whisk.on("GET", f"{APIMGMT}/getApi.http", body={"apis": []})
    r = wsk("api", "get", "/none")
    assert (r.code, r.err) == (1, "error: API does not exist for basepath /none\n")

    whisk.on("DELETE", f"{APIMGMT}/deleteApi.http", body={})
    assert wsk("api", "delete", "/iot").out == "ok: deleted API /iot\n"
    assert whisk.last.query == {"accesstoken": "DUMMY TOKEN", "basepath": "/iot", "spaceguid": GUEST_UUID}
    assert wsk("api", "delete", "/iot", "/users").out == "ok: deleted /users from /iot\n"
    assert wsk("api", "delete", "/iot", "/users", "delete").out == "ok: deleted /users DELETE from /iot\n"
    assert whisk.last.raw_query == (
        f"accesstoken=DUMMY+TOKEN&basepath=%2Fiot&operation=DELETE&relpath=%2Fusers&spaceguid={GUEST_UUID}"
    )
    del whisk.routes[("DELETE", f"{APIMGMT}/deleteApi.http")]
    whisk.on("DELETE", f"{APIMGMT}/deleteApi.http", 404, {"error": "API '/gone' does not exist", "code": "c"})
    r = wsk("api", "delete", "/gone")
    assert (r.code, r.err) == (1, "error: Unable to delete API: API '/gone' does not exist (code c)\n")


def test_help_lists_the_new_groups(wsk) -> None:
    out = wsk().out
    for group in ("api", "package", "rule", "trigger"):
        assert f"\n  {group} " in out
    assert "bind" in wsk("package").out
    assert "--feed" in wsk("trigger", "create", "--help").out
