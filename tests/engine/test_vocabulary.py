"""The plan vocabulary as enums (same stored values) and the Plan selections built on it."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pyarrow.parquet as pq

from nav_crm_ops.engine.diff import RESOLUTIONS, TARGETS
from nav_crm_ops.engine.plan import DIRECTIONS, PLAN_ACTIONS, Plan
from nav_crm_ops.engine.vocabulary import (
    Direction,
    PlanAction,
    Resolution,
    Side,
    action_is,
    inserts_to,
    writes_to,
)


def test_enum_values_are_the_stored_vocabulary() -> None:
    assert [a.value for a in PlanAction] == list(PLAN_ACTIONS)
    assert tuple(d.value for d in Direction) == DIRECTIONS
    assert {s.value for s in Side} == set(TARGETS) - {"none"}
    assert tuple(r.value for r in Resolution) == RESOLUTIONS
    assert PlanAction.INSERT_NAV == "insert_nav" and f"{PlanAction.SKIP}" == "skip"


def test_sides_and_directions() -> None:
    assert Side.NAV.other is Side.CRM and Side.CRM.other is Side.NAV
    assert Side.NAV.label == "BC" and Side.CRM.label == "CRM"
    assert Side.CRM.direction is Direction.TO_CRM and Side.NAV.direction is Direction.FROM_CRM
    assert Direction.TO_CRM.target is Side.CRM and Direction.FROM_CRM.source is Side.CRM
    assert Direction.TO_CRM.other is Direction.FROM_CRM
    assert Side.CRM.column("version") == "crm_version"
    assert PlanAction.insert("crm") is PlanAction.INSERT_CRM
    assert PlanAction.writing(Side.NAV) == (PlanAction.INSERT_NAV, PlanAction.UPDATE_NAV,
                                             PlanAction.UPDATE_BOTH)
    assert PlanAction.INSERT_CRM.is_insert and not PlanAction.UPDATE_CRM.is_insert


def _plan() -> Plan:
    records = pl.DataFrame({
        "mapping": ["M"] * 6,
        "record_id": ["a", "b", "c", "d", "e", "f"],
        "nav_id": ["a", "b", "c", None, "e", "f"],
        "crm_id": ["A", "B", "C", "D", "E", "F"],
        "action": ["insert_crm", "update_both", "unchanged", "insert_nav", "conflict",
                   "update_crm"],
        "included": [True, True, True, True, True, False],
    })
    changes = pl.DataFrame({
        "mapping": ["M"] * 5,
        "record_id": ["a", "b", "b", "c", "e"],
        "field": ["name", "name", "phone", "city", "name"],
        "target": ["crm", "crm", "nav", "none", "none"],
        "new_value": ["x", "y", "1", "same", None],
        "conflict": [False, False, False, False, True],
        "resolution": ["none", "none", "none", "same_value", "held"],
    })
    return Plan.create(records, changes, workspace_fingerprint="fp")


def test_plan_selections() -> None:
    plan = _plan()
    assert plan.writing_to("crm")["record_id"].to_list() == ["a", "b"]
    assert plan.writing_to(Side.NAV)["record_id"].to_list() == ["b", "d"]
    assert plan.inserts(Side.NAV)["record_id"].to_list() == ["d"]
    assert plan.changes_to("nav")["field"].to_list() == ["phone"]
    assert plan.same_value_changes()["record_id"].to_list() == ["c"]
    assert plan.shown_changes()["record_id"].to_list() == ["a", "b", "b", "e"]
    assert plan.with_action(PlanAction.CONFLICT)["record_id"].to_list() == ["e"]
    assert plan.included().height == 5
    frame = plan.records
    assert frame.filter(writes_to("crm"))["record_id"].to_list() == ["a", "b", "f"]
    assert frame.filter(inserts_to(Side.CRM))["record_id"].to_list() == ["a"]
    assert frame.filter(action_is(PlanAction.UNCHANGED, "conflict"))["record_id"].to_list() == [
        "c", "e"]
    assert plan.writes("crm")["record_id"].to_list() == ["a", "b"]
    assert plan.base_updates()["field"].to_list() == ["name", "name", "phone", "city"]


def test_saved_plans_store_the_same_text(tmp_path: Path) -> None:
    plan = _plan()
    path = plan.save(tmp_path / "plan.parquet")
    stored = pl.DataFrame(pl.from_arrow(pq.read_table(path)))
    records = stored.filter(pl.col("row_type") == "record")
    assert stored.schema["action"] == pl.Utf8
    assert records["action"].to_list() == plan.records["action"].cast(pl.Utf8).to_list()
    assert records["direction"].to_list() == ["to_crm", "both", "none", "from_crm", "none",
                                              "to_crm"]
    assert Plan.load(path).equals(plan)
