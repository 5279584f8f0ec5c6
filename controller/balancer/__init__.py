"""The load balancer: publishes activation messages to invokers and completes callers' waits from the invokers'
completion messages.

It learns the invokers from their pings on the `health` topic: an invoker is healthy while its pings keep coming
and offline after `offline_after_s` of silence (or at once when it says it stops). Each activation is placed by
`schedule.schedule` on a healthy invoker with free memory, reserving the action's memory there until completion.

Every published activation is tracked until its completion arrives. When its invoker goes offline, or no completion
comes within the action's time limit plus a grace period, the balancer completes it itself: the activation is
recorded as a whisk internal error and a waiting caller gets that record, so nothing hangs and nothing vanishes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from controller.balancer.schedule import InvokerState, action_hash, schedule
from whisk import logs
from whisk.bus import Bus, BusError, Record, consume_forever
from whisk.entities.activation import ActivationResponse, WhiskActivation
from whisk.entities.params import KeyValue
from whisk.messages import (
    HEALTH_TOPIC,
    ActivationMessage,
    CompletionMessage,
    InvokerRef,
    PingMessage,
    completion_topic,
    invoker_topic,
)
from whisk.store import Conflict, Store, StoreError

log = logging.getLogger(__name__)

NO_ANSWER_ERROR = "The invoker did not answer in time; the activation was abandoned."
INVOKER_LOST_ERROR = "The invoker running this activation went away; the activation was abandoned."
#: an invoker is offline after this many seconds without a ping (OpenWhisk: 10 s)
OFFLINE_AFTER_S = 10.0
#: how often the balancer looks for invokers that went silent, in seconds
WATCH_INTERVAL_S = 1.0


class NoInvokers(Exception):
    """No healthy invoker can take an activation."""


@dataclass
class _Invoker:
    id: int
    user_memory_mb: int
    last_ping: float
    enabled: bool = True
    reserved_mb: int = 0


@dataclass
class _Pending:
    message: ActivationMessage
    action_path: str
    invoker: int
    memory_mb: int
    future: asyncio.Future[CompletionMessage | None]
    timer: asyncio.TimerHandle | None = field(default=None)


class LoadBalancer:
    def __init__(
        self,
        bus: Bus,
        store: Store,
        controller_id: str,
        completion_grace_s: float,
        *,
        offline_after_s: float = OFFLINE_AFTER_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._bus = bus
        self._store = store
        self._controller_id = controller_id
        self._grace_s = completion_grace_s
        self._offline_after_s = offline_after_s
        self._clock = clock
        self._invokers: dict[int, _Invoker] = {}
        self._pending: dict[str, _Pending] = {}
        self._in_flight: dict[str, int] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._background: set[asyncio.Task[None]] = set()

    @property
    def completion_topic(self) -> str:
        return completion_topic(self._controller_id)

    async def start(self) -> None:
        self._tasks = [
            asyncio.create_task(
                consume_forever(self._bus, self.completion_topic, f"controller{self._controller_id}",
                                self._on_completion),
                name="completion-consumer"),
            asyncio.create_task(
                consume_forever(self._bus, HEALTH_TOPIC, f"health-controller{self._controller_id}", self._on_ping,
                                relaxed=True),
                name="health-consumer"),
            asyncio.create_task(self._watch(), name="invoker-watch"),
        ]

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        for pending in list(self._pending.values()):
            self._finish(pending.message.activationId, None)
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)

    def in_flight(self, namespace: str) -> int:
        """Activations of `namespace` published and not yet completed."""
        return self._in_flight.get(namespace, 0)

    def invokers(self) -> list[InvokerState]:
        """What this controller knows of the invokers, ordered by id."""
        now = self._clock()
        return [
            InvokerState(id=i.id, healthy=self._healthy(i, now), free_mb=i.user_memory_mb - i.reserved_mb)
            for i in sorted(self._invokers.values(), key=lambda i: i.id)
        ]

    def _healthy(self, invoker: _Invoker, now: float) -> bool:
        return invoker.enabled and now - invoker.last_ping < self._offline_after_s

    async def publish(
        self, message: ActivationMessage, action_path: str, timeout_ms: int, memory_mb: int
    ) -> asyncio.Future[CompletionMessage | None]:
        """Send `message` to an invoker; the future resolves with its completion (forced ones included).
        Raises `NoInvokers` when no invoker is healthy and `BusError` when the bus refuses the message."""
        chosen = schedule(self.invokers(), action_hash(message.user.namespace, message.action.doc_id), memory_mb)
        if chosen is None:
            raise NoInvokers("no healthy invoker")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[CompletionMessage | None] = loop.create_future()
        pending = _Pending(message, action_path, chosen, memory_mb, future)
        self._pending[message.activationId] = pending
        self._invokers[chosen].reserved_mb += memory_mb
        namespace = message.user.namespace
        self._in_flight[namespace] = self._in_flight.get(namespace, 0) + 1
        pending.timer = loop.call_later(timeout_ms / 1000 + self._grace_s, self._force, message.activationId,
                                        NO_ANSWER_ERROR)
        try:
            await self._bus.send(invoker_topic(chosen), message.serialize())
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
        invoker = self._invokers.get(pending.invoker)
        if invoker is not None:
            invoker.reserved_mb = max(0, invoker.reserved_mb - pending.memory_mb)
        namespace = pending.message.user.namespace
        left = self._in_flight.get(namespace, 1) - 1
        if left > 0:
            self._in_flight[namespace] = left
        else:
            self._in_flight.pop(namespace, None)
        if not pending.future.done():
            pending.future.set_result(completion)
        return pending

    def _force(self, activation_id: str, reason: str) -> None:
        pending = self._pending.get(activation_id)
        if pending is None:
            return
        log.warning("forcing completion of %s: %s", activation_id, reason)
        record = self._whisk_error_record(pending, reason)
        completion = CompletionMessage(
            transid=pending.message.transid, activationId=activation_id, isSystemError=True,
            instance=InvokerRef(instance=pending.invoker), response=record.model_dump())
        self._finish(activation_id, completion)
        self._spawn(self._record(record))

    def _whisk_error_record(self, pending: _Pending, reason: str) -> WhiskActivation:
        message = pending.message
        return WhiskActivation(
            namespace=message.user.namespace,
            name=message.action.name,
            version=message.action.version,
            subject=message.user.subject,
            activationId=message.activationId,
            start=message.transid[1],
            end=int(time.time() * 1000),
            response=ActivationResponse.whisk_error(reason),
            annotations=[KeyValue(key="path", value=pending.action_path)],
            cause=message.cause,
        )

    async def _record(self, record: WhiskActivation) -> None:
        try:
            await self._store.put_activation(record)
        except Conflict:
            pass  # the invoker recorded it after all
        except StoreError:
            log.exception("could not record the forced completion of %s", record.activationId)

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _on_completion(self, record: Record) -> None:
        completion = CompletionMessage.parse(record.value)
        logs.transaction_id.set(completion.transid[0])
        self._finish(completion.activationId, completion)

    def _on_ping(self, record: Record) -> None:
        ping = PingMessage.parse(record.value)
        seen = ping.time / 1000 if ping.time is not None else self._clock()
        invoker = self._invokers.get(ping.name.instance)
        if invoker is None:
            invoker = self._invokers[ping.name.instance] = _Invoker(ping.name.instance, ping.user_memory_mb, seen)
            log.info("invoker %d seen", invoker.id)
        invoker.last_ping = max(invoker.last_ping, seen)
        invoker.user_memory_mb = ping.user_memory_mb
        was_enabled, invoker.enabled = invoker.enabled, ping.isEnabled
        if was_enabled and not ping.isEnabled:
            self._lost(invoker.id)

    def _lost(self, invoker_id: int) -> None:
        log.warning("invoker %d is offline", invoker_id)
        for activation_id in [a for a, p in self._pending.items() if p.invoker == invoker_id]:
            self._force(activation_id, INVOKER_LOST_ERROR)

    async def _watch(self) -> None:
        offline: set[int] = set()
        while True:
            await asyncio.sleep(WATCH_INTERVAL_S)
            now = self._clock()
            for invoker in list(self._invokers.values()):
                healthy = self._healthy(invoker, now)
                if not healthy and invoker.id not in offline:
                    offline.add(invoker.id)
                    self._lost(invoker.id)
                elif healthy and invoker.id in offline:
                    offline.discard(invoker.id)
                    log.info("invoker %d is back", invoker.id)
