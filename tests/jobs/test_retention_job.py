"""The default retention job: created by ``jobs init`` after the sync jobs, daily, and run
through papermill like every job (a real kernel, the workspace's real SQLite file)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import update

from nav_crm_ops.engine.mapping import MappingSet
from nav_crm_ops.jobs import JobRunner, init_queue
from nav_crm_ops.jobs.defaults import RETENTION_JOB, RETENTION_NOTEBOOK
from nav_crm_ops.jobs.queue import READY
from nav_crm_ops.jobs.runner import notebooks_dir
from nav_crm_ops.store import StateStore
from nav_crm_ops.store.runs import RunOutcome
from nav_crm_ops.store.schema import record_errors, runs


def old_run(store: StateStore, days: int, source_id: str) -> int:
    """A finished run ``days`` old with one record error as old."""
    stamp = (datetime.now(UTC) - timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    run = store.start_run("CUSTOMER", "to_crm")
    store.add_record_error("CUSTOMER", "to_crm", "Name must not be empty", run_id=run,
                           source_id=source_id)
    store.finish_run(run, "failed", {"failed": 1})
    with store.transaction() as conn:
        conn.execute(update(runs).where(runs.c.id == run).values(finished_at=stamp))
        conn.execute(update(record_errors).where(record_errors.c.run_id == run)
                     .values(created_at=stamp))
    return run


def test_jobs_init_adds_the_daily_retention_job_after_the_sync_jobs(
        offline_workspace: Path) -> None:
    with JobRunner(offline_workspace) as runner:
        created = init_queue(runner.queue, MappingSet.for_workspace(runner.config))
        entries = runner.queue.list()
        again = init_queue(runner.queue, MappingSet.for_workspace(runner.config))
    assert [e.name for e, _ in created] == [e.name for e in entries]
    retention = entries[-1]
    assert retention.name == RETENTION_JOB and retention.kind == "notebook"
    assert retention.notebook == RETENTION_NOTEBOOK
    assert (notebooks_dir() / RETENTION_NOTEBOOK).is_file()
    assert retention.recurrence.every_minutes == 24 * 60
    assert retention.inactivity_timeout_min == 0 and retention.status == READY
    assert all(e.mapping for e in entries[:-1])  # every sync job comes first
    assert not any(created for _, created in again)


def test_the_retention_job_runs_green_through_papermill_and_purges(
        offline_workspace: Path) -> None:
    with JobRunner(offline_workspace) as runner:
        init_queue(runner.queue, MappingSet.for_workspace(runner.config))
        purged = old_run(runner.store, 100, "n1")
        kept = old_run(runner.store, 5, "n2")
        skipped = old_run(runner.store, 100, "n3")
        for _ in range(2):
            runner.store.record_failure("CUSTOMER", "n3", "to_crm", "Name must not be empty",
                                        transient=False, run_id=skipped)
        run = runner.run(RETENTION_JOB)
        assert run.outcome is RunOutcome.SUCCEEDED, run.error
        assert run.counts == {"runs": 1, "record_errors": 1, "pending_ops": 0, "alerts": 0,
                              "reconcile_runs": 0}
        assert sorted(runner.store.runs_frame()["id"].to_list()) == [kept, skipped]
        assert purged not in runner.store.record_errors_frame()["run_id"].to_list()
        job = runner.queue.get(RETENTION_JOB)
    assert job.status == READY and job.last_outcome == RunOutcome.SUCCEEDED.value
    assert run.output_notebook is not None and run.output_html is not None
    report = run.output_html.read_text(encoding="utf-8")
    assert "Retention: removed 2 row(s)" in report
    assert "older than 90 days" in report and "more than 30 days ago" in report

    with JobRunner(offline_workspace) as runner:  # nothing old left: still green, still daily
        again = runner.run(RETENTION_JOB)
        assert again.outcome is RunOutcome.SUCCEEDED, again.error
        assert again.counts == {"runs": 0, "record_errors": 0, "pending_ops": 0, "alerts": 0,
                              "reconcile_runs": 0}
        assert runner.queue.get(RETENTION_JOB).status == READY
