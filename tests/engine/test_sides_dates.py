"""Incremental reads of a modified field that holds a date (NAV 2018's
``Last_Date_Modified``, issue #17): read from the day before the watermark's date (the field
holds the server's local date), never with a time of day a NAV page cannot compare, and stored
moments are UTC whatever the machine's time zone."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl
import pytest

from nav_crm_ops.engine.mapping import MappingSet, TableMapping
from nav_crm_ops.engine.sides import SideReader
from nav_crm_ops.engine.sync.snapshot import parse_moment


class _Recording:
    """A connector that answers every read with no rows and keeps the ``$filter`` sent."""

    def __init__(self) -> None:
        self.filters: list[str] = []

    def read(self, entity: str, **options: Any) -> pl.DataFrame:
        flt = options.get("filter")
        self.filters.append("" if flt is None else flt.render())
        return pl.DataFrame()


def _mapping(profile: str) -> TableMapping:
    entry = {
        "name": "T", "direction": "bidirectional",
        "nav": {"entity": "customers", "natural_key": "number", "filter": "Blocked eq ' '"},
        "crm": {"entity": "accounts", "logical_name": "account", "key": "accountid"},
        "fields": [{"nav": "number", "crm": "accountnumber", "direction": "to_crm"}],
        "profiles": {"nav2018": {"nav": {"key": "No", "natural_key": "No",
                                         "modified": "Last_Date_Modified",
                                         "modified_is_date": True},
                                 "fields": [{"name": "accountnumber", "nav": "No"}]}},
    }
    return MappingSet.from_entries([entry], profile=profile).get("T")


WATERMARK = datetime(2024, 5, 1, 0, 0, 10, tzinfo=UTC)


def test_a_date_field_is_read_from_the_watermarks_date() -> None:
    client = _Recording()
    reader = SideReader(_mapping("nav2018"), "nav", client)  # type: ignore[arg-type]
    reader.changed(WATERMARK, timedelta(seconds=30))
    reader.probe(WATERMARK)
    # from the day before: NAV stores the server's local date, a day behind UTC in the west
    assert client.filters == ["(Blocked eq ' ') and Last_Date_Modified ge 2024-04-30"] * 2


def test_a_moment_field_keeps_the_overlap_and_its_time_of_day() -> None:
    client = _Recording()
    reader = SideReader(_mapping("bc-online"), "nav", client)  # type: ignore[arg-type]
    reader.changed(WATERMARK, timedelta(seconds=30))
    reader.probe(WATERMARK)
    assert client.filters == [
        "(Blocked eq ' ') and lastModifiedDateTime ge 2024-04-30T23:59:40.000Z",
        "(Blocked eq ' ') and lastModifiedDateTime gt 2024-05-01T00:00:10.000Z"]


def test_stored_moments_without_an_offset_are_utc_in_any_time_zone(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    try:
        assert parse_moment("2024-05-01") == datetime(2024, 5, 1, tzinfo=UTC)
        assert parse_moment("2024-05-01T08:00:00Z") == datetime(2024, 5, 1, 8, tzinfo=UTC)
    finally:
        monkeypatch.undo()
        time.tzset()
