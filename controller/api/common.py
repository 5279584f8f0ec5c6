"""Helpers the collection modules share: reading names from the URL and the namespace's effective limits."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from controller import messages
from controller.errors import BadRequest, NotFound
from whisk.entities import limits
from whisk.entities.identity import Identity
from whisk.entities.names import EntityPath, FullyQualifiedName, is_valid_name
from whisk.runtimes import manifest

#: OpenWhisk's deployment defaults (ansible and standalone), applied when a namespace sets none
DEFAULT_INVOCATIONS_PER_MINUTE = 60
DEFAULT_CONCURRENT_INVOCATIONS = 30
DEFAULT_FIRES_PER_MINUTE = 60


def entity_name(request: web.Request, namespace: str) -> FullyQualifiedName:
    """The entity the URL names, in the caller's resolved namespace. Packages do not exist yet: a package path is
    parsed and answered 404."""
    name = request.match_info["name"]
    package = request.match_info.get("package")
    if not is_valid_name(name) or (package is not None and not is_valid_name(package)):
        raise BadRequest(messages.ILLEGAL_NAME)
    if package is not None:
        raise NotFound(messages.NOT_FOUND)
    return FullyQualifiedName(EntityPath(namespace), name)


def namespace_limits(identity: Identity) -> dict[str, Any]:
    own = identity.limits
    return {
        "invocationsPerMinute": own.invocationsPerMinute or DEFAULT_INVOCATIONS_PER_MINUTE,
        "concurrentInvocations": own.concurrentInvocations or DEFAULT_CONCURRENT_INVOCATIONS,
        "firesPerMinute": own.firesPerMinute or DEFAULT_FIRES_PER_MINUTE,
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
