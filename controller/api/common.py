"""Helpers the collection modules share: reading names from the URL and the namespace's effective limits."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from controller import messages
from controller.context import Controller
from controller.errors import BadRequest, Conflict, PayloadTooLarge
from controller.throttle import Throttles
from whisk.entities import limits
from whisk.entities.identity import Identity
from whisk.entities.names import EntityPath, FullyQualifiedName, is_valid_name
from whisk.entities.params import KeyValues
from whisk.runtimes import manifest
from whisk.store import Conflict as StoreConflict
from whisk.store import Document
from whisk.store import NotFound as StoreNotFound


def entity_name(request: web.Request, namespace: str) -> FullyQualifiedName:
    """The entity the URL names (`{name}` and, for actions in packages, `{package}`), in `namespace`."""
    name = request.match_info["name"]
    package = request.match_info.get("package")
    if not is_valid_name(name) or (package is not None and not is_valid_name(package)):
        raise BadRequest(messages.ILLEGAL_NAME)
    return FullyQualifiedName(EntityPath(namespace, package), name)


async def existing_for_put(ctl: Controller, doc_id: str, entity_type: str, overwrite: bool) -> Document | None:
    """The document a PUT replaces, or None when it creates: 409 when the name belongs to another collection, or
    exists and `overwrite` was not asked for."""
    try:
        existing = await ctl.store.get_entity(doc_id)
    except StoreNotFound:
        return None
    if existing.entity_type != entity_type:
        raise Conflict(messages.WRONG_COLLECTION)
    if not overwrite:
        raise Conflict(messages.ALREADY_EXISTS)
    return existing


async def write_entity(
    ctl: Controller, doc_id: str, entity_type: str, body: dict[str, Any], existing: Document | None
) -> None:
    """Store what a PUT made (over `existing`, at its revision) and drop it from every controller's cache; a lost
    race is 409 as OpenWhisk answers it."""
    try:
        await ctl.store.put_entity(doc_id, entity_type, body, existing.rev if existing else None)
    except StoreConflict:
        raise Conflict(messages.ALREADY_EXISTS if existing is None else messages.CONCURRENT_MODIFICATION) from None
    await ctl.entities.invalidate(doc_id)


def check_parameters_size(parameters: KeyValues) -> None:
    """413 when an entity's parameters, as JSON, pass OpenWhisk's limit."""
    size = len(json.dumps([p.model_dump() for p in parameters]))
    if size > limits.MAX_PARAMETERS_BYTES:
        raise PayloadTooLarge(messages.PARAMETERS_TOO_LARGE.format(size=size, allowed=limits.MAX_PARAMETERS_BYTES))


def namespace_limits(throttles: Throttles, identity: Identity) -> dict[str, Any]:
    own = throttles.limits_of(identity)
    return {
        "invocationsPerMinute": own.invocations_per_minute,
        "concurrentInvocations": own.concurrent_invocations,
        "firesPerMinute": own.fires_per_minute,
        "allowedKinds": manifest().known_kinds(),
        "storeActivations": True,
        "maxParameterSize": f"{limits.MAX_PARAMETERS_BYTES // 1024 // 1024} MB",
        "minActionMemory": limits.MIN_MEMORY_MB,
        "maxActionMemory": limits.MAX_MEMORY_MB,
        "minActionTimeout": limits.MIN_TIMEOUT_MS,
        "maxActionTimeout": limits.MAX_TIMEOUT_MS,
        "minActionLogs": limits.MIN_LOGS_MB,
        "maxActionLogs": limits.MAX_LOGS_MB,
        "minActionConcurrency": limits.MIN_CONCURRENCY,
        "maxActionConcurrency": limits.MAX_CONCURRENCY,
    }
