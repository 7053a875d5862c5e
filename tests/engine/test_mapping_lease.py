"""The mapping lease under long work (issue #19, item 4), against the sandbox over loopback HTTP.

A heartbeat keeps the lease through reads that report nothing for longer than its lifetime
(the sandbox's ``slow`` fault delays every request); a lease another holder takes mid-run stops
the sync at the next safe point with LeaseLostError, the run recorded (cancelled), nothing
half-written and the other holder's lease left alone.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import update

from nav_crm_ops.engine.lease import LEASE_TTL_ENV
from nav_crm_ops.engine.progress import ProgressEvent
from nav_crm_ops.engine.workspace import open_workspace
from nav_crm_ops.exceptions import LeaseHeldError, LeaseLostError
from nav_crm_ops.sandbox import Sandbox
from nav_crm_ops.store import default_holder
from nav_crm_ops.store.schema import leases, utc_now

pytestmark = pytest.mark.timeout(300)

TTL_S = 0.9
SLOW_READS_TTL_S = 2.4
"""Long enough that a loaded CI machine still renews in time (every 0.8 s), short enough
that the slow reads outlast it twice."""


def test_a_short_lease_survives_slow_reads_that_report_nothing(
        workspace_dir: Path, fresh_sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    ttl = SLOW_READS_TTL_S
    monkeypatch.setenv(LEASE_TTL_ENV, str(ttl))
    fresh_sandbox.set_faults("rate=1,kinds=slow,slow=1.5-1.5,seed=3")
    intruder = default_holder("intruder")
    refused: list[str] = []
    taken: list[str] = []
    done = threading.Event()

    def intrude() -> None:  # another caller trying to take the mapping all along
        with open_workspace(workspace_dir) as other:
            while not done.wait(ttl / 4):
                try:
                    other.store.acquire_lease("mapping:CURRENCY", intruder, 60)
                    taken.append(utc_now())
                    other.store.release_lease("mapping:CURRENCY", intruder)
                except LeaseHeldError as held:
                    refused.append(held.holder)

    with open_workspace(workspace_dir) as ws:
        started = time.monotonic()
        thread = threading.Thread(target=intrude)
        thread.start()
        try:
            report = ws.sync("CURRENCY")
        finally:
            done.set()
            thread.join()
        took = time.monotonic() - started
    assert took > 2 * ttl  # without renewals the lease would have expired twice over
    assert report.results[0].status == "finished", report
    assert refused and not taken, (len(refused), taken)
    assert all("sync CURRENCY" in holder for holder in refused)


def test_a_lease_taken_over_mid_run_stops_at_a_safe_point_with_lease_lost(
        workspace_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(LEASE_TTL_ENV, str(TTL_S))
    intruder = default_holder("intruder")
    stages: list[str] = []

    with open_workspace(workspace_dir) as ws:
        def take_over(event: ProgressEvent) -> None:
            stages.append(event.stage)
            if event.stage.startswith("write") and stages.count(event.stage) == 1:
                # Another holder takes the lease (as after an expiry); wait until the
                # heartbeat's next renewal is refused.
                with ws.store.transaction() as conn:
                    conn.execute(update(leases).where(leases.c.name == "mapping:CURRENCY")
                                 .values(holder=intruder, expires_at=utc_now(600)))
                time.sleep(TTL_S)

        for client in (ws.connections.dataverse, ws.connections.business_central):
            client.batch_size = 1  # chunks of 4 records: safe points between them
        with pytest.raises(LeaseLostError, match="lease was lost") as lost:
            ws.sync("CURRENCY", progress=take_over)
        runs = ws.store.runs_frame("CURRENCY")
        pending = ws.store.pending_ops_frame("CURRENCY")
        lease = ws.store.lease("mapping:CURRENCY")
    assert any(s.startswith("write") for s in stages), stages
    assert lost.value.holder == intruder
    assert "cancelled" in runs["status"].to_list(), runs
    assert "running" not in runs["status"].to_list(), runs
    assert int(runs["inserted"].sum()) + int(runs["modified"].sum()) == 4, runs  # one chunk
    assert pending.height == 0, pending  # every write sent was recorded: nothing half-done
    assert lease is not None and lease.holder == intruder  # their lease is not released


def test_a_job_whose_mapping_lease_is_lost_counts_a_failed_attempt_not_busy(
        workspace_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Through the runner and a real kernel: LeaseLostError fails the attempt (the job's
    retry policy applies), where LeaseHeldError would have been "busy" (no attempt)."""
    from nav_crm_ops.jobs import JobRunner
    from nav_crm_ops.jobs.queue import READY, JobEntry

    monkeypatch.setenv(LEASE_TTL_ENV, str(TTL_S))  # the kernel inherits the environment
    notebook = Path(__file__).parents[1] / "jobs" / "notebooks" / "lease_lost.ipynb"
    intruder = default_holder("intruder")
    with JobRunner(workspace_dir) as runner:
        runner.queue.add(JobEntry(name="Currencies", kind="notebook", notebook=str(notebook),
                                  mapping="CURRENCY", parameters={"intruder": intruder},
                                  max_attempts=3))
        run = runner.run("Currencies")
        entry = runner.queue.get("Currencies")
        runs = runner.store.runs_frame("CURRENCY")
    assert run.outcome == "failed" and "LeaseLostError" in run.error, run
    assert (entry.status, entry.attempts) == (READY, 1)
    assert "LeaseLostError" in entry.last_error
    assert set(runs["status"].to_list()) == {"cancelled"}, runs
