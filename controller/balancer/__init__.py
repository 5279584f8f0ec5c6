"""The load balancer: publishes activation messages to invokers and completes callers' waits from the invokers'
completion messages.

Every published activation is tracked until its completion arrives. If none arrives within the action's time limit
plus a grace period, the balancer completes it itself: the caller gets a whisk internal error and the activation is
recorded as one, so nothing hangs and nothing vanishes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field

from pydantic import ValidationError

from controller.balancer.schedule import home_invoker
from whisk import logs
from whisk.bus import Bus, BusError, Consumer
from whisk.entities.activation import ActivationResponse, WhiskActivation
from whisk.entities.params import KeyValue
from whisk.messages import ActivationMessage, CompletionMessage, completion_topic, invoker_topic
from whisk.store import Conflict, Store, StoreError

log = logging.getLogger(__name__)

FORCED_COMPLETION_ERROR = "The invoker did not answer in time; the activation was abandoned."


@dataclass
class _Pending:
    message: ActivationMessage
    action_path: str
    timeout_ms: int
    future: asyncio.Future[CompletionMessage | None]
    timer: asyncio.TimerHandle | None = field(default=None)


class LoadBalancer:
    def __init__(
        self, bus: Bus, store: Store, controller_id: str, invoker_ids: list[int], completion_grace_s: float
    ) -> None:
        self._bus = bus
        self._store = store
        self._controller_id = controller_id
        self._invoker_ids = invoker_ids
        self._grace_s = completion_grace_s
        self._pending: dict[str, _Pending] = {}
        self._in_flight: dict[str, int] = {}
        self._consumer: Consumer | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def completion_topic(self) -> str:
        return completion_topic(self._controller_id)

    async def start(self) -> None:
        self._consumer = await self._bus.consumer(self.completion_topic, f"controller{self._controller_id}")
        self._task = asyncio.create_task(self._consume(), name="completion-consumer")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._consumer is not None:
            await self._consumer.close()
            self._consumer = None
        for pending in list(self._pending.values()):
            self._finish(pending.message.activationId, None)

    def in_flight(self, namespace: str) -> int:
        """Activations of `namespace` published and not yet completed."""
        return self._in_flight.get(namespace, 0)

    async def publish(
        self, message: ActivationMessage, action_path: str, timeout_ms: int
    ) -> asyncio.Future[CompletionMessage | None]:
        """Send `message` to an invoker; the future resolves with its completion (None if it was forced)."""
        invoker = home_invoker(self._invoker_ids, message.user.namespace, message.action.doc_id)
        future: asyncio.Future[CompletionMessage | None] = asyncio.get_running_loop().create_future()
        pending = _Pending(message, action_path, timeout_ms, future)
        self._pending[message.activationId] = pending
        namespace = message.user.namespace
        self._in_flight[namespace] = self._in_flight.get(namespace, 0) + 1
        pending.timer = asyncio.get_running_loop().call_later(
            timeout_ms / 1000 + self._grace_s, self._force, message.activationId
        )
        try:
            await self._bus.send(invoker_topic(invoker), message.serialize())
        except BusError:
            self._finish(message.activationId, None)
            raise
        return future

    def _finish(self, activation_id: str, completion: CompletionMessage | None) -> _Pending | None:
        pending = self._pending.pop(activation_id, None)
        if pending is None:
            return None
        if pending.timer is not None:
            pending.timer.cancel()
        namespace = pending.message.user.namespace
        left = self._in_flight.get(namespace, 1) - 1
        if left > 0:
            self._in_flight[namespace] = left
        else:
            self._in_flight.pop(namespace, None)
        if not pending.future.done():
            pending.future.set_result(completion)
        return pending

    def _force(self, activation_id: str) -> None:
        pending = self._finish(activation_id, None)
        if pending is not None:
            log.warning("no completion for activation %s: recording it as a whisk error", activation_id)
            asyncio.create_task(self._record_forced(pending))  # noqa: RUF006 - short-lived, errors logged inside

    async def _record_forced(self, pending: _Pending) -> None:
        message = pending.message
        now = int(time.time() * 1000)
        record = WhiskActivation(
            namespace=message.user.namespace,
            name=message.action.name,
            version=message.action.version,
            subject=message.user.subject,
            activationId=message.activationId,
            start=message.transid[1],
            end=now,
            response=ActivationResponse.whisk_error(FORCED_COMPLETION_ERROR),
            annotations=[KeyValue(key="path", value=pending.action_path)],
            cause=message.cause,
        )
        try:
            await self._store.put_activation(record)
        except Conflict:
            pass  # the invoker recorded it after all
        except StoreError:
            log.exception("could not record forced completion of %s", message.activationId)

    async def _consume(self) -> None:
        assert self._consumer is not None
        while True:
            try:
                records = await self._consumer.peek(1.0)
                for record in records:
                    try:
                        completion = CompletionMessage.parse(record.value)
                    except ValidationError:
                        log.error("undecodable completion at %s/%d", record.topic, record.offset)
                        continue
                    logs.transaction_id.set(completion.transid[0])
                    self._finish(completion.activationId, completion)
                if records:
                    await self._consumer.commit()
            except asyncio.CancelledError:
                raise
            except BusError:
                log.exception("completion consumer failed; retrying")
                await asyncio.sleep(1.0)
