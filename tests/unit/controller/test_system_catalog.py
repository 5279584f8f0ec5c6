"""The catalog's manifests as system packages: zipped folders, action defaults, API routes."""

from __future__ import annotations

import base64
import io
import json
import zipfile
from pathlib import Path

import controller.feeds  # noqa: F401  (registers the feed actions, as the app does)
from controller import system
from controller.api import apis
from whisk.entities.names import SYSTEM_NAMESPACE
from whisk.store import open_store


def write_package(root: Path) -> None:
    actions = root / "things" / "actions"
    (actions / "lib").mkdir(parents=True)
    (actions / "node_modules" / "left-pad").mkdir(parents=True)
    (actions / "index.js").write_text("exports.getThing = () => ({}); exports.putThing = () => ({});\n")
    (actions / "lib" / "util.js").write_text("module.exports = {};\n")
    (actions / "node_modules" / "left-pad" / "index.js").write_text("// not shipped\n")
    (root / "things" / "package.json").write_text(json.dumps({
        "annotations": {"description": "things"},
        "defaults": {"kind": "nodejs:default", "dir": "actions", "annotations": {"web-export": True}},
        "actions": [{"name": "getThing", "main": "getThing", "annotations": {"description": "get"}},
                    {"name": "putThing", "main": "putThing", "annotations": {"web-export": False}}],
        "api": {"basePath": "/things", "responseType": "http",
                "routes": [{"path": "/things/{id}", "verb": "GET", "action": "getThing"},
                           {"path": "/things/{id}", "verb": "put", "action": "putThing"}]},
    }))


def test_a_folder_becomes_one_zip_shared_by_actions_that_differ_in_main(tmp_path: Path) -> None:
    write_package(tmp_path)
    [spec] = system.catalog_packages(tmp_path)
    get, put = spec.actions
    assert get.binary and get.code == put.code
    assert (get.main, put.main) == ("getThing", "putThing")
    assert get.annotations == {"web-export": True, "description": "get"}
    assert put.annotations == {"web-export": False}
    names = zipfile.ZipFile(io.BytesIO(base64.b64decode(get.code or ""))).namelist()
    assert sorted(names) == ["index.js", "lib/util.js"]
    assert system.action_document(spec, get).exec.api()["binary"] is True


def test_the_zip_is_the_same_for_the_same_files_so_an_unchanged_catalog_is_not_rewritten(tmp_path: Path) -> None:
    write_package(tmp_path)
    first = system.zip_folder(tmp_path / "things" / "actions")
    (tmp_path / "things" / "actions" / "index.js").touch()
    assert system.zip_folder(tmp_path / "things" / "actions") == first
    (tmp_path / "things" / "actions" / "index.js").write_text("changed")
    assert system.zip_folder(tmp_path / "things" / "actions") != first


def test_the_api_routes_each_verb_to_its_web_action_under_the_system_api_id(tmp_path: Path) -> None:
    write_package(tmp_path)
    [spec] = system.catalog_packages(tmp_path)
    doc_id, body = system.api_document(spec)
    assert doc_id == apis.doc_id_of(apis.api_id_of(SYSTEM_NAMESPACE), "/things")
    operation = apis.find_operation(body, "/things/42", "PUT")
    assert isinstance(operation, apis.Operation)
    assert (str(operation.action), operation.response_type, operation.path_params) == (
        "/whisk.system/things/putThing", "http", {"id": "42"})
    assert apis.find_operation(body, "/things/42", "DELETE") is False
    package = system.package_document(spec)
    assert {a.key: a.value for a in package.annotations}["api"] == system.api_path("/things")


def test_the_shipped_catalog_routes_every_loopback_operation() -> None:
    packages = {spec.name: spec for spec in system.registered_packages()}
    loopback = packages["loopback"]
    routed = {route.action for route in loopback.api.routes} if loopback.api else set()
    node_actions = {a.name for a in loopback.actions if a.handler is None}
    assert routed == node_actions and len(node_actions) == 20
    assert any(a.name == "changes" and a.handler for a in loopback.actions)  # the feed joins the package
    assert "mqttPublish" in {a.name for a in packages["messaging"].actions}


async def test_installing_an_unchanged_catalog_again_writes_nothing(tmp_path: Path) -> None:
    store = await open_store(f"sqlite:///{tmp_path / 'store.db'}")
    try:
        assert await system.install(store) > 0
        assert await system.install(store) == 0  # packages, actions, the API routes and the subject are current
    finally:
        await store.close()
