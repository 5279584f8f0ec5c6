"""The load balancer over the in-process bus and a SQLite store: invoker health, placement, forced completions."""

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from controller.balancer import INVOKER_LOST_ERROR, NO_ANSWER_ERROR, LoadBalancer, NoInvokers
from whisk.bus.local import LocalBus
from whisk.entities.activation import WHISK_ERROR
from whisk.entities.identity import Identity
from whisk.ids import new_activation_id
from whisk.messages import (
    HEALTH_TOPIC,
    ActionRef,
    ActivationMessage,
    CompletionMessage,
    ControllerRef,
    InvokerRef,
    PingMessage,
    completion_topic,
    invoker_topic,
)
from whisk.store import NotFound, Store, open_store


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await open_store(f"sqlite:///{tmp_path / 'db.sqlite'}")
    yield opened
    await opened.close()


@pytest.fixture
async def bus() -> AsyncIterator[LocalBus]:
    opened = LocalBus()
    yield opened
    await opened.close()


@pytest.fixture
async def balancer(bus: LocalBus, store: Store) -> AsyncIterator[LoadBalancer]:
    lb = LoadBalancer(bus, store, "0", completion_grace_s=0.5, offline_after_s=2.0)
    await lb.start()
    yield lb
    await lb.close()


def message(action: str = "hello") -> ActivationMessage:
    return ActivationMessage(
        transid=("tid", int(time.time() * 1000)),
        action=ActionRef(path="guest", name=action, version="0.0.1", revision="1-a"),
        user=Identity(subject="guest", namespace="guest", uuid="u"),
        activationId=new_activation_id(),
        rootControllerIndex=ControllerRef(asString="0"),
        blocking=True,
    )


async def ping(bus: LocalBus, invoker: int, enabled: bool = True, memory_mb: int = 1024) -> None:
    await bus.send(HEALTH_TOPIC, PingMessage(name=InvokerRef(instance=invoker, userMemory=f"{memory_mb} MB"),
                                             isEnabled=enabled, time=int(time.time() * 1000)).serialize())


async def until(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def test_without_a_healthy_invoker_publishing_raises_no_invokers(balancer: LoadBalancer) -> None:
    with pytest.raises(NoInvokers):
        await balancer.publish(message(), "guest/hello", 1000, 256)


async def test_activations_go_to_pinging_invokers_and_complete_from_their_answers(
    balancer: LoadBalancer, bus: LocalBus
) -> None:
    await ping(bus, 0)
    await ping(bus, 1)
    await until(lambda: [i.id for i in balancer.invokers() if i.healthy] == [0, 1])
    sent = message()
    future = await balancer.publish(sent, "guest/hello", 60_000, 256)
    targets = {n for n in (0, 1) if bus.pending(invoker_topic(n))}
    assert len(targets) == 1
    assert balancer.in_flight("guest") == 1
    [target] = targets
    assert next(i for i in balancer.invokers() if i.id == target).free_mb == 1024 - 256
    await bus.send(completion_topic("0"), CompletionMessage(
        transid=sent.transid, activationId=sent.activationId, instance=InvokerRef(instance=target)).serialize())
    completion = await asyncio.wait_for(future, 5)
    assert completion is not None and completion.activationId == sent.activationId
    assert balancer.in_flight("guest") == 0
    assert next(i for i in balancer.invokers() if i.id == target).free_mb == 1024


async def test_an_invoker_that_stops_gets_its_activations_forced_and_recorded(
    balancer: LoadBalancer, bus: LocalBus, store: Store
) -> None:
    await ping(bus, 3)
    await until(lambda: any(i.healthy for i in balancer.invokers()))
    sent = message()
    future = await balancer.publish(sent, "guest/hello", 60_000, 256)
    await ping(bus, 3, enabled=False)
    completion = await asyncio.wait_for(future, 5)
    assert completion is not None and completion.isSystemError
    assert completion.response is not None
    assert completion.response["response"]["result"] == {"error": INVOKER_LOST_ERROR}
    for _ in range(100):
        try:
            record = await store.get_activation("guest", sent.activationId)
            break
        except NotFound:
            await asyncio.sleep(0.05)
    else:
        raise AssertionError("the forced activation was not recorded")
    assert record.response.statusCode == WHISK_ERROR


async def test_a_silent_invoker_goes_offline_and_its_activations_are_forced(
    balancer: LoadBalancer, bus: LocalBus
) -> None:
    await ping(bus, 5)
    await until(lambda: any(i.healthy for i in balancer.invokers()))
    future = await balancer.publish(message(), "guest/hello", 60_000, 256)
    completion = await asyncio.wait_for(future, 10)
    assert completion is not None and completion.response["response"]["result"] == {"error": INVOKER_LOST_ERROR}
    assert not any(i.healthy for i in balancer.invokers())


async def test_no_completion_within_the_time_limit_plus_grace_is_forced(balancer: LoadBalancer, bus: LocalBus) -> None:
    async def keep_pinging() -> None:
        while True:
            await ping(bus, 0)
            await asyncio.sleep(0.2)

    pinger = asyncio.create_task(keep_pinging())
    try:
        await until(lambda: any(i.healthy for i in balancer.invokers()))
        future = await balancer.publish(message(), "guest/hello", 200, 256)
        completion = await asyncio.wait_for(future, 10)
        assert completion is not None and completion.response["response"]["result"] == {"error": NO_ANSWER_ERROR}
    finally:
        pinger.cancel()
        await asyncio.gather(pinger, return_exceptions=True)
