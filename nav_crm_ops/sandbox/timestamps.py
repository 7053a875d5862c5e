"""The sandbox's one stored datetime format (``YYYY-MM-DDTHH:MM:SS.mmmZ``, UTC; text order is
time order) and its dates (``YYYY-MM-DD``): how values and the server clock are written."""

from __future__ import annotations

import functools
from datetime import UTC, date, datetime, timedelta
from typing import Any

__all__ = ["clock_text", "format_timestamp", "milliseconds", "normalize_date",
           "normalize_datetime"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def format_timestamp(moment: datetime) -> str:
    """UTC ISO-8601 with milliseconds and ``Z``: the one stored datetime format."""
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def normalize_datetime(value: Any) -> str | None:
    """Any accepted datetime (object or ISO text, any offset) as stored text; None stays None."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return format_timestamp(value)
    if isinstance(value, date):
        return format_timestamp(datetime(value.year, value.month, value.day, tzinfo=UTC))
    text = str(value)
    if len(text) == 24 and text[19] == "." and text[23] == "Z" and text[10] == "T":
        return text
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError as exc:
        raise ValueError(f"'{text}' is not an ISO-8601 datetime") from exc
    return format_timestamp(parsed)


def milliseconds(moment: datetime) -> int:
    """Milliseconds since 1970 (UTC) of an instant (naive: UTC), rounded down."""
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
    return (moment - _EPOCH) // timedelta(milliseconds=1)


def clock_text(milliseconds: int) -> str:
    """The stored text of the server clock's instant: as :func:`format_timestamp`, the
    seconds formatted once (the clock hands out a stamp per written row)."""
    second, rest = divmod(milliseconds, 1000)
    return f"{_second_text(second)}{rest:03d}Z"


@functools.lru_cache(maxsize=8)
def _second_text(second: int) -> str:
    return datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S.")


def normalize_date(value: Any) -> str | None:
    """Any accepted date (object or ISO text, a datetime's date) as stored text (``YYYY-MM-DD``);
    None and "" stay None."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    text = str(value)
    try:
        return date.fromisoformat(text[:10]).isoformat()
    except ValueError as exc:
        raise ValueError(f"'{text}' is not an ISO-8601 date") from exc
