"""The LoopBack catalog's actions (catalog/loopback/actions) and mqttPublish (catalog/messaging/actions), driven
directly with `node`, against real servers: the registry on pouchdb-server, tenants' databases on PostgreSQL,
MariaDB and CouchDB, and a mosquitto broker.

Each call runs one exported function the way the runtime proxy does: `__OW_NAMESPACE` and the registry variables
in the environment, the params as the argument, modules from the runtime image's node_modules through NODE_PATH.
`Node.call` starts a fresh process per call (a cold container); `Node.warm()` keeps one process for several calls
(a warm container, where DataSources are cached). Every call's whole output (result, stdout, stderr) is checked
against the secrets the test registered: no password may ever leave an action.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import subprocess
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.services.couchdb import couchdb_server
from tests.services.mariadb import mariadb_server
from tests.services.mosquitto import mosquitto_server
from tests.services.npm import npm_ci
from tests.services.postgres import postgres_server

ROOT = Path(__file__).resolve().parents[2]
RUNTIME_DIR = ROOT / "runtime-images" / "nodejs"
NODE_MODULES = RUNTIME_DIR / "node_modules"
LOOPBACK = ROOT / "catalog" / "loopback" / "actions"
MESSAGING = ROOT / "catalog" / "messaging" / "actions"
OWNER = "whisk.system"
CALL_TIMEOUT_S = 60

# One call per input line: {"module", "op", "params", "env"} -> one output line with the result. The environment is
# set per call, as the proxy sets __OW_* per /run.
RUNNER = r"""
const readline = require('readline');
const lines = readline.createInterface({ input: process.stdin });
let chain = Promise.resolve();
lines.on('line', (line) => {
  chain = chain.then(async () => {
    const { module, op, params, env } = JSON.parse(line);
    Object.assign(process.env, env);
    const result = await require(module)[op](params);
    await new Promise((done) => process.stdout.write(JSON.stringify(result) + '\n', done));
  });
});
lines.on('close', () => chain.then(() => process.exit(0), (err) => { console.error(err); process.exit(1); }));
"""


@pytest.fixture(scope="module")
def node_modules() -> Path:
    npm_ci(RUNTIME_DIR, NODE_MODULES / "loopback-datasource-juggler" / "package.json")
    return NODE_MODULES


class Caller:
    """The two ways the actions are invoked, on top of `call(op, params, namespace, module)`."""

    def call(self, op: str, params: dict[str, Any], namespace: str, module: Path = LOOPBACK) -> Any:
        raise NotImplementedError

    def direct(self, op: str, caller: str, /, **params: Any) -> Any:
        """`wsk action invoke /whisk.system/loopback/<op> -p ...` by `caller`: it runs in the caller's namespace."""
        return self.call(op, params, caller)

    def web(self, op: str, user: str | None, method: str, body: Any = None, query: str = "", **path: str) -> Any:
        """Through the API routes: a raw-http web action of whisk.system, the caller in `__ow_user`."""
        return self.call(op, web_params(user, method, body, query, **path), OWNER)


@dataclass
class Node(Caller):
    """Runs the actions' functions in node processes with the registry's environment: a fresh process per call
    (a cold container), or `warm()` for one process serving many calls."""

    registry_url: str
    prefix: str
    secrets: set[str] = field(default_factory=set)

    def env(self) -> dict[str, str]:
        env = {key: value for key, value in os.environ.items() if not key.startswith(("LOOPBACK_", "__OW_", "DEBUG"))}
        return {**env, "NODE_PATH": str(NODE_MODULES)}

    def line(self, op: str, params: dict[str, Any], namespace: str, module: Path = LOOPBACK) -> str:
        env = {"__OW_NAMESPACE": namespace, "LOOPBACK_REGISTRY_URL": self.registry_url,
               "LOOPBACK_REGISTRY_PREFIX": self.prefix}
        return json.dumps({"module": str(module), "op": op, "params": params, "env": env})

    def check_secrets(self, output: str) -> None:
        for secret in self.secrets:
            assert secret not in output, f"a secret leaked into the output:\n{output}"

    def call(self, op: str, params: dict[str, Any], namespace: str, module: Path = LOOPBACK) -> Any:
        done = subprocess.run(
            ["node", "-e", RUNNER], input=self.line(op, params, namespace, module) + "\n", capture_output=True,
            text=True, env=self.env(), timeout=CALL_TIMEOUT_S, check=False,
        )
        self.check_secrets(done.stdout + done.stderr)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout.strip().splitlines()[-1])

    @contextmanager
    def warm(self) -> Iterator[Warm]:
        with subprocess.Popen(
            ["node", "-e", RUNNER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=self.env(),
        ) as process:
            try:
                yield Warm(self, process)
            finally:
                assert process.stdin is not None and process.stderr is not None
                process.stdin.close()
                errors = process.stderr.read()
                process.wait(timeout=CALL_TIMEOUT_S)
                self.check_secrets(errors)  # everything the process logged, over all its calls


@dataclass
class Warm(Caller):
    """One node process kept for several calls, like a warm action container."""

    node: Node
    process: subprocess.Popen[str]

    def call(self, op: str, params: dict[str, Any], namespace: str, module: Path = LOOPBACK) -> Any:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(self.node.line(op, params, namespace, module) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        assert line, "the warm node process ended (see its stderr)"
        self.node.check_secrets(line)
        return json.loads(line)


def web_params(user: str | None, method: str, body: Any = None, query: str = "", **path: str) -> dict[str, Any]:
    params: dict[str, Any] = {
        "__ow_method": method,
        "__ow_headers": {"content-type": "application/json", "accept": "application/json"},
        "__ow_path": "",
        "__ow_query": query,
        **path,
    }
    if user is not None:
        params["__ow_user"] = user
    if body is not None:
        params["__ow_body"] = base64.b64encode(json.dumps(body).encode()).decode()
    return params


def ok(result: Any) -> Any:
    """The body of a successful direct call."""
    assert not (isinstance(result, dict) and "error" in result), result
    return result


def failed(result: Any, status: int) -> str:
    """The message of a failed direct call with `status`."""
    assert isinstance(result, dict) and "error" in result, result
    assert result["error"]["statusCode"] == status, result
    return str(result["error"]["message"])


def web_ok(result: Any, status: int = 200) -> Any:
    assert result["statusCode"] == status, result
    assert result["headers"]["content-type"] == "application/json"
    return result.get("body")


def web_failed(result: Any, status: int) -> str:
    assert result["statusCode"] == status, result
    assert result["body"]["code"] == status, result
    return str(result["body"]["error"])


def query(**values: Any) -> str:
    return urllib.parse.urlencode({key: json.dumps(value) for key, value in values.items()})


# --- servers -----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def couch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with couchdb_server(tmp_path_factory.mktemp("couch")) as server:
        yield server


@pytest.fixture(scope="module")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with postgres_server(tmp_path_factory.mktemp("postgres")) as server:
        yield server


@pytest.fixture(scope="module")
def node(node_modules: Path, couch: Any, postgres: Any) -> Node:
    """Cold calls: a fresh node process each."""
    registry_password = couch.url.split("://", 1)[1].split("@", 1)[0].split(":", 1)[1]
    return Node(couch.url, f"lbtest_{secrets.token_hex(4)}_", {registry_password, postgres.password})


@pytest.fixture
def lb(node: Node) -> Iterator[Warm]:
    """Warm calls: one node process for the test (loading juggler and the connectors once keeps the tests fast)."""
    with node.warm() as warm:
        yield warm


def couch_request(couch: Any, method: str, path: str, body: Any = None) -> Any:
    parsed = urllib.parse.urlsplit(couch.url)
    credentials = base64.b64encode(f"{parsed.username}:{parsed.password}".encode()).decode()
    request = urllib.request.Request(
        f"http://{parsed.hostname}:{parsed.port}{path}", method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Basic {credentials}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


def changes(node: Node, couch: Any, model_id: str) -> list[dict[str, Any]]:
    rows = couch_request(couch, "GET", f"/{node.prefix}changes/_all_docs?include_docs=true")["rows"]
    found = [row["doc"] for row in rows if row["doc"].get("modelId") == model_id]
    return sorted(found, key=lambda doc: doc["time"])


def pg_settings(postgres: Any, **override: Any) -> dict[str, Any]:
    settings = {"host": postgres.host, "port": postgres.port, "user": postgres.user, "password": postgres.password,
                "database": postgres.database}
    return {**settings, **override}


NOTE = {"title": {"type": "string", "required": True}, "stars": "number", "tags": ["string"]}


# --- memory datasources: the whole surface without a database ------------------------------------------------------


def test_memory_datasource_model_and_records_in_direct_mode(node: Node, lb: Warm, couch: Any) -> None:
    ds = ok(lb.direct("createDatasource", "alice", connector="memory", name="scratch"))
    assert ds["connector"] == "memory" and ds["name"] == "scratch" and ds["hasPassword"] is False
    assert ds["id"] in [item["id"] for item in ok(lb.direct("listDatasources", "alice"))]
    assert ok(lb.direct("getDatasource", "alice", datasourceId=ds["id"]))["name"] == "scratch"
    assert ok(lb.direct("datasourceStatus", "alice", datasourceId=ds["id"]))["status"] == "ok"

    model = ok(lb.direct("createModel", "alice", name="Note", datasourceId=ds["id"], properties=NOTE))
    assert model["path"] == f"/alice/{model['id']}/Note"
    assert model["properties"]["stars"] == {"type": "Number"} and "id" not in model["properties"]
    target = {"tenant": "alice", "modelId": model["id"], "modelName": "Note"}

    created = [ok(lb.direct("createRecord", "alice", **target, title=f"n{i}", stars=i, tags=["a"])) for i in (1, 2, 3)]
    assert [record["id"] for record in created] == [1, 2, 3]
    by_stars = {"where": {"stars": {"gte": 2}}, "order": "stars DESC"}
    found = ok(lb.direct("findRecords", "alice", **target, filter=by_stars))
    assert [record["title"] for record in found] == ["n3", "n2"]
    # a cold container sees the same records: a memory datasource's data lives in the registry
    found = ok(node.direct("findRecords", "alice", **target, filter='{"limit": 1, "skip": 1, "fields": ["title"]}'))
    assert found == [{"title": "n2"}]
    assert ok(node.direct("countRecords", "alice", **target, where={"stars": {"lt": 3}})) == {"count": 2}
    assert ok(lb.direct("findRecordById", "alice", **target, recordId="2"))["title"] == "n2"

    patched = ok(lb.direct("patchRecord", "alice", **target, recordId="2", stars=5))
    assert patched == {"id": 2, "title": "n2", "stars": 5, "tags": ["a"]}
    replaced = ok(lb.direct("replaceRecord", "alice", **target, recordId="2", title="two"))
    assert replaced["title"] == "two" and "stars" not in replaced
    assert ok(lb.direct("deleteRecord", "alice", **target, recordId="2")) == {"id": 2, "deleted": True}
    failed(lb.direct("findRecordById", "alice", **target, recordId="2"), 404)
    failed(lb.direct("deleteRecord", "alice", **target, recordId="2"), 404)
    assert ok(lb.direct("countRecords", "alice", **target)) == {"count": 2}

    events = changes(node, couch, model["id"])
    assert [(event["op"], event["id"]) for event in events] == [
        ("create", 1), ("create", 2), ("create", 3), ("update", 2), ("update", 2), ("delete", 2)]
    assert events[3]["record"]["stars"] == 5 and events[-1]["record"] is None
    sources = {(event["tenant"], event["model"], event["datasourceId"]) for event in events}
    assert sources == {("alice", "Note", ds["id"])}

    # a deleted model's records answer 404 at once; the datasource it used can then go
    failed(lb.direct("deleteDatasource", "alice", datasourceId=ds["id"]), 409)
    assert ok(lb.direct("deleteModel", "alice", modelId=model["id"])) == {"id": model["id"], "deleted": True}
    failed(lb.direct("findRecords", "alice", **target), 404)
    failed(lb.direct("getModel", "alice", modelId=model["id"]), 404)
    assert ok(lb.direct("deleteDatasource", "alice", datasourceId=ds["id"]))["deleted"] is True
    failed(lb.direct("getDatasource", "alice", datasourceId=ds["id"]), 404)


def test_memory_datasource_model_and_records_in_web_mode(node: Node, lb: Warm) -> None:
    ds = web_ok(lb.web("createDatasource", "carol", "post", {"connector": "memory"}), 201)
    assert web_ok(lb.web("getDatasource", "carol", "get", datasourceId=ds["id"]))["id"] == ds["id"]
    assert ds["id"] in [item["id"] for item in web_ok(lb.web("listDatasources", "carol", "get"))]
    renamed = web_ok(lb.web("updateDatasource", "carol", "put", {"name": "renamed"}, datasourceId=ds["id"]))
    assert renamed["name"] == "renamed"

    body = {"name": "Task", "datasourceId": ds["id"], "properties": NOTE, "options": {"strict": True}}
    model = web_ok(lb.web("createModel", "carol", "post", body), 201)
    assert model["id"] in [item["id"] for item in web_ok(lb.web("listModels", "carol", "get"))]
    path = {"tenant": "carol", "modelId": model["id"], "modelName": "Task"}
    for i in (1, 2, 3):
        web_ok(lb.web("createRecord", "carol", "post", {"title": f"t{i}", "stars": i}, **path), 201)

    top_two = query(filter={"order": "stars DESC", "limit": 2})
    found = web_ok(lb.web("findRecords", "carol", "get", query=top_two, **path))
    assert [record["title"] for record in found] == ["t3", "t2"]
    # LoopBack's bracket style
    brackets = "filter[where][title]=t2&filter[fields][title]=true"
    found = web_ok(lb.web("findRecords", "carol", "get", query=brackets, **path))
    assert found == [{"title": "t2"}]
    assert web_ok(lb.web("countRecords", "carol", "get", query=query(where={"stars": 3}), **path)) == {"count": 1}
    record = web_ok(lb.web("findRecordById", "carol", "get", recordId="1", **path))
    assert record == {"id": 1, "title": "t1", "stars": 1}
    patched = web_ok(lb.web("patchRecord", "carol", "patch", {"stars": 9}, recordId="1", **path))
    assert patched["stars"] == 9
    replaced = web_ok(lb.web("replaceRecord", "carol", "put", {"id": 1, "title": "one"}, recordId="1", **path))
    assert replaced == {"id": 1, "title": "one"}
    web_ok(lb.web("deleteRecord", "carol", "delete", recordId="1", **path))
    web_failed(lb.web("findRecordById", "carol", "get", recordId="1", **path), 404)

    # strict model: unknown properties and filters on them are refused
    assert "not defined" in web_failed(lb.web("createRecord", "carol", "post", {"title": "x", "nope": 1}, **path), 400)
    web_failed(lb.web("findRecords", "carol", "get", query=query(filter={"where": {"nope": 1}}), **path), 400)
    # a model name in the URL that is not the model's
    web_failed(lb.web("findRecords", "carol", "get", **{**path, "modelName": "Other"}), 404)

    # without an authenticated caller there is no tenant
    web_failed(lb.web("listDatasources", None, "get"), 401)
    web_ok(lb.web("updateModel", "carol", "put", {"name": "Job"}, modelId=model["id"]))
    web_failed(lb.web("findRecords", "carol", "get", **path), 404)  # the URL names the old name now
    web_ok(lb.web("findRecords", "carol", "get", **{**path, "modelName": "Job"}))
    web_ok(lb.web("deleteDatasource", "carol", "delete", query="force=true", datasourceId=ds["id"]))
    web_failed(lb.web("getModel", "carol", "get", modelId=model["id"]), 404)


# --- PostgreSQL ----------------------------------------------------------------------------------------------------


def test_postgres_discovery_model_and_records(node: Node, lb: Warm, postgres: Any) -> None:
    postgres.psql(
        "CREATE TABLE customer (id serial PRIMARY KEY, name text NOT NULL, email varchar(100), age int,"
        " joined timestamptz NOT NULL DEFAULT now())"
    )
    ds = ok(lb.direct("createDatasource", "alice", connector="postgresql", settings=pg_settings(postgres)))
    assert ds["hasPassword"] is True and "password" not in ds["settings"]
    status = ok(lb.direct("datasourceStatus", "alice", datasourceId=ds["id"]))
    assert status == {"status": "ok", "connector": "postgresql"}
    definitions = ok(lb.direct("datasourceDefinitions", "alice", datasourceId=ds["id"]))
    assert {"name": "customer", "type": "table", "owner": "public"} in definitions

    schema = ok(lb.direct("datasourceSchema", "alice", datasourceId=ds["id"], table="customer"))
    props = schema["properties"]
    assert props["id"]["id"] and props["id"]["required"] is False and props["id"]["generated"] is True
    assert props["name"]["required"] is True and props["joined"]["required"] is False
    failed(lb.direct("datasourceSchema", "alice", datasourceId=ds["id"], table="nosuch"), 404)

    model = ok(lb.direct("createModel", "alice", name="Customer", datasourceId=ds["id"], discover=True))
    assert model["table"] == "customer"
    target = {"tenant": "alice", "modelId": model["id"], "modelName": "Customer"}
    ann = ok(lb.direct("createRecord", "alice", **target, name="Ann", age=31))
    assert ann["id"] == 1 and ann["joined"]  # read back: the database's default is in the answer
    ok(lb.direct("createRecord", "alice", **target, name="Bob", age=42, email="bob@example.com"))
    ok(lb.direct("createRecord", "alice", **target, name="Cy", age=19))
    assert postgres.psql("SELECT name, age FROM customer ORDER BY id") == "Ann|31\nBob|42\nCy|19\n"

    found = ok(lb.direct("findRecords", "alice", **target,
                           filter={"where": {"age": {"gt": 20}}, "order": "age DESC", "fields": ["name", "age"]}))
    assert found == [{"name": "Bob", "age": 42}, {"name": "Ann", "age": 31}]
    found = ok(lb.direct("findRecords", "alice", **target, filter={"where": {"or": [{"name": "Cy"}, {"age": 42}]},
                                                                       "order": ["name ASC"], "limit": 1, "skip": 1}))
    assert [record["name"] for record in found] == ["Cy"]
    assert ok(lb.direct("countRecords", "alice", **target, where={"age": {"lt": 40}})) == {"count": 2}
    assert ok(lb.direct("findRecordById", "alice", **target, recordId="2"))["email"] == "bob@example.com"
    failed(lb.direct("findRecordById", "alice", **target, recordId="99"), 404)
    failed(lb.direct("findRecordById", "alice", **target, recordId="abc"), 404)
    # SQL would ignore what is not a column: a typo must not select every row
    for bad_filter in ({"where": {"nmae": "Ann"}}, {"fields": ["nmae"]}, {"include": "orders"},
                       {"where": {"or": {"name": "Ann"}}}):
        assert "invalid filter" in failed(lb.direct("findRecords", "alice", **target, filter=bad_filter), 400)

    assert ok(lb.direct("patchRecord", "alice", **target, recordId="1", age=32))["age"] == 32
    when = "2020-01-02T03:04:05Z"
    replaced = ok(lb.direct("replaceRecord", "alice", **target, recordId="3", name="Cyrus", joined=when))
    assert replaced["name"] == "Cyrus" and replaced["age"] is None
    assert ok(lb.direct("deleteRecord", "alice", **target, recordId="2")) == {"id": 2, "deleted": True}
    assert postgres.psql("SELECT id, name, age FROM customer ORDER BY id") == "1|Ann|32\n3|Cyrus|\n"
    assert postgres.psql("SELECT joined FROM customer WHERE id = 3").startswith("2020-01-02 03:04:05")

    # the database's own refusals: duplicate key 409, a NULL where NOT NULL 400
    failed(lb.direct("createRecord", "alice", **target, id=1, name="Dup"), 400)  # id is generated: not settable
    failed(lb.direct("createRecord", "alice", **target, age=5), 400)
    assert "must be a Number" in failed(lb.direct("createRecord", "alice", **target, name="X", age="old"), 400)


def test_postgres_model_with_properties_creates_its_table_only_when_missing(lb: Warm, postgres: Any) -> None:
    ds = ok(lb.direct("createDatasource", "dora", connector="postgresql", settings={"url": postgres.url}))
    assert ds["settings"]["url"] == f"postgres://{postgres.user}@{postgres.host}:{postgres.port}/{postgres.database}"
    properties = {"code": {"type": "string", "id": True}, "label": {"type": "string", "required": True}, "n": "number"}
    model = ok(lb.direct("createModel", "dora", name="Item", datasourceId=ds["id"], properties=properties,
                           table="items"))
    assert postgres.psql("SELECT count(*) FROM information_schema.tables WHERE table_name = 'items'") == "1\n"
    target = {"tenant": "dora", "modelId": model["id"], "modelName": "Item"}
    assert ok(lb.direct("createRecord", "dora", **target, code="a1", label="first", n=1))["code"] == "a1"
    failed(lb.direct("createRecord", "dora", **target, code="a1", label="again"), 409)  # duplicate key
    assert postgres.psql("SELECT code, label, n FROM items") == "a1|first|1\n"
    # moved to another table (with one more property): that one is created too
    more = {**properties, "note": "string"}
    ok(lb.direct("updateModel", "dora", modelId=model["id"], table="items_v2", properties=more))
    assert postgres.psql("SELECT column_name FROM information_schema.columns WHERE table_name = 'items_v2'"
                         " ORDER BY column_name") == "code\nlabel\nn\nnote\n"
    assert ok(lb.direct("createRecord", "dora", **target, code="b2", label="moved", note="x"))["note"] == "x"

    # an existing table is used as it is, never altered
    postgres.psql("CREATE TABLE legacy (code text PRIMARY KEY, label text, extra int DEFAULT 7)")
    ok(lb.direct("createModel", "dora", name="Legacy", datasourceId=ds["id"], table="legacy",
                   properties={"code": {"type": "string", "id": True}, "label": "string"}))
    assert postgres.psql("SELECT count(*) FROM information_schema.columns WHERE table_name = 'legacy'") == "3\n"


def test_an_updated_password_is_used_at_once(node: Node, lb: Warm, postgres: Any) -> None:
    postgres.admin_psql("CREATE ROLE rotating LOGIN PASSWORD 'first-pass-1'", database=postgres.database)
    postgres.admin_psql("GRANT ALL ON SCHEMA public TO rotating", database=postgres.database)
    node.secrets.update({"first-pass-1", "second-pass-2"})
    # defined by a URL that holds the password: updating just `password` must override it
    settings = {"url": f"postgres://rotating:first-pass-1@{postgres.host}:{postgres.port}/{postgres.database}"}
    ds = ok(lb.direct("createDatasource", "erin", connector="postgresql", settings=settings))
    model = ok(lb.direct("createModel", "erin", name="Counter", datasourceId=ds["id"], properties={"n": "number"}))
    target = {"tenant": "erin", "modelId": model["id"], "modelName": "Counter"}

    with node.warm() as other:  # a second warm container
        assert ok(lb.direct("createRecord", "erin", **target, n=1))["n"] == 1
        assert ok(other.direct("createRecord", "erin", **target, n=2))["n"] == 2  # both have a pool open now
        postgres.admin_psql("ALTER ROLE rotating PASSWORD 'second-pass-2'")
        # open connections would outlive the change: end them, so that only the new password can work
        postgres.admin_psql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'rotating'")
        # a cold container with the stored (old) password cannot log in, nor can a warm one open a new connection
        message = failed(node.direct("findRecords", "erin", **target), 502)
        assert "cannot reach the datasource" in message and "password authentication failed" in message
        for _ in range(2):
            assert "password authentication failed" in failed(lb.direct("createRecord", "erin", **target, n=9), 502)
        new_password = {"password": "second-pass-2"}
        updated = ok(lb.direct("updateDatasource", "erin", datasourceId=ds["id"], settings=new_password))
        assert updated["settings"]["url"].startswith("postgres://rotating@") and updated["hasPassword"] is True
        # the container that updated it dropped its pool; the other one sees a new revision and drops its own
        assert ok(lb.direct("createRecord", "erin", **target, n=3))["n"] == 3
        assert ok(other.direct("datasourceStatus", "erin", datasourceId=ds["id"]))["status"] == "ok"
        assert ok(other.direct("createRecord", "erin", **target, n=4))["n"] == 4
    assert ok(node.direct("countRecords", "erin", **target)) == {"count": 4}


# --- tenants -------------------------------------------------------------------------------------------------------


def test_a_tenant_sees_only_its_own_datasources_models_and_records(node: Node, lb: Warm) -> None:
    ds = ok(lb.direct("createDatasource", "alice", connector="memory"))
    model = ok(lb.direct("createModel", "alice", name="Secret", datasourceId=ds["id"], properties={"v": "string"}))
    target = {"tenant": "alice", "modelId": model["id"], "modelName": "Secret"}
    record = ok(lb.direct("createRecord", "alice", **target, v="mine"))

    failed(lb.direct("getDatasource", "bob", datasourceId=ds["id"]), 404)
    failed(lb.direct("datasourceStatus", "bob", datasourceId=ds["id"]), 404)
    failed(lb.direct("updateDatasource", "bob", datasourceId=ds["id"], name="stolen"), 404)
    failed(lb.direct("deleteDatasource", "bob", datasourceId=ds["id"], force=True), 404)
    failed(lb.direct("getModel", "bob", modelId=model["id"]), 404)
    failed(lb.direct("deleteModel", "bob", modelId=model["id"]), 404)
    failed(lb.direct("createModel", "bob", name="Mine", datasourceId=ds["id"], properties={"v": "string"}), 404)
    assert ds["id"] not in [item["id"] for item in ok(lb.direct("listDatasources", "bob"))]
    assert model["id"] not in [item["id"] for item in ok(lb.direct("listModels", "bob"))]
    for tenant in ("alice", None):
        path = {**target, "tenant": tenant} if tenant else {"modelId": model["id"], "modelName": "Secret"}
        failed(lb.direct("findRecords", "bob", **path), 404)
        failed(lb.direct("findRecordById", "bob", **path, recordId=str(record["id"])), 404)
        failed(lb.direct("patchRecord", "bob", **path, recordId=str(record["id"]), v="x"), 404)
        failed(lb.direct("deleteRecord", "bob", **path, recordId=str(record["id"])), 404)
        failed(lb.direct("createRecord", "bob", **path, v="planted"), 404)

    # a direct invocation runs in the caller's namespace: forged __ow_* params change nothing
    forged = {"__ow_user": "alice", "__ow_method": "get", "__ow_headers": {}}
    failed(lb.direct("getDatasource", "bob", datasourceId=ds["id"], **forged), 404)
    failed(lb.direct("findRecords", "bob", **target, **forged), 404)
    assert ds["id"] not in [item["id"] for item in ok(lb.direct("listDatasources", "bob", **forged))]

    # web: the tenant is the authenticated caller, and a URL naming another tenant is not found
    web_failed(lb.web("getDatasource", "bob", "get", datasourceId=ds["id"]), 404)
    web_failed(lb.web("findRecords", "bob", "get", **target), 404)
    web_failed(lb.web("findRecords", "bob", "get", **{**target, "tenant": "bob"}), 404)
    web_failed(lb.web("findRecords", "alice", "get", **{**target, "tenant": "bob"}), 404)
    assert web_ok(lb.web("findRecords", "alice", "get", **target)) == [record]
    # ids that are not ids at all
    failed(lb.direct("getDatasource", "alice", datasourceId="../alice"), 404)
    failed(lb.direct("getModel", "alice", modelId="x/y"), 404)
    assert ok(lb.direct("findRecords", "alice", **target)) == [record]


# --- bad input, unreachable databases, secrets ----------------------------------------------------------------------


def test_bad_input_is_refused_with_a_clear_message(node: Node, lb: Warm, postgres: Any) -> None:
    assert "unknown connector 'oracle'" in failed(lb.direct("createDatasource", "alice", connector="oracle"), 400)
    message = failed(lb.direct("createDatasource", "alice", connector="postgresql",
                                 settings={**pg_settings(postgres), "sslmode": "x"}), 400)
    assert "'sslmode'" in message
    assert "'port'" in failed(lb.direct("createDatasource", "alice", connector="postgresql",
                                          settings=pg_settings(postgres, port="5432")), 400)
    assert "'url'" in failed(lb.direct("createDatasource", "alice", connector="postgresql",
                                         settings={"url": "http://example.com/db"}), 400)
    failed(lb.direct("createDatasource", "alice", connector="memory", settings={"host": "x"}), 400)
    failed(lb.direct("createDatasource", "alice", connector="memory", colour="blue"), 400)
    assert "JSON" in web_failed(lb.call("createDatasource", {**web_params("alice", "post"), "__ow_body": "e30{"},
                                          OWNER), 400)
    web_failed(lb.web("createDatasource", "alice", "post"), 400)

    ds = ok(lb.direct("createDatasource", "alice", connector="memory"))
    for bad in ("1abc", "has space", "x" * 65, "constructor", "__proto__"):
        failed(lb.direct("createModel", "alice", name=bad, datasourceId=ds["id"], properties={"v": "string"}), 400)
    assert "reserved" in failed(lb.direct("createModel", "alice", name="M", datasourceId=ds["id"],
                                          properties={"toString": "string"}), 400)
    assert "'v'" in failed(lb.direct("createModel", "alice", name="M", datasourceId=ds["id"],
                                       properties={"v": "text"}), 400)
    failed(lb.direct("createModel", "alice", name="M", datasourceId=ds["id"], properties={"v": {"type": "string",
                                                                                                 "colour": 1}}), 400)
    failed(lb.direct("createModel", "alice", name="M", datasourceId=ds["id"]), 400)
    failed(lb.direct("createModel", "alice", name="M", datasourceId=ds["id"], discover=True), 400)  # no discovery
    failed(lb.direct("datasourceDefinitions", "alice", datasourceId=ds["id"]), 400)

    properties = {"id": {"type": "number", "id": True}, "title": {"type": "string", "required": True},
                  "when": "date", "done": "boolean"}
    model = ok(lb.direct("createModel", "alice", name="Todo", datasourceId=ds["id"], properties=properties))
    target = {"tenant": "alice", "modelId": model["id"], "modelName": "Todo"}
    assert "`title` can't be blank" in failed(lb.direct("createRecord", "alice", **target, done=True), 400)
    assert "'when'" in failed(lb.direct("createRecord", "alice", **target, title="x", when="someday"), 400)
    assert "'done'" in failed(lb.direct("createRecord", "alice", **target, title="x", done="maybe"), 400)
    ok(lb.direct("createRecord", "alice", **target, id=7, title="x"))
    failed(lb.direct("createRecord", "alice", **target, id=7, title="again"), 409)
    assert "'id'" in failed(lb.direct("patchRecord", "alice", **target, recordId="7", id=8), 400)
    for bad_filter in ("{nope", '{"colour": 1}', '{"limit": 5000}', '{"skip": -1}', '{"order": "title; DROP"}', "[1]"):
        assert "invalid filter" in failed(lb.direct("findRecords", "alice", **target, filter=bad_filter), 400)
    assert "invalid filter" in failed(lb.direct("countRecords", "alice", **target, where="{nope"), 400)

    # deleting a datasource that a model uses names the model, unless forced
    assert "Todo" in failed(lb.direct("deleteDatasource", "alice", datasourceId=ds["id"]), 409)
    deleted = ok(lb.direct("deleteDatasource", "alice", datasourceId=ds["id"], force=True))
    assert deleted["deletedModels"] == [model["id"]]
    failed(lb.direct("findRecords", "alice", **target), 404)


def test_an_unreachable_database_is_a_502_that_names_no_secret(node: Node, lb: Warm, postgres: Any) -> None:
    closed_port = postgres.port + 1 if postgres.port < 65535 else postgres.port - 1
    url = f"postgres://{postgres.user}:{postgres.password}@127.0.0.1:{closed_port}/{postgres.database}"
    ds = ok(lb.direct("createDatasource", "alice", connector="postgresql",
                        settings={"url": url, "connectTimeout": 2000}))
    assert postgres.password not in json.dumps(ds) and ds["hasPassword"] is True
    assert ok(lb.direct("getDatasource", "alice", datasourceId=ds["id"]))["settings"]["url"].startswith(
        f"postgres://{postgres.user}@127.0.0.1")
    assert "cannot reach the datasource" in failed(lb.direct("datasourceStatus", "alice", datasourceId=ds["id"]), 502)
    failed(lb.direct("datasourceDefinitions", "alice", datasourceId=ds["id"]), 502)
    failed(lb.direct("createModel", "alice", name="Gone", datasourceId=ds["id"], properties={"v": "string"}), 502)
    assert "cannot reach" in web_failed(lb.web("datasourceStatus", "alice", "get", datasourceId=ds["id"]), 502)

    # a wrong password: the database says so, the answer carries neither password
    wrong = ok(lb.direct("createDatasource", "alice", connector="postgresql",
                           settings=pg_settings(postgres, password=postgres.password + "-wrong")))
    message = failed(lb.direct("datasourceStatus", "alice", datasourceId=wrong["id"]), 502)
    assert "password authentication failed" in message
    # the registry unreachable is a 503
    broken = Node("http://admin:registry-pass@127.0.0.1:9/", node.prefix, {"registry-pass"})
    assert "registry" in failed(broken.direct("listDatasources", "alice"), 503)


def test_secrets_never_appear_in_answers(node: Node, lb: Warm, postgres: Any) -> None:
    ds = ok(lb.direct("createDatasource", "frank", connector="postgresql", settings={"url": postgres.url,
                                                                                       "password": postgres.password}))
    for answer in (ds, ok(lb.direct("getDatasource", "frank", datasourceId=ds["id"])),
                   ok(lb.direct("listDatasources", "frank")),
                   web_ok(lb.web("listDatasources", "frank", "get")),
                   ok(lb.direct("updateDatasource", "frank", datasourceId=ds["id"], name="renamed"))):
        text = json.dumps(answer)
        assert postgres.password not in text and f":{postgres.password}@" not in text
    # (every call above also had its whole stdout and stderr checked for the password by Node.check_secrets)


# --- CouchDB and MariaDB datasources --------------------------------------------------------------------------------


def test_couchdb_datasource(node: Node, lb: Warm, couch: Any) -> None:
    database = f"{node.prefix}tenant_notes"
    couch_request(couch, "PUT", f"/{database}")
    settings = {"url": couch.url, "database": database}
    ds = ok(lb.direct("createDatasource", "gina", connector="couchdb", settings=settings))
    assert ds["hasPassword"] is True
    assert ok(lb.direct("datasourceStatus", "gina", datasourceId=ds["id"]))["status"] == "ok"
    failed(lb.direct("datasourceDefinitions", "gina", datasourceId=ds["id"]), 400)  # CouchDB has no discovery
    properties = {"title": {"type": "string", "required": True, "index": True}, "n": {"type": "number", "index": True},
                  "note": "string"}
    model = ok(lb.direct("createModel", "gina", name="Card", datasourceId=ds["id"], properties=properties))
    target = {"tenant": "gina", "modelId": model["id"], "modelName": "Card"}
    ids = [ok(lb.direct("createRecord", "gina", **target, title=f"c{n}", n=n))["id"] for n in (2, 3, 1)]
    found = ok(lb.direct("findRecords", "gina", **target, filter={"order": "n DESC", "fields": ["n"]}))
    assert found == [{"n": 3}, {"n": 2}, {"n": 1}]
    assert "index" in failed(lb.direct("findRecords", "gina", **target, filter={"order": "note"}), 400)
    # replace needs the document's current _rev: the action fetches it
    replaced = ok(lb.direct("replaceRecord", "gina", **target, recordId=ids[0], title="two", n=20))
    assert replaced["title"] == "two" and replaced["_rev"].startswith("2-")
    assert ok(lb.direct("patchRecord", "gina", **target, recordId=ids[0], note="x"))["_rev"].startswith("3-")
    assert ok(lb.direct("countRecords", "gina", **target, where={"n": {"gt": 2}})) == {"count": 2}
    ok(lb.direct("deleteRecord", "gina", **target, recordId=ids[1]))
    failed(lb.direct("findRecordById", "gina", **target, recordId=ids[1]), 404)
    assert len(ok(lb.direct("findRecords", "gina", **target))) == 2


@pytest.fixture(scope="module")
def mariadb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with mariadb_server(tmp_path_factory.mktemp("mariadb")) as server:
        yield server


def test_mariadb_discovery_model_and_records(node: Node, lb: Warm, mariadb: Any) -> None:
    node.secrets.add(mariadb.password)
    mariadb.sql("CREATE TABLE product (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(80) NOT NULL,"
                " price DECIMAL(8,2), added TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP)")
    ds = ok(lb.direct("createDatasource", "hugo", connector="mysql", settings={"url": mariadb.url}))
    assert {"name": "product", "type": "table", "owner": mariadb.database} in [
        {key: item[key] for key in ("name", "type", "owner")}
        for item in ok(lb.direct("datasourceDefinitions", "hugo", datasourceId=ds["id"]))]
    schema = ok(lb.direct("datasourceSchema", "hugo", datasourceId=ds["id"], table="product"))
    assert schema["properties"]["id"]["generated"] is True and schema["properties"]["added"]["required"] is False
    model = ok(lb.direct("createModel", "hugo", name="Product", datasourceId=ds["id"], discover=True, table="product"))
    target = {"tenant": "hugo", "modelId": model["id"], "modelName": "Product"}
    first = ok(lb.direct("createRecord", "hugo", **target, name="pen", price=1.5))
    ok(lb.direct("createRecord", "hugo", **target, name="ink", price=7))
    assert first["id"] == 1 and first["added"]
    found = ok(lb.direct("findRecords", "hugo", **target, filter={"where": {"price": {"gt": 2}}, "fields": ["name"]}))
    assert found == [{"name": "ink"}]
    ok(lb.direct("patchRecord", "hugo", **target, recordId="1", price=2.25))
    ok(lb.direct("deleteRecord", "hugo", **target, recordId="2"))
    assert mariadb.sql("SELECT id, name, price FROM product") == "1\tpen\t2.25\n"


# --- mqttPublish -----------------------------------------------------------------------------------------------------


def test_mqtt_publish(node: Node, lb: Warm, tmp_path: Path) -> None:
    with mosquitto_server(tmp_path) as broker:
        with broker.subscribe("lb/#") as subscription:
            published = lb.call("mqttPublish", {"url": broker.url, "topic": "lb/changes", "message": {"n": 1}},
                                  "alice", MESSAGING)
            assert published == {"published": True, "topic": "lb/changes", "bytes": 7}
            lb.call("mqttPublish", {"url": broker.url, "topic": "lb/text", "message": "hi", "qos": 0}, "alice",
                      MESSAGING)
            # without a message, the rest of the parameters are one: what a rule passes on from its trigger
            lb.call("mqttPublish", {"url": broker.url, "topic": "lb/event", "op": "create", "id": 7}, "alice",
                    MESSAGING)
            assert subscription.messages(3) == [("lb/changes", '{"n":1}'), ("lb/text", "hi"),
                                                 ("lb/event", '{"op":"create","id":7}')]
        for params, expected in (
            ({"url": "http://x", "topic": "t", "message": "m"}, "mqtt://"),
            ({"url": broker.url, "topic": "lb/#", "message": "m"}, "wildcards"),
            ({"url": broker.url, "topic": "t"}, "'message'"),
            ({"url": broker.url, "topic": "t", "message": "m", "qos": 3}, "'qos'"),
        ):
            assert expected in lb.call("mqttPublish", params, "alice", MESSAGING)["error"]
    node.secrets.add("broker-pass")
    gone = {"url": broker.url, "topic": "t", "message": "m", "username": "u", "password": "broker-pass"}
    assert "cannot reach the MQTT broker" in lb.call("mqttPublish", gone, "alice", MESSAGING)["error"]
