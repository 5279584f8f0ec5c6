"""The standalone store: one SQLite file, driven from one worker thread.

Every sqlite3 call runs on a single-thread executor that owns the only connection, so the event loop never blocks
and statements never interleave. The file is in WAL mode with `synchronous=NORMAL`: a commit is durable against a
process crash, and only a power loss can take the last commits back. Activation writes are batched
(`whisk.store.batching`): under load, many share one transaction and one commit.

Revisions follow CouchDB 3.x: `"{n}-{32 hex}"`, with `n` counting the writes of the document from 1. A write with
`rev=None` to an existing document, or with a revision that is not the current one, raises `Conflict`; so does a
write with a revision to a document that does not exist (CouchDB answers that PUT with 409). Deleting a missing
document raises `NotFound`, deleting with a stale revision `Conflict`. A deleted document leaves no tombstone: it
can be created again and starts at `1-`. Entity documents of every type share one id space, as in CouchDB's
`whisks` database, so a trigger cannot take the id of an action; a replace stores the type it is given.

Lists are newest first (`updated` for entities, `start` for activations); ties fall back to the document id,
descending, which is the order a descending CouchDB view gives as well.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import sqlite3
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from whisk.entities.activation import WhiskActivation
from whisk.entities.feed import FeedRegistration
from whisk.entities.identity import Identity, NamespaceLimits, Subject, hash_key, key_matches
from whisk.store import Conflict, Document, NotFound, StoreError, Unavailable
from whisk.store.batching import Batcher

SCHEMA_VERSION = 1

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS subjects (
        subject TEXT PRIMARY KEY,
        rev TEXT NOT NULL,
        blocked INTEGER NOT NULL,
        doc TEXT NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS namespaces (
        name TEXT PRIMARY KEY,
        uuid TEXT NOT NULL UNIQUE,
        key_hash TEXT NOT NULL,
        subject TEXT NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS namespaces_by_subject ON namespaces (subject)",
    """CREATE TABLE IF NOT EXISTS entities (
        doc_id TEXT PRIMARY KEY,
        rev TEXT NOT NULL,
        entity_type TEXT NOT NULL,
        namespace TEXT NOT NULL,
        root TEXT NOT NULL,
        name TEXT NOT NULL,
        updated INTEGER NOT NULL,
        body TEXT NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS entities_by_root ON entities (root, entity_type, updated, doc_id)",
    "CREATE INDEX IF NOT EXISTS entities_by_namespace ON entities (namespace, entity_type, updated, doc_id)",
    """CREATE TABLE IF NOT EXISTS activations (
        namespace TEXT NOT NULL,
        activation_id TEXT NOT NULL,
        name TEXT NOT NULL,
        entity_path TEXT NOT NULL,
        start INTEGER NOT NULL,
        body TEXT NOT NULL,
        PRIMARY KEY (namespace, activation_id)
    )""",
    """CREATE TABLE IF NOT EXISTS invokers (
        unique_name TEXT PRIMARY KEY,
        invoker_id INTEGER NOT NULL UNIQUE
    )""",
    "CREATE INDEX IF NOT EXISTS activations_by_start ON activations (namespace, start, activation_id)",
    """CREATE INDEX IF NOT EXISTS activations_by_path
        ON activations (namespace, entity_path, start, activation_id)""",
    """CREATE TABLE IF NOT EXISTS feeds (
        trigger TEXT PRIMARY KEY,
        rev TEXT NOT NULL,
        doc TEXT NOT NULL
    )""",
)

#: SQLite integers are 64-bit; larger bounds from a query string are clamped rather than overflowing.
_MAX_INT = 2**63 - 1

#: Compared against when a uuid is unknown, so that a miss costs the same as a wrong key.
_NO_KEY_HASH = hash_key("")

T = TypeVar("T")


def database_path(url: str) -> str:
    """The file (or `:memory:`) named by `sqlite:///abs/path.db`, `sqlite:relative/path.db` or `sqlite::memory:`."""
    if not url.startswith("sqlite:"):
        raise ValueError(f"Store URL '{url}' is not a sqlite: URL")
    rest = url[len("sqlite:") :]
    if rest == ":memory:":
        return rest
    if rest.startswith("///"):
        rest = rest[2:]
    elif rest.startswith("//"):
        raise ValueError(f"Store URL '{url}' names a host; use sqlite:///absolute/path.db or sqlite:relative/path.db")
    if not rest or rest.endswith("/") or "?" in rest:
        raise ValueError(f"Store URL '{url}' does not name a database file")
    return rest


def _new_rev(previous: str | None) -> str:
    generation = 1 if previous is None else int(previous.split("-", 1)[0]) + 1
    return f"{generation}-{secrets.token_hex(16)}"


def _is_rev(rev: str) -> bool:
    generation, _, digest = rev.partition("-")
    return generation.isdigit() and bool(digest)


def _page(limit: int, skip: int) -> tuple[int, int]:
    if limit < 0 or skip < 0:
        raise ValueError(f"limit {limit} and skip {skip} must not be negative")
    return (min(limit, _MAX_INT) or -1, min(skip, _MAX_INT))


def _activation_filter(namespace: str, name: str | None, since: int | None, upto: int | None) -> tuple[str, list[Any]]:
    where = ["namespace = ?"]
    args: list[Any] = [namespace]
    if name is not None:
        where.append("entity_path = ?")
        args.append(name)
    if since is not None:
        where.append("start >= ?")
        args.append(max(min(since, _MAX_INT), -_MAX_INT))
    if upto is not None:
        where.append("start <= ?")
        args.append(max(min(upto, _MAX_INT), -_MAX_INT))
    return " AND ".join(where), args


def _entity_filter(namespace: str, entity_type: str) -> tuple[str, list[Any]]:
    column = "namespace" if "/" in namespace else "root"
    return f"{column} = ? AND entity_type = ?", [namespace, entity_type]


class _Database:
    """The connection and every statement; used only from the store's worker thread."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    @classmethod
    def connect(cls, path: str) -> _Database:
        if path != ":memory:":
            try:
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise Unavailable(f"cannot create the directory of {path}: {exc}") from exc
        conn = sqlite3.connect(path, timeout=5.0, isolation_level=None, check_same_thread=False)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            db = cls(conn)
            db.migrate()
        except BaseException:
            conn.close()
            raise
        return db

    def migrate(self) -> None:
        with self.transaction():
            (version,) = self.conn.execute("PRAGMA user_version").fetchone()
            if version > SCHEMA_VERSION:
                raise Unavailable(f"database schema version {version} is newer than this pywhisk ({SCHEMA_VERSION})")
            for statement in _SCHEMA:
                self.conn.execute(statement)
            self.conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    def close(self) -> None:
        self.conn.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    # subjects

    def put_subject(self, subject: Subject, rev: str | None) -> str:
        if rev is not None and not _is_rev(rev):
            raise Conflict(f"subject '{subject.subject}' is not at revision {rev}")
        new_rev = _new_rev(rev)
        doc = subject.model_dump_json()
        with self.transaction():
            if rev is None:
                try:
                    self.conn.execute(
                        "INSERT INTO subjects (subject, rev, blocked, doc) VALUES (?, ?, ?, ?)",
                        (subject.subject, new_rev, subject.blocked, doc),
                    )
                except sqlite3.IntegrityError as exc:
                    raise Conflict(f"subject '{subject.subject}' exists already") from exc
            else:
                updated = self.conn.execute(
                    "UPDATE subjects SET rev = ?, blocked = ?, doc = ? WHERE subject = ? AND rev = ?",
                    (new_rev, subject.blocked, doc, subject.subject, rev),
                )
                if updated.rowcount == 0:
                    raise Conflict(f"subject '{subject.subject}' is not at revision {rev}")
                self.conn.execute("DELETE FROM namespaces WHERE subject = ?", (subject.subject,))
            for ns in subject.namespaces:
                try:
                    self.conn.execute(
                        "INSERT INTO namespaces (name, uuid, key_hash, subject) VALUES (?, ?, ?, ?)",
                        (ns.name, ns.uuid, ns.key_hash, subject.subject),
                    )
                except sqlite3.IntegrityError as exc:
                    raise Conflict(f"namespace '{ns.name}' or its uuid belongs to another subject") from exc
        return new_rev

    def get_subject(self, subject: str) -> tuple[Subject, str]:
        row = self.conn.execute("SELECT doc, rev FROM subjects WHERE subject = ?", (subject,)).fetchone()
        if row is None:
            raise NotFound(f"subject '{subject}'")
        return Subject.model_validate_json(row[0]), row[1]

    def delete_subject(self, subject: str, rev: str) -> None:
        with self.transaction():
            deleted = self.conn.execute("DELETE FROM subjects WHERE subject = ? AND rev = ?", (subject, rev))
            if deleted.rowcount == 0:
                exists = self.conn.execute("SELECT 1 FROM subjects WHERE subject = ?", (subject,)).fetchone()
                if exists:
                    raise Conflict(f"subject '{subject}' is not at revision {rev}")
                raise NotFound(f"subject '{subject}'")
            self.conn.execute("DELETE FROM namespaces WHERE subject = ?", (subject,))

    def assign_invoker_id(self, unique_name: str) -> int:
        with self.transaction():
            row = self.conn.execute("SELECT invoker_id FROM invokers WHERE unique_name = ?", (unique_name,)).fetchone()
            if row is not None:
                return int(row[0])
            taken = {r[0] for r in self.conn.execute("SELECT invoker_id FROM invokers")}
            invoker_id = next(n for n in range(len(taken) + 1) if n not in taken)
            self.conn.execute("INSERT INTO invokers (unique_name, invoker_id) VALUES (?, ?)", (unique_name, invoker_id))
            return invoker_id

    def _identity(self, column: str, value: str, key: str | None) -> Identity:
        row = self.conn.execute(
            "SELECT n.name, n.uuid, n.key_hash, s.blocked, s.doc FROM namespaces n"
            f" JOIN subjects s ON s.subject = n.subject WHERE n.{column} = ?",
            (value,),
        ).fetchone()
        if key is not None and not key_matches(key, row[2] if row else _NO_KEY_HASH):
            raise NotFound("no identity with this uuid and key")
        if row is None or row[3]:
            raise NotFound(f"no identity for {column} '{value}'")
        subject = Subject.model_validate_json(row[4])
        limits = subject.limits.get(row[0]) or NamespaceLimits()
        return Identity(subject=subject.subject, namespace=row[0], uuid=row[1], limits=limits)

    def identity_by_key(self, uuid: str, key: str) -> Identity:
        return self._identity("uuid", uuid, key)

    def identity_by_namespace(self, namespace: str) -> Identity:
        return self._identity("name", namespace, None)

    # entities

    def get_entity(self, doc_id: str) -> Document:
        row = self.conn.execute(
            "SELECT doc_id, rev, entity_type, body FROM entities WHERE doc_id = ?", (doc_id,)
        ).fetchone()
        if row is None:
            raise NotFound(f"entity '{doc_id}'")
        return Document(row[0], row[1], row[2], json.loads(row[3]))

    def put_entity(self, doc_id: str, entity_type: str, body: dict[str, Any], rev: str | None) -> str:
        namespace = body["namespace"]
        columns = (entity_type, namespace, namespace.split("/", 1)[0], body["name"], body["updated"], json.dumps(body))
        if rev is None:
            new_rev = _new_rev(None)
            try:
                self.conn.execute(
                    "INSERT INTO entities (doc_id, rev, entity_type, namespace, root, name, updated, body)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (doc_id, new_rev, *columns),
                )
            except sqlite3.IntegrityError as exc:
                raise Conflict(f"entity '{doc_id}' exists already") from exc
            return new_rev
        if not _is_rev(rev):
            raise Conflict(f"entity '{doc_id}' is not at revision {rev}")
        new_rev = _new_rev(rev)
        updated = self.conn.execute(
            "UPDATE entities SET rev = ?, entity_type = ?, namespace = ?, root = ?, name = ?, updated = ?, body = ?"
            " WHERE doc_id = ? AND rev = ?",
            (new_rev, *columns, doc_id, rev),
        )
        if updated.rowcount == 0:
            raise Conflict(f"entity '{doc_id}' is not at revision {rev}")
        return new_rev

    def delete_entity(self, doc_id: str, rev: str) -> None:
        deleted = self.conn.execute("DELETE FROM entities WHERE doc_id = ? AND rev = ?", (doc_id, rev))
        if deleted.rowcount == 0:
            if self.conn.execute("SELECT 1 FROM entities WHERE doc_id = ?", (doc_id,)).fetchone():
                raise Conflict(f"entity '{doc_id}' is not at revision {rev}")
            raise NotFound(f"entity '{doc_id}'")

    def list_entities(self, namespace: str, entity_type: str, limit: int, skip: int) -> list[Document]:
        where, args = _entity_filter(namespace, entity_type)
        rows = self.conn.execute(
            f"SELECT doc_id, rev, entity_type, body FROM entities WHERE {where}"
            " ORDER BY updated DESC, doc_id DESC LIMIT ? OFFSET ?",
            (*args, *_page(limit, skip)),
        ).fetchall()
        return [Document(row[0], row[1], row[2], json.loads(row[3])) for row in rows]

    def count_entities(self, namespace: str, entity_type: str) -> int:
        where, args = _entity_filter(namespace, entity_type)
        return self.conn.execute(f"SELECT count(*) FROM entities WHERE {where}", args).fetchone()[0]

    # activations

    def put_activations(self, activations: list[WhiskActivation]) -> list[StoreError | None]:
        """Insert `activations` in one transaction (one commit for a batch); a duplicate id is that one's Conflict."""
        outcomes: list[StoreError | None] = []
        with self.transaction():
            for activation in activations:
                inserted = self.conn.execute(
                    "INSERT OR IGNORE INTO activations (namespace, activation_id, name, entity_path, start, body)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        activation.namespace,
                        activation.activationId,
                        activation.name,
                        activation.entity_path,
                        activation.start,
                        activation.model_dump_json(),
                    ),
                ).rowcount
                outcomes.append(
                    None if inserted else Conflict(f"activation '{activation.activationId}' exists already"))
        return outcomes

    def get_activation(self, namespace: str, activation_id: str) -> WhiskActivation:
        row = self.conn.execute(
            "SELECT body FROM activations WHERE namespace = ? AND activation_id = ?", (namespace, activation_id)
        ).fetchone()
        if row is None:
            raise NotFound(f"activation '{activation_id}'")
        return WhiskActivation.model_validate_json(row[0])

    def list_activations(
        self, namespace: str, name: str | None, since: int | None, upto: int | None, limit: int, skip: int
    ) -> list[WhiskActivation]:
        where, args = _activation_filter(namespace, name, since, upto)
        rows = self.conn.execute(
            f"SELECT body FROM activations WHERE {where} ORDER BY start DESC, activation_id DESC LIMIT ? OFFSET ?",
            (*args, *_page(limit, skip)),
        ).fetchall()
        return [WhiskActivation.model_validate_json(row[0]) for row in rows]

    def count_activations(self, namespace: str, name: str | None, since: int | None, upto: int | None) -> int:
        where, args = _activation_filter(namespace, name, since, upto)
        return self.conn.execute(f"SELECT count(*) FROM activations WHERE {where}", args).fetchone()[0]

    # feed registrations

    def put_feed(self, registration: FeedRegistration, rev: str | None) -> str:
        trigger = registration.trigger
        doc = registration.model_dump_json()
        if rev is None:
            new_rev = _new_rev(None)
            try:
                self.conn.execute("INSERT INTO feeds (trigger, rev, doc) VALUES (?, ?, ?)", (trigger, new_rev, doc))
            except sqlite3.IntegrityError as exc:
                raise Conflict(f"trigger '{trigger}' has a feed registration already") from exc
            return new_rev
        if not _is_rev(rev):
            raise Conflict(f"feed registration of '{trigger}' is not at revision {rev}")
        new_rev = _new_rev(rev)
        updated = self.conn.execute(
            "UPDATE feeds SET rev = ?, doc = ? WHERE trigger = ? AND rev = ?", (new_rev, doc, trigger, rev)
        )
        if updated.rowcount == 0:
            raise Conflict(f"feed registration of '{trigger}' is not at revision {rev}")
        return new_rev

    def get_feed(self, trigger: str) -> tuple[FeedRegistration, str]:
        row = self.conn.execute("SELECT doc, rev FROM feeds WHERE trigger = ?", (trigger,)).fetchone()
        if row is None:
            raise NotFound(f"feed registration of '{trigger}'")
        return FeedRegistration.model_validate_json(row[0]), row[1]

    def delete_feed(self, trigger: str, rev: str) -> None:
        deleted = self.conn.execute("DELETE FROM feeds WHERE trigger = ? AND rev = ?", (trigger, rev))
        if deleted.rowcount == 0:
            if self.conn.execute("SELECT 1 FROM feeds WHERE trigger = ?", (trigger,)).fetchone():
                raise Conflict(f"feed registration of '{trigger}' is not at revision {rev}")
            raise NotFound(f"feed registration of '{trigger}'")

    def list_feeds(self) -> list[tuple[FeedRegistration, str]]:
        rows = self.conn.execute("SELECT doc, rev FROM feeds ORDER BY trigger").fetchall()
        return [(FeedRegistration.model_validate_json(row[0]), row[1]) for row in rows]

    def advance_feed_cursor(self, trigger: str, registration_id: str, cursor: str | int) -> bool:
        with self.transaction():
            row = self.conn.execute("SELECT doc, rev FROM feeds WHERE trigger = ?", (trigger,)).fetchone()
            if row is None:
                return False
            registration = FeedRegistration.model_validate_json(row[0])
            if registration.id != registration_id:
                return False
            doc = registration.model_copy(update={"cursor": cursor}).model_dump_json()
            self.conn.execute(
                "UPDATE feeds SET rev = ?, doc = ? WHERE trigger = ?", (_new_rev(row[1]), doc, trigger)
            )
        return True


class SqliteStore:
    """The `Store` on a SQLite file. Open it with `await SqliteStore.open(url)` and close it with `close()`."""

    def __init__(self, db: _Database, executor: ThreadPoolExecutor) -> None:
        self._db = db
        self._executor = executor
        # one transaction per batch: under load, many activations share one commit
        self._batcher: Batcher[WhiskActivation] = Batcher(
            self._write_activations, lambda activation: (activation.namespace, activation.activationId))
        self._closed = False

    @classmethod
    async def open(cls, url: str) -> SqliteStore:
        path = database_path(url)
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-store")
        try:
            db = await _in_thread(executor, _Database.connect, path)
        except BaseException:
            executor.shutdown(wait=False)
            raise
        return cls(db, executor)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            await self._batcher.drain()
            await _in_thread(self._executor, self._db.close)
        finally:
            self._executor.shutdown(wait=True)

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        if self._closed:
            raise Unavailable("the store is closed")
        return await _in_thread(self._executor, fn, *args)

    # subjects

    async def put_subject(self, subject: Subject, rev: str | None = None) -> str:
        return await self._call(self._db.put_subject, subject, rev)

    async def get_subject(self, subject: str) -> tuple[Subject, str]:
        return await self._call(self._db.get_subject, subject)

    async def delete_subject(self, subject: str, rev: str) -> None:
        await self._call(self._db.delete_subject, subject, rev)

    async def identity_by_key(self, uuid: str, key: str) -> Identity:
        return await self._call(self._db.identity_by_key, uuid, key)

    async def identity_by_namespace(self, namespace: str) -> Identity:
        return await self._call(self._db.identity_by_namespace, namespace)

    # invokers

    async def assign_invoker_id(self, unique_name: str) -> int:
        return await self._call(self._db.assign_invoker_id, unique_name)

    # entities

    async def get_entity(self, doc_id: str) -> Document:
        return await self._call(self._db.get_entity, doc_id)

    async def put_entity(self, doc_id: str, entity_type: str, body: dict[str, Any], rev: str | None) -> str:
        missing = [field for field in ("namespace", "name", "updated") if field not in body]
        if missing:
            raise ValueError(f"entity '{doc_id}' has no {', '.join(missing)}")
        return await self._call(self._db.put_entity, doc_id, entity_type, body, rev)

    async def delete_entity(self, doc_id: str, rev: str) -> None:
        await self._call(self._db.delete_entity, doc_id, rev)

    async def list_entities(self, namespace: str, entity_type: str, limit: int, skip: int) -> list[Document]:
        return await self._call(self._db.list_entities, namespace, entity_type, limit, skip)

    async def count_entities(self, namespace: str, entity_type: str) -> int:
        return await self._call(self._db.count_entities, namespace, entity_type)

    # activations

    async def put_activation(self, activation: WhiskActivation) -> None:
        if self._closed:
            raise Unavailable("the store is closed")
        await self._batcher.add(activation)

    async def _write_activations(self, activations: list[WhiskActivation]) -> list[StoreError | None]:
        return await _in_thread(self._executor, self._db.put_activations, activations)  # also while closing

    async def get_activation(self, namespace: str, activation_id: str) -> WhiskActivation:
        return await self._call(self._db.get_activation, namespace, activation_id)

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
        return await self._call(self._db.list_activations, namespace, name, since, upto, limit, skip)

    async def count_activations(
        self, namespace: str, *, name: str | None = None, since: int | None = None, upto: int | None = None
    ) -> int:
        return await self._call(self._db.count_activations, namespace, name, since, upto)

    # feed registrations

    async def put_feed(self, registration: FeedRegistration, rev: str | None) -> str:
        return await self._call(self._db.put_feed, registration, rev)

    async def get_feed(self, trigger: str) -> tuple[FeedRegistration, str]:
        return await self._call(self._db.get_feed, trigger)

    async def delete_feed(self, trigger: str, rev: str) -> None:
        await self._call(self._db.delete_feed, trigger, rev)

    async def list_feeds(self) -> list[tuple[FeedRegistration, str]]:
        return await self._call(self._db.list_feeds)

    async def advance_feed_cursor(self, trigger: str, registration_id: str, cursor: str | int) -> bool:
        return await self._call(self._db.advance_feed_cursor, trigger, registration_id, cursor)


async def _in_thread(executor: ThreadPoolExecutor, fn: Callable[..., T], *args: Any) -> T:
    loop = asyncio.get_running_loop()
    try:
        return await loop.run_in_executor(executor, fn, *args)
    except StoreError:
        raise
    except sqlite3.IntegrityError as exc:
        raise Conflict(str(exc)) from exc
    except sqlite3.Error as exc:
        raise Unavailable(f"{type(exc).__name__}: {exc}") from exc
