"""How a web action's result becomes a response, per extension (OpenWhisk's documented examples)."""

import base64
import json

import pytest

from controller.web.response import TranscodeError, complete, default_cors, projection_of, transcode
from whisk.entities.activation import APPLICATION_ERROR, DEVELOPER_ERROR, SUCCESS, WHISK_ERROR

PNG = b"\x89PNG\r\n\x1a\n\x00"


def error_of(extension: str, value: object) -> TranscodeError:
    with pytest.raises(TranscodeError) as caught:
        transcode(extension, value)
    return caught.value


def test_a_redirect() -> None:
    answer = transcode("http", {"headers": {"location": "http://openwhisk.org"}, "statusCode": 302})
    assert (answer.status, answer.headers, answer.body) == (302, [("location", "http://openwhisk.org")], b"")


def test_a_cookie_with_html() -> None:
    answer = transcode("http", {
        "headers": {"Set-Cookie": "UserID=Jane; Max-Age=3600; Version=", "Content-Type": "text/html"},
        "statusCode": 200, "body": "<html><body><h3>hello</h3></body></html>"})
    assert answer.status == 200
    assert answer.headers == [("Set-Cookie", "UserID=Jane; Max-Age=3600; Version=")]
    assert answer.content_type == "text/html; charset=UTF-8"
    assert answer.body == b"<html><body><h3>hello</h3></body></html>"


def test_a_png_is_base64_decoded() -> None:
    answer = transcode("http", {"headers": {"Content-Type": "image/png"}, "statusCode": 200,
                                "body": base64.b64encode(PNG).decode()})
    assert (answer.content_type, answer.body) == ("image/png", PNG)


def test_a_base64_json_string_is_decoded_for_old_actions() -> None:
    params = {"a": 1}
    answer = transcode("http", {"statusCode": 200, "headers": {"Content-Type": "application/json"},
                                "body": base64.b64encode(json.dumps(params).encode()).decode()})
    assert json.loads(answer.body) == params


def test_a_json_string_that_is_not_base64_is_sent_as_is() -> None:
    answer = transcode("http", {"headers": {"Content-Type": "application/json"}, "body": '{"a": 1}'})
    assert answer.body == b'{"a": 1}'


def test_a_json_body_is_application_json() -> None:
    answer = transcode("http", {"body": {"a": [1, 2]}})
    assert (answer.status, answer.content_type, json.loads(answer.body)) == (200, "application/json", {"a": [1, 2]})


def test_a_json_family_type_is_kept_and_pretty_printed() -> None:
    answer = transcode("http", {"body": {"a": 1}, "headers": {"content-type": "application/hal+json"}})
    assert answer.content_type == "application/hal+json; charset=UTF-8"
    assert answer.body == b'{\n  "a": 1\n}'


def test_a_string_body_defaults_to_html() -> None:
    answer = transcode("http", {"body": "<p>hi</p>"})
    assert (answer.status, answer.content_type) == (200, "text/html; charset=UTF-8")


@pytest.mark.parametrize("result", [{}, {"body": ""}, {"body": None}, {"headers": {"Content-Type": "text/plain"}}])
def test_no_body_is_204_without_a_content_type(result: dict[str, object]) -> None:
    answer = transcode("http", result)
    assert (answer.status, answer.body, answer.content_type, answer.headers) == (204, b"", None, [])


def test_an_explicit_status_with_no_body() -> None:
    assert transcode("http", {"statusCode": 404}).status == 404


def test_a_numeric_string_status_and_repeated_headers() -> None:
    answer = transcode("http", {"statusCode": "201", "headers": {"Set-Cookie": ["a=1", "b=2"], "X-N": 3,
                                                                 "X-B": True}, "body": "x"})
    assert answer.status == 201
    assert answer.headers == [("Set-Cookie", "a=1"), ("Set-Cookie", "b=2"), ("X-N", "3"), ("X-B", "true")]


@pytest.mark.parametrize("result", [
    "a string", [1], {"statusCode": "abc"}, {"statusCode": 99}, {"statusCode": True}, {"statusCode": 200.5},
    {"headers": "nope"}, {"headers": {"X": {"nested": 1}}}, {"headers": {"X": None}}, {"headers": {"bad name": "x"}},
    {"headers": {"X": "a\r\nInjected: 1"}},
])
def test_bad_http_results_are_400(result: object) -> None:
    error = error_of("http", result)
    assert (error.status, error.message) == (400, "Response is not valid 'message/http'.")


def test_an_unknown_content_type_is_400() -> None:
    error = error_of("http", {"headers": {"Content-Type": "nonsense"}, "body": "x"})
    assert error.message == "Response did not specify a known content-type."


def test_a_binary_type_with_a_body_that_is_not_base64_is_400() -> None:
    error = error_of("http", {"headers": {"Content-Type": "image/png"}, "body": "not base64!"})
    assert error.message == "Response type in header did not match generated content type."


def test_a_json_body_under_a_text_type_is_400() -> None:
    error = error_of("http", {"headers": {"Content-Type": "text/plain"}, "body": {"a": 1}})
    assert error.message == "Response type in header did not match generated content type."


def test_json_needs_an_object_or_array() -> None:
    assert json.loads(transcode("json", [1, 2]).body) == [1, 2]
    assert transcode("json", {"a": 1}).content_type == "application/json"
    assert error_of("json", "text").message == "Response is not valid 'application/json'."


def test_html_takes_body_or_html() -> None:
    assert transcode("html", {"html": "<b>x</b>"}).body == b"<b>x</b>"
    assert transcode("html", {"body": "<i>y</i>", "html": "z"}).body == b"<i>y</i>"
    assert transcode("html", "<p/>").content_type == "text/html; charset=UTF-8"
    assert error_of("html", {"other": 1}).message == "Response is not valid 'text/html'."


def test_svg_takes_body_or_svg() -> None:
    answer = transcode("svg", {"svg": "<svg/>"})
    assert (answer.content_type, answer.body) == ("image/svg+xml", b"<svg/>")
    assert error_of("svg", {"svg": 1}).message == "Response is not valid 'image/svg+xml'."


@pytest.mark.parametrize(("value", "text"), [
    ({"text": "hi"}, b"hi"), ({"body": {"a": 1}}, b'{\n  "a": 1\n}'), ("Jane", b"Jane"), (True, b"true"),
    (3, b"3"), (None, b"null"), ([1], b"[\n  1\n]"),
])
def test_text_prints_values(value: object, text: bytes) -> None:
    answer = transcode("text", value)
    assert (answer.status, answer.content_type, answer.body) == (200, "text/plain; charset=UTF-8", text)


def test_text_of_an_object_without_body_or_text_is_404() -> None:
    assert error_of("text", {"other": 1}).status == 404


def test_a_projection_selects_a_field() -> None:
    result = {"response": {"name": "Jane", "__ow_method": "get"}}
    answer = complete("text", SUCCESS, result, projection_of("text", "/response/name"))
    assert answer.body == b"Jane"


def test_http_never_projects() -> None:
    assert projection_of("http", "/a/b") == []
    assert projection_of("json", "/a//b/") == ["a", "b"]


def test_a_missing_projection_is_404() -> None:
    with pytest.raises(TranscodeError) as caught:
        complete("json", SUCCESS, {"a": 1}, ["b"])
    assert (caught.value.status, caught.value.message) == (404, "Response does not include requested property.")


def test_an_application_error_projects_its_error_field() -> None:
    answer = complete("http", APPLICATION_ERROR, {"error": {"statusCode": 400, "body": "bad"}}, ["ignored"])
    assert (answer.status, answer.body) == (400, b"bad")


@pytest.mark.parametrize("status", [DEVELOPER_ERROR, WHISK_ERROR])
def test_developer_and_whisk_errors_are_400(status: int) -> None:
    with pytest.raises(TranscodeError) as caught:
        complete("json", status, {"error": "crash"}, [])
    assert (caught.value.status, caught.value.message) == (400, "There was an error processing your request.")


def test_default_cors_echoes_requested_headers() -> None:
    assert default_cors(None)["Access-Control-Allow-Headers"].startswith("Authorization, Origin")
    assert default_cors("X-A")["Access-Control-Allow-Headers"] == "X-A"
    assert default_cors(None)["Access-Control-Allow-Methods"] == "OPTIONS, GET, DELETE, POST, PUT, HEAD, PATCH"
