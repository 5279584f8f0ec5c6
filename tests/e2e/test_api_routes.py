"""API routes end to end: created, listed and deleted through `whisk.system/apimgmt` as OpenWhisk's clients do,
and served at the URL the create response gives (the IoT backend's users API)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.e2e.platform import Api
from tests.e2e.test_web_actions import namespace_of, put_web_action

pytestmark = pytest.mark.e2e

#: one action per CRUD operation; each says which it is and what it was given
CRUD = """
def main(args):
    return {{"statusCode": {status}, "body": {{"op": "{op}", "id": args.get("id"), "name": args.get("name"),
             "path": args.get("__ow_path"), "method": args.get("__ow_method")}}}}
"""
OPERATIONS = {"list-users": ("list", 200), "create-user": ("create", 201), "get-user": ("get", 200),
              "update-user": ("update", 200), "delete-user": ("delete", 200)}


def apidoc(namespace: str, host: str, base: str, rel: str, verb: str, action: str) -> dict[str, Any]:
    """What openwhisk-client-js `routes.create` sends."""
    return {"apidoc": {
        "namespace": "_", "gatewayBasePath": base, "gatewayPath": rel, "gatewayMethod": verb,
        "id": f"API:_:{base}", "apiName": "IoT users",
        "action": {"name": action, "namespace": "_", "backendMethod": "GET",
                   "backendUrl": f"{host}/api/v1/web/_/default/{action}.http", "authkey": "ignored"},
    }}


async def manage(api: Api, method: str, name: str, **kwargs: Any) -> tuple[int, Any]:
    return (await api.request(method, f"web/whisk.system/apimgmt/{name}.http", **kwargs))[:2]


async def test_routes_reach_the_crud_actions_and_pass_the_path_parameter(api: Api) -> None:
    namespace = await namespace_of(api)
    for action, (op, status) in OPERATIONS.items():
        await put_web_action(api, action, CRUD.format(op=op, status=status))
    routes = [("/users", "get", "list-users", "json"), ("/users", "post", "create-user", "http"),
              ("/users/{id}", "get", "get-user", "http"), ("/users/{id}", "put", "update-user", "http"),
              ("/users/{id}", "delete", "delete-user", "http")]
    await manage(api, "DELETE", "deleteApi", params={"basepath": "/iot"})
    created: dict[str, Any] = {}
    for rel, verb, action, response_type in routes:
        status, created = await manage(api, "POST", "createApi", params={"responsetype": response_type},
                                       json=apidoc(namespace, api.platform.api_host, "/iot", rel, verb, action))
        assert status == 200, created
    base_url = created["gwApiUrl"]
    assert base_url.startswith(f"{api.platform.api_host}/api/")
    assert base_url.endswith("/iot")
    assert created["apidoc"]["basePath"] == "/iot"
    assert created["apidoc"]["info"]["title"] == "IoT users"
    operation = created["apidoc"]["paths"]["/users/{id}"]["get"]
    assert operation["x-openwhisk"] == {
        "namespace": namespace, "package": "", "action": "get-user",
        "url": f"{api.platform.api_host}/api/v1/web/{namespace}/default/get-user.http"}
    assert operation["operationId"]
    assert operation["parameters"][0]["name"] == "id"

    async def route(method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
        async with api.session.request(method, base_url + path, **kwargs) as response:
            text = await response.read()
            return response.status, json.loads(text) if text else None

    status, body = await route("GET", "/users")  # response type json: the whole result, and no __ow_path
    assert (status, body["body"]["op"], body["body"]["path"]) == (200, "list", "")
    status, body = await route("POST", "/users", json={"name": "Ada"})
    assert (status, body["op"], body["name"]) == (201, "create", "Ada")
    status, body = await route("GET", "/users/42")
    assert (status, body["op"], body["id"]) == (200, "get", "42")
    assert body["path"] == "/iot/users/42"
    status, body = await route("PUT", "/users/42?name=Grace")
    assert (status, body["op"], body["id"], body["name"]) == (200, "update", "42", "Grace")
    status, body = await route("DELETE", "/users/7")
    assert (status, body["op"], body["id"], body["method"]) == (200, "delete", "7", "delete")
    status, _ = await route("PATCH", "/users/7")
    assert status == 404
    status, _ = await route("GET", "/nothing/here")
    assert status == 404

    # list: as the CLI asks (no base path) and for one API
    status, listed = await manage(api, "GET", "getApi", params={"limit": "30", "skip": "0"})
    assert status == 200, listed
    mine = [a for a in listed["apis"] if a["value"]["apidoc"]["basePath"] == "/iot"]
    assert len(mine) == 1
    assert mine[0]["value"]["gwApiUrl"] == base_url
    assert set(mine[0]["value"]["apidoc"]["paths"]) == {"/users", "/users/{id}"}
    status, one = await manage(api, "GET", "getApi", params={"basepath": "/iot"})
    assert [a["value"]["gwApiUrl"] for a in one["apis"]] == [base_url]

    # delete one operation, then the whole API
    status, body = await manage(api, "DELETE", "deleteApi",
                                params={"basepath": "/iot", "relpath": "/users/{id}", "operation": "DELETE"})
    assert (status, body) == (200, {})
    assert (await route("DELETE", "/users/7"))[0] == 404
    assert (await route("GET", "/users/7"))[0] == 200
    status, body = await manage(api, "DELETE", "deleteApi", params={"basepath": "/iot", "force": "true"})
    assert (status, body) == (200, {})
    assert (await route("GET", "/users"))[0] == 404
    status, one = await manage(api, "GET", "getApi", params={"basepath": "/iot"})
    assert (status, one) == (200, {"apis": []})
    status, body = await manage(api, "DELETE", "deleteApi", params={"basepath": "/iot"})
    assert status == 502
    assert body["error"] == "API '/iot' does not exist."


async def test_management_needs_the_callers_key(api: Api) -> None:
    async with api.session.get(api.url("web/whisk.system/apimgmt/getApi.http")) as response:
        assert response.status == 401
    uuid, key = api.platform.auth.split(":")
    async with api.session.get(api.url("web/whisk.system/apimgmt/getApi.http"),
                               params={"spaceguid": uuid, "accesstoken": key}) as response:
        assert response.status == 200
        assert "apis" in await response.json()


async def test_a_route_needs_a_web_action(api: Api) -> None:
    namespace = await namespace_of(api)
    await api.put_action("not-web", "def main(a):\n    return a\n")
    status, body = await manage(api, "POST", "createApi",
                                json=apidoc(namespace, api.platform.api_host, "/bad", "/x", "get", "not-web"))
    assert status == 502
    assert "is not a web action" in body["error"]
    status, body = await manage(api, "POST", "createApi", json={"apidoc": {"namespace": "_"}})
    assert status == 502
    assert body["error"] == "apidoc is missing the gatewayBasePath field"
