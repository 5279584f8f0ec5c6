"""Packages and bindings: list, get, create/update, delete (with `force`)."""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from controller import messages
from controller.api.common import existing_for_put, write_entity
from controller.context import Controller, controller_of
from controller.errors import BadRequest, Conflict, Forbidden, NotFound
from controller.invoke import as_package, readable_package
from controller.requests import bool_param, list_window, read_json_object
from whisk.entities import params
from whisk.entities.action import WhiskAction
from whisk.entities.names import DEFAULT_NAMESPACE, InvalidName, check_name, is_valid_name
from whisk.entities.package import Binding, PackagePut, WhiskPackage
from whisk.entities.semver import DEFAULT_VERSION, bump
from whisk.store import NotFound as StoreNotFound

PACKAGES = "packages"
ACTIONS = "actions"
RESERVED_NAMES = {"default"}
MAX_PACKAGE_BODY_BYTES = 1024 * 1024


def _package_name(request: web.Request) -> str:
    name = request.match_info["name"]
    if not is_valid_name(name):
        raise BadRequest(messages.ILLEGAL_NAME)
    return name


async def list_packages(request: web.Request) -> web.Response:
    ctl = controller_of(request)
    identity, namespace = await ctl.caller_reading(request)
    limit, skip = list_window(request, PACKAGES)
    own = namespace == identity.namespace
    if bool_param(request, "count"):
        if own:
            return web.json_response({PACKAGES: await ctl.store.count_entities(namespace, PACKAGES)})
        docs = await ctl.store.list_entities(namespace, PACKAGES, 0, 0)
        return web.json_response({PACKAGES: sum(1 for d in docs if WhiskPackage.model_validate(d.body).publish)})
    if own:
        docs = await ctl.store.list_entities(namespace, PACKAGES, limit, skip)
        packages = [WhiskPackage.model_validate(d.body) for d in docs]
    else:
        # another namespace shows only what it published
        docs = await ctl.store.list_entities(namespace, PACKAGES, 0, 0)
        shared = [p for d in docs if (p := WhiskPackage.model_validate(d.body)).publish]
        packages = shared[skip:skip + limit] if limit else shared[skip:]
    return web.json_response([p.summary() for p in packages])


async def get_package(request: web.Request) -> web.Response:
    ctl = controller_of(request)
    identity, namespace = await ctl.caller_reading(request)
    package = await readable_package(ctl, identity, f"{namespace}/{_package_name(request)}")
    if package.binding is None:
        return web.json_response(package.api(await _action_summaries(ctl, package.doc_id)))
    # a binding shows the package it binds, with its own parameters over the bound package's
    try:
        bound = await readable_package(ctl, identity, package.binding.doc_id)
    except (NotFound, StoreNotFound):
        return web.json_response(package.api([]))
    merged = params.merge(bound.parameters, package.parameters)
    shown = package.model_copy(update={"parameters": merged})
    return web.json_response(shown.api(await _action_summaries(ctl, bound.doc_id)))


async def _action_summaries(ctl: Controller, package_id: str) -> list[dict[str, Any]]:
    docs = await ctl.store.list_entities(package_id, ACTIONS, 0, 0)
    out = []
    for doc in docs:
        action = WhiskAction.model_validate(doc.body)
        out.append({"name": action.name, "version": action.version,
                    "annotations": [a.model_dump() for a in action.annotations]})
    return out


async def put_package(request: web.Request) -> web.Response:
    ctl = controller_of(request)
    identity, namespace = await ctl.caller_in(request)
    name = _package_name(request)
    if name in RESERVED_NAMES:
        raise BadRequest(messages.PACKAGE_NAME_RESERVED)
    overwrite = bool_param(request, "overwrite")
    content = PackagePut.model_validate(await read_json_object(request, MAX_PACKAGE_BODY_BYTES))
    doc_id = f"{namespace}/{name}"
    existing = await existing_for_put(ctl, doc_id, PACKAGES, overwrite)
    current = WhiskPackage.model_validate(existing.body) if existing else None
    binding = current.binding if current else None
    if content.binding:  # `{}` means no binding, as OpenWhisk writes it
        binding = await _checked_binding(ctl, identity, content.binding)
        if current is not None and current.binding is None:
            raise BadRequest(messages.MALFORMED.format(detail="a package cannot be turned into a binding"))
    package = WhiskPackage(
        namespace=namespace,
        name=name,
        version=content.version or (bump(current.version) if current else DEFAULT_VERSION),
        publish=content.publish if content.publish is not None else (current.publish if current else False),
        binding=binding,
        parameters=content.parameters if content.parameters is not None else (current.parameters if current else []),
        annotations=(content.annotations if content.annotations is not None
                     else (current.annotations if current else [])),
        updated=int(time.time() * 1000),
    )
    await write_entity(ctl, doc_id, PACKAGES, package.model_dump(mode="json"), existing)
    return web.json_response(package.api())


async def _checked_binding(ctl: Controller, identity: Any, raw: dict[str, Any]) -> Binding:
    try:
        namespace = str(raw.get("namespace") or DEFAULT_NAMESPACE)
        target = Binding(namespace=identity.namespace if namespace == DEFAULT_NAMESPACE else check_name(namespace),
                         name=check_name(str(raw.get("name", ""))))
    except InvalidName:
        raise BadRequest(messages.MALFORMED.format(detail="binding must name a package: {namespace, name}")) from None
    try:
        bound = await readable_package(ctl, identity, target.doc_id)
    except (NotFound, StoreNotFound, Conflict):
        raise BadRequest(messages.BINDING_TARGET_MISSING) from None
    except Forbidden:
        raise Forbidden(messages.NOT_AUTHORIZED) from None
    if bound.binding is not None:
        raise BadRequest(messages.BINDING_OF_BINDING)
    return target


async def delete_package(request: web.Request) -> web.Response:
    ctl = controller_of(request)
    _, namespace = await ctl.caller_in(request)
    doc_id = f"{namespace}/{_package_name(request)}"
    doc = await ctl.store.get_entity(doc_id)
    package = as_package(doc)
    if package.binding is None:
        contents = await ctl.store.list_entities(doc_id, ACTIONS, 0, 0)
        if contents and not bool_param(request, "force"):
            raise Conflict(messages.PACKAGE_NOT_EMPTY.format(
                count=len(contents), entities="action" if len(contents) == 1 else "actions"))
        for action in contents:
            try:
                await ctl.store.delete_entity(action.doc_id, action.rev)
            except StoreNotFound:
                pass  # deleted by someone else meanwhile
            await ctl.entities.invalidate(action.doc_id)
    await ctl.store.delete_entity(doc.doc_id, doc.rev)
    await ctl.entities.invalidate(doc.doc_id)
    return web.json_response(package.api())
