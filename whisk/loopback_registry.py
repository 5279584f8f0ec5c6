"""Where the changes of a LoopBack catalog model come from, read from the catalog's registry (a CouchDB).

The registry's databases are `{prefix}datasources`, `{prefix}models` and `{prefix}changes`, with document ids
`{tenant}/{id}`. A model on a CouchDB datasource has its records in that datasource's database, each document naming
its model in `loopback__model__name` (LoopBack's CouchDB connector), so its changes are read from that database's own
changes feed: writes made behind the catalog's back count too. Every other model's changes are the documents the
catalog's record actions append to `{prefix}changes`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aiohttp
from yarl import URL

from whisk.couch_source import CouchSource, SourceError

#: the field LoopBack's CouchDB connector names a document's model in
MODEL_FIELD = "loopback__model__name"


class ModelGone(SourceError):
    """The model (or its datasource) is no longer in the registry."""


@dataclass(frozen=True)
class Registry:
    """The registry's location: a `couchdb/changes`-shaped config of its server (no `dbname`) and the prefix."""

    server: dict[str, Any]
    prefix: str

    @classmethod
    def at(cls, url: str, prefix: str) -> Registry:
        return cls(_server(url), prefix)

    def database(self, name: str) -> dict[str, Any]:
        return {**self.server, "dbname": f"{self.prefix}{name}"}


@dataclass(frozen=True)
class ModelSource:
    """The database a model's changes are read from, and how to read them."""

    #: a `couchdb/changes`-shaped config
    config: dict[str, Any]
    #: the model's own CouchDB database (documents are records) rather than the registry's change log
    native: bool
    #: the model's name, as its records name it (native) and as its events carry it
    model: str


async def model_source(session: aiohttp.ClientSession, registry: Registry, tenant: str, model_id: str) -> ModelSource:
    """Where the changes of `tenant`'s model `model_id` are; `ModelGone` when it does not exist."""
    model = await _document(session, registry.database("models"), f"{tenant}/{model_id}")
    name = str(model.get("name", ""))
    datasource = await _document(session, registry.database("datasources"), f"{tenant}/{model.get('datasourceId')}")
    if datasource.get("connector") != "couchdb":
        return ModelSource(registry.database("changes"), native=False, model=name)
    settings = datasource.get("settings") or {}
    config = {**_server(str(settings.get("url", "")), settings.get("username"), settings.get("password")),
              "dbname": str(settings.get("database", ""))}
    return ModelSource(config, native=True, model=str(model.get("table") or name))


def _server(url: str, username: str | None = None, password: str | None = None) -> dict[str, Any]:
    """A CouchDB server's `couchdb/changes` config: its URL without credentials, and the credentials (given ones
    before the URL's)."""
    parsed = URL(url)
    server: dict[str, Any] = {"url": str(parsed.with_user(None).with_password(None)).rstrip("/")}
    username = username or parsed.user
    if username:
        server.update(username=username, password=password or parsed.password or "")
    return server


async def _document(session: aiohttp.ClientSession, config: dict[str, Any], doc_id: str) -> dict[str, Any]:
    try:
        doc = await CouchSource(session, config).document(doc_id)
    except SourceError as exc:
        if exc.status == 404:
            raise ModelGone(f"{doc_id.split('/', 1)[-1]} is not in the LoopBack registry", 404) from None
        raise
    if not isinstance(doc, dict):
        raise SourceError(f"the LoopBack registry answered {doc_id} with something that is not a document")
    return doc


def native_change(source: ModelSource, model_id: str, change: dict[str, Any]) -> dict[str, Any] | None:
    """The event of one `_changes` result of a model's own database (None: another model's document): its `op`
    from the revision (`1-`: create) or the deletion, its record without CouchDB's bookkeeping."""
    doc = change.get("doc")
    if not isinstance(doc, dict) or doc.get(MODEL_FIELD) != source.model:
        return None
    deleted = bool(change.get("deleted") or doc.get("_deleted"))
    op = "delete" if deleted else "create" if str(doc.get("_rev", "")).startswith("1-") else "update"
    record = None if deleted else {"id": doc.get("_id"), **{
        k: v for k, v in doc.items() if k not in ("_id", "_rev", MODEL_FIELD)}}
    return {"model": source.model, "modelId": model_id, "op": op, "id": doc.get("_id"), "record": record}


def logged_change(tenant: str, model_id: str, change: dict[str, Any]) -> dict[str, Any] | None:
    """The event of one document of the registry's change log (None: another tenant's or model's)."""
    doc = change.get("doc")
    if not isinstance(doc, dict) or doc.get("tenant") != tenant or doc.get("modelId") != model_id:
        return None
    return {k: v for k, v in doc.items() if k not in ("_id", "_rev", "tenant")}
