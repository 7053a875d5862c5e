"""The change history (``store.history``) on SQLite and on the private PostgreSQL server
(``state_url``): rows of a chunk stored in one statement and read back per run, scoped to the
company, and purged by retention with their runs."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from nav_crm_ops.store import StateStore
from nav_crm_ops.store.history import HistoryRepository
from nav_crm_ops.store.retention import RetentionPolicy, purge_old


@pytest.fixture
def store(state_url: str) -> Iterator[StateStore]:
    with StateStore.open(state_url, company="CRONUS") as opened:
        yield opened


def _rows(run_id: int, count: int) -> list[tuple[object, ...]]:
    return [(run_id, "customer", "crm", f"n{i}", f"c{i}", "name", f"Old {i}", f"OLD {i}",
             f'W/"{i}"', False) for i in range(count)] + [
        (run_id, "CUSTOMER", "crm", "n-new", "c-new", None, None, None, 'W/"9"', True)]


def test_rows_are_kept_per_run_and_company(store: StateStore, state_url: str) -> None:
    history = HistoryRepository.of(store)
    run_id = store.start_run("CUSTOMER", "to_crm")
    store.finish_run(run_id, "finished")
    assert history.record(_rows(run_id, 700)) == 701  # more than one IN-list chunk's worth
    frame = history.of_run(run_id)
    assert frame.height == 701 == history.count(run_id)
    assert frame["mapping"].unique().to_list() == ["CUSTOMER"]
    assert frame.row(0, named=True) | {"id": 0} == {
        "id": 0, "run_id": run_id, "mapping": "CUSTOMER", "target": "crm", "nav_id": "n0",
        "crm_id": "c0", "field": "name", "old_value": "Old 0", "new_value": "OLD 0",
        "version": 'W/"0"', "created": False}
    assert frame.filter(frame["created"])["field"].to_list() == [None]
    assert history.run(run_id)["kind"] == "sync"  # type: ignore[index]
    assert history.run(run_id + 1000) is None
    with StateStore.open(state_url, company="CRONUS UK") as other:
        assert HistoryRepository.of(other).of_run(run_id).height == 0
        assert HistoryRepository.of(other).run(run_id) is None


def test_retention_purges_history_with_its_runs(store: StateStore) -> None:
    history = HistoryRepository.of(store)
    old, new = (store.start_run("CUSTOMER", "to_crm") for _ in range(2))
    for run_id in (old, new):
        store.finish_run(run_id, "finished")
        history.record(_rows(run_id, 3))
    later = datetime.now(UTC) + timedelta(days=200)
    purge_old(store, RetentionPolicy(), dry_run=True, now=later)
    assert history.count(old) == 4  # a dry run removes nothing
    store.runs.purge("0000", dry_run=False)  # nothing that old: both runs stay
    assert history.purge_orphans() == 0
    purge_old(store, RetentionPolicy(), now=later)
    assert history.count(old) == 0 and history.count(new) == 0
