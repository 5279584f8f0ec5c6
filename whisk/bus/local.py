"""The in-process bus: a log of bytes per topic, owned by one `LocalBus` instance.

It goes through the same serialisation as a networked bus (values are bytes) and hands back the same records
(topic, partition, offset). Records are kept until every group consuming the topic has committed past them.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque

from whisk.bus import BusUnavailable, Record


class _Topic:
    def __init__(self, name: str) -> None:
        self.name = name
        self.log: deque[bytes] = deque()
        self.base = 0  # offset of log[0]
        self.committed: dict[str, int] = {}  # group -> next offset to read after a restart
        self.changed = asyncio.Condition()

    @property
    def end(self) -> int:
        return self.base + len(self.log)

    def trim(self) -> None:
        if not self.committed:
            return
        low = min(self.committed.values())
        while self.base < low and self.log:
            self.log.popleft()
            self.base += 1


class LocalConsumer:
    def __init__(self, topic: _Topic, group_id: str, max_peek: int) -> None:
        self._topic = topic
        self._group = group_id
        self._max_peek = max_peek
        self._position = topic.committed.setdefault(group_id, topic.base)
        self._closed = False

    async def peek(self, timeout_s: float) -> list[Record]:
        if self._closed:
            raise BusUnavailable("consumer is closed")
        topic = self._topic
        if self._position >= topic.end:
            async with topic.changed:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(topic.changed.wait_for(lambda: self._position < topic.end), timeout_s)
        start = max(self._position, topic.base)
        stop = min(topic.end, start + self._max_peek)
        records = [
            Record(topic.name, 0, offset, topic.log[offset - topic.base]) for offset in range(start, stop)
        ]
        self._position = stop
        return records

    async def commit(self) -> None:
        self._topic.committed[self._group] = self._position
        self._topic.trim()

    async def close(self) -> None:
        self._closed = True


class LocalBus:
    def __init__(self) -> None:
        self._topics: dict[str, _Topic] = {}
        self._closed = False

    def _topic(self, name: str) -> _Topic:
        topic = self._topics.get(name)
        if topic is None:
            topic = self._topics[name] = _Topic(name)
        return topic

    async def send(self, topic: str, value: bytes) -> None:
        if self._closed:
            raise BusUnavailable("bus is closed")
        target = self._topic(topic)
        target.log.append(value)
        async with target.changed:
            target.changed.notify_all()

    async def consumer(
        self, topic: str, group_id: str, max_peek: int = 128, *, relaxed: bool = False
    ) -> LocalConsumer:
        # every record is delivered at once: there is nothing to relax
        return LocalConsumer(self._topic(topic), group_id, max_peek)

    async def close(self) -> None:
        self._closed = True

    def pending(self, topic: str) -> int:
        """Test helper: records of `topic` not yet committed by its slowest group."""
        target = self._topic(topic)
        return target.end - min(target.committed.values(), default=target.base)
