"""GET /namespaces and GET /namespaces/{namespace}/limits."""

from aiohttp import web

from controller.api.common import namespace_limits
from controller.context import controller_of


async def list_namespaces(request: web.Request) -> web.Response:
    identity = await controller_of(request).caller(request)
    return web.json_response([identity.namespace])


async def get_limits(request: web.Request) -> web.Response:
    ctl = controller_of(request)
    identity, _ = await ctl.caller_in(request)
    return web.json_response(namespace_limits(ctl.throttles, identity))
