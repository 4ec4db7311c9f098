"""The SLA clock in working hours: Monday–Friday 9:00–18:00, Asia/Shanghai.

Pure functions (no database, no app): the deadline of a request is its start
plus the item's SLA in *working* hours; the clock shows the working time left
until that deadline, or how long it is overdue. Public holidays can be passed
in as a set of local dates.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")
DAY_START = time(9, 0)
DAY_END = time(18, 0)
WORKING_DAY = timedelta(hours=9)
_MAX_DAYS = 3660  # ten years: a guard against endless loops on absurd input


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("naive datetime given to the SLA clock")
    return value


def _window(day: date, tz: ZoneInfo, holidays: Collection[date]) -> tuple[datetime, datetime]:
    """The working window of a local ``day`` (empty on weekends and holidays)."""
    opens = datetime.combine(day, DAY_START, tzinfo=tz)
    if day.weekday() >= 5 or day in holidays:
        return opens, opens
    return opens, datetime.combine(day, DAY_END, tzinfo=tz)


def add_working_hours(
    start: datetime,
    hours: float,
    *,
    tz: ZoneInfo = SHANGHAI,
    holidays: Collection[date] = (),
) -> datetime:
    """The moment (UTC) when ``hours`` working hours have passed since ``start``."""
    if hours < 0:
        raise ValueError("hours must not be negative")
    remaining = timedelta(hours=hours)
    local = _aware(start).astimezone(tz)
    day = local.date()
    for _ in range(_MAX_DAYS):
        opens, closes = _window(day, tz, holidays)
        begin = max(opens, local)
        if begin < closes:
            available = closes - begin
            if remaining <= available:
                return (begin + remaining).astimezone(UTC)
            remaining -= available
        day += timedelta(days=1)
    raise ValueError("the deadline is too far away")


def working_seconds_between(
    start: datetime,
    end: datetime,
    *,
    tz: ZoneInfo = SHANGHAI,
    holidays: Collection[date] = (),
) -> int:
    """Working seconds from ``start`` to ``end`` (negative when ``end`` is earlier)."""
    if _aware(end) < _aware(start):
        return -working_seconds_between(end, start, tz=tz, holidays=holidays)
    a, b = start.astimezone(tz), end.astimezone(tz)
    total = timedelta()
    day = a.date()
    last = b.date()
    if (last - day).days > _MAX_DAYS:
        raise ValueError("the period is too long")
    while day <= last:
        opens, closes = _window(day, tz, holidays)
        begin, finish = max(opens, a), min(closes, b)
        if begin < finish:
            total += finish - begin
        day += timedelta(days=1)
    return int(total.total_seconds())


def clock(due_at: datetime, now: datetime, **options) -> tuple[bool, int]:
    """(overdue, working seconds): the time left, or how long past ``due_at``."""
    if now <= due_at:
        return False, working_seconds_between(now, due_at, **options)
    return True, working_seconds_between(due_at, now, **options)
