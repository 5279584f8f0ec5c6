"""Unauthenticated information about the platform: GET / and GET /api/v1."""

from aiohttp import web

from controller.api.common import namespace_limits
from controller.context import controller_of
from whisk.entities.identity import Identity
from whisk.runtimes import manifest

DESCRIPTION = "pywhisk: an OpenWhisk-compatible platform"
BUILD = "pywhisk-0.1.0"
BUILD_NUMBER = "0.1.0"


def _runtimes() -> dict[str, list[dict[str, object]]]:
    families: dict[str, list[dict[str, object]]] = {}
    for runtime in manifest().runtimes.values():
        families.setdefault(runtime.family, []).append(
            {"kind": runtime.kind, "default": runtime.is_default, "image": runtime.image})
    return families


async def platform_info(request: web.Request) -> web.Response:
    limits = namespace_limits(controller_of(request).throttles, Identity(subject="", namespace="", uuid=""))
    return web.json_response({
        "description": DESCRIPTION,
        "api_paths": ["/api/v1"],
        "runtimes": _runtimes(),
        "limits": {
            "actions_per_minute": limits["invocationsPerMinute"],
            "concurrent_actions": limits["concurrentInvocations"],
            "triggers_per_minute": limits["firesPerMinute"],
            "min_action_duration": limits["minActionTimeout"],
            "max_action_duration": limits["maxActionTimeout"],
            "min_action_memory": limits["minActionMemory"] * 1024 * 1024,
            "max_action_memory": limits["maxActionMemory"] * 1024 * 1024,
            "min_action_logs": limits["minActionLogs"] * 1024 * 1024,
            "max_action_logs": limits["maxActionLogs"] * 1024 * 1024,
        },
    })


async def api_info(request: web.Request) -> web.Response:
    return web.json_response({
        "description": DESCRIPTION,
        "api_version": "1.0.0",
        "api_version_path": "v1",
        "api_paths": ["/api/v1"],
        "build": BUILD,
        "buildno": BUILD_NUMBER,
    })
