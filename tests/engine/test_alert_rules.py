"""The alert rules on job-log facts: each fires under its condition, and only then.

The end-to-end tests (rules over a real state database after real sandbox runs, the webhook and
mail receivers) are in ``tests/engine/test_alerts.py``; these pin each rule's edges.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from nav_crm_ops.engine.alerts import AlertFacts, AlertRule, AlertSettings, evaluate

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


def _run(run_id: int, minutes_ago: float, *, mapping: str = "CUSTOMER", written: int = 10,
         failed: int = 0, duration_s: float = 5.0, direction: str = "to_crm",
         job: str = "") -> dict[str, Any]:
    started = NOW - timedelta(minutes=minutes_ago)
    return {"id": run_id, "mapping": mapping, "direction": direction, "kind": "sync",
            "job_name": job, "started_at": started.isoformat(),
            "finished_at": (started + timedelta(seconds=duration_s)).isoformat(),
            "status": "failed" if failed else "finished", "inserted": 0, "modified": written,
            "deleted": 0, "failed": failed, "conflicts": 0, "message": ""}


def _rules(facts: AlertFacts, **settings: Any) -> list[tuple[str, str]]:
    return [(f.rule.value, f.subject)
            for f in evaluate(facts, AlertSettings(**settings), NOW)]


def test_quiet_history_raises_nothing() -> None:
    runs = [_run(i, 30 * i) for i in range(1, 8)]
    assert _rules(AlertFacts(runs=runs)) == []


def test_failed_share_of_the_latest_run() -> None:
    bad = [_run(1, 1, written=40, failed=60), *(_run(i, 30 * i) for i in range(2, 6))]
    findings = evaluate(AlertFacts(runs=bad), AlertSettings(), NOW)
    assert [(f.rule, f.subject) for f in findings] == [(AlertRule.FAILED_RATIO, "CUSTOMER")]
    assert "60 of 100 records failed" in findings[0].message
    assert "nav-crm-ops errors --mapping 'CUSTOMER'" in findings[0].where
    # the next run is fine: the condition no longer holds
    healed = [_run(9, 0.5), *bad]
    assert _rules(AlertFacts(runs=healed)) == []
    # too few attempted writes to judge
    assert _rules(AlertFacts(runs=[_run(1, 1, written=2, failed=3)])) == []


def test_both_directions_of_one_run_count_together() -> None:
    runs = [_run(1, 1, written=50, failed=4), _run(2, 1, written=0, failed=8,
                                                    direction="from_crm")]
    findings = evaluate(AlertFacts(runs=runs), AlertSettings(failed_ratio=0.15), NOW)
    assert [f.details["attempted"] for f in findings] == [62]  # 12 of 62 = 19 %


def test_count_deviation_needs_history_and_a_real_difference() -> None:
    usual = [_run(i, 30 * i, written=20) for i in range(2, 7)]
    assert _rules(AlertFacts(runs=[_run(1, 1, written=5000), *usual])) == [
        ("count_deviation", "CUSTOMER")]
    assert _rules(AlertFacts(runs=[_run(1, 1, written=90), *usual])) == []  # < min records
    assert _rules(AlertFacts(runs=[_run(1, 1, written=5000), *usual[:2]])) == []  # 2 runs
    busy = [_run(i, 30 * i, written=1000) for i in range(2, 7)]
    assert _rules(AlertFacts(runs=[_run(1, 1, written=10), *busy])) == [
        ("count_deviation", "CUSTOMER")]  # far fewer than usual


def test_runtime_against_the_median() -> None:
    usual = [_run(i, 30 * i, duration_s=40) for i in range(2, 7)]
    assert _rules(AlertFacts(runs=[_run(1, 5, duration_s=200), *usual])) == [
        ("runtime", "CUSTOMER")]
    assert _rules(AlertFacts(runs=[_run(1, 5, duration_s=100), *usual])) == []
    assert _rules(AlertFacts(runs=[_run(1, 5, duration_s=50), *usual[:1]]),
                  runtime_min_s=0) == []


def test_backlogs_at_their_thresholds() -> None:
    counts = {("CUSTOMER", "conflict"): 3, ("CONTACT", "skipped"): 2, ("ITEM", "failed"): 99}
    assert sorted(_rules(AlertFacts(status_counts=counts), conflict_backlog=3,
                         skipped_backlog=3)) == [("conflict_backlog", "CUSTOMER")]
    assert sorted(_rules(AlertFacts(status_counts=counts), conflict_backlog=3,
                         skipped_backlog=2)) == [("conflict_backlog", "CUSTOMER"),
                                                 ("skipped_backlog", "CONTACT")]


def _job(name: str, status: str, *, created_h: float, outcome: str = "",
         finished_h: float | None = None, success_h: float | None = None) -> dict[str, Any]:
    def ago(hours: float | None) -> str | None:
        return None if hours is None else (NOW - timedelta(hours=hours)).isoformat()

    return {"name": name, "status": status, "created_at": ago(created_h),
            "last_outcome": outcome, "last_finished_at": ago(finished_h),
            "last_success_at": ago(success_h), "last_error": "", "last_output": None}


def test_jobs_that_have_not_succeeded() -> None:
    jobs = [_job("CUSTOMER", "Ready", created_h=100, outcome="succeeded", finished_h=1),
            _job("CONTACT", "Error", created_h=100, outcome="failed", finished_h=1,
                 success_h=30),
            _job("ITEM", "Ready", created_h=30),  # never ran
            _job("HELD", "On Hold", created_h=300),  # stopped by a person
            _job("NEW", "Ready", created_h=2)]
    found = evaluate(AlertFacts(jobs=jobs), AlertSettings(), NOW)
    assert [(f.rule.value, f.subject) for f in found] == [
        ("job_not_succeeded", "CONTACT"), ("job_not_succeeded", "ITEM")]
    assert "30 hours" in found[0].message and "last run: failed" in found[0].message


def test_a_watermark_that_stops_moving_while_changes_from_its_side_keep_arriving() -> None:
    runs = [_run(1, 60), _run(2, 120), _run(3, 180)]  # to_crm: changes that came from BC
    stuck = [{"mapping": "CUSTOMER", "side": "nav", "value": (NOW - timedelta(hours=30))
              .isoformat(), "updated_at": NOW.isoformat()}]
    found = evaluate(AlertFacts(runs=runs, watermarks=stuck, erp="BC"), AlertSettings(), NOW)
    assert [(f.rule.value, f.subject) for f in found] == [("watermark_stuck", "CUSTOMER (BC)")]
    assert "3 runs wrote 30 changes from BC" in found[0].message
    fresh = [{**stuck[0], "value": (NOW - timedelta(minutes=61)).isoformat()}]
    assert _rules(AlertFacts(runs=runs, watermarks=fresh)) == []
    assert _rules(AlertFacts(runs=runs[:2], watermarks=stuck)) == []  # two runs: too few
    quiet = [_run(i, 60 * i, written=0) for i in (1, 2, 3)]
    assert _rules(AlertFacts(runs=quiet, watermarks=stuck)) == []  # nothing came: fine
    crm = [{**stuck[0], "side": "crm"}]  # CRM quiet while BC changes flow: fine
    assert _rules(AlertFacts(runs=runs, watermarks=crm)) == []


def test_disabled_alerts_raise_nothing() -> None:
    assert _rules(AlertFacts(runs=[_run(1, 1, written=0, failed=90)]), enabled=False) == []


@pytest.mark.parametrize("bad", [{"failed_ratio": 0}, {"count_factor": 1},
                                 {"history_runs": 1}, {"typo_threshold": 3}])
def test_bad_settings_are_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        AlertSettings(**bad)
