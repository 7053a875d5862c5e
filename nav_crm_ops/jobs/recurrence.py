"""When a job may run: every N minutes, on some weekdays, inside a daily time window, between
an earliest start and an expiration.

Why pure functions of explicit times: the scheduler's rules are easy to get subtly wrong
(windows across midnight, weekday gaps, expiry), so every rule here takes ``now`` as an
argument and is unit-tested with fixed clocks; the runner only supplies the real clock.

Weekdays and the time window are read in the recurrence's ``timezone`` (an IANA name, default
UTC); every datetime going in or out is timezone-aware. A window whose starting time is later
than its ending time runs across midnight (22:00-06:00); each calendar day's part of it
belongs to that day's weekday.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..exceptions import ConfigError

__all__ = [
    "WEEKDAY_NAMES",
    "Recurrence",
    "earliest_allowed",
    "first_run_time",
    "format_weekdays",
    "next_run_time",
    "parse_time_of_day",
    "parse_utc",
    "parse_weekdays",
]

WEEKDAY_NAMES: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
"""Weekday names as ``jobs set --weekdays`` takes them; index 0 is Monday (``date.weekday``)."""


def _aware(value: datetime, what: str) -> datetime:
    if value.tzinfo is None:
        raise ConfigError(f"{what} {value.isoformat()} has no timezone; give it in UTC "
                          "(e.g. 2026-12-01T08:00:00Z)")
    return value.astimezone(UTC)


@dataclass(frozen=True)
class Recurrence:
    """A job's schedule. ``every_minutes=None`` runs the job once (then it is Finished);
    ``weekdays=()`` means every day; no starting/ending time means all day."""

    every_minutes: int | None = 30
    weekdays: tuple[int, ...] = ()
    starting_time: time | None = None
    ending_time: time | None = None
    timezone: str = "UTC"
    earliest_start: datetime | None = None
    expiration: datetime | None = None

    def __post_init__(self) -> None:
        if self.every_minutes is not None and self.every_minutes < 1:
            raise ConfigError(f"every_minutes must be at least 1 (or empty to run once), got "
                              f"{self.every_minutes}")
        bad = [d for d in self.weekdays if d not in range(7)]
        if bad:
            raise ConfigError(f"weekdays {bad} are not 0 (Monday) to 6 (Sunday)")
        object.__setattr__(self, "weekdays", tuple(sorted(set(self.weekdays))))
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigError(f"timezone {self.timezone!r} is not an IANA time zone name "
                              "(e.g. UTC, Europe/Berlin)") from None
        if self.earliest_start is not None:
            object.__setattr__(self, "earliest_start",
                               _aware(self.earliest_start, "earliest_start"))
        if self.expiration is not None:
            object.__setattr__(self, "expiration", _aware(self.expiration, "expiration"))
        if self.starting_time is not None and self.starting_time == self.ending_time:
            raise ConfigError(f"starting_time and ending_time are both {self.starting_time}; "
                              "leave both empty to run all day")

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def describe(self) -> str:
        """One line for people: ``every 30 min, mon-fri, 08:00-18:00 UTC``."""
        parts = [f"every {self.every_minutes} min" if self.every_minutes else "once"]
        if self.weekdays:
            parts.append(format_weekdays(self.weekdays))
        if self.starting_time or self.ending_time:
            start = self.starting_time.strftime("%H:%M") if self.starting_time else "00:00"
            end = self.ending_time.strftime("%H:%M") if self.ending_time else "24:00"
            parts.append(f"{start}-{end} {self.timezone}")
        if self.earliest_start:
            parts.append(f"from {self.earliest_start.isoformat()}")
        if self.expiration:
            parts.append(f"until {self.expiration.isoformat()}")
        return ", ".join(parts)


def _within_day(recurrence: Recurrence, local: datetime) -> datetime | None:
    """The first allowed moment on ``local``'s calendar day at or after ``local``, or None."""
    if recurrence.weekdays and local.weekday() not in recurrence.weekdays:
        return None
    start = recurrence.starting_time or time(0)
    end = recurrence.ending_time
    clock = local.time().replace(tzinfo=None)
    at_start = datetime.combine(local.date(), start, tzinfo=local.tzinfo)
    if end is None or start < end:
        if clock < start:
            return at_start
        return local if end is None or clock <= end else None
    return local if clock <= end or clock >= start else at_start


def earliest_allowed(recurrence: Recurrence, moment: datetime) -> datetime | None:
    """The first moment at or after ``moment`` (and the earliest start) on an allowed weekday
    inside the time window, in UTC; None when that is past the expiration."""
    moment = _aware(moment, "moment")
    if recurrence.earliest_start is not None and moment < recurrence.earliest_start:
        moment = recurrence.earliest_start
    local = moment.astimezone(recurrence.zone)
    for _ in range(8):
        candidate = _within_day(recurrence, local)
        if candidate is not None:
            found = candidate.astimezone(UTC)
            if recurrence.expiration is not None and found > recurrence.expiration:
                return None
            return found
        midnight = datetime.combine(local.date() + timedelta(days=1), time(0),
                                    tzinfo=recurrence.zone)
        local = midnight
    return None


def first_run_time(recurrence: Recurrence, now: datetime) -> datetime | None:
    """When a new (or resumed) job first runs."""
    return earliest_allowed(recurrence, now)


def next_run_time(recurrence: Recurrence, started: datetime, not_before: datetime
                  ) -> datetime | None:
    """When a job that started at ``started`` runs next: one period later, never before
    ``not_before`` (a run longer than the period does not queue a backlog), moved into the
    allowed days and window. None for a run-once job or past the expiration."""
    if recurrence.every_minutes is None:
        return None
    candidate = _aware(started, "started") + timedelta(minutes=recurrence.every_minutes)
    return earliest_allowed(recurrence, max(candidate, _aware(not_before, "not_before")))


def parse_weekdays(text: str) -> tuple[int, ...]:
    """``"mon,tue"``, ``"mon-fri"``, ``"sat-sun"`` or ``""`` (every day) to weekday numbers."""
    days: set[int] = set()
    for part in (p.strip().lower() for p in text.split(",") if p.strip()):
        ends = [e.strip()[:3] for e in part.split("-")]
        unknown = [e for e in ends if e not in WEEKDAY_NAMES]
        if unknown or len(ends) > 2:
            raise ConfigError(f"weekdays {text!r}: {part!r} is not a day or range of days; "
                              f"use names from {list(WEEKDAY_NAMES)}, e.g. 'mon-fri' or 'sat,sun'")
        first, last = WEEKDAY_NAMES.index(ends[0]), WEEKDAY_NAMES.index(ends[-1])
        day = first
        days.add(day)
        while day != last:
            day = (day + 1) % 7
            days.add(day)
    return tuple(sorted(days))


def format_weekdays(days: tuple[int, ...]) -> str:
    """The inverse of :func:`parse_weekdays` (comma-separated names)."""
    return ",".join(WEEKDAY_NAMES[d] for d in days)


def parse_time_of_day(text: str) -> time | None:
    """``"08:00"`` / ``"08:00:30"`` to a time; ``""`` to None."""
    if not text.strip():
        return None
    try:
        return time.fromisoformat(text.strip())
    except ValueError:
        raise ConfigError(f"time of day {text!r} is not HH:MM (24-hour), e.g. 08:00") from None


def parse_utc(text: str) -> datetime | None:
    """ISO 8601 text to an aware UTC datetime (no timezone means UTC); ``""`` to None."""
    if not text.strip():
        return None
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(f"{text!r} is not an ISO 8601 date/time, e.g. "
                          "2026-12-01T08:00:00Z") from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
