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


def _row_by_row(nav: pl.DataFrame, crm: pl.DataFrame) -> pl.DataFrame:
    """The result as it was built before, one dict per record (the reference)."""
    from nav_crm_ops.engine.matching import _Matching
    from nav_crm_ops.engine.vocabulary import Side

    mapping = _mapping()
    names = [f.name for f in mapping.enabled_fields()]
    run = _Matching(mapping, nav.select("_id", "_key", *names), crm.select("_id", "_key", *names))
    for _, fields in mapping.match_groups():
        run.try_group(fields)
    for side, rest in ((Side.NAV, run.nav_open), (Side.CRM, run.crm_open)):
        for record_id, key in rest.select("_id", "_key").iter_rows():
            run.decide(side, record_id, key, "unmatched", None,
                       "no record on the other side matches")
    return pl.DataFrame(run.decided, schema=MATCH_SCHEMA)


def test_same_result_as_row_by_row_for_random_records() -> None:
    import random

    rng = random.Random(11)
    numbers, names = ["10000", "20000", "30000", None], ["Adatum", "adatum ", "Fabrikam", None]
    for size in (0, 1, 5, 40, 300):
        for _ in range(6):
            nav = _frame([(f"n{i}", rng.choice(numbers), rng.choice(names))
                          for i in range(rng.randint(0, size))])
            crm = _frame([(f"c{i}", rng.choice(numbers), rng.choice(names))
                          for i in range(rng.randint(0, size))])
            assert match_records(_mapping(), nav, crm).equals(_row_by_row(nav, crm))
