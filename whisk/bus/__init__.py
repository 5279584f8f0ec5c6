"""The bus seam: topics of messages between controllers and invokers.

Topics: `invoker{N}` carries activation messages to invoker N; `completed{M}` carries completions back to
controller M; later `health` and `cacheInvalidation`. Messages are bytes (JSON from `whisk.messages`).

Implementations: `local.LocalBus` (in-process, standalone) and `kafka.KafkaBus` (distributed), to the same contract.

Semantics, as Kafka's: a topic is an ordered log; a consumer belongs to a group; `peek` returns records after the
group's position; `commit` makes everything peeked so far durable for the group. A record that was peeked but not
committed may be delivered again after a restart (at-least-once).

Errors::

    BusError
     └── BusUnavailable   the broker cannot be reached or refused the operation
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

_log = logging.getLogger(__name__)


class BusError(Exception):
    """Base of every error a bus raises."""


class BusUnavailable(BusError):
    pass


@dataclass(frozen=True)
class Record:
    topic: str
    partition: int
    offset: int
    value: bytes


class Consumer(Protocol):
    async def peek(self, timeout_s: float) -> list[Record]:
        """Up to the consumer's `max_peek` records after its position; waits at most `timeout_s` for the first,
        and returns an empty list when none arrived."""
        ...

    async def commit(self) -> None:
        """Mark everything returned by `peek` so far as handled by this group."""
        ...

    async def close(self) -> None: ...


class Bus(Protocol):
    async def send(self, topic: str, value: bytes) -> None:
        """Append `value` to `topic`, creating the topic if needed; returns once the bus has accepted it."""
        ...

    async def consumer(self, topic: str, group_id: str, max_peek: int = 128, *, relaxed: bool = False) -> Consumer:
        """A consumer of `topic` for `group_id`, starting at the group's committed position. A `relaxed` one is
        for topics nobody waits on (health, cache invalidation): the bus may deliver its records up to about a
        tenth of a second late in exchange for less polling when idle."""
        ...

    async def close(self) -> None: ...


async def open_bus(url: str) -> Bus:
    """Open the bus for `url`: `local:` for the in-process bus, `kafka://host:port[,host:port]` for Kafka (options in
    `whisk.bus.kafka`). The implementation is imported only when chosen."""
    if url.startswith("local:"):
        from whisk.bus.local import LocalBus

        return LocalBus()
    if url.startswith("kafka://"):
        from whisk.bus.kafka import KafkaBus

        return KafkaBus.from_url(url)
    raise ValueError(f"Bus URL '{url}' has an unsupported scheme; expected local: or kafka://")


async def consume_forever(
    bus: Bus,
    topic: str,
    group_id: str,
    handle: Callable[[Record], None],
    retry_s: float = 1.0,
    *,
    relaxed: bool = False,
) -> None:
    """Hand every record of `topic` to `handle` and commit, until cancelled. A record `handle` cannot decode
    (`ValueError`, which includes pydantic's `ValidationError`) is logged and skipped; bus failures are logged and
    retried after `retry_s` with a new consumer."""
    consumer: Consumer | None = None
    try:
        while True:
            try:
                if consumer is None:
                    consumer = await bus.consumer(topic, group_id, relaxed=relaxed)
                records = await consumer.peek(1.0)
                for record in records:
                    try:
                        handle(record)
                    except ValueError:
                        _log.error("undecodable message at %s/%d; skipped", record.topic, record.offset)
                if records:
                    await consumer.commit()
            except BusError:
                _log.exception("consumer of %s failed; retrying", topic)
                consumer = await _closed(consumer)
                await asyncio.sleep(retry_s)
    finally:
        await _closed(consumer)


async def _closed(consumer: Consumer | None) -> None:
    if consumer is not None:
        with contextlib.suppress(BusError):
            await consumer.close()
    return None
