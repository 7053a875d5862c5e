"""Apply's bookkeeping of records without writes, against a state database and no service:
new couplings of matched pairs, held conflicts, planned failures, skips and deletion
conflicts (``Ledger.settle_other_records`` on an :class:`ApplyRun`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from nav_crm_ops.engine.mapping import MappingSet, TableMapping
from nav_crm_ops.engine.sync.ledger import Ledger
from nav_crm_ops.engine.sync.run import ApplyRun, DirectionTally
from nav_crm_ops.store import StateStore


def _mapping(**overrides: Any) -> TableMapping:
    entry: dict[str, Any] = {
        "name": "T", "direction": "bidirectional",
        "nav": {"entity": "customers", "natural_key": "number"},
        "crm": {"entity": "accounts", "logical_name": "account", "key": "accountid"},
        "fields": [{"nav": "displayName", "crm": "name"}],
    }
    entry.update(overrides)
    return MappingSet.from_entries([entry]).get("T")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[StateStore]:
    opened = StateStore.open(tmp_path / "state.db")
    yield opened
    opened.close()


def _run(store: StateStore, mapping: TableMapping, rows: list[dict[str, Any]],
         changes: pl.DataFrame | None = None) -> ApplyRun:
    records = pl.DataFrame(rows, schema={"record_id": pl.Utf8, "nav_id": pl.Utf8,
                                         "crm_id": pl.Utf8, "nav_key": pl.Utf8,
                                         "crm_key": pl.Utf8, "action": pl.Utf8,
                                         "direction": pl.Utf8, "message": pl.Utf8,
                                         "nav_version": pl.Utf8, "crm_version": pl.Utf8})
    if changes is None:
        changes = pl.DataFrame(schema={"record_id": pl.Utf8, "field": pl.Utf8,
                                       "new_value": pl.Utf8, "resolution": pl.Utf8,
                                       "nav_value": pl.Utf8, "crm_value": pl.Utf8})
    tallies = {d: DirectionTally(store.start_run(mapping.name, d, "sync"))
               for d in mapping.directions}
    return ApplyRun(mapping, "plan", records, changes, tallies)


def _row(record_id: str, action: str, message: str | None = None,
         crm_id: str | None = None) -> dict[str, Any]:
    return {"record_id": record_id, "nav_id": record_id, "crm_id": crm_id or record_id.upper(),
            "action": action, "message": message, "nav_key": f"K{record_id}"}


def test_matched_pair_without_writes_is_coupled_with_its_base(store: StateStore) -> None:
    mapping = _mapping()
    changes = pl.DataFrame({"record_id": ["n1"], "field": ["name"], "new_value": ["Adatum"],
                            "resolution": ["same_value"], "nav_value": ["Adatum"],
                            "crm_value": ["Adatum"]})
    run = _run(store, mapping, [_row("n1", "unchanged")], changes)
    Ledger(store).settle_other_records(
        run)
    coupling = store.get_coupling_by_nav("T", "n1")
    assert coupling is not None and coupling.crm_id == "N1"
    assert coupling.base_values == {"name": "Adatum"}
    assert run.first.counts == {"coupled": 1, "skipped": 0}


def test_conflicts_failures_skips_and_deletions(store: StateStore) -> None:
    mapping = _mapping(deletion_conflict="none")
    run = _run(store, mapping, [
        _row("c1", "conflict", "name: NAV 'a', CRM 'b'"),
        _row("f1", "fail", "no option"),
        {**_row("f2", "fail", "ambiguous"), "nav_id": None, "crm_id": "f2"},
        _row("s1", "skip", "only coupled"),
        _row("d1", "deletion_conflict", "the coupled BC record no longer exists"),
    ])
    Ledger(store).settle_other_records(
        run)
    assert run.tallies["to_crm"].counts == {"conflicts": 1, "failed": 2, "skipped": 1}
    assert run.tallies["from_crm"].counts == {"failed": 1}
    status = store.record_status_frame("T").select("source_id", "direction", "state")
    assert sorted(status.rows()) == [("c1", "to_crm", "conflict"), ("d1", "to_crm", "failed"),
                                     ("f1", "to_crm", "failed"), ("f2", "from_crm", "failed")]
    errors = store.record_errors_frame("T")
    assert "conflict: name: NAV 'a', CRM 'b'" in errors["message"].to_list()


def test_remove_coupling_policy_uncouples(store: StateStore) -> None:
    mapping = _mapping(deletion_conflict="remove_coupling")
    store.upsert_couplings("T", [{"nav_id": "d1", "crm_id": "D1", "base_values": {}}])
    run = _run(store, mapping, [_row("d1", "deletion_conflict", "gone")])
    Ledger(store).settle_other_records(
        run)
    assert store.get_coupling_by_nav("T", "d1") is None
    assert run.first.counts["uncoupled"] == 1
