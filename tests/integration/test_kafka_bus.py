"""The Kafka bus against a real Kafka-protocol broker (tansu, from `tests.services.kafka`): sizes, volume, groups,
and broker outages. The behaviour every bus shares is in `tests/contract/test_bus.py`."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Iterator
from typing import TypeVar

import pytest

from tests.services.kafka import KafkaBroker, kafka_broker
from whisk.bus import Bus, BusError, BusUnavailable, Consumer, Record, open_bus
from whisk.bus.kafka import MAX_MESSAGE_BYTES, RELAXED_FETCH_WAIT_MS, KafkaBus

#: A short group session keeps joins quick on tansu (about half of it); a short request timeout bounds outages.
TEST_OPTIONS = "?session_timeout_ms=2000&request_timeout_ms=2000"
#: The bound on any single bus call in these tests, in seconds: a hang fails the test by name instead.
BOUND_S = 30.0

T = TypeVar("T")


@pytest.fixture(scope="module")
def broker() -> Iterator[KafkaBroker]:
    with kafka_broker() as started:
        yield started


@pytest.fixture
def own_broker() -> Iterator[KafkaBroker]:
    """A broker for this test alone, which it may stop and start."""
    with kafka_broker() as started:
        yield started


@pytest.fixture
async def bus(broker: KafkaBroker) -> AsyncIterator[KafkaBus]:
    opened = await open_bus(broker.url + TEST_OPTIONS)
    assert isinstance(opened, KafkaBus)
    yield opened
    await opened.close()


def unique(base: str) -> str:
    return f"{base}-{uuid.uuid4().hex[:12]}"


async def bounded(operation: Awaitable[T], what: str) -> T:
    try:
        return await asyncio.wait_for(operation, BOUND_S)
    except TimeoutError:
        pytest.fail(f"{what} did not finish within {BOUND_S} s")


async def read(consumer: Consumer, count: int, commit: bool = True) -> list[Record]:
    """Peek until `count` records arrived (committing after each peek when asked); fail after `BOUND_S`."""
    records: list[Record] = []
    deadline = time.monotonic() + BOUND_S
    while len(records) < count:
        assert time.monotonic() < deadline, f"only {len(records)} of {count} records arrived"
        records += await consumer.peek(1.0)
        if commit:
            await consumer.commit()
    return records


async def test_a_one_megabyte_message_goes_through(bus: KafkaBus) -> None:
    topic = unique("big")
    value = os.urandom(1024 * 1024)
    consumer = await bus.consumer(topic, unique("group"))
    await bus.send(topic, value)
    await bus.send(topic, b"after")
    assert [r.value for r in await read(consumer, 2)] == [value, b"after"]
    await consumer.close()


async def test_a_message_over_the_limit_is_refused_and_the_bus_still_works(bus: KafkaBus) -> None:
    topic = unique("too-big")
    with pytest.raises(BusError) as refused:
        await bus.send(topic, bytes(MAX_MESSAGE_BYTES + 64 * 1024))
    assert not isinstance(refused.value, BusUnavailable)
    await bus.send(topic, b"small")
    consumer = await bus.consumer(topic, unique("group"))
    assert [r.value for r in await read(consumer, 1)] == [b"small"]
    await consumer.close()


async def test_500_messages_round_trip_in_order_across_peeks_with_commits(bus: KafkaBus) -> None:
    topic = unique("many")
    consumer = await bus.consumer(topic, unique("group"), max_peek=64)
    values = [f"message {n}".encode() for n in range(500)]
    for value in values:
        await bus.send(topic, value)
    records = await read(consumer, 500)
    assert [r.value for r in records] == values
    assert [r.offset for r in records] == list(range(records[0].offset, records[0].offset + 500))
    assert await consumer.peek(0.2) == []
    await consumer.close()


async def test_a_second_consumer_of_the_group_resumes_after_the_committed_offset(bus: KafkaBus) -> None:
    topic, group = unique("resume"), unique("group")
    first = await bus.consumer(topic, group, max_peek=4)
    for n in range(10):
        await bus.send(topic, bytes([n]))
    # at least 4, committed; a peek may hand out fewer than max_peek while the fetch fills, so maybe a few more
    handled = await read(first, 4)
    done = len(handled)
    assert 4 <= done < 10 and [r.value for r in handled] == [bytes([n]) for n in range(done)]
    unhandled = await first.peek(2.0)  # peeked but never committed: delivered again to the group
    assert unhandled
    await first.close()
    second = await bus.consumer(topic, group, max_peek=100)
    rest = await read(second, 10 - done)
    assert [r.value for r in rest] == [bytes([n]) for n in range(done, 10)]
    assert rest[0].offset == handled[-1].offset + 1
    await second.close()


async def test_two_groups_each_see_every_message(bus: KafkaBus) -> None:
    topic = unique("fanout")
    consumers = [await bus.consumer(topic, unique("group")) for _ in range(2)]
    values = [f"m{n}".encode() for n in range(20)]
    for value in values:
        await bus.send(topic, value)
    for consumer in consumers:
        assert [r.value for r in await read(consumer, 20)] == values
        await consumer.close()


async def test_topics_are_created_with_one_partition_so_order_holds(bus: KafkaBus) -> None:
    topic = unique("ordered")
    await bus.send(topic, b"first")
    consumer = await bus.consumer(topic, unique("group"))
    for n in range(30):
        await bus.send(topic, bytes([n]))
    records = await read(consumer, 31)
    assert {r.partition for r in records} == {0}
    await consumer.close()


async def test_the_same_bus_survives_a_broker_outage(own_broker: KafkaBroker) -> None:
    bus = await open_bus(own_broker.url + TEST_OPTIONS)
    topic, group = unique("outage"), unique("group")
    consumer = await bus.consumer(topic, group)
    try:
        await bus.send(topic, b"before")
        assert [r.value for r in await read(consumer, 1)] == [b"before"]
        await bus.send(topic, b"peeked, not committed")
        assert [r.value for r in await read(consumer, 1, commit=False)] == [b"peeked, not committed"]

        await asyncio.to_thread(own_broker.stop)
        with pytest.raises(BusUnavailable):
            await bounded(bus.send(topic, b"while down"), "send while the broker is down")
        with pytest.raises(BusUnavailable):
            await bounded(consumer.commit(), "commit while the broker is down")
        for _ in range(2):  # after the failed commit the consumer reconnects on its next peek
            try:
                assert await bounded(consumer.peek(1.0), "peek while the broker is down") == []
            except BusUnavailable:
                pass

        # The broker comes back empty (memory storage): the topic is created again and the group starts over.
        await asyncio.to_thread(own_broker.start)
        await _send_eventually(bus, topic, b"after")
        records = await _read_eventually(consumer, b"after")
        assert records[-1].value == b"after"

        fresh = await bounded(bus.consumer(topic, unique("group")), "a new consumer after the outage")
        assert b"after" in [r.value for r in await read(fresh, 1)]
        await fresh.close()
    finally:
        await consumer.close()
        await bus.close()


async def test_a_bus_opened_while_the_broker_is_down_works_once_it_is_up(own_broker: KafkaBroker) -> None:
    await asyncio.to_thread(own_broker.stop)
    bus = await open_bus(own_broker.url + TEST_OPTIONS)
    try:
        topic = unique("late")
        with pytest.raises(BusUnavailable):
            await bounded(bus.send(topic, b"too early"), "send before the broker is up")
        with pytest.raises(BusUnavailable):
            await bounded(bus.consumer(topic, unique("group")), "consumer before the broker is up")
        await asyncio.to_thread(own_broker.start)
        await _send_eventually(bus, topic, b"on time")
        consumer = await bus.consumer(topic, unique("group"))
        assert [r.value for r in await read(consumer, 1)] == [b"on time"]
        await consumer.close()
    finally:
        await bus.close()


async def test_a_closed_consumer_and_bus_refuse_work(bus: KafkaBus) -> None:
    topic = unique("closed")
    consumer = await bus.consumer(topic, unique("group"))
    await consumer.close()
    with pytest.raises(BusUnavailable):
        await consumer.peek(0.1)
    await bus.close()
    with pytest.raises(BusUnavailable):
        await bus.send(topic, b"late")


@pytest.mark.parametrize(
    "url", ["kafka://", "kafka://127.0.0.1:9092?linger_ms=5", "kafka://127.0.0.1:9092?session_timeout_ms=soon"]
)
async def test_open_bus_rejects_a_bad_kafka_url(url: str) -> None:
    with pytest.raises(ValueError, match="Bus URL"):
        await open_bus(url)


def test_fetch_wait_ms_sets_the_prompt_consumers_wait_and_relaxed_ones_keep_theirs() -> None:
    bus = KafkaBus.from_url("kafka://127.0.0.1:9092?fetch_wait_ms=40")
    assert bus._consumer_options(relaxed=False)["fetch_max_wait_ms"] == 40
    assert bus._consumer_options(relaxed=True)["fetch_max_wait_ms"] == RELAXED_FETCH_WAIT_MS


async def _send_eventually(bus: Bus, topic: str, value: bytes) -> None:
    deadline = time.monotonic() + BOUND_S
    while True:
        try:
            await bounded(bus.send(topic, value), "send after the broker returned")
            return
        except BusUnavailable:
            assert time.monotonic() < deadline, "the bus did not reconnect after the broker returned"
            await asyncio.sleep(0.2)


async def _read_eventually(consumer: Consumer, value: bytes) -> list[Record]:
    """Peek (tolerating `BusUnavailable` while reconnecting) until a record with `value` arrives."""
    records: list[Record] = []
    deadline = time.monotonic() + BOUND_S
    while value not in [r.value for r in records]:
        assert time.monotonic() < deadline, f"{value!r} did not arrive after the broker returned"
        try:
            records += await bounded(consumer.peek(1.0), "peek after the broker returned")
            await consumer.commit()
        except BusUnavailable:
            await asyncio.sleep(0.2)
    return records
