"""A preview asks the state store for the couplings of the records in play, never for whole
mappings (issue #19 item 1: 200,000 couplings took a preview from 140 to 692 MB before it read
either service).

The state database is a real SQLite file holding 200,000 ACCOUNT couplings with their bases and
50,000 REP couplings (the lookup's referenced mapping); both sides are in-memory rows
(``engine.memory``) holding a handful of changes. What is counted is real: every row the
coupling queries return (:class:`CountingStore`) and every statement the database runs on the
``couplings`` table (SQLAlchemy's ``before_cursor_execute``). The second test checks that
looking couplings up id by id decides exactly what the whole-table path decided: the same plan
with a store that answers every coupling query with the whole mapping (:class:`WholeTableStore`,
what the preview loaded before).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from sqlalchemy import event

from nav_crm_ops.engine.mapping import MappingSet
from nav_crm_ops.engine.memory import MemorySides, offline_connections
from nav_crm_ops.engine.planner import MappingPlan, Planner, format_moment
from nav_crm_ops.engine.resolve import Resolver
from nav_crm_ops.engine.vocabulary import PlanAction, Side
from nav_crm_ops.store import StateStore
from tests.engine.test_planner_in_memory import AFTER, BEFORE, T0, _mappings, crm_row, nav_row

ACCOUNTS = 200_000
REPS = 50_000
PLAY_LIMIT = 40
"""Coupling rows a preview of the scenario below may fetch: the records in play are about a
dozen, each looked up at most on both sides and per query kind (far below any whole table)."""


class CountingStore(StateStore):
    """The state store, counting the coupling rows its queries return."""

    fetched: int = 0
    calls: list[dict[str, Any]]

    def couplings_frame(self, mapping: str, *, columns: Sequence[str] | None = None,
                        nav_ids: Iterable[str] | None = None,
                        crm_ids: Iterable[str] | None = None,
                        nav_keys: Iterable[str] | None = None) -> pl.DataFrame:
        frame = super().couplings_frame(mapping, columns=columns, nav_ids=nav_ids,
                                        crm_ids=crm_ids, nav_keys=nav_keys)
        self.fetched += frame.height
        self.__dict__.setdefault("calls", []).append(
            {"mapping": mapping, "ids": nav_ids is not None or crm_ids is not None
             or nav_keys is not None, "rows": frame.height})
        return frame


class WholeTableStore(StateStore):
    """The store as the preview used it before: every coupling query answered with the whole
    mapping (all couplings and bases), whatever ids were asked for."""

    def couplings_frame(self, mapping: str, *, columns: Sequence[str] | None = None,
                        nav_ids: Iterable[str] | None = None,
                        crm_ids: Iterable[str] | None = None,
                        nav_keys: Iterable[str] | None = None) -> pl.DataFrame:
        asked = [list(ids) for ids in (nav_ids, crm_ids, nav_keys) if ids is not None]
        if asked and not any(asked):  # no ids: the frame's columns only
            return super().couplings_frame(mapping, columns=columns, nav_ids=[])
        return super().couplings_frame(mapping, columns=columns)


def _base(number: str, phone: str = "111") -> dict[str, Any]:
    return {"accountnumber": number, "name": f"Account {number}", "telephone1": phone,
            "paymenttermscode": None, "ownerid": None}


def _seed(path: Path) -> None:
    """200,000 synced ACCOUNT pairs (``n<i>`` ↔ ``c<i>``, key ``A<i>``) with bases, 50,000 REP
    couplings (``R<i>``), both watermarks at T0; a few pairs set up for the scenario."""
    with StateStore.open(path) as store:
        store.upsert_couplings("REP", ({"nav_id": f"r{i}", "crm_id": f"u{i}",
                                        "nav_key": f"R{i}"} for i in range(REPS)))
        store.upsert_couplings("ACCOUNT", ({
            "nav_id": f"n{i}", "crm_id": f"c{i}", "nav_key": f"A{i}",
            "base_values": json.dumps(_base(f"A{i}"), sort_keys=True)}
            for i in range(ACCOUNTS) if i != 7))
        # n7 was coupled but never synced (no base): both sides are read by id.
        store.upsert_couplings("ACCOUNT", [{"nav_id": "n7", "crm_id": "c7", "nav_key": "A7"}])
        store.record_failure("ACCOUNT", "n8", "to_crm", "timeout", transient=True)
        for side in Side:
            store.set_watermark("ACCOUNT", side, format_moment(T0))


@dataclass
class Scenario:
    """The changes of one incremental preview (about a dozen records in play)."""

    sides: MemorySides
    mappings: MappingSet


def _scenario() -> Scenario:
    mappings = _mappings(only_coupled=False, create_when_no_match=True)
    account = mappings.get("ACCOUNT")
    sides = MemorySides()
    sides.put(account, Side.NAV, [
        nav_row("n1", "A1", "Account A1", "999", at=AFTER),            # NAV update
        nav_row("n2", "A2", "Account A2", "222", at=AFTER),            # conflict (with c2)
        nav_row("n3", "A3", "Account A3", "111", rep="R17", at=AFTER),  # coupled lookup
        nav_row("n4", "A4", "Account A4", "111", rep="JR", at=AFTER),   # uncoupled lookup
        nav_row("n7", "A7", "Account A7", "777", at=AFTER),            # no base, CRM gone
        nav_row("n8", "A8", "Account A8", at=BEFORE),                  # retry pass, CRM gone
        nav_row("new1", "NEW1", "Brand new", at=AFTER),                # create
        nav_row("n9", "A9", "Account A9", at=BEFORE),                  # unchanged, not read
    ])
    sides.put(account, Side.CRM, [
        crm_row("c2", "A2", "Account A2", "333", at=AFTER),
        crm_row("c5", "A5", "Account A5 renamed", "111", at=AFTER),     # CRM update
        crm_row("c6", "A6", "Account A6", "666", owner="u3", at=AFTER),  # CRM update
        crm_row("c9", "A9", "Account A9", at=BEFORE),
        crm_row("cnew", "NEW2", "New in CRM", at=AFTER),               # create in BC
    ])
    return Scenario(sides, mappings)


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("couplings") / "state.db"
    _seed(path)
    return path


def _plan(store: StateStore, scenario: Scenario) -> MappingPlan:
    planner = Planner(scenario.mappings, store, offline_connections(), sources=scenario.sides)
    return planner.plan(scenario.mappings.get("ACCOUNT"))


@pytest.fixture
def statements(seeded: Path) -> Iterator[tuple[CountingStore, list[str]]]:
    """A counting store on the seeded database and the SQL it runs on ``couplings``."""
    with CountingStore.open(seeded) as store:
        seen: list[str] = []
        with store.transaction(write=False) as conn:
            engine = conn.engine

        def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
            # counts and the existence probe (``has_couplings``: one row at most) read no rows
            probe = statement.startswith("SELECT couplings.id") and "LIMIT" in statement
            if "FROM couplings" in statement and "count(" not in statement and not probe:
                seen.append(statement)

        event.listen(engine, "before_cursor_execute", record)
        yield store, seen
        event.remove(engine, "before_cursor_execute", record)


def test_an_incremental_preview_fetches_only_the_couplings_in_play(
        statements: tuple[CountingStore, list[str]]) -> None:
    store, seen = statements
    plan = _plan(store, _scenario())
    actions = dict(plan.records.select("record_id", "action").iter_rows())
    assert actions["n1"] == PlanAction.UPDATE_CRM and actions["n2"] == PlanAction.CONFLICT
    assert actions["n4"] == PlanAction.FAIL and actions["n7"] == PlanAction.DELETION_CONFLICT
    assert "n9" not in actions
    assert store.fetched <= PLAY_LIMIT, store.calls
    assert all(call["ids"] for call in store.calls), store.calls
    # Every statement reading couplings names the ids or keys it wants (no whole table).
    assert seen and all(" IN (" in s for s in seen), [s for s in seen if " IN (" not in s]


def _sorted(frame: pl.DataFrame, *keys: str) -> pl.DataFrame:
    return frame.select(sorted(frame.columns)).sort(*keys, nulls_last=True)


def test_looking_couplings_up_by_id_plans_what_the_whole_table_planned(seeded: Path) -> None:
    with StateStore.open(seeded) as store:
        by_id = _plan(store, _scenario())
    with WholeTableStore.open(seeded) as store:
        whole = _plan(store, _scenario())
    actions = dict(by_id.records.select("record_id", "action").iter_rows())
    assert actions == {
        "n1": PlanAction.UPDATE_CRM, "n2": PlanAction.CONFLICT, "n3": PlanAction.UPDATE_CRM,
        "n4": PlanAction.FAIL, "n7": PlanAction.DELETION_CONFLICT,
        "n8": PlanAction.DELETION_CONFLICT, "n5": PlanAction.UPDATE_NAV,
        "n6": PlanAction.UPDATE_NAV, "new1": PlanAction.INSERT_CRM,
        "cnew": PlanAction.INSERT_NAV}
    lookup = by_id.field_changes.filter((pl.col("record_id") == "n3")
                                        & (pl.col("field") == "ownerid"))
    assert lookup["new_value"].to_list() == ["R17"]
    seen = by_id.records.filter(pl.col("record_id").is_in(["n6", "new1"])).sort("record_id")
    assert seen["nav_coupled_to"].to_list() == ["c6", None]
    assert _sorted(by_id.records, "record_id").equals(_sorted(whole.records, "record_id"))
    assert _sorted(by_id.field_changes, "record_id", "field").equals(
        _sorted(whole.field_changes, "record_id", "field"))


def test_apply_looks_up_the_plans_lookup_values_at_once(seeded: Path) -> None:
    """An apply builds payloads record by record; ``Resolver.prefetch`` asks the state store
    for all lookup values of the plan's changes first, so those calls ask nothing more."""
    mappings = _scenario().mappings
    account = mappings.get("ACCOUNT")
    owner = account.field("ownerid")
    changes = pl.DataFrame({"record_id": ["n1", "n2", "n3", "n4"],
                            "field": ["ownerid", "ownerid", "telephone1", "ownerid"],
                            "new_value": ["R17", "R18", "555", "JR"]})
    with CountingStore.open(seeded) as store:
        resolver = Resolver(mappings, store, offline_connections())
        resolver.prefetch(account, changes)
        asked = len(store.calls)
        assert asked == 1 and store.fetched == 2  # one chunk of REP keys; JR is not coupled
        found = {key: resolver.lookup_nav_to_crm(owner, [key]) for key in ("R17", "R18", "JR")}
        assert found == {"R17": {"R17": "u17"}, "R18": {"R18": "u18"}, "JR": {}}
        assert len(store.calls) == asked
