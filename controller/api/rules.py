"""(being written) rules routes of issue 5."""

from aiohttp import web

ROUTES: list[web.RouteDef] = []
