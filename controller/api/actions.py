"""Actions: list, get, create/update, delete, and invoke."""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from controller import messages
from controller.api.common import check_parameters_size, entity_name, existing_for_put, write_entity
from controller.auth import parse_basic
from controller.context import Controller, controller_of
from controller.errors import BadRequest, Forbidden, NotFound, PayloadTooLarge
from controller.invoke import as_action, as_package, invoke, readable_package, resolve_action
from controller.requests import bool_param, int_param, list_window, read_json_object
from controller.sequences import check_sequence
from whisk.entities import limits, params
from whisk.entities.action import ActionPut, Exec, WhiskAction
from whisk.entities.activation import SUCCESS, WHISK_ERROR
from whisk.entities.limits import ActionLimits, ActionLimitsPut
from whisk.entities.names import FullyQualifiedName, is_valid_name
from whisk.entities.params import KeyValue
from whisk.entities.semver import DEFAULT_VERSION, bump
from whisk.runtimes import BLACKBOX, SEQUENCE, manifest
from whisk.store import NotFound as StoreNotFound

ACTIONS = "actions"
ACTIVATION_ID_HEADER = "x-openwhisk-activation-id"
#: largest action create/update body, in bytes: the code limit plus base64 and JSON overhead
MAX_ACTION_BODY_BYTES = 50 * 1024 * 1024
PROVIDE_API_KEY = "provide-api-key"


async def list_actions(request: web.Request) -> web.Response:
    ctl = controller_of(request)
    identity, namespace = await ctl.caller_reading(request)
    package = request.match_info.get("package")
    if package is not None:
        if not is_valid_name(package):
            raise BadRequest(messages.ILLEGAL_NAME)
        listed = await readable_package(ctl, identity, f"{namespace}/{package}")
        where = listed.binding.doc_id if listed.binding else listed.doc_id
        if listed.binding is not None:
            await readable_package(ctl, identity, where)
    elif namespace != identity.namespace:
        raise Forbidden(messages.NOT_AUTHORIZED)
    else:
        where = namespace
    limit, skip = list_window(request, ACTIONS)
    if bool_param(request, "count"):
        return web.json_response({ACTIONS: await ctl.store.count_entities(where, ACTIONS)})
    docs = await ctl.store.list_entities(where, ACTIONS, limit, skip)
    return web.json_response([WhiskAction.model_validate(doc.body).summary() for doc in docs])


async def get_action(request: web.Request) -> web.Response:
    ctl = controller_of(request)
    identity, namespace = await ctl.caller_reading(request)
    resolved = await resolve_action(ctl, identity, entity_name(request, namespace))
    shown = resolved.action.model_copy(update={"parameters": params.from_dict(resolved.parameters)})
    return web.json_response(shown.api(with_code=bool_param(request, "code", default=True)))


async def delete_action(request: web.Request) -> web.Response:
    ctl = controller_of(request)
    _, namespace = await ctl.caller_in(request)
    fqn = entity_name(request, namespace)
    doc = await ctl.store.get_entity(fqn.doc_id())
    action = as_action(doc)
    await ctl.store.delete_entity(doc.doc_id, doc.rev)
    await ctl.entities.invalidate(doc.doc_id)
    return web.json_response(action.api())


async def put_action(request: web.Request) -> web.Response:
    ctl = controller_of(request)
    identity, namespace = await ctl.caller_in(request)
    fqn = entity_name(request, namespace)
    overwrite = bool_param(request, "overwrite")
    content = ActionPut.model_validate(await read_json_object(request, MAX_ACTION_BODY_BYTES))
    if fqn.package is not None:
        await _writable_package(ctl, f"{fqn.namespace}/{fqn.package}")
    doc_id = fqn.doc_id()
    existing = await existing_for_put(ctl, doc_id, ACTIONS, overwrite)
    current = WhiskAction.model_validate(existing.body) if existing else None
    if content.exec is not None and content.exec.kind == SEQUENCE:
        content = content.model_copy(update={"exec": await check_sequence(ctl, identity, fqn, content.exec)})
    action = _merge(fqn, content, current)
    await write_entity(ctl, doc_id, ACTIONS, action.model_dump(mode="json"), existing)
    return web.json_response(action.api())


async def _writable_package(ctl: Controller, doc_id: str) -> None:
    """Actions may be put only into an existing package of the caller's own, never into a binding."""
    try:
        package = as_package(await ctl.store.get_entity(doc_id))
    except StoreNotFound:
        raise NotFound(messages.NOT_FOUND) from None
    if package.binding is not None:
        raise BadRequest(messages.ACTION_IN_BINDING)


def _merge(fqn: FullyQualifiedName, content: ActionPut, current: WhiskAction | None) -> WhiskAction:
    """The action after applying a create (`current` None) or update request, validated."""
    if content.exec is None and current is None:
        raise BadRequest(messages.MALFORMED.format(detail=messages.EXEC_MISSING))
    exec_ = _checked_exec(content.exec) if content.exec is not None else current.exec  # type: ignore[union-attr]
    parameters = content.parameters if content.parameters is not None else (current.parameters if current else [])
    check_parameters_size(parameters)
    annotations = content.annotations if content.annotations is not None else (
        current.annotations if current else [])
    annotations = params.without(annotations, content.delAnnotations or [])
    if params.get(annotations, PROVIDE_API_KEY) is None:
        inherited = current.annotation(PROVIDE_API_KEY) if current else None
        annotations = [*annotations, KeyValue(key=PROVIDE_API_KEY, value=inherited if inherited is not None else False)]
    annotations = params.merge(annotations, [KeyValue(key="exec", value=exec_.kind)])
    base_limits = current.limits if current else ActionLimits()
    action_limits = (content.limits or ActionLimitsPut()).apply_to(base_limits)
    if content.version is not None:
        version = content.version
    else:
        version = bump(current.version) if current else DEFAULT_VERSION
    return WhiskAction(
        namespace=str(fqn.path),
        name=fqn.name,
        version=version,
        publish=content.publish if content.publish is not None else (current.publish if current else False),
        exec=exec_,
        parameters=parameters,
        annotations=annotations,
        limits=action_limits,
        updated=int(time.time() * 1000),
    )


def _checked_exec(exec_: Exec) -> Exec:
    runtimes = manifest()
    kind = runtimes.resolve(exec_.kind)
    if kind is None:
        known = ", ".join(runtimes.known_kinds())
        raise BadRequest(messages.MALFORMED.format(detail=messages.KIND_UNKNOWN.format(kind=exec_.kind, kinds=known)))
    if kind == SEQUENCE:
        return exec_.model_copy(update={"kind": kind, "binary": False, "code": None, "image": None})
    if kind == BLACKBOX:
        if not exec_.image:
            raise BadRequest(messages.MALFORMED.format(detail=messages.IMAGE_MISSING))
    elif not exec_.code:
        raise BadRequest(messages.MALFORMED.format(detail=messages.CODE_MISSING.format(kind=kind)))
    if exec_.code is not None and len(exec_.code) > limits.MAX_CODE_BYTES:
        raise PayloadTooLarge(messages.CODE_TOO_LARGE.format(size=len(exec_.code), allowed=limits.MAX_CODE_BYTES))
    return exec_.model_copy(update={"kind": kind, "binary": exec_.is_binary(), "components": None})


# --- invoke -----------------------------------------------------------------------------------------------------


async def invoke_action(request: web.Request) -> web.Response:
    ctl = controller_of(request)
    identity, namespace = await ctl.caller_reading(request)
    fqn = entity_name(request, namespace)
    blocking = bool_param(request, "blocking")
    result_only = bool_param(request, "result")
    wait_ms = _blocking_wait_ms(request, ctl.settings.max_blocking_wait_ms)
    payload = await read_json_object(request, ctl.settings.max_body_bytes)
    resolved = await resolve_action(ctl, identity, fqn)
    if resolved.action.annotation("final") is True and set(payload) & set(resolved.parameters):
        raise BadRequest(messages.RESERVED_PARAMETERS)
    ctl.throttles.check_invocation(identity, ctl.balancer.in_flight(identity.namespace))
    api_key = None
    if resolved.action.annotation(PROVIDE_API_KEY) is True:
        credentials = parse_basic(request.headers.get("Authorization"))
        api_key = ":".join(credentials) if credentials else None
    outcome = await invoke(ctl, identity, resolved, payload, blocking=blocking, wait_ms=wait_ms, api_key=api_key)
    headers = {ACTIVATION_ID_HEADER: outcome.activation_id}
    record = outcome.record
    if not blocking or record is None:
        return web.json_response({"activationId": outcome.activation_id}, status=202, headers=headers)
    body: Any = record.response.result if result_only else record.api()
    return web.json_response(body, status=invoke_status(record.response.statusCode), headers=headers)


def _blocking_wait_ms(request: web.Request, max_ms: int) -> int:
    timeout = int_param(request, "timeout")
    if timeout is None:
        return max_ms
    if timeout <= 0 or timeout > max_ms:
        raise BadRequest(messages.BLOCKING_TIMEOUT.format(max_ms=max_ms))
    return timeout


def invoke_status(status_code: int) -> int:
    """OpenWhisk's mapping: success 200; application and developer errors 502; whisk errors 500."""
    if status_code == SUCCESS:
        return 200
    if status_code == WHISK_ERROR:
        return 500
    return 502
