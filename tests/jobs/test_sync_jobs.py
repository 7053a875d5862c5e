"""The default job queue against the CRONUS sandbox through papermill: output notebooks,
job-log entries linked to them, inactivity holds woken by a real change, no secret written."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import polars as pl
import pytest

from nav_crm_ops import WriteOp, open_workspace
from nav_crm_ops.engine.mapping import RECOMMENDED_ORDER, MappingSet
from nav_crm_ops.jobs import (
    ERROR,
    ON_HOLD_INACTIVITY,
    READY,
    JobEntry,
    JobRun,
    JobRunner,
    init_queue,
)
from nav_crm_ops.sandbox import Sandbox
from nav_crm_ops.store.runs import RunOutcome


@pytest.fixture
def runner(workspace_dir: Path) -> Iterator[JobRunner]:
    with JobRunner(workspace_dir) as opened:
        init_queue(opened.queue, MappingSet.for_workspace(opened.config))
        yield opened


def written_text(run: JobRun) -> str:
    assert run.output_notebook is not None and run.output_html is not None
    result = run.output_notebook.with_suffix(".result.json")
    return "".join(p.read_text(encoding="utf-8")
                   for p in (run.output_notebook, run.output_html, result))


def assert_linked_to_the_job_log(runner: JobRunner, run: JobRun) -> pl.DataFrame:
    log = runner.store.runs_frame().filter(pl.col("id").is_in(list(run.run_ids)))
    assert log.height == len(run.run_ids) > 0
    assert set(log["job_name"]) == {run.job}
    assert set(log["output_path"]) == {str(run.output_notebook)}
    for name in ("inserted", "modified", "failed"):  # additive over a run's follow-up pass
        assert int(log[name].sum()) == run.counts[name]
    return log


def test_default_queue_is_one_sync_job_per_mapping_in_the_recommended_order(
        runner: JobRunner) -> None:
    entries = runner.queue.list()
    mappings = [e.mapping for e in entries]
    assert mappings[:len(RECOMMENDED_ORDER)] == list(RECOMMENDED_ORDER)
    assert [e.position for e in entries] == list(range(1, len(entries) + 1))
    customer = runner.queue.get("CUSTOMER")
    assert customer.name == "CUSTOMER - Dynamics 365 Sales synchronization job"
    assert (customer.status, customer.recurrence.every_minutes) == (READY, 30)
    assert customer.inactivity_timeout_min == 720
    again = init_queue(runner.queue, MappingSet.for_workspace(runner.config))
    assert not any(created for _, created in again)


def test_sync_jobs_leave_output_notebooks_and_job_log_entries_without_the_secret(
        runner: JobRunner, fresh_sandbox: Sandbox) -> None:
    secret = fresh_sandbox.info.client_secret.reveal()
    currency = runner.run("CURRENCY")
    customer = runner.run("CUSTOMER")
    assert currency.outcome is RunOutcome.SUCCEEDED, currency.error
    assert customer.outcome is RunOutcome.SUCCEEDED_WITH_FAILURES, customer.error
    for run in (currency, customer):
        assert secret not in written_text(run)
        assert_linked_to_the_job_log(runner, run)
        assert run.output_notebook is not None
        assert run.output_notebook.parent.parent == runner.config.root / "runs"
    assert currency.counts["inserted"] > 0
    assert customer.counts["failed"] > 0  # the dirty CRONUS records
    html = customer.output_html.read_text(encoding="utf-8")  # type: ignore[union-attr]
    assert "Failed records by cause" in html and "failed (see below)" in html
    entry = runner.queue.get("CUSTOMER")
    assert entry.status == READY and entry.last_counts == customer.counts


def only(runner: JobRunner, mapping: str) -> None:
    for entry in runner.queue.list():
        if entry.mapping != mapping:
            runner.queue.remove(entry.name)


def change_a_currency_in_business_central(workspace_dir: Path) -> None:
    with open_workspace(workspace_dir) as ws:
        nav_id = ws.store.couplings_frame("CURRENCY")["nav_id"][0]
        [outcome] = ws.connections.business_central.write(
            [WriteOp.update("currencies", nav_id, {"symbol": "¤"})])
        assert outcome.ok, outcome.error


def test_a_job_with_nothing_to_do_sleeps_and_wakes_when_a_record_changes(
        runner: JobRunner, workspace_dir: Path) -> None:
    only(runner, "CURRENCY")
    with open_workspace(workspace_dir) as ws:
        ws.sync("CURRENCY")
    idle = runner.run("CURRENCY")
    assert idle.outcome == "succeeded" and idle.changed is False
    held = runner.queue.get("CURRENCY")
    assert held.status == ON_HOLD_INACTIVITY and held.next_run_at is not None
    assert runner.run_due(held.next_run_at - timedelta(seconds=1)) == []
    change_a_currency_in_business_central(workspace_dir)
    woken = runner.run_due(held.next_run_at)
    assert [r.outcome for r in woken] == ["succeeded"]
    assert woken[0].counts["modified"] == 1 and woken[0].changed
    assert runner.queue.get("CURRENCY").status == READY


def test_a_sleeping_job_is_not_woken_when_nothing_changed(
        runner: JobRunner, workspace_dir: Path) -> None:
    only(runner, "CURRENCY")
    with open_workspace(workspace_dir) as ws:
        ws.sync("CURRENCY")
    runner.run("CURRENCY")
    held = runner.queue.get("CURRENCY")
    assert held.status == ON_HOLD_INACTIVITY and held.next_run_at is not None
    assert runner.run_due(held.next_run_at) == []  # probed: nothing changed
    still = runner.queue.get("CURRENCY")
    assert still.status == ON_HOLD_INACTIVITY and still.next_run_at is not None
    assert still.next_run_at > held.next_run_at


def test_a_failing_sync_notebook_marks_the_job_error_with_its_message(
        offline_workspace: Path) -> None:
    with JobRunner(offline_workspace) as runner:
        runner.queue.add(JobEntry(name="Typo", kind="sync", mapping="CUSTOMERS",
                                  notebook="jobs/sync_mapping.ipynb", max_attempts=1))
        run = runner.run("Typo")
        entry = runner.queue.get("Typo")
    assert run.outcome == "failed" and "MappingError" in run.error
    assert "no mapping named 'CUSTOMERS'" in entry.last_error and entry.status == ERROR
    assert run.output_notebook is not None and run.output_notebook.exists()


@pytest.mark.slow
def test_the_whole_default_queue_runs_end_to_end(runner: JobRunner,
                                                 fresh_sandbox: Sandbox) -> None:
    secret = fresh_sandbox.info.client_secret.reveal()
    runs = runner.run_all()
    assert [r.job for r in runs] == [e.name for e in runner.queue.list()]
    for run in runs:
        assert run.outcome.completed, f"{run.job}: {run.error}"
        assert secret not in written_text(run)
        if runner.queue.get(run.job).mapping:  # sync jobs; the retention job logs no run
            assert_linked_to_the_job_log(runner, run)
    assert sum(r.counts.get("failed", 0) for r in runs) > 0


def test_a_mapping_being_synchronized_elsewhere_postpones_the_job_without_an_attempt(
        offline_workspace: Path) -> None:
    with JobRunner(offline_workspace) as runner:
        runner.queue.add(JobEntry(name="Currencies", kind="sync", mapping="CURRENCY",
                                  notebook="jobs/sync_mapping.ipynb", rerun_delay_s=120))
        runner.store.acquire_lease("mapping:CURRENCY", "otherhost:9 sync CURRENCY", 60)
        run = runner.run("Currencies")
        entry = runner.queue.get("Currencies")
    assert run.outcome == "busy" and "otherhost:9 sync CURRENCY" in run.error
    assert (entry.status, entry.attempts) == (READY, 0)
    assert entry.next_run_at is not None and entry.last_finished_at is not None
    assert entry.next_run_at - entry.last_finished_at == timedelta(seconds=120)
