"""The papermill runner with small test notebooks: output notebooks, errors, timeouts,
leases, inactivity holds and two runners at once (real kernels, real SQLite)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import nbformat
from click.testing import CliRunner

from nav_crm_ops.config import load_config, write_config
from nav_crm_ops.jobs.cli import jobs
from nav_crm_ops.jobs.queue import (
    ERROR,
    ON_HOLD_INACTIVITY,
    READY,
    JobEntry,
    JobQueue,
    utc_clock,
)
from nav_crm_ops.jobs.recurrence import Recurrence
from nav_crm_ops.jobs.runner import JobRunner
from nav_crm_ops.store import StateStore


def add_job(workspace: Path, name: str, notebook: Path, **changes: object) -> JobEntry:
    entry = replace(JobEntry(name=name, kind="notebook", notebook=str(notebook),
                             recurrence=Recurrence(every_minutes=30)), **changes)  # type: ignore[arg-type]
    with StateStore.open(load_config(workspace).state_url) as store:
        return JobQueue(store).add(entry)


def test_passing_notebook_saves_output_html_and_schedules_next(
        offline_workspace: Path, test_notebooks: Path) -> None:
    add_job(offline_workspace, "Nightly check", test_notebooks / "passing.ipynb",
            parameters={"changed": True, "use_helper": True})
    with JobRunner(offline_workspace) as runner:
        run = runner.run("nightly check")
        entry = runner.queue.get("Nightly check")
    assert run.outcome == "succeeded" and run.error == ""
    assert run.output_notebook is not None and run.output_html is not None
    day = utc_clock().strftime("%Y-%m-%d")
    assert run.output_notebook == offline_workspace / "runs" / day / "nightly-check-1.ipynb"
    assert run.output_html.read_text(encoding="utf-8").count("test job done") >= 1
    executed = nbformat.read(run.output_notebook, as_version=4)
    injected = [c for c in executed.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert injected and "job_name = \"Nightly check\"" in injected[0].source
    assert run.counts == {"inserted": 2, "unchanged": 5} and run.changed is True
    assert entry.status == READY and entry.run_count == 1 and entry.attempts == 0
    assert entry.last_output == str(run.output_notebook)
    assert entry.last_counts == run.counts and entry.last_outcome == "succeeded"
    assert entry.next_run_at is not None and entry.last_run_at is not None
    assert entry.next_run_at - entry.last_run_at == timedelta(minutes=30)


def test_failing_cell_retries_then_errors_with_the_notebooks_message(
        offline_workspace: Path, test_notebooks: Path) -> None:
    add_job(offline_workspace, "Broken", test_notebooks / "failing.ipynb", max_attempts=2,
            rerun_delay_s=0)
    with JobRunner(offline_workspace) as runner:
        first = runner.run("Broken")
        after_first = runner.queue.get("Broken")
        second = runner.run_due()
        entry = runner.queue.get("Broken")
    assert first.outcome == "failed"
    assert "RuntimeError: injected failure: the CRM refused the batch" in first.error
    assert (after_first.status, after_first.attempts) == (READY, 1)
    assert [r.outcome for r in second] == ["failed"]
    assert (entry.status, entry.attempts) == (ERROR, 2)
    assert "injected failure" in entry.last_error
    assert first.output_notebook is not None and first.output_notebook.exists()
    assert second[0].output_notebook is not None and second[0].output_notebook.name == "broken-2.ipynb"
    saved = nbformat.read(first.output_notebook, as_version=4)
    errors = [o for c in saved.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert errors and errors[0]["ename"] == "RuntimeError"
    assert first.output_html is not None and "injected failure" in first.output_html.read_text(
        encoding="utf-8")


def test_hung_kernel_is_stopped_by_the_timeout(
        offline_workspace: Path, test_notebooks: Path, tmp_path: Path) -> None:
    pid_path = tmp_path / "kernel.pid"
    add_job(offline_workspace, "Hangs", test_notebooks / "hanging.ipynb",
            execution_timeout_s=2, max_attempts=1, parameters={"pid_path": str(pid_path)})
    started = time.monotonic()
    with JobRunner(offline_workspace) as runner:
        run = runner.run("Hangs")
        entry = runner.queue.get("Hangs")
    assert time.monotonic() - started < 30
    assert run.outcome == "timeout" and "execution timeout (2 s)" in run.error
    assert entry.status == ERROR and "execution timeout" in entry.last_error
    assert run.output_notebook is not None and run.output_notebook.exists()
    kernel_pid = int(pid_path.read_text())
    deadline = time.monotonic() + 10
    while _alive(kernel_pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(kernel_pid), "the hung kernel is still running"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/status")
    return not (status.exists() and "zombie" in status.read_text())


def test_held_lease_skips_and_names_the_holder_expired_lease_is_taken_over(
        offline_workspace: Path, test_notebooks: Path) -> None:
    add_job(offline_workspace, "Leased", test_notebooks / "passing.ipynb")
    with JobRunner(offline_workspace) as runner:
        runner.store.acquire_lease("job:Leased", "otherhost:4242 jobs run", 60)
        skipped = runner.run("Leased")
        assert skipped.outcome == "skipped"
        assert "otherhost:4242 jobs run" in skipped.message
        assert runner.queue.get("Leased").run_count == 0
        runner.store.release_lease("job:Leased", "otherhost:4242 jobs run")
        runner.store.acquire_lease("job:Leased", "deadhost:1 jobs run", 0.2)
        time.sleep(0.3)
        taken = runner.run("Leased")
        assert taken.outcome == "succeeded"
        assert runner.store.lease("job:Leased") is None


def test_job_left_in_process_by_a_dead_runner_counts_as_a_failed_attempt(
        offline_workspace: Path, test_notebooks: Path) -> None:
    add_job(offline_workspace, "Orphan", test_notebooks / "passing.ipynb")
    with JobRunner(offline_workspace) as runner:
        runner.store.acquire_lease("job:Orphan", "deadhost:1 jobs run", 0.2)
        runner.queue.begin_run("Orphan", utc_clock())
        time.sleep(0.3)
        assert runner.recover_stale() == ["Orphan"]
        entry = runner.queue.get("Orphan")
    assert (entry.status, entry.attempts) == (READY, 1)
    assert "stopped without finishing" in entry.last_error


def test_nothing_changed_holds_the_job_until_changes_or_timeout(
        offline_workspace: Path, test_notebooks: Path) -> None:
    add_job(offline_workspace, "Idle", test_notebooks / "passing.ipynb",
            parameters={"changed": False}, inactivity_timeout_min=60,
            recurrence=Recurrence(every_minutes=5))
    probed: list[str] = []
    answers = iter([False, True])

    def probe(entry: JobEntry) -> bool:
        probed.append(entry.name)
        return next(answers)

    with JobRunner(offline_workspace, probe=probe) as runner:
        first = runner.run("Idle")
        held = runner.queue.get("Idle")
        assert first.changed is False and held.status == ON_HOLD_INACTIVITY
        assert held.next_run_at is not None
        assert runner.run_due(held.next_run_at - timedelta(seconds=1)) == []
        assert probed == []  # not even probed before its next run time
        assert runner.run_due(held.next_run_at) == []  # probe: no changes
        still = runner.queue.get("Idle")
        assert still.status == ON_HOLD_INACTIVITY and still.next_run_at is not None
        assert still.next_run_at > held.next_run_at
        woken = runner.run_due(still.next_run_at)  # probe: changes on a side
        assert [r.outcome for r in woken] == ["succeeded"] and probed == ["Idle", "Idle"]
        slept = runner.queue.get("Idle")
        assert slept.on_hold_since is not None and slept.next_run_at is not None
        timed_out = runner.run_due(slept.on_hold_since + timedelta(minutes=60))
        assert [r.outcome for r in timed_out] == ["succeeded"]
        assert len(probed) == 2  # the timeout wakes it without asking


def test_two_runners_never_run_the_same_job_twice(
        offline_workspace: Path, test_notebooks: Path, tmp_path: Path) -> None:
    marker = tmp_path / "marker.txt"
    add_job(offline_workspace, "Once", test_notebooks / "passing.ipynb",
            parameters={"sleep_s": 1.0, "marker_path": str(marker)})
    command = [sys.executable, "-m", "nav_crm_ops.jobs", "run", "--due", "--json",
               "--workspace", str(offline_workspace)]
    processes = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=120) for p in processes]
    assert [p.returncode for p in processes] == [0, 0], [o[1][-2000:] for o in outputs]
    runs = [run for out, _ in outputs for run in json.loads(out)]
    starts = [line for line in marker.read_text().splitlines() if line.startswith("start")]
    assert len(starts) == 1
    assert sorted(r["outcome"] for r in runs if r["outcome"] != "skipped") == ["succeeded"]
    skipped = [r for r in runs if r["outcome"] == "skipped"]
    # the skip names the other runner: its lease holder, or (PostgreSQL: its claim holds the
    # job's row, SKIP LOCKED passes over it) that it is starting the job
    assert all("jobs run" in r["message"] or "already ran" in r["message"]
               or "another runner is starting it" in r["message"] for r in skipped), skipped


def test_two_runners_on_a_named_job_one_skips_saying_who_runs_it(
        offline_workspace: Path, test_notebooks: Path, tmp_path: Path) -> None:
    marker = tmp_path / "marker.txt"
    add_job(offline_workspace, "Named", test_notebooks / "passing.ipynb",
            parameters={"sleep_s": 3.0, "marker_path": str(marker)})
    command = [sys.executable, "-m", "nav_crm_ops.jobs", "run", "Named",
               "--workspace", str(offline_workspace)]
    first = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    second = CliRunner().invoke(jobs, ["run", "Named", "--workspace", str(offline_workspace)])
    _, err = first.communicate(timeout=120)
    assert first.returncode == 0, err[-2000:]
    assert second.exit_code == 4, second.output
    assert "is being run by" in second.output and "jobs run" in second.output
    assert f":{first.pid} #" in second.output
    assert len([x for x in marker.read_text().splitlines() if x.startswith("start")]) == 1


def test_relative_notebook_is_found_in_the_workspace(
        offline_workspace: Path, test_notebooks: Path) -> None:
    notebook = "passing.ipynb"
    (offline_workspace / "mine").mkdir()
    (offline_workspace / "mine" / notebook).write_bytes((test_notebooks / notebook).read_bytes())
    add_job(offline_workspace, "Mine", Path("mine") / notebook)
    with JobRunner(offline_workspace) as runner:
        assert runner.run("Mine").outcome == "succeeded"


def test_loop_runs_due_jobs_each_round(offline_workspace: Path, test_notebooks: Path) -> None:
    add_job(offline_workspace, "Looped", test_notebooks / "passing.ipynb")
    with JobRunner(offline_workspace) as runner:
        runs = runner.run_loop(0.1, iterations=2)
        entry = runner.queue.get("Looped")
    assert [r.outcome for r in runs] == ["succeeded"]  # the second round found nothing due
    assert entry.run_count == 1 and entry.next_run_at is not None


def test_a_missing_notebook_fails_that_job_and_the_others_still_run(
        offline_workspace: Path, test_notebooks: Path) -> None:
    add_job(offline_workspace, "Gone", Path("nowhere/missing.ipynb"), max_attempts=1)
    add_job(offline_workspace, "Next", test_notebooks / "failing.ipynb", max_attempts=1)
    with JobRunner(offline_workspace) as runner:
        runs = runner.run_due()
        gone = runner.queue.get("Gone")
    assert [(r.job, r.outcome) for r in runs] == [("Gone", "failed"), ("Next", "failed")]
    assert gone.status == ERROR and "missing.ipynb" in gone.last_error
    assert "jobs set NAME --notebook" in gone.last_error
    assert "injected failure" in runs[1].error


def test_a_parameter_holding_a_configured_secret_fails_the_run_before_papermill(
        offline_workspace: Path, test_notebooks: Path, monkeypatch: object) -> None:
    """A job stored before its value became the client secret (or by a script that skipped
    the CLI): the runner refuses to start it, so no output notebook or HTML holds the secret."""
    import pytest

    secret = "s3cr3t-value-of-the-app"
    add_job(offline_workspace, "Leaky", test_notebooks / "passing.ipynb",
            parameters={"note": f"pw {secret}", "changed": True})
    assert isinstance(monkeypatch, pytest.MonkeyPatch)
    monkeypatch.setenv("NAV_CRM_OPS_TEST_UNUSED_SECRET", secret)
    with JobRunner(offline_workspace) as runner:
        run = runner.run("Leaky")
        entry = runner.queue.get("Leaky")
    assert run.outcome == "failed" and run.output_notebook is None
    assert "parameter 'note' holds the client secret of dataverse.auth " \
           "(NAV_CRM_OPS_TEST_UNUSED_SECRET)" in run.error and secret not in run.error
    assert entry.last_outcome == "failed" and secret not in entry.last_error
    assert not (offline_workspace / "runs").exists() or not any(
        p.is_file() for p in (offline_workspace / "runs").rglob("*"))


def test_a_job_that_keeps_failing_raises_an_alert_after_it_settles(
        offline_workspace: Path, test_notebooks: Path) -> None:
    """The runner evaluates the alert rules after each job: a job without a successful run
    for longer than ``[alerts] job_stale_hours`` is reported once, on the runner's output."""
    config = load_config(offline_workspace)
    stale = config.alerts.model_copy(update={"job_stale_hours": 0.0005})  # 1.8 s
    write_config(config.model_copy(update={"alerts": stale}), offline_workspace)
    add_job(offline_workspace, "Broken", test_notebooks / "failing.ipynb", max_attempts=5,
            rerun_delay_s=0)
    said: list[str] = []
    time.sleep(2.0)
    with JobRunner(offline_workspace, echo=said.append) as runner:
        runner.run("Broken")
        runner.run("Broken")
        alerts = runner.store.alerts.frame()
    raised = [line for line in said if line.startswith("alert: ")]
    assert len(raised) == 1, said  # the second failure finds the alert open: not again
    assert "job Broken has not succeeded" in raised[0] and "last run: failed" in raised[0]
    assert alerts["rule"].to_list() == ["job_not_succeeded"]
    assert alerts["seen_count"].to_list() == [2]
