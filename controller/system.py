"""The `whisk.system` namespace: packages the platform installs itself, and the system actions it runs in-process.

A system action is an ordinary entity (it can be listed, read, bound and invoked, and its activations are
recorded) whose `exec` is `{"kind": "builtin", "code": "<handler>"}`: the controller runs the registered Python
handler instead of sending it to an invoker. Feed actions use it, so that a feed's lifecycle reaches the platform's
feed service without an action container having to reach the platform's network. This kind cannot be created
through the API (it is not in the runtime manifest), only registered here.

Modules register their packages at import (`register_package`); the controller installs them at start, replacing
what changed and leaving what is current (several controllers may install at once: the loser of a race re-reads).
"""

from __future__ import annotations

import base64
import io
import json
import logging
import time
import zipfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from whisk.entities import params
from whisk.entities.action import Exec, WhiskAction
from whisk.entities.identity import Identity, NamespaceKey, Subject, generate_key, generate_uuid, hash_key
from whisk.entities.names import SYSTEM_NAMESPACE
from whisk.entities.package import WhiskPackage
from whisk.runtimes import manifest
from whisk.store import Conflict, NotFound, Store

if TYPE_CHECKING:
    from controller.context import Controller

log = logging.getLogger(__name__)

BUILTIN_KIND = "builtin"


@dataclass(frozen=True)
class SystemCall:
    controller: Controller
    #: who invoked the action
    caller: Identity
    action: WhiskAction
    #: package parameters < action parameters < the invocation's payload
    args: dict[str, Any]
    activation_id: str


class SystemActionFailed(Exception):
    """The handler refuses its input: an application error whose `error` is the exception's text."""


SystemHandler = Callable[[SystemCall], Awaitable[dict[str, Any]]]

_HANDLERS: dict[str, SystemHandler] = {}


def system_action(handler_name: str) -> Callable[[SystemHandler], SystemHandler]:
    """Register the decorated coroutine as the handler of actions whose `exec.code` is `handler_name`."""

    def register(handler: SystemHandler) -> SystemHandler:
        _HANDLERS[handler_name] = handler
        return handler

    return register


def handler_of(action: WhiskAction) -> SystemHandler | None:
    return _HANDLERS.get(action.exec.code or "")


@dataclass(frozen=True)
class SystemActionSpec:
    """A system action: a `handler` run in-process, or ordinary code (`kind` + `code`) run by the invokers."""

    name: str
    handler: str | None = None
    annotations: dict[str, Any] = field(default_factory=dict)
    parameters: dict[str, Any] = field(default_factory=dict)
    kind: str | None = None
    #: source text, or a base64 zip when `binary`
    code: str | None = None
    main: str | None = None
    binary: bool = False

    def exec(self) -> Exec:
        if self.handler is not None:
            return Exec(kind=BUILTIN_KIND, code=self.handler, binary=False)
        if self.kind is None or self.code is None:
            raise ValueError(f"system action {self.name} needs a handler, or a kind and code")
        return Exec(kind=self.kind, code=self.code, main=self.main, binary=self.binary)


@dataclass(frozen=True)
class SystemRoute:
    """One operation of a system API: `verb` on `path` (with `{param}` segments) served by an action of the
    package, with the API's response type."""

    path: str
    verb: str
    action: str


@dataclass(frozen=True)
class SystemApiSpec:
    """API routes the platform serves for a system package, under `/api/{apiId of whisk.system}{base_path}`."""

    base_path: str
    name: str
    response_type: str
    routes: list[SystemRoute]


@dataclass(frozen=True)
class SystemPackageSpec:
    name: str
    actions: list[SystemActionSpec]
    annotations: dict[str, Any] = field(default_factory=dict)
    parameters: dict[str, Any] = field(default_factory=dict)
    publish: bool = True
    api: SystemApiSpec | None = None


_PACKAGES: dict[str, SystemPackageSpec] = {}

#: the catalog: one folder per package, with a `package.json` manifest next to the actions' code
CATALOG = Path(__file__).resolve().parents[1] / "catalog"


def catalog_packages(root: Path = CATALOG) -> list[SystemPackageSpec]:
    """The packages described by `root/*/package.json`::

        {"publish": true, "parameters": {...}, "annotations": {...},
         "defaults": {<action fields every action starts from>},
         "actions": [{"name": "echo", "kind": "python:3.11", "file": "echo.py", "parameters": {...},
                      "annotations": {...}},
                     {"name": "create", "kind": "nodejs:default", "dir": "actions", "main": "create"}],
         "api": {"basePath": "/things", "name": "...", "responseType": "http",
                 "routes": [{"path": "/things/{id}", "verb": "get", "action": "getThing"}]}}

    An action's code is a file's text, or with `dir` that folder zipped (several actions may share one folder and
    differ in `main`, the exported function each runs).
    """
    specs = []
    for package_json in sorted(root.glob("*/package.json")):
        raw = json.loads(package_json.read_text())
        defaults = raw.get("defaults", {})
        zips: dict[Path, str] = {}  # actions sharing a folder share its zip
        actions = [_catalog_action(package_json.parent, {**defaults, **a,
                                                         "annotations": {**defaults.get("annotations", {}),
                                                                         **a.get("annotations", {})}}, zips)
                   for a in raw.get("actions", [])]
        api = raw.get("api")
        specs.append(SystemPackageSpec(
            name=package_json.parent.name,
            actions=actions,
            annotations=raw.get("annotations", {}),
            parameters=raw.get("parameters", {}),
            publish=raw.get("publish", True),
            api=None if api is None else SystemApiSpec(
                base_path=api["basePath"],
                name=api.get("name", api["basePath"]),
                response_type=api.get("responseType", "json"),
                routes=[SystemRoute(r["path"], r["verb"].lower(), r["action"]) for r in api["routes"]],
            ),
        ))
    return specs


def _catalog_action(folder: Path, raw: dict[str, Any], zips: dict[Path, str]) -> SystemActionSpec:
    if "dir" in raw:
        source = folder / raw["dir"]
        if source not in zips:
            zips[source] = zip_folder(source)
        code, binary = zips[source], True
    else:
        code, binary = (folder / raw["file"]).read_text(), False
    return SystemActionSpec(
        name=raw["name"],
        kind=manifest_kind(raw["kind"]),
        code=code,
        binary=binary,
        main=raw.get("main"),
        parameters=raw.get("parameters", {}),
        annotations=raw.get("annotations", {}),
    )


#: what a catalog folder may hold that is not part of the action
_NOT_ZIPPED = {"node_modules", "__pycache__", ".git"}


def zip_folder(folder: Path) -> str:
    """`folder` as a base64 zip, byte for byte the same for the same files (fixed times, sorted names), so that an
    unchanged catalog is not installed again."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            relative = path.relative_to(folder)
            if path.is_dir() or _NOT_ZIPPED.intersection(relative.parts):
                continue
            info = zipfile.ZipInfo(relative.as_posix(), date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes())
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def manifest_kind(kind: str) -> str:
    resolved = manifest().resolve(kind)
    if resolved is None:
        raise ValueError(f"the catalog names an unknown kind '{kind}'")
    return resolved


def register_package(spec: SystemPackageSpec) -> None:
    _PACKAGES[spec.name] = spec


def registered_packages() -> list[SystemPackageSpec]:
    """The catalog's packages and those registered by modules; a module's actions join a catalog package of the
    same name (as the LoopBack package's `changes` feed joins its Node.js actions)."""
    by_name = {spec.name: spec for spec in catalog_packages()}
    for name, spec in _PACKAGES.items():
        base = by_name.get(name)
        by_name[name] = spec if base is None else replace(
            base,
            actions=[*base.actions, *spec.actions],
            annotations={**base.annotations, **spec.annotations},
            parameters={**base.parameters, **spec.parameters},
        )
    return list(by_name.values())


def package_document(spec: SystemPackageSpec) -> WhiskPackage:
    annotations = dict(spec.annotations)
    if spec.api is not None:
        # where the package's REST API is served, for clients to discover
        annotations["api"] = api_path(spec.api.base_path)
    return WhiskPackage(
        namespace=SYSTEM_NAMESPACE,
        name=spec.name,
        publish=spec.publish,
        parameters=params.from_dict(spec.parameters),
        annotations=params.from_dict(annotations),
    )


def api_path(base_path: str) -> str:
    """The path of a system API's base on every controller: `/api/{apiId of whisk.system}{base_path}`."""
    from controller.api import apis

    return f"/api/{apis.api_id_of(SYSTEM_NAMESPACE)}{apis.normalize_base_path(base_path)}"


def action_document(package: SystemPackageSpec, spec: SystemActionSpec) -> WhiskAction:
    exec_ = spec.exec()
    annotations = {"provide-api-key": False, **spec.annotations, "exec": exec_.kind}
    return WhiskAction(
        namespace=f"{SYSTEM_NAMESPACE}/{package.name}",
        name=spec.name,
        publish=package.publish,
        exec=exec_,
        parameters=params.from_dict(spec.parameters),
        annotations=params.from_dict(annotations),
    )


async def install(store: Store, packages: list[SystemPackageSpec] | None = None) -> int:
    """Put the registered packages, their actions and their API routes into `whisk.system`, after making sure the
    namespace has an owner (web actions run as their owner); the number of documents written."""
    written = await ensure_system_subject(store)
    for spec in packages if packages is not None else registered_packages():
        package = package_document(spec)
        written += await _put_if_changed(store, package.doc_id, "packages", package.model_dump(mode="json"))
        for action_spec in spec.actions:
            action = action_document(spec, action_spec)
            doc_id = f"{action.namespace}/{action.name}"
            written += await _put_if_changed(store, doc_id, "actions", action.model_dump(mode="json"))
        if spec.api is not None:
            doc_id, body = api_document(spec)
            written += await _put_if_changed(store, doc_id, "apis", body, _same_api)
    return written


async def ensure_system_subject(store: Store) -> int:
    """The `whisk.system` subject, with a key nobody is told (an operator can rotate it with `pywhisk admin`)."""
    try:
        await store.identity_by_namespace(SYSTEM_NAMESPACE)
        return 0
    except NotFound:
        pass
    entry = NamespaceKey(name=SYSTEM_NAMESPACE, uuid=generate_uuid(), key_hash=hash_key(generate_key()))
    try:
        await store.put_subject(Subject(subject=SYSTEM_NAMESPACE, namespaces=[entry]))
    except Conflict:
        return 0  # another controller made it
    return 1


def api_document(spec: SystemPackageSpec) -> tuple[str, dict[str, Any]]:
    """The id and body of the API entity serving `spec.api`, as `controller.api.apis` stores a created API."""
    from controller.api import apis  # the API module imports the web modules, which import this one

    assert spec.api is not None
    base_path = apis.normalize_base_path(spec.api.base_path)
    swagger = apis.base_swagger(base_path, spec.api.name)
    for route in spec.api.routes:
        if not any(a.name == route.action for a in spec.actions):
            raise ValueError(f"the API of {spec.name} routes to an unknown action '{route.action}'")
        target = {
            "namespace": SYSTEM_NAMESPACE,
            "package": spec.name,
            "action": route.action,
            "url": f"/api/v1/web/{SYSTEM_NAMESPACE}/{spec.name}/{route.action}.{spec.api.response_type}",
        }
        path = apis.check_rel_path(route.path)
        apis.add_endpoint(swagger, path, route.verb, target, apis.path_parameter_names(path))
    api_id = apis.api_id_of(SYSTEM_NAMESPACE)
    body = {"namespace": SYSTEM_NAMESPACE, "name": base_path, "apiId": api_id, "basePath": base_path,
            "swagger": swagger, "secureKeys": {}}
    return apis.doc_id_of(api_id, base_path), body


_VOLATILE = ("updated", "version")


async def _put_if_changed(
    store: Store,
    doc_id: str,
    entity_type: str,
    body: dict[str, Any],
    same: Callable[[dict[str, Any], dict[str, Any]], bool] | None = None,
) -> int:
    """Write `body` unless the stored document is already `same` (default: the same action or package)."""
    same = same or _same
    for _ in range(3):
        try:
            current = await store.get_entity(doc_id)
        except NotFound:
            current = None
        if current is not None and same(current.body, body):
            return 0
        body = {**body, "updated": int(time.time() * 1000)}
        try:
            await store.put_entity(doc_id, entity_type, body, current.rev if current else None)
            return 1
        except Conflict:
            continue  # another controller installed at the same moment: compare with what it wrote
    log.warning("could not install %s: it kept changing", doc_id)
    return 0


def _same_api(stored: dict[str, Any], wanted: dict[str, Any]) -> bool:
    return all(stored.get(k) == v for k, v in wanted.items() if k not in _VOLATILE)


def _same(stored: dict[str, Any], wanted: dict[str, Any]) -> bool:
    def strip(body: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in body.items() if k not in _VOLATILE}

    return strip(WhiskAction.model_validate(stored).model_dump(mode="json") if "exec" in stored
                 else WhiskPackage.model_validate(stored).model_dump(mode="json")) == strip(wanted)
