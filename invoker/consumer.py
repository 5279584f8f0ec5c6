"""The invoker: consumes activation messages from `invoker{N}`, runs them in the pool, records and completes them.

Every message that parses gets an outcome (OpenWhisk's rule): an activation record in the store and a completion
message to the controller that asked, whatever failed on the way: a missing action is an application error, a
platform failure (no container, store down) a whisk internal error. A message that does not parse is logged with
its topic and offset and skipped. Bus failures are logged and retried while the invoker runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict

from pydantic import ValidationError

from invoker import activation as act
from invoker.containers import ContainerFactory, StartError, UnsupportedKind
from invoker.pool import ContainerPool, PrewarmSpec
from invoker.pool.policy import ActionKey
from whisk.bus import Bus, BusError, Consumer, Record
from whisk.config import InvokerSettings
from whisk.entities.action import WhiskAction
from whisk.entities.activation import WHISK_ERROR, ActivationResponse, WhiskActivation
from whisk.logs import fields, transaction_id
from whisk.messages import (
    HEALTH_TOPIC,
    ActivationMessage,
    CompletionMessage,
    InvokerRef,
    PingMessage,
    completion_topic,
    invoker_topic,
)
from whisk.runtimes import BLACKBOX, Runtime, manifest
from whisk.store import NotFound, Store, StoreError

log = logging.getLogger(__name__)

#: the `entity_type` of action documents in the whisks store (as the controller writes them)
ACTIONS = "actions"
#: pause between attempts after a bus failure, in seconds
BUS_RETRY_S = 1.0
#: attempts to publish one completion before giving up on it
COMPLETION_ATTEMPTS = 5
ACTION_CACHE_SIZE = 256
#: how long `stop()` waits for activations whose run ended to be completed and stored, in seconds
COMPLETE_DRAIN_S = 10.0
#: seconds between health pings
PING_INTERVAL_S = 1.0


class Invoker:
    """One invoker: `start()` it, `stop()` it. It owns its container pool and the container factory it is given
    (`stop()` closes both); the store and the bus belong to the caller, who closes them after `stop()`.

    Activations are handed to the pool without waiting for them; while `max_in_flight` are taken from the bus and
    not finished (running or queued in the pool), the consumer stops peeking."""

    def __init__(
        self,
        settings: InvokerSettings,
        store: Store,
        bus: Bus,
        factory: ContainerFactory,
        *,
        max_in_flight: int = 512,
    ) -> None:
        self.settings = settings
        self._system_env = settings.system_action_env()
        self._store = store
        self._bus = bus
        self._factory = factory
        self._max_in_flight = max_in_flight
        self.pool = ContainerPool(
            factory,
            user_memory_mb=settings.user_memory_mb,
            pause_grace_s=settings.pause_grace_s,
            idle_timeout_s=settings.idle_timeout_s,
            env={"__OW_API_HOST": settings.api_host},
            name_prefix=f"wsk{settings.invoker_id}",
        )
        self._ref = InvokerRef(instance=settings.invoker_id, userMemory=f"{settings.user_memory_mb} MB")
        self._actions: OrderedDict[tuple[str, str], WhiskAction] = OrderedDict()
        self._in_flight: set[asyncio.Task[None]] = set()
        self._completing: set[asyncio.Task[None]] = set()  # in-flight tasks past the run: completing and storing
        self._consuming: asyncio.Task[None] | None = None
        self._pinging: asyncio.Task[None] | None = None
        self._state = "new"

    @property
    def topic(self) -> str:
        return invoker_topic(self.settings.invoker_id)

    async def start(self) -> None:
        """Remove leftovers of an earlier run, start the prewarmed containers, then consume."""
        if self._state != "new":
            raise RuntimeError(f"Invoker cannot start when {self._state}")
        self._state = "running"
        await self._factory.cleanup()
        prewarm = []
        if self.settings.prewarm:
            for kind in self._factory.available_kinds():
                runtime = manifest().get(kind)
                if runtime is not None and runtime.prewarm_count > 0:
                    prewarm.append(PrewarmSpec(runtime, runtime.prewarm_memory_mb, runtime.prewarm_count))
        await self.pool.start(prewarm)
        await self._ping(enabled=True)
        self._pinging = asyncio.create_task(self._keep_pinging())
        self._consuming = asyncio.create_task(self._consume())
        log.info("invoker started", extra=fields(topic=self.topic, prewarm=[s.runtime.kind for s in prewarm]))

    async def stop(self) -> None:
        """Stop consuming, abandon the activations still running and destroy every container; idempotent.
        Activations whose run ended get up to `COMPLETE_DRAIN_S` to publish their completion and store their record
        (the write follows the completion, so a caller may have its result already)."""
        if self._state == "stopped":
            return
        self._state = "stopped"
        completing = [t for t in self._in_flight if t in self._completing]
        tasks = [t for t in (self._pinging, self._consuming, *self._in_flight) if t is not None and t not in completing]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if completing:
            _, late = await asyncio.wait(completing, timeout=COMPLETE_DRAIN_S)
            for task in late:
                task.cancel()
            await asyncio.gather(*completing, return_exceptions=True)
        with contextlib.suppress(BusError, TimeoutError):
            await asyncio.wait_for(self._ping(enabled=False), PING_INTERVAL_S)
        await self.pool.close()
        await self._factory.close()
        log.info("invoker stopped")

    async def _ping(self, enabled: bool) -> None:
        ping = PingMessage(name=self._ref, isEnabled=enabled, time=int(time.time() * 1000))
        await self._bus.send(HEALTH_TOPIC, ping.serialize())

    async def _keep_pinging(self) -> None:
        """Tell the controllers every second that this invoker lives (they take it offline after 10 s of silence)."""
        while True:
            await asyncio.sleep(PING_INTERVAL_S)
            try:
                await self._ping(enabled=True)
            except BusError as exc:
                log.warning("ping failed", extra=fields(error=str(exc)))

    async def _consume(self) -> None:
        consumer: Consumer | None = None
        try:
            while True:
                try:
                    if consumer is None:
                        consumer = await self._bus.consumer(self.topic, f"invoker{self.settings.invoker_id}")
                    while len(self._in_flight) >= self._max_in_flight:
                        await asyncio.wait(self._in_flight, return_when=asyncio.FIRST_COMPLETED)
                    records = await consumer.peek(1.0)
                    for record in records:
                        self._dispatch(record)
                    if records:
                        await consumer.commit()
                except BusError as exc:
                    log.warning("bus failed; retrying", extra=fields(topic=self.topic, error=str(exc)))
                    consumer = await _close_quietly(consumer)
                    await asyncio.sleep(BUS_RETRY_S)
                except Exception:
                    log.exception("consumer loop failed; retrying", extra=fields(topic=self.topic))
                    consumer = await _close_quietly(consumer)
                    await asyncio.sleep(BUS_RETRY_S)
        finally:
            await _close_quietly(consumer)

    def _dispatch(self, record: Record) -> None:
        try:
            msg = ActivationMessage.parse(record.value)
        except ValueError as exc:
            log.error(
                "activation message does not parse; skipped",
                extra=fields(topic=record.topic, partition=record.partition, offset=record.offset, error=str(exc)),
            )
            return
        task = asyncio.create_task(self._handle(msg))
        self._in_flight.add(task)
        task.add_done_callback(self._in_flight.discard)

    async def _handle(self, msg: ActivationMessage) -> None:
        transaction_id.set(msg.transid[0])
        try:
            record = await self._activate(msg)
        except Exception:
            log.exception("activation failed in the invoker", extra=fields(activation_id=msg.activationId))
            record = act.fallback_record(msg, ActivationResponse.whisk_error(act.PROVISION_ERROR))
        task = asyncio.current_task()
        if task is not None:
            self._completing.add(task)
            task.add_done_callback(self._completing.discard)
        await self._complete(msg, record)

    async def _activate(self, msg: ActivationMessage) -> WhiskActivation:
        try:
            action, revision = await self._action(msg)
        except NotFound:
            return act.fallback_record(msg, ActivationResponse.application_error(act.ACTION_REMOVED))
        except StoreError as exc:
            log.error("fetching the action failed", extra=fields(doc_id=msg.action.doc_id, error=str(exc)))
            return act.fallback_record(msg, ActivationResponse.whisk_error(act.ACTION_FETCH_ERROR))
        except (ValidationError, TypeError) as exc:
            log.error("the action document is unusable", extra=fields(doc_id=msg.action.doc_id, error=str(exc)))
            return act.fallback_record(msg, ActivationResponse.whisk_error(act.ACTION_MISMATCH))
        try:
            self._factory.check_kind(action.exec.kind)
        except UnsupportedKind as exc:
            return act.fallback_record(msg, ActivationResponse.developer_error(str(exc)), action)
        runtime = _runtime(action)
        if runtime is None:
            return act.fallback_record(msg, ActivationResponse.developer_error(f"Unknown kind '{action.exec.kind}'."))
        key = ActionKey(msg.user.namespace, msg.action.doc_id, revision)
        try:
            async with self.pool.lease(key, runtime, action.limits.memory) as lease:
                execution = await act.execute(lease.container, lease.needs_init, msg, action, self.settings.api_host,
                                              self._system_env)
                if not execution.container_ok:
                    lease.fail()
        except StartError as exc:
            log.error("no container for the activation", extra=fields(activation_id=msg.activationId, error=str(exc)))
            return act.fallback_record(msg, ActivationResponse.whisk_error(act.PROVISION_ERROR), action)
        return act.record(msg, action, execution)

    async def _action(self, msg: ActivationMessage) -> tuple[WhiskAction, str]:
        """The action document (cached per id and revision) and its revision."""
        cache_key = (msg.action.doc_id, msg.action.revision)
        cached = self._actions.get(cache_key)
        if cached is not None:
            self._actions.move_to_end(cache_key)
            return cached, msg.action.revision
        doc = await self._store.get_entity(msg.action.doc_id)
        if doc.entity_type != ACTIONS:
            raise NotFound(msg.action.doc_id)
        action = WhiskAction.model_validate(doc.body)
        if doc.rev != msg.action.revision:
            log.info("running the current revision", extra=fields(asked=msg.action.revision, current=doc.rev))
        self._actions[(msg.action.doc_id, doc.rev)] = action
        while len(self._actions) > ACTION_CACHE_SIZE:
            self._actions.popitem(last=False)
        return action, doc.rev

    async def _complete(self, msg: ActivationMessage, record: WhiskActivation) -> None:
        """Publish the completion, then store the record (as OpenWhisk's invoker acks before it stores): the store
        write is off the caller's path. A blocking caller's completion carries the whole record, so its controller
        can answer, and show the record, before the write lands; a failed write is logged and never holds the
        completion back."""
        completion = CompletionMessage(
            transid=msg.transid,
            activationId=msg.activationId,
            isSystemError=record.response.statusCode == WHISK_ERROR,
            instance=self._ref,
            response=record.model_dump(mode="json") if msg.blocking else None,
        )
        topic = completion_topic(msg.rootControllerIndex.asString)
        published = await self._publish(topic, completion, 1, 1)  # a failed send waits until the record is stored
        try:
            await self._store.put_activation(record)
        except Exception as exc:
            log.error("storing the activation failed", extra=fields(activation_id=msg.activationId, error=repr(exc)))
        if not published and not await self._publish(topic, completion, 2, COMPLETION_ATTEMPTS):
            log.error("completion lost", extra=fields(activation_id=msg.activationId, topic=topic))
        log.info(
            "activation done",
            extra=fields(
                activation_id=msg.activationId,
                status=record.response.status,
                duration_ms=record.duration,
            ),
        )

    async def _publish(self, topic: str, completion: CompletionMessage, first_attempt: int, last_attempt: int
                       ) -> bool:
        """Send `completion`, retrying after bus failures with growing pauses; False when every attempt failed."""
        for attempt in range(first_attempt, last_attempt + 1):
            if attempt > 1:
                await asyncio.sleep(BUS_RETRY_S * (attempt - 1))
            try:
                await self._bus.send(topic, completion.serialize())
                return True
            except BusError as exc:
                log.warning("publishing the completion failed", extra=fields(attempt=attempt, error=str(exc)))
        return False


def _runtime(action: WhiskAction) -> Runtime | None:
    """The runtime to start for `action`: from the manifest, or the action's own image for `blackbox`."""
    if action.exec.kind == BLACKBOX:
        return Runtime(
            kind=BLACKBOX,
            family=BLACKBOX,
            language=BLACKBOX,
            image=action.exec.image or "",
            is_default=False,
            prewarm_count=0,
            prewarm_memory_mb=action.limits.memory,
        )
    return manifest().get(action.exec.kind)


async def _close_quietly(consumer: Consumer | None) -> None:
    if consumer is not None:
        with contextlib.suppress(BusError):
            await consumer.close()
    return None
