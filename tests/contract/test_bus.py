"""The bus contract, run against every implementation."""

from collections.abc import AsyncIterator

import pytest

from whisk.bus import Bus, open_bus

BUS_URLS = {"local": "local:"}


@pytest.fixture(params=sorted(BUS_URLS))
async def bus(request: pytest.FixtureRequest) -> AsyncIterator[Bus]:
    opened = await open_bus(BUS_URLS[request.param])
    yield opened
    await opened.close()


async def test_records_come_back_in_order_with_growing_offsets(bus: Bus) -> None:
    consumer = await bus.consumer("topic-a", "group-1")
    for n in range(5):
        await bus.send("topic-a", f"m{n}".encode())
    records = []
    while len(records) < 5:
        records += await consumer.peek(2.0)
    assert [r.value for r in records] == [b"m0", b"m1", b"m2", b"m3", b"m4"]
    assert [r.offset for r in records] == sorted(r.offset for r in records)
    assert {r.topic for r in records} == {"topic-a"}
    await consumer.commit()
    await consumer.close()


async def test_peek_returns_nothing_when_no_record_arrives_in_time(bus: Bus) -> None:
    consumer = await bus.consumer("topic-empty", "group-1")
    assert await consumer.peek(0.05) == []
    await consumer.close()


async def test_peek_wakes_up_when_a_record_is_sent(bus: Bus) -> None:
    import asyncio

    consumer = await bus.consumer("topic-wake", "group-1")
    waiting = asyncio.create_task(consumer.peek(10.0))
    await asyncio.sleep(0.05)
    await bus.send("topic-wake", b"hello")
    records = await waiting
    assert [r.value for r in records] == [b"hello"]
    await consumer.close()


async def test_a_group_resumes_after_its_committed_position(bus: Bus) -> None:
    first = await bus.consumer("topic-resume", "group-r")
    await bus.send("topic-resume", b"one")
    await bus.send("topic-resume", b"two")
    records = []
    while len(records) < 2:
        records += await first.peek(2.0)
    await first.commit()
    await first.close()
    await bus.send("topic-resume", b"three")
    second = await bus.consumer("topic-resume", "group-r")
    assert [r.value for r in await second.peek(2.0)] == [b"three"]
    await second.close()


async def test_peek_respects_max_peek(bus: Bus) -> None:
    consumer = await bus.consumer("topic-max", "group-m", max_peek=2)
    for n in range(5):
        await bus.send("topic-max", bytes([n]))
    assert len(await consumer.peek(2.0)) <= 2
    await consumer.close()
