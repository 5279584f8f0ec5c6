"""An invoker wired to a real SQLite store, the in-process bus and process containers, driven through messages."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from invoker import Invoker
from invoker.containers.process import ProcessContainerFactory
from whisk.bus import Bus
from whisk.bus.local import LocalBus
from whisk.config import InvokerSettings
from whisk.entities.action import Exec, WhiskAction
from whisk.entities.activation import WhiskActivation
from whisk.entities.identity import Identity
from whisk.entities.limits import ActionLimits
from whisk.entities.params import from_dict
from whisk.ids import new_activation_id, new_transaction_id
from whisk.messages import ActionRef, ActivationMessage, CompletionMessage, ControllerRef, completion_topic
from whisk.store import NotFound, Store, open_store

#: Invokers with one id take separate instance slots, so tests (and concurrent test runs) do not disturb each other.
TEST_INVOKER_ID = 9090
GUEST = Identity(subject="guest", namespace="guest", uuid="7cc3bb0f-0000-4000-8000-000000000001")
CONTROLLER = "0"


@dataclass
class Harness:
    """A started invoker and what it talks to. `invoke` publishes an activation message the way a controller does
    and returns the completion the invoker sends back."""

    invoker: Invoker
    factory: ProcessContainerFactory
    store: Store
    bus: Bus
    waiting: dict[str, asyncio.Future[CompletionMessage]] = field(default_factory=dict)

    @property
    def stats(self) -> Any:
        return self.invoker.pool.stats

    async def action(
        self,
        name: str,
        code: str,
        kind: str = "python:3.11",
        namespace: str = "guest",
        parameters: dict[str, Any] | None = None,
        **limits: int,
    ) -> ActionRef:
        action = WhiskAction(
            namespace=namespace,
            name=name,
            exec=Exec(kind=kind, code=code),
            parameters=from_dict(parameters or {}),
            limits=ActionLimits(**limits),
            updated=int(time.time() * 1000),
        )
        doc_id = f"{namespace}/{name}"
        rev = await self.store.put_entity(doc_id, "actions", action.model_dump(), None)
        return ActionRef(path=namespace, name=name, version=action.version, revision=rev)

    async def send(self, ref: ActionRef, content: dict[str, Any] | None = None, blocking: bool = True) -> str:
        activation_id = new_activation_id()
        message = ActivationMessage(
            transid=(new_transaction_id(), int(time.time() * 1000)),
            action=ref,
            user=GUEST,
            activationId=activation_id,
            rootControllerIndex=ControllerRef(asString=CONTROLLER),
            blocking=blocking,
            content=content,
        )
        self.waiting[activation_id] = asyncio.get_running_loop().create_future()
        await self.bus.send(self.invoker.topic, message.serialize())
        return activation_id

    async def completion(self, activation_id: str, timeout_s: float = 60) -> CompletionMessage:
        return await asyncio.wait_for(self.waiting[activation_id], timeout_s)

    async def invoke(self, ref: ActionRef, content: dict[str, Any] | None = None, blocking: bool = True) -> Any:
        """The activation record (from the completion when blocking, else from the store once the invoker's write,
        which follows the completion, landed) of one invocation."""
        done = await self.completion(await self.send(ref, content, blocking))
        if blocking:
            assert done.response is not None
            return WhiskActivation.model_validate(done.response)
        return await self.stored(done.activationId)

    async def stored(self, activation_id: str, timeout_s: float = 30) -> WhiskActivation:
        """The record of `activation_id` once the invoker stored it (the write follows the completion)."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                return await self.store.get_activation(GUEST.namespace, activation_id)
            except NotFound:
                assert time.monotonic() < deadline, "the record was never stored"
                await asyncio.sleep(0.02)

    async def read_completions(self) -> None:
        consumer = await self.bus.consumer(completion_topic(CONTROLLER), "tests")
        try:
            while True:
                for record in await consumer.peek(1.0):
                    done = CompletionMessage.parse(record.value)
                    future = self.waiting.get(done.activationId)
                    if future is not None and not future.done():
                        future.set_result(done)
                await consumer.commit()
        finally:
            await consumer.close()


async def eventually(check: Callable[[], bool | Awaitable[bool]], timeout_s: float = 20.0) -> None:
    """Wait until `check()` holds, polling; fail after `timeout_s` (a bound against hangs, not a measurement)."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = check()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


class HeldWrites:
    """A store whose activation writes wait until the test sets `release`; everything else goes straight through."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self.release = asyncio.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    async def put_activation(self, activation: WhiskActivation) -> None:
        await self.release.wait()
        await self._store.put_activation(activation)


MakeHarness = Callable[..., Awaitable[Harness]]


@pytest.fixture
async def make_harness(tmp_path: Path) -> AsyncIterator[MakeHarness]:
    """`await make_harness(sandbox=True, store=None, bus=None, **settings)`: a started invoker, on a fresh SQLite
    store and LocalBus unless given; everything is stopped after the test."""
    opened: list[tuple[Harness, asyncio.Task[None]]] = []
    stores: list[Store] = []

    async def make(
        sandbox: bool = True, store: Store | None = None, bus: Bus | None = None, **settings: Any
    ) -> Harness:
        if store is None:
            store = await open_store(f"sqlite:///{tmp_path / f'store{len(stores)}.db'}")
            stores.append(store)
        settings.setdefault("prewarm", False)
        settings.setdefault("invoker_id", TEST_INVOKER_ID)
        invoker_settings = InvokerSettings(**settings)
        factory = ProcessContainerFactory(invoker_settings, sandbox=sandbox)
        bus = bus or LocalBus()
        invoker = Invoker(invoker_settings, store, bus, factory)
        harness = Harness(invoker, factory, store, bus)
        reader = asyncio.create_task(harness.read_completions())
        opened.append((harness, reader))
        await invoker.start()
        return harness

    try:
        yield make
    finally:
        for harness, reader in opened:
            await harness.invoker.stop()
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
            await harness.bus.close()
        for store in stores:
            await store.close()
