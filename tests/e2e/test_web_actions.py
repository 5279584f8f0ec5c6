"""Web actions end to end: `/api/v1/web/{namespace}/{package}/{action}.{ext}` without credentials."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.e2e.platform import Api, Platform

pytestmark = pytest.mark.e2e

PNG = b"\x89PNG\r\n\x1a\n\x00\x01\xfe\xff binary"

ECHO = """
def main(args):
    return {"args": args}
"""

HTTP = f"""
import base64

def main(args):
    return {{
        "statusCode": 201,
        "headers": {{"Content-Type": "image/png", "X-Custom": "yes", "Set-Cookie": ["a=1", "b=2"]}},
        "body": base64.b64encode({PNG!r}).decode(),
    }}
"""


async def put_web_action(api: Api, name: str, code: str, *, parameters: dict[str, Any] | None = None,
                         **annotations: Any) -> None:
    marks = {"web-export": True, "final": True, **{k.replace("_", "-"): v for k, v in annotations.items()}}
    status, body, _ = await api.request("PUT", f"namespaces/_/actions/{name}", params={"overwrite": "true"}, json={
        "exec": {"kind": "python:3.11", "code": code},
        "annotations": [{"key": k, "value": v} for k, v in marks.items()],
        "parameters": [{"key": k, "value": v} for k, v in (parameters or {}).items()],
    })
    assert status == 200, body


async def namespace_of(api: Api) -> str:
    status, body, _ = await api.request("GET", "namespaces")
    assert status == 200, body
    return body[0]


async def web_url(api: Api, path: str) -> str:
    return f"{api.platform.api_host}/api/v1/web/{await namespace_of(api)}/{path}"


async def call(api: Api, method: str, path: str, **kwargs: Any) -> tuple[int, bytes, Any]:
    async with api.session.request(method, await web_url(api, path), **kwargs) as response:
        return response.status, await response.read(), response.headers


async def test_an_http_web_action_sets_status_headers_and_a_binary_body(api: Api) -> None:
    await put_web_action(api, "web-png", HTTP)
    status, body, headers = await call(api, "GET", "default/web-png.http")
    assert status == 201, body
    assert body == PNG
    assert headers["Content-Type"] == "image/png"
    assert headers["X-Custom"] == "yes"
    assert headers.getall("Set-Cookie") == ["a=1", "b=2"]
    assert len(headers["x-openwhisk-activation-id"]) == 32
    assert headers["Access-Control-Allow-Origin"] == "*"
    # no extension is .http
    status, body, _ = await call(api, "GET", "default/web-png")
    assert (status, body) == (201, PNG)
    status, body, headers = await call(api, "HEAD", "default/web-png.http")
    assert (status, body, headers["X-Custom"]) == (201, b"", "yes")


async def test_a_json_web_action_returns_its_object_with_the_request_context(api: Api) -> None:
    await put_web_action(api, "web-echo", ECHO)
    status, body, headers = await call(api, "POST", "default/web-echo.json?name=Jane&place=here",
                                       json={"place": "body wins", "n": 1}, headers={"X-Thing": "A"})
    assert status == 200, body
    assert headers["Content-Type"].startswith("application/json")
    args = json.loads(body)["args"]
    assert args["name"] == "Jane"
    assert args["place"] == "body wins"
    assert args["n"] == 1
    assert args["__ow_method"] == "post"
    assert args["__ow_headers"]["x-thing"] == "A"
    assert args["__ow_path"] == ""
    assert "__ow_user" not in args and "__ow_body" not in args and "__ow_query" not in args


async def test_an_http_action_gets_the_rest_of_the_path_and_returns_json(api: Api) -> None:
    await put_web_action(api, "web-path", 'def main(a):\n    return {"body": {"path": a["__ow_path"]}}\n')
    status, body, headers = await call(api, "GET", "default/web-path.http/some/path")
    assert status == 200, body
    assert headers["Content-Type"] == "application/json"
    assert json.loads(body) == {"path": "/some/path"}


async def test_a_projection_path_selects_part_of_the_result(api: Api) -> None:
    await put_web_action(api, "web-project", 'def main(a):\n    return {"x": {"y": {"z": 1}, "t": "hi"}}\n')
    status, body, _ = await call(api, "GET", "default/web-project.json/x/y")
    assert (status, json.loads(body)) == (200, {"z": 1})
    status, body, headers = await call(api, "GET", "default/web-project.text/x/t")
    assert (status, body) == (200, b"hi")
    assert headers["Content-Type"].startswith("text/plain")
    status, body, _ = await call(api, "GET", "default/web-project.json/nope")
    assert status == 404
    assert json.loads(body)["error"] == "Response does not include requested property."


async def test_form_and_text_bodies(api: Api) -> None:
    await put_web_action(api, "web-forms", ECHO)
    status, body, _ = await call(api, "POST", "default/web-forms.json", data={"name": "Jane"})
    assert status == 200, body
    assert json.loads(body)["args"]["name"] == "Jane"
    status, body, _ = await call(api, "POST", "default/web-forms.json", data=b"Jane",
                                 headers={"Content-Type": "text/plain"})
    assert json.loads(body)["args"]["__ow_body"] == "Jane"
    status, body, _ = await call(api, "PUT", "default/web-forms.json", data=PNG,
                                 headers={"Content-Type": "application/octet-stream"})
    assert base64.b64decode(json.loads(body)["args"]["__ow_body"]) == PNG


async def test_an_action_that_is_not_exported_is_404(api: Api) -> None:
    await api.put_action("web-hidden", ECHO)
    status, body, _ = await call(api, "GET", "default/web-hidden.json")
    assert status == 404
    assert json.loads(body)["error"] == "The requested resource does not exist."
    status, _, _ = await call(api, "GET", "default/web-never-created.json")
    assert status == 404


async def test_require_whisk_auth_with_a_secret(api: Api) -> None:
    await put_web_action(api, "web-secret", ECHO, require_whisk_auth="s3cret")
    status, body, _ = await call(api, "GET", "default/web-secret.json")
    assert status == 401
    assert set(json.loads(body)) == {"error", "code"}
    status, _, _ = await call(api, "GET", "default/web-secret.json", headers={"X-Require-Whisk-Auth": "wrong"})
    assert status == 401
    status, body, _ = await call(api, "GET", "default/web-secret.json", headers={"X-Require-Whisk-Auth": "s3cret"})
    assert status == 200, body


async def test_require_whisk_auth_true_needs_credentials_and_sets_ow_user(api: Api) -> None:
    await put_web_action(api, "web-authed", ECHO, require_whisk_auth=True)
    status, _, _ = await call(api, "GET", "default/web-authed.json")
    assert status == 401
    status, body, _ = await call(api, "GET", "default/web-authed.json", headers=api.platform.headers())
    assert status == 200, body
    assert json.loads(body)["args"]["__ow_user"] == await namespace_of(api)


async def test_a_raw_web_action_gets_the_untouched_query_and_body(api: Api) -> None:
    await put_web_action(api, "web-raw", ECHO, raw_http=True)
    payload = b'{"name":"Jane"}'
    status, body, _ = await call(api, "POST", "default/web-raw.json?name=Jane&x=a%20b&x=2", data=payload,
                                 headers={"Content-Type": "application/json"})
    assert status == 200, body
    args = json.loads(body)["args"]
    assert args["__ow_query"] == "name=Jane&x=a%20b&x=2"
    assert base64.b64decode(args["__ow_body"]) == payload
    assert "name" not in args
    status, body, _ = await call(api, "POST", "default/web-raw.json", data=b"plain text",
                                 headers={"Content-Type": "text/plain"})
    assert json.loads(body)["args"]["__ow_body"] == "plain text"


async def test_final_parameters_and_ow_fields_cannot_be_overridden(api: Api) -> None:
    await put_web_action(api, "web-final", ECHO, parameters={"name": "fixed"})
    status, body, _ = await call(api, "GET", "default/web-final.json?name=other")
    assert status == 400
    assert json.loads(body)["error"] == "Request defines parameters that are not allowed (e.g., reserved properties)."
    status, _, _ = await call(api, "POST", "default/web-final.json", json={"__ow_method": "get"})
    assert status == 400
    status, body, _ = await call(api, "GET", "default/web-final.json")
    assert json.loads(body)["args"]["name"] == "fixed"


async def test_options_gets_default_cors_unless_the_action_answers_it(api: Api) -> None:
    await put_web_action(api, "web-cors", ECHO)
    status, body, headers = await call(api, "OPTIONS", "default/web-cors.http",
                                       headers={"Access-Control-Request-Headers": "X-Mine"})
    assert (status, body) == (200, b"")
    assert headers["Access-Control-Allow-Origin"] == "*"
    assert headers["Access-Control-Allow-Methods"] == "OPTIONS, GET, DELETE, POST, PUT, HEAD, PATCH"
    assert headers["Access-Control-Allow-Headers"] == "X-Mine"
    own = 'def main(a):\n    return {"statusCode": 200, "headers": {"Allow": a["__ow_method"]}}\n'
    await put_web_action(api, "web-own-options", own, web_custom_options=True)
    status, _, headers = await call(api, "OPTIONS", "default/web-own-options.http")
    assert status == 200
    assert headers["Allow"] == "options"
    assert "Access-Control-Allow-Origin" not in headers


async def test_errors_map_as_openwhisk_does(api: Api) -> None:
    app_error = 'def main(a):\n    return {"error": {"statusCode": 409, "body": "taken"}}\n'
    await put_web_action(api, "web-app-error", app_error)
    status, body, headers = await call(api, "GET", "default/web-app-error.http")
    assert (status, body) == (409, b"taken")
    assert "x-openwhisk-activation-id" in headers
    await put_web_action(api, "web-crash", 'def main(a):\n    raise RuntimeError("boom")\n')
    status, body, _ = await call(api, "GET", "default/web-crash.json")
    assert status == 400
    assert json.loads(body)["error"] == "There was an error processing your request."
    await put_web_action(api, "web-not-http", 'def main(a):\n    return {"statusCode": "nope"}\n')
    status, body, _ = await call(api, "GET", "default/web-not-http.http")
    assert status == 400
    assert json.loads(body)["error"] == "Response is not valid 'message/http'."


async def test_an_empty_http_body_is_204_and_the_activation_is_the_owners(api: Api) -> None:
    await put_web_action(api, "web-empty", 'def main(a):\n    return {}\n')
    status, body, headers = await call(api, "DELETE", "default/web-empty")
    assert (status, body) == (204, b"")
    record = await api.wait_for_activation(headers["x-openwhisk-activation-id"])
    assert record["namespace"] == await namespace_of(api)
    assert record["name"] == "web-empty"


async def test_a_web_action_in_a_package_gets_the_package_parameters(api: Api) -> None:
    status, body, _ = await api.request("PUT", "namespaces/_/packages/webpkg", params={"overwrite": "true"},
                                        json={"parameters": [{"key": "greeting", "value": "hello"}]})
    assert status == 200, body
    await put_web_action(api, "webpkg/echo", ECHO)
    status, body, _ = await call(api, "GET", "webpkg/echo.json?name=Ada")
    assert status == 200, body
    assert json.loads(body)["args"]["greeting"] == "hello"
    assert json.loads(body)["args"]["name"] == "Ada"


async def test_past_the_blocking_wait_the_answer_is_202_with_the_activation_id(fresh_platform: Platform,
                                                                              tmp_path: Path) -> None:
    fresh_platform.env["PYWHISK_MAX_BLOCKING_WAIT_MS"] = "500"
    fresh_platform.start()
    async with aiohttp.ClientSession() as session:
        api = Api(fresh_platform, session)
        await put_web_action(api, "web-slow", "import time\ndef main(a):\n    time.sleep(3)\n    return {'done': 1}\n")
        status, body, headers = await call(api, "GET", "default/web-slow.json")
        assert status == 202, body
        assert json.loads(body)["error"] == "Response not yet ready."
        record = await api.wait_for_activation(headers["x-openwhisk-activation-id"])
        assert record["response"]["result"] == {"done": 1}
