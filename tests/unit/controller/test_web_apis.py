"""API routes: path templates, swagger editing and matching, base paths, the API host."""

from typing import Any

import pytest
from aiohttp.test_utils import make_mocked_request

from controller.api.apis import (
    ApiManagementError,
    Operation,
    add_endpoint,
    api_host,
    api_id_of,
    base_swagger,
    check_rel_path,
    doc_id_of,
    find_operation,
    is_route_path,
    match_template,
    normalize_base_path,
    path_parameter_names,
    remove_endpoint,
)


def target(action: str, ext: str = "http") -> dict[str, str]:
    return {"namespace": "guest", "package": "", "action": action,
            "url": f"https://h/api/v1/web/guest/default/{action}.{ext}"}


def users_api() -> dict[str, Any]:
    swagger = base_swagger("/iot", "IoT")
    add_endpoint(swagger, "/users", "get", target("list", "json"), [])
    add_endpoint(swagger, "/users/{id}", "get", target("get"), ["id"])
    add_endpoint(swagger, "/users/me", "get", target("me"), [])
    op = add_endpoint(swagger, "/users/{id}", "delete", target("delete"), ["id"])
    return {"swagger": swagger, "secureKeys": {op: "s3"}}


@pytest.mark.parametrize(("template", "path", "expected"), [
    ("/users", "/users", {}),
    ("/users", "/users/", {}),
    ("/users/{id}", "/users/42", {"id": "42"}),
    ("/a/{x}/b/{y}", "/a/1/b/2", {"x": "1", "y": "2"}),
    ("/users/{id}", "/users", None),
    ("/users/{id}", "/users/1/2", None),
    ("/users", "/people", None),
    ("/", "/", {}),
])
def test_templates_match_segments(template: str, path: str, expected: dict[str, str] | None) -> None:
    assert match_template(template, path) == expected


def test_an_operation_is_found_by_path_and_verb() -> None:
    api = users_api()
    found = find_operation(api, "/users/42", "GET")
    assert isinstance(found, Operation)
    assert (str(found.action), found.response_type, found.path_params) == ("/guest/get", "http", {"id": "42"})
    listed = find_operation(api, "/users", "get")
    assert isinstance(listed, Operation) and listed.response_type == "json"
    assert find_operation(api, "/users/42", "PUT") is False
    assert find_operation(api, "/things", "GET") is None


def test_a_literal_path_wins_over_a_template() -> None:
    found = find_operation(users_api(), "/users/me", "GET")
    assert isinstance(found, Operation) and found.action.name == "me"


def test_the_secure_key_of_an_operation_comes_along() -> None:
    found = find_operation(users_api(), "/users/1", "DELETE")
    assert isinstance(found, Operation) and found.secure_key == "s3"


def test_an_operation_gets_openwhisks_swagger_shape() -> None:
    swagger = base_swagger("/iot", None)
    op_id = add_endpoint(swagger, "/users/{id}", "get", target("get"), ["id"])
    entry = swagger["paths"]["/users/{id}"]["get"]
    assert swagger["info"] == {"title": "/iot", "version": "1.0.0"}
    assert entry["operationId"] == op_id
    assert entry["x-openwhisk"]["action"] == "get"
    assert entry["responses"] == {"default": {"description": "Default response"}}
    assert entry["parameters"][0] == {"name": "id", "in": "path", "required": True, "type": "string",
                                      "description": "Default description for 'id'"}


def test_removing_the_last_operation_removes_the_path() -> None:
    swagger = users_api()["swagger"]
    remove_endpoint(swagger, "/users/{id}", "get")
    assert set(swagger["paths"]["/users/{id}"]) == {"delete"}
    remove_endpoint(swagger, "/users/{id}", "delete")
    assert "/users/{id}" not in swagger["paths"]
    remove_endpoint(swagger, "/users", None)
    assert set(swagger["paths"]) == {"/users/me"}


def test_removing_what_is_not_there_says_so() -> None:
    swagger = users_api()["swagger"]
    with pytest.raises(ApiManagementError, match="path '/x' does not exist in the API"):
        remove_endpoint(swagger, "/x", None)
    with pytest.raises(ApiManagementError, match="with operation 'put' does not exist"):
        remove_endpoint(swagger, "/users", "put")


@pytest.mark.parametrize(("given", "expected"), [("/iot", "/iot"), ("/iot/", "/iot"), ("/", "/"), ("/a/b", "/a/b")])
def test_base_paths_are_normalized(given: str, expected: str) -> None:
    assert normalize_base_path(given) == expected


@pytest.mark.parametrize("given", ["iot", "/a/{b}", "/a b", 3, "/" + "/".join("x" * 9)])
def test_bad_base_paths_are_refused(given: object) -> None:
    with pytest.raises(ApiManagementError):
        normalize_base_path(given)


def test_relative_paths() -> None:
    assert check_rel_path("/users/{id}") == "/users/{id}"
    assert path_parameter_names("/a/{x}/b/{y}") == ["x", "y"]
    for bad in ("users", "/a b", "/{__ow_path}"):
        with pytest.raises(ApiManagementError):
            check_rel_path(bad)


def test_api_ids_are_stable_hex_and_route_paths_never_collide_with_v1() -> None:
    api_id = api_id_of("guest")
    assert api_id == api_id_of("guest") != api_id_of("other")
    assert len(api_id) == 32 and int(api_id, 16) >= 0
    assert doc_id_of(api_id, "/iot") == f"+apis/{api_id}/iot"
    assert is_route_path(f"/api/{api_id}/iot/users")
    assert is_route_path(f"/api/{api_id}")
    assert not is_route_path("/api/v1/namespaces")
    assert not is_route_path(f"/api/{api_id}x")


def test_the_api_host_honours_forwarded_headers() -> None:
    direct = make_mocked_request("GET", "/", headers={"Host": "127.0.0.1:3233"})
    assert api_host(direct) == "http://127.0.0.1:3233"
    proxied = make_mocked_request("GET", "/", headers={
        "Host": "gw:9443", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "example.org", "X-Forwarded-Port": "9443"})
    assert api_host(proxied) == "https://example.org:9443"
    default_port = make_mocked_request("GET", "/", headers={
        "X-Forwarded-Proto": "https", "X-Forwarded-Host": "example.org", "X-Forwarded-Port": "443"})
    assert api_host(default_port) == "https://example.org"
