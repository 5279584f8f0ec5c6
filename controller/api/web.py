"""(being written) web routes of issue 5."""

from aiohttp import web

ROUTES: list[web.RouteDef] = []
