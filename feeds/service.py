"""The feed service: runs every active feed registration of the store, and follows their changes.

At start it reads all registrations and starts a runner (`feeds.runners`) for each active one. A
`FeedChangedMessage` on the `feeds` topic makes it re-read that trigger's registration; a full resync every
`resync_s` catches anything a lost message missed. A registration whose work changed (`same_schedule`) gets its
runner restarted from the stored cursor; an inactive or deleted one has its runner stopped. A runner that fails
unexpectedly is logged and started again after a delay: the service itself never stops on a feed's error.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable

import aiohttp

from feeds import runners
from feeds.firing import TriggerFirer
from whisk.bus import Bus, Record, consume_forever
from whisk.entities.feed import FeedRegistration
from whisk.loopback_registry import Registry
from whisk.messages import FEEDS_TOPIC, FeedChangedMessage
from whisk.store import NotFound, Store, StoreError

log = logging.getLogger(__name__)

CONSUMER_GROUP = "feeds"


class FeedService:
    """Fires the triggers of feed registrations in `store` at the platform's API `api_url`."""

    def __init__(
        self,
        store: Store,
        bus: Bus,
        api_url: str,
        *,
        resync_s: float = 60.0,
        retry_first_s: float = 1.0,
        retry_max_s: float = 60.0,
        longpoll_ms: int = 20_000,
        loopback_registry: Registry | None = None,
    ) -> None:
        self._store = store
        self._loopback_registry = loopback_registry
        self._bus = bus
        self._api_url = api_url
        self._resync_s = resync_s
        self._retry = (retry_first_s, retry_max_s)
        self._longpoll_ms = longpoll_ms
        self._running: dict[str, tuple[FeedRegistration, asyncio.Task[None]]] = {}
        self._background: set[asyncio.Task[None]] = set()
        self._session: aiohttp.ClientSession | None = None
        self._ctx: runners.RunnerContext | None = None

    @property
    def running(self) -> dict[str, FeedRegistration]:
        """The registrations with a runner, by trigger."""
        return {trigger: registration for trigger, (registration, _) in self._running.items()}

    @property
    def fired(self) -> int:
        """How many fires the platform has accepted (a counter for tests and metrics)."""
        return self._ctx.firer.fired if self._ctx is not None else 0

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None, sock_connect=10))
        first, most = self._retry
        firer = TriggerFirer(self._session, self._api_url, retry_first_s=first, retry_max_s=most)
        self._ctx = runners.RunnerContext(self._store, firer, self._session, first, most, self._longpoll_ms,
                                           self._loopback_registry)
        try:
            await self.resync()
        except StoreError as exc:
            log.warning("feed registrations could not be read at start, retrying: %s", exc)
        self._spawn(consume_forever(self._bus, FEEDS_TOPIC, CONSUMER_GROUP, self._on_message, relaxed=True))
        self._spawn(self._resync_forever())

    async def close(self) -> None:
        tasks = [task for _, task in self._running.values()] + list(self._background)
        self._running.clear()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._background.clear()
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _spawn(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def resync(self) -> None:
        """Bring the runners in line with every registration in the store."""
        stored = {registration.trigger: registration for registration, _ in await self._store.list_feeds()}
        for trigger in set(self._running) - set(stored):
            self._stop(trigger)
        for registration in stored.values():
            self._apply(registration)

    async def refresh(self, trigger: str) -> None:
        """Bring the runner of `trigger` in line with its registration in the store."""
        try:
            registration, _ = await self._store.get_feed(trigger)
        except NotFound:
            self._stop(trigger)
            return
        self._apply(registration)

    async def _resync_forever(self) -> None:
        while True:
            await asyncio.sleep(self._resync_s)
            try:
                await self.resync()
            except StoreError as exc:
                log.warning("feed registrations could not be read: %s", exc)

    def _on_message(self, record: Record) -> None:
        message = FeedChangedMessage.parse(record.value)
        self._spawn(self._refresh_logged(message.trigger))

    async def _refresh_logged(self, trigger: str) -> None:
        try:
            await self.refresh(trigger)
        except StoreError as exc:
            log.warning("the feed of %s could not be read (the next resync retries): %s", trigger, exc)

    def _apply(self, registration: FeedRegistration) -> None:
        current = self._running.get(registration.trigger)
        if current is not None and current[1].done():
            self._running.pop(registration.trigger)
            current = None
        if current is not None and current[0].same_schedule(registration):
            return
        self._stop(registration.trigger)
        if registration.status.active:
            task = asyncio.create_task(self._supervise(registration))
            self._running[registration.trigger] = (registration, task)
            log.info("feed %s of %s running", registration.feed, registration.trigger)

    def _stop(self, trigger: str) -> None:
        current = self._running.pop(trigger, None)
        if current is not None:
            current[1].cancel()
            log.info("feed of %s stopped", trigger)

    async def _supervise(self, registration: FeedRegistration) -> None:
        assert self._ctx is not None
        delay = self._retry[0]
        while True:
            try:
                await runners.run(self._ctx, registration)
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("feed of %s failed; restarting it in %.1f s", registration.trigger, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._retry[1])
            try:
                registration, _ = await self._store.get_feed(registration.trigger)
            except StoreError:
                continue
            if not registration.status.active:
                return
