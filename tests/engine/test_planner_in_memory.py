"""``Planner.plan`` end to end over in-memory sides: every decision without HTTP.

Both sides are rows in :class:`~nav_crm_ops.engine.memory.MemorySides`, the state store is a
real SQLite file, and the connections refuse any request (``offline_connections``): what is
tested is the whole preview — reading since the watermark, coupled pairs, matching, creates,
the three-way diff and the write checks — and the plan rows it produces. The same decisions
over the sandbox are tested end to end in the workspace and reliability tests.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from nav_crm_ops.engine.ids import crm_id_for
from nav_crm_ops.engine.mapping import MappingSet, TableMapping
from nav_crm_ops.engine.memory import MemorySides, offline_connections
from nav_crm_ops.engine.planner import MappingPlan, Planner, format_moment, parse_moment
from nav_crm_ops.engine.sides import SideReader
from nav_crm_ops.engine.sync.snapshot import QUIET_LAG
from nav_crm_ops.engine.vocabulary import PlanAction, Resolution, Side
from nav_crm_ops.exceptions import SyncError
from nav_crm_ops.store import StateStore

T0 = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
"""The last sync's watermark on both sides (tests after a first sync)."""
BEFORE = T0 - timedelta(hours=1)
AFTER = T0 + timedelta(hours=1)

REP: dict[str, Any] = {
    "name": "REP", "direction": "to_crm",
    "nav": {"entity": "salespeople", "natural_key": "code"},
    "crm": {"entity": "systemusers", "logical_name": "systemuser", "key": "systemuserid"},
    "fields": [{"nav": "code", "crm": "nickname", "match": {"priority": 0}}],
}


def _account(**overrides: Any) -> dict[str, Any]:
    """A customer ↔ account mapping: a match key, two plain fields, a choice (codes without a
    CRM option fail the record) and a lookup through REP's couplings."""
    entry: dict[str, Any] = {
        "name": "ACCOUNT", "direction": "bidirectional", "update_conflict": "none",
        "depends_on": ["REP"],
        "nav": {"entity": "customers", "natural_key": "number"},
        "crm": {"entity": "accounts", "logical_name": "account", "key": "accountid",
                "natural_key": "accountnumber"},
        "fields": [
            {"nav": "number", "crm": "accountnumber", "match": {"priority": 0}},
            {"nav": "displayName", "crm": "name"},
            {"nav": "phoneNumber", "crm": "telephone1"},
            {"nav": "paymentTerms", "crm": "paymenttermscode",
             "options": {"values": [{"nav": "30 DAYS", "crm": 1}]}},
            {"nav": "salespersonCode", "crm": "ownerid", "direction": "to_crm",
             "lookup": {"mapping": "REP", "navigation": "ownerid", "target": "systemusers",
                        "nav_key": "code"}},
        ],
    }
    entry.update(overrides)
    return entry


def _mappings(**overrides: Any) -> MappingSet:
    return MappingSet.from_entries([REP, _account(**overrides)])


def nav_row(record_id: str, number: str, name: str, phone: str | None = None, *,
            terms: str | None = None, rep: str | None = None,
            at: datetime = T0) -> dict[str, Any]:
    """A BC customer as the API returns it."""
    return {"id": record_id, "number": number, "displayName": name, "phoneNumber": phone,
            "paymentTerms": terms, "salespersonCode": rep,
            "lastModifiedDateTime": at.isoformat().replace("+00:00", "Z")}


def crm_row(record_id: str, number: str, name: str, phone: str | None = None, *,
            terms: int | None = None, owner: str | None = None,
            at: datetime = T0) -> dict[str, Any]:
    """A Dataverse account as the Web API returns it (the lookup as ``_ownerid_value``)."""
    return {"accountid": record_id, "accountnumber": number, "name": name, "telephone1": phone,
            "paymenttermscode": terms, "_ownerid_value": owner,
            "modifiedon": at.isoformat().replace("+00:00", "Z")}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[StateStore]:
    with StateStore.open(tmp_path / "state.db") as opened:
        yield opened


@pytest.fixture
def sides() -> MemorySides:
    return MemorySides()


class World:
    """The mappings, the state store and both sides' rows of one test."""

    def __init__(self, store: StateStore, sides: MemorySides, mappings: MappingSet) -> None:
        self.store, self.sides, self.mappings = store, sides, mappings
        self.account = mappings.get("ACCOUNT")

    def holds(self, nav: list[dict[str, Any]], crm: list[dict[str, Any]]) -> None:
        self.sides.put(self.account, Side.NAV, nav)
        self.sides.put(self.account, Side.CRM, crm)

    def synced(self, nav_id: str, crm_id: str, values: dict[str, Any] | None) -> None:
        """A coupling as a previous sync left it (``values``: the base; None: no base yet),
        and both watermarks at :data:`T0`."""
        key = None if values is None else values["accountnumber"]
        self.store.couple("ACCOUNT", nav_id, crm_id, nav_key=key, base_values=values)
        for side in Side:
            self.store.set_watermark("ACCOUNT", side, format_moment(T0))

    def planner(self) -> Planner:
        return Planner(self.mappings, self.store, offline_connections(), sources=self.sides)

    def plan(self, mapping: TableMapping | None = None) -> MappingPlan:
        self.before = datetime.now(UTC)
        plan = self.planner().plan(mapping or self.account)
        self.after = datetime.now(UTC)
        return plan

    def lagged(self, moment: str) -> bool:
        """Whether a watermark is the last preview's start (a second before the call) less
        :data:`QUIET_LAG`: where a side whose change read found nothing newer moves to."""
        at = parse_moment(moment)
        earliest = self.before - timedelta(seconds=1, milliseconds=1) - QUIET_LAG
        return earliest <= at <= self.after - QUIET_LAG


@pytest.fixture
def world(store: StateStore, sides: MemorySides) -> World:
    return World(store, sides, _mappings())


def _rows(plan: MappingPlan) -> dict[str, dict[str, Any]]:
    """Plan records by record id."""
    return {row["record_id"]: row for row in plan.records.iter_rows(named=True)}


def _changes(plan: MappingPlan, record_id: str) -> dict[str, dict[str, Any]]:
    """A record's field changes by field."""
    frame = plan.field_changes.filter(pl.col("record_id") == record_id)
    return {row["field"]: row for row in frame.iter_rows(named=True)}


BASE = {"accountnumber": "C1", "name": "Adatum", "telephone1": "111", "paymenttermscode": None,
        "ownerid": None}


# -- uncoupled records ------------------------------------------------------------------------
def test_first_sync_creates_what_has_no_match_on_either_side(world: World) -> None:
    world.holds([nav_row("n1", "C1", "Adatum", "111")], [crm_row("c2", "C2", "Contoso")])
    plan = world.plan()
    rows = _rows(plan)
    assert set(rows) == {"n1", "c2"}
    assert rows["n1"]["action"] == PlanAction.INSERT_CRM
    assert rows["n1"]["crm_id"] == crm_id_for("ACCOUNT", "n1")
    assert rows["n1"]["nav_key"] == "C1" and rows["n1"]["message"] == "no match: create"
    assert rows["c2"]["action"] == PlanAction.INSERT_NAV and rows["c2"]["nav_id"] is None
    created = _changes(plan, "n1")
    assert {f: c["new_value"] for f, c in created.items()} == {
        "accountnumber": "C1", "name": "Adatum", "telephone1": "111"}
    assert {c["target"] for c in created.values()} == {Side.CRM}
    assert _changes(plan, "c2")["name"]["target"] == Side.NAV
    # both sides' changes were read up to the preview's start: the watermarks move to five
    # minutes before it (QUIET_LAG), past the older records read
    assert set(plan.watermarks) == {"nav", "crm"}
    assert all(world.lagged(mark) for mark in plan.watermarks.values()), plan.watermarks


def test_records_matching_by_natural_key_are_merged_not_created(world: World) -> None:
    """A never-synced pair (matched case-insensitively on the number) is diffed without a
    base: NAV's values win where the sides differ, and apply couples the pair."""
    world.holds([nav_row("n1", "C1", "Adatum", "111")],
                [crm_row("c1", "c1", "Adatum", "222")])
    plan = world.plan()
    rows = _rows(plan)
    assert list(rows) == ["n1"]
    merged = rows["n1"]
    assert (merged["nav_id"], merged["crm_id"]) == ("n1", "c1")
    assert (merged["action"], merged["direction"]) == (PlanAction.UPDATE_CRM, "to_crm")
    assert merged["message"] == "new coupling: matched on number = accountnumber"
    assert (merged["nav_key"], merged["crm_key"]) == ("C1", "c1")
    assert merged["nav_version"] == merged["crm_version"] == 'W/"2026-01-05T10:00:00.000Z"'
    changes = {f: (c["target"], c["new_value"], c["resolution"])
               for f, c in _changes(plan, "n1").items()}
    assert changes == {"accountnumber": ("crm", "C1", Resolution.NAV_WINS),
                       "name": ("none", "Adatum", Resolution.SAME_VALUE),
                       "telephone1": ("crm", "111", Resolution.NAV_WINS)}


def test_an_ambiguous_match_fails_instead_of_guessing(world: World) -> None:
    world.holds([nav_row("n1", "C1", "Adatum")],
                [crm_row("c1a", "C1", "Adatum"), crm_row("c1b", "C1", "Adatum (copy)")])
    rows = _rows(world.plan())
    assert {r: row["action"] for r, row in rows.items()} == {
        "n1": PlanAction.FAIL, "c1a": PlanAction.FAIL, "c1b": PlanAction.FAIL}
    assert rows["n1"]["message"].startswith(
        "ambiguous: 2 CRM account records match on accountnumber (c1a, c1b)")
    assert rows["c1a"]["message"].startswith(
        "ambiguous: matches 1 BC customers record(s) on number (n1)")


def test_after_the_first_sync_uncoupled_records_wait_unless_the_mapping_creates(
        world: World, store: StateStore, sides: MemorySides) -> None:
    world.synced("n0", "c0", {**BASE, "accountnumber": "C0"})
    world.holds([nav_row("n1", "C1", "Adatum", at=AFTER)], [])
    rows = _rows(world.plan())
    assert rows["n1"]["action"] == PlanAction.SKIP
    assert rows["n1"]["skip_reason"] == "only_coupled"
    creating = World(store, sides, _mappings(only_coupled=False, create_when_no_match=True))
    assert _rows(creating.plan())["n1"]["action"] == PlanAction.INSERT_CRM


# -- coupled pairs ----------------------------------------------------------------------------
def test_one_side_changed_updates_the_other(world: World) -> None:
    world.synced("n1", "c1", BASE)
    world.holds([nav_row("n1", "C1", "Adatum", "999", at=AFTER)],
                [crm_row("c1", "C1", "Adatum", "111", at=BEFORE)])
    plan = world.plan()
    row = _rows(plan)["n1"]
    assert row["action"] == PlanAction.UPDATE_CRM and row["crm_id"] == "c1"
    phone = _changes(plan, "n1")["telephone1"]
    assert (phone["base_value"], phone["new_value"], phone["target"]) == ("111", "999", "crm")
    assert list(_changes(plan, "n1")) == ["telephone1"]


def test_a_side_not_read_counts_as_unchanged(world: World) -> None:
    """The CRM row is older than the watermark: not read, it equals the base."""
    world.synced("n1", "c1", BASE)
    world.holds([nav_row("n1", "C1", "Adatum", "999", at=AFTER)],
                [crm_row("c1", "C1", "Someone else", "111", at=BEFORE)])
    changes = _changes(world.plan(), "n1")
    assert set(changes) == {"telephone1"}


@pytest.mark.parametrize(("policy", "action", "winner", "resolution"), [
    ("none", PlanAction.CONFLICT, None, Resolution.HELD),
    ("nav_wins", PlanAction.UPDATE_CRM, "999", Resolution.NAV_WINS),
    ("crm_wins", PlanAction.UPDATE_NAV, "555", Resolution.CRM_WINS),
])
def test_both_sides_changing_a_field_follows_update_conflict(
        store: StateStore, sides: MemorySides, policy: str, action: PlanAction,
        winner: str | None, resolution: Resolution) -> None:
    world = World(store, sides, _mappings(update_conflict=policy))
    world.synced("n1", "c1", BASE)
    world.holds([nav_row("n1", "C1", "Adatum", "999", at=AFTER)],
                [crm_row("c1", "C1", "Adatum", "555", at=AFTER)])
    plan = world.plan()
    assert _rows(plan)["n1"]["action"] == action
    phone = _changes(plan, "n1")["telephone1"]
    assert phone["conflict"] is True
    assert (phone["nav_value"], phone["crm_value"]) == ("999", "555")
    assert phone["new_value"] == winner and phone["resolution"] == resolution


def test_both_sides_changed_alike_writes_nothing(world: World) -> None:
    world.synced("n1", "c1", BASE)
    world.holds([nav_row("n1", "C1", "Adatum", "777", at=AFTER)],
                [crm_row("c1", "C1", "Adatum", "777", at=AFTER)])
    plan = world.plan()
    assert _rows(plan)["n1"]["action"] == PlanAction.UNCHANGED
    phone = _changes(plan, "n1")["telephone1"]
    assert phone["resolution"] == Resolution.SAME_VALUE and phone["target"] == "none"


def test_a_skipped_record_is_a_skip_row_with_its_reason(world: World, store: StateStore) -> None:
    world.synced("n1", "c1", BASE)
    store.record_failure("ACCOUNT", "n1", "to_crm", "telephone1: too long", transient=False,
                         skip_after=1)
    world.holds([nav_row("n1", "C1", "Adatum", "999", at=AFTER)], [])
    plan = world.plan()
    row = _rows(plan)["n1"]
    assert row["action"] == PlanAction.SKIP and row["skip_reason"] == "skipped_coupling"
    assert row["message"] == "telephone1: too long"


@pytest.mark.parametrize(("policy", "expected"), [
    ("none", "uncouple it with `nav-crm-ops uncouple`"),
    ("remove_coupling", "the coupling will be removed"),
])
def test_a_record_deleted_on_one_side_is_a_deletion_conflict(
        store: StateStore, sides: MemorySides, policy: str, expected: str) -> None:
    """The pair has no base yet, so both sides are read by id: the CRM record is gone."""
    world = World(store, sides, _mappings(deletion_conflict=policy))
    world.synced("n1", "c1", None)
    world.holds([nav_row("n1", "C1", "Adatum", "999", at=AFTER)],
                [crm_row("c1", "C1", "Adatum", at=BEFORE)])
    sides.delete(world.account, Side.CRM, ["c1"])
    row = _rows(world.plan())["n1"]
    assert row["action"] == PlanAction.DELETION_CONFLICT and row["crm_id"] == "c1"
    assert row["message"].startswith("the coupled CRM record no longer exists")
    assert expected in row["message"]


def test_the_retry_pass_reads_both_sides_and_finds_a_deletion(world: World,
                                                              store: StateStore) -> None:
    world.synced("n1", "c1", BASE)
    store.record_failure("ACCOUNT", "n1", "to_crm", "timeout", transient=True)
    world.holds([nav_row("n1", "C1", "Adatum", at=BEFORE)], [])
    assert _rows(world.plan())["n1"]["action"] == PlanAction.DELETION_CONFLICT


# -- what cannot be written -------------------------------------------------------------------
def test_a_code_without_a_crm_option_fails_the_record(world: World) -> None:
    world.holds([nav_row("n1", "C1", "Adatum", terms="30 DAYS"),
                 nav_row("n2", "C2", "Contoso", terms="99 DAYS")], [])
    rows = _rows(world.plan())
    assert rows["n1"]["action"] == PlanAction.INSERT_CRM
    assert rows["n2"]["action"] == PlanAction.FAIL and rows["n2"]["direction"] == "none"
    assert rows["n2"]["message"] == (
        "paymentTerms '99 DAYS' has no CRM option in paymenttermscode: add "
        "{nav: 99 DAYS, crm: <value>} to the options of field paymenttermscode in mapping "
        "ACCOUNT, or set on_missing: create")


def test_a_lookup_to_an_uncoupled_record_fails_until_it_is_coupled(world: World,
                                                                   store: StateStore) -> None:
    world.holds([nav_row("n1", "C1", "Adatum", rep="JR")], [])
    row = _rows(world.plan())["n1"]
    assert row["action"] == PlanAction.FAIL
    assert row["message"].startswith(
        "salespersonCode 'JR' is not coupled to a CRM systemuser (mapping REP)")
    store.couple("REP", "r1", "u1", nav_key="JR")
    plan = world.plan()
    assert _rows(plan)["n1"]["action"] == PlanAction.INSERT_CRM
    assert _changes(plan, "n1")["ownerid"]["new_value"] == "JR"


def test_crm_lookups_read_in_nav_terms_through_the_couplings(world: World,
                                                             store: StateStore) -> None:
    store.couple("REP", "r1", "u1", nav_key="JR")
    world.holds([], [crm_row("c1", "C1", "Adatum", terms=1, owner="U1")])
    plan = world.plan()
    assert _rows(plan)["c1"]["action"] == PlanAction.INSERT_NAV
    created = _changes(plan, "c1")
    assert created["paymenttermscode"]["new_value"] == "30 DAYS"
    assert "ownerid" not in created  # to_crm only: never written to BC


# -- reading since the watermark --------------------------------------------------------------
def test_incremental_reads_honour_the_watermark_and_its_overlap(world: World) -> None:
    world.synced("n0", "c0", {**BASE, "accountnumber": "C0"})
    world.holds([nav_row("old", "C7", "Old", at=BEFORE),
                 nav_row("overlap", "C8", "Overlap", at=T0 - timedelta(seconds=10)),
                 nav_row("new", "C9", "New", at=AFTER)], [])
    plan = world.plan()
    assert set(_rows(plan)) == {"overlap", "new"}
    assert set(plan.watermarks) == {"nav", "crm"}
    assert all(world.lagged(mark) for mark in plan.watermarks.values()), plan.watermarks


def test_a_change_newer_than_the_quiet_lag_sets_the_watermark(world: World) -> None:
    """A change read from the last five minutes moves the watermark to itself, not to the
    lagged start: it is the newest moment the read is known to be complete up to."""
    world.synced("n0", "c0", {**BASE, "accountnumber": "C0"})
    recent = datetime.now(UTC) - timedelta(minutes=1)
    world.holds([nav_row("new", "C9", "New", at=recent)], [])
    plan = world.plan()
    assert set(_rows(plan)) == {"new"}
    assert plan.watermarks["nav"] == format_moment(recent)
    assert world.lagged(plan.watermarks["crm"]), plan.watermarks


def test_has_changes_probes_strictly_after_the_watermark(world: World) -> None:
    world.synced("n1", "c1", BASE)
    world.holds([nav_row("n1", "C1", "Adatum", at=T0)], [crm_row("c1", "C1", "Adatum", at=T0)])
    planner = world.planner()
    assert planner.has_changes(world.account) is False
    world.sides.upsert(world.account, Side.CRM, [crm_row("c1", "C1", "Adatum!", at=AFTER)])
    assert planner.has_changes(world.account) is True


def test_a_table_filter_is_given_as_a_polars_expression(world: World) -> None:
    world.sides.put(world.account, Side.NAV,
                    [nav_row("n1", "C1", "Adatum"), nav_row("n2", "C2", "Blocked")],
                    where=pl.col("displayName") != "Blocked")
    world.sides.put(world.account, Side.CRM, [])
    assert set(_rows(world.plan())) == {"n1"}


def test_nothing_asks_a_service(world: World) -> None:
    with pytest.raises(SyncError, match="in-memory planning makes no request"):
        _ = offline_connections().dataverse.read
    world.holds([nav_row("n1", "C1", "Adatum")], [crm_row("c1", "C1", "Adatum")])
    assert world.plan().records.height == 1


def test_without_sources_the_planner_reads_through_the_connectors(world: World) -> None:
    planner = Planner(world.mappings, world.store, offline_connections())
    nav, crm = planner.sources(world.account)
    assert isinstance(nav, SideReader) and isinstance(crm, SideReader)
    assert (nav.side, crm.side) == (Side.NAV, Side.CRM) and nav.side is Side.NAV
