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

import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from whisk.entities import params
from whisk.entities.action import Exec, WhiskAction
from whisk.entities.identity import Identity
from whisk.entities.package import WhiskPackage
from whisk.runtimes import manifest
from whisk.store import Conflict, NotFound, Store

if TYPE_CHECKING:
    from controller.context import Controller

log = logging.getLogger(__name__)

SYSTEM_NAMESPACE = "whisk.system"
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
    code: str | None = None

    def exec(self) -> Exec:
        if self.handler is not None:
            return Exec(kind=BUILTIN_KIND, code=self.handler, binary=False)
        if self.kind is None or self.code is None:
            raise ValueError(f"system action {self.name} needs a handler, or a kind and code")
        return Exec(kind=self.kind, code=self.code, binary=False)


@dataclass(frozen=True)
class SystemPackageSpec:
    name: str
    actions: list[SystemActionSpec]
    annotations: dict[str, Any] = field(default_factory=dict)
    parameters: dict[str, Any] = field(default_factory=dict)
    publish: bool = True


_PACKAGES: dict[str, SystemPackageSpec] = {}

#: the catalog: one folder per package, with a `package.json` manifest next to the actions' code
CATALOG = Path(__file__).resolve().parents[1] / "catalog"


def catalog_packages(root: Path = CATALOG) -> list[SystemPackageSpec]:
    """The packages described by `root/*/package.json`::

        {"publish": true, "parameters": {...}, "annotations": {...},
         "actions": [{"name": "echo", "kind": "python:3.11", "file": "echo.py", "parameters": {...},
                      "annotations": {...}}]}
    """
    specs = []
    for package_json in sorted(root.glob("*/package.json")):
        raw = json.loads(package_json.read_text())
        actions = [
            SystemActionSpec(
                name=a["name"],
                kind=manifest_kind(a["kind"]),
                code=(package_json.parent / a["file"]).read_text(),
                parameters=a.get("parameters", {}),
                annotations=a.get("annotations", {}),
            )
            for a in raw.get("actions", [])
        ]
        specs.append(SystemPackageSpec(
            name=package_json.parent.name,
            actions=actions,
            annotations=raw.get("annotations", {}),
            parameters=raw.get("parameters", {}),
            publish=raw.get("publish", True),
        ))
    return specs


def manifest_kind(kind: str) -> str:
    resolved = manifest().resolve(kind)
    if resolved is None:
        raise ValueError(f"the catalog names an unknown kind '{kind}'")
    return resolved


def register_package(spec: SystemPackageSpec) -> None:
    _PACKAGES[spec.name] = spec


def registered_packages() -> list[SystemPackageSpec]:
    """The catalog's packages, then those registered by modules (a module's package replaces a catalog one)."""
    by_name = {spec.name: spec for spec in catalog_packages()} | _PACKAGES
    return list(by_name.values())


def package_document(spec: SystemPackageSpec) -> WhiskPackage:
    return WhiskPackage(
        namespace=SYSTEM_NAMESPACE,
        name=spec.name,
        publish=spec.publish,
        parameters=params.from_dict(spec.parameters),
        annotations=params.from_dict(spec.annotations),
    )


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
    """Put the registered packages and their actions into `whisk.system`; the number of documents written."""
    written = 0
    for spec in packages if packages is not None else registered_packages():
        package = package_document(spec)
        written += await _put_if_changed(store, package.doc_id, "packages", package.model_dump(mode="json"))
        for action_spec in spec.actions:
            action = action_document(spec, action_spec)
            doc_id = f"{action.namespace}/{action.name}"
            written += await _put_if_changed(store, doc_id, "actions", action.model_dump(mode="json"))
    return written


_VOLATILE = ("updated", "version")


async def _put_if_changed(store: Store, doc_id: str, entity_type: str, body: dict[str, Any]) -> int:
    for _ in range(3):
        try:
            current = await store.get_entity(doc_id)
        except NotFound:
            current = None
        if current is not None and _same(current.body, body):
            return 0
        body = {**body, "updated": int(time.time() * 1000)}
        try:
            await store.put_entity(doc_id, entity_type, body, current.rev if current else None)
            return 1
        except Conflict:
            continue  # another controller installed at the same moment: compare with what it wrote
    log.warning("could not install %s: it kept changing", doc_id)
    return 0


def _same(stored: dict[str, Any], wanted: dict[str, Any]) -> bool:
    def strip(body: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in body.items() if k not in _VOLATILE}

    return strip(WhiskAction.model_validate(stored).model_dump(mode="json") if "exec" in stored
                 else WhiskPackage.model_validate(stored).model_dump(mode="json")) == strip(wanted)
