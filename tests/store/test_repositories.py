"""The repositories behind StateStore: same data as the flat methods, one module per family."""

from __future__ import annotations

import pytest

from nav_crm_ops.exceptions import ConfigError
from nav_crm_ops.store import (
    CacheRepository,
    CouplingRepository,
    JobRepository,
    JournalRepository,
    LeaseRepository,
    RecordFailure,
    RecordOutcomeRepository,
    RunRepository,
    StateStore,
    WatermarkRepository,
)


@pytest.fixture
def store(state_url: str):
    """A new state database, once on SQLite and once on PostgreSQL (``state_url``)."""
    with StateStore.open(state_url) as opened:
        yield opened


def test_store_exposes_one_repository_per_table_family(store: StateStore) -> None:
    assert isinstance(store.couplings, CouplingRepository)
    assert isinstance(store.outcomes, RecordOutcomeRepository)
    assert isinstance(store.runs, RunRepository)
    assert isinstance(store.journal, JournalRepository)
    assert isinstance(store.leases, LeaseRepository)
    assert isinstance(store.caches, CacheRepository)
    assert isinstance(store.sync_watermarks, WatermarkRepository)
    assert isinstance(store.jobs, JobRepository)


def test_flat_methods_and_repositories_share_the_data(store: StateStore) -> None:
    store.couple("customer", "n1", "c1")
    assert store.couplings.by_crm("CUSTOMER", "c1") == store.get_coupling_by_nav("customer", "n1")
    store.sync_watermarks.set("customer", "crm", "2026-01-01")
    assert store.watermarks("customer") == {"crm": "2026-01-01"}
    run_id = store.runs.start("customer", "to_crm")
    statuses = store.record_outcomes("customer", "to_crm", run_id=run_id, failed=[
        RecordFailure("n2", "boom 1"), RecordFailure("n3", "x", transient=True)])
    assert [s.state for s in statuses] == ["failed", "failed"]
    again = store.outcomes.apply("customer", "to_crm", succeeded=["n3"],
                                 failed=[RecordFailure("n2", "boom 2")], skip_after=2)
    assert again[0].skipped and store.record_status("customer", "n3", "to_crm") is None


def test_job_rows_insert_update_and_begin_run(store: StateStore) -> None:
    row = {"name": "Nightly", "position": 0, "kind": "notebook", "notebook": "x.ipynb",
           "status": "Ready", "created_at": "2026-01-01T00:00:00.000000Z",
           "updated_at": "2026-01-01T00:00:00.000000Z"}
    assert store.jobs.add(row) == 1
    assert store.jobs.add({**row, "name": "Second"}) == 2
    with pytest.raises(ConfigError, match="'Nightly' already exists"):
        store.jobs.add({**row, "name": "NIGHTLY"})
    assert not store.jobs.update_if_status("Nightly", "On Hold", {"next_run_at": None})
    assert store.jobs.update("Nightly", {"position": 5})
    assert [r["name"] for r in store.jobs.rows()] == ["Second", "Nightly"]
    started = store.jobs.begin_run("Nightly", "In Process", "2026-01-02T00:00:00.000000Z")
    assert started is not None and started["status"] == "In Process"
    assert started["run_count"] == 1
    assert store.jobs.begin_run("missing", "In Process", None) is None
    assert store.jobs.delete("Second") and not store.jobs.delete("Second")
