"""Planner decisions without a service: create, merge, conflict, skip and fail.

The phases of ``Planner.plan`` work on field frames (``_id``, ``_key``, ``_version`` and one
column per field); these tests hand them frames directly.
"""

from __future__ import annotations

from typing import Any

import polars as pl
import pytest

from nav_crm_ops.engine.diff import three_way_diff
from nav_crm_ops.engine.ids import crm_id_for
from nav_crm_ops.engine.mapping import MappingSet, TableMapping
from nav_crm_ops.engine.plan import plan_rows_from_diff
from nav_crm_ops.engine.resolve import Resolver
from nav_crm_ops.engine.sync.checks import check_writes, created_once, failed_with, with_notes
from nav_crm_ops.engine.sync.classify import (
    Uncoupled,
    deletion,
    insert_frames,
    record_rows,
    uncoupled_decisions,
)
from nav_crm_ops.engine.sync.snapshot import (
    NOTES,
    QUIET_LAG,
    format_moment,
    parse_moment,
    watermark,
)
from nav_crm_ops.engine.vocabulary import PlanAction, Side


def _mapping(**overrides: Any) -> TableMapping:
    entry: dict[str, Any] = {
        "name": "T", "direction": "bidirectional", "update_conflict": "none",
        "nav": {"entity": "customers", "natural_key": "number"},
        "crm": {"entity": "accounts", "logical_name": "account", "key": "accountid"},
        "fields": [{"nav": "number", "crm": "accountnumber", "match": {"priority": 0}},
                   {"nav": "displayName", "crm": "name"},
                   {"nav": "phoneNumber", "crm": "telephone1"}],
    }
    entry.update(overrides)
    return MappingSet.from_entries([entry]).get("T")


def _frame(rows: list[tuple[str, str, str | None, str | None]]) -> pl.DataFrame:
    return pl.DataFrame(
        [{"_id": i, "_key": n, "_version": f"v-{i}", "accountnumber": n, "name": name,
          "telephone1": phone} for i, n, name, phone in rows],
        schema={"_id": pl.Utf8, "_key": pl.Utf8, "_version": pl.Utf8, "accountnumber": pl.Utf8,
                "name": pl.Utf8, "telephone1": pl.Utf8})


def test_unmatched_records_become_creates_with_their_values() -> None:
    mapping = _mapping()
    nav = _frame([("n1", "C1", "Adatum", None)])
    records, changes = insert_frames(mapping, nav, Side.CRM)
    row = records.row(0, named=True)
    assert row["action"] == PlanAction.INSERT_CRM and row["nav_id"] == "n1"
    assert row["crm_id"] == crm_id_for("T", "n1", "")
    assert row["nav_version"] == "v-n1" and row["message"] == "no match: create"
    assert dict(changes.select("field", "new_value").rows()) == {
        "accountnumber": "C1", "name": "Adatum"}
    assert set(changes["target"]) == {"crm"} and set(changes["changed_side"]) == {"nav"}
    crm_records, _ = insert_frames(mapping, _frame([("c1", "C9", "Fabrikam", "1")]), "nav")
    assert crm_records.row(0, named=True)["action"] == PlanAction.INSERT_NAV
    assert crm_records["nav_id"].to_list() == [None]


def _acting(mapping: TableMapping, nav: pl.DataFrame, crm: pl.DataFrame,
            create: bool) -> Uncoupled:
    return Uncoupled(nav, crm, nav, crm, create)


def test_matching_decides_match_fail_skip_and_create() -> None:
    mapping = _mapping()
    nav = _frame([("n1", "C1", "Adatum", None), ("n2", "C2", "Contoso", None),
                  ("n3", "C3", "Litware", None)])
    crm = _frame([("c1", "C1", "Adatum", None), ("c2a", "C2", "Contoso", None),
                  ("c2b", "C2", "Contoso again", None)])
    pairs, rows, unmatched = uncoupled_decisions(mapping, _acting(mapping, nav, crm, True))
    assert pairs.select("_id", "__crm_id").rows() == [("n1", "c1")]
    failed = {r["record_id"] for r in rows if r["action"] == PlanAction.FAIL}
    assert failed == {"n2", "c2a", "c2b"}  # ambiguous: neither coupled nor created
    assert unmatched == {"nav": ["n3"], "crm": []}
    _, rows, unmatched = uncoupled_decisions(mapping, _acting(mapping, nav, crm, False))
    skipped = [r for r in rows if r["action"] == PlanAction.SKIP]
    assert [r["record_id"] for r in skipped] == ["n3"]
    assert skipped[0]["skip_reason"] == "only_coupled" and unmatched == {"nav": [], "crm": []}


@pytest.mark.parametrize(("policy", "action"), [("none", PlanAction.DELETION_CONFLICT),
                                                ("remove_coupling", PlanAction.DELETION_CONFLICT),
                                                ("restore", PlanAction.INSERT_NAV)])
def test_deletion_policies(policy: str, action: PlanAction) -> None:
    mapping = _mapping(deletion_conflict=policy)
    nav = _frame([]).clear()
    crm = _frame([("c1", "C1", "Adatum", None)])
    rows, restores = deletion(mapping, "n1", "c1", "nav", nav, crm)
    if action is PlanAction.DELETION_CONFLICT:
        assert restores == [] and rows[0]["action"] == action
        assert "BC record no longer exists" in rows[0]["message"]
        assert ("coupling will be removed" in rows[0]["message"]) == (policy == "remove_coupling")
    else:
        assert rows == [] and restores[0][0]["action"].to_list() == [action]
        assert "restore it (the old coupling is replaced)" in restores[0][0]["message"].item()


def _diff(mapping: TableMapping, nav: pl.DataFrame, crm: pl.DataFrame,
          base: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    names = [f.name for f in mapping.diff_fields()]
    side = {"_id": "pair_id"}
    result = three_way_diff(nav.rename(side).select("pair_id", *names),
                            crm.rename(side).select("pair_id", *names), base,
                            mapping.diff_fields(), conflict_policy=mapping.update_conflict,
                            mapping_direction=mapping.direction)
    return plan_rows_from_diff(mapping.name, result, pl.DataFrame({"pair_id": ["p"]}))


def test_merge_and_conflict_of_a_coupled_pair() -> None:
    base = pl.DataFrame({"pair_id": ["p"], "accountnumber": ["C1"], "name": ["Adatum"],
                         "telephone1": ["1"]})
    nav = _frame([("p", "C1", "Adatum Corp", "1")])
    crm = _frame([("p", "C1", "Adatum", "2")])
    records, changes = _diff(_mapping(), nav, crm, base)
    assert records.row(0, named=True)["action"] == PlanAction.UPDATE_BOTH
    assert records.row(0, named=True)["direction"] == "both"
    assert dict(changes.filter(pl.col("target") != "none").select("field", "target")
                .rows()) == {"name": "crm", "telephone1": "nav"}
    crm = _frame([("p", "C1", "Adatum Ltd", "1")])
    records, changes = _diff(_mapping(), nav, crm, base)
    assert records.row(0, named=True)["action"] == PlanAction.CONFLICT
    assert changes.filter(pl.col("conflict"))["resolution"].cast(pl.Utf8).to_list() == ["held"]
    records, _ = _diff(_mapping(update_conflict="nav_wins"), nav, crm, base)
    assert records.row(0, named=True)["action"] == PlanAction.UPDATE_CRM


def _records(*actions: str) -> pl.DataFrame:
    return record_rows([{"mapping": "T", "record_id": f"r{i}", "action": a, "message": None}
                        for i, a in enumerate(actions)])


def test_failed_with_fails_only_the_writes_it_applies_to() -> None:
    records = _records("insert_crm", "unchanged", "update_nav")
    failed = failed_with(records, {"r0": "no option", "r1": "ignored"},
                         pl.col("action").is_in(["insert_crm", "update_nav"]))
    assert failed["action"].to_list() == ["fail", "unchanged", "update_nav"]
    assert failed["message"].to_list() == ["no option", None, None]
    assert failed["direction"].to_list() == ["none", None, None]


class _NoCouplings(Resolver):
    """A resolver that knows no coupled record (every lookup fails)."""

    def __init__(self) -> None:
        pass

    def lookup_nav_to_crm(self, fld: Any, keys: Any) -> dict[str, str]:
        return {}

    def lookup_failure(self, fld: Any, value: str, *, to: str) -> str:
        return f"{fld.name} {value} not coupled ({to})"


def test_check_writes_fails_lookups_to_uncoupled_records() -> None:
    mapping = MappingSet.load().get("CUSTOMER")
    records = record_rows([{"mapping": "CUSTOMER", "record_id": "r1", "action": "update_crm"},
                           {"mapping": "CUSTOMER", "record_id": "r2", "action": "update_crm"}])
    changes = pl.DataFrame({"mapping": ["CUSTOMER"], "record_id": ["r1"],
                            "field": ["transactioncurrencyid"], "target": ["crm"],
                            "new_value": ["EUR"]})
    checked = check_writes(mapping, records, changes, _NoCouplings())
    assert checked["action"].to_list() == ["fail", "update_crm"]
    assert checked["message"].to_list()[0] == "transactioncurrencyid EUR not coupled (crm)"


def test_create_only_skips_changes_of_coupled_records() -> None:
    mapping = _mapping(create_only=True, direction="from_crm")
    records = created_once(mapping, _records("update_nav", "insert_nav", "deletion_conflict"))
    assert records["action"].to_list() == ["skip", "insert_nav", "skip"]
    assert records["skip_reason"].to_list() == ["create_only", None, "create_only"]
    assert "follow-up step settles it" in records["message"].to_list()[2]


def test_notes_reach_writes_only() -> None:
    nav = pl.DataFrame({"_id": ["r0", "r1"], NOTES: ["dates not synchronized", "x"]})
    records = with_notes(_records("insert_crm", "unchanged"), nav, nav.clear())
    assert records["message"].to_list() == ["dates not synchronized", None]


def test_watermarks_move_forward_and_stop_at_the_preview_start() -> None:
    mapping = _mapping()
    started = parse_moment("2026-01-02T00:00:00Z")
    recent = pl.DataFrame({"lastModifiedDateTime": [parse_moment("2026-01-01T23:58:00Z")]})
    assert watermark(None, recent, mapping, "nav", started) == "2026-01-01T23:58:00.000Z"
    later = pl.DataFrame({"lastModifiedDateTime": [parse_moment("2026-01-03T00:00:00Z")]})
    assert watermark(None, later, mapping, "nav", started) == format_moment(started)
    assert watermark("2026-01-02T00:00:00.000Z", recent, mapping, "nav",
                     started) == "2026-01-02T00:00:00.000Z"


def test_a_side_nobody_else_edits_moves_its_watermark_to_the_quiet_lag() -> None:
    """The change read saw everything up to the preview's start, so the watermark moves to
    five minutes before it even when the newest change read is older (or nothing was read):
    otherwise each later read scans all of this integration's own writes since."""
    mapping = _mapping()
    started = parse_moment("2026-01-02T00:00:00Z")
    quiet = format_moment(started - QUIET_LAG)
    assert quiet == "2026-01-01T23:55:00.000Z"
    old = pl.DataFrame({"lastModifiedDateTime": [parse_moment("2026-01-01T10:00:00Z")]})
    assert watermark(None, old, mapping, "nav", started) == quiet
    nothing = pl.DataFrame({"lastModifiedDateTime": pl.Series([], dtype=pl.Datetime("us", "UTC"))})
    assert watermark("2025-12-01T00:00:00.000Z", nothing, mapping, "nav", started) == quiet
    # A side whose changes were not read (a selection, a create-only target) keeps its mark.
    assert watermark("2025-12-01T00:00:00.000Z", None, mapping, "nav",
                     started) == "2025-12-01T00:00:00.000Z"
