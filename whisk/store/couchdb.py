"""The distributed store: CouchDB 3.x over its HTTP API, through one keep-alive aiohttp session.

URL: `http(s)://user:password@host:port[/base/path][?prefix=P&timeout=S]`. The databases are `{P}subjects`,
`{P}whisks`, `{P}activations` and `{P}feeds` (P empty by default, or the `prefix` argument of `open`); `timeout` is the
total time one request may take, in seconds (default 10). `open` creates the databases and design documents
when missing; several processes may do so at once.

Documents:
- subjects: the subject at `_id = subject`, plus one claim per namespace name (`namespace/{name}`) and per uuid
  (`uuid/{uuid}`) holding `{"owner": subject}`. Ids are unique, so two subjects cannot both hold a claim: a
  writer takes its claims (create, or compare-and-swap on the claim's `_rev`) before it writes the subject, and
  confirms each claim with another compare-and-swap after. A claim whose owner does not list it (left by a
  writer that died or lost) may be taken over; a confirmation that finds its claim taken undoes the subject
  write. Identities are read through the claims, so a lookup never depends on a view being up to date.
- whisks: `_id = doc_id` with `entity_type`, `namespace`, `root`, `name`, `updated` and `body`.
- activations: `_id = "{namespace}/{activationId}"` with `namespace`, `entity_path`, `start` and `record`.
- feeds: `_id = trigger` (`ns/name`) with `registration`.
`body`, `record` and `registration` are JSON text: JavaScript-based servers (pouchdb-server) would round
integers beyond 2**53.

Revisions are CouchDB's own. A write with `rev=None` to an existing document, or with a revision that is not
current (including one for a missing document), raises `Conflict`; deleting a missing document `NotFound`.
Lists come from views queried newest first (`descending=true`); equal keys sort by document id, descending.
`put_activation` writes with `_bulk_docs`: at once when no write is in flight, else batched behind the one that is.
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any
from urllib.parse import quote

import aiohttp
from yarl import URL

from whisk.entities.activation import WhiskActivation
from whisk.entities.feed import FeedRegistration
from whisk.entities.identity import Identity, NamespaceLimits, Subject, hash_key, key_matches
from whisk.store import Conflict, Document, NotFound, StoreError, Unavailable
from whisk.store.batching import Batcher

DESIGN_VERSION = "v1"

_ENTITY_VIEWS = {
    "by_root": "function (doc) { if (doc.entity_type) { emit([doc.root, doc.entity_type, doc.updated], null); } }",
    "by_namespace": (
        "function (doc) { if (doc.entity_type) { emit([doc.namespace, doc.entity_type, doc.updated], null); } }"
    ),
}
_ACTIVATION_VIEWS = {
    "by_start": "function (doc) { if (doc.record) { emit([doc.namespace, doc.start], null); } }",
    "by_path": "function (doc) { if (doc.record) { emit([doc.namespace, doc.entity_path, doc.start], null); } }",
}
_DESIGN = {
    "whisks": {f"whisks.{DESIGN_VERSION}": _ENTITY_VIEWS},
    "activations": {f"activations.{DESIGN_VERSION}": _ACTIVATION_VIEWS},
}

_REV = re.compile(r"[1-9][0-9]*-[0-9a-f]{32}")
_PREFIX = re.compile(r"[a-z][a-z0-9_$()+\-]*")
#: Compared against when a uuid is unknown, so that a miss costs the same as a wrong key.
_NO_KEY_HASH = hash_key("")
#: Upper bound for `limit`/`skip` sent to the server; larger values mean the same thing.
_MAX_PAGE = 2**31 - 1
#: Attempts at a claim under contention before giving up with `Conflict`.
_CLAIM_ATTEMPTS = 10


def _json_text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


class CouchStore:
    """The `Store` on CouchDB. Open it with `await CouchStore.open(url)` and close it with `close()`."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        root: URL,
        prefix: str,
        *,
        batch_size: int = 100,
    ) -> None:
        self._session = session
        self._root = root
        self._subjects = f"{prefix}subjects"
        self._whisks = f"{prefix}whisks"
        self._activations = f"{prefix}activations"
        self._feeds = f"{prefix}feeds"
        self._batcher: Batcher[dict[str, Any]] = Batcher(self._write_activations, lambda doc: doc["_id"], batch_size)
        self._closed = False

    @classmethod
    async def open(cls, url: str, prefix: str = "") -> CouchStore:
        parsed = URL(url)
        if parsed.scheme not in ("http", "https") or not parsed.host:
            raise ValueError(f"Store URL '{url}' is not an http(s)://host URL")
        prefix = prefix or parsed.query.get("prefix", "")
        if prefix and not _PREFIX.fullmatch(prefix):
            raise ValueError(f"Database prefix '{prefix}' must be lower case letters, digits or _$()+- after a letter")
        try:
            timeout_s = float(parsed.query.get("timeout", "10"))
        except ValueError:
            raise ValueError(f"Store URL '{url}' has a timeout that is not a number of seconds") from None
        headers = {"Accept": "application/json"}
        if parsed.user:
            credentials = f"{parsed.user}:{parsed.password or ''}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(credentials).decode("ascii")
        root = parsed.with_user(None).with_password(None).with_query(None).with_fragment(None)
        root = root.with_path(root.path.rstrip("/") or "/")
        session = aiohttp.ClientSession(
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=timeout_s),
        )
        store = cls(session, root, prefix)
        try:
            await store.initialise()
        except BaseException:
            await session.close()
            raise
        return store

    @property
    def activation_batches(self) -> int:
        """How many `_bulk_docs` requests `put_activation` has made (a counter for tests and metrics)."""
        return self._batcher.writes

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            await self._batcher.drain()
        finally:
            await self._session.close()

    async def initialise(self) -> None:
        """Create the databases and design documents that are missing; idempotent and safe to run concurrently."""
        for db, designs in (
            (self._subjects, {}),
            (self._whisks, _DESIGN["whisks"]),
            (self._activations, _DESIGN["activations"]),
            (self._feeds, {}),
        ):
            status, body = await self._request("PUT", db)
            if status not in (201, 202, 412):
                self._fail(status, body, f"database {db}")
            for name, views in designs.items():
                await self._ensure_design(db, name, views)

    async def _ensure_design(self, db: str, name: str, views: dict[str, str]) -> None:
        wanted = {"language": "javascript", "views": {v: {"map": m, "reduce": "_count"} for v, m in views.items()}}
        path = f"_design/{quote(name, safe='')}"
        for _ in range(_CLAIM_ATTEMPTS):
            status, current = await self._request("GET", db, path)
            if status == 200 and {k: current.get(k) for k in wanted} == wanted:
                return
            if status not in (200, 404):
                self._fail(status, current, f"design document {name}")
            doc = dict(wanted, _rev=current["_rev"]) if status == 200 else wanted
            status, body = await self._request("PUT", db, path, body=doc)
            if status in (201, 202):
                return
            if status != 409:
                self._fail(status, body, f"design document {name}")
        raise Conflict(f"design document {name} keeps changing")

    # HTTP

    def _url(self, db: str, path: str = "") -> URL:
        base = self._root.raw_path.rstrip("/")
        return self._root.with_path(f"{base}/{db}/{path}" if path else f"{base}/{db}", encoded=True)

    async def _request(
        self, method: str, db: str, path: str = "", *, params: dict[str, str] | None = None, body: Any = None
    ) -> tuple[int, Any]:
        if self._session.closed:
            raise Unavailable("the store is closed")
        data = None if body is None else _json_text(body).encode()
        headers = None if body is None else {"Content-Type": "application/json"}
        try:
            async with self._session.request(
                method, self._url(db, path), params=params, data=data, headers=headers
            ) as resp:
                status = resp.status
                raw = await resp.read()
        except TimeoutError as exc:
            raise Unavailable(f"CouchDB did not answer {method} {db}/{path} in time") from exc
        except aiohttp.ClientError as exc:
            raise Unavailable(f"CouchDB is unreachable: {exc!r}") from exc
        try:
            payload = json.loads(raw) if raw else None
        except ValueError as exc:
            raise Unavailable(f"CouchDB answered {status} with a body that is not JSON") from exc
        if status >= 500:
            raise Unavailable(f"CouchDB answered {status}: {payload}")
        if status in (401, 403):
            raise Unavailable(f"CouchDB refused the credentials ({status}): {payload}")
        return status, payload

    @staticmethod
    def _fail(status: int, body: Any, what: str) -> None:
        if status == 404:
            raise NotFound(what)
        if status in (409, 412):
            raise Conflict(f"{what} is not at that revision or exists already")
        raise StoreError(f"CouchDB answered {status} for {what}: {body}")

    async def _get(self, db: str, doc_id: str) -> dict[str, Any] | None:
        status, body = await self._request("GET", db, quote(doc_id, safe=""))
        if status == 404:
            return None
        if status != 200:
            self._fail(status, body, doc_id)
        return body

    async def _put(self, db: str, doc_id: str, doc: dict[str, Any], rev: str | None) -> str | None:
        """PUT a document: its new revision, or None on a conflict."""
        if rev is not None:
            doc = {**doc, "_rev": rev}
        status, body = await self._request("PUT", db, quote(doc_id, safe=""), body=doc)
        if status in (201, 202):
            return body["rev"]
        if status != 409:
            self._fail(status, body, doc_id)
        return None

    async def _delete(self, db: str, doc_id: str, rev: str) -> None:
        """Delete at `rev`: `NotFound` if the document is missing, `Conflict` if `rev` is not current."""
        if _REV.fullmatch(rev):
            status, body = await self._request("DELETE", db, quote(doc_id, safe=""), params={"rev": rev})
            if status in (200, 202):
                return
            if status not in (400, 404, 409):
                self._fail(status, body, doc_id)
        if await self._get(db, doc_id) is None:
            raise NotFound(doc_id)
        raise Conflict(f"'{doc_id}' is not at revision {rev}")

    async def _bulk_docs(self, db: str, docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        status, body = await self._request("POST", db, "_bulk_docs", body={"docs": docs})
        if status not in (201, 202) or not isinstance(body, list) or len(body) != len(docs):
            raise StoreError(f"CouchDB answered {status} to a bulk write: {body}")
        return body

    async def _view(self, db: str, design: str, view: str, params: dict[str, Any]) -> dict[str, Any]:
        query = {k: v if isinstance(v, str) else _json_text(v) for k, v in params.items()}
        status, body = await self._request("GET", db, f"_design/{design}/_view/{view}", params=query)
        if status != 200:
            self._fail(status, body, f"view {design}/{view}")
        return body

    # subjects

    async def put_subject(self, subject: Subject, rev: str | None = None) -> str:
        name = subject.subject
        if not name or name.startswith("_") or "/" in name:
            raise ValueError(f"subject '{name}' must not be empty, start with '_' or contain '/'")
        names = [ns.name for ns in subject.namespaces]
        uuids = [ns.uuid for ns in subject.namespaces]
        if len(set(names)) != len(names) or len(set(uuids)) != len(uuids):
            raise Conflict(f"subject '{name}' lists a namespace name or uuid twice")
        if rev is not None and not _REV.fullmatch(rev):
            raise Conflict(f"subject '{name}' is not at revision {rev}")
        current = await self._get(self._subjects, name)
        if (current is None) != (rev is None) or (current is not None and current["_rev"] != rev):
            raise Conflict(f"subject '{name}' is not at revision {rev}")
        previous = Subject.model_validate(current) if current is not None else None
        held_before = set(_claims(previous)) if previous is not None else set()

        taken: dict[str, str] = {}
        try:
            for claim_id in sorted(_claims(subject)):
                taken[claim_id] = await self._take_claim(claim_id, name)
            new_rev = await self._put(self._subjects, name, subject.model_dump(mode="json"), rev)
            if new_rev is None:
                raise Conflict(f"subject '{name}' is not at revision {rev}")
        except BaseException:
            await self._release(name, {c: r for c, r in taken.items() if c not in held_before})
            raise
        for claim_id in sorted(taken):
            if not await self._confirm_claim(claim_id, name, taken, new_rev):
                await self._undo_subject(name, new_rev, current)
                await self._release(name, {c: r for c, r in taken.items() if c not in held_before})
                raise Conflict(f"namespace or uuid '{claim_id}' was taken by another subject meanwhile")
        if previous is not None:
            await self._release(name, {c: None for c in held_before - set(taken)})
        return new_rev

    async def _take_claim(self, claim_id: str, owner: str) -> str:
        for _ in range(_CLAIM_ATTEMPTS):
            rev = await self._put(self._subjects, claim_id, {"owner": owner}, None)
            if rev is not None:
                return rev
            claim = await self._get(self._subjects, claim_id)
            if claim is None:
                continue
            holder = claim.get("owner")
            if holder != owner and await self._holds(holder, claim_id):
                raise Conflict(f"'{claim_id}' belongs to another subject")
            rev = await self._put(self._subjects, claim_id, {"owner": owner}, claim["_rev"])
            if rev is not None:
                return rev
        raise Conflict(f"'{claim_id}' is contended")

    async def _confirm_claim(self, claim_id: str, owner: str, taken: dict[str, str], subject_rev: str) -> bool:
        """Swap the claim to a new revision, so a writer that saw it unconfirmed cannot take it over after."""
        doc = {"owner": owner, "subject_rev": subject_rev}
        for _ in range(_CLAIM_ATTEMPTS):
            rev = await self._put(self._subjects, claim_id, doc, taken[claim_id])
            if rev is not None:
                taken[claim_id] = rev
                return True
            claim = await self._get(self._subjects, claim_id)
            if claim is None:
                rev = await self._put(self._subjects, claim_id, doc, None)
                if rev is not None:
                    taken[claim_id] = rev
                    return True
                continue
            if claim.get("owner") != owner:
                return False
            taken[claim_id] = claim["_rev"]
        return False

    async def _holds(self, subject: Any, claim_id: str) -> bool:
        """Whether `subject` exists and lists the namespace or uuid of `claim_id`."""
        doc = await self._subject_doc(subject) if isinstance(subject, str) else None
        return doc is not None and claim_id in _claims(Subject.model_validate(doc))

    async def _undo_subject(self, name: str, new_rev: str, previous: dict[str, Any] | None) -> None:
        try:
            if previous is None:
                await self._delete(self._subjects, name, new_rev)
            else:
                body = {k: v for k, v in previous.items() if not k.startswith("_")}
                await self._put(self._subjects, name, body, new_rev)
        except StoreError:
            pass

    async def _release(self, owner: str, claims: dict[str, str | None]) -> None:
        """Delete claims still held by `owner`, at the revision given (or the current one); best effort."""
        for claim_id, rev in claims.items():
            try:
                if rev is None:
                    claim = await self._get(self._subjects, claim_id)
                    if claim is None or claim.get("owner") != owner:
                        continue
                    rev = claim["_rev"]
                await self._delete(self._subjects, claim_id, rev)
            except StoreError:
                pass

    async def get_subject(self, subject: str) -> tuple[Subject, str]:
        doc = await self._subject_doc(subject)
        if doc is None:
            raise NotFound(f"subject '{subject}'")
        return Subject.model_validate(doc), doc["_rev"]

    async def _subject_doc(self, subject: str) -> dict[str, Any] | None:
        if not subject or subject.startswith("_") or "/" in subject:
            return None
        doc = await self._get(self._subjects, subject)
        return doc if doc is not None and doc.get("subject") == subject else None

    async def delete_subject(self, subject: str, rev: str) -> None:
        doc = await self._subject_doc(subject)
        if doc is None:
            raise NotFound(f"subject '{subject}'")
        if doc["_rev"] != rev:
            raise Conflict(f"subject '{subject}' is not at revision {rev}")
        await self._delete(self._subjects, subject, rev)
        await self._release(subject, {c: None for c in _claims(Subject.model_validate(doc))})

    async def _identity(self, field: str, value: str, key: str | None) -> Identity:
        claim_id = f"{field}/{value}"
        claim = await self._get(self._subjects, claim_id)
        owner = claim.get("owner") if claim else None
        doc = await self._subject_doc(owner) if isinstance(owner, str) else None
        subject = Subject.model_validate(doc) if doc is not None else None
        attribute = "name" if field == "namespace" else "uuid"
        found = next((ns for ns in subject.namespaces if getattr(ns, attribute) == value), None) if subject else None
        if key is not None and not key_matches(key, found.key_hash if found else _NO_KEY_HASH):
            raise NotFound("no identity with this uuid and key")
        if subject is None or found is None or subject.blocked:
            raise NotFound(f"no identity for '{claim_id}'")
        limits = subject.limits.get(found.name) or NamespaceLimits()
        return Identity(subject=subject.subject, namespace=found.name, uuid=found.uuid, limits=limits)

    async def identity_by_key(self, uuid: str, key: str) -> Identity:
        return await self._identity("uuid", uuid, key)

    async def identity_by_namespace(self, namespace: str) -> Identity:
        return await self._identity("namespace", namespace, None)

    # entities

    async def assign_invoker_id(self, unique_name: str) -> int:
        # `invoker/id/N` documents claim ids (creating one is atomic); `invoker/name/NAME` remembers the answer
        name_doc = f"invoker/name/{unique_name}"
        known = await self._get(self._subjects, name_doc)
        if known is not None:
            return int(known["invoker_id"])
        invoker_id = 0
        while True:
            claimed = await self._put(self._subjects, f"invoker/id/{invoker_id}", {"owner": unique_name}, None)
            if claimed is None:
                holder = await self._get(self._subjects, f"invoker/id/{invoker_id}")
                if holder is None or holder.get("owner") != unique_name:
                    invoker_id += 1
                    continue
            await self._put(self._subjects, name_doc, {"invoker_id": invoker_id}, None)
            return invoker_id

    async def get_entity(self, doc_id: str) -> Document:
        doc = await self._get(self._whisks, doc_id) if doc_id and not doc_id.startswith("_") else None
        if doc is None or "entity_type" not in doc:
            raise NotFound(f"entity '{doc_id}'")
        return Document(doc["_id"], doc["_rev"], doc["entity_type"], json.loads(doc["body"]))

    async def put_entity(self, doc_id: str, entity_type: str, body: dict[str, Any], rev: str | None) -> str:
        missing = [field for field in ("namespace", "name", "updated") if field not in body]
        if missing:
            raise ValueError(f"entity '{doc_id}' has no {', '.join(missing)}")
        if not doc_id or doc_id.startswith("_"):
            raise ValueError(f"entity id '{doc_id}' must not be empty or start with '_'")
        if rev is not None and not _REV.fullmatch(rev):
            raise Conflict(f"entity '{doc_id}' is not at revision {rev}")
        namespace = body["namespace"]
        doc = {
            "entity_type": entity_type,
            "namespace": namespace,
            "root": namespace.split("/", 1)[0],
            "name": body["name"],
            "updated": body["updated"],
            "body": _json_text(body),
        }
        new_rev = await self._put(self._whisks, doc_id, doc, rev)
        if new_rev is None:
            raise Conflict(f"entity '{doc_id}' exists already or is not at revision {rev}")
        return new_rev

    async def delete_entity(self, doc_id: str, rev: str) -> None:
        if not doc_id or doc_id.startswith("_"):
            raise NotFound(f"entity '{doc_id}'")
        await self._delete(self._whisks, doc_id, rev)

    @staticmethod
    def _entity_view(namespace: str) -> str:
        return "by_namespace" if "/" in namespace else "by_root"

    async def list_entities(self, namespace: str, entity_type: str, limit: int, skip: int) -> list[Document]:
        params = _page(limit, skip) | {
            "startkey": [namespace, entity_type, {}],
            "endkey": [namespace, entity_type],
            "descending": "true",
            "reduce": "false",
            "include_docs": "true",
        }
        body = await self._view(self._whisks, f"whisks.{DESIGN_VERSION}", self._entity_view(namespace), params)
        return [
            Document(row["id"], row["doc"]["_rev"], row["doc"]["entity_type"], json.loads(row["doc"]["body"]))
            for row in body["rows"]
            if row.get("doc")
        ]

    async def count_entities(self, namespace: str, entity_type: str) -> int:
        params = {"startkey": [namespace, entity_type], "endkey": [namespace, entity_type, {}], "reduce": "true"}
        body = await self._view(self._whisks, f"whisks.{DESIGN_VERSION}", self._entity_view(namespace), params)
        return _count(body)

    # activations

    async def _write_activations(self, docs: list[dict[str, Any]]) -> list[StoreError | None]:
        outcomes: list[StoreError | None] = []
        for doc, result in zip(docs, await self._bulk_docs(self._activations, docs), strict=True):
            error = result.get("error")
            if error is None:
                outcomes.append(None)
            elif error == "conflict":
                outcomes.append(Conflict(f"activation '{doc['_id']}' exists already"))
            else:
                outcomes.append(StoreError(f"activation '{doc['_id']}': {error}: {result.get('reason')}"))
        return outcomes

    async def put_activation(self, activation: WhiskActivation) -> None:
        if self._closed:
            raise Unavailable("the store is closed")
        doc = {
            "_id": f"{activation.namespace}/{activation.activationId}",
            "namespace": activation.namespace,
            "entity_path": activation.entity_path,
            "start": activation.start,
            "record": activation.model_dump_json(),
        }
        await self._batcher.add(doc)

    async def get_activation(self, namespace: str, activation_id: str) -> WhiskActivation:
        doc_id = f"{namespace}/{activation_id}"
        doc = await self._get(self._activations, doc_id) if namespace and not namespace.startswith("_") else None
        if doc is None or "record" not in doc:
            raise NotFound(f"activation '{activation_id}'")
        return WhiskActivation.model_validate_json(doc["record"])

    @staticmethod
    def _activation_range(
        namespace: str, name: str | None, since: int | None, upto: int | None
    ) -> tuple[str, dict[str, Any]]:
        base = [namespace] if name is None else [namespace, name]
        high = [*base, {} if upto is None else upto]
        low = base if since is None else [*base, since]
        return ("by_start" if name is None else "by_path"), {"startkey": high, "endkey": low}

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
        if since is not None and upto is not None and since > upto:
            return []
        view, keys = self._activation_range(namespace, name, since, upto)
        params = _page(limit, skip) | keys | {"descending": "true", "reduce": "false", "include_docs": "true"}
        body = await self._view(self._activations, f"activations.{DESIGN_VERSION}", view, params)
        return [WhiskActivation.model_validate_json(row["doc"]["record"]) for row in body["rows"] if row.get("doc")]

    async def count_activations(
        self, namespace: str, *, name: str | None = None, since: int | None = None, upto: int | None = None
    ) -> int:
        if since is not None and upto is not None and since > upto:
            return 0
        view, keys = self._activation_range(namespace, name, since, upto)
        params = {"startkey": keys["endkey"], "endkey": keys["startkey"], "reduce": "true"}
        body = await self._view(self._activations, f"activations.{DESIGN_VERSION}", view, params)
        return _count(body)

    # feed registrations

    async def put_feed(self, registration: FeedRegistration, rev: str | None) -> str:
        trigger = registration.trigger
        if not trigger or trigger.startswith("_"):
            raise ValueError(f"trigger '{trigger}' must not be empty or start with '_'")
        if rev is not None and not _REV.fullmatch(rev):
            raise Conflict(f"feed registration of '{trigger}' is not at revision {rev}")
        new_rev = await self._put(self._feeds, trigger, {"registration": registration.model_dump_json()}, rev)
        if new_rev is None:
            raise Conflict(f"feed registration of '{trigger}' exists already or is not at revision {rev}")
        return new_rev

    async def _feed_doc(self, trigger: str) -> dict[str, Any] | None:
        doc = await self._get(self._feeds, trigger) if trigger and not trigger.startswith("_") else None
        return doc if doc is not None and "registration" in doc else None

    async def get_feed(self, trigger: str) -> tuple[FeedRegistration, str]:
        doc = await self._feed_doc(trigger)
        if doc is None:
            raise NotFound(f"feed registration of '{trigger}'")
        return FeedRegistration.model_validate_json(doc["registration"]), doc["_rev"]

    async def delete_feed(self, trigger: str, rev: str) -> None:
        if not trigger or trigger.startswith("_"):
            raise NotFound(f"feed registration of '{trigger}'")
        await self._delete(self._feeds, trigger, rev)

    async def list_feeds(self) -> list[tuple[FeedRegistration, str]]:
        status, body = await self._request("GET", self._feeds, "_all_docs", params={"include_docs": "true"})
        if status != 200:
            self._fail(status, body, "feed registrations")
        return [
            (FeedRegistration.model_validate_json(row["doc"]["registration"]), row["doc"]["_rev"])
            for row in body["rows"]
            if row.get("doc") and "registration" in row["doc"]
        ]

    async def advance_feed_cursor(self, trigger: str, registration_id: str, cursor: str | int) -> bool:
        for _ in range(_CLAIM_ATTEMPTS):
            doc = await self._feed_doc(trigger)
            if doc is None:
                return False
            registration = FeedRegistration.model_validate_json(doc["registration"])
            if registration.id != registration_id:
                return False
            moved = registration.model_copy(update={"cursor": cursor})
            if await self._put(self._feeds, trigger, {"registration": moved.model_dump_json()}, doc["_rev"]):
                return True
        raise Conflict(f"feed registration of '{trigger}' keeps changing")


def _claims(subject: Subject) -> list[str]:
    return [f"namespace/{ns.name}" for ns in subject.namespaces] + [f"uuid/{ns.uuid}" for ns in subject.namespaces]


def _page(limit: int, skip: int) -> dict[str, Any]:
    if limit < 0 or skip < 0:
        raise ValueError(f"limit {limit} and skip {skip} must not be negative")
    params: dict[str, Any] = {"skip": str(min(skip, _MAX_PAGE))}
    if limit:
        params["limit"] = str(min(limit, _MAX_PAGE))
    return params


def _count(body: dict[str, Any]) -> int:
    rows = body.get("rows") or []
    return int(rows[0]["value"]) if rows else 0
