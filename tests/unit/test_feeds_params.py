"""Validation of the built-in feeds' parameters and the alarm schedules they imply: pure, at a fixed `now`."""

from __future__ import annotations

from typing import Any

import pytest

from whisk.feed_config import InvalidFeedParams, next_fire_ms, parse_date, validate

NOW = parse_date("2030-01-01T00:00:00Z", "now")
MINUTE = 60_000


def test_dates_are_epoch_milliseconds_or_iso_text_read_as_utc_without_an_offset() -> None:
    assert parse_date(1_900_000_000_000, "date") == 1_900_000_000_000
    assert parse_date("2030-01-01T01:00:00+01:00", "date") == NOW
    assert parse_date("2030-01-01", "date") == NOW
    for bad in ("tomorrow", True, None, [1]):
        with pytest.raises(InvalidFeedParams, match="is not a valid Date"):
            parse_date(bad, "date")


def test_an_alarm_keeps_its_pattern_zone_dates_and_payload() -> None:
    config = validate("alarms/alarm", {"cron": "*/2 * * * * *", "timezone": "Europe/Berlin",
                                       "startDate": NOW + MINUTE, "stopDate": "2030-02-01T00:00:00Z",
                                       "trigger_payload": {"k": 1}}, NOW)

    assert config == {"cron": "*/2 * * * * *", "timezone": "Europe/Berlin", "startDate": NOW + MINUTE,
                      "stopDate": "2030-02-01T00:00:00Z", "payload": {"k": 1}}


def test_a_text_payload_is_wrapped_as_openwhisk_does_and_none_is_empty() -> None:
    assert validate("alarms/alarm", {"cron": "* * * * *", "trigger_payload": "hi"}, NOW)["payload"] == {
        "payload": "hi"}
    assert validate("alarms/alarm", {"cron": "* * * * *"}, NOW)["payload"] == {}
    with pytest.raises(InvalidFeedParams, match="trigger_payload"):
        validate("alarms/alarm", {"cron": "* * * * *", "trigger_payload": [1]}, NOW)


@pytest.mark.parametrize(
    ("feed", "params", "message"),
    [
        ("alarms/alarm", {}, "missing the cron parameter"),
        ("alarms/alarm", {"cron": "61 * * * *"}, "cron pattern '61 \\* \\* \\* \\*' is not valid: minute 61"),
        ("alarms/alarm", {"cron": "* * * * *", "timezone": "Mars/Base"}, "not a valid time zone"),
        ("alarms/alarm", {"cron": "* * * * *", "startDate": NOW - 1}, "startDate parameter .* must be in the future"),
        ("alarms/alarm", {"cron": "* * * * *", "startDate": NOW + 2 * MINUTE, "stopDate": NOW + MINUTE},
         "stopDate parameter .* must be greater than the startDate"),
        ("alarms/alarm", {"cron": "0 0 1 1 *", "stopDate": NOW + MINUTE}, "not until after the stop date"),
        ("alarms/once", {}, "missing the date parameter"),
        ("alarms/once", {"date": NOW}, "must be in the future"),
        ("alarms/once", {"date": NOW + MINUTE, "deleteAfterFire": "sometimes"}, "one of \\[false, true, rules\\]"),
        ("alarms/interval", {}, "missing the minutes parameter"),
        ("alarms/interval", {"minutes": "2.5"}, "must be an integer"),
        ("alarms/interval", {"minutes": 0}, "greater than zero"),
        ("alarms/interval", {"minutes": "-3"}, "must be an integer"),
        ("couchdb/changes", {"url": "http://h:5984"}, "missing dbname"),
        ("couchdb/changes", {"dbname": "d"}, "missing url or host"),
        ("couchdb/changes", {"dbname": "d", "url": "ftp://h/"}, "not an http\\(s\\) URL"),
        ("couchdb/changes", {"dbname": "d", "host": "h", "username": "u"}, "both username and password"),
        ("couchdb/changes", {"dbname": "d", "host": "h", "protocol": "gopher"}, "must be http or https"),
        ("alarms/clock", {}, "unknown feed"),
    ],
)
def test_unusable_parameters_are_refused_with_openwhisks_messages(feed: str, params: dict[str, Any],
                                                                  message: str) -> None:
    with pytest.raises(InvalidFeedParams, match=message):
        validate(feed, params, NOW)


def test_once_defaults_to_keeping_the_trigger_and_interval_starts_thirty_seconds_after_creation() -> None:
    assert validate("alarms/once", {"date": NOW + MINUTE, "deleteAfterFire": " TRUE "}, NOW) == {
        "date": NOW + MINUTE, "deleteAfterFire": "true", "payload": {}}
    assert validate("alarms/once", {"date": NOW + MINUTE}, NOW)["deleteAfterFire"] == "false"
    assert validate("alarms/interval", {"minutes": "5"}, NOW) == {"minutes": 5, "startDate": NOW + 30_000,
                                                                  "payload": {}}


def test_a_changes_feed_takes_a_url_with_credentials_or_openwhisks_host_parameters() -> None:
    from_url = validate("couchdb/changes", {"url": "http://ann:pw@db.local:5984/", "dbname": "orders"}, NOW)
    from_host = validate("couchdb/changes", {"host": "db.local", "port": 5984, "protocol": "http",
                                             "username": "ann", "password": "pw", "dbname": "orders"}, NOW)

    assert from_url == from_host == {"url": "http://db.local:5984", "dbname": "orders", "username": "ann",
                                     "password": "pw"}
    assert validate("couchdb/changes", {"host": "db.local", "dbname": "o", "since": "0"}, NOW) == {
        "url": "https://db.local", "dbname": "o", "since": "0"}


def test_an_update_changes_only_what_it_names_and_checks_the_result() -> None:
    current = validate("alarms/alarm", {"cron": "* * * * *", "trigger_payload": "a"}, NOW)

    updated = validate("alarms/alarm", {"cron": "0 * * * *"}, NOW, current)

    assert updated == {"cron": "0 * * * *", "payload": {"payload": "a"}}
    assert validate("alarms/alarm", {"trigger_payload": {"b": 2}}, NOW, current)["payload"] == {"b": 2}
    with pytest.raises(InvalidFeedParams, match="no updatable parameters"):
        validate("alarms/alarm", {"dbname": "x"}, NOW, current)
    with pytest.raises(InvalidFeedParams, match="not valid"):
        validate("alarms/alarm", {"cron": "nope"}, NOW, current)
    with pytest.raises(InvalidFeedParams, match="no updatable parameters"):
        validate("couchdb/changes", {"dbname": "other"}, NOW, {"url": "http://h", "dbname": "d"})


def test_alarm_schedules_start_at_the_start_date_and_end_at_the_stop_date() -> None:
    config = validate("alarms/alarm", {"cron": "0 * * * * *", "startDate": NOW + 5 * MINUTE,
                                       "stopDate": NOW + 7 * MINUTE}, NOW)

    assert next_fire_ms("alarms/alarm", config, NOW) == NOW + 5 * MINUTE
    assert next_fire_ms("alarms/alarm", config, NOW + 5 * MINUTE) == NOW + 6 * MINUTE
    assert next_fire_ms("alarms/alarm", config, NOW + 6 * MINUTE) == NOW + 7 * MINUTE
    assert next_fire_ms("alarms/alarm", config, NOW + 7 * MINUTE) is None


def test_interval_fires_every_period_from_its_start_and_once_only_at_its_date() -> None:
    interval = validate("alarms/interval", {"minutes": 10, "startDate": NOW + MINUTE}, NOW)
    once = validate("alarms/once", {"date": NOW + MINUTE}, NOW)

    assert next_fire_ms("alarms/interval", interval, NOW) == NOW + MINUTE
    assert next_fire_ms("alarms/interval", interval, NOW + MINUTE) == NOW + 11 * MINUTE
    assert next_fire_ms("alarms/interval", interval, NOW + 25 * MINUTE) == NOW + 31 * MINUTE
    assert next_fire_ms("alarms/once", once, 0) == NOW + MINUTE
    assert next_fire_ms("alarms/once", once, NOW + MINUTE) is None
