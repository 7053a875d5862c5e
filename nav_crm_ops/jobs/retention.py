"""The retention job: purge the rows the workspace's ``[retention]`` policy says are old.

The notebook ``notebooks/jobs/retention.ipynb`` (run by the default job :data:`RETENTION_JOB`,
daily, after the sync jobs) and ``nav-crm-ops purge`` only call this module:
:func:`purge_workspace` opens the workspace's state database, applies the policy
(:func:`nav_crm_ops.store.retention.purge_old`) and closes it; :func:`run_retention_job`
wraps that in a :class:`RetentionReport` whose parts are the notebook's cell outputs, like the
sync jobs' reports (:mod:`nav_crm_ops.jobs.report`).

Why a notebook job: the runner runs notebooks through papermill, so this run leaves an output
notebook and HTML report like every other job, and the queue's retry, On Hold and lease rules
apply to it unchanged.
"""

from __future__ import annotations

import html
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from ..config import WorkspaceConfig, load_config
from ..store import StateStore
from ..store.retention import PurgeCounts, RetentionPolicy, purge_old
from ..store.runs import RunOutcome
from .output import outcome_badge
from .report import Html
from .result import JobResult, write_result

__all__ = ["RetentionReport", "policy_of", "purge_workspace", "run_retention_job"]

_CELL = "padding:3px 8px;border-bottom:1px solid #ddd;text-align:left"
_WHAT = {"runs": "job log entries (runs) older than {runs_days} days",
         "record_errors": "record errors resolved more than {resolved_errors_days} days ago",
         "pending_ops": "settled journal writes older than {journal_days} days",
         "alerts": "alerts resolved more than {runs_days} days ago (open ones stay)",
         "reconcile_runs": "drift checks older than {runs_days} days (each mapping's newest "
                           "stays)"}


def policy_of(config: WorkspaceConfig) -> RetentionPolicy:
    """The store's policy from the config's ``[retention]`` section."""
    days = config.retention
    return RetentionPolicy(runs_days=days.runs_days,
                           resolved_errors_days=days.resolved_errors_days,
                           journal_days=days.journal_days)


def purge_workspace(workspace: str | Path | WorkspaceConfig, *, dry_run: bool = False,
                    now: datetime | None = None) -> tuple[RetentionPolicy, PurgeCounts]:
    """Apply the workspace's retention policy to its state database; returns the policy and
    what was (``dry_run``: would be) removed per table."""
    config = workspace if isinstance(workspace, WorkspaceConfig) else load_config(workspace)
    policy = policy_of(config)
    with StateStore.open(config.state_url) as store:
        return policy, purge_old(store, policy, dry_run=dry_run, now=now)


@dataclass(frozen=True)
class RetentionReport:
    """What one retention run removed, ready to show."""

    policy: RetentionPolicy
    counts: PurgeCounts
    started_at: datetime
    duration_s: float

    @property
    def result(self) -> JobResult:
        """The runner's summary: ``changed`` when anything was removed."""
        verb = "would remove" if self.counts.dry_run else "removed"
        return JobResult(changed=self.counts.total > 0, counts=self.counts.tables(),
                         message=f"retention {verb} {self.counts.total} row(s)",
                         outcome=RunOutcome.SUCCEEDED)

    def headline(self) -> Html:
        """The outcome, then one row per table: what is purged and how many rows."""
        verb = "would remove" if self.counts.dry_run else "removed"
        rows = "".join(
            f'<tr><td style="{_CELL}">{table}</td><td style="{_CELL}">'
            f"{html.escape(_WHAT[table].format(**vars(self.policy)))}</td>"
            f'<td style="{_CELL}">{count}</td></tr>'
            for table, count in self.counts.tables().items())
        when = f"{self.started_at:%Y-%m-%d %H:%M} UTC"
        body = (f'<div style="font-size:1.25em;margin-bottom:6px">'
                f"{outcome_badge(RunOutcome.SUCCEEDED, RunOutcome.SUCCEEDED.label())} "
                f"Retention: {verb} {self.counts.total} row(s)</div>"
                f'<table style="border-collapse:collapse"><thead><tr><th style="{_CELL}">table'
                f'</th><th style="{_CELL}">what</th><th style="{_CELL}">rows {verb}</th></tr>'
                f"</thead><tbody>{rows}</tbody></table>"
                f'<div style="color:#555;font-size:0.9em">started {when}, took '
                f"{self.duration_s:.1f} s; errors of records still failing or skipped, and "
                f"unfinished journal writes, are always kept</div>")
        return Html(f'<div style="margin:4px 0 8px">{body}</div>',
                    f"Retention started {when}:\n{self.counts}")

    def hand_back(self, result_path: str | Path) -> JobResult:
        """Write the summary the job runner reads (nothing when run interactively)."""
        return write_result(result_path, self.result)


def run_retention_job(workspace: str | Path, *, dry_run: bool = False) -> RetentionReport:
    """One run of the retention job (the notebook's only call)."""
    started, clock = datetime.now(UTC), time.monotonic()
    policy, counts = purge_workspace(workspace, dry_run=dry_run)
    return RetentionReport(policy=policy, counts=counts, started_at=started,
                           duration_s=time.monotonic() - clock)
