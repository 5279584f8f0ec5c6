"""Bad requests get OpenWhisk's error body and the right status."""

import io

import pytest

from tests.e2e.platform import GENEROUS_THROTTLES, Api

pytestmark = pytest.mark.e2e


def assert_error_body(body: object) -> None:
    assert isinstance(body, dict) and set(body) == {"error", "code"}, body
    assert body["error"] and body["code"]


async def test_a_wrong_key_is_401(api: Api) -> None:
    uuid = api.platform.auth.split(":")[0]
    status, body, _ = await api.request("GET", "namespaces/_/actions", auth=f"{uuid}:wrong")
    assert status == 401
    assert_error_body(body)


async def test_missing_credentials_are_401(api: Api) -> None:
    async with api.session.get(api.url("namespaces/_/actions")) as response:
        assert response.status == 401
        assert_error_body(await response.json())


async def test_another_namespace_is_403(api: Api) -> None:
    status, body, _ = await api.request("GET", "namespaces/someone-else/actions")
    assert status == 403
    assert_error_body(body)
    assert body["error"] == "The supplied authentication is not authorized to access this resource."


async def test_an_illegal_name_is_400(api: Api) -> None:
    status, body, _ = await api.request("PUT", "namespaces/_/actions/-bad%20name%20", json={
        "exec": {"kind": "python:3.11", "code": "def main(a): return a"}})
    assert status == 400
    assert_error_body(body)
    assert body["error"] == "The name of the entity contains illegal characters."


async def test_a_body_over_one_megabyte_is_413(api: Api) -> None:
    await api.put_action("echo-big", "def main(a):\n    return a\n")
    big = b'{"x": "' + b"a" * (2 * 1024 * 1024) + b'"}'
    status, body, _ = await api.request("POST", "namespaces/_/actions/echo-big", data=io.BytesIO(big),
                                        headers={"Content-Type": "application/json"})
    assert status == 413
    assert_error_body(body)


async def test_malformed_json_is_400(api: Api) -> None:
    status, body, _ = await api.request("PUT", "namespaces/_/actions/malformed", data=b"{not json",
                                        headers={"Content-Type": "application/json"})
    assert status == 400
    assert_error_body(body)


async def test_an_unknown_kind_is_400(api: Api) -> None:
    status, body, _ = await api.request("PUT", "namespaces/_/actions/unknown-kind",
                                        json={"exec": {"kind": "cobol:85", "code": "x"}})
    assert status == 400
    assert_error_body(body)
    assert "cobol:85" in body["error"]


async def test_a_limit_out_of_range_is_400(api: Api) -> None:
    status, body, _ = await api.request("PUT", "namespaces/_/actions/too-long", json={
        "exec": {"kind": "python:3.11", "code": "def main(a): return a"}, "limits": {"timeout": 999999}})
    assert status == 400
    assert_error_body(body)
    assert "Time limit" in body["error"]


async def test_an_unknown_action_and_an_unknown_activation_are_404(api: Api) -> None:
    status, body, _ = await api.invoke("does-not-exist", blocking="true")
    assert status == 404
    assert_error_body(body)
    status, body, _ = await api.request("GET", "namespaces/_/activations/" + "0" * 32)
    assert status == 404
    assert_error_body(body)
    status, body, _ = await api.request("GET", "namespaces/_/activations/not-an-id")
    assert status == 400
    assert body["error"] == "The activation id is not valid."


async def test_a_package_path_is_parsed_and_404_until_packages_exist(api: Api) -> None:
    status, body, _ = await api.request("GET", "namespaces/_/actions/somepkg/someaction")
    assert status == 404
    assert_error_body(body)


async def test_a_blocking_timeout_over_the_maximum_is_400(api: Api) -> None:
    await api.put_action("echo-timeout", "def main(a):\n    return a\n")
    status, body, _ = await api.invoke("echo-timeout", blocking="true", timeout="60001")
    assert status == 400
    assert body["error"] == "Timeout must be number of milliseconds up to 60000."


async def test_the_api_info_and_namespaces_and_limits_answer(api: Api) -> None:
    status, info, _ = await api.request("GET", "")
    assert status == 200 and info["api_paths"] == ["/api/v1"]
    status, namespaces, _ = await api.request("GET", "namespaces")
    assert status == 200 and namespaces == ["guest"]
    status, limits, _ = await api.request("GET", "namespaces/_/limits")
    assert status == 200
    assert limits["concurrentInvocations"] == int(GENEROUS_THROTTLES["PYWHISK_CONCURRENT_INVOCATIONS"])
    assert limits["maxActionMemory"] == 512


async def test_an_unknown_path_and_a_wrong_method_get_the_error_body(api: Api) -> None:
    status, body, _ = await api.request("GET", "no/such/path")
    assert status == 404
    assert_error_body(body)
    status, body, headers = await api.request("PATCH", "namespaces/_/actions/x")
    assert status == 405
    assert_error_body(body)
    assert "Allow" in headers
