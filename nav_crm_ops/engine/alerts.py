"""Alert rules: what is wrong with the synchronization, decided from the state database alone.

Why: Business Central's integration leaves an operator its job log and error pages; a run that
failed half its records, a mapping that suddenly changed ten times its usual number of records,
a job that has not succeeded since yesterday or a watermark that stopped moving (changes read
again on every run, or silently missed) are found weeks later. These rules look at what every
run leaves behind (the job log, record statuses, jobs, watermarks), after every run and on
``nav-crm-ops alerts --check``, and say what happened and where to look.

One condition is one alert: a rule names the *subject* it fires for (a mapping, a job); while
the condition persists the stored alert is only touched, so a webhook hears of it once
(:mod:`nav_crm_ops.store.alerts`). A rule that looks at the latest run of a mapping clears when
a later run is fine; a backlog clears when it shrinks below its threshold.

Thresholds come from ``[alerts]`` in ``nav_crm_ops.toml`` (:class:`nav_crm_ops.config.AlertSettings`).
"""

from __future__ import annotations

import statistics
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

import polars as pl

from ..config import AlertSettings

__all__ = ["AlertFacts", "AlertRule", "AlertSettings", "Finding", "Severity", "evaluate",
           "with_titles"]


class AlertRule(StrEnum):
    """The conditions an alert is raised for (the value is the stable key stored and sent)."""

    FAILED_RATIO = "failed_ratio"
    COUNT_DEVIATION = "count_deviation"
    RUNTIME = "runtime"
    JOB_NOT_SUCCEEDED = "job_not_succeeded"
    CONFLICT_BACKLOG = "conflict_backlog"
    SKIPPED_BACKLOG = "skipped_backlog"
    WATERMARK_STUCK = "watermark_stuck"
    DRIFT = "drift"

    @property
    def heading(self) -> str:
        """What a person reads as the alert's kind."""
        return _TITLES[self]


_TITLES = {
    AlertRule.FAILED_RATIO: "many records failed",
    AlertRule.COUNT_DEVIATION: "unusual number of changes",
    AlertRule.RUNTIME: "run took unusually long",
    AlertRule.JOB_NOT_SUCCEEDED: "job has not succeeded",
    AlertRule.CONFLICT_BACKLOG: "held conflicts piling up",
    AlertRule.SKIPPED_BACKLOG: "skipped records piling up",
    AlertRule.WATERMARK_STUCK: "watermark stopped moving",
    AlertRule.DRIFT: "pairs out of step",
}


class Severity(StrEnum):
    WARNING = "warning"
    ERROR = "error"


@dataclass(frozen=True)
class Finding:
    """A condition that holds now: the rule, what it is about, what happened (in words), where
    to look, and the numbers behind it."""

    rule: AlertRule
    subject: str
    message: str
    where: str
    severity: Severity = Severity.WARNING
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str]:
        return (self.rule.value, self.subject)


@dataclass(frozen=True)
class AlertFacts:
    """What the rules read, gathered by :meth:`nav_crm_ops.store.alerts.AlertRepository.facts`:
    recent sync runs (dict rows of the job log, newest first), record-status counts per mapping
    and state, jobs (dict rows), watermarks (mapping, side, value, updated_at) and the latest
    reconcile of each mapping (dict rows of ``reconcile_runs``: counts per class, healed)."""

    runs: Sequence[dict[str, Any]] = ()
    status_counts: dict[tuple[str, str], int] = field(default_factory=dict)
    jobs: Sequence[dict[str, Any]] = ()
    watermarks: Sequence[dict[str, Any]] = ()
    reconciles: Sequence[dict[str, Any]] = ()
    erp: str = "BC"


def evaluate(facts: AlertFacts, settings: AlertSettings, now: datetime | None = None,
             ) -> list[Finding]:
    """Every condition that holds now (empty when alerts are disabled)."""
    if not settings.enabled:
        return []
    now = now or datetime.now(UTC)
    by_run = _run_groups(facts.runs)
    return [*_run_findings(by_run, settings), *_backlogs(facts, settings),
            *_stale_jobs(facts.jobs, settings, now),
            *_stuck_watermarks(facts, by_run, settings, now), *_drift(facts.reconciles)]


# -- runs ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Run:
    """One sync of one mapping: its directions' job-log rows added up."""

    mapping: str
    started: datetime
    written: int
    failed: int
    attempted: int
    duration_s: float
    run_ids: tuple[int, ...]
    finished: bool
    from_side: dict[str, int] = field(default_factory=dict)
    """Records written per side they came from (``nav``: the to_crm direction's writes)."""


def _time(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def _moment(value: Any) -> datetime | None:
    """A stored watermark as a moment (a NAV date watermark is midnight UTC of its day);
    None when it is not one."""
    try:
        return _time(value)
    except ValueError:
        return None


def _run_groups(rows: Sequence[dict[str, Any]]) -> dict[str, list[_Run]]:
    """Sync runs per mapping, newest first: the job-log rows of one sync (both directions,
    and the second pass after creates) make one run — by their ``sync_id`` (set after every
    sync), else (rows written before it existed) rows that follow each other at once."""
    grouped: dict[str, list[list[dict[str, Any]]]] = {}
    for row in sorted((r for r in rows if r.get("kind", "sync") == "sync"),
                      key=lambda r: (str(r["started_at"]), int(r["id"])), reverse=True):
        runs = grouped.setdefault(str(row["mapping"]), [])
        if runs and _same_run(runs[-1], row):
            runs[-1].append(row)
        else:
            runs.append([row])
    return {mapping: [_run_of(mapping, group) for group in groups]
            for mapping, groups in grouped.items()}


def _same_run(group: list[dict[str, Any]], row: dict[str, Any]) -> bool:
    """``row`` (older) belongs to the sync of ``group``: the same ``sync_id``; without one,
    it ended right before the group's first row started."""
    last = group[-1]
    if row.get("sync_id") is not None or last.get("sync_id") is not None:
        return row.get("sync_id") == last.get("sync_id")
    first = min(_time(r["started_at"]) for r in group)
    return _time(row.get("finished_at") or row["started_at"]) >= first - timedelta(seconds=2)


def _run_of(mapping: str, rows: list[dict[str, Any]]) -> _Run:
    def total(*names: str) -> int:
        return sum(int(r.get(n) or 0) for r in rows for n in names)

    started = min(_time(r["started_at"]) for r in rows)
    ends = [_time(r["finished_at"]) for r in rows if r.get("finished_at")]
    written = total("inserted", "modified", "deleted")
    sources = {"to_crm": "nav", "from_crm": "crm"}
    from_side = {sources.get(str(r.get("direction")), "nav"): sum(
        int(r.get(n) or 0) for n in ("inserted", "modified", "deleted")) for r in rows}
    return _Run(mapping, started, written, total("failed"), written + total("failed"),
                (max(ends) - started).total_seconds() if ends else 0.0,
                tuple(int(r["id"]) for r in rows), len(ends) == len(rows), from_side)


def _run_findings(by_run: dict[str, list[_Run]], settings: AlertSettings) -> Iterator[Finding]:
    for runs in by_run.values():
        latest = next((r for r in runs if r.finished), None)
        if latest is None:
            continue
        history = [r for r in runs if r.finished and r is not latest][:settings.history_runs]
        yield from _failed_ratio(latest, settings)
        yield from _count_deviation(latest, history, settings)
        yield from _runtime(latest, history, settings)


def _where_run(run: _Run) -> str:
    ids = ", ".join(str(i) for i in sorted(run.run_ids))
    return (f"nav-crm-ops errors --mapping '{run.mapping}' (the troubleshooting dashboard's "
            f"error groups); job log run {ids}")


def _failed_ratio(run: _Run, settings: AlertSettings) -> Iterator[Finding]:
    if run.attempted < settings.failed_min_records or not run.failed:
        return
    share = run.failed / run.attempted
    if share >= settings.failed_ratio:
        yield Finding(
            AlertRule.FAILED_RATIO, run.mapping,
            f"{run.mapping}: {run.failed} of {run.attempted} records failed in the run of "
            f"{run.started:%Y-%m-%d %H:%M} UTC ({share:.0%}; the alert threshold is "
            f"{settings.failed_ratio:.0%})",
            _where_run(run), Severity.ERROR,
            {"failed": run.failed, "attempted": run.attempted, "share": round(share, 4),
             "run_ids": list(run.run_ids)})


def _count_deviation(run: _Run, history: list[_Run], settings: AlertSettings,
                     ) -> Iterator[Finding]:
    if len(history) < 3:
        return
    usual = statistics.median(r.written for r in history)
    factor = settings.count_factor
    more = run.written >= settings.count_min_records and run.written > factor * max(usual, 1)
    fewer = usual >= settings.count_min_records and run.written * factor < usual
    if more or fewer:
        word = "more" if more else "fewer"
        yield Finding(
            AlertRule.COUNT_DEVIATION, run.mapping,
            f"{run.mapping}: the run of {run.started:%Y-%m-%d %H:%M} UTC changed {run.written} "
            f"records where its last {len(history)} runs changed {usual:g} (median): far "
            f"{word} than usual — a mapping change or a bulk import in one system?",
            f"the run's report and the preview dashboard for {run.mapping}; job log run "
            f"{', '.join(str(i) for i in sorted(run.run_ids))}",
            Severity.WARNING,
            {"written": run.written, "median": usual, "runs_compared": len(history),
             "run_ids": list(run.run_ids)})


def _runtime(run: _Run, history: list[_Run], settings: AlertSettings) -> Iterator[Finding]:
    if len(history) < 3 or run.duration_s < settings.runtime_min_s:
        return
    usual = statistics.median(r.duration_s for r in history)
    if run.duration_s > settings.runtime_factor * max(usual, 0.05):
        yield Finding(
            AlertRule.RUNTIME, run.mapping,
            f"{run.mapping}: the run of {run.started:%Y-%m-%d %H:%M} UTC took "
            f"{run.duration_s:.0f} s where its last {len(history)} runs took {usual:.0f} s "
            "(median): the services may be throttling, or the run read far more than usual",
            f"the run's report (requests and retries) and nav-crm-ops runs --mapping "
            f"'{run.mapping}'", Severity.WARNING,
            {"duration_s": round(run.duration_s, 1), "median_s": round(usual, 1),
             "run_ids": list(run.run_ids)})


# -- backlogs, jobs, watermarks ----------------------------------------------------------------
def _backlogs(facts: AlertFacts, settings: AlertSettings) -> Iterator[Finding]:
    limits = {"conflict": (AlertRule.CONFLICT_BACKLOG, settings.conflict_backlog,
                           "held conflicts (the same field changed on both sides)",
                           "resolve them in the preview dashboard (held conflicts) or with "
                           "nav-crm-ops conflicts"),
              "skipped": (AlertRule.SKIPPED_BACKLOG, settings.skipped_backlog,
                          "skipped records (failed too often; no run tries them again)",
                          "the troubleshooting dashboard: fix the cause, then Unskip and "
                          "retry, or nav-crm-ops errors")}
    for (mapping, state), count in sorted(facts.status_counts.items()):
        if state not in limits:
            continue
        rule, limit, what, where = limits[state]
        if count >= limit:
            yield Finding(rule, mapping, f"{mapping}: {count} {what}; the alert threshold is "
                          f"{limit}", f"{where} --mapping '{mapping}'"
                          if where.startswith("nav") else where, Severity.WARNING,
                          {"count": count, "threshold": limit})


_ACTIVE_JOB_STATUSES = ("ready", "in process", "error", "on hold with inactivity timeout")
"""Jobs expected to run (On Hold and Finished ones were stopped by a person)."""


def _stale_jobs(jobs: Sequence[dict[str, Any]], settings: AlertSettings, now: datetime,
                ) -> Iterator[Finding]:
    limit = timedelta(hours=settings.job_stale_hours)
    for job in jobs:
        if str(job.get("status", "")).lower() not in _ACTIVE_JOB_STATUSES:
            continue
        since = _last_success(job) or _time(job["created_at"])
        if now - since < limit:
            continue
        hours = (now - since).total_seconds() / 3600
        last = job.get("last_outcome") or "never run"
        yield Finding(
            AlertRule.JOB_NOT_SUCCEEDED, str(job["name"]),
            f"job {job['name']} has not succeeded for {hours:.0f} hours (since "
            f"{since:%Y-%m-%d %H:%M} UTC); its last run: {last}"
            + (f" — {job['last_error']}" if job.get("last_error") else ""),
            f"nav-crm-ops jobs list; the job's last report ({job.get('last_output') or 'none'})",
            Severity.ERROR, {"hours": round(hours, 1), "last_outcome": last})


def _last_success(job: dict[str, Any]) -> datetime | None:
    """When the job last finished its work (the queue keeps only the last run: a job whose
    last run succeeded is fresh from then)."""
    outcome = str(job.get("last_outcome") or "")
    if outcome in ("succeeded", "succeeded_with_failures", "held_conflicts") and job.get(
            "last_finished_at"):
        return _time(job["last_finished_at"])
    success = job.get("last_success_at")
    return _time(success) if success else None


def _stuck_watermarks(facts: AlertFacts, by_run: dict[str, list[_Run]],
                      settings: AlertSettings, now: datetime) -> Iterator[Finding]:
    """A side's watermark far behind while the mapping's recent runs keep writing changes
    that came from that side: an incremental read returns only records modified after the
    watermark, so changes keep arriving and the watermark should follow them; when it does
    not, the same records are read again on every run (or, ahead of them, missed)."""
    limit = timedelta(hours=settings.watermark_stuck_hours)
    for mark in facts.watermarks:
        mapping, side = str(mark["mapping"]), str(mark["side"])
        recent = [r for r in by_run.get(mapping, []) if now - r.started < limit and r.finished]
        writing = [r for r in recent if r.from_side.get(side)]
        value = _moment(mark["value"])
        if value is None or len(writing) < 3 or now - value < limit:
            continue
        changed = sum(r.from_side[side] for r in writing)
        name = facts.erp if side == "nav" else "CRM"
        yield Finding(
            AlertRule.WATERMARK_STUCK, f"{mapping} ({name})",
            f"{mapping}: the {name} watermark has stayed at {value:%Y-%m-%d %H:%M} UTC for "
            f"{(now - value).total_seconds() / 3600:.0f} hours while {len(writing)} runs "
            f"wrote {changed} changes from {name}: the same records may be read again on "
            "every run, or changes missed",
            f"nav-crm-ops preview '{mapping}' (what the next run reads) and the mapping's "
            f"modified-on field on {name}", Severity.ERROR,
            {"side": side, "watermark": str(mark["value"]), "runs": len(writing),
             "changed": changed})


def _drift(reconciles: Sequence[dict[str, Any]]) -> Iterator[Finding]:
    """The latest reconcile of a mapping (``engine.reconcile``) left pairs out of step that no
    sync will fix — edited behind the watermark, changed on both sides, coupled to a deleted
    record — and no heal put them back in step. Clears with a later reconcile (or heal) that
    leaves none."""
    for run in reconciles:
        missed, diverged, gone, healed = (int(run.get(k) or 0) for k in (
            "missed", "diverged", "partner_gone", "healed"))
        left = missed + diverged + gone - healed
        if left <= 0:
            continue
        mapping = str(run["mapping"])
        pairs = missed + diverged + gone + sum(int(run.get(k) or 0)
                                               for k in ("in_step", "pending"))
        yield Finding(
            AlertRule.DRIFT, mapping,
            f"{mapping}: the reconcile of {_time(run['started_at']):%Y-%m-%d %H:%M} UTC found "
            f"{left} of {pairs} coupled pairs out of step that no sync will fix ({missed} "
            f"edited behind the watermark, {diverged} changed on both sides, {gone} coupled "
            f"to a record that no longer exists" + (f"; {healed} healed" if healed else "")
            + ")",
            f"nav-crm-ops reconcile '{mapping}' --last (the pairs and why); heal them with "
            "--out FILE (a plan to review) or --apply", Severity.ERROR,
            {"missed": missed, "diverged": diverged, "partner_gone": gone, "healed": healed,
             "reconcile_run": int(run["id"])})


def with_titles(alerts: pl.DataFrame) -> pl.DataFrame:
    """Alert rows with their rule's ``title`` (what a person reads), for lists and reports."""
    if "rule" not in alerts.columns:
        return alerts
    titles = {rule.value: rule.heading for rule in AlertRule}
    return alerts.with_columns(pl.col("rule").replace_strict(titles, default=pl.col("rule"),
                                                             return_dtype=pl.Utf8)
                               .alias("title"))
