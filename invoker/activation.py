"""Running one activation on a container and turning what happened into an activation record.

OpenWhisk's rules: `/init` once per container (cold or prewarmed) and `/run` per activation, each within the
action's time limit; the outcome is a success, an application error (the action returned `error`), a developer
error (the action failed, timed out, crashed or answered nonsense) or a whisk internal error (the platform failed).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from invoker import logs as actlogs
from invoker.containers import Container, Crashed, OutOfMemory, RunResult, TimedOut
from whisk.entities import params
from whisk.entities.action import WhiskAction
from whisk.entities.activation import (
    APPLICATION_ERROR,
    DEVELOPER_ERROR,
    WHISK_ERROR,
    ActivationResponse,
    WhiskActivation,
)
from whisk.entities.limits import MAX_PAYLOAD_BYTES
from whisk.entities.names import SYSTEM_NAMESPACE
from whisk.entities.params import KeyValue
from whisk.messages import ActivationMessage

ABNORMAL_INIT = "The action did not initialize and exited unexpectedly."
ABNORMAL_RUN = "The action did not produce a valid response and exited unexpectedly."
MEMORY_EXHAUSTED = "The action exhausted its memory and was aborted."
PROVISION_ERROR = "Failed to provision resources to run the action."
ACTION_REMOVED = "Action could not be found or may have been deleted."
ACTION_FETCH_ERROR = "Action could not be fetched."
ACTION_MISMATCH = "Action version is not compatible and cannot be invoked."


def timed_out_message(timeout_ms: int, init: bool = False) -> str:
    return f"The action exceeded its time limits of {timeout_ms} milliseconds" + (
        " during initialization." if init else "."
    )


def too_large_message(size: int) -> str:
    return f"The action produced a response that exceeded the allowed length: {size} > {MAX_PAYLOAD_BYTES} bytes."


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True)
class Execution:
    """What running an activation on a container produced. `container_ok` is False when the container must not
    be reused (it timed out, crashed, failed to initialise or answered something unusable)."""

    response: ActivationResponse
    start_ms: int
    end_ms: int
    init_ms: int | None
    timed_out: bool
    logs: list[str]
    container_ok: bool


def is_system_action(action: WhiskAction) -> bool:
    """Whether `action` belongs to the platform (the `whisk.system` namespace, which tenants cannot write to)."""
    return action.namespace.split("/", 1)[0] == SYSTEM_NAMESPACE


def action_path(action: WhiskAction) -> str:
    """`ns/name` or `ns/pkg/name`: the `path` annotation of activations."""
    return f"{action.namespace}/{action.name}"


def _parse(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return None


def _text(body: bytes) -> str:
    return body.decode(errors="replace")


def init_response(result: RunResult) -> ActivationResponse | None:
    """None when `/init` succeeded, else the developer error to record."""
    if result.ok:
        return None
    value = _parse(result.body)
    if isinstance(value, dict) and "error" in value:
        return ActivationResponse.developer_error(value["error"])
    text = _text(result.body)
    return ActivationResponse.developer_error(
        "The action failed during initialization" + (f": {text}" if text else ".")
    )


def run_response(result: RunResult) -> ActivationResponse:
    """The outcome of a `/run` answer (see the module docstring)."""
    if result.size > MAX_PAYLOAD_BYTES:
        return ActivationResponse.application_error(too_large_message(result.size), size=result.size)
    value = _parse(result.body)
    if result.ok and isinstance(value, dict):
        if "error" in value:
            return ActivationResponse(statusCode=APPLICATION_ERROR, result=value, size=result.size)
        return ActivationResponse.success(value, size=result.size)
    if result.ok and isinstance(value, list):
        return ActivationResponse.success(value, size=result.size)
    if not result.ok and isinstance(value, dict) and "error" in value:
        return ActivationResponse.developer_error(value["error"])
    text = _text(result.body)
    return ActivationResponse.developer_error(
        "The action did not produce a valid JSON response" + (f": {text}" if text else ".")
    )


def _failure(exc: TimedOut | Crashed, timeout_ms: int, init: bool) -> ActivationResponse:
    if isinstance(exc, TimedOut):
        return ActivationResponse.developer_error(timed_out_message(timeout_ms, init))
    if isinstance(exc, OutOfMemory):
        return ActivationResponse.developer_error(MEMORY_EXHAUSTED)
    return ActivationResponse.developer_error(ABNORMAL_INIT if init else ABNORMAL_RUN)


def _environment(msg: ActivationMessage, action: WhiskAction, api_host: str, deadline_ms: int) -> dict[str, str]:
    env = {
        "__OW_API_HOST": api_host,
        "__OW_NAMESPACE": msg.user.namespace,
        "__OW_ACTION_NAME": "/" + action_path(action),
        "__OW_ACTION_VERSION": action.version,
        "__OW_ACTIVATION_ID": msg.activationId,
        "__OW_TRANSACTION_ID": msg.transid[0],
        "__OW_DEADLINE": str(deadline_ms),
    }
    if msg.apiKey is not None:
        env["__OW_API_KEY"] = msg.apiKey
    return env


def arguments(msg: ActivationMessage, action: WhiskAction) -> dict[str, Any]:
    """The action's parameters with the invocation's on top."""
    return params.to_dict(action.parameters) | (msg.content or {})


async def execute(
    container: Container,
    needs_init: bool,
    msg: ActivationMessage,
    action: WhiskAction,
    api_host: str,
    system_env: Mapping[str, str] | None = None,
) -> Execution:
    """Initialise `container` if needed, run the activation and collect its logs. Never raises a container error:
    every failure becomes the activation's response. `system_env` is set at `/init` for the platform's own actions
    (those in the `whisk.system` namespace) only."""
    timeout_ms = action.limits.timeout
    timeout_s = timeout_ms / 1000
    start = now_ms()
    init_ms: int | None = None
    response: ActivationResponse | None = None
    failed: TimedOut | Crashed | None = None
    args = arguments(msg, action)
    if needs_init:
        env = _environment(msg, action, api_host, start + timeout_ms)
        env |= {name: _env_value(args[name]) for name in msg.initArgs if name in args}
        if system_env and is_system_action(action):
            env |= system_env
        value = {
            "name": action.name,
            "main": action.exec.main or "main",
            "code": action.exec.code,
            "binary": action.exec.is_binary(),
            "env": env,
        }
        try:
            response = init_response(await container.initialize({"value": value}, timeout_s))
        except (TimedOut, Crashed) as exc:
            failed, response = exc, _failure(exc, timeout_ms, init=True)
        init_ms = now_ms() - start
    if response is None:
        run_start = now_ms()
        payload: dict[str, Any] = {
            "value": args,
            "namespace": msg.user.namespace,
            "action_name": "/" + action_path(action),
            "action_version": action.version,
            "activation_id": msg.activationId,
            "transaction_id": msg.transid[0],
            "deadline": str(run_start + timeout_ms),
        }
        if msg.apiKey is not None:
            payload["api_key"] = msg.apiKey
        try:
            response = run_response(await container.run(payload, timeout_s, MAX_PAYLOAD_BYTES + 1))
        except (TimedOut, Crashed) as exc:
            failed, response = exc, _failure(exc, timeout_ms, init=False)
    end = now_ms()
    assert response is not None
    logs = await collect_logs(container, action.limits.logs * 1024 * 1024, healthy=failed is None)
    # as OpenWhisk, a container whose activation ended in a developer error is not trusted again
    container_ok = response.statusCode not in (DEVELOPER_ERROR, WHISK_ERROR)
    return Execution(response, start, end, init_ms, isinstance(failed, TimedOut), logs, container_ok)


async def collect_logs(container: Container, limit_bytes: int, healthy: bool) -> list[str]:
    """The activation's log lines, with OpenWhisk's truncation line when `limit_bytes` cut them."""
    lines, truncated = await container.logs(limit_bytes, wait_for_sentinel=healthy)
    if limit_bytes == 0:
        return []
    if truncated:
        lines.append(actlogs.LogLine.now("stderr", actlogs.truncated_message(limit_bytes)).format())
    return lines


def _env_value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def record(msg: ActivationMessage, action: WhiskAction, execution: Execution) -> WhiskActivation:
    """The activation record of an activation that reached a container."""
    annotations = [
        KeyValue(key="path", value=action_path(action)),
        KeyValue(key="waitTime", value=max(0, execution.start_ms - msg.transid[1])),
        KeyValue(key="kind", value=action.exec.kind),
        KeyValue(key="timeout", value=execution.timed_out),
        KeyValue(key="limits", value=action.limits.model_dump()),
    ]
    if execution.init_ms is not None:
        annotations.append(KeyValue(key="initTime", value=execution.init_ms))
    if msg.binding is not None:
        annotations.append(KeyValue(key="binding", value=msg.binding))
    return WhiskActivation(
        namespace=msg.user.namespace,
        name=action.name,
        version=action.version,
        subject=msg.user.subject,
        activationId=msg.activationId,
        start=execution.start_ms,
        end=execution.end_ms,
        duration=execution.end_ms - execution.start_ms,
        response=execution.response,
        logs=execution.logs,
        annotations=annotations,
        cause=msg.cause,
    )


def fallback_record(
    msg: ActivationMessage, response: ActivationResponse, action: WhiskAction | None = None
) -> WhiskActivation:
    """The record of an activation that never reached a container (action missing, no container, ...)."""
    now = now_ms()
    path = action_path(action) if action else f"{msg.action.path}/{msg.action.name}"
    annotations = [KeyValue(key="path", value=path), KeyValue(key="waitTime", value=max(0, now - msg.transid[1]))]
    if action is not None:
        annotations += [
            KeyValue(key="kind", value=action.exec.kind),
            KeyValue(key="limits", value=action.limits.model_dump()),
        ]
    annotations.append(KeyValue(key="timeout", value=False))
    if msg.binding is not None:
        annotations.append(KeyValue(key="binding", value=msg.binding))
    return WhiskActivation(
        namespace=msg.user.namespace,
        name=action.name if action else msg.action.name,
        version=action.version if action else msg.action.version,
        subject=msg.user.subject,
        activationId=msg.activationId,
        start=now,
        end=now,
        duration=0,
        response=response,
        annotations=annotations,
        cause=msg.cause,
    )
