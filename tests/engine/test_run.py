"""The applier's bookkeeping (``engine.run``) and the sync policy (``engine.followups``),
without a service."""

from __future__ import annotations

from typing import Any

import polars as pl

from nav_crm_ops.connectors.models import WriteOp, WriteOutcome
from nav_crm_ops.engine.mapping import MappingSet, TableMapping
from nav_crm_ops.engine.report import MappingResult
from nav_crm_ops.engine.sync.followups import merged, sync_with_followups, tried_in, without
from nav_crm_ops.engine.sync.payloads import Payloads, natural_key, source_marks, typed
from nav_crm_ops.engine.sync.planner import MappingPlan
from nav_crm_ops.engine.sync.run import (
    ApplyRun,
    Chunk,
    DirectionTally,
    Prepared,
    by_record,
    mapping_result,
)
from nav_crm_ops.engine.vocabulary import Direction, Side


def _mapping() -> TableMapping:
    return MappingSet.from_entries([{
        "name": "T", "direction": "bidirectional",
        "nav": {"entity": "customers", "natural_key": "number"},
        "crm": {"entity": "accounts", "logical_name": "account", "key": "accountid"},
        "fields": [{"nav": "number", "crm": "accountnumber"},
                   {"nav": "displayName", "crm": "name"},
                   {"nav": "balance", "crm": "creditlimit", "compare": {"kind": "number"}}],
    }]).get("T")


def _changes() -> pl.DataFrame:
    return pl.DataFrame({"record_id": ["p1", "p1", "p2"], "field": ["name", "creditlimit",
                                                                    "name"],
                         "new_value": ["Adatum", "10", "Contoso"],
                         "resolution": ["none", "same_value", "none"]})


def _run() -> ApplyRun:
    tallies = {"to_crm": DirectionTally(1), "from_crm": DirectionTally(2)}
    records = pl.DataFrame({"record_id": ["p1", "p2"], "action": ["update_crm", "insert_crm"]})
    return ApplyRun(_mapping(), "plan-1", records, _changes(), tallies,
                    bases={"p1": {"name": "old", "accountnumber": "C1"}})


def test_run_keeps_bases_written_and_same_values() -> None:
    run = _run()
    assert run.same == {"p1": [{"record_id": "p1", "field": "creditlimit", "new_value": "10",
                                "resolution": "same_value"}]}
    assert run.first.run_id == 1 and run.first_direction is Direction.TO_CRM
    assert run.targets() == [Side.CRM, Side.NAV] and run.tally(Side.NAV).run_id == 2
    base = run.new_base("p1", {"name": "Adatum", "lines[1].quantity": "3"})
    assert base == {"name": "Adatum", "accountnumber": "C1"} and run.bases["p1"] is base
    run.mark_written("p1", Side.CRM)
    run.mark_written("p1", Side.NAV)
    run.mark_written("p2", Side.CRM)
    assert run.touched(Side.CRM) == 2 and run.touched(Side.NAV) == 1
    assert not run.is_new_coupling({"record_id": "p1", "action": "update_crm"})
    assert run.is_new_coupling({"record_id": "p9", "action": "update_crm"})
    assert not run.is_new_coupling({"record_id": "p9", "action": "insert_crm"})
    assert list(by_record(_changes())) == ["p1", "p2"]


def test_chunk_outcomes() -> None:
    def prepared(record_id: str, action: str, crm_id: str | None) -> Prepared:
        record = {"record_id": record_id, "action": action, "nav_id": record_id,
                  "crm_id": crm_id}
        return Prepared(record, WriteOp.update("accounts", "x", {}))

    chunk = Chunk(Side.CRM, [], {})
    chunk.prepared = [prepared("a", "insert_crm", "A"), prepared("b", "update_crm", "B"),
                      prepared("c", "insert_crm", "C")]
    chunk.outcomes = [WriteOutcome("1", ok=True, id="A"), WriteOutcome("2", ok=True, id="B"),
                      WriteOutcome("3", ok=False, id="C")]
    assert chunk.direction is Direction.TO_CRM
    assert [r["record_id"] for r, _ in chunk.created()] == ["a"]
    assert chunk.partners(failed_writes={"b"}) == ["A"]


def test_mapping_result_adds_directions_and_explains() -> None:
    tallies = {"to_crm": DirectionTally(1, {"modified": 2, "failed": 1}),
               "from_crm": DirectionTally(2, {"modified": 1, "conflicts": 1})}
    result = mapping_result(_mapping(), tallies, "failed", "", 0, 1.5)
    assert result.counts == {"modified": 3, "failed": 1, "conflicts": 1}
    assert result.run_ids == (1, 2) and "2 record(s) failed or conflict" in result.message
    refused = mapping_result(_mapping(), tallies, "finished", "", 3, 0.0)
    assert refused.message.startswith("3 record(s) changed since the preview")


def test_payload_values_without_a_service() -> None:
    mapping = _mapping()
    assert typed("10", mapping.field("creditlimit")) == 10
    assert typed("10.5", mapping.field("creditlimit")) == 10.5
    assert natural_key(mapping, {"number": "C1", "displayName": "X"}) == {"number": "C1"}
    assert natural_key(mapping, {"displayName": "X"}) is None
    payload: dict[str, Any] = {}
    problem = Payloads(None, None).field_value(  # type: ignore[arg-type]
        mapping, mapping.field("name"), "Adatum", payload, {}, Side.NAV)
    assert problem is None and payload == {"displayName": "Adatum"}
    marks = {"nav_bcordernumber": "{created.number}", "lastbackofficesubmit": "{today}",
             "submitted": True, "at": "{now}"}
    assert source_marks(marks, {"number": "S-1"}, "2026-01-01", "T") == {
        "nav_bcordernumber": "S-1", "lastbackofficesubmit": "2026-01-01", "submitted": True,
        "at": "T"}


def _result(status: str = "finished", **counts: int) -> MappingResult:
    return MappingResult("T", status, counts, (1,), "", 1.0)


class _Store:
    """What the sync policy asks the state store."""

    def __init__(self, inserted_in_bc: int) -> None:
        self.inserted_in_bc = inserted_in_bc

    def runs_frame(self, mapping: str, limit: int = 10) -> pl.DataFrame:
        return pl.DataFrame({"id": [1, 2], "direction": ["from_crm", "from_crm"],
                             "inserted": [self.inserted_in_bc, 5]})

    def record_status_frame(self, mapping: str) -> pl.DataFrame:
        return pl.DataFrame({"run_id": [1, 7], "source_id": ["n1", "n2"]})


def test_second_pass_after_bc_creates_and_follow_up() -> None:
    calls: list[tuple[bool, set[str] | None]] = []

    def once(retry: bool, leave_out: set[str] | None) -> MappingResult:
        calls.append((retry, leave_out))
        return _result(inserted=1) if len(calls) == 1 else _result(modified=1)

    mapping = _mapping()
    store: Any = _Store(inserted_in_bc=1)
    result = sync_with_followups(mapping, store, once, lambda: _result(modified=2))
    assert calls == [(True, None), (False, {"n1"})]
    assert result.counts == {"inserted": 1, "modified": 3} and result.run_ids == (1, 1, 1)
    calls.clear()
    result = sync_with_followups(mapping, _Store(0), once, lambda: None)  # type: ignore[arg-type]
    assert calls == [(True, None)] and result.counts == {"inserted": 1}
    assert tried_in(store, mapping, _result()) == {"n1"}


def test_merged_counts_and_status() -> None:
    first = _result(inserted=1, skipped=4, unchanged=10)
    second = _result("failed", modified=1, skipped=4, unchanged=9)
    both = merged(first, second)
    assert both.counts == {"inserted": 1, "skipped": 4, "unchanged": 9, "modified": 1}
    assert both.status == "failed" and both.duration_s == 2.0


def test_without_drops_records_by_either_id() -> None:
    part = MappingPlan(pl.DataFrame({"record_id": ["a", "b", "c"], "nav_id": ["a", None, "c"],
                                     "crm_id": ["A", "B", None]}),
                       pl.DataFrame({"record_id": ["a", "b"], "field": ["x", "y"]}))
    kept = without(part, {"a", "B"})
    assert kept.records["record_id"].to_list() == ["c"] and kept.field_changes.height == 0
    assert without(part, ()) is part
