"""The SLA clock in working hours (Mon–Fri 9:00–18:00 Asia/Shanghai): a pure function."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from memberplatform.legal.sla import SHANGHAI, add_working_hours, clock, working_seconds_between


def local(y, m, d, hh=0, mm=0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=SHANGHAI)


# 2026-03-02 is a Monday; 2026-03-06 a Friday
@pytest.mark.parametrize(
    ("start", "hours", "expected"),
    [
        (local(2026, 3, 2, 9), 1, local(2026, 3, 2, 10)),  # inside the day
        (local(2026, 3, 2, 9), 9, local(2026, 3, 2, 18)),  # exactly one working day
        (local(2026, 3, 2, 17), 2, local(2026, 3, 3, 10)),  # spills into the next morning
        (local(2026, 3, 2, 7, 30), 1, local(2026, 3, 2, 10)),  # before opening: starts at 9
        (local(2026, 3, 2, 18), 0.5, local(2026, 3, 3, 9, 30)),  # after closing
        (local(2026, 3, 2, 23), 1, local(2026, 3, 3, 10)),
        (local(2026, 3, 6, 17), 2, local(2026, 3, 9, 10)),  # Friday → Monday
        (local(2026, 3, 7, 12), 1, local(2026, 3, 9, 10)),  # Saturday → Monday
        (local(2026, 3, 8, 20), 8, local(2026, 3, 9, 17)),  # Sunday night
        (local(2026, 3, 2, 9), 45, local(2026, 3, 6, 18)),  # a whole working week
        (local(2026, 3, 2, 10), 0, local(2026, 3, 2, 10)),
    ],
)
def test_add_working_hours(start, hours, expected):
    result = add_working_hours(start, hours)
    assert result.tzinfo is UTC
    assert result == expected.astimezone(UTC)


def test_utc_input_is_read_in_shanghai():
    # 2026-03-02 00:30 UTC is 08:30 Monday in Shanghai → opens at 9:00, +1 h = 10:00 local
    assert add_working_hours(datetime(2026, 3, 2, 0, 30, tzinfo=UTC), 1) == datetime(
        2026, 3, 2, 2, 0, tzinfo=UTC
    )


def test_holidays_are_skipped():
    holidays = {date(2026, 3, 3)}
    assert add_working_hours(local(2026, 3, 2, 17), 2, holidays=holidays) == local(
        2026, 3, 4, 10
    ).astimezone(UTC)


@pytest.mark.parametrize(
    ("start", "end", "seconds"),
    [
        (local(2026, 3, 2, 9), local(2026, 3, 2, 18), 9 * 3600),
        (local(2026, 3, 6, 17), local(2026, 3, 9, 10), 2 * 3600),  # over the weekend
        (local(2026, 3, 7, 8), local(2026, 3, 8, 20), 0),  # all weekend
        (local(2026, 3, 2, 6), local(2026, 3, 2, 8), 0),  # before opening
        (local(2026, 3, 2, 17, 30), local(2026, 3, 3, 9, 15), 45 * 60),
    ],
)
def test_working_seconds_between(start, end, seconds):
    assert working_seconds_between(start, end) == seconds
    assert working_seconds_between(end, start) == -seconds


def test_clock_time_left_and_overdue():
    due = local(2026, 3, 2, 15)
    assert clock(due, local(2026, 3, 2, 13)) == (False, 2 * 3600)
    assert clock(due, local(2026, 3, 3, 10)) == (True, 4 * 3600)  # 3 h Monday + 1 h Tuesday
    # overdue over a weekend counts no working time but is still overdue
    assert clock(local(2026, 3, 6, 18), local(2026, 3, 7, 12)) == (True, 0)


def test_naive_and_negative_input_refused():
    with pytest.raises(ValueError):
        add_working_hours(datetime(2026, 3, 2, 9), 1)
    with pytest.raises(ValueError):
        add_working_hours(local(2026, 3, 2, 9), -1)


@given(
    start=st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2030, 1, 1)),
    minutes=st.integers(min_value=0, max_value=200 * 60),
)
def test_adding_then_measuring_gives_the_hours_back(start, minutes):
    begin = start.replace(tzinfo=SHANGHAI)
    due = add_working_hours(begin, minutes / 60)
    assert working_seconds_between(begin, due) == minutes * 60
    local_due = due.astimezone(SHANGHAI)
    # a deadline always falls inside working hours on a weekday
    assert local_due.weekday() < 5
    assert (
        timedelta(hours=9)
        <= local_due - local_due.replace(hour=0, minute=0, second=0, microsecond=0)
        <= timedelta(hours=18)
    )
