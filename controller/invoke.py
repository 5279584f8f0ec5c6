"""Finding the action a name addresses, and running it: the one path every way of invoking goes through (the REST
API, web actions, API routes, sequences and rules).

`resolve_action` follows packages and bindings and merges parameters as OpenWhisk does: package < binding <
action (< the invocation's payload, added by `invoke`). `invoke` publishes to an invoker through the load balancer,
runs a system action in-process, or runs a sequence, and waits for the record when asked to.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

from controller import messages
from controller.context import Controller
from controller.errors import Conflict, Forbidden, NotFound, ServiceUnavailable
from controller.system import BUILTIN_KIND, SystemActionFailed, SystemCall, handler_of
from whisk import logs
from whisk.entities import params
from whisk.entities.action import WhiskAction
from whisk.entities.activation import ActivationResponse, WhiskActivation
from whisk.entities.identity import Identity
from whisk.entities.names import FullyQualifiedName
from whisk.entities.package import WhiskPackage
from whisk.entities.params import KeyValue
from whisk.ids import new_activation_id
from whisk.messages import ActionRef, ActivationMessage, CompletionMessage, ControllerRef
from whisk.runtimes import SEQUENCE
from whisk.store import Document, StoreError

log = logging.getLogger(__name__)

ACTIONS = "actions"
PACKAGES = "packages"


@dataclass(frozen=True)
class ResolvedAction:
    #: the name as the caller addressed it (through a binding, if one was used)
    name: FullyQualifiedName
    action: WhiskAction
    rev: str
    #: package < binding < action parameters, merged
    parameters: dict[str, Any]
    #: `ns/binding` when the action was reached through a binding
    binding: str | None = None

    @property
    def path(self) -> str:
        """The action's own path, `ns/name` or `ns/pkg/name`."""
        return f"{self.action.namespace}/{self.action.name}"


def as_action(doc: Document) -> WhiskAction:
    if doc.entity_type != ACTIONS:
        raise Conflict(messages.WRONG_COLLECTION)
    return WhiskAction.model_validate(doc.body)


def as_package(doc: Document) -> WhiskPackage:
    if doc.entity_type != PACKAGES:
        raise Conflict(messages.WRONG_COLLECTION)
    return WhiskPackage.model_validate(doc.body)


async def readable_package(ctl: Controller, identity: Identity, doc_id: str) -> WhiskPackage:
    """The package `doc_id` if the caller may read it: its own, or published by another namespace."""
    package = as_package(await ctl.entities.get(doc_id))
    if package.namespace != identity.namespace and not package.publish:
        raise Forbidden(messages.NOT_AUTHORIZED)
    return package


async def resolve_action(ctl: Controller, identity: Identity, fqn: FullyQualifiedName) -> ResolvedAction:
    """The action `fqn` names (its namespace already resolved), if `identity` may run it. Actions outside packages
    belong to their namespace alone; actions of a published package, or of a binding to one, are for everyone."""
    if fqn.package is None:
        if fqn.namespace != identity.namespace:
            raise Forbidden(messages.NOT_AUTHORIZED)
        doc = await ctl.entities.get(fqn.doc_id())
        action = as_action(doc)
        return ResolvedAction(fqn, action, doc.rev, params.to_dict(action.parameters))
    package = await readable_package(ctl, identity, f"{fqn.namespace}/{fqn.package}")
    merged: dict[str, Any] = {}
    binding = None
    if package.binding is not None:
        bound = await readable_package(ctl, identity, package.binding.doc_id)
        if bound.binding is not None:
            raise NotFound(messages.NOT_FOUND)  # bindings of bindings are refused at create; never follow one
        merged |= params.to_dict(bound.parameters)
        binding = package.doc_id
        action_id = f"{bound.doc_id}/{fqn.name}"
    else:
        action_id = fqn.doc_id()
    merged |= params.to_dict(package.parameters)
    doc = await ctl.entities.get(action_id)
    action = as_action(doc)
    return ResolvedAction(fqn, action, doc.rev, merged | params.to_dict(action.parameters), binding)


async def resolve_name(ctl: Controller, identity: Identity, text: str) -> ResolvedAction:
    """Resolve a reference as clients write it (`/ns/pkg/a`, `pkg/a`, `a`), `_` being the caller's namespace."""
    return await resolve_action(ctl, identity, FullyQualifiedName.parse(text).resolve(identity.namespace))


@dataclass
class Outcome:
    activation_id: str
    #: the finished record; None when the call does not wait or the wait ran out first
    record: WhiskActivation | None


async def invoke(
    ctl: Controller,
    identity: Identity,
    resolved: ResolvedAction,
    payload: dict[str, Any],
    *,
    blocking: bool,
    wait_ms: int | None = None,
    cause: str | None = None,
    api_key: str | None = None,
) -> Outcome:
    """Run `resolved` with `payload` as `identity`. With `blocking`, wait up to `wait_ms` (None: until the action
    ends, its time limit bounds it) for the record; the activation goes on when the wait runs out."""
    activation_id = new_activation_id()
    args = resolved.parameters | payload
    kind = resolved.action.exec.kind
    if kind == SEQUENCE:
        from controller.sequences import run_sequence  # sequences invoke back into this module

        work: asyncio.Future[WhiskActivation | None] = asyncio.ensure_future(
            run_sequence(ctl, identity, resolved, args, activation_id, cause))
    elif kind == BUILTIN_KIND:
        work = asyncio.ensure_future(_run_system_action(ctl, identity, resolved, args, activation_id, cause))
    else:
        message = ActivationMessage(
            transid=(logs.transaction_id.get(), int(time.time() * 1000)),
            action=ActionRef(path=resolved.action.namespace, name=resolved.action.name,
                             version=resolved.action.version, revision=resolved.rev),
            user=identity,
            activationId=activation_id,
            rootControllerIndex=ControllerRef(asString=ctl.settings.controller_id),
            blocking=blocking,
            content=args,
            cause=cause,
            apiKey=api_key,
            binding=resolved.binding,
        )
        completion = await ctl.balancer.publish(
            message, resolved.path, resolved.action.limits.timeout, resolved.action.limits.memory)
        work = asyncio.ensure_future(_record_of(ctl, completion))
    if not blocking:
        work.add_done_callback(_log_failure)
        return Outcome(activation_id, None)
    try:
        if wait_ms is None:
            record = await asyncio.shield(work)
        else:
            record = await asyncio.wait_for(asyncio.shield(work), wait_ms / 1000)
    except TimeoutError:
        work.add_done_callback(_log_failure)
        return Outcome(activation_id, None)
    return Outcome(activation_id, record)


def _log_failure(task: asyncio.Future[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("activation failed unrecorded: %r", task.exception())


async def _record_of(ctl: Controller, completion: asyncio.Future[CompletionMessage | None]) -> WhiskActivation | None:
    """The record a blocking completion carries (kept for reads that come before the invoker stored it); None for a
    non-blocking one, whose caller reads the record from the store later."""
    done = await completion
    if done is None:
        raise ServiceUnavailable(messages.SERVICE_UNAVAILABLE)
    if done.response is None:
        return None
    record = WhiskActivation.model_validate(done.response)
    ctl.recent.add(record)
    return record


async def _run_system_action(
    ctl: Controller, identity: Identity, resolved: ResolvedAction, args: dict[str, Any], activation_id: str,
    cause: str | None,
) -> WhiskActivation:
    start = int(time.time() * 1000)
    handler = handler_of(resolved.action)
    if handler is None:
        response = ActivationResponse.whisk_error(f"The system action {resolved.path} has no handler here.")
    else:
        try:
            result = await handler(SystemCall(ctl, identity, resolved.action, args, activation_id))
            response = ActivationResponse(statusCode=0, result=result)
        except SystemActionFailed as exc:
            response = ActivationResponse.application_error(str(exc))
        except (StoreError, ServiceUnavailable) as exc:
            log.warning("system action %s failed: %r", resolved.path, exc)
            response = ActivationResponse.whisk_error(messages.SERVICE_UNAVAILABLE)
    end = int(time.time() * 1000)
    record = activation_record(identity, resolved, activation_id, start, end, response, cause=cause)
    await ctl.store.put_activation(record)
    return record


def activation_record(
    identity: Identity,
    resolved: ResolvedAction,
    activation_id: str,
    start: int,
    end: int,
    response: ActivationResponse,
    *,
    logs_: list[str] | None = None,
    cause: str | None = None,
    extra: list[KeyValue] | None = None,
    duration: int | None = None,
) -> WhiskActivation:
    """The record of an activation the controller ran itself (system actions, sequences)."""
    annotations = [
        KeyValue(key="path", value=resolved.path),
        KeyValue(key="kind", value=resolved.action.exec.kind),
        KeyValue(key="limits", value=resolved.action.limits.model_dump()),
        *(extra or []),
    ]
    if resolved.binding is not None:
        annotations.append(KeyValue(key="binding", value=resolved.binding))
    return WhiskActivation(
        namespace=identity.namespace,
        name=resolved.action.name,
        version=resolved.action.version,
        subject=identity.subject,
        activationId=activation_id,
        start=start,
        end=end,
        duration=duration if duration is not None else end - start,
        response=response,
        logs=logs_ or [],
        annotations=annotations,
        cause=cause,
    )
