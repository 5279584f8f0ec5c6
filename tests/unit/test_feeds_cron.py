"""The cron parser and next-fire computation of the alarm feed: pure functions, no clock."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from whisk.cron import CronError, CronSchedule


def at(text: str, tz: object = UTC) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=tz)  # type: ignore[arg-type]


def fires(pattern: str, start: str, count: int = 3, tz: object = UTC) -> list[str]:
    schedule = CronSchedule.parse(pattern, tz)  # type: ignore[arg-type]
    moment, out = at(start, tz), []
    for _ in range(count):
        moment = schedule.next_after(moment)
        out.append(moment.replace(tzinfo=None).isoformat())
    return out


def test_five_fields_fire_on_the_minute_strictly_after_the_given_moment() -> None:
    assert fires("* * * * *", "2030-01-01T10:00:00") == [
        "2030-01-01T10:01:00", "2030-01-01T10:02:00", "2030-01-01T10:03:00"]


def test_six_fields_take_seconds_first_and_ignore_fractions_of_the_given_second() -> None:
    assert fires("*/2 * * * * *", "2030-01-01T10:00:00.500000") == [
        "2030-01-01T10:00:02", "2030-01-01T10:00:04", "2030-01-01T10:00:06"]


def test_ranges_steps_and_lists_combine() -> None:
    assert fires("0 8-10/2,17 * * *", "2030-01-01T09:00:00", 4) == [
        "2030-01-01T10:00:00", "2030-01-01T17:00:00", "2030-01-02T08:00:00", "2030-01-02T10:00:00"]
    assert fires("15/20 * * * * *", "2030-01-01T00:00:00", 4) == [
        "2030-01-01T00:00:15", "2030-01-01T00:00:35", "2030-01-01T00:00:55", "2030-01-01T00:01:15"]


def test_names_of_months_and_days_in_any_case_and_seven_is_sunday() -> None:
    # 2030-01-01 is a Tuesday
    assert fires("30 6 * Feb,mar MON", "2030-01-01T00:00:00", 2) == ["2030-02-04T06:30:00", "2030-02-11T06:30:00"]
    assert fires("0 0 * * 7", "2030-01-01T00:00:00", 1) == fires("0 0 * * sun", "2030-01-01T00:00:00", 1)
    assert fires("0 0 * * 0", "2030-01-01T00:00:00", 1) == ["2030-01-06T00:00:00"]


def test_restricted_day_of_month_and_day_of_week_match_either_as_in_vixie_cron() -> None:
    # the 13th, or any Friday (2030-01-04 is a Friday)
    assert fires("0 0 13 * fri", "2030-01-01T00:00:00", 3) == [
        "2030-01-04T00:00:00", "2030-01-11T00:00:00", "2030-01-13T00:00:00"]


def test_the_last_day_of_short_months_and_leap_days_are_found_across_years() -> None:
    assert fires("0 0 31 * *", "2030-04-01T00:00:00", 2) == ["2030-05-31T00:00:00", "2030-07-31T00:00:00"]
    assert fires("0 12 29 2 *", "2030-01-01T00:00:00", 1) == ["2032-02-29T12:00:00"]
    assert fires("59 59 23 31 12 *", "2030-12-31T23:59:59", 1) == ["2031-12-31T23:59:59"]


def test_a_time_zone_puts_the_fire_at_its_local_wall_clock_time() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    schedule = CronSchedule.parse("0 9 * * *", berlin)

    fired = schedule.next_after(at("2030-07-01T00:00:00"))

    assert fired.astimezone(UTC) == at("2030-07-01T07:00:00")


def test_a_wall_clock_time_skipped_by_daylight_saving_still_fires_once_that_day() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    # 2030-03-31: clocks go from 02:00 to 03:00 in Berlin
    schedule = CronSchedule.parse("30 2 * * *", berlin)

    fired = schedule.next_after(at("2030-03-30T12:00:00", berlin))

    assert fired.astimezone(UTC) == at("2030-03-31T01:30:00")
    assert schedule.next_after(fired).astimezone(UTC) == at("2030-04-01T00:30:00")


@pytest.mark.parametrize(
    ("pattern", "problem"),
    [
        ("* * * *", "5 or 6 fields"),
        ("* * * * * * *", "5 or 6 fields"),
        ("60 * * * *", "minute 60 is outside 0-59"),
        ("* 24 * * *", "hour 24"),
        ("* * 0 * *", "day of month 0"),
        ("* * * 13 *", "month 13"),
        ("* * * * 8", "day of week 8"),
        ("*/0 * * * *", "step '0'"),
        ("5-1 * * * *", "runs backwards"),
        ("x * * * *", "minute 'x' is not a number"),
        ("0 0 30 2 *", "never occurs"),
        ("0 0 * foo *", "month 'foo'"),
    ],
)
def test_bad_patterns_are_refused_naming_the_field(pattern: str, problem: str) -> None:
    with pytest.raises(CronError, match=problem):
        CronSchedule.parse(pattern)


def test_next_after_needs_an_aware_moment() -> None:
    with pytest.raises(ValueError, match="aware"):
        CronSchedule.parse("* * * * *").next_after(datetime(2030, 1, 1))
