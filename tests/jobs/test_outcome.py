"""The one outcome vocabulary of runs (``RunOutcome``): the rule deciding it, labels and fixed
colours, and rows stored before it existed (job log and job queue) read the same way."""

from __future__ import annotations

from pathlib import Path

import pytest

from nav_crm_ops.config import load_config
from nav_crm_ops.engine.report import MappingResult, SyncReport
from nav_crm_ops.jobs.queue import JobEntry, JobQueue
from nav_crm_ops.jobs.result import JobResult
from nav_crm_ops.store import StateStore
from nav_crm_ops.store.runs import RunOutcome

Outcome = RunOutcome


@pytest.mark.parametrize(("status", "failed", "conflicts", "message", "expected"), [
    ("finished", 0, 0, "", Outcome.SUCCEEDED),
    ("failed", 2, 0, "2 record(s) failed or conflict", Outcome.SUCCEEDED_WITH_FAILURES),
    ("failed", 0, 1, "1 record(s) failed or conflict", Outcome.HELD_CONFLICTS),
    ("failed", 2, 1, "", Outcome.SUCCEEDED_WITH_FAILURES),
    ("failed", 0, 0, "", Outcome.FAILED),
    ("failed", 3, 0, "2 failed; stopped: BC answered 503", Outcome.FAILED),
    ("cancelled", 1, 0, "cancelled during write crm", Outcome.CANCELLED),
    ("running", 0, 0, "", Outcome.RUNNING),
    ("timeout", 0, 0, "", Outcome.TIMED_OUT),
    ("succeeded", 2, 0, "", Outcome.SUCCEEDED_WITH_FAILURES),  # a job queue value of old
    ("busy", 0, 0, "", Outcome.BUSY),
    ("something new", 0, 0, "", Outcome.FAILED),
])
def test_one_rule_decides_the_outcome(status: str, failed: int, conflicts: int, message: str,
                                      expected: RunOutcome) -> None:
    assert RunOutcome.decide(status, failed=failed, conflicts=conflicts,
                             message=message) is expected


def test_labels_say_how_many_and_colours_follow_the_meaning() -> None:
    assert Outcome.SUCCEEDED_WITH_FAILURES.label(2) == "succeeded with 2 failed records"
    assert Outcome.SUCCEEDED_WITH_FAILURES.label(1, 1) == \
        "succeeded with 1 failed record and 1 held conflict"
    assert Outcome.HELD_CONFLICTS.label(0, 3) == "held conflicts (3)"
    assert Outcome.TIMED_OUT.label() == "timed out"
    assert Outcome.SUCCEEDED_WITH_FAILURES.label() == "succeeded with failed records"
    assert Outcome.FAILED.colour == Outcome.TIMED_OUT.colour == "#c62828"
    assert Outcome.SUCCEEDED.colour == "#2e7d32"
    assert Outcome.CANCELLED.colour == "#757575"
    assert len({Outcome.SUCCEEDED.colour, Outcome.SUCCEEDED_WITH_FAILURES.colour,
                Outcome.HELD_CONFLICTS.colour, Outcome.AWAITING_APPROVAL.colour,
                Outcome.FAILED.colour, Outcome.CANCELLED.colour}) == 6
    assert [o for o in Outcome if o.completed] == [
        Outcome.SUCCEEDED, Outcome.SUCCEEDED_WITH_FAILURES, Outcome.HELD_CONFLICTS,
        Outcome.AWAITING_APPROVAL]  # a job waiting for approval is neither failed nor retried
    assert Outcome.AWAITING_APPROVAL.label() == "waiting for approval"


def test_a_report_and_its_job_result_carry_the_worst_outcome_of_their_mappings() -> None:
    report = SyncReport((
        MappingResult("CURRENCY", "finished", {"unchanged": 7}),
        MappingResult("CUSTOMER", "failed", {"inserted": 3, "failed": 2}, message="2 failed"),
        MappingResult("CONTACT", "failed", {"conflicts": 1}, message="1 conflict"),
    ))
    assert report.outcome is Outcome.SUCCEEDED_WITH_FAILURES
    assert report.outcome_label() == "succeeded with 2 failed records and 1 held conflict"
    assert [r.outcome for r in report.results] == [
        Outcome.SUCCEEDED, Outcome.SUCCEEDED_WITH_FAILURES, Outcome.HELD_CONFLICTS]
    result = JobResult.from_report(report)
    assert JobResult.from_dict(result.to_dict()) == result
    assert result.outcome is Outcome.SUCCEEDED_WITH_FAILURES
    held = SyncReport((MappingResult("CONTACT", "failed", {"conflicts": 1}),))
    assert held.outcome_label() == "held conflicts (1)"
    # a result file written before the outcome existed gets it from its counts
    assert JobResult.from_dict({"counts": {"failed": 2}}).outcome is \
        Outcome.SUCCEEDED_WITH_FAILURES


def test_rows_stored_before_the_outcome_read_as_today(offline_workspace: Path) -> None:
    with StateStore.open(load_config(offline_workspace).state_url) as store:
        ids = [store.start_run("CUSTOMER", "to_crm") for _ in range(4)]
        store.finish_run(ids[0], "failed", {"failed": 2},
                         message="2 record(s) failed or conflict: see the errors")
        store.finish_run(ids[1], "failed", {"conflicts": 1},
                         message="1 record(s) failed or conflict: see the errors")
        store.finish_run(ids[2], "failed", {"failed": 1},
                         message="stopped: the CRM answered 503")
        log = store.runs_frame("CUSTOMER")
        assert dict(zip(log["id"], log["outcome"], strict=True)) == {
            ids[0]: "succeeded_with_failures", ids[1]: "held_conflicts", ids[2]: "failed",
            ids[3]: "running"}
        queue = JobQueue(store)
        queue.add(JobEntry(name="Old", kind="notebook", notebook="x.ipynb"))
        old = queue.save(JobEntry(name="Old", kind="notebook", notebook="x.ipynb",
                                  last_outcome="succeeded", last_counts={"failed": 2}))
        timed_out = JobEntry(name="T", kind="notebook", notebook="x.ipynb",
                             last_outcome="timeout")
    assert old.outcome is Outcome.SUCCEEDED_WITH_FAILURES
    assert old.outcome_label == "succeeded with 2 failed records"
    assert old.to_dict()["last_outcome"] == "succeeded_with_failures"
    assert timed_out.outcome_label == "timed out"
    assert JobEntry(name="New", kind="notebook", notebook="x.ipynb").outcome_label == "-"
