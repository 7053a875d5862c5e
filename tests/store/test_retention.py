"""Retention on a real database (SQLite file and PostgreSQL): old runs, resolved record errors and settled journal
writes are purged; newer rows, errors of records still failing or skipped (and their runs) and
unfinished journal writes are kept; a dry run removes nothing; bad ``[retention]`` days exit 2."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Table, update

from nav_crm_ops.config import (
    load_config,
)
from nav_crm_ops.exceptions import StateStoreError
from nav_crm_ops.store import StateStore
from nav_crm_ops.store.base import CHUNK
from nav_crm_ops.store.retention import PurgeCounts, RetentionPolicy, purge_old
from nav_crm_ops.store.schema import pending_ops, record_errors, runs


@pytest.fixture
def store(state_url: str) -> Iterator[StateStore]:
    """A new state database: a real SQLite file, and a PostgreSQL database (conftest)."""
    with StateStore.open(state_url) as opened:
        yield opened


def days_ago(days: float) -> str:
    return (datetime.now(UTC) - timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def age(store: StateStore, table: Table, column: str, days: float, *where: Any) -> None:
    """Make rows look ``days`` old (the store only ever stamps "now")."""
    with store.transaction() as conn:
        conn.execute(update(table).where(*where).values({column: days_ago(days)}))


def finished_run(store: StateStore, days: float, *, source_id: str | None = None) -> int:
    """A finished run ``days`` old with one record error (of ``source_id``) as old."""
    run = store.start_run("CUSTOMER", "to_crm")
    store.add_record_error("CUSTOMER", "to_crm", "Name must not be empty", run_id=run,
                           source_id=source_id, payload={"name": ""}, response={"error": 1})
    store.finish_run(run, "failed", {"failed": 1})
    age(store, runs, "finished_at", days, runs.c.id == run)
    age(store, record_errors, "created_at", days, record_errors.c.run_id == run)
    return run


def error_runs(store: StateStore) -> list[int]:
    return sorted(store.record_errors_frame()["run_id"].to_list())


def test_old_rows_are_purged_newer_kept_and_a_dry_run_removes_nothing(
        store: StateStore) -> None:
    old = finished_run(store, 100, source_id="n1")
    middle = finished_run(store, 40, source_id="n2")
    new = finished_run(store, 10, source_id="n3")
    ops = [{"op_id": f"p:{i}", "kind": "update", "target": "crm", "record_key": f"c{i}",
            "payload": {"i": i}} for i in range(6)]
    store.journal_ops(new, "CUSTOMER", ops)
    for op_id, state in (("p:0", "done"), ("p:1", "failed"), ("p:2", "done"), ("p:3", "sent")):
        store.mark_ops([op_id], state)
    age(store, pending_ops, "updated_at", 8, pending_ops.c.op_id.in_(["p:0", "p:1", "p:3", "p:4"]))
    age(store, pending_ops, "updated_at", 6, pending_ops.c.op_id == "p:2")
    expected = PurgeCounts(runs=1, record_errors=2, pending_ops=2)

    dry = purge_old(store, RetentionPolicy(), dry_run=True)
    assert dry == PurgeCounts(runs=1, record_errors=2, pending_ops=2, dry_run=True)
    assert len(store.runs_frame()) == 3 and len(store.record_errors_frame()) == 3
    assert len(store.pending_ops_frame(states=("pending", "sent", "done", "failed"))) == 6

    assert purge_old(store, RetentionPolicy()) == expected
    assert sorted(store.runs_frame()["id"].to_list()) == [middle, new]
    assert error_runs(store) == [new]
    left = store.pending_ops_frame(states=("pending", "sent", "done", "failed"))
    assert sorted(left["op_id"].to_list()) == ["p:2", "p:3", "p:4", "p:5"]  # young or unsettled
    assert old not in store.runs_frame()["id"].to_list()
    assert purge_old(store, RetentionPolicy()) == PurgeCounts()


def test_shorter_days_purge_more(store: StateStore) -> None:
    finished_run(store, 10)
    finished_run(store, 3)
    counts = purge_old(store, RetentionPolicy(runs_days=5, resolved_errors_days=2))
    assert (counts.runs, counts.record_errors) == (1, 2)
    assert len(store.runs_frame()) == 1 and store.record_errors_frame().height == 0


def test_skipped_records_errors_are_kept_until_unskipped_synced_and_old(
        store: StateStore) -> None:
    runs_of_n1 = [finished_run(store, 200, source_id="n1") for _ in range(2)]
    for run in runs_of_n1:
        store.record_failure("CUSTOMER", "n1", "to_crm", "Name must not be empty",
                             transient=False, run_id=run)
    assert store.record_status("CUSTOMER", "n1", "to_crm").skipped
    resolved = finished_run(store, 200, source_id="n2")

    assert purge_old(store) == PurgeCounts(runs=1, record_errors=1)
    assert sorted(store.runs_frame()["id"].to_list()) == runs_of_n1
    assert error_runs(store) == runs_of_n1
    assert resolved not in store.runs_frame()["id"].to_list()

    store.unskip("CUSTOMER", ["n1"])  # back in the retry pass: someone is looking at it
    assert purge_old(store) == PurgeCounts()
    assert error_runs(store) == runs_of_n1

    store.record_success("CUSTOMER", "n1", "to_crm")  # synced: its errors are resolved now
    assert purge_old(store) == PurgeCounts(runs=2, record_errors=2)
    assert store.runs_frame().height == 0 and store.record_errors_frame().height == 0


def test_errors_of_records_in_the_retry_pass_and_their_runs_are_kept(
        store: StateStore) -> None:
    failing = finished_run(store, 120, source_id="n1")
    store.record_failure("CUSTOMER", "n1", "to_crm", "Name must not be empty",
                         transient=True, run_id=failing)
    later = finished_run(store, 100, source_id="n1")  # the record's status points elsewhere
    other_direction = finished_run(store, 100, source_id="n1")
    with store.transaction() as conn:
        conn.execute(update(record_errors).where(record_errors.c.run_id == other_direction)
                     .values(direction="from_crm"))
    assert store.record_status("CUSTOMER", "n1", "to_crm").state == "failed"

    assert purge_old(store) == PurgeCounts(runs=1, record_errors=1)
    assert sorted(store.runs_frame()["id"].to_list()) == [failing, later]
    assert error_runs(store) == [failing, later]


def test_large_tables_are_purged_in_chunks(store: StateStore) -> None:
    rows = [{"mapping": "CUSTOMER", "direction": "to_crm", "message": "Name must not be empty",
             "source_id": f"n{i}", "payload": {"big": "x" * 100}} for i in range(CHUNK * 2 + 7)]
    store.add_record_errors(rows)
    age(store, record_errors, "created_at", 31)
    store.record_failure("CUSTOMER", "n5", "to_crm", "Name must not be empty", transient=False)
    assert purge_old(store, dry_run=True).record_errors == CHUNK * 2 + 6
    assert purge_old(store).record_errors == CHUNK * 2 + 6
    assert store.record_errors_frame()["source_id"].to_list() == ["n5"]


def test_unsettled_journal_states_and_bad_days_are_refused(store: StateStore) -> None:
    with pytest.raises(StateStoreError, match=r"\['pending', 'sent'\] are not settled"):
        store.journal.purge(states=("done", "sent", "pending"))
    with pytest.raises(StateStoreError, match="at least 1"):
        RetentionPolicy(runs_days=0)


# -- the command line ------------------------------------------------------------------------


def test_cli_purge_dry_run_json_then_purge(offline_workspace: Path, cli: Any) -> None:
    workspace = offline_workspace
    with StateStore.open(load_config(workspace).state_url) as opened:  # its company
        finished_run(opened, 100, source_id="n1")
        kept = finished_run(opened, 1, source_id="n2")

    code, out, err = cli("purge", "--dry-run", "--json", "-w", str(workspace))
    assert code == 0, err
    assert json.loads(out) == {
        "dry_run": True, "tables": {"runs": 1, "record_errors": 1, "pending_ops": 0,
                                     "alerts": 0, "reconcile_runs": 0},
        "total": 2, "policy": {"runs_days": 90, "resolved_errors_days": 30, "journal_days": 7}}
    with StateStore.open(load_config(workspace).state_url) as opened:  # its company
        assert opened.runs_frame().height == 2

    code, out, err = cli("purge", "-w", str(workspace))
    assert code == 0, err
    assert "runs           removed 1" in out and "record_errors  removed 1" in out
    with StateStore.open(load_config(workspace).state_url) as opened:  # its company
        assert opened.runs_frame()["id"].to_list() == [kept]


@pytest.mark.parametrize("line", ["runs_days = 0", "resolved_errors_days = -3",
                                  'journal_days = "7"'])
def test_bad_retention_config_exits_2_saying_what_to_write(offline_workspace: Path, cli: Any,
                                                          line: str) -> None:
    workspace = offline_workspace
    path = workspace / "nav_crm_ops.toml"
    text = path.read_text(encoding="utf-8")
    key = line.split(" = ")[0]
    default = {"runs_days": 90, "resolved_errors_days": 30, "journal_days": 7}[key]
    assert f"{key} = {default}\n" in text
    path.write_text(text.replace(f"{key} = {default}\n", f"{line}\n"), encoding="utf-8")
    code, _, err = cli("purge", "-w", str(workspace))
    assert code == 2
    assert f"retention.{key}:" in err
    assert "at least 1" in err or "whole number" in err


def test_resolved_alerts_are_purged_with_the_runs_open_ones_stay(store: StateStore) -> None:
    from nav_crm_ops.engine.alerts import AlertRule, Finding
    from nav_crm_ops.store.schema import alerts

    def finding(subject: str) -> Finding:
        return Finding(AlertRule.CONFLICT_BACKLOG, subject, f"{subject}: 30 held conflicts",
                       "the preview dashboard")

    store.alerts.record([finding("CUSTOMER"), finding("CONTACT"), finding("ITEM")])
    store.alerts.record([finding("ITEM")])  # CUSTOMER and CONTACT cleared
    age(store, alerts, "resolved_at", 100, alerts.c.subject == "CUSTOMER")
    age(store, alerts, "first_seen", 200, alerts.c.subject == "ITEM")  # old, still open
    assert purge_old(store, dry_run=True) == PurgeCounts(alerts=1, dry_run=True)
    assert purge_old(store) == PurgeCounts(alerts=1)
    left = store.alerts.frame(state=None)
    assert sorted(zip(left["subject"], left["state"], strict=True)) == [
        ("CONTACT", "resolved"), ("ITEM", "open")]


def test_old_drift_checks_are_purged_but_each_mappings_newest_stays(store: StateStore) -> None:
    from nav_crm_ops.store.schema import reconcile_runs

    def check(mapping: str) -> int:
        return store.reconcile_runs.record({
            "mapping": mapping, "started_at": days_ago(0), "requests": 2, "pages": 1,
            "duration_s": 0.5, "counts": {"in_step": 10, "missed": 1}})

    old_customer, new_customer = check("CUSTOMER"), check("CUSTOMER")
    only_contact = check("CONTACT")
    age(store, reconcile_runs, "finished_at", 200,
        reconcile_runs.c.id.in_([old_customer, new_customer, only_contact]))
    assert purge_old(store, dry_run=True) == PurgeCounts(reconcile_runs=1, dry_run=True)
    assert purge_old(store) == PurgeCounts(reconcile_runs=1)
    assert store.reconcile_runs.latest("CUSTOMER")["id"] == new_customer  # type: ignore[index]
    assert store.reconcile_runs.latest("CONTACT")["id"] == only_contact  # type: ignore[index]
