"""(being written) triggers routes of issue 5."""

from aiohttp import web

ROUTES: list[web.RouteDef] = []
