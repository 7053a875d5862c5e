"""Several ``jobs run --loop`` runner processes on one queue (issue #19, item 3): no job runs
twice at once, no job starts while a job it depends on runs or is due, every due job runs.

Real runner processes (``python -m nav_crm_ops.jobs run --loop``) on the same state database,
once on SQLite (the write lock serializes claims) and once on the session's private PostgreSQL
server (``FOR UPDATE SKIP LOCKED``). The jobs are the light test notebook (it sleeps and
writes start/end times to a marker file of its own) carrying the default mappings' names, so
their dependencies are the real ``depends_on`` graph: CONTACT → CUSTOMER → CURRENCY and
SALESPEOPLE, ITEM-PRODUCT → UNIT OF MEASURE. The queue lists dependents first, so runners
taking jobs in queue order would break the order without the claim's check.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nav_crm_ops.config import load_config
from nav_crm_ops.jobs.queue import FINISHED, JobEntry, JobQueue
from nav_crm_ops.jobs.recurrence import Recurrence
from nav_crm_ops.store import StateStore
from tests.pg import use_state_database

pytestmark = pytest.mark.timeout(300)

JOBS = ("CONTACT", "CUSTOMER", "ITEM-PRODUCT", "CURRENCY", "SALESPEOPLE", "UNIT OF MEASURE")
DEPENDS_ON = {"CONTACT": {"CUSTOMER", "CURRENCY", "SALESPEOPLE"},
              "CUSTOMER": {"CURRENCY", "SALESPEOPLE"}, "ITEM-PRODUCT": {"UNIT OF MEASURE"}}
"""What the default mappings say, transitively (the test's own statement of it)."""


def _queue(workspace: Path, notebook: Path, markers: Path) -> None:
    with StateStore.open(load_config(workspace).state_url) as store:
        queue = JobQueue(store)
        for name in (*JOBS, "Unrelated"):
            queue.add(JobEntry(
                name=name, kind="notebook", notebook=str(notebook),
                mapping="" if name == "Unrelated" else name,
                recurrence=Recurrence(every_minutes=None),
                parameters={"sleep_s": 1.5, "marker_path": str(markers / f"{name}.txt")}))


def _intervals(markers: Path) -> dict[str, list[tuple[float, float]]]:
    """Each job's runs as (start, end) times from its marker file."""
    found: dict[str, list[tuple[float, float]]] = {}
    for path in markers.glob("*.txt"):
        lines = [line.split() for line in path.read_text().splitlines()]
        starts = [float(p[2]) for p in lines if p[0] == "start"]
        ends = [float(p[2]) for p in lines if p[0] == "end"]
        found[path.stem] = list(zip(starts, ends, strict=True))
    return found


def _wait_until_finished(workspace: Path, names: set[str], timeout_s: float) -> list[JobEntry]:
    deadline = time.monotonic() + timeout_s
    with StateStore.open(load_config(workspace).state_url) as store:
        while True:
            jobs = JobQueue(store).list()
            if all(j.status == FINISHED for j in jobs if j.name in names):
                return jobs
            if time.monotonic() > deadline:
                return jobs
            time.sleep(0.5)


@pytest.mark.parametrize("state_url", ["sqlite", "postgresql"], indirect=True)
def test_three_loop_runners_share_the_queue_in_dependency_order(
        offline_workspace: Path, state_url: str, test_notebooks: Path, tmp_path: Path) -> None:
    workspace = use_state_database(offline_workspace, state_url)
    markers = tmp_path / "markers"
    markers.mkdir()
    _queue(workspace, test_notebooks / "passing.ipynb", markers)
    command = [sys.executable, "-m", "nav_crm_ops.jobs", "run", "--loop", "--interval", "1",
               "--workspace", str(workspace)]
    runners = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
               for _ in range(3)]
    try:
        jobs = _wait_until_finished(workspace, {*JOBS, "Unrelated"}, timeout_s=100)
    finally:
        for runner in runners:
            runner.send_signal(signal.SIGINT)
        outputs = [runner.communicate(timeout=60)[0] for runner in runners]
    logs = "\n".join(outputs)[-6000:]
    assert {j.name: j.status for j in jobs} == {n: FINISHED for n in (*JOBS, "Unrelated")}, logs
    assert all(j.run_count == 1 and j.last_outcome == "succeeded" for j in jobs), logs

    runs = _intervals(markers)
    assert {name: len(r) for name, r in runs.items()} == {n: 1 for n in (*JOBS, "Unrelated")}
    start = {name: r[0][0] for name, r in runs.items()}
    end = {name: r[0][1] for name, r in runs.items()}
    for job, deps in DEPENDS_ON.items():
        for dep in deps:  # every dependency was due at the start: it ran first, and ended
            assert end[dep] <= start[job], (job, dep, runs, logs)
    ran_together = sum(1 for a in runs for b in runs
                       if a < b and start[a] < end[b] and start[b] < end[a])
    assert ran_together >= 1, ("the runners never worked at the same time", runs, logs)
    refused = [line for line in logs.splitlines() if "depends on" in line]
    assert all("skipped" in line for line in refused)
