"""API operations on standalone, p50: action create (PUT of a new action), action get, activation get by id; beside
`GET /api/v1`, the platform's cheapest route (no authentication, no store): what HTTP, aiohttp and the client cost
on their own. The four are interleaved request by request."""

from __future__ import annotations

import asyncio
import time
from argparse import Namespace
from typing import Any

import aiohttp

from bench.measure import Row, summary, timed
from bench.platforms import AnyPlatform, Platforms, invoke, put_action, unique_name

NEEDS = ("standalone",)
ACTIVATIONS = 50


async def get(session: aiohttp.ClientSession, platform: AnyPlatform, path: str, auth: bool = True) -> int:
    async with session.get(f"{platform.api_host}/api/v1{path}", headers=platform.headers() if auth else None) as r:
        await r.read()
        if r.status not in (200, 404):
            raise RuntimeError(f"GET {path} answered {r.status}")
        return r.status


async def run(session: aiohttp.ClientSession, platforms: Platforms, args: Namespace) -> dict[str, Any]:
    samples = 50 if args.quick else 200
    platform = await platforms.get("standalone")
    target = unique_name("bget")
    await put_action(session, platform, target)
    ids = [(await invoke(session, platform, target))["activationId"] for _ in range(ACTIVATIONS)]
    deadline = time.monotonic() + 30
    while await get(session, platform, f"/namespaces/_/activations/{ids[-1]}") != 200:  # written off the path
        if time.monotonic() > deadline:
            raise RuntimeError("activations were not recorded in 30 s")
        await asyncio.sleep(0.1)
    prefix = unique_name("bput")
    for _ in range(5):  # settle connections
        await get(session, platform, "", auth=False)
        await get(session, platform, f"/namespaces/_/actions/{target}")
    info, create, action_get, activation_get = [], [], [], []
    for n in range(samples):
        info.append(await timed(lambda: get(session, platform, "", auth=False)))
        create.append(await put_action(session, platform, f"{prefix}_{n}", overwrite=False))
        action_get.append(await timed(lambda: get(session, platform, f"/namespaces/_/actions/{target}")))
        activation_get.append(await timed(
            lambda n=n: get(session, platform, f"/namespaces/_/activations/{ids[n % ACTIVATIONS]}")))
    return {"api_info": summary(info), "action_create": summary(create), "action_get": summary(action_get),
            "activation_get": summary(activation_get)}


def rows(results: dict[str, Any]) -> list[Row]:
    base = ("GET /api/v1 (no auth, no store), p50", results["api_info"]["p50_ms"])
    return [Row(f"{label}, p50", results[key]["p50_ms"], "ms", *base)
            for label, key in (("action create (PUT)", "action_create"), ("action get", "action_get"),
                               ("activation get by id", "activation_get"))]
