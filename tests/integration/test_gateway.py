"""The nginx gateway (gateway/) in front of real controllers: plain HTTP and TLS, bodies, errors, outages, keep-alive.

Every test runs Debian's nginx (installed by tests/services/nginx.py when missing, never skipped) with the config
rendered by gateway/render.py. Most tests share one standalone controller (tests/e2e/platform.py) and one gateway;
the outage test has its own pair because it stops the controller. Header and keep-alive checks use a small aiohttp
upstream that reports what nginx sent it. HTTPS is verified against the generated certificate, never switched off.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import re
import ssl
import subprocess
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest
from aiohttp import web

from gateway.render import GatewayConfig, GatewayConfigError, ensure_certificate, render
from tests.e2e.platform import Api, Platform
from tests.services.nginx import Gateway, ensure_nginx, free_port, nginx_gateway

ECHO = "def main(args):\n    return {'greeting': 'hello ' + args.get('name', 'stranger')}\n"
NGINX_REQUEST_ID = re.compile(r"^[0-9a-f]{32}$")
MB = 1024 * 1024


def upstream_of(platform: Platform) -> str:
    return urlsplit(platform.api_host).netloc


class GatewayApi(Api):
    """The e2e REST client, sent through the gateway at `base` instead of straight to the controller."""

    def __init__(self, platform: Platform, session: aiohttp.ClientSession, base: str) -> None:
        super().__init__(platform, session)
        self.base = base

    def url(self, path: str) -> str:
        return f"{self.base}/api/v1/{path.lstrip('/')}"


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    running = Platform(data_dir=tmp_path_factory.mktemp("gateway-standalone"), containers="process")
    running.start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def gateway(platform: Platform, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    with nginx_gateway(tmp_path_factory.mktemp("gateway"), [upstream_of(platform)]) as running:
        yield running


@pytest.fixture(params=["http", "https"])
async def api(request: pytest.FixtureRequest, platform: Platform, gateway: Gateway) -> AsyncIterator[GatewayApi]:
    """A client through the gateway, once over plain HTTP and once over TLS trusting only the gateway's cert."""
    if request.param == "https":
        connector = aiohttp.TCPConnector(ssl=gateway.ssl_context())
        base = gateway.https_url
    else:
        connector = aiohttp.TCPConnector()
        base = gateway.http_url
    async with aiohttp.ClientSession(connector=connector) as session:
        yield GatewayApi(platform, session, base)


async def entry_for(gateway: Gateway, request_id: str) -> dict[str, Any]:
    return await asyncio.to_thread(gateway.access_entry, request_id)


# --- through the gateway to a real controller ----------------------------------------------------------------------


async def test_the_api_answers_as_the_controller_does(api: GatewayApi) -> None:
    status, body, headers = await api.request("GET", "")
    async with aiohttp.ClientSession() as direct:
        async with direct.get(f"{api.platform.api_host}/api/v1") as response:
            assert (status, body) == (response.status, await response.json())
    assert status == 200
    assert NGINX_REQUEST_ID.match(headers["X-Request-ID"])
    assert len(headers.getall("X-Request-ID")) == 1


async def test_https_is_refused_by_a_client_that_does_not_trust_the_certificate(gateway: Gateway) -> None:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ssl.create_default_context())) as session:
        with pytest.raises(aiohttp.ClientConnectorCertificateError):
            await session.get(f"{gateway.https_url}/api/v1")


async def test_a_blocking_invoke_and_its_activation(api: GatewayApi, gateway: Gateway) -> None:
    scheme = urlsplit(api.base).scheme
    await api.put_action(f"gw-echo-{scheme}", ECHO)
    status, record, headers = await api.invoke(f"gw-echo-{scheme}", {"name": "Ada"}, blocking="true")
    assert status == 200, record
    assert record["response"]["result"] == {"greeting": "hello Ada"}
    assert record["response"]["success"] is True
    status, fetched, _ = await api.request("GET", f"namespaces/_/activations/{record['activationId']}")
    assert status == 200
    assert fetched["activationId"] == record["activationId"]
    assert fetched["response"]["result"] == {"greeting": "hello Ada"}
    logged = await entry_for(gateway, headers["X-Request-ID"])
    assert (logged["status"], logged["upstream_status"], logged["scheme"]) == (200, "200", scheme)
    assert logged["upstream_addr"] == upstream_of(api.platform)


async def test_the_controllers_401_passes_through_unchanged(api: GatewayApi) -> None:
    uuid = api.platform.auth.split(":")[0]
    sent_id = f"gw-test-{urlsplit(api.base).scheme}-401"
    status, body, headers = await api.request(
        "GET", "namespaces/_/actions", auth=f"{uuid}:wrong", headers={"X-Request-ID": sent_id})
    direct = Api(api.platform, api.session)
    expected = await direct.request("GET", "namespaces/_/actions", auth=f"{uuid}:wrong",
                                    headers={"X-Request-ID": sent_id})
    assert status == 401
    assert (status, body) == expected[:2]
    # the client's request id became the controller's transaction id
    assert body == {"error": "The supplied authentication is invalid", "code": sent_id}
    assert headers["X-Request-ID"] == sent_id
    assert headers["WWW-Authenticate"] == expected[2]["WWW-Authenticate"]


async def test_without_a_request_id_the_gateways_id_is_the_transaction_id(api: GatewayApi, gateway: Gateway) -> None:
    async with api.session.get(api.url("namespaces/_/actions")) as response:
        assert response.status == 401
        body = await response.json()
    request_id = response.headers["X-Request-ID"]
    assert NGINX_REQUEST_ID.match(request_id)
    assert body["code"] == request_id
    assert (await entry_for(gateway, request_id))["upstream_status"] == "401"


async def test_a_request_id_that_is_not_a_token_is_replaced(api: GatewayApi) -> None:
    status, body, headers = await api.request("GET", "namespaces/_/actions", auth="x:y",
                                              headers={"X-Request-ID": 'a"b' + "x" * 200})
    assert status == 401
    assert NGINX_REQUEST_ID.match(headers["X-Request-ID"])
    assert body["code"] == headers["X-Request-ID"]


async def test_a_two_megabyte_invoke_gets_the_controllers_413(api: GatewayApi, gateway: Gateway) -> None:
    await api.put_action("gw-big", ECHO)
    big = b'{"x": "' + b"a" * (2 * MB) + b'"}'
    status, body, headers = await api.request(
        "POST", "namespaces/_/actions/gw-big", data=io.BytesIO(big), params={"blocking": "true"},
        headers={"Content-Type": "application/json"})
    assert status == 413
    assert body == {"error": f"Request larger than allowed: {len(big)} > {MB} bytes.", "code": headers["X-Request-ID"]}
    assert (await entry_for(gateway, headers["X-Request-ID"]))["upstream_status"] == "413"


async def test_a_sixty_megabyte_body_gets_the_gateways_413(api: GatewayApi, gateway: Gateway) -> None:
    huge = b"a" * (60 * MB)
    status, body, headers = await api.request(
        "PUT", "namespaces/_/actions/gw-huge", data=io.BytesIO(huge), headers={"Content-Type": "application/json"})
    assert status == 413
    assert headers["Content-Type"] == "application/json"
    assert body == {"error": f"Request larger than allowed: {len(huge)} > {50 * MB} bytes.",
                    "code": headers["X-Request-ID"]}
    logged = await entry_for(gateway, headers["X-Request-ID"])
    assert logged["upstream_addr"] == ""  # never reached a controller


# --- a controller that goes away and comes back --------------------------------------------------------------------


async def test_with_the_controller_down_the_gateway_answers_503_and_recovers(tmp_path: Path) -> None:
    platform = Platform(data_dir=tmp_path / "standalone", containers="process")
    await asyncio.to_thread(platform.start)
    try:
        with nginx_gateway(tmp_path / "gateway", [upstream_of(platform)]) as gateway:
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=gateway.ssl_context())) as session:
                api = GatewayApi(platform, session, gateway.https_url)
                await api.put_action("gw-outage", ECHO)
                status, before, _ = await api.invoke("gw-outage", {"name": "before"}, blocking="true")
                assert status == 200, before

                await asyncio.to_thread(platform.stop)
                for method, path in (("GET", ""), ("POST", "namespaces/_/actions/gw-outage")):
                    status, body, headers = await api.request(method, path, json={} if method == "POST" else None,
                                                              headers={"X-Request-ID": f"outage-{method}"})
                    assert status == 503
                    assert headers["Content-Type"] == "application/json"
                    assert body == {"error": "The service is temporarily unavailable. Please try again later.",
                                    "code": f"outage-{method}"}

                # standalone picks a new free port on every start: point the gateway at it
                await asyncio.to_thread(platform.start)
                await asyncio.to_thread(gateway.reload, [upstream_of(platform)])
                status, after, _ = await api.invoke("gw-outage", {"name": "after"}, blocking="true")
                assert status == 200, after
                assert after["response"]["result"] == {"greeting": "hello after"}
                status, old, _ = await api.request("GET", f"namespaces/_/activations/{before['activationId']}")
                assert status == 200 and old["response"]["result"] == {"greeting": "hello before"}
    finally:
        await asyncio.to_thread(platform.stop)


async def test_a_second_controller_answers_when_the_first_is_down(platform: Platform, tmp_path: Path) -> None:
    dead = f"127.0.0.1:{free_port()}"
    with nginx_gateway(tmp_path / "gateway", [dead, upstream_of(platform)]) as gateway:
        async with aiohttp.ClientSession() as session:
            api = GatewayApi(platform, session, gateway.http_url)
            for _ in range(6):
                status, body, _ = await api.request("GET", "namespaces/_/actions")
                assert status == 200, body


# --- what nginx sends upstream: headers and keep-alive -------------------------------------------------------------


@contextlib.asynccontextmanager
async def reporting_upstream() -> AsyncIterator[tuple[str, list[dict[str, Any]]]]:
    """An HTTP server on a free loopback port that records every request (headers, version, the client port of the
    connection it came on) and answers with that record; `/unavailable` answers the controller's 503 body."""
    seen: list[dict[str, Any]] = []

    async def report(request: web.Request) -> web.Response:
        peer = request.transport.get_extra_info("peername") if request.transport else None
        record = {"headers": dict(request.headers), "version": f"{request.version.major}.{request.version.minor}",
                  "path": request.path_qs, "peer_port": peer[1] if peer else None}
        seen.append(record)
        if request.path == "/unavailable":
            return web.json_response({"error": "No invokers available.", "code": "from-upstream"}, status=503)
        return web.json_response(record)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", report)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    try:
        yield f"127.0.0.1:{port}", seen
    finally:
        await runner.cleanup()


async def test_forwarded_headers_and_upstream_keepalive(tmp_path: Path) -> None:
    async with reporting_upstream() as (upstream, seen):
        gateway_cm = nginx_gateway(tmp_path / "gateway", [upstream])
        gateway = await asyncio.to_thread(gateway_cm.__enter__)
        try:
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=gateway.ssl_context())) as session:
                for _ in range(20):
                    async with session.get(f"{gateway.https_url}/api/v1/web/guest/default/x.json?a=1") as response:
                        assert response.status == 200
                        echoed = await response.json()
                async with session.get(f"{gateway.https_url}/unavailable") as response:
                    assert response.status == 503
                    assert await response.json() == {"error": "No invokers available.", "code": "from-upstream"}
                    assert response.headers["Content-Type"].startswith("application/json")
        finally:
            await asyncio.to_thread(gateway_cm.__exit__, None, None, None)

    headers = echoed["headers"]
    assert echoed["path"] == "/api/v1/web/guest/default/x.json?a=1"
    assert echoed["version"] == "1.1"
    assert headers["Host"] == f"127.0.0.1:{gateway.config.https_port}"
    assert headers["X-Forwarded-For"] == "127.0.0.1"
    assert headers["X-Forwarded-Proto"] == "https"
    assert NGINX_REQUEST_ID.match(headers["X-Request-ID"])
    assert "close" not in headers.get("Connection", "").lower()
    # 21 requests from one worker over kept-alive connections: one upstream connection, not one per request
    assert len(seen) == 21
    assert len({record["peer_port"] for record in seen}) == 1


# --- the rendered configuration ------------------------------------------------------------------------------------


def test_the_rendered_config_keeps_connections_and_outwaits_the_blocking_wait(gateway: Gateway) -> None:
    text = gateway.config_file.read_text()
    for directive in ("keepalive 32;", "proxy_http_version 1.1;", 'proxy_set_header Connection "";',
                      "proxy_read_timeout 75s;", "proxy_send_timeout 75s;", "client_max_body_size 50m;",
                      "proxy_buffering on;", "daemon off;"):
        assert directive in text, directive
    assert "{{" not in text


def test_a_production_config_passes_nginx_t(tmp_path: Path) -> None:
    """The docker-compose shape: controller names, all interfaces, the image's user, logs to the container's
    streams. `nginx -t` parses it and opens its files (the upstream names must resolve, so localhost stands in)."""
    cert, key = ensure_certificate(tmp_path / "certs")
    config = GatewayConfig(
        upstreams=["localhost:3233", "127.0.0.1:3234"], run_dir=tmp_path / "run", http_port=80, https_port=443,
        cert_file=cert, key_file=key, user="nobody nogroup", access_log="/dev/stdout", error_log="/dev/stderr")
    text = render(config)
    assert "server localhost:3233;\n        server 127.0.0.1:3234;" in text
    assert "listen 80;" in text and "listen 443 ssl;" in text
    (tmp_path / "run").mkdir()
    conf = tmp_path / "nginx.conf"
    conf.write_text(text)
    done = subprocess.run([ensure_nginx(), "-t", "-c", str(conf), "-p", f"{tmp_path / 'run'}/", "-e", "/dev/stderr"],
                          capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 0, done.stderr
    assert "test is successful" in done.stderr


@pytest.mark.parametrize(("change", "complaint"), [
    ({"upstreams": []}, "at least one upstream"),
    ({"upstreams": ["controller"]}, "host:port"),
    ({"upstreams": ["controller:3233; evil"]}, "host:port"),
    ({"http_port": None, "https_port": None}, "at least one of"),
    ({"https_port": 8443}, "cert_file and key_file"),
    ({"proxy_timeout_s": 60}, "60 s blocking wait"),
    ({"run_dir": Path("/tmp/with space")}, "run_dir"),
    ({"listen_address": "example.com"}, "listen_address"),
])
def test_the_renderer_refuses_bad_parameters(change: dict[str, Any], complaint: str) -> None:
    config = GatewayConfig(upstreams=["controller:3233"], run_dir=Path("/run/gateway"), http_port=8080)
    with pytest.raises(GatewayConfigError, match=complaint):
        render(replace(config, **change))


async def test_the_access_log_is_json_lines(api: GatewayApi, gateway: Gateway) -> None:
    await api.request("GET", "")
    lines = gateway.access_log.read_text().splitlines()
    assert lines
    for line in lines:
        entry = json.loads(line)
        assert {"request_id", "status", "upstream_response_time", "upstream_status"} <= entry.keys()
