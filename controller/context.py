"""What every handler works with: the controller's collaborators, kept on the application under one typed key."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from aiohttp import web

from controller.auth import Authenticator, entitled_namespace
from controller.balancer import LoadBalancer
from whisk.config import ControllerSettings
from whisk.entities.identity import Identity
from whisk.store import Document, Store

#: how long an entity stays cached, in seconds; writes through this controller invalidate at once
ENTITY_CACHE_S = 300.0
_MAX_CACHED = 10_000


class EntityCache:
    """Entity documents by id, so the invoke path reads no database when warm."""

    def __init__(self, store: Store, ttl_s: float = ENTITY_CACHE_S) -> None:
        self._store = store
        self._ttl_s = ttl_s
        self._docs: dict[str, tuple[Document, float]] = {}

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

    def invalidate(self, doc_id: str) -> None:
        self._docs.pop(doc_id, None)


@dataclass
class Controller:
    settings: ControllerSettings
    store: Store
    balancer: LoadBalancer
    authenticator: Authenticator
    entities: EntityCache = field(init=False)

    def __post_init__(self) -> None:
        self.entities = EntityCache(self.store)

    async def caller(self, request: web.Request) -> Identity:
        return await self.authenticator.identify(request.headers.get("Authorization"))

    async def caller_in(self, request: web.Request) -> tuple[Identity, str]:
        """The authenticated identity and the namespace the URL addresses, resolved and entitled."""
        identity = await self.caller(request)
        return identity, entitled_namespace(identity, request.match_info["namespace"])


CONTROLLER = web.AppKey("controller", Controller)


def controller_of(request: web.Request) -> Controller:
    return request.app[CONTROLLER]
