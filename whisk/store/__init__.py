"""The store seam: subjects, entities (whisks), activations and feed registrations.

Implementations: `sqlite.SqliteStore` (standalone, a durable file). A CouchDB implementation follows the same
contract. The methods are shaped by what the platform asks, never by a database's query language.

Errors, the only exceptions a store raises::

    StoreError
     ├── NotFound      the document does not exist
     ├── Conflict      the revision given is not the current one, or the document exists already
     └── Unavailable   the database cannot be reached or failed
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from whisk.entities.activation import WhiskActivation
from whisk.entities.feed import FeedRegistration
from whisk.entities.identity import Identity, Subject


class StoreError(Exception):
    """Base of every error a store raises."""


class NotFound(StoreError):
    pass


class Conflict(StoreError):
    pass


class Unavailable(StoreError):
    pass


@dataclass(frozen=True)
class Document:
    """An entity document of the whisks store: its id (`ns/name` or `ns/pkg/name`), revision and type."""

    doc_id: str
    rev: str
    entity_type: str
    body: dict[str, Any]


class Store(Protocol):
    """Persistent state of the platform.

    Revisions are opaque strings. `put_*` with `rev=None` creates and raises `Conflict` if the document exists;
    with a revision it replaces and raises `Conflict` unless that revision is current. Every method is a coroutine
    that never blocks the event loop.
    """

    async def close(self) -> None: ...

    # subjects
    async def put_subject(self, subject: Subject, rev: str | None = None) -> str:
        """Create or replace a subject; a namespace name or uuid may belong to one subject only (`Conflict`)."""
        ...

    async def get_subject(self, subject: str) -> tuple[Subject, str]:
        """The subject and its revision, or `NotFound`."""
        ...

    async def delete_subject(self, subject: str, rev: str) -> None: ...

    async def identity_by_key(self, uuid: str, key: str) -> Identity:
        """The identity owning `uuid` if `key` matches; `NotFound` otherwise, and for blocked subjects."""
        ...

    async def identity_by_namespace(self, namespace: str) -> Identity:
        """The identity owning `namespace`, or `NotFound`."""
        ...

    # invokers
    async def assign_invoker_id(self, unique_name: str) -> int:
        """The invoker id of the invoker called `unique_name` (e.g. its host name): the one it was given before, or
        else the lowest id no invoker has; concurrent callers with different names never get the same id."""
        ...

    # entities
    async def get_entity(self, doc_id: str) -> Document:
        """The entity document, or `NotFound`."""
        ...

    async def put_entity(self, doc_id: str, entity_type: str, body: dict[str, Any], rev: str | None) -> str:
        """Store an entity (its `body` has `namespace`, `name` and `updated`); the new revision."""
        ...

    async def delete_entity(self, doc_id: str, rev: str) -> None:
        """Delete at that revision: `NotFound` or `Conflict`."""
        ...

    async def list_entities(self, namespace: str, entity_type: str, limit: int, skip: int) -> list[Document]:
        """Entities of a type in `namespace` (a namespace, also listing its packages' entities, or `ns/pkg`),
        newest update first. `limit` 0 means no limit."""
        ...

    async def count_entities(self, namespace: str, entity_type: str) -> int: ...

    # activations
    async def put_activation(self, activation: WhiskActivation) -> None:
        """Store a finished activation; `Conflict` if its id is taken in that namespace."""
        ...

    async def get_activation(self, namespace: str, activation_id: str) -> WhiskActivation: ...

    async def list_activations(
        self,
        namespace: str,
        *,
        name: str | None = None,
        since: int | None = None,
        upto: int | None = None,
        limit: int = 30,
        skip: int = 0,
    ) -> list[WhiskActivation]:
        """Activations of `namespace`, newest start first; `name` matches `action` or `package/action`;
        `since`/`upto` bound `start` (epoch ms, inclusive). `limit` 0 means no limit."""
        ...

    async def count_activations(
        self, namespace: str, *, name: str | None = None, since: int | None = None, upto: int | None = None
    ) -> int: ...

    # feed registrations, one per trigger (`ns/name`)
    async def put_feed(self, registration: FeedRegistration, rev: str | None) -> str:
        """Create (`rev` None; `Conflict` if the trigger has one) or replace a registration; the new revision."""
        ...

    async def get_feed(self, trigger: str) -> tuple[FeedRegistration, str]:
        """The registration of `trigger` and its revision, or `NotFound`."""
        ...

    async def delete_feed(self, trigger: str, rev: str) -> None:
        """Delete at that revision: `NotFound` or `Conflict`."""
        ...

    async def list_feeds(self) -> list[tuple[FeedRegistration, str]]:
        """Every registration, active or not, with its revision, in trigger order."""
        ...

    async def advance_feed_cursor(self, trigger: str, registration_id: str, cursor: str | int) -> bool:
        """Set the cursor of `trigger`'s registration if it is still the one with `registration_id`, whatever its
        revision, leaving the rest as a concurrent writer left it; False (and nothing written) when `trigger` has
        no registration or another one. Safe to race with `put_feed`: neither loses the other's change."""
        ...


async def open_store(url: str) -> Store:
    """Open the store for `url`: `sqlite:///absolute/path.db`, `sqlite:relative/path.db` or `sqlite::memory:`;
    or CouchDB at `http(s)://user:password@host:port[?prefix=P&timeout=S]`.
    The implementation module is imported only when chosen."""
    if url.startswith("sqlite:"):
        from whisk.store.sqlite import SqliteStore

        return await SqliteStore.open(url)
    if url.startswith(("http:", "https:")):
        from whisk.store.couchdb import CouchStore

        return await CouchStore.open(url)
    raise ValueError(f"Store URL '{url}' has an unsupported scheme; expected sqlite:, http: or https:")
