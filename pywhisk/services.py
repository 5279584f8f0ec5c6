"""The distributed processes: `pywhisk controller`, `pywhisk invoker` and `pywhisk feeds`, on a shared store and bus.

Each waits for the store and the bus at start (in docker-compose they may come up later) and, once running,
rides out their outages: requests answer 503 meanwhile and the process recovers when they return.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

from aiohttp import web

from controller.app import make_app
from invoker import Invoker
from invoker.containers import open_factory
from whisk.bus import Bus, BusError, open_bus
from whisk.config import ControllerSettings, FeedSettings, InvokerSettings, ServiceSettings
from whisk.store import Store, StoreError, open_store

log = logging.getLogger("pywhisk.services")

#: seconds between attempts to reach the store or the bus at start
CONNECT_RETRY_S = 2.0
T = TypeVar("T")


async def _connect(what: str, opener: Callable[[], Awaitable[T]], stop: asyncio.Event) -> T | None:
    """`opener()` retried until it succeeds, or None when `stop` is set first."""
    while not stop.is_set():
        try:
            return await opener()
        except (StoreError, BusError, OSError) as exc:
            log.warning("waiting for the %s: %s", what, exc)
        try:
            await asyncio.wait_for(stop.wait(), CONNECT_RETRY_S)
        except TimeoutError:
            pass
    return None


async def _open(service: ServiceSettings, stop: asyncio.Event) -> tuple[Store | None, Bus | None]:
    store = await _connect("store", lambda: open_store(service.store_url), stop)
    bus = await _connect("bus", lambda: open_bus(service.bus_url), stop) if store is not None else None
    return store, bus


async def with_invoker_id(settings: InvokerSettings, store: Store) -> InvokerSettings:
    """`settings` with a concrete invoker id: `auto` becomes the id the store keeps for this host's name."""
    if settings.invoker_id != "auto":
        return settings
    invoker_id = await store.assign_invoker_id(socket.gethostname())
    log.info("this invoker is invoker %d", invoker_id)
    return settings.model_copy(update={"invoker_id": invoker_id})


async def serve_controller(service: ServiceSettings, environ: Mapping[str, str], stop: asyncio.Event) -> None:
    settings = ControllerSettings.from_env(environ)
    store, bus = await _open(service, stop)
    runner: web.AppRunner | None = None
    try:
        if store is None or bus is None:
            return
        runner = web.AppRunner(make_app(settings, store, bus), access_log=None, handle_signals=False)
        await runner.setup()
        await web.TCPSite(runner, service.host, service.port).start()
        log.info("controller %s listening on %s:%d", settings.controller_id, service.host, runner.addresses[0][1])
        print(f"controller {settings.controller_id} listening on port {runner.addresses[0][1]}", flush=True)
        await stop.wait()
    finally:
        if runner is not None:
            await runner.cleanup()
        if bus is not None:
            await bus.close()
        if store is not None:
            await store.close()


async def serve_invoker(service: ServiceSettings, environ: Mapping[str, str], stop: asyncio.Event) -> None:
    settings = InvokerSettings.from_env(environ)
    store, bus = await _open(service, stop)
    invoker: Invoker | None = None
    try:
        if store is None or bus is None:
            return
        settings = await with_invoker_id(settings, store)
        invoker = Invoker(settings, store, bus, await open_factory(settings))
        await invoker.start()
        print(f"invoker {settings.invoker_id} running ({settings.containers} containers)", flush=True)
        await stop.wait()
    finally:
        if invoker is not None:
            await invoker.stop()
        if bus is not None:
            await bus.close()
        if store is not None:
            await store.close()


def feed_options(settings: FeedSettings) -> dict[str, Any]:
    """The feed service's options from its settings."""
    return {"resync_s": settings.feeds_resync_s, "loopback_registry": settings.loopback_registry()}


async def serve_feeds(service: ServiceSettings, environ: Mapping[str, str], stop: asyncio.Event) -> None:
    from feeds import FeedService

    settings = FeedSettings.from_env(environ)
    store, bus = await _open(service, stop)
    feeds: FeedService | None = None
    try:
        if store is None or bus is None:
            return
        feeds = FeedService(store, bus, settings.api_url, **feed_options(settings))
        await feeds.start()
        print(f"feed service running, firing triggers at {settings.api_url}", flush=True)
        await stop.wait()
    finally:
        if feeds is not None:
            await feeds.close()
        if bus is not None:
            await bus.close()
        if store is not None:
            await store.close()
