"""How a web request becomes an action's arguments (OpenWhisk's documented examples and the edge cases)."""

import base64

import pytest

from controller.web.request import (
    RequestRejected,
    WebRequest,
    action_arguments,
    decode_body,
    immutable_parameters,
    is_binary,
    parse_query,
    split_extension,
)

HEADERS = [("Accept", "*/*"), ("Host", "172.17.0.1"), ("User-Agent", "curl/7.43.0")]


def request(**fields: object) -> WebRequest:
    return WebRequest(**{"method": "GET", "headers": HEADERS, **fields})  # type: ignore[arg-type]


@pytest.mark.parametrize(("segment", "expected"), [
    ("hello.json", ("hello", "json")),
    ("hello.http", ("hello", "http")),
    ("hello.html", ("hello", "html")),
    ("hello.svg", ("hello", "svg")),
    ("hello.text", ("hello", "text")),
    ("hello", ("hello", "http")),
    ("hello.txt", ("hello.txt", "http")),
    ("a.b.json", ("a.b", "json")),
])
def test_the_extension_is_split_off_and_defaults_to_http(segment: str, expected: tuple[str, str]) -> None:
    assert split_extension(segment) == expected


def test_a_get_gets_the_method_lowercased_headers_and_path() -> None:
    args = action_arguments(request(path="/x/y"), raw=False)
    assert args == {
        "__ow_method": "get",
        "__ow_headers": {"accept": "*/*", "host": "172.17.0.1", "user-agent": "curl/7.43.0"},
        "__ow_path": "/x/y",
    }


def test_query_parameters_become_arguments_and_the_body_wins() -> None:
    args = action_arguments(request(method="POST", query="name=Jane&place=query", body=b'{"place": "body"}',
                                    media_type="application/json"), raw=False)
    assert args["name"] == "Jane"
    assert args["place"] == "body"
    assert "__ow_body" not in args and "__ow_query" not in args


def test_a_form_body_becomes_arguments() -> None:
    args = action_arguments(request(method="POST", body=b"name=Jane&x=a+b",
                                    media_type="application/x-www-form-urlencoded"), raw=False)
    assert (args["name"], args["x"]) == ("Jane", "a b")


def test_a_text_body_is_ow_body() -> None:
    args = action_arguments(request(method="POST", body=b"Jane", media_type="text/plain"), raw=False)
    assert args["__ow_body"] == "Jane"


def test_a_binary_body_is_base64() -> None:
    data = b"\x00\xff\x10"
    args = action_arguments(request(method="PUT", body=data, media_type="image/png"), raw=False)
    assert base64.b64decode(args["__ow_body"]) == data


def test_a_body_without_content_type_is_binary() -> None:
    args = action_arguments(request(method="POST", body=b"abc"), raw=False)
    assert args["__ow_body"] == base64.b64encode(b"abc").decode()


def test_a_json_array_body_is_ow_body_as_json() -> None:
    args = action_arguments(request(method="POST", body=b"[1, 2]", media_type="application/json"), raw=False)
    assert args["__ow_body"] == [1, 2]


def test_malformed_json_is_400() -> None:
    with pytest.raises(RequestRejected) as caught:
        action_arguments(request(method="POST", body=b"{nope", media_type="application/json"), raw=False)
    assert caught.value.status == 400


def test_raw_mode_gets_the_query_string_and_json_as_base64() -> None:
    args = action_arguments(request(method="POST", query="name=Jane&x=a%20b", body=b'{"name":"Jane"}',
                                    media_type="application/json"), raw=True)
    assert args["__ow_query"] == "name=Jane&x=a%20b"
    assert args["__ow_body"] == "eyJuYW1lIjoiSmFuZSJ9"  # OpenWhisk's documented example
    assert "name" not in args


def test_raw_mode_with_no_body_has_an_empty_ow_body() -> None:
    args = action_arguments(request(), raw=True)
    assert (args["__ow_body"], args["__ow_query"]) == ("", "")


def test_raw_mode_keeps_a_form_as_text() -> None:
    args = action_arguments(request(method="POST", body=b"a=1", media_type="application/x-www-form-urlencoded"),
                            raw=True)
    assert args["__ow_body"] == "a=1"


def test_raw_mode_may_send_anything_in_the_query() -> None:
    args = action_arguments(request(query="__ow_method=x&final=1"), raw=True, immutable=frozenset({"final"}))
    assert args["__ow_method"] == "get"


@pytest.mark.parametrize("req", [
    request(query="__ow_method=put"),
    request(method="POST", body=b'{"__ow_user": "admin"}', media_type="application/json"),
    request(query="name=other"),
    request(method="POST", body=b"name=other", media_type="application/x-www-form-urlencoded"),
])
def test_reserved_and_final_parameters_cannot_be_set(req: WebRequest) -> None:
    with pytest.raises(RequestRejected) as caught:
        action_arguments(req, raw=False, immutable=frozenset({"name"}))
    assert caught.value.status == 400
    assert caught.value.message == "Request defines parameters that are not allowed (e.g., reserved properties)."


def test_the_user_is_set_only_when_authenticated() -> None:
    assert action_arguments(request(), raw=False, user="guest")["__ow_user"] == "guest"
    assert "__ow_user" not in action_arguments(request(), raw=False)


def test_route_path_parameters_are_arguments_over_query_and_body() -> None:
    args = action_arguments(request(query="id=q", path_params={"id": "42"}), raw=False)
    assert args["id"] == "42"
    assert action_arguments(request(path_params={"id": "42"}), raw=True)["id"] == "42"
    with pytest.raises(RequestRejected):
        action_arguments(request(path_params={"id": "42"}), raw=True, immutable=frozenset({"id"}))


def test_final_makes_every_defined_parameter_immutable() -> None:
    assert immutable_parameters(True, {"a": 1, "b": None}) == {"a"}
    assert immutable_parameters(False, {"a": 1}) == frozenset()


def test_a_repeated_query_parameter_keeps_its_last_value() -> None:
    assert parse_query("a=1&a=2&b=") == {"a": "2", "b": ""}


@pytest.mark.parametrize(("media", "binary"), [
    ("text/plain", False), ("text/html", False), ("application/json", False), ("application/vnd.api+json", False),
    ("application/xml", False), ("image/svg+xml", False), ("application/x-www-form-urlencoded", False),
    ("image/png", True), ("application/octet-stream", True), ("application/pdf", True), ("audio/mpeg", True),
    ("multipart/form-data", True),
])
def test_binary_media_types(media: str, binary: bool) -> None:
    assert is_binary(media) is binary


def test_invalid_utf8_text_is_replaced_not_refused() -> None:
    assert decode_body(request(body=b"a\xffb", media_type="text/plain"), raw=False) == "a\ufffdb"
