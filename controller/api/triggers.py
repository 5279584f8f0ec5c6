"""Triggers: list, get, create/update, delete, and fire (OpenWhisk's Triggers.scala).

Firing follows OpenWhisk: a trigger with no active rule answers 204 and leaves no record. Otherwise every rule the
trigger lists is worked through: an active rule's action is invoked non-blocking, as the caller, with the
trigger's parameters merged with the payload; an inactive one is only noted. The trigger's activation record
(`response.result` = the payload, as OpenWhisk; `end` 0, no annotations) keeps one JSON string per rule in its
`logs`: `{"statusCode":0,"success":true,"activationId":...,"rule":"ns/r","action":"ns/a"}`, or with `error`
instead of `activationId` when the rule is inactive (statusCode 1) or its action could not be started (1 for what
would be a 4xx of the invoke API, such as a missing action or a 429, and 3 for a 5xx).

Each rule's invocation counts as an invocation of the namespace (`check_invocation`), since OpenWhisk posts it
through its own invoke API; the fire itself counts against `firesPerMinute`. The rule invocations carry the
trigger activation's id as `cause` (OpenWhisk's HTTP self-call loses it; earlier OpenWhisk versions recorded it).

Unlike OpenWhisk, which answers 202 at once and writes the record later, the answer waits until every rule's
action has been dispatched and the record is stored: dispatching is quick (the invocations do not wait for their
actions) and a client that reads the activation right after the 202 finds it complete. The work is shielded from
the request, so a client that hangs up does not leave rules half-fired or the record unwritten.

The trigger is read from the store, not the entity cache, on every fire and rule change, so an enable or disable
through any controller counts from the next fire on; fires are rate-limited, so the read is cheap.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

from aiohttp import web

from controller import messages
from controller.api.actions import ACTIVATION_ID_HEADER, PROVIDE_API_KEY
from controller.api.common import check_parameters_size, entity_name, existing_for_put, write_entity
from controller.auth import parse_basic
from controller.context import Controller, controller_of
from controller.errors import BadRequest, Conflict, mapped_status
from controller.invoke import invoke, resolve_action
from controller.requests import bool_param, list_window, read_json_object
from whisk.entities import params
from whisk.entities.activation import APPLICATION_ERROR, SUCCESS, WHISK_ERROR, ActivationResponse, WhiskActivation
from whisk.entities.identity import Identity
from whisk.entities.rule import ACTIVE
from whisk.entities.semver import DEFAULT_VERSION, bump
from whisk.entities.trigger import FEED_ANNOTATION, ReducedRule, TriggerPut, WhiskTrigger, is_valid_feed
from whisk.ids import new_activation_id
from whisk.store import Document, StoreError

log = logging.getLogger(__name__)

TRIGGERS = "triggers"
MAX_TRIGGER_BODY_BYTES = 1024 * 1024
NS = "/api/v1/namespaces/{namespace}"


def as_trigger(doc: Document) -> WhiskTrigger:
    if doc.entity_type != TRIGGERS:
        raise Conflict(messages.WRONG_COLLECTION)
    return WhiskTrigger.model_validate(doc.body)


async def list_triggers(request: web.Request) -> web.Response:
    ctl = controller_of(request)
    _, namespace = await ctl.caller_in(request)
    limit, skip = list_window(request, TRIGGERS)
    if bool_param(request, "count"):
        return web.json_response({TRIGGERS: await ctl.store.count_entities(namespace, TRIGGERS)})
    docs = await ctl.store.list_entities(namespace, TRIGGERS, limit, skip)
    return web.json_response([WhiskTrigger.model_validate(doc.body).summary() for doc in docs])


async def get_trigger(request: web.Request) -> web.Response:
    ctl = controller_of(request)
    _, namespace = await ctl.caller_in(request)
    trigger = as_trigger(await ctl.store.get_entity(entity_name(request, namespace).doc_id()))
    return web.json_response(trigger.api())


async def put_trigger(request: web.Request) -> web.Response:
    ctl = controller_of(request)
    _, namespace = await ctl.caller_in(request)
    fqn = entity_name(request, namespace)
    overwrite = bool_param(request, "overwrite")
    content = TriggerPut.model_validate(await read_json_object(request, MAX_TRIGGER_BODY_BYTES))
    doc_id = fqn.doc_id()
    existing = await existing_for_put(ctl, doc_id, TRIGGERS, overwrite)
    current = WhiskTrigger.model_validate(existing.body) if existing else None
    annotations = content.annotations if content.annotations is not None else (
        current.annotations if current else [])
    if current is None and FEED_ANNOTATION in params.to_dict(annotations):
        if not is_valid_feed(params.get(annotations, FEED_ANNOTATION)):
            raise BadRequest(messages.FEED_NAME_INVALID)
    parameters = content.parameters if content.parameters is not None else (current.parameters if current else [])
    check_parameters_size(parameters)
    if content.version is not None:
        version = content.version
    else:
        version = bump(current.version) if current else DEFAULT_VERSION
    trigger = WhiskTrigger(
        namespace=fqn.namespace,
        name=fqn.name,
        version=version,
        publish=content.publish if content.publish is not None else (current.publish if current else False),
        parameters=parameters,
        annotations=annotations,
        limits={},
        rules=current.rules if current else None,
        updated=int(time.time() * 1000),
    )
    await write_entity(ctl, doc_id, TRIGGERS, trigger.model_dump(mode="json"), existing)
    return web.json_response(trigger.api())


async def delete_trigger(request: web.Request) -> web.Response:
    """Delete the trigger; its rules stay (OpenWhisk does the same) and show as inactive until it is created again
    and they are enabled."""
    ctl = controller_of(request)
    _, namespace = await ctl.caller_in(request)
    doc = await ctl.store.get_entity(entity_name(request, namespace).doc_id())
    trigger = as_trigger(doc)
    await ctl.store.delete_entity(doc.doc_id, doc.rev)
    await ctl.entities.invalidate(doc.doc_id)
    return web.json_response(trigger.api())


# --- fire ---------------------------------------------------------------------------------------------------------


async def fire_trigger(request: web.Request) -> web.Response:
    ctl = controller_of(request)
    identity, namespace = await ctl.caller_in(request)
    doc_id = entity_name(request, namespace).doc_id()
    ctl.throttles.check_fire(identity)
    payload = await read_json_object(request, ctl.settings.max_body_bytes)
    trigger = as_trigger(await ctl.store.get_entity(doc_id))
    if not trigger.has_active_rule():
        return web.Response(status=204)
    credentials = parse_basic(request.headers.get("Authorization"))
    api_key = ":".join(credentials) if credentials else None
    activation_id = new_activation_id()
    work = asyncio.ensure_future(fire(ctl, identity, trigger, payload, activation_id, api_key))
    await asyncio.shield(work)
    return web.json_response({"activationId": activation_id}, status=202,
                             headers={ACTIVATION_ID_HEADER: activation_id})


async def fire(
    ctl: Controller,
    identity: Identity,
    trigger: WhiskTrigger,
    payload: dict[str, Any],
    activation_id: str,
    api_key: str | None = None,
) -> WhiskActivation:
    """Work through every rule of `trigger` as `identity` and store the trigger's activation record, whose logs say
    what became of each rule. `api_key` (`uuid:key`) is handed to actions annotated `provide-api-key`."""
    start = int(time.time() * 1000)
    args = params.to_dict(trigger.parameters) | payload
    results = await asyncio.gather(*(
        _activate_rule(ctl, identity, rule, linked, args, activation_id, api_key)
        for rule, linked in (trigger.rules or {}).items()
    ))
    record = WhiskActivation(
        namespace=identity.namespace,
        name=trigger.name,
        version=trigger.version,
        subject=identity.subject,
        activationId=activation_id,
        start=start,
        end=0,
        response=ActivationResponse.success(payload),
        logs=[json.dumps(result, separators=(",", ":")) for result in results],
    )
    try:
        await ctl.store.put_activation(record)
    except StoreError as exc:
        # the rules have fired; losing the record is what OpenWhisk does too when its store fails
        log.error("could not store the activation %s of trigger %s: %r", activation_id, trigger.doc_id, exc)
    return record


def rule_result(
    rule: str, action: str, status_code: int, *, activation_id: str | None = None, error: str | None = None
) -> dict[str, Any]:
    """One rule's entry in a trigger activation's logs (OpenWhisk's `RuleActivationResult`)."""
    out: dict[str, Any] = {"statusCode": status_code, "success": status_code == SUCCESS}
    if activation_id is not None:
        out["activationId"] = activation_id
    else:
        out["error"] = error
    out["rule"] = rule
    out["action"] = action
    return out


async def _activate_rule(
    ctl: Controller,
    identity: Identity,
    rule: str,
    linked: ReducedRule,
    args: dict[str, Any],
    cause: str,
    api_key: str | None,
) -> dict[str, Any]:
    action = linked.action.doc_id
    if linked.status != ACTIVE:
        return rule_result(rule, action, APPLICATION_ERROR,
                           error=messages.TRIGGER_WITH_INACTIVE_RULE.format(rule=rule, action=action))
    try:
        resolved = await resolve_action(ctl, identity, linked.action.fqn)
        if resolved.action.annotation("final") is True and set(args) & set(resolved.parameters):
            raise BadRequest(messages.RESERVED_PARAMETERS)
        ctl.throttles.check_invocation(identity, ctl.balancer.in_flight(identity.namespace))
        provided_key = api_key if resolved.action.annotation(PROVIDE_API_KEY) is True else None
        outcome = await invoke(ctl, identity, resolved, args, blocking=False, cause=cause, api_key=provided_key)
    except Exception as exc:  # every failure becomes the rule's entry in the logs, as an invoke API error would
        status, message = _failure(exc)
        if status >= 500:
            log.error("trigger-fired action %s of rule %s failed to start: %r", action, rule, exc)
        return rule_result(rule, action, WHISK_ERROR if status >= 500 else APPLICATION_ERROR, error=message)
    return rule_result(rule, action, SUCCESS, activation_id=outcome.activation_id)


def _failure(exc: Exception) -> tuple[int, str]:
    """The status and message the invoke API would have answered for `exc`."""
    return mapped_status(exc) or (500, messages.INTERNAL_ERROR)


ROUTES: list[web.RouteDef] = [
    web.get(f"{NS}/triggers", list_triggers),
    web.get(f"{NS}/triggers/", list_triggers),
    web.get(f"{NS}/triggers/{{name}}", get_trigger),
    web.put(f"{NS}/triggers/{{name}}", put_trigger),
    web.delete(f"{NS}/triggers/{{name}}", delete_trigger),
    web.post(f"{NS}/triggers/{{name}}", fire_trigger),
]
