"""The built-in feed actions: `/whisk.system/alarms/{alarm,once,interval}`, `/whisk.system/couchdb/changes` and
`/whisk.system/loopback/changes` (a model's record changes, for a model of the trigger owner's).

Each is a system action run in-process with OpenWhisk's feed parameters: `lifecycleEvent` (CREATE, READ, UPDATE,
DELETE, PAUSE, UNPAUSE), `triggerName` (`/ns/name`), `authKey` (the trigger owner's `uuid:key`) and the feed's own
parameters. It checks them, keeps the registration in the store for the feed service (`feeds/`), and tells the
service on the `feeds` topic (the service also resyncs from the store periodically).

Only the trigger's owner manages its feed: the trigger must be in the caller's namespace and `authKey` must be a key
of that namespace. CREATE and UPDATE also need the trigger to exist; CREATE of a changes feed reads the database
once (it must exist, and its current sequence is where the feed starts unless `since` says otherwise).
"""

from __future__ import annotations

import logging
from typing import Any

import aiohttp

from controller.system import (
    SystemActionFailed,
    SystemActionSpec,
    SystemCall,
    SystemHandler,
    SystemPackageSpec,
    register_package,
    system_action,
)
from whisk.bus import BusError
from whisk.couch_source import CouchSource, SourceError
from whisk.entities.feed import (
    ALARM,
    CHANGES,
    INTERVAL,
    LOOPBACK_CHANGES,
    ONCE,
    FeedReason,
    FeedRegistration,
    FeedStatus,
    now_ms,
)
from whisk.entities.names import DEFAULT_NAMESPACE, FullyQualifiedName, InvalidName
from whisk.feed_config import InvalidFeedParams, validate
from whisk.loopback_registry import ModelGone, model_source
from whisk.messages import FEEDS_TOPIC, FeedChangedMessage
from whisk.store import Conflict, NotFound, Store

log = logging.getLogger(__name__)

EVENTS = ("CREATE", "READ", "UPDATE", "DELETE", "PAUSE", "UNPAUSE")
#: the entity type under which the triggers API stores triggers
TRIGGER_TYPE = "triggers"
_LIFECYCLE_ARGS = ("lifecycleEvent", "triggerName", "authKey")
_WRITE_ATTEMPTS = 5
SUCCESS = {"status": "success"}


def _trigger_of(call: SystemCall) -> str:
    """`ns/name` of the `triggerName` argument, which must be in the caller's namespace."""
    name = call.args.get("triggerName")
    if not name or not isinstance(name, str):
        raise _failed("no trigger name parameter was provided")
    try:
        fqn = FullyQualifiedName.parse(name if name.startswith("/") else f"/_/{name}")
    except InvalidName:
        raise _failed(f"trigger name '{name}' is not valid") from None
    if fqn.package is not None:
        raise _failed(f"trigger name '{name}' is not valid")
    namespace = call.caller.namespace if fqn.namespace == DEFAULT_NAMESPACE else fqn.namespace
    if namespace != call.caller.namespace:
        raise _failed(f"trigger '{name}' is not in your namespace")
    return f"{namespace}/{fqn.name}"


def _failed(message: str) -> SystemActionFailed:
    return SystemActionFailed(message)


async def _check_key(call: SystemCall, trigger: str) -> str:
    key = call.args.get("authKey")
    if not key or not isinstance(key, str) or ":" not in key:
        raise _failed("no authKey parameter was provided")
    uuid, _, secret = key.partition(":")
    try:
        identity = await call.controller.store.identity_by_key(uuid, secret)
    except NotFound:
        raise _failed("the authKey is not valid") from None
    if identity.namespace != trigger.split("/", 1)[0]:
        raise _failed(f"the authKey is not a key of the namespace of trigger /{trigger}")
    return key


async def _check_trigger(store: Store, trigger: str) -> None:
    try:
        doc = await store.get_entity(trigger)
    except NotFound:
        doc = None
    if doc is None or doc.entity_type != TRIGGER_TYPE:
        raise _failed(f"trigger /{trigger} does not exist")


async def _registration(store: Store, trigger: str, feed: str) -> tuple[FeedRegistration, str]:
    try:
        registration, rev = await store.get_feed(trigger)
    except NotFound:
        raise _failed(f"trigger /{trigger} has no {feed} feed") from None
    if registration.feed != feed:
        raise _failed(f"trigger /{trigger} has a {registration.feed} feed, not {feed}")
    return registration, rev


async def _announce(call: SystemCall, trigger: str) -> None:
    try:
        await call.controller.bus.send(FEEDS_TOPIC, FeedChangedMessage(trigger=trigger).serialize())
    except BusError:
        log.warning("could not announce the change of the feed of %s; the feed service resyncs later", trigger)


async def _start_cursor(config: dict[str, Any]) -> Any:
    """Where a new changes feed starts: its `since`, or the database's current sequence."""
    async with aiohttp.ClientSession() as session:
        source = CouchSource(session, config)
        try:
            seq = await source.update_seq()
        except SourceError as exc:
            raise _failed(f"error connecting to database {config['dbname']}: {exc}") from None
    since = config.get("since", "now")
    return seq if since == "now" else since


async def _loopback_cursor(call: SystemCall, trigger: str, model_id: str) -> Any:
    """Where a new `loopback/changes` feed starts: the current sequence of the database the model's changes are
    read from (the model must be one of the trigger owner's)."""
    registry = call.controller.settings.loopback_registry()
    if registry is None:
        raise _failed("the LoopBack catalog has no registry configured on this platform")
    async with aiohttp.ClientSession() as session:
        try:
            source = await model_source(session, registry, trigger.split("/", 1)[0], model_id)
        except ModelGone:
            raise _failed(f"model {model_id} does not exist") from None
        except SourceError as exc:
            raise _failed(f"the LoopBack registry cannot be read: {exc}") from None
    return await _start_cursor(source.config)


def _config(feed: str, params: dict[str, Any], current: dict[str, Any] | None = None) -> dict[str, Any]:
    try:
        return validate(feed, params, now_ms(), current)
    except InvalidFeedParams as exc:
        raise _failed(str(exc)) from None


async def _create(call: SystemCall, feed: str, trigger: str, params: dict[str, Any]) -> dict[str, Any]:
    key = await _check_key(call, trigger)
    store = call.controller.store
    await _check_trigger(store, trigger)
    config = _config(feed, params)
    if feed == LOOPBACK_CHANGES:
        cursor = await _loopback_cursor(call, trigger, config["modelId"])
    else:
        cursor = await _start_cursor(config) if feed == CHANGES else None
    registration = FeedRegistration(trigger=trigger, feed=feed, authKey=key, config=config,  # type: ignore[arg-type]
                                    cursor=cursor)
    for _ in range(_WRITE_ATTEMPTS):
        try:
            _, rev = await store.get_feed(trigger)
        except NotFound:
            rev = None  # a registration left by a deleted trigger of the same name is replaced
        try:
            await store.put_feed(registration, rev)
            break
        except Conflict:
            continue
    else:
        raise Conflict(f"the feed registration of {trigger} keeps changing")
    await _announce(call, trigger)
    return SUCCESS


async def _change(call: SystemCall, feed: str, trigger: str, event: str, params: dict[str, Any]) -> dict[str, Any]:
    """UPDATE, PAUSE or UNPAUSE, retried from a fresh read when the feed service wrote meanwhile."""
    store = call.controller.store
    for _ in range(_WRITE_ATTEMPTS):
        registration, rev = await _registration(store, trigger, feed)
        if event == "UPDATE":
            changed = registration.model_copy(update={"config": _config(feed, params, registration.config)})
        elif event == "PAUSE":
            reason = FeedReason(kind="USER", message="paused")
            changed = registration.model_copy(update={"status": FeedStatus(active=False, reason=reason)})
        else:
            changed = registration.model_copy(update={"status": FeedStatus(active=True)})
        try:
            await store.put_feed(changed, rev)
        except Conflict:
            continue
        await _announce(call, trigger)
        return SUCCESS
    raise Conflict(f"the feed registration of {trigger} keeps changing")


async def _delete(call: SystemCall, feed: str, trigger: str) -> dict[str, Any]:
    store = call.controller.store
    for _ in range(_WRITE_ATTEMPTS):
        _, rev = await _registration(store, trigger, feed)
        try:
            await store.delete_feed(trigger, rev)
        except (Conflict, NotFound):
            continue
        await _announce(call, trigger)
        return SUCCESS
    raise Conflict(f"the feed registration of {trigger} keeps changing")


async def lifecycle(call: SystemCall, feed: str) -> dict[str, Any]:
    """One lifecycle event of `feed` for the trigger in `call.args`."""
    event = str(call.args.get("lifecycleEvent", "")).upper()
    if event not in EVENTS:
        raise _failed(f"unsupported lifecycleEvent '{call.args.get('lifecycleEvent')}'; expected one of "
                      f"{', '.join(EVENTS)}")
    trigger = _trigger_of(call)
    params = {k: v for k, v in call.args.items() if k not in _LIFECYCLE_ARGS}
    if event == "CREATE":
        return await _create(call, feed, trigger, params)
    await _check_key(call, trigger)
    if event == "DELETE":
        return await _delete(call, feed, trigger)
    if event == "READ":
        registration, _ = await _registration(call.controller.store, trigger, feed)
        return registration.public()
    await _check_trigger(call.controller.store, trigger)
    return await _change(call, feed, trigger, event, params)


def _handler(feed: str) -> SystemHandler:
    async def handle(call: SystemCall) -> dict[str, Any]:
        return await lifecycle(call, feed)

    return handle


HANDLERS = {feed: f"feeds.{feed.replace('/', '.')}" for feed in (ALARM, ONCE, INTERVAL, CHANGES, LOOPBACK_CHANGES)}
for _feed, _name in HANDLERS.items():
    system_action(_name)(_handler(_feed))


def _params(*names: str, required: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    return [{"name": name, "required": name in required} for name in names]


register_package(SystemPackageSpec(
    name="alarms",
    annotations={"description": "Alarms and periodic utility",
                 "parameters": _params("trigger_payload")},
    actions=[
        SystemActionSpec(name="alarm", handler=HANDLERS[ALARM], annotations={
            "feed": True, "description": "Fire trigger when alarm occurs",
            "parameters": _params("cron", "timezone", "startDate", "stopDate", required=("cron",))}),
        SystemActionSpec(name="once", handler=HANDLERS[ONCE], annotations={
            "feed": True, "description": "Fire trigger once when alarm occurs",
            "parameters": _params("date", "deleteAfterFire", required=("date",))}),
        SystemActionSpec(name="interval", handler=HANDLERS[INTERVAL], annotations={
            "feed": True, "description": "Fire trigger at specified interval",
            "parameters": _params("minutes", "startDate", "stopDate", required=("minutes",))}),
    ],
))

register_package(SystemPackageSpec(
    name="couchdb",
    annotations={"description": "CouchDB database changes"},
    actions=[
        SystemActionSpec(name="changes", handler=HANDLERS[CHANGES], annotations={
            "feed": True, "description": "Database change feed: fires the trigger with every changed document",
            "parameters": _params("dbname", "url", "host", "port", "protocol", "username", "password", "since",
                                  required=("dbname",))}),
    ],
))

# joins the catalog's `loopback` package (its Node.js actions come from catalog/loopback)
register_package(SystemPackageSpec(
    name="loopback",
    actions=[
        SystemActionSpec(name="changes", handler=HANDLERS[LOOPBACK_CHANGES], annotations={
            "feed": True, "description": "Fires the trigger on every create, update or delete of a model's records",
            "parameters": _params("modelId", required=("modelId",))}),
    ],
))
