"""What runs for one active registration: an alarm schedule or a CouchDB changes follower.

Alarms (`alarms/alarm`, `alarms/interval`, `alarms/once`): sleep until the next fire time, fire, and keep the fire
time as the cursor, so that a restart never fires the same tick twice. A cron alarm does not catch up ticks missed
while the service was down (as cron); a `once` whose date passed while it was down fires when it comes back. A tick
whose fire keeps failing is given up after `ALARM_ATTEMPTS`.

Changes (`couchdb/changes`): longpoll `_changes` from the cursor with the documents, fire each change in order
(retrying until the platform takes it), and save the change's `seq` as the cursor after each fire. Documents
written while the service was down are fired when it comes back; a crash between a fire and its cursor save fires
that change again (at least once). A database that cannot be read sets the registration's `status.reason` and is
retried with backoff; the reason is cleared when it reads again.

LoopBack changes (`loopback/changes`): the same follower, on the database `whisk.loopback_registry.model_source`
names: a CouchDB model's own database (its documents are its records), or the registry's change log where the
catalog's record actions append one document per write. Only the registration's model fires its trigger, with the
change (model, modelId, op, id, record) as the payload.

A fire the platform refuses for good (trigger deleted, key revoked) disables the registration, with the reason.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

from feeds.firing import FireFailed, TriggerFirer, TriggerRefused
from whisk.couch_source import CouchSource, SourceError
from whisk.entities.feed import (
    CHANGES,
    LOOPBACK_CHANGES,
    ONCE,
    FeedReason,
    FeedRegistration,
    FeedStatus,
    now_ms,
)
from whisk.feed_config import next_fire_ms
from whisk.loopback_registry import (
    ModelGone,
    ModelSource,
    Registry,
    logged_change,
    model_source,
    native_change,
)
from whisk.store import Conflict, NotFound, Store, StoreError

log = logging.getLogger(__name__)

#: attempts at one alarm tick before it is given up
ALARM_ATTEMPTS = 6
#: longest single sleep while waiting for an alarm, in seconds (wall-clock changes are noticed this soon)
_MAX_SLEEP_S = 30.0
#: attempts at a status write that keeps meeting concurrent writers
_WRITE_ATTEMPTS = 10


@dataclass
class RunnerContext:
    store: Store
    firer: TriggerFirer
    session: aiohttp.ClientSession
    #: backoff for an unreadable database, in seconds
    retry_first_s: float = 1.0
    retry_max_s: float = 60.0
    longpoll_ms: int = 20_000
    #: the LoopBack catalog's registry; None when the platform has none
    loopback_registry: Registry | None = None


async def update_status(store: Store, registration: FeedRegistration, status: FeedStatus) -> bool:
    """Write `status` into the stored registration if it is still this one; whether it was."""
    for _ in range(_WRITE_ATTEMPTS):
        try:
            current, rev = await store.get_feed(registration.trigger)
        except NotFound:
            return False
        if current.id != registration.id:
            return False
        try:
            await store.put_feed(current.model_copy(update={"status": status}), rev)
            return True
        except Conflict:
            continue
    log.warning("could not update the status of the feed of %s: it kept changing", registration.trigger)
    return False


async def disable(ctx: RunnerContext, registration: FeedRegistration, message: str, status: int | None) -> None:
    log.warning("feed of %s disabled: %s", registration.trigger, message)
    reason = FeedReason(kind="AUTO", statusCode=status, message=message)
    await update_status(ctx.store, registration, FeedStatus(active=False, reason=reason))


async def _sleep_until(when_ms: int) -> None:
    while True:
        delay_ms = when_ms - now_ms()
        if delay_ms <= 0:
            return
        await asyncio.sleep(min(delay_ms / 1000, _MAX_SLEEP_S))


async def _save_cursor(ctx: RunnerContext, registration: FeedRegistration, cursor: Any) -> bool:
    """Whether the registration is still current (False: it was deleted or replaced, so stop)."""
    try:
        return await ctx.store.advance_feed_cursor(registration.trigger, registration.id, cursor)
    except StoreError as exc:
        log.warning("could not save the cursor of the feed of %s: %s", registration.trigger, exc)
        return True


async def run_alarm(ctx: RunnerContext, registration: FeedRegistration) -> None:
    last = registration.cursor if isinstance(registration.cursor, int) else None
    payload = registration.config.get("payload") or {}
    while True:
        if registration.feed == ONCE:
            after = last if last is not None else 0
        else:
            after = max(now_ms(), last) if last is not None else now_ms()
        when = next_fire_ms(registration.feed, registration.config, after)
        if when is None:
            message = "fired once" if registration.feed == ONCE else "reached its stopDate"
            await disable(ctx, registration, f"Automatically disabled after it {message}", None)
            return
        await _sleep_until(when)
        try:
            await ctx.firer.fire(registration, payload, ALARM_ATTEMPTS)
        except TriggerRefused as exc:
            await disable(ctx, registration, _refused(exc.status), exc.status)
            return
        except FireFailed as exc:
            log.error("alarm of %s at %d not fired: %s", registration.trigger, when, exc)
        last = when
        if not await _save_cursor(ctx, registration, when):
            return
        if registration.feed == ONCE:
            await _after_once(ctx, registration)
            return


async def _after_once(ctx: RunnerContext, registration: FeedRegistration) -> None:
    choice = registration.config.get("deleteAfterFire", "false")
    if choice == "false":
        await disable(ctx, registration, "Automatically disabled after firing once", None)
        return
    await ctx.firer.delete_trigger(registration, with_rules=choice == "rules")
    for _ in range(_WRITE_ATTEMPTS):
        try:
            current, rev = await ctx.store.get_feed(registration.trigger)
            if current.id == registration.id:
                await ctx.store.delete_feed(registration.trigger, rev)
            return
        except NotFound:
            return
        except Conflict:
            continue


def _refused(status: int) -> str:
    return f"Automatically disabled after receiving a {status} status code when firing the trigger"


Payload = Callable[[CouchSource, dict[str, Any]], dict[str, Any] | None]


def _document_change(source: CouchSource, change: dict[str, Any]) -> dict[str, Any] | None:
    return {"dbname": source.dbname, **change}


async def run_changes(
    ctx: RunnerContext,
    registration: FeedRegistration,
    config: dict[str, Any],
    payload: Payload,
    give_up: Callable[[SourceError], bool] = lambda _exc: False,
    still_current: Callable[[], Awaitable[bool]] | None = None,
) -> Any:
    """Follow `config`'s database until the registration ends, or until a read fails with an error `give_up`
    accepts or `still_current` (asked after each poll) says no: then return where it got to, so that the caller may
    find the database anew and go on from there."""
    source = CouchSource(ctx.session, config)
    since = registration.cursor
    delay = ctx.retry_first_s
    troubled: str | None = registration.status.reason.message if registration.status.reason else None
    while True:
        try:
            if since is None:
                since = await _start(ctx, registration, source)
            changes = await source.changes(since, longpoll_ms=ctx.longpoll_ms)
        except SourceError as exc:
            if give_up(exc):
                return since
            if troubled != str(exc):
                troubled = str(exc)
                log.warning("feed of %s cannot read its database: %s", registration.trigger, exc)
                reason = FeedReason(kind="AUTO", statusCode=exc.status, message=str(exc))
                if not await update_status(ctx.store, registration, FeedStatus(active=True, reason=reason)):
                    return
            await asyncio.sleep(delay)
            delay = min(delay * 2, ctx.retry_max_s)
            continue
        delay = ctx.retry_first_s
        if troubled is not None:
            troubled = None
            if not await update_status(ctx.store, registration, FeedStatus(active=True)):
                return
        for change in changes.results:
            args = payload(source, change)
            try:
                if args is not None:
                    await ctx.firer.fire(registration, args)
            except TriggerRefused as exc:
                await disable(ctx, registration, _refused(exc.status), exc.status)
                return
            since = change.get("seq", since)
            if not await _save_cursor(ctx, registration, since):
                return
        if not changes.results and changes.last_seq is not None:
            since = changes.last_seq
        if still_current is not None and not await still_current():
            return since


async def _start(ctx: RunnerContext, registration: FeedRegistration, source: CouchSource) -> Any:
    """Where a registration without a cursor starts: its `since` (`0`: the beginning), or now."""
    start = registration.config.get("since", "now")
    if start == "now":
        start = await source.update_seq()
    await _save_cursor(ctx, registration, start)
    return start


async def run(ctx: RunnerContext, registration: FeedRegistration) -> None:
    """Run the registration until it ends or is cancelled."""
    if registration.feed == CHANGES:
        await run_changes(ctx, registration, registration.config, _document_change)
    elif registration.feed == LOOPBACK_CHANGES:
        await run_loopback_changes(ctx, registration)
    else:
        await run_alarm(ctx, registration)


async def run_loopback_changes(ctx: RunnerContext, registration: FeedRegistration) -> None:
    """Follow a LoopBack model's changes where `model_source` says they are. The model is looked up again after
    each poll and whenever its database refuses, so that a datasource updated with a new password or database is
    followed there from the cursor on; a model gone from the registry disables the registration."""
    if ctx.loopback_registry is None:
        reason = FeedReason(kind="ADMIN", message="the LoopBack catalog has no registry configured")
        await update_status(ctx.store, registration, FeedStatus(active=False, reason=reason))
        return
    registry = ctx.loopback_registry
    tenant, model_id = registration.namespace, str(registration.config.get("modelId"))
    delay = ctx.retry_first_s
    while True:
        try:
            source = await model_source(ctx.session, registry, tenant, model_id)
        except ModelGone:
            await disable(ctx, registration, f"The model {model_id} no longer exists", 404)
            return
        except SourceError as exc:
            log.warning("feed of %s cannot read the LoopBack registry: %s", registration.trigger, exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, ctx.retry_max_s)
            continue
        payload = _model_events(source, tenant, model_id)

        async def unchanged(followed: ModelSource = source) -> bool:
            """Whether the model still reads from where it is followed (not deleted, no new database settings)."""
            try:
                return await model_source(ctx.session, registry, tenant, model_id) == followed
            except ModelGone:
                return False
            except SourceError:
                return True  # the registry is down: go on with what is known

        reached = await run_changes(ctx, registration, source.config, payload, give_up=_refused_read,
                                    still_current=unchanged)
        registration = registration.model_copy(update={"cursor": reached})
        await asyncio.sleep(delay)
        delay = min(delay * 2, ctx.retry_max_s)


def _model_events(source: ModelSource, tenant: str, model_id: str) -> Payload:
    if source.native:
        return lambda _db, change: native_change(source, model_id, change)
    return lambda _db, change: logged_change(tenant, model_id, change)


def _refused_read(exc: SourceError) -> bool:
    return exc.status in (401, 403, 404)
