"""The bus contract, run against every implementation.

Kafka runs on one broker for the whole session (`tests.services.kafka`), so every test names its topics and groups
through `name`, which makes them unique to the test.
"""

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Iterator

import pytest

from tests.services.kafka import KafkaBroker, kafka_broker
from whisk.bus import Bus, open_bus

#: Kafka's group session timeout for tests: the broker holds a new group's first join for about half of it.
KAFKA_TEST_OPTIONS = "?session_timeout_ms=2000"


@pytest.fixture(scope="session")
def session_kafka() -> Iterator[KafkaBroker]:
    with kafka_broker() as broker:
        yield broker


def _bus_url(implementation: str, request: pytest.FixtureRequest) -> str:
    if implementation == "kafka":
        broker: KafkaBroker = request.getfixturevalue("session_kafka")
        return broker.url + KAFKA_TEST_OPTIONS
    return "local:"


@pytest.fixture(params=["kafka", "local"])
async def bus(request: pytest.FixtureRequest) -> AsyncIterator[Bus]:
    opened = await open_bus(_bus_url(request.param, request))
    yield opened
    await opened.close()


Name = Callable[[str], str]


@pytest.fixture
def name() -> Name:
    """`name(name("topic-a"))`: a topic or group name unique to this test."""
    suffix = uuid.uuid4().hex[:12]
    return lambda base: f"{base}-{suffix}"


async def test_records_come_back_in_order_with_growing_offsets(bus: Bus, name: Name) -> None:
    topic = name("topic-a")
    consumer = await bus.consumer(topic, name("group-1"))
    for n in range(5):
        await bus.send(topic, f"m{n}".encode())
    records = []
    while len(records) < 5:
        records += await consumer.peek(2.0)
    assert [r.value for r in records] == [b"m0", b"m1", b"m2", b"m3", b"m4"]
    assert [r.offset for r in records] == sorted(r.offset for r in records)
    assert {r.topic for r in records} == {topic}
    await consumer.commit()
    await consumer.close()


async def test_peek_returns_nothing_when_no_record_arrives_in_time(bus: Bus, name: Name) -> None:
    consumer = await bus.consumer(name("topic-empty"), name("group-1"))
    assert await consumer.peek(0.05) == []
    await consumer.close()


async def test_peek_wakes_up_when_a_record_is_sent(bus: Bus, name: Name) -> None:
    topic = name("topic-wake")
    consumer = await bus.consumer(topic, name("group-1"))
    waiting = asyncio.create_task(consumer.peek(10.0))
    await asyncio.sleep(0.05)
    await bus.send(topic, b"hello")
    records = await waiting
    assert [r.value for r in records] == [b"hello"]
    await consumer.close()


async def test_a_group_resumes_after_its_committed_position(bus: Bus, name: Name) -> None:
    topic, group = name("topic-resume"), name("group-r")
    first = await bus.consumer(topic, group)
    await bus.send(topic, b"one")
    await bus.send(topic, b"two")
    records = []
    while len(records) < 2:
        records += await first.peek(2.0)
    await first.commit()
    await first.close()
    await bus.send(topic, b"three")
    second = await bus.consumer(topic, group)
    assert [r.value for r in await second.peek(2.0)] == [b"three"]
    await second.close()


async def test_peek_respects_max_peek(bus: Bus, name: Name) -> None:
    topic = name("topic-max")
    consumer = await bus.consumer(topic, name("group-m"), max_peek=2)
    for n in range(5):
        await bus.send(topic, bytes([n]))
    assert len(await consumer.peek(2.0)) <= 2
    await consumer.close()


async def test_a_new_group_reads_from_the_beginning_of_the_topic(bus: Bus, name: Name) -> None:
    topic = name("topic-early")
    await bus.send(topic, b"before any consumer")
    consumer = await bus.consumer(topic, name("group-late"))
    assert [r.value for r in await consumer.peek(2.0)] == [b"before any consumer"]
    await consumer.close()


async def test_records_peeked_but_not_committed_are_delivered_again(bus: Bus, name: Name) -> None:
    topic, group = name("topic-redeliver"), name("group-x")
    first = await bus.consumer(topic, group)
    await bus.send(topic, b"once")
    assert [r.value for r in await first.peek(2.0)] == [b"once"]
    await first.close()
    second = await bus.consumer(topic, group)
    assert [r.value for r in await second.peek(2.0)] == [b"once"]
    await second.close()


async def test_each_group_sees_every_record(bus: Bus, name: Name) -> None:
    topic = name("topic-fanout")
    consumers = [await bus.consumer(topic, name(f"group-{n}")) for n in range(2)]
    await bus.send(topic, b"to all")
    for consumer in consumers:
        assert [r.value for r in await consumer.peek(2.0)] == [b"to all"]
        await consumer.commit()
        await consumer.close()


async def test_a_relaxed_consumer_sees_every_record_in_order(bus: Bus, name: Name) -> None:
    topic = name("topic-relaxed")
    consumer = await bus.consumer(topic, name("group-1"), relaxed=True)
    for n in range(3):
        await bus.send(topic, f"r{n}".encode())
    records = []
    while len(records) < 3:
        records += await consumer.peek(2.0)
    assert [r.value for r in records] == [b"r0", b"r1", b"r2"]
    await consumer.commit()
    await consumer.close()
