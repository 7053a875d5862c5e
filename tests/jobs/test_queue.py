"""Job entries, the status machine and the queue in a real SQLite state store."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from nav_crm_ops.exceptions import ConfigError
from nav_crm_ops.jobs.queue import (
    ERROR,
    FINISHED,
    IN_PROCESS,
    ON_HOLD,
    ON_HOLD_INACTIVITY,
    READY,
    JobEntry,
    JobQueue,
    check_parameter_values,
    is_due,
    looks_like_secret,
    needs_probe,
    parse_status,
    reschedule,
    resume,
    settle,
)
from nav_crm_ops.jobs.recurrence import Recurrence
from nav_crm_ops.store import StateStore

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def job(**changes: object) -> JobEntry:
    base = JobEntry(name="CUSTOMER - Dynamics 365 Sales synchronization job", kind="sync",
                    notebook="jobs/sync_mapping.ipynb", mapping="CUSTOMER",
                    recurrence=Recurrence(every_minutes=30), max_attempts=3, rerun_delay_s=60,
                    inactivity_timeout_min=720, next_run_at=NOW)
    return replace(base, **changes)  # type: ignore[arg-type]


def test_ready_job_is_due_at_its_next_run_time() -> None:
    entry = job()
    assert is_due(entry, NOW)
    assert not is_due(entry, NOW - timedelta(seconds=1))
    for status in (IN_PROCESS, ON_HOLD, ERROR, FINISHED):
        assert not is_due(replace(entry, status=status), NOW)


def test_success_schedules_the_next_period_and_resets_attempts() -> None:
    after = settle(job(attempts=2, last_error="old"), started=NOW,
                   finished=NOW + timedelta(minutes=2), succeeded=True, changed=True)
    assert (after.status, after.attempts, after.last_error) == (READY, 0, "")
    assert after.next_run_at == NOW + timedelta(minutes=30)


def test_failures_retry_after_the_delay_then_error() -> None:
    first = settle(job(), started=NOW, finished=NOW, succeeded=False, changed=True,
                   error="RuntimeError: boom")
    assert (first.status, first.attempts) == (READY, 1)
    assert first.next_run_at == NOW + timedelta(seconds=60)
    assert first.last_error == "RuntimeError: boom"
    second = settle(first, started=NOW, finished=NOW, succeeded=False, changed=True, error="x")
    third = settle(second, started=NOW, finished=NOW, succeeded=False, changed=True, error="y")
    assert (second.status, third.status, third.attempts) == (READY, ERROR, 3)
    assert third.next_run_at is None and not is_due(third, NOW + timedelta(days=1))


def test_a_run_that_changed_nothing_sleeps_until_changes_or_the_timeout() -> None:
    held = settle(job(), started=NOW, finished=NOW, succeeded=True, changed=False)
    assert held.status == ON_HOLD_INACTIVITY and held.on_hold_since == NOW
    period = NOW + timedelta(minutes=30)
    assert held.next_run_at == period
    assert not is_due(held, period)
    assert needs_probe(held, period)
    assert is_due(held, period, changes_detected=True)
    timeout = NOW + timedelta(minutes=720)
    assert is_due(held, timeout) and not needs_probe(held, timeout)


def test_no_inactivity_timeout_means_never_sleeping() -> None:
    after = settle(job(inactivity_timeout_min=0), started=NOW, finished=NOW, succeeded=True,
                   changed=False)
    assert after.status == READY


def test_run_once_job_finishes_and_expired_job_is_not_due() -> None:
    once = settle(job(recurrence=Recurrence(every_minutes=None)), started=NOW, finished=NOW,
                  succeeded=True, changed=True)
    assert once.status == FINISHED and once.next_run_at is None
    expired = job(recurrence=Recurrence(expiration=NOW - timedelta(minutes=1)))
    assert not is_due(expired, NOW)


def test_people_resume_and_hold_jobs() -> None:
    errored = job(status=ERROR, attempts=3, next_run_at=None, last_run_at=NOW)
    resumed = resume(errored, READY, NOW + timedelta(hours=2))
    assert (resumed.status, resumed.attempts) == (READY, 0)
    assert resumed.next_run_at == NOW + timedelta(hours=2)
    assert resume(job(), ON_HOLD, NOW).status == ON_HOLD
    with pytest.raises(ConfigError, match="runner sets"):
        resume(job(), IN_PROCESS, NOW)
    assert parse_status("on-hold") == ON_HOLD
    assert parse_status("on hold with inactivity timeout") == ON_HOLD_INACTIVITY
    with pytest.raises(ConfigError, match="not one of"):
        parse_status("paused")


def test_reschedule_follows_the_new_rules() -> None:
    ran = job(last_run_at=NOW, next_run_at=NOW + timedelta(minutes=30))
    hourly = reschedule(ran, Recurrence(every_minutes=60), NOW + timedelta(minutes=1))
    assert hourly.next_run_at == NOW + timedelta(minutes=60)


def test_secret_parameters_are_refused() -> None:
    with pytest.raises(ConfigError, match="must never be parameters"):
        job(parameters={"client_secret": "x"})
    with pytest.raises(ConfigError, match="JSON"):
        job(parameters={"when": object()})
    with pytest.raises(ConfigError, match="max_attempts"):
        job(max_attempts=11)
    with pytest.raises(ConfigError, match="needs the mapping"):
        job(mapping="")


def test_queue_round_trips_every_field(tmp_path: Path) -> None:
    with StateStore.open(tmp_path) as store:
        queue = JobQueue(store)
        stored = queue.add(job(parameters={"dry_run": True}, next_run_at=None), now=NOW)
        assert stored.position == 1 and stored.next_run_at == NOW
        second = queue.add(job(name="other", kind="notebook", mapping="",
                               notebook="x.ipynb"), now=NOW)
        assert second.position == 2
        changed = replace(stored, status=ON_HOLD_INACTIVITY, attempts=1, last_counts={"failed": 2},
                          last_run_ids=(4, 5), last_duration_s=1.25, last_error="boom",
                          last_output="/w/runs/x.ipynb", on_hold_since=NOW,
                          last_run_at=NOW, last_finished_at=NOW)
        queue.save(changed, now=NOW)
        again = queue.get("customer")  # found by its mapping, case-insensitively
        assert replace(again, updated_at=None, created_at=None) == \
            replace(changed, updated_at=None, created_at=None)
        assert [e.name for e in queue.list()] == [stored.name, "other"]
        with pytest.raises(ConfigError, match="already exists"):
            queue.add(job(name=stored.name.lower()))
        with pytest.raises(ConfigError, match="known jobs"):
            queue.get("nope")
        running = queue.begin_run("other", NOW)
        assert (running.status, running.run_count, running.last_run_at) == (IN_PROCESS, 1, NOW)
        assert queue.remove("other")
        assert [e.name for e in queue.list()] == [stored.name]


@pytest.mark.parametrize(("name", "secret"), [
    ("pwd", True), ("db_password", True), ("apiKey", True), ("key", True), ("accessToken", True),
    ("my_credentials", True), ("sas_url", True), ("dry_run", False), ("changed", False),
    ("monkey", False), ("keyboard", False), ("author", False), ("marker_path", False),
])
def test_parameter_names_that_look_like_secrets(name: str, secret: bool) -> None:
    assert looks_like_secret(name) is secret


def test_parameter_values_holding_a_configured_secret_are_refused_without_showing_it() -> None:
    secrets = [("dataverse.auth (CRM_SECRET)", "0123456789abcdef"), ("bc", "")]
    for value in ("0123456789abcdef", "x 0123456789abcdef y", ["0123456789abcdef"],
                  {"nested": {"0123456789abcdef": 1}}):
        with pytest.raises(ConfigError, match=r"parameter 'note' holds the client secret of "
                           r"dataverse.auth \(CRM_SECRET\)") as refused:
            check_parameter_values("J", {"note": value}, secrets)
        assert "0123456789abcdef" not in str(refused.value)
    check_parameter_values("J", {"note": "harmless", "flag": True, "n": 5}, secrets)
    check_parameter_values("J", {"n": "1234"}, [("short", "123")])  # short: equality only
    with pytest.raises(ConfigError):
        check_parameter_values("J", {"n": 123}, [("short", "123")])
