"""Firing triggers through the platform's REST API, with the trigger owner's key, as OpenWhisk's providers do.

`POST {api}/api/v1/namespaces/{ns}/triggers/{name}` with `Authorization: Basic base64(authKey)`. A 2xx answer
(202 with an activation, or 204 when no rule is active) is a fire. 408, 429, 5xx and an unreachable platform are
retried with exponential backoff; any other 4xx is final (`TriggerRefused`: the trigger is gone, the key revoked, the
payload refused), and the registration is disabled by the caller, as OpenWhisk's providers disable it.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from typing import Any
from urllib.parse import quote

import aiohttp

from whisk.entities.feed import FeedRegistration

log = logging.getLogger(__name__)

RETRIED = frozenset({408, 429})


class TriggerRefused(Exception):
    """The platform refused the request for good; `status` is its HTTP status."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class FireFailed(Exception):
    """Every attempt failed with a status or error worth retrying."""


class TriggerFirer:
    """Fires triggers at `api_url` through `session` (owned by the caller). Delays are in seconds."""

    def __init__(
        self, session: aiohttp.ClientSession, api_url: str, *, retry_first_s: float = 1.0, retry_max_s: float = 60.0
    ) -> None:
        self._session = session
        self._api = api_url.rstrip("/") + "/api/v1/namespaces"
        self._retry_first_s = retry_first_s
        self._retry_max_s = retry_max_s
        self.fired = 0  # a counter for tests and metrics

    def _url(self, namespace: str, collection: str, name: str) -> str:
        return f"{self._api}/{quote(namespace, safe='')}/{collection}/{quote(name, safe='')}"

    @staticmethod
    def _headers(registration: FeedRegistration) -> dict[str, str]:
        token = base64.b64encode(registration.authKey.encode()).decode("ascii")
        return {"Authorization": f"Basic {token}", "Accept": "application/json"}

    async def _send(self, method: str, url: str, registration: FeedRegistration, body: Any = None) -> tuple[int, Any]:
        async with self._session.request(method, url, json=body, headers=self._headers(registration)) as response:
            raw = await response.read()
            try:
                return response.status, await response.json(content_type=None) if raw else None
            except ValueError:
                return response.status, None

    async def fire(self, registration: FeedRegistration, payload: dict[str, Any], attempts: int | None = None) -> Any:
        """Fire the registration's trigger with `payload`; the platform's answer (`{"activationId": ...}` or None).
        Retries until it succeeds, or `attempts` times when given (`FireFailed`); `TriggerRefused` when final."""
        url = self._url(registration.namespace, "triggers", registration.name)
        delay = self._retry_first_s
        attempt = 0
        while True:
            attempt += 1
            try:
                status, body = await self._send("POST", url, registration, payload)
            except (aiohttp.ClientError, TimeoutError) as exc:
                status, body, problem = 0, None, f"the platform is unreachable: {exc!r}"
            else:
                problem = f"the platform answered {status}"
            if 200 <= status < 300:
                self.fired += 1
                return body
            if 400 <= status < 500 and status not in RETRIED:
                raise TriggerRefused(f"firing {registration.trigger} was refused with {status}", status)
            if attempts is not None and attempt >= attempts:
                raise FireFailed(f"firing {registration.trigger} failed {attempt} times; last: {problem}")
            log.warning("firing %s failed (%s); retrying in %.1f s", registration.trigger, problem, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._retry_max_s)

    async def delete_trigger(self, registration: FeedRegistration, with_rules: bool) -> None:
        """Delete the registration's trigger (and first its rules); missing ones are fine. Errors are logged."""
        url = self._url(registration.namespace, "triggers", registration.name)
        try:
            if with_rules:
                status, trigger = await self._send("GET", url, registration)
                rules = trigger.get("rules") if status == 200 and isinstance(trigger, dict) else None
                for rule in rules or {}:
                    namespace, _, name = str(rule).rpartition("/")
                    await self._send("DELETE", self._url(namespace or registration.namespace, "rules", name),
                                     registration)
            status, _ = await self._send("DELETE", url, registration)
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning("could not delete trigger %s after its last fire: %r", registration.trigger, exc)
            return
        if status not in (200, 204, 404):
            log.warning("deleting trigger %s after its last fire answered %d", registration.trigger, status)
