"""Packages, bindings and the public `whisk.system` catalog, end to end."""

from __future__ import annotations

import secrets
from typing import Any

from tests.e2e.platform import Api

ECHO = "def main(args):\n    return args\n"


def unique(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


def kv(**values: Any) -> list[dict[str, Any]]:
    return [{"key": k, "value": v} for k, v in values.items()]


async def put_package(api: Api, name: str, body: dict[str, Any] | None = None, overwrite: bool = False) -> Any:
    params = {"overwrite": "true"} if overwrite else None
    return await api.request("PUT", f"namespaces/_/packages/{name}", json=body or {}, params=params)


async def test_actions_in_a_package_get_its_parameters_under_their_own_and_the_payload(api: Api) -> None:
    package = unique("pkg")
    status, body, _ = await put_package(api, package, {"parameters": kv(a="package", b="package", c="package")})
    assert status == 200, body
    assert body["binding"] == {} and body["namespace"] == "guest"
    await api.put_action(f"{package}/echo", ECHO, parameters=kv(b="action", c="action"))

    status, result, _ = await api.invoke(f"{package}/echo", {"c": "payload"}, blocking="true", result="true")
    assert status == 200, result
    assert result == {"a": "package", "b": "action", "c": "payload"}

    status, got, _ = await api.request("GET", f"namespaces/_/packages/{package}")
    assert status == 200 and [a["name"] for a in got["actions"]] == ["echo"]
    status, listed, _ = await api.request("GET", f"namespaces/_/actions/{package}/")
    assert status == 200 and [a["name"] for a in listed] == ["echo"]
    assert listed[0]["namespace"] == f"guest/{package}"


async def test_a_binding_overrides_its_packages_parameters(api: Api) -> None:
    package, binding = unique("pkg"), unique("bound")
    await put_package(api, package, {"parameters": kv(greeting="hello", who="package")})
    await api.put_action(f"{package}/echo", ECHO, parameters=kv(action="yes"))
    status, body, _ = await put_package(
        api, binding, {"binding": {"namespace": "_", "name": package}, "parameters": kv(who="binding")})
    assert status == 200, body
    assert body["binding"] == {"namespace": "guest", "name": package}

    status, result, _ = await api.invoke(f"{binding}/echo", {"extra": 1}, blocking="true", result="true")
    assert status == 200, result
    assert result == {"greeting": "hello", "who": "binding", "action": "yes", "extra": 1}
    # the package itself is unchanged
    status, result, _ = await api.invoke(f"{package}/echo", blocking="true", result="true")
    assert result == {"greeting": "hello", "who": "package", "action": "yes"}
    # a binding shows the bound package's actions and the merged parameters
    status, got, _ = await api.request("GET", f"namespaces/_/packages/{binding}")
    assert status == 200 and [a["name"] for a in got["actions"]] == ["echo"]
    assert {p["key"]: p["value"] for p in got["parameters"]} == {"greeting": "hello", "who": "binding"}
    # invocations through a binding are recorded with the binding
    status, record, _ = await api.invoke(f"{binding}/echo", blocking="true")
    annotations = {a["key"]: a["value"] for a in record["annotations"]}
    assert annotations["path"] == f"guest/{package}/echo" and annotations["binding"] == f"guest/{binding}"


async def test_a_public_whisk_system_package_can_be_bound_and_invoked_from_guest(api: Api) -> None:
    status, packages, _ = await api.request("GET", "namespaces/whisk.system/packages")
    assert status == 200, packages
    assert {"samples", "utils"} <= {p["name"] for p in packages}
    assert all(p["publish"] for p in packages)

    status, result, _ = await api.request(
        "POST", "namespaces/whisk.system/actions/utils/sort", json={"lines": ["b", "c", "a"]},
        params={"blocking": "true", "result": "true"})
    assert status == 200, result
    assert result == {"lines": ["a", "b", "c"], "length": 3}

    binding = unique("mysamples")
    status, body, _ = await put_package(
        api, binding, {"binding": {"namespace": "whisk.system", "name": "samples"}, "parameters": kv(place="Paris")})
    assert status == 200, body
    status, result, _ = await api.invoke(f"{binding}/greeting", {"name": "Ada"}, blocking="true", result="true")
    assert status == 200, result
    assert result == {"payload": "Hello, Ada from Paris!"}
    # the activation belongs to the caller
    status, record, _ = await api.invoke(f"{binding}/greeting", blocking="true")
    assert record["namespace"] == "guest"


async def test_whisk_system_is_read_only_to_other_namespaces(api: Api) -> None:
    status, body, _ = await api.request("PUT", "namespaces/whisk.system/packages/mine", json={})
    assert status == 403, body
    status, body, _ = await api.request(
        "PUT", "namespaces/whisk.system/actions/utils/evil", json={"exec": {"kind": "python:3.11", "code": ECHO}})
    assert status == 403, body
    status, body, _ = await api.request("DELETE", "namespaces/whisk.system/actions/utils/echo")
    assert status == 403, body


async def test_a_non_empty_package_is_deleted_only_with_force(api: Api) -> None:
    package = unique("pkg")
    await put_package(api, package)
    await api.put_action(f"{package}/one", ECHO)
    await api.put_action(f"{package}/two", ECHO)
    status, body, _ = await api.request("DELETE", f"namespaces/_/packages/{package}")
    assert status == 409, body
    assert "contains 2 actions" in body["error"] and body["code"]
    status, body, _ = await api.request("DELETE", f"namespaces/_/packages/{package}", params={"force": "true"})
    assert status == 200, body
    for name in ("one", "two"):
        status, _, _ = await api.request("GET", f"namespaces/_/actions/{package}/{name}")
        assert status == 404
    status, _, _ = await api.request("GET", f"namespaces/_/packages/{package}")
    assert status == 404


async def test_package_errors_have_openwhisks_statuses(api: Api) -> None:
    package = unique("pkg")
    status, body, _ = await put_package(api, "default")
    assert status == 400 and body["error"] == "Package name 'default' is reserved."
    await put_package(api, package)
    status, body, _ = await put_package(api, package)
    assert status == 409 and body["error"] == "resource already exists"
    status, body, _ = await put_package(api, unique("b"), {"binding": {"namespace": "_", "name": unique("none")}})
    assert status == 400, body
    binding = unique("b")
    await put_package(api, binding, {"binding": {"namespace": "_", "name": package}})
    status, body, _ = await put_package(api, unique("b"), {"binding": {"namespace": "_", "name": binding}})
    assert status == 400 and "binding" in body["error"].lower()
    status, body, _ = await api.request(
        "PUT", f"namespaces/_/actions/{binding}/a", json={"exec": {"kind": "python:3.11", "code": ECHO}})
    assert status == 400, body
    status, body, _ = await api.request(
        "PUT", f"namespaces/_/actions/{unique('nopkg')}/a", json={"exec": {"kind": "python:3.11", "code": ECHO}})
    assert status == 404, body
    # an unpublished package of another namespace is not readable
    status, body, _ = await api.request("GET", "namespaces/someone.else/packages/private")
    assert status in (403, 404), body
