"""The bus seam: topics of messages between controllers and invokers.

Topics: `invoker{N}` carries activation messages to invoker N; `completed{M}` carries completions back to
controller M; later `health` and `cacheInvalidation`. Messages are bytes (JSON from `whisk.messages`).

Implementations: `local.LocalBus` (in-process, standalone). A Kafka implementation follows the same contract.

Semantics, as Kafka's: a topic is an ordered log; a consumer belongs to a group; `peek` returns records after the
group's position; `commit` makes everything peeked so far durable for the group. A record that was peeked but not
committed may be delivered again after a restart (at-least-once).

Errors::

    BusError
     └── BusUnavailable   the broker cannot be reached or refused the operation
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


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

    async def consumer(self, topic: str, group_id: str, max_peek: int = 128) -> Consumer:
        """A consumer of `topic` for `group_id`, starting at the group's committed position."""
        ...

    async def close(self) -> None: ...


async def open_bus(url: str) -> Bus:
    """Open the bus for `url`: `local:` for the in-process bus. The implementation is imported only when chosen."""
    if url.startswith("local:"):
        from whisk.bus.local import LocalBus

        return LocalBus()
    raise ValueError(f"Bus URL '{url}' has an unsupported scheme; expected local:")
