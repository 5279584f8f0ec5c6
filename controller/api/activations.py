"""Activations: list, get by id, logs and result."""

from __future__ import annotations

from aiohttp import web

from controller import messages
from controller.context import controller_of
from controller.errors import BadRequest
from controller.requests import bool_param, int_param, list_window
from whisk.entities.activation import WhiskActivation
from whisk.entities.names import is_valid_name
from whisk.ids import is_activation_id
from whisk.store import NotFound as StoreNotFound

ACTIVATIONS = "activations"


async def list_activations(request: web.Request) -> web.Response:
    ctl = controller_of(request)
    _, namespace = await ctl.caller_in(request)
    name = request.query.get("name") or None
    if name is not None and not all(is_valid_name(part) for part in name.split("/", 1)):
        raise BadRequest(messages.ILLEGAL_NAME)
    limit, skip = list_window(request, ACTIVATIONS)
    since, upto = int_param(request, "since"), int_param(request, "upto")
    docs, count = bool_param(request, "docs"), bool_param(request, "count")
    if docs and count:
        raise BadRequest(messages.DOCS_AND_COUNT)
    if count:
        total = await ctl.store.count_activations(namespace, name=name, since=since, upto=upto)
        return web.json_response({ACTIVATIONS: total})
    records = await ctl.store.list_activations(namespace, name=name, since=since, upto=upto, limit=limit, skip=skip)
    return web.json_response([r.api() if docs else r.summary() for r in records])


async def _get(request: web.Request) -> WhiskActivation:
    ctl = controller_of(request)
    _, namespace = await ctl.caller_in(request)
    activation_id = request.match_info["activation_id"]
    if not is_activation_id(activation_id):
        raise BadRequest(messages.INVALID_ACTIVATION_ID)
    try:
        return await ctl.store.get_activation(namespace, activation_id)
    except StoreNotFound:
        recent = ctl.recent.get(namespace, activation_id)  # answered, and its store write not landed yet
        if recent is None:
            raise
        return recent


async def get_activation(request: web.Request) -> web.Response:
    return web.json_response((await _get(request)).api())


async def get_logs(request: web.Request) -> web.Response:
    return web.json_response({"logs": (await _get(request)).logs})


async def get_result(request: web.Request) -> web.Response:
    return web.json_response((await _get(request)).response.api())
