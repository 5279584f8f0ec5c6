"""Activation logs as OpenWhisk shows them: timestamped lines of stdout and stderr up to the sentinel.

Every container factory collects raw lines with the time they were read; the formatting, the merge of both streams
in time order and the size limit live here so that every factory produces the same records.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

#: The line a runtime proxy writes to stdout and stderr after each activation (and after a failed init).
SENTINEL = "XXX_THE_END_OF_A_WHISK_ACTIVATION_XXX"

#: log text a container keeps per stream until an activation takes it, in bytes (above the largest limit, 10 MB)
MAX_BUFFERED_BYTES = 11 * 1024 * 1024

LOG_FAILURE = "There was an issue while collecting your logs. Data might be missing."
DEVELOPER_ERROR_WARNING = "The action did not initialize or run as expected. Log data might be missing."


def truncated_message(limit_bytes: int) -> str:
    return f"Logs were truncated because the total bytes size exceeds the limit of {limit_bytes} bytes."


def timestamp(moment: datetime | None = None) -> str:
    """ISO 8601 in UTC with microseconds and `Z`, as Docker's json-file log driver writes it."""
    moment = moment or datetime.now(UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class LogLine:
    time: str  # `timestamp()` form, which sorts in time order as text
    stream: str  # "stdout" or "stderr"
    text: str

    def format(self) -> str:
        return f"{self.time:<30} {self.stream}: {self.text}"

    @classmethod
    def now(cls, stream: str, text: str) -> LogLine:
        return cls(timestamp(), stream, text)


def merge(*streams: Iterable[LogLine]) -> list[LogLine]:
    """Lines of several streams, each in time order already, merged in time order (stable per stream)."""
    return list(heapq.merge(*streams, key=lambda line: line.time))


def limit(lines: Iterable[LogLine], limit_bytes: int) -> tuple[list[str], bool]:
    """Formatted lines while the UTF-8 size of their text stays within `limit_bytes`; the flag says whether lines
    were left out. The caller appends `truncated_message` when it is set."""
    out: list[str] = []
    total = 0
    for line in lines:
        total += len(line.text.encode())
        if total > limit_bytes:
            return out, True
        out.append(line.format())
    return out, False


class StreamBuffer:
    """Lines of one output stream of a container, timestamped as they are read, until an activation takes them;
    None marks a sentinel. Keeps at most `MAX_BUFFERED_BYTES` of text (then `dropped` is set) and the last lines
    in `tail` (for error messages)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.items: deque[LogLine | None] = deque()
        self.size = 0
        self.dropped = False
        self.eof = False
        self.tail: deque[str] = deque(maxlen=20)

    def add(self, raw: bytes) -> None:
        """One line as read, without its newline."""
        text = raw.decode(errors="replace").rstrip("\r")
        if text.endswith(SENTINEL):
            if text != SENTINEL:  # output without a final newline, then the sentinel
                self.add(raw[: raw.rindex(SENTINEL.encode())])
            self.items.append(None)
            return
        self.tail.append(text)
        if self.size + len(raw) > MAX_BUFFERED_BYTES:
            self.dropped = True
            return
        self.size += len(raw)
        self.items.append(LogLine.now(self.name, text))

    @property
    def ended(self) -> bool:
        return self.eof or None in self.items

    def take(self) -> tuple[list[LogLine], bool]:
        """Lines up to the first sentinel (consumed), or all there are; whether a sentinel ended them."""
        out: list[LogLine] = []
        while self.items:
            item = self.items.popleft()
            if item is None:
                self._recount()
                return out, True
            out.append(item)
        self.size = 0
        return out, False

    def clear(self) -> None:
        self.items.clear()
        self.size = 0
        self.dropped = False

    def _recount(self) -> None:
        self.size = sum(len(i.text) for i in self.items if i is not None)


#: how long `collect` waits for the sentinel on both streams, in seconds
LOG_WAIT_S = 2.0
#: how long `collect` waits for the streams of a failed activation to drain, in seconds
LOG_DRAIN_S = 0.5


async def collect(
    streams: Iterable[StreamBuffer], changed: asyncio.Event, limit_bytes: int, wait_for_sentinel: bool
) -> tuple[list[str], bool]:
    """The formatted lines of the activation that just ended on a container's `streams` (whose readers set
    `changed` on every new line), merged in time order and cut at `limit_bytes`; and whether they were cut.
    Waits (bounded) for the sentinel on every stream; when it does not come, a last line says logs may be missing."""
    streams = list(streams)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + (LOG_WAIT_S if wait_for_sentinel else LOG_DRAIN_S)
    while not all(s.ended for s in streams) and (remaining := deadline - loop.time()) > 0:
        changed.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(changed.wait(), remaining)
    taken = [s.take() for s in streams]
    lines, truncated = limit(merge(*(t[0] for t in taken)), limit_bytes)
    for stream in streams:
        truncated |= stream.dropped
        stream.dropped = False
    if not all(ended for _, ended in taken):
        note = LOG_FAILURE if wait_for_sentinel else DEVELOPER_ERROR_WARNING
        lines.append(LogLine.now("stderr", note).format())
    return lines, truncated
