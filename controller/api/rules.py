"""Rules: list, get, create/update, delete, and enable/disable (OpenWhisk's Rules.scala).

A rule's status lives in its trigger's `rules` map, as in OpenWhisk; every change of a rule rewrites that map
with a read-modify-write at the trigger's revision, retried when another writer got there first. A rule is active
when created, keeps its status when updated (also when it moves to another trigger), and shows `inactive` when its
trigger is gone. Deleting a rule of any status is allowed and unlinks it from its trigger.

The rule is written before its trigger is linked, so a failure in between leaves a rule that shows `inactive`
rather than a trigger firing for a rule that does not exist.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

from controller import messages
from controller.api.common import entity_name, existing_for_put, write_entity
from controller.api.triggers import TRIGGERS, as_trigger
from controller.context import Controller, controller_of
from controller.errors import ApiError, BadRequest, Conflict, Forbidden, NotFound
from controller.invoke import resolve_action
from controller.requests import bool_param, list_window, read_json_object
from whisk.entities.identity import Identity
from whisk.entities.names import InvalidName
from whisk.entities.rule import ACTIVE, INACTIVE, STATUSES, PathName, RulePut, RuleStatus, WhiskRule
from whisk.entities.semver import DEFAULT_VERSION, bump
from whisk.entities.trigger import WhiskTrigger
from whisk.store import Conflict as StoreConflict
from whisk.store import Document, StoreError
from whisk.store import NotFound as StoreNotFound

RULES = "rules"
MAX_RULE_BODY_BYTES = 1024 * 1024
#: how often a change to a trigger's rules is tried when concurrent writers keep changing the trigger
MAX_TRIGGER_UPDATES = 10
NS = "/api/v1/namespaces/{namespace}"


class TriggerGone(Exception):
    """The trigger a rule names does not exist (or its id now names another kind of entity)."""


def as_rule(doc: Document) -> WhiskRule:
    if doc.entity_type != RULES:
        raise Conflict(messages.WRONG_COLLECTION)
    return WhiskRule.model_validate(doc.body)


async def _trigger_or_none(ctl: Controller, doc_id: str) -> WhiskTrigger | None:
    """The trigger `doc_id`, or None when it is gone (or the id names something else), as OpenWhisk's `getTrigger`."""
    try:
        return as_trigger(await ctl.store.get_entity(doc_id))
    except (StoreNotFound, Conflict):
        return None


async def update_trigger(
    ctl: Controller, doc_id: str, change: Callable[[WhiskTrigger], WhiskTrigger]
) -> WhiskTrigger:
    """Apply `change` to the trigger `doc_id` at its current revision, retrying on conflicts (409 when they go on);
    `TriggerGone` when there is no such trigger. A change that changes nothing writes nothing."""
    for _ in range(MAX_TRIGGER_UPDATES):
        try:
            doc = await ctl.store.get_entity(doc_id)
        except StoreNotFound:
            raise TriggerGone(doc_id) from None
        if doc.entity_type != TRIGGERS:
            raise TriggerGone(doc_id)
        trigger = WhiskTrigger.model_validate(doc.body)
        changed = change(trigger)
        if changed == trigger:
            return trigger
        try:
            await ctl.store.put_entity(doc_id, TRIGGERS, changed.model_dump(mode="json"), doc.rev)
        except StoreNotFound:
            raise TriggerGone(doc_id) from None
        except StoreConflict:
            continue
        await ctl.entities.invalidate(doc_id)
        return changed
    raise Conflict(messages.CONCURRENT_MODIFICATION)


async def _status_of(ctl: Controller, rule: WhiskRule) -> RuleStatus:
    trigger = await _trigger_or_none(ctl, rule.trigger.doc_id)
    return trigger.rule_status(rule.doc_id) if trigger else INACTIVE


async def list_rules(request: web.Request) -> web.Response:
    """The rules of the namespace, each with its status (OpenWhisk lists them without; `wsk` and `pywsk` show it)."""
    ctl = controller_of(request)
    _, namespace = await ctl.caller_in(request)
    limit, skip = list_window(request, RULES)
    if bool_param(request, "count"):
        return web.json_response({RULES: await ctl.store.count_entities(namespace, RULES)})
    docs = await ctl.store.list_entities(namespace, RULES, limit, skip)
    rules = [WhiskRule.model_validate(doc.body) for doc in docs]
    trigger_ids = sorted({rule.trigger.doc_id for rule in rules})
    triggers = dict(zip(trigger_ids, await asyncio.gather(*(_trigger_or_none(ctl, t) for t in trigger_ids)),
                        strict=True))
    out = []
    for rule in rules:
        trigger = triggers[rule.trigger.doc_id]
        out.append(rule.api(trigger.rule_status(rule.doc_id) if trigger else INACTIVE))
    return web.json_response(out)


async def get_rule(request: web.Request) -> web.Response:
    ctl = controller_of(request)
    _, namespace = await ctl.caller_in(request)
    rule = as_rule(await ctl.store.get_entity(entity_name(request, namespace).doc_id()))
    return web.json_response(rule.api(await _status_of(ctl, rule)))


def _reference(value: Any, namespace: str) -> PathName | None:
    if value is None:
        return None
    try:
        return PathName.parse(value, namespace)
    except InvalidName:
        raise BadRequest(messages.MALFORMED.format(detail=messages.RULE_NAME_MALFORMED.format(name=value))) from None


async def _check_trigger(ctl: Controller, identity: Identity, trigger: PathName) -> None:
    """The caller may use only triggers of its own namespace, and the trigger must exist (400 otherwise)."""
    if trigger.namespace != identity.namespace:
        raise Forbidden(messages.NOT_AUTHORIZED)
    if await _trigger_or_none(ctl, trigger.doc_id) is None:
        raise BadRequest(messages.RULE_TRIGGER_MISSING.format(name=trigger))


async def _check_action(ctl: Controller, identity: Identity, action: PathName) -> None:
    """The caller must be able to invoke the action (its own, or in a shared package or a binding of one)."""
    try:
        await resolve_action(ctl, identity, action.fqn)
    except Forbidden:
        raise
    except (ApiError, StoreNotFound, InvalidName):
        raise BadRequest(messages.RULE_ACTION_MISSING.format(name=action)) from None


async def put_rule(request: web.Request) -> web.Response:
    ctl = controller_of(request)
    identity, namespace = await ctl.caller_in(request)
    fqn = entity_name(request, namespace)
    rule_id = fqn.doc_id()
    overwrite = bool_param(request, "overwrite")
    content = RulePut.model_validate(await read_json_object(request, MAX_RULE_BODY_BYTES))
    trigger_ref = _reference(content.trigger, namespace)
    action_ref = _reference(content.action, namespace)
    existing = await existing_for_put(ctl, rule_id, RULES, overwrite)
    current = WhiskRule.model_validate(existing.body) if existing else None
    if current is None:
        if trigger_ref is None or action_ref is None:
            raise BadRequest(messages.RULE_NEEDS_TRIGGER_AND_ACTION)
        status: RuleStatus = ACTIVE
    else:
        trigger_ref = trigger_ref or current.trigger
        action_ref = action_ref or current.action
        status = await _status_of(ctl, current)
    await _check_trigger(ctl, identity, trigger_ref)
    await _check_action(ctl, identity, action_ref)
    if content.version is not None:
        version = content.version
    else:
        version = bump(current.version) if current else DEFAULT_VERSION
    rule = WhiskRule(
        namespace=fqn.namespace,
        name=fqn.name,
        trigger=trigger_ref,
        action=action_ref,
        version=version,
        publish=content.publish if content.publish is not None else (current.publish if current else False),
        annotations=(content.annotations if content.annotations is not None
                     else (current.annotations if current else [])),
        updated=int(time.time() * 1000),
    )
    await write_entity(ctl, rule_id, RULES, rule.model_dump(mode="json"), existing)
    if current is not None and current.trigger.doc_id != trigger_ref.doc_id:
        try:
            await update_trigger(ctl, current.trigger.doc_id, lambda t: t.without_rule(rule_id))
        except TriggerGone:
            pass
    linked_action = action_ref
    try:
        await update_trigger(ctl, trigger_ref.doc_id, lambda t: t.with_rule(rule_id, linked_action, status))
    except TriggerGone:
        # the trigger was deleted since it was checked: a new rule is taken back, an updated one shows inactive
        if current is None:
            await _delete_quietly(ctl, rule_id)
        raise BadRequest(messages.RULE_TRIGGER_MISSING.format(name=trigger_ref)) from None
    return web.json_response(rule.api(status))


async def _delete_quietly(ctl: Controller, doc_id: str) -> None:
    try:
        doc = await ctl.store.get_entity(doc_id)
        await ctl.store.delete_entity(doc.doc_id, doc.rev)
    except StoreError:
        pass
    await ctl.entities.invalidate(doc_id)


async def set_rule_status(request: web.Request) -> web.Response:
    """Enable or disable: 200 with no body, also when the rule is already in that state (OpenWhisk's answer)."""
    ctl = controller_of(request)
    _, namespace = await ctl.caller_in(request)
    rule_id = entity_name(request, namespace).doc_id()
    body = await read_json_object(request, MAX_RULE_BODY_BYTES)
    if "status" not in body:
        raise BadRequest(messages.MALFORMED.format(detail="Object is missing required member 'status'"))
    requested = body["status"]
    if requested not in STATUSES:
        raise BadRequest(messages.MALFORMED.format(detail=messages.RULE_STATE_UNKNOWN.format(status=requested)))
    rule = as_rule(await ctl.store.get_entity(rule_id))
    if await _status_of(ctl, rule) != requested:
        try:
            await update_trigger(ctl, rule.trigger.doc_id, lambda t: t.with_rule(rule_id, rule.action, requested))
        except TriggerGone:
            raise NotFound(messages.RULE_NEEDS_TRIGGER) from None
    return web.Response(status=200)


async def delete_rule(request: web.Request) -> web.Response:
    ctl = controller_of(request)
    _, namespace = await ctl.caller_in(request)
    doc = await ctl.store.get_entity(entity_name(request, namespace).doc_id())
    rule = as_rule(doc)
    try:
        await update_trigger(ctl, rule.trigger.doc_id, lambda t: t.without_rule(rule.doc_id))
    except TriggerGone:
        pass  # no trigger left to unlink from
    await ctl.store.delete_entity(doc.doc_id, doc.rev)
    await ctl.entities.invalidate(doc.doc_id)
    return web.json_response(rule.api(INACTIVE))


ROUTES: list[web.RouteDef] = [
    web.get(f"{NS}/rules", list_rules),
    web.get(f"{NS}/rules/", list_rules),
    web.get(f"{NS}/rules/{{name}}", get_rule),
    web.put(f"{NS}/rules/{{name}}", put_rule),
    web.delete(f"{NS}/rules/{{name}}", delete_rule),
    web.post(f"{NS}/rules/{{name}}", set_rule_status),
]
