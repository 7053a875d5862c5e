"""Recurrence rules with fixed clocks: periods, weekdays, windows, earliest start, expiry."""

from __future__ import annotations

from datetime import UTC, datetime, time

import pytest

from nav_crm_ops.exceptions import ConfigError
from nav_crm_ops.jobs.recurrence import (
    Recurrence,
    earliest_allowed,
    first_run_time,
    format_weekdays,
    next_run_time,
    parse_time_of_day,
    parse_utc,
    parse_weekdays,
)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


MONDAY_10 = at("2026-11-23T10:00:00")  # 2026-11-23 is a Monday


def test_every_n_minutes_counts_from_the_start_of_the_run() -> None:
    every = Recurrence(every_minutes=30)
    assert next_run_time(every, MONDAY_10, at("2026-11-23T10:05:00")) == at("2026-11-23T10:30:00")


def test_a_run_longer_than_the_period_does_not_queue_a_backlog() -> None:
    every = Recurrence(every_minutes=30)
    finished = at("2026-11-23T11:47:00")
    assert next_run_time(every, MONDAY_10, finished) == finished


def test_run_once_has_no_next_run() -> None:
    assert next_run_time(Recurrence(every_minutes=None), MONDAY_10, MONDAY_10) is None


def test_time_window_moves_runs_to_the_next_start() -> None:
    office = Recurrence(every_minutes=60, starting_time=time(8), ending_time=time(18))
    assert next_run_time(office, at("2026-11-23T17:30:00"), at("2026-11-23T17:31:00")) == \
        at("2026-11-24T08:00:00")
    assert first_run_time(office, at("2026-11-23T06:15:00")) == at("2026-11-23T08:00:00")
    assert first_run_time(office, at("2026-11-23T12:15:00")) == at("2026-11-23T12:15:00")


def test_weekdays_skip_the_weekend() -> None:
    weekdays = Recurrence(every_minutes=30, weekdays=parse_weekdays("mon-fri"),
                          starting_time=time(8), ending_time=time(18))
    friday_evening = at("2026-11-27T17:50:00")
    assert next_run_time(weekdays, friday_evening, friday_evening) == at("2026-11-30T08:00:00")


def test_window_across_midnight() -> None:
    night = Recurrence(every_minutes=60, starting_time=time(22), ending_time=time(6))
    assert first_run_time(night, at("2026-11-23T23:30:00")) == at("2026-11-23T23:30:00")
    assert first_run_time(night, at("2026-11-24T05:00:00")) == at("2026-11-24T05:00:00")
    assert first_run_time(night, at("2026-11-24T07:00:00")) == at("2026-11-24T22:00:00")


def test_window_in_a_time_zone() -> None:
    berlin = Recurrence(every_minutes=60, starting_time=time(8), ending_time=time(18),
                        timezone="Europe/Berlin")
    # 06:30 UTC is 07:30 in Berlin (CET, UTC+1): first run at 08:00 Berlin = 07:00 UTC.
    assert first_run_time(berlin, at("2026-11-23T06:30:00")) == at("2026-11-23T07:00:00")


def test_earliest_start_and_expiration() -> None:
    bounded = Recurrence(every_minutes=30, earliest_start=at("2026-12-01T00:00:00"),
                         expiration=at("2026-12-01T01:00:00"))
    assert first_run_time(bounded, MONDAY_10) == at("2026-12-01T00:00:00")
    assert next_run_time(bounded, at("2026-12-01T00:00:00"), at("2026-12-01T00:01:00")) == \
        at("2026-12-01T00:30:00")
    assert next_run_time(bounded, at("2026-12-01T00:45:00"), at("2026-12-01T00:46:00")) is None
    assert earliest_allowed(bounded, at("2026-12-02T00:00:00")) is None


def test_no_allowed_day_inside_the_expiration_is_none() -> None:
    sundays = Recurrence(every_minutes=30, weekdays=(6,), expiration=at("2026-11-28T00:00:00"))
    assert first_run_time(sundays, MONDAY_10) is None


def test_parsers_and_validation() -> None:
    assert parse_weekdays("sat-mon") == (0, 5, 6)
    assert parse_weekdays("Monday, wed") == (0, 2)
    assert format_weekdays(parse_weekdays("mon-fri")) == "mon,tue,wed,thu,fri"
    assert parse_weekdays("") == ()
    assert parse_time_of_day("08:30") == time(8, 30)
    assert parse_time_of_day("") is None
    assert parse_utc("2026-12-01T08:00:00") == at("2026-12-01T08:00:00")
    assert parse_utc("2026-12-01T09:00:00+01:00") == at("2026-12-01T08:00:00")
    with pytest.raises(ConfigError, match="mon-fri"):
        parse_weekdays("funday")
    with pytest.raises(ConfigError, match="HH:MM"):
        parse_time_of_day("8 o'clock")
    with pytest.raises(ConfigError, match="IANA"):
        Recurrence(timezone="Mars/Olympus")
    with pytest.raises(ConfigError, match="at least 1"):
        Recurrence(every_minutes=0)
    with pytest.raises(ConfigError, match="no timezone"):
        Recurrence(expiration=datetime(2026, 12, 1))


def test_describe_says_the_schedule() -> None:
    text = Recurrence(every_minutes=15, weekdays=(0, 1), starting_time=time(8),
                      ending_time=time(18)).describe()
    assert text == "every 15 min, mon,tue, 08:00-18:00 UTC"
