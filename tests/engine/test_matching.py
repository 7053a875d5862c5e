"""Match-based coupling: unique matches couple, duplicates make both sides ambiguous."""

from __future__ import annotations

from typing import Any

import polars as pl

from nav_crm_ops.engine.mapping import MappingSet, TableMapping
from nav_crm_ops.engine.matching import MATCH_SCHEMA, match_records


def _mapping() -> TableMapping:
    entry: dict[str, Any] = {
        "name": "T", "direction": "bidirectional", "update_conflict": "none",
        "nav": {"entity": "customers", "natural_key": "number"},
        "crm": {"entity": "accounts", "logical_name": "account", "key": "accountid"},
        "fields": [{"nav": "number", "crm": "accountnumber", "match": {"priority": 0}},
                   {"nav": "displayName", "crm": "name", "match": {"priority": 1}},
                   {"nav": "phoneNumber", "crm": "telephone1"}],
    }
    return MappingSet.from_entries([entry]).get("T")


def _frame(rows: list[tuple[str, str | None, str | None]]) -> pl.DataFrame:
    return pl.DataFrame(
        [{"_id": i, "_key": n, "accountnumber": n, "name": name, "telephone1": None}
         for i, n, name in rows],
        schema={"_id": pl.Utf8, "_key": pl.Utf8, "accountnumber": pl.Utf8, "name": pl.Utf8,
                "telephone1": pl.Utf8})


def _by_record(frame: pl.DataFrame) -> dict[tuple[str, str], tuple[str, str | None]]:
    return {(side, record): (status, other) for side, record, status, other in
            frame.select("source_side", "source_id", "status", "other_id").iter_rows()}


def test_unique_matches_couple_and_the_rest_stay_unmatched() -> None:
    nav = _frame([("n1", "10000", "Adatum"), ("n2", "20000", "Fabrikam"), ("n3", None, "Alone")])
    crm = _frame([("c1", "10000", "other name"), ("c2", None, "fabrikam"), ("c3", "30000", "X")])
    result = match_records(_mapping(), nav, crm)
    assert result.schema == pl.Schema(MATCH_SCHEMA)
    assert _by_record(result) == {
        ("nav", "n1"): ("matched", "c1"), ("crm", "c1"): ("matched", "n1"),
        # the second group (name, case-insensitive) decides what the first left open
        ("nav", "n2"): ("matched", "c2"), ("crm", "c2"): ("matched", "n2"),
        ("nav", "n3"): ("unmatched", None), ("crm", "c3"): ("unmatched", None),
    }
    messages = dict(zip(result["source_id"], result["message"], strict=True))
    assert messages["n1"] == "matched on number = accountnumber"
    assert messages["c2"] == "matched on displayName = name"


def test_a_duplicate_on_one_side_makes_both_sides_ambiguous() -> None:
    nav = _frame([("n1", "10000", "Adatum")])
    crm = _frame([("c1", "10000", "Adatum"), ("c2", "10000", "Adatum"), ("c3", None, None)])
    result = match_records(_mapping(), nav, crm)
    assert _by_record(result) == {
        ("nav", "n1"): ("ambiguous", None),
        ("crm", "c1"): ("ambiguous", None),
        ("crm", "c2"): ("ambiguous", None),
        ("crm", "c3"): ("unmatched", None),
    }
    nav_message = result.filter(pl.col("source_id") == "n1")["message"].item()
    assert nav_message.startswith("ambiguous: 2 CRM account records match on accountnumber")
    crm_message = result.filter(pl.col("source_id") == "c1")["message"].item()
    assert crm_message.startswith("ambiguous: matches 1 BC customers record(s) on number (n1)")


def test_no_records_give_an_empty_frame_of_the_match_schema() -> None:
    empty = _frame([])
    result = match_records(_mapping(), empty, empty)
    assert result.height == 0 and result.schema == pl.Schema(MATCH_SCHEMA)
