"""What every handler works with: the controller's collaborators, kept on the application under one typed key."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass, field

from aiohttp import web

from controller.auth import Authenticator, entitled_namespace
from controller.balancer import LoadBalancer
from controller.throttle import Throttles
from whisk.bus import Bus, BusError, Record, consume_forever
from whisk.config import ControllerSettings
from whisk.entities.activation import WhiskActivation
from whisk.entities.identity import Identity
from whisk.entities.names import DEFAULT_NAMESPACE
from whisk.messages import CACHE_INVALIDATION_TOPIC, CacheInvalidationMessage
from whisk.store import Document, Store

log = logging.getLogger(__name__)

#: how long an entity stays cached, in seconds; writes through this controller invalidate at once
ENTITY_CACHE_S = 300.0
_MAX_CACHED = 10_000


class EntityCache:
    """Entity documents by id, so the invoke path reads no database when warm. A write through any controller
    invalidates the entry here at once and, through the `cacheInvalidation` topic, in every other controller."""

    def __init__(self, store: Store, bus: Bus, controller_id: str, ttl_s: float = ENTITY_CACHE_S) -> None:
        self._store = store
        self._bus = bus
        self._controller_id = controller_id
        self._ttl_s = ttl_s
        self._docs: dict[str, tuple[Document, float]] = {}
        self._consuming: asyncio.Task[None] | None = None

    async def get(self, doc_id: str) -> Document:
        now = time.monotonic()
        cached = self._docs.get(doc_id)
        if cached is not None and cached[1] > now:
            return cached[0]
        doc = await self._store.get_entity(doc_id)
        if len(self._docs) >= _MAX_CACHED:
            self._docs.pop(next(iter(self._docs)))
        self._docs[doc_id] = (doc, now + self._ttl_s)
        return doc

    async def invalidate(self, doc_id: str) -> None:
        """Drop `doc_id` here and tell the other controllers; a bus failure leaves them to the cache's TTL."""
        self._docs.pop(doc_id, None)
        message = CacheInvalidationMessage(key=doc_id, instanceId=self._controller_id)
        try:
            await self._bus.send(CACHE_INVALIDATION_TOPIC, message.serialize())
        except BusError:
            log.warning("could not announce the change of %s to other controllers", doc_id)

    def _on_invalidation(self, record: Record) -> None:
        message = CacheInvalidationMessage.parse(record.value)
        if message.instanceId != self._controller_id:
            self._docs.pop(message.key, None)

    async def start(self) -> None:
        self._consuming = asyncio.create_task(consume_forever(
            self._bus, CACHE_INVALIDATION_TOPIC, f"cacheInvalidation{self._controller_id}", self._on_invalidation,
            relaxed=True))

    async def close(self) -> None:
        if self._consuming is not None:
            self._consuming.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._consuming
            self._consuming = None


#: how many just-completed records a controller keeps for reads that come before the invoker's store write lands,
#: and how much of their results and logs (bytes, roughly): a store write takes milliseconds, these are ample
RECENT_RECORDS = 1024
RECENT_RECORD_BYTES = 16 * 1024 * 1024
#: how long it keeps each one, in seconds
RECENT_RECORD_S = 30.0


class RecentActivations:
    """The records of blocking activations this controller answered lately, by namespace and id.

    An invoker sends the completion before it stores the record (the write is off the caller's path), so a client
    that reads its activation right after a blocking invoke may come before the write; `get` bridges that gap on the
    controller that answered. Lists are read from the store alone. Bounded in count, bytes and age: the oldest go
    first."""

    def __init__(self, size: int = RECENT_RECORDS, max_bytes: int = RECENT_RECORD_BYTES,
                 ttl_s: float = RECENT_RECORD_S) -> None:
        self._size = size
        self._max_bytes = max_bytes
        self._ttl_s = ttl_s
        self._bytes = 0
        self._records: OrderedDict[tuple[str, str], tuple[WhiskActivation, float, int]] = OrderedDict()

    def add(self, record: WhiskActivation) -> None:
        now = time.monotonic()
        weight = (record.response.size or 0) + sum(len(line) for line in record.logs)
        key = (record.namespace, record.activationId)
        self._drop(key)
        self._records[key] = (record, now + self._ttl_s, weight)
        self._bytes += weight
        while self._records and (len(self._records) > self._size or self._bytes > self._max_bytes
                                 or next(iter(self._records.values()))[1] < now):
            self._drop(next(iter(self._records)))

    def get(self, namespace: str, activation_id: str) -> WhiskActivation | None:
        kept = self._records.get((namespace, activation_id))
        if kept is None or kept[1] < time.monotonic():
            return None
        return kept[0]

    def _drop(self, key: tuple[str, str]) -> None:
        kept = self._records.pop(key, None)
        if kept is not None:
            self._bytes -= kept[2]


@dataclass
class Controller:
    settings: ControllerSettings
    store: Store
    balancer: LoadBalancer
    authenticator: Authenticator
    entities: EntityCache
    throttles: Throttles
    #: for announcements other services act on (feed changes); the load balancer keeps its own use of it
    bus: Bus
    recent: RecentActivations = field(default_factory=RecentActivations)

    async def caller(self, request: web.Request) -> Identity:
        return await self.authenticator.identify(request.headers.get("Authorization"))

    async def caller_reading(self, request: web.Request) -> tuple[Identity, str]:
        """The authenticated identity and the namespace the URL addresses (`_` resolved), not yet entitled: reads
        and invocations may reach other namespaces' published packages, which the handler checks."""
        identity = await self.caller(request)
        namespace = request.match_info["namespace"]
        return identity, identity.namespace if namespace == DEFAULT_NAMESPACE else namespace

    async def caller_in(self, request: web.Request) -> tuple[Identity, str]:
        """The authenticated identity and the namespace the URL addresses, resolved and entitled."""
        identity = await self.caller(request)
        return identity, entitled_namespace(identity, request.match_info["namespace"])


CONTROLLER = web.AppKey("controller", Controller)


def controller_of(request: web.Request) -> Controller:
    return request.app[CONTROLLER]
