"""LoopBack as a service, end to end: the seeds' walk-through through the platform's REST API, against real
PostgreSQL, MariaDB and Mosquitto servers and a CouchDB-compatible registry, all started by the tests.

Tenants call `/api/{apiId of whisk.system}/loopback/...` (the routes the catalog installs) with their own keys; the
routes run the `/whisk.system/loopback` Node.js web actions, which keep datasources and models in the registry and
reach the tenants' databases through LoopBack's connectors.
"""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import pytest

from controller.system import api_path
from invoker.containers.docker import DockerContainerFactory
from tests.e2e.distributed import DistributedPlatform
from tests.e2e.platform import Api, Platform
from tests.services.couchdb import CouchServer, couchdb_server
from tests.services.mariadb import MariaDBServer, mariadb_server
from tests.services.mosquitto import MosquittoServer, mosquitto_server
from tests.services.postgres import PostgresServer, postgres_server
from whisk.config import InvokerSettings

pytestmark = pytest.mark.e2e

ROUTES = api_path("/loopback")


@pytest.fixture(scope="module", params=["process", "docker", "distributed"])
def containers(request: pytest.FixtureRequest) -> str:
    """Standalone on process or Docker containers, or the distributed stack (Docker containers, nginx in front)."""
    return str(request.param)


@pytest.fixture(scope="module")
def service_host(containers: str) -> str:
    """Where the test servers listen: loopback for process containers; for Docker containers, the host's address on
    the actions' network (the platform's own ports stay on loopback, out of their reach)."""
    if containers == "process":
        return "127.0.0.1"
    # both Docker platforms put action containers on the same network

    async def gateway() -> str:
        factory = DockerContainerFactory(InvokerSettings(containers="docker"))
        try:
            return await factory.actions_gateway()
        finally:
            await factory.close()

    return asyncio.run(gateway())


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory, service_host: str) -> Iterator[CouchServer]:
    with couchdb_server(tmp_path_factory.mktemp("registry"), host=service_host) as server:
        yield server


@pytest.fixture(scope="module")
def postgres(tmp_path_factory: pytest.TempPathFactory, service_host: str) -> Iterator[PostgresServer]:
    with postgres_server(tmp_path_factory.mktemp("postgres"), host=service_host) as server:
        yield server


@pytest.fixture(scope="module")
def mariadb(tmp_path_factory: pytest.TempPathFactory, service_host: str) -> Iterator[MariaDBServer]:
    with mariadb_server(tmp_path_factory.mktemp("mariadb"), host=service_host) as server:
        yield server


@pytest.fixture(scope="module")
def mosquitto(tmp_path_factory: pytest.TempPathFactory, service_host: str) -> Iterator[MosquittoServer]:
    with mosquitto_server(tmp_path_factory.mktemp("mosquitto"), host=service_host) as server:
        yield server


@pytest.fixture(scope="module")
def loopback_platform(
    tmp_path_factory: pytest.TempPathFactory, containers: str, registry: CouchServer
) -> Iterator[Platform]:
    data_dir = tmp_path_factory.mktemp(f"loopback-{containers}")
    env = {"PYWHISK_LOOPBACK_REGISTRY_URL": registry.url, "PYWHISK_LOOPBACK_REGISTRY_PREFIX": "lb_"}
    platform: Platform | DistributedPlatform
    if containers == "distributed":
        platform = DistributedPlatform(data_dir=data_dir, env=env)
    else:
        platform = Platform(data_dir=data_dir, containers=containers, env=env)
    platform.start()
    yield platform
    platform.stop()


class Tenant:
    """One namespace calling the LoopBack routes with its own key, remembering every response body it saw."""

    def __init__(self, api: Api, name: str, auth: str) -> None:
        self.api = api
        self.name = name
        self.auth = auth
        self.seen: list[str] = []

    async def call(self, method: str, path: str, body: Any = None, query: dict[str, str] | None = None,
                   auth: str | None = None) -> tuple[int, Any]:
        url = f"{self.api.platform.api_host}{ROUTES}{path}"
        headers = self.api.platform.headers(auth or self.auth)
        async with self.api.session.request(method, url, json=body, params=query, headers=headers) as response:
            text = await response.text()
        self.seen.append(text)
        return response.status, json.loads(text) if text else None

    async def records_url(self, model: dict[str, Any]) -> str:
        return f"/{self.name}/{model['id']}/{model['name']}"


@pytest.fixture
async def api(loopback_platform: Platform) -> AsyncIterator[Api]:
    async with aiohttp.ClientSession() as session:
        yield Api(loopback_platform, session)


def new_tenant(api: Api, prefix: str) -> Tenant:
    """A subject with a namespace of its own, named `prefix` + random hex."""
    name = f"{prefix}{secrets.token_hex(4)}"
    return Tenant(api, name, api.platform.admin("user", "create", name).strip())


def postgres_settings(server: PostgresServer, password: str | None = None) -> dict[str, Any]:
    return {"host": server.host, "port": server.port, "database": server.database, "user": server.user,
            "password": password or server.password}


async def test_the_walkthrough_on_postgresql(api: Api, postgres: PostgresServer) -> None:
    tenant = new_tenant(api, "lbwalk")
    table = f"contact_{secrets.token_hex(3)}"
    postgres.psql(f"CREATE TABLE {table} (id serial PRIMARY KEY, name text NOT NULL, email text, age integer)")
    postgres.psql(f"INSERT INTO {table} (name, email, age) VALUES ('Grace', 'grace@example.org', 85)")

    status, datasource = await tenant.call("POST", "/datasources", {
        "name": "crm", "connector": "postgresql", "settings": postgres_settings(postgres)})
    assert status == 201, datasource
    ds = datasource["id"]
    status, body = await tenant.call("GET", f"/datasources/{ds}/status")
    assert status == 200, body
    status, definitions = await tenant.call("GET", f"/datasources/{ds}/definitions")
    assert status == 200, definitions
    assert table in [d["name"] for d in definitions]
    status, schema = await tenant.call("GET", f"/datasources/{ds}/schemas/{table}")
    assert status == 200, schema
    assert {"id", "name", "email", "age"} <= set(schema["properties"])

    status, model = await tenant.call("POST", "/models", {
        "name": "Contact", "datasourceId": ds, "table": table, "discover": True})
    assert status == 201, model
    records = await tenant.records_url(model)

    status, ada = await tenant.call("POST", records, {"name": "Ada", "email": "ada@example.org", "age": 36})
    assert status == 201, ada
    assert postgres.psql(f"SELECT name, age FROM {table} WHERE id = {int(ada['id'])}") == "Ada|36\n"

    status, found = await tenant.call("GET", records, query={"filter": json.dumps(
        {"where": {"age": {"gt": 40}}, "order": "name ASC", "fields": {"name": True}})})
    assert status == 200, found
    assert found == [{"name": "Grace"}]
    status, counted = await tenant.call("GET", f"{records}/count", query={"where": json.dumps({"name": "Ada"})})
    assert (status, counted) == (200, {"count": 1})

    status, patched = await tenant.call("PATCH", f"{records}/{ada['id']}", {"email": "ada@lovelace.org"})
    assert status == 200, patched
    assert postgres.psql(f"SELECT email FROM {table} WHERE id = {int(ada['id'])}") == "ada@lovelace.org\n"
    status, replaced = await tenant.call("PUT", f"{records}/{ada['id']}", {"name": "Ada Lovelace", "age": 37})
    assert status == 200, replaced
    assert postgres.psql(f"SELECT name, age, email IS NULL FROM {table} WHERE id = {int(ada['id'])}") \
        == "Ada Lovelace|37|t\n"
    status, one = await tenant.call("GET", f"{records}/{ada['id']}")
    assert status == 200 and one["name"] == "Ada Lovelace", one

    status, _ = await tenant.call("DELETE", f"{records}/{ada['id']}")
    assert status in (200, 204)
    assert postgres.psql(f"SELECT count(*) FROM {table}") == "1\n"
    status, gone = await tenant.call("GET", f"{records}/{ada['id']}")
    assert status == 404, gone
    assert postgres.password not in "".join(tenant.seen)


async def test_tenants_have_their_own_models_urls_and_data(
    api: Api, postgres: PostgresServer, mariadb: MariaDBServer
) -> None:
    alice, bob = new_tenant(api, "lba"), new_tenant(api, "lbb")
    pg_table = f"contact_{secrets.token_hex(3)}"
    postgres.psql(f"CREATE TABLE {pg_table} (id serial PRIMARY KEY, name text)")
    my_table = f"contact_{secrets.token_hex(3)}"
    mariadb.sql(f"CREATE TABLE {my_table} (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(100))")

    status, ds_a = await alice.call("POST", "/datasources", {"connector": "postgresql",
                                                             "settings": postgres_settings(postgres)})
    assert status == 201, ds_a
    status, ds_b = await bob.call("POST", "/datasources", {"connector": "mysql", "settings": {
        "host": mariadb.host, "port": mariadb.port, "database": mariadb.database, "user": mariadb.user,
        "password": mariadb.password}})
    assert status == 201, ds_b
    status, definitions = await bob.call("GET", f"/datasources/{ds_b['id']}/definitions")
    assert status == 200 and my_table in [d["name"] for d in definitions], definitions

    status, model_a = await alice.call("POST", "/models", {"name": "Contact", "datasourceId": ds_a["id"],
                                                           "table": pg_table, "discover": True})
    assert status == 201, model_a
    status, model_b = await bob.call("POST", "/models", {"name": "Contact", "datasourceId": ds_b["id"],
                                                         "table": my_table, "discover": True})
    assert status == 201, model_b
    url_a, url_b = await alice.records_url(model_a), await bob.records_url(model_b)
    assert url_a != url_b

    assert (await alice.call("POST", url_a, {"name": "from alice"}))[0] == 201
    assert (await bob.call("POST", url_b, {"name": "from bob"}))[0] == 201
    assert [r["name"] for r in (await alice.call("GET", url_a))[1]] == ["from alice"]
    assert [r["name"] for r in (await bob.call("GET", url_b))[1]] == ["from bob"]
    assert mariadb.sql(f"SELECT name FROM {my_table}") == "from bob\n"

    # bob sees nothing of alice's: not her datasource, not her model, not her records (404, not 403)
    for path in (f"/datasources/{ds_a['id']}", f"/datasources/{ds_a['id']}/definitions", f"/models/{model_a['id']}",
                 url_a, f"/{bob.name}/{model_a['id']}/Contact"):
        status, body = await bob.call("GET", path)
        assert status == 404, (path, body)
    assert (await bob.call("POST", url_a, {"name": "intruder"}))[0] == 404
    assert (await bob.call("DELETE", f"/models/{model_a['id']}"))[0] == 404
    assert [d["id"] for d in (await bob.call("GET", "/datasources"))[1]] == [ds_b["id"]]
    # without a key, nobody gets in
    status, _ = await alice.call("GET", url_a, auth="00000000-0000-4000-8000-000000000000:nope")
    assert status == 401
    assert postgres.psql(f"SELECT name FROM {pg_table}") == "from alice\n"


async def test_a_deleted_model_answers_404_and_a_new_password_is_used_at_once(
    api: Api, postgres: PostgresServer
) -> None:
    tenant = new_tenant(api, "lbpw")
    role, old_password, new_password = f"lb_{secrets.token_hex(3)}", secrets.token_hex(8), secrets.token_hex(8)
    table = f"item_{secrets.token_hex(3)}"
    postgres.admin_psql(f"CREATE ROLE {role} LOGIN PASSWORD '{old_password}'")
    postgres.psql(f"CREATE TABLE {table} (id serial PRIMARY KEY, label text)")
    postgres.psql(f"GRANT ALL ON {table}, {table}_id_seq TO {role}")
    settings = {**postgres_settings(postgres, old_password), "user": role}
    status, ds = await tenant.call("POST", "/datasources", {"connector": "postgresql", "settings": settings})
    assert status == 201, ds
    status, model = await tenant.call("POST", "/models", {
        "name": "Item", "datasourceId": ds["id"], "table": table,
        "properties": {"id": {"type": "number", "id": True, "generated": True}, "label": "string"}})
    assert status == 201, model
    records = await tenant.records_url(model)
    assert (await tenant.call("POST", records, {"label": "one"}))[0] == 201

    # the password changes, and the connections opened with the old one are closed: the old settings fail
    postgres.admin_psql(f"ALTER ROLE {role} PASSWORD '{new_password}'")
    postgres.admin_psql(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{role}'")
    for _ in range(2):  # the first call may meet the closed connection, the second a refused new one
        status, body = await tenant.call("POST", records, {"label": "two"})
        assert status == 502, body
    status, body = await tenant.call("PUT", f"/datasources/{ds['id']}", {
        "connector": "postgresql", "settings": {**settings, "password": new_password}})
    assert status == 200, body
    status, body = await tenant.call("POST", records, {"label": "three"})
    assert status == 201, body
    assert postgres.psql(f"SELECT label FROM {table} ORDER BY id") == "one\nthree\n"

    status, _ = await tenant.call("DELETE", f"/models/{model['id']}")
    assert status in (200, 204)
    for method in ("GET", "POST"):
        status, body = await tenant.call(method, records, {"label": "four"} if method == "POST" else None)
        assert status == 404, body
    status, body = await tenant.call("GET", f"/models/{model['id']}")
    assert status == 404, body

    seen = "".join(tenant.seen)
    assert old_password not in seen and new_password not in seen
    activations = await _activations_text(api, tenant)
    assert "createRecord" in activations  # the web actions' records are there to search
    assert old_password not in activations and new_password not in activations


async def _activations_text(api: Api, tenant: Tenant) -> str:
    """The tenant's activation records as its API shows them, and every activation record in the platform's store
    (the web actions' records are whisk.system's), as text: the SQLite files of standalone, or the activations
    database of the distributed stack's CouchDB."""
    status, listed, _ = await api.request("GET", "namespaces/_/activations", params={"docs": "true", "limit": "200"},
                                          auth=tenant.auth)
    assert status == 200, listed
    platform = api.platform
    if isinstance(platform, DistributedPlatform):
        couch, prefix = platform.store_url.split("/?prefix=")
        token = base64.b64encode(f"admin:{platform.couchdb.password}".encode()).decode()
        url = f"http://{platform.couchdb.host}:{platform.couchdb.port}/{prefix}activations/_all_docs"
        async with api.session.get(url, params={"include_docs": "true"},
                                   headers={"Authorization": f"Basic {token}"}) as response:
            stored = await response.text()
            assert response.status == 200, stored
        assert couch and '"rows"' in stored
        return json.dumps(listed) + stored
    store = platform.data_dir / "pywhisk.db"
    files = [store, store.with_name("pywhisk.db-wal")]
    assert store.exists()
    return json.dumps(listed) + "".join(f.read_bytes().decode("latin-1") for f in files if f.exists())


async def test_bad_inputs_get_clear_errors_and_break_nothing(api: Api, postgres: PostgresServer) -> None:
    tenant = new_tenant(api, "lbbad")
    cases = [
        ({"connector": "oracle-of-delphi", "settings": {}}, 400, "connector"),
        ({"connector": "postgresql", "settings": {"host": "127.0.0.1", "port": "not a port"}}, 400, "port"),
        ({"connector": "postgresql", "settings": {"hots": "127.0.0.1"}}, 400, "hots"),
        ({"settings": {}}, 400, "connector"),
    ]
    for body, expected, word in cases:
        status, answer = await tenant.call("POST", "/datasources", body)
        assert status == expected, (body, answer)
        assert word in answer["error"], answer

    status, unreachable = await tenant.call("POST", "/datasources", {"connector": "postgresql", "settings": {
        "host": "127.0.0.1", "port": 1, "database": "nothing", "user": "nobody", "password": "secret-pw-1"}})
    assert status == 201, unreachable
    status, body = await tenant.call("GET", f"/datasources/{unreachable['id']}/status")
    assert status == 502, body
    assert "secret-pw-1" not in json.dumps(body)

    table = f"thing_{secrets.token_hex(3)}"
    postgres.psql(f"CREATE TABLE {table} (id serial PRIMARY KEY, size integer NOT NULL)")
    status, ds = await tenant.call("POST", "/datasources", {"connector": "postgresql",
                                                            "settings": postgres_settings(postgres)})
    assert status == 201, ds
    status, body = await tenant.call("POST", "/models", {"name": "bad name!", "datasourceId": ds["id"],
                                                         "properties": {"x": "string"}})
    assert status == 400, body
    status, body = await tenant.call("POST", "/models", {"name": "Thing", "datasourceId": ds["id"],
                                                         "properties": {"x": "no-such-type"}})
    assert status == 400, body
    status, body = await tenant.call("POST", "/models", {"name": "Thing", "datasourceId": "nope", "discover": True})
    assert status == 404, body
    status, model = await tenant.call("POST", "/models", {"name": "Thing", "datasourceId": ds["id"], "table": table,
                                                          "discover": True})
    assert status == 201, model
    records = await tenant.records_url(model)
    for query in ({"filter": "{not json"}, {"filter": json.dumps({"where": {"size": 1}, "limit": -3})},
                  {"filter": json.dumps({"bogus": 1})}):
        status, body = await tenant.call("GET", records, query=query)
        assert status == 400, (query, body)
        assert "filter" in body["error"], body
    status, body = await tenant.call("POST", records, {"size": "huge"})
    assert status == 400, body
    status, body = await tenant.call("POST", records, {})
    assert status == 400, body

    # and everything still works, for this tenant and the others
    status, created = await tenant.call("POST", records, {"size": 3})
    assert status == 201, created
    status, found = await tenant.call("GET", records)
    assert status == 200 and [r["size"] for r in found] == [3], found


@pytest.mark.parametrize("connector", ["postgresql", "couchdb"])
async def test_record_changes_reach_an_mqtt_subscriber(
    api: Api, connector: str, postgres: PostgresServer, registry: CouchServer, mosquitto: MosquittoServer
) -> None:
    tenant = new_tenant(api, "lbmq")
    table = f"account_{secrets.token_hex(3)}"
    couch = CouchDatabase(registry, table)  # the CouchDB flavour keeps its records on the registry's server
    if connector == "postgresql":
        postgres.psql(f"CREATE TABLE {table} (id serial PRIMARY KEY, name text)")
        settings = postgres_settings(postgres)
        model_spec: dict[str, Any] = {"table": table, "discover": True}
    else:
        await couch.create()
        settings = {"url": f"http://{registry.host}:{registry.port}", "database": table, "username": "admin",
                    "password": registry.password}
        model_spec = {"properties": {"id": {"type": "string", "id": True}, "name": "string"}}
    status, ds = await tenant.call("POST", "/datasources", {"connector": connector, "settings": settings})
    assert status == 201, ds
    status, model = await tenant.call("POST", "/models", {"name": "Account", "datasourceId": ds["id"],
                                                          **model_spec})
    assert status == 201, model
    topic = f"/v1/{tenant.name}/accounts"

    # as the seed's demo: the model's changes feed a trigger, a rule publishes each to the broker
    async def ok(method: str, path: str, body: Any = None, params: dict[str, str] | None = None) -> Any:
        status, answer, _ = await api.request(method, path, json=body, params=params, auth=tenant.auth)
        assert status == 200, (path, answer)
        return answer

    await ok("PUT", "namespaces/_/packages/broker", {"binding": {"namespace": "whisk.system", "name": "messaging"},
                                                     "parameters": [{"key": "url", "value": mosquitto.url},
                                                                    {"key": "topic", "value": topic}]})
    await ok("PUT", "namespaces/_/triggers/accountChanged", {})
    await ok("POST", "namespaces/whisk.system/actions/loopback/changes", {
        "lifecycleEvent": "CREATE", "triggerName": f"/{tenant.name}/accountChanged", "authKey": tenant.auth,
        "modelId": model["id"]}, params={"blocking": "true", "result": "true"})
    await ok("PUT", "namespaces/_/rules/publishAccounts", {"trigger": "/_/accountChanged",
                                                            "action": "/_/broker/mqttPublish"})

    records = await tenant.records_url(model)
    with mosquitto.subscribe(topic) as subscription:
        # one change at a time: CouchDB's _changes lists a document once, at its latest revision, so an update
        # and a delete written before the follower's next poll would reach it as the delete alone
        status, created = await tenant.call("POST", records, {"name": "James Bond"})
        assert status == 201, created
        messages = await asyncio.to_thread(subscription.messages, 1, 60.0)
        status, _ = await tenant.call("PATCH", f"{records}/{created['id']}", {"name": "007"})
        assert status == 200
        messages += await asyncio.to_thread(subscription.messages, 1, 60.0)
        status, _ = await tenant.call("DELETE", f"{records}/{created['id']}")
        assert status in (200, 204)
        messages += await asyncio.to_thread(subscription.messages, 1, 60.0)
        if connector == "couchdb":
            # CouchDB's own changes feed also sees what other applications write to the model's database
            await couch.put("m", {"loopback__model__name": "Account", "name": "Moneypenny"})
            messages += await asyncio.to_thread(subscription.messages, 1, 60.0)
    bodies = [json.loads(payload) for _topic, payload in messages]
    assert [b["op"] for b in bodies[:3]] == ["create", "update", "delete"]
    assert all(b["model"] == "Account" and str(b["id"]) == str(created["id"]) for b in bodies[:3])
    assert bodies[0]["record"]["name"] == "James Bond" and bodies[1]["record"]["name"] == "007"
    if connector == "couchdb":
        assert (bodies[3]["op"], bodies[3]["id"], bodies[3]["record"]["name"]) == ("create", "m", "Moneypenny")


class CouchDatabase:
    """A database on the test CouchDB server, written to as another application would."""

    def __init__(self, server: CouchServer, name: str) -> None:
        self.url = f"http://{server.host}:{server.port}/{name}"
        token = base64.b64encode(f"admin:{server.password}".encode()).decode()
        self.headers = {"Authorization": f"Basic {token}"}

    async def _send(self, method: str, path: str = "", body: Any = None) -> None:
        async with aiohttp.ClientSession(headers=self.headers) as session:
            async with session.request(method, self.url + path, json=body) as response:
                assert response.status in (200, 201), await response.text()

    async def create(self) -> None:
        await self._send("PUT")

    async def put(self, doc_id: str, body: dict[str, Any]) -> None:
        await self._send("PUT", f"/{doc_id}", body)
