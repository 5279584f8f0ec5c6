"""Authentication (`Authorization: Basic uuid:key` against the subjects store, cached) and entitlement."""

from __future__ import annotations

import base64
import binascii
import time

from controller import messages
from controller.errors import Forbidden, Unauthorized
from whisk.entities.identity import Identity
from whisk.entities.names import DEFAULT_NAMESPACE
from whisk.store import NotFound, Store

_CHALLENGE = {"WWW-Authenticate": 'Basic realm="whisk rest service"'}
#: most identities kept in the cache; the oldest go first
_MAX_CACHED = 10_000


def parse_basic(header: str | None) -> tuple[str, str] | None:
    """`(uuid, key)` from a Basic authorization header, or None when absent or not Basic."""
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    uuid, sep, key = decoded.partition(":")
    if not sep or not uuid or not key:
        return None
    return uuid, key


class Authenticator:
    """Resolves credentials to identities, caching successes for `ttl_s` seconds (failures are not cached)."""

    def __init__(self, store: Store, ttl_s: float) -> None:
        self._store = store
        self._ttl_s = ttl_s
        self._cache: dict[tuple[str, str], tuple[Identity, float]] = {}

    async def identify(self, header: str | None) -> Identity:
        credentials = parse_basic(header)
        if credentials is None:
            raise Unauthorized(messages.AUTH_REQUIRED, _CHALLENGE)
        now = time.monotonic()
        cached = self._cache.get(credentials)
        if cached is not None and cached[1] > now:
            return cached[0]
        try:
            identity = await self._store.identity_by_key(*credentials)
        except NotFound:
            self._cache.pop(credentials, None)
            raise Unauthorized(messages.AUTH_INVALID, _CHALLENGE) from None
        if self._ttl_s > 0:
            if len(self._cache) >= _MAX_CACHED:
                self._cache.pop(next(iter(self._cache)))
            self._cache[credentials] = (identity, now + self._ttl_s)
        return identity

    def forget(self, uuid: str) -> None:
        """Drop cached identities of `uuid` (after its key or limits changed)."""
        for credentials in [c for c in self._cache if c[0] == uuid]:
            del self._cache[credentials]


def entitled_namespace(identity: Identity, namespace: str) -> str:
    """The namespace a request addressed to `namespace` acts on, or `Forbidden`."""
    if namespace in (DEFAULT_NAMESPACE, identity.namespace):
        return identity.namespace
    raise Forbidden(messages.NOT_AUTHORIZED)
