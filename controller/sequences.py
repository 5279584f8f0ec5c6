"""Sequences: `exec.kind: "sequence"` with `components`, run by the controller as OpenWhisk's SequenceActions.

Each component is invoked in turn (blocking, without the 60 s cap: its own time limit bounds it) with the previous
one's result as its input; the first component gets the payload merged with the sequence's parameters. The first
component that does not succeed stops the sequence, whose response is then that component's. The sequence's record
lists its components' activation ids as logs; components carry the sequence's id as `cause`, and the outermost
sequence is annotated `topmost`.
"""

from __future__ import annotations

import time
from typing import Any

from controller import messages
from controller.context import Controller
from controller.errors import ApiError, BadRequest
from controller.invoke import ResolvedAction, activation_record, invoke, resolve_action
from whisk.entities.action import Exec
from whisk.entities.activation import ActivationResponse, WhiskActivation
from whisk.entities.identity import Identity
from whisk.entities.names import FullyQualifiedName, InvalidName
from whisk.entities.params import KeyValue
from whisk.runtimes import SEQUENCE
from whisk.store import StoreError

#: most atomic actions a sequence may run, nested sequences counted by their own atomic actions (OpenWhisk: 50)
MAX_ATOMIC_ACTIONS = 50


async def check_sequence(ctl: Controller, identity: Identity, fqn: FullyQualifiedName, exec_: Exec) -> Exec:
    """The sequence's exec with its components fully qualified (`_` resolved), after checking that they exist, are
    readable by the caller, do not lead back to the sequence itself and run at most 50 atomic actions."""
    if not exec_.components:
        raise BadRequest(messages.MALFORMED.format(detail=messages.SEQUENCE_COMPONENTS_MISSING))
    components = []
    for text in exec_.components:
        try:
            components.append(FullyQualifiedName.parse(text).resolve(identity.namespace))
        except InvalidName:
            raise BadRequest(messages.MALFORMED.format(detail=f"invalid component name '{text}'")) from None
    count = 0
    for component in components:
        count += await _atomic_count(ctl, identity, component, fqn.doc_id(), depth=0)
        if count > MAX_ATOMIC_ACTIONS:
            raise BadRequest(messages.SEQUENCE_TOO_LONG)
    return Exec(kind=SEQUENCE, components=[str(c) for c in components], binary=False)


async def _atomic_count(
    ctl: Controller, identity: Identity, fqn: FullyQualifiedName, self_id: str, depth: int
) -> int:
    if fqn.doc_id() == self_id:
        raise BadRequest(messages.SEQUENCE_SELF_REFERENCE)
    if depth > MAX_ATOMIC_ACTIONS:
        raise BadRequest(messages.SEQUENCE_TOO_LONG)
    try:
        resolved = await resolve_action(ctl, identity, fqn)
    except (ApiError, StoreError):
        raise BadRequest(messages.SEQUENCE_COMPONENT_MISSING) from None
    if resolved.path == self_id:
        raise BadRequest(messages.SEQUENCE_SELF_REFERENCE)
    if resolved.action.exec.kind != SEQUENCE:
        return 1
    total = 0
    for text in resolved.action.exec.components or []:
        total += await _atomic_count(ctl, identity, FullyQualifiedName.parse(text), self_id, depth + 1)
        if total > MAX_ATOMIC_ACTIONS:
            raise BadRequest(messages.SEQUENCE_TOO_LONG)
    return total


async def run_sequence(
    ctl: Controller,
    identity: Identity,
    sequence: ResolvedAction,
    args: dict[str, Any],
    activation_id: str,
    cause: str | None,
) -> WhiskActivation:
    """Run the components in order and store the sequence's record."""
    start = int(time.time() * 1000)
    component_ids: list[str] = []
    duration = 0
    response = ActivationResponse(result=args)
    payload: dict[str, Any] = args
    for text in sequence.action.exec.components or []:
        try:
            component = await resolve_action(ctl, identity, FullyQualifiedName.parse(text))
            outcome = await invoke(ctl, identity, component, payload, blocking=True, cause=activation_id)
        except (ApiError, StoreError) as exc:
            message = exc.message if isinstance(exc, ApiError) else messages.SERVICE_UNAVAILABLE
            response = ActivationResponse.application_error(f"Sequence component failure: {text}: {message}")
            break
        component_ids.append(outcome.activation_id)
        record = outcome.record
        if record is None:
            response = ActivationResponse.whisk_error(messages.SEQUENCE_COMPONENT_LOST.format(
                component=text, activation_id=outcome.activation_id))
            break
        duration += record.duration or 0
        response = record.response
        if not response.is_success:
            break
        result = response.result
        payload = result if isinstance(result, dict) else {}
    end = int(time.time() * 1000)
    extra = [KeyValue(key="waitTime", value=0)]
    if cause is None:
        extra.append(KeyValue(key="topmost", value=True))
    record = activation_record(identity, sequence, activation_id, start, end, response, logs_=component_ids,
                               cause=cause, extra=extra, duration=duration)
    await ctl.store.put_activation(record)
    return record
