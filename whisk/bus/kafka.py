"""The Kafka bus, over aiokafka: `kafka://host:port[,host:port][?option=value&...]`.

Topics are created on first use with one partition (so a topic is one ordered log, as OpenWhisk creates them) and
OpenWhisk's retention and message-size settings; a topic that already exists is used as it is. A group with no
committed position starts at the beginning of what the topic still holds (`auto_offset_reset='earliest'`).

Every aiokafka client is created lazily and replaced after a failure, so one `KafkaBus` (and each of its consumers)
keeps working across broker outages: while the broker is away `send` raises `BusUnavailable` within
`request_timeout_ms` (plus a margin) and `peek` returns an empty list or raises `BusUnavailable`; once it is back, the
next call reconnects. A send that timed out may still have been written (at-least-once, as Kafka).

URL options (integers): `session_timeout_ms` (the group's failure detection, default 6000; Apache Kafka refuses values
below its `group.min.session.timeout.ms`, 6000 by default; tansu holds a new group's first join for about half of it),
`request_timeout_ms` (default 5000: the bound on one broker request, and so on a send), `fetch_wait_ms` (default 5:
how long the broker may hold a fetch of a prompt consumer that finds no record; relaxed consumers use
`RELAXED_FETCH_WAIT_MS`).

Why the fetch wait matters: Apache Kafka answers a held fetch as soon as a record arrives, so there the wait costs only
idle polls and `fetch_wait_ms=500` is the better setting. tansu (the broker of the tests, the benchmark and the offline
compose stack) holds every fetch for the whole wait, so a record waits half of it on average: on the invoke path
(invoker topics, completion topics) the wait is kept short, at the price of idle polling (measured on tansu: one idle
consumer costs about 15% of a core with 5 ms between it and the broker, under 3% with 100 ms).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import ConsumerStoppedError, KafkaError, MessageSizeTooLargeError, TopicAlreadyExistsError

from whisk.bus import BusError, BusUnavailable, Record

log = logging.getLogger(__name__)

#: OpenWhisk's largest activation payload (1 MiB) plus its serialisation overhead, in bytes.
MAX_MESSAGE_BYTES = 1024 * 1024 + 6068
#: Room for the record batch and request headers around one largest message, in bytes.
_REQUEST_OVERHEAD_BYTES = 16 * 1024

_HOUR_MS = 3600 * 1000
#: Topic retention by name prefix, as OpenWhisk's `whisk.kafka.topics`; other topics keep the broker's default.
RETENTION_MS = {"invoker": 48 * _HOUR_MS, "completed": _HOUR_MS, "health": _HOUR_MS, "cacheInvalidation": 300_000}

_OPTIONS = ("session_timeout_ms", "request_timeout_ms", "fetch_wait_ms")
#: How long the broker may hold a relaxed consumer's fetch (see `fetch_wait_ms` in the module's docstring).
RELAXED_FETCH_WAIT_MS = 100
#: What a client raises when the broker cannot be reached or refuses: each becomes `BusUnavailable`.
_FAILURES = (KafkaError, ConsumerStoppedError, OSError, TimeoutError)
#: How long closing one aiokafka client may take, in seconds (a consumer leaving its group, a producer flushing).
STOP_TIMEOUT_S = 10.0


def topic_config(topic: str) -> dict[str, str]:
    config = {"max.message.bytes": str(MAX_MESSAGE_BYTES)}
    for prefix, retention_ms in RETENTION_MS.items():
        if topic.startswith(prefix):
            config["retention.ms"] = str(retention_ms)
    return config


def _unavailable(what: str, exc: BaseException) -> BusUnavailable:
    detail = str(exc)
    if not detail.startswith(type(exc).__name__):
        detail = f"{type(exc).__name__}: {detail}".rstrip(": ")
    return BusUnavailable(f"Kafka {what} failed: {detail}")


class KafkaConsumer:
    """One group member on one topic. Not safe for concurrent use: one `peek` or `commit` at a time."""

    def __init__(self, bus: KafkaBus, topic: str, group_id: str, max_peek: int, relaxed: bool) -> None:
        self._bus = bus
        self._topic = topic
        self._group = group_id
        self._max_peek = max_peek
        self._relaxed = relaxed
        self._consumer: AIOKafkaConsumer | None = None
        self._peeked: dict[TopicPartition, int] = {}  # partition -> offset after the last record peeked
        self._closed = False

    async def _started(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            await self._bus._ensure_topic(self._topic)
            consumer = AIOKafkaConsumer(
                self._topic,
                group_id=self._group,
                max_poll_records=self._max_peek,
                **self._bus._consumer_options(self._relaxed),
            )
            try:
                await asyncio.wait_for(consumer.start(), self._bus._join_timeout_s)
            except BaseException:
                self._bus._retire(consumer)
                raise
            self._consumer = consumer
        return self._consumer

    def _reset(self) -> None:
        """Forget the aiokafka consumer after a failure (it is closed in the background); the next `peek` joins the
        group again from its committed position."""
        consumer, self._consumer = self._consumer, None
        self._peeked.clear()
        self._bus._topics.discard(self._topic)  # a broker that lost its data would auto-create it differently
        if consumer is not None:
            self._bus._retire(consumer)

    async def peek(self, timeout_s: float) -> list[Record]:
        if self._closed:
            raise BusUnavailable("consumer is closed")
        try:
            consumer = await self._started()
            batches = await asyncio.wait_for(
                consumer.getmany(timeout_ms=int(timeout_s * 1000), max_records=self._max_peek),
                timeout_s + self._bus._request_timeout_s,
            )
        except _FAILURES as exc:
            self._reset()
            raise _unavailable("peek", exc) from exc
        records = [
            Record(message.topic, message.partition, message.offset, message.value)
            for messages in batches.values()
            for message in messages
        ]
        for partition, messages in batches.items():
            if messages:
                self._peeked[partition] = messages[-1].offset + 1
        return records

    async def commit(self) -> None:
        if self._closed:
            raise BusUnavailable("consumer is closed")
        if self._consumer is None or not self._peeked:
            return
        offsets = dict(self._peeked)
        try:
            await asyncio.wait_for(self._consumer.commit(offsets), self._bus._request_timeout_s)
        except _FAILURES as exc:
            self._reset()
            raise _unavailable("commit", exc) from exc
        for partition, offset in offsets.items():
            if self._peeked.get(partition) == offset:
                del self._peeked[partition]

    async def close(self) -> None:
        """Leave the group (so another member can take over at once) and close."""
        self._closed = True
        self._bus._consumers.discard(self)
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            await _quietly_stop(consumer)


class KafkaBus:
    def __init__(
        self,
        bootstrap_servers: list[str],
        *,
        session_timeout_ms: int = 6000,
        request_timeout_ms: int = 5000,
        fetch_wait_ms: int = 5,
        client_id: str = "pywhisk",
    ) -> None:
        self._servers = bootstrap_servers
        self._client_id = client_id
        self._session_timeout_ms = session_timeout_ms
        self._request_timeout_ms = request_timeout_ms
        self._fetch_wait_ms = fetch_wait_ms
        self._producer: AIOKafkaProducer | None = None
        self._admin: AIOKafkaAdminClient | None = None
        self._lock = asyncio.Lock()  # serialises creating and replacing the producer and admin client
        self._topics: set[str] = set()  # topics known to exist
        self._consumers: set[KafkaConsumer] = set()
        self._retiring: set[asyncio.Future[None]] = set()  # clients being closed after a failure
        self._closed = False

    @classmethod
    def from_url(cls, url: str) -> KafkaBus:
        parts = urlsplit(url)
        if parts.scheme != "kafka" or not parts.netloc:
            raise ValueError(f"Bus URL '{url}' is not kafka://host:port[,host:port]")
        options: dict[str, int] = {}
        for name, value in parse_qsl(parts.query, keep_blank_values=True):
            if name not in _OPTIONS:
                raise ValueError(f"Bus URL '{url}' has an unknown option '{name}'; expected one of {_OPTIONS}")
            try:
                options[name] = int(value)
            except ValueError:
                raise ValueError(f"Bus URL '{url}' option '{name}' has value '{value}'. Not a valid int.") from None
        return cls(parts.netloc.split(","), **options)

    @property
    def _request_timeout_s(self) -> float:
        return self._request_timeout_ms / 1000 + 1.0

    @property
    def _join_timeout_s(self) -> float:
        return self._session_timeout_ms / 1000 + self._request_timeout_s * 2

    def _common_options(self) -> dict[str, Any]:
        return {
            "bootstrap_servers": self._servers,
            "client_id": self._client_id,
            "request_timeout_ms": self._request_timeout_ms,
            "retry_backoff_ms": 100,
        }

    def _consumer_options(self, relaxed: bool) -> dict[str, Any]:
        return {
            **self._common_options(),
            "enable_auto_commit": False,
            "auto_offset_reset": "earliest",
            "fetch_max_wait_ms": RELAXED_FETCH_WAIT_MS if relaxed else self._fetch_wait_ms,
            "max_partition_fetch_bytes": MAX_MESSAGE_BYTES + _REQUEST_OVERHEAD_BYTES,
            "fetch_max_bytes": 64 * 1024 * 1024,
            "session_timeout_ms": self._session_timeout_ms,
            "heartbeat_interval_ms": max(self._session_timeout_ms // 3, 100),
        }

    async def _client(self, attribute: str) -> Any:
        async with self._lock:
            client = getattr(self, attribute)
            if client is not None:
                return client
            if attribute == "_producer":
                client = AIOKafkaProducer(
                    **self._common_options(),
                    acks="all",
                    enable_idempotence=False,
                    linger_ms=0,
                    max_request_size=MAX_MESSAGE_BYTES + _REQUEST_OVERHEAD_BYTES,
                )
            else:
                client = AIOKafkaAdminClient(**self._common_options())
            try:
                await asyncio.wait_for(client.start(), self._request_timeout_s)
            except BaseException:
                self._retire(client)
                raise
            setattr(self, attribute, client)
            return client

    def _drop(self, attribute: str, client: Any) -> None:
        """Replace `client` on next use; it is closed in the background."""
        if getattr(self, attribute) is client:
            setattr(self, attribute, None)
        self._retire(client)

    def _retire(self, client: Any) -> None:
        task = asyncio.ensure_future(_quietly_stop(client))
        self._retiring.add(task)
        task.add_done_callback(self._retiring.discard)

    async def _ensure_topic(self, topic: str) -> None:
        if topic in self._topics:
            return
        try:
            admin = await self._client("_admin")
        except _FAILURES as exc:
            raise _unavailable("connect", exc) from exc
        try:
            response = await asyncio.wait_for(
                admin.create_topics(
                    [NewTopic(topic, num_partitions=1, replication_factor=1, topic_configs=topic_config(topic))],
                    timeout_ms=self._request_timeout_ms,
                ),
                self._request_timeout_s,
            )
        except _FAILURES as exc:
            self._drop("_admin", admin)
            raise _unavailable(f"creating topic '{topic}'", exc) from exc
        for _name, code, *rest in response.topic_errors:
            if code not in (0, TopicAlreadyExistsError.errno):
                message = rest[0] if rest else ""
                raise BusUnavailable(f"Kafka refused to create topic '{topic}': error {code} {message}")
        self._topics.add(topic)

    async def send(self, topic: str, value: bytes) -> None:
        if self._closed:
            raise BusUnavailable("bus is closed")
        await self._ensure_topic(topic)
        try:
            producer = await self._client("_producer")
        except _FAILURES as exc:
            raise _unavailable("connect", exc) from exc
        try:
            await asyncio.wait_for(producer.send_and_wait(topic, value), self._request_timeout_s)
        except MessageSizeTooLargeError as exc:
            raise BusError(f"Kafka refused a message of {len(value)} bytes for '{topic}': {exc}") from exc
        except _FAILURES as exc:
            # The topic may have gone with the broker (a broker without durable storage): check it again next time.
            self._topics.discard(topic)
            self._drop("_producer", producer)
            raise _unavailable(f"send to '{topic}'", exc) from exc

    async def consumer(
        self, topic: str, group_id: str, max_peek: int = 128, *, relaxed: bool = False
    ) -> KafkaConsumer:
        """Joins the group before returning (on a fresh group this takes up to half the session timeout), so the
        first `peek` does not pay for the join."""
        if self._closed:
            raise BusUnavailable("bus is closed")
        consumer = KafkaConsumer(self, topic, group_id, max_peek, relaxed)
        try:
            await consumer._started()
        except _FAILURES as exc:
            raise _unavailable(f"joining group '{group_id}' on '{topic}'", exc) from exc
        self._consumers.add(consumer)
        return consumer

    async def close(self) -> None:
        self._closed = True
        for consumer in list(self._consumers):
            await consumer.close()
        self._consumers.clear()
        for attribute in ("_producer", "_admin"):
            client = getattr(self, attribute)
            if client is not None:
                self._drop(attribute, client)
        if self._retiring:
            await asyncio.wait(set(self._retiring))


async def _quietly_stop(client: Any) -> None:
    """Stop an aiokafka client within `STOP_TIMEOUT_S`, whatever state its broker is in. aiokafka's consumer can end
    `stop()` with a `CancelledError` of its own (it awaits fetch tasks it has just cancelled): that is not ours."""
    stop = client.close() if isinstance(client, AIOKafkaAdminClient) else client.stop()
    task = asyncio.ensure_future(stop)
    task.add_done_callback(_retrieve)
    done, _ = await asyncio.wait({task}, timeout=STOP_TIMEOUT_S)
    if not done:
        log.warning("%s did not stop within %.0f s; abandoned", type(client).__name__, STOP_TIMEOUT_S)
        task.cancel()


def _retrieve(task: asyncio.Future[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.debug("closing a Kafka client failed: %r", task.exception())
