"""A user's CouchDB database as the source of a changes feed: its update sequence and its `_changes`, over HTTP.

Spoken to with CouchDB 3.x semantics (longpoll `_changes` with `since`, `include_docs=true`, `limit` and
`timeout`); sequences are opaque (text in CouchDB, numbers in pouchdb-server) and are handed back unchanged.

Errors::

    SourceError            the database cannot be used; `status` is the HTTP status when there was one
     └── SourceUnavailable  it cannot be reached, timed out, or answered 5xx: worth retrying
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aiohttp

#: longest one longpoll request waits for a change, in milliseconds
LONGPOLL_MS = 20_000


class SourceError(Exception):
    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class SourceUnavailable(SourceError):
    pass


@dataclass(frozen=True)
class Changes:
    results: list[dict[str, Any]]
    last_seq: Any


class CouchSource:
    """One database, read through `session` (owned by the caller). `config` is a `couchdb/changes` config."""

    def __init__(self, session: aiohttp.ClientSession, config: dict[str, Any]) -> None:
        self._session = session
        self._db_url = f"{config['url']}/{quote(config['dbname'], safe='')}"
        self._headers = {"Accept": "application/json"}
        if config.get("username"):
            token = f"{config['username']}:{config.get('password') or ''}".encode()
            self._headers["Authorization"] = "Basic " + base64.b64encode(token).decode("ascii")
        self.dbname = config["dbname"]

    async def _get(self, path: str, params: dict[str, str], timeout_s: float) -> Any:
        url = f"{self._db_url}/{path}" if path else self._db_url
        try:
            async with self._session.get(
                url, params=params, headers=self._headers, timeout=aiohttp.ClientTimeout(total=timeout_s)
            ) as response:
                status, raw = response.status, await response.read()
        except TimeoutError as exc:
            raise SourceUnavailable(f"database {self.dbname} did not answer in time") from exc
        except aiohttp.ClientError as exc:
            raise SourceUnavailable(f"database {self.dbname} is unreachable: {exc}") from exc
        if status >= 500:
            raise SourceUnavailable(f"database {self.dbname} answered {status}", status)
        if status == 404:
            raise SourceError(f"database {self.dbname} does not exist", status)
        if status in (401, 403):
            raise SourceError(f"database {self.dbname} refused the credentials ({status})", status)
        if status != 200:
            raise SourceError(f"database {self.dbname} answered {status}", status)
        try:
            return json.loads(raw)
        except ValueError as exc:
            raise SourceError(f"database {self.dbname} answered with a body that is not JSON") from exc

    async def document(self, doc_id: str, timeout_s: float = 10.0) -> Any:
        """One document of the database (404: `SourceError` with status 404)."""
        return await self._get(quote(doc_id, safe=""), {}, timeout_s)

    async def update_seq(self, timeout_s: float = 10.0) -> Any:
        """The database's current update sequence (CouchDB's `GET /db`); also proves it exists and is readable."""
        info = await self._get("", {}, timeout_s)
        if not isinstance(info, dict) or "update_seq" not in info:
            raise SourceError(f"database {self.dbname} did not report an update_seq")
        return info["update_seq"]

    async def changes(self, since: Any, *, limit: int = 100, longpoll_ms: int = LONGPOLL_MS) -> Changes:
        """The changes after `since` (None: from the beginning), with their documents; waits up to `longpoll_ms`
        for the first when there are none."""
        params = {"feed": "longpoll", "include_docs": "true", "limit": str(limit), "timeout": str(longpoll_ms)}
        if since is not None:
            params["since"] = since if isinstance(since, str) else json.dumps(since)
        body = await self._get("_changes", params, longpoll_ms / 1000 + 30)
        if not isinstance(body, dict) or not isinstance(body.get("results"), list):
            raise SourceError(f"database {self.dbname} answered _changes without results")
        return Changes(body["results"], body.get("last_seq"))
