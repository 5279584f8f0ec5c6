"""Parameters of the built-in feeds: validated once, by the feed actions, into a registration's `config`; and the
schedules they imply, computed by the feed service.

The checks and their messages follow OpenWhisk's alarms and cloudant feed actions. Dates are epoch milliseconds
or ISO 8601 text (`2030-01-01T08:00:00Z`); text without an offset is read as UTC.

Configs (what READ shows, less secrets):
- `alarms/alarm`: `cron`, `timezone`?, `startDate`?, `stopDate`?, `payload`
- `alarms/once`: `date`, `deleteAfterFire` (`false`, `true` or `rules`), `payload`
- `alarms/interval`: `minutes`, `startDate` (30 s after creation unless given), `stopDate`?, `payload`
- `couchdb/changes`: `url` (no credentials), `dbname`, `username`?, `password`? (never shown), `since`?
- `loopback/changes`: `modelId` (a model of the trigger's namespace; the registry's location is the platform's
  setting, never part of a registration)
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from yarl import URL

from whisk.cron import CronError, CronSchedule
from whisk.entities.feed import ALARM, CHANGES, INTERVAL, LOOPBACK_CHANGES, ONCE

DELETE_AFTER_FIRE = ("false", "true", "rules")
#: how long after creation an interval feed without `startDate` first fires (OpenWhisk: 30 s)
INTERVAL_DEFAULT_START_MS = 30_000


class InvalidFeedParams(ValueError):
    """Parameters a feed cannot work with; the message is for the user."""


def parse_date(value: Any, name: str) -> int:
    """`value` as epoch milliseconds."""
    if isinstance(value, bool):
        raise InvalidFeedParams(f"{name} parameter '{value}' is not a valid Date")
    if isinstance(value, int | float):
        return int(value)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            pass
        else:
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=UTC)
            return int(parsed.timestamp() * 1000)
    raise InvalidFeedParams(f"{name} parameter '{value}' is not a valid Date")


def _future_date(params: dict[str, Any], name: str, now_ms: int, after: tuple[str, Any] | None = None) -> Any:
    value = params[name]
    when = parse_date(value, name)
    if when <= now_ms:
        raise InvalidFeedParams(f"{name} parameter '{value}' must be in the future")
    if after is not None and after[1] is not None and when <= parse_date(after[1], after[0]):
        raise InvalidFeedParams(f"{name} parameter '{value}' must be greater than the {after[0]} parameter "
                                f"'{after[1]}'")
    return value


def payload(value: Any) -> dict[str, Any]:
    """`trigger_payload` as the trigger's payload: text becomes `{"payload": text}`."""
    if value is None or value == "":
        return {}
    if isinstance(value, str):
        return {"payload": value}
    if isinstance(value, dict):
        return value
    raise InvalidFeedParams("trigger_payload must be a string or a JSON object")


def cron_schedule(config: dict[str, Any]) -> CronSchedule:
    zone = config.get("timezone")
    try:
        tz = ZoneInfo(zone) if zone else UTC
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidFeedParams(f"timezone parameter '{zone}' is not a valid time zone") from None
    try:
        return CronSchedule.parse(str(config["cron"]), tz)
    except CronError as exc:
        raise InvalidFeedParams(f"cron pattern '{config['cron']}' is not valid: {exc}") from None


def _positive_minutes(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).strip().isdigit():
        raise InvalidFeedParams("the minutes parameter must be an integer")
    minutes = int(value)
    if minutes <= 0:
        raise InvalidFeedParams("the minutes parameter must be an integer greater than zero")
    return minutes


def _alarm(params: dict[str, Any], now_ms: int, current: dict[str, Any]) -> dict[str, Any]:
    config = dict(current)
    if "cron" in params:
        config["cron"] = params["cron"]
    if "timezone" in params:
        config["timezone"] = params["timezone"] or None
    if not config.get("cron"):
        raise InvalidFeedParams("alarms trigger feed is missing the cron parameter")
    schedule = cron_schedule(config)
    _dates(params, now_ms, config)
    if config.get("stopDate") is not None:
        start = max(now_ms, parse_date(config["startDate"], "startDate") if config.get("startDate") else now_ms)
        first = schedule.next_after(datetime.fromtimestamp(start / 1000, UTC))
        if first.timestamp() * 1000 > parse_date(config["stopDate"], "stopDate"):
            raise InvalidFeedParams("the first scheduled trigger fire is not until after the stop date")
    return config


def _dates(params: dict[str, Any], now_ms: int, config: dict[str, Any]) -> None:
    if params.get("startDate") is not None:
        config["startDate"] = _future_date(params, "startDate", now_ms)
    if params.get("stopDate") is not None:
        config["stopDate"] = _future_date(params, "stopDate", now_ms, ("startDate", config.get("startDate")))
    elif params.get("startDate") is not None and config.get("stopDate") is not None:
        if parse_date(config["startDate"], "startDate") >= parse_date(config["stopDate"], "stopDate"):
            raise InvalidFeedParams(f"startDate parameter '{config['startDate']}' must be less than the stopDate "
                                    f"parameter '{config['stopDate']}'")


def _once(params: dict[str, Any], now_ms: int, current: dict[str, Any]) -> dict[str, Any]:
    config = dict(current)
    if params.get("date") is not None:
        config["date"] = _future_date(params, "date", now_ms)
    if not config.get("date"):
        raise InvalidFeedParams("alarms once trigger feed is missing the date parameter")
    if params.get("deleteAfterFire") is not None:
        choice = str(params["deleteAfterFire"]).strip().lower()
        if choice not in DELETE_AFTER_FIRE:
            raise InvalidFeedParams("deleteAfterFire parameter must be one of [false, true, rules].")
        config["deleteAfterFire"] = choice
    config.setdefault("deleteAfterFire", "false")
    return config


def _interval(params: dict[str, Any], now_ms: int, current: dict[str, Any]) -> dict[str, Any]:
    config = dict(current)
    if params.get("minutes") is not None:
        config["minutes"] = _positive_minutes(params["minutes"])
    if not config.get("minutes"):
        raise InvalidFeedParams("interval trigger feed is missing the minutes parameter")
    _dates(params, now_ms, config)
    config.setdefault("startDate", now_ms + INTERVAL_DEFAULT_START_MS)
    return config


def _changes(params: dict[str, Any], now_ms: int, current: dict[str, Any]) -> dict[str, Any]:
    if current:
        raise InvalidFeedParams("the changes feed has no updatable parameters; delete and create the trigger again")
    if not params.get("dbname"):
        raise InvalidFeedParams("couchdb trigger feed: missing dbname parameter")
    if params.get("url"):
        url = URL(str(params["url"]))
        if url.scheme not in ("http", "https") or not url.host:
            raise InvalidFeedParams(f"couchdb trigger feed: url '{url.with_password(None)}' is not an http(s) URL")
        username, password = url.user, url.password
        base = url.with_user(None).with_password(None).with_query(None).with_fragment(None)
    elif params.get("host"):
        protocol = str(params.get("protocol") or "https")
        if protocol not in ("http", "https"):
            raise InvalidFeedParams(f"couchdb trigger feed: protocol '{protocol}' must be http or https")
        port = params.get("port")
        try:
            base = URL.build(scheme=protocol, host=str(params["host"]), port=int(port) if port else None)
        except ValueError as exc:
            raise InvalidFeedParams(f"couchdb trigger feed: host or port is not valid: {exc}") from None
        username, password = params.get("username"), params.get("password")
    else:
        raise InvalidFeedParams("couchdb trigger feed: missing url or host parameter")
    username = params.get("username") or username
    password = params.get("password") or password
    if bool(username) != bool(password):
        raise InvalidFeedParams("couchdb trigger feed: Must specify both username and password, or neither")
    config: dict[str, Any] = {"url": str(base).rstrip("/"), "dbname": str(params["dbname"])}
    if username:
        config.update(username=str(username), password=str(password))
    if params.get("since") is not None:
        config["since"] = params["since"]
    return config


def _loopback_changes(params: dict[str, Any], now_ms: int, current: dict[str, Any]) -> dict[str, Any]:
    if current:
        raise InvalidFeedParams("the changes feed has no updatable parameters; delete and create the trigger again")
    model_id = params.get("modelId")
    if not isinstance(model_id, str) or not model_id.strip() or "/" in model_id:
        raise InvalidFeedParams("loopback changes feed: missing or invalid modelId parameter")
    return {"modelId": model_id.strip()}


_VALIDATORS = {ALARM: _alarm, ONCE: _once, INTERVAL: _interval, CHANGES: _changes,
               LOOPBACK_CHANGES: _loopback_changes}


def validate(feed: str, params: dict[str, Any], now_ms: int, current: dict[str, Any] | None = None) -> dict[str, Any]:
    """The config of a CREATE (`current` None) or an UPDATE of `current`; `InvalidFeedParams` when unusable."""
    if feed not in _VALIDATORS:
        raise InvalidFeedParams(f"unknown feed '{feed}'")
    if current is not None and feed not in _SOURCES and not (set(params) & _UPDATABLE[feed]):
        raise InvalidFeedParams("no updatable parameters were specified")
    config = _VALIDATORS[feed](params, now_ms, current or {})
    if feed not in _SOURCES and ("trigger_payload" in params or current is None):
        config["payload"] = payload(params.get("trigger_payload"))
    return config


#: feeds that follow a database rather than a clock
_SOURCES = (CHANGES, LOOPBACK_CHANGES)
_UPDATABLE = {
    ALARM: {"cron", "timezone", "startDate", "stopDate", "trigger_payload"},
    ONCE: {"date", "deleteAfterFire", "trigger_payload"},
    INTERVAL: {"minutes", "startDate", "stopDate", "trigger_payload"},
}


def next_fire_ms(feed: str, config: dict[str, Any], after_ms: int) -> int | None:
    """When an alarm feed fires next, strictly after `after_ms`; None when it never fires again (past its stop
    date, or a `once` whose date is not after `after_ms`)."""
    stop = parse_date(config["stopDate"], "stopDate") if config.get("stopDate") is not None else None
    start = parse_date(config["startDate"], "startDate") if config.get("startDate") is not None else None
    if feed == ONCE:
        when = parse_date(config["date"], "date")
        return when if when > after_ms else None
    if feed == INTERVAL:
        assert start is not None
        period = int(config["minutes"]) * 60_000
        when = start if after_ms < start else start + ((after_ms - start) // period + 1) * period
    elif feed == ALARM:
        begin = after_ms if start is None else max(after_ms, start - 1)
        moment = cron_schedule(config).next_after(datetime.fromtimestamp(begin / 1000, UTC))
        when = int(moment.timestamp() * 1000)
    else:
        raise ValueError(f"feed '{feed}' is not an alarm")
    return when if stop is None or when <= stop else None
