"""The controller's aiohttp application: middlewares, routes, and the lifecycle of its collaborators."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web

from controller import feeds, system  # noqa: F401 (importing `feeds` registers the feed packages)
from controller.api.actions import MAX_ACTION_BODY_BYTES
from controller.api.web import OWNERS, OwnerCache, owns_cors
from controller.auth import Authenticator
from controller.balancer import LoadBalancer
from controller.context import CONTROLLER, Controller, EntityCache
from controller.errors import error_middleware
from controller.routes import add_routes
from controller.throttle import ThrottleDefaults, Throttles
from whisk.bus import Bus
from whisk.config import ControllerSettings
from whisk.store import Store

CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET, DELETE, POST, PUT, HEAD",
    "Access-Control-Allow-Headers": "Authorization, Origin, X-Requested-With, Content-Type, Accept, User-Agent",
}


@web.middleware
async def cors_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    if owns_cors(request.path):
        return await handler(request)  # web actions and API routes answer OPTIONS and set CORS themselves
    if request.method == "OPTIONS":
        return web.Response(status=200, headers=CORS_HEADERS)
    response = await handler(request)
    response.headers.update(CORS_HEADERS)
    return response


def make_app(settings: ControllerSettings, store: Store, bus: Bus) -> web.Application:
    """The REST API over `store` and `bus`, which the caller opens and closes; the app owns its load balancer."""
    app = web.Application(middlewares=[cors_middleware, error_middleware], client_max_size=MAX_ACTION_BODY_BYTES)
    balancer = LoadBalancer(bus, store, settings.controller_id, settings.completion_grace_s)
    entities = EntityCache(store, bus, settings.controller_id)
    app[CONTROLLER] = Controller(
        settings=settings,
        store=store,
        balancer=balancer,
        authenticator=Authenticator(store, settings.identity_cache_s),
        entities=entities,
        throttles=Throttles(ThrottleDefaults(
            settings.invocations_per_minute, settings.concurrent_invocations, settings.fires_per_minute)),
        bus=bus,
    )

    async def lifecycle(_: web.Application) -> AsyncIterator[None]:
        await system.install(store)
        await entities.start()
        await balancer.start()
        yield
        await balancer.close()
        await entities.close()

    app[OWNERS] = OwnerCache(store, settings.identity_cache_s)
    app.cleanup_ctx.append(lifecycle)
    add_routes(app)
    return app
