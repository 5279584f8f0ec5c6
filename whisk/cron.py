"""Cron expressions and their next fire time, for the alarm feed.

A pattern has 5 fields, `minute hour day-of-month month day-of-week`, or 6 with `second` first (as the npm `cron`
package that OpenWhisk's alarms provider uses). Each field is `*`, a value, a range `a-b`, a step `*/n` or `a-b/n`
or `a/n` (from `a` to the field's end), or a comma-separated list of those. Months and days of the week may be
names (`jan`, `mon`, any case); a day of the week is 0-7 with both 0 and 7 for Sunday. As in Vixie cron, when both
day fields are restricted a day matches if either matches; when one is `*` only the other counts.

`next_after(t)` is the first matching wall-clock second strictly after `t`, in the schedule's time zone (UTC by
default). It walks down from the month to the second, skipping whole months, days, hours and minutes that cannot
match, so one call takes at most a few hundred steps. Example: `*/2 * * * * *` after 10:00:00.5 is 10:00:02.

Caveats: a wall-clock time that a daylight-saving change skips fires at the equivalent instant after the change;
one that occurs twice fires on its first occurrence. A pattern that can never match (`0 0 30 2 *`) is refused when
parsed: `next_after` would otherwise search forever.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo

_MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
_DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
#: the longest a valid pattern can take to match again: Feb 29 on a given weekday recurs within 28 years
_HORIZON_YEARS = 30


class CronError(ValueError):
    """A cron pattern that cannot be parsed or can never match; the message says which field and why."""


@dataclass(frozen=True)
class _Field:
    name: str
    low: int
    high: int
    names: list[str] | None = None


_SECOND = _Field("second", 0, 59)
_MINUTE = _Field("minute", 0, 59)
_HOUR = _Field("hour", 0, 23)
_DOM = _Field("day of month", 1, 31)
_MONTH = _Field("month", 1, 12, _MONTHS)
_DOW = _Field("day of week", 0, 7, _DAYS)


def _value(text: str, field: _Field) -> int:
    lowered = text.lower()
    if field.names is not None and lowered in field.names:
        return field.names.index(lowered) + (1 if field is _MONTH else 0)
    if not text.isdigit():
        raise CronError(f"{field.name} '{text}' is not a number")
    value = int(text)
    if not field.low <= value <= field.high:
        raise CronError(f"{field.name} {value} is outside {field.low}-{field.high}")
    return value


def _parse_field(text: str, field: _Field) -> frozenset[int]:
    values: set[int] = set()
    for part in text.split(","):
        base, _, step_text = part.partition("/")
        if step_text:
            if not step_text.isdigit() or int(step_text) == 0:
                raise CronError(f"{field.name} step '{step_text}' must be a positive number")
            step = int(step_text)
        else:
            step = 1
        if base == "*":
            low, high = field.low, field.high
        elif "-" in base:
            first, _, last = base.partition("-")
            low, high = _value(first, field), _value(last, field)
            if low > high:
                raise CronError(f"{field.name} range '{base}' runs backwards")
        else:
            low = _value(base, field)
            high = field.high if step_text else low
        values.update(range(low, high + 1, step))
    if field is _DOW and 7 in values:
        values.discard(7)
        values.add(0)
    return frozenset(values)


@dataclass(frozen=True)
class CronSchedule:
    seconds: frozenset[int]
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday
    any_day: bool  # day of month is `*`
    any_weekday: bool  # day of week is `*`
    tz: tzinfo = UTC
    has_seconds: bool = False

    @classmethod
    def parse(cls, pattern: str, tz: tzinfo = UTC) -> CronSchedule:
        fields = pattern.split()
        if len(fields) not in (5, 6):
            raise CronError(f"a cron pattern has 5 or 6 fields, not {len(fields)}")
        has_seconds = len(fields) == 6
        if not has_seconds:
            fields = ["0", *fields]
        second, minute, hour, dom, month, dow = fields
        schedule = cls(
            seconds=_parse_field(second, _SECOND),
            minutes=_parse_field(minute, _MINUTE),
            hours=_parse_field(hour, _HOUR),
            days=_parse_field(dom, _DOM),
            months=_parse_field(month, _MONTH),
            weekdays=_parse_field(dow, _DOW),
            any_day=dom == "*",
            any_weekday=dow == "*",
            tz=tz,
            has_seconds=has_seconds,
        )
        if not any(day <= _days_in(m, 2000) for m in schedule.months for day in schedule.days) and (
            schedule.any_weekday
        ):
            raise CronError(f"day of month '{dom}' never occurs in month '{month}'")
        return schedule

    def _day_matches(self, day: datetime) -> bool:
        in_month = day.day in self.days
        weekday = (day.weekday() + 1) % 7
        in_week = weekday in self.weekdays
        if self.any_day and self.any_weekday:
            return True
        if self.any_day:
            return in_week
        if self.any_weekday:
            return in_month
        return in_month or in_week

    def next_after(self, moment: datetime) -> datetime:
        """The first matching second strictly after `moment` (an aware datetime), as an aware datetime in the
        schedule's zone."""
        if moment.tzinfo is None:
            raise ValueError("next_after needs an aware datetime")
        local = moment.astimezone(self.tz).replace(microsecond=0, tzinfo=None) + timedelta(seconds=1)
        limit = local.replace(year=local.year + _HORIZON_YEARS, month=1, day=1)
        while local < limit:
            if local.month not in self.months:
                local = _next_month(local)
                continue
            if not self._day_matches(local):
                local = local.replace(hour=0, minute=0, second=0) + timedelta(days=1)
                continue
            if local.hour not in self.hours:
                local = local.replace(minute=0, second=0) + timedelta(hours=1)
                continue
            if local.minute not in self.minutes:
                local = local.replace(second=0) + timedelta(minutes=1)
                continue
            if local.second not in self.seconds:
                local += timedelta(seconds=1)
                continue
            found = local.replace(tzinfo=self.tz)
            if found > moment:
                return found
            local += timedelta(seconds=1)  # a repeated wall-clock hour maps back before `moment`
        raise CronError("the pattern never matches")


def _days_in(month: int, year: int) -> int:
    following = datetime(year + month // 12, month % 12 + 1, 1)
    return (following - timedelta(days=1)).day


def _next_month(local: datetime) -> datetime:
    if local.month == 12:
        return local.replace(year=local.year + 1, month=1, day=1, hour=0, minute=0, second=0)
    return local.replace(month=local.month + 1, day=1, hour=0, minute=0, second=0)
