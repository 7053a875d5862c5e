"""A scheduled job's run as a report an operator reads without reading code.

The job notebooks (``notebooks/jobs/``) only call this module: :func:`run_sync_job` opens the
workspace, previews and synchronizes the mapping, gathers what the run did and closes the
workspace; the :class:`JobReport` it returns renders the report's parts, each a cell output:

* :meth:`JobReport.headline` — the outcome in its colour (:class:`RunOutcome`), the counts, when
  and how long;
* :meth:`JobReport.changed_records` — each record the run changed or held, by number and name,
  with the fields (old → new) and what became of it;
* :meth:`JobReport.failures_by_cause` — failed records grouped by cause with record counts,
  each with its full message (never cut);
* :meth:`JobReport.alerts` — the workspace's open alerts (:mod:`nav_crm_ops.engine.alerts`),
  this job's and mapping's first, each with what happened and where to look;
* :meth:`JobReport.runs_over_time` — the job's last runs on a time axis, by outcome colour;
* :meth:`JobReport.troubleshooting` — the link to the troubleshooting dashboard.

A job in approval mode (its ``approval`` parameter, docs/approvals.md) runs through
:func:`~nav_crm_ops.jobs.approval_gate.run_gate`: a plan above its thresholds is saved and the
report says what waits and how to approve it ("waiting for approval: 120 creates > 50");
the run that applies an approved plan says who approved it.

Why the preview first: ``Workspace.sync`` returns counts, not the records it wrote, so the run
previews the mapping itself (the sync then plans again, which reads the changes once more) and
lists the records of that preview. A record edited between the two is written as it is then.
Every list is capped (:data:`CHANGES_CAP`, :data:`RECORDS_PER_CAUSE_CAP`) and says so.
"""

from __future__ import annotations

import html
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl

from ..config import ErpProfile
from ..engine.labels import record_label
from ..engine.lease import mapping_lease
from ..engine.plan import Plan
from ..engine.report import SyncReport
from ..engine.vocabulary import PlanAction, shown_change
from ..engine.workspace import Workspace, open_workspace
from ..presentation import alerts_html
from ..store.runs import RunOutcome
from .approval_gate import GateResult, run_gate
from .approvals import AWAITING_APPROVAL, ApprovalSettings
from .chart import RunPoint, RunsChart, runs_chart
from .output import outcome_badge
from .result import JobResult, write_result

__all__ = ["CHANGES_CAP", "DEFAULT_DASHBOARDS_URL", "HISTORY_RUNS", "RECORDS_PER_CAUSE_CAP",
           "TROUBLESHOOTING_NOTEBOOK", "Html", "JobReport", "run_sync_job"]

CHANGES_CAP = 200
"""Changed records listed in a report (the headline counts them all)."""
RECORDS_PER_CAUSE_CAP = 50
"""Failed records listed per cause (the cause's record count is always the full one)."""
HISTORY_RUNS = 30
"""Runs of the job on the runs-over-time chart."""
TROUBLESHOOTING_NOTEBOOK = "analyse_logs.ipynb"
DEFAULT_DASHBOARDS_URL = "http://127.0.0.1:8866/"
"""Where ``nav-crm-ops ui`` serves the dashboards by default (``widgets.dashboards``); a job's
``dashboards_url`` parameter overrides it when they are served elsewhere."""
HEADLINE_COUNTS = ("inserted", "modified", "deleted", "failed", "skipped", "conflicts")

_CHANGING = (PlanAction.INSERT_CRM, PlanAction.INSERT_NAV, PlanAction.UPDATE_CRM,
             PlanAction.UPDATE_NAV, PlanAction.UPDATE_BOTH, PlanAction.CONFLICT,
             PlanAction.DELETION_CONFLICT)
_HELD = (PlanAction.CONFLICT, PlanAction.DELETION_CONFLICT)
_CELL = "padding:3px 8px;border-bottom:1px solid #ddd;text-align:left;vertical-align:top"
_NOTE = "color:#555;font-size:0.9em"


@dataclass(frozen=True)
class Html:
    """A part of the report: HTML for Jupyter, Voilà and nbconvert, plain text otherwise."""

    html: str
    text: str

    def _repr_html_(self) -> str:
        return self.html

    def __repr__(self) -> str:
        return self.text


def _esc(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _table(header: Sequence[str], rows: Iterable[Sequence[Any]], *, wrap: int = -1,
           nowrap: Sequence[int] = (), named: int = -1) -> str:
    """A plain HTML table; column ``wrap`` keeps its line breaks and wraps (full messages),
    columns ``nowrap`` (short words such as a direction) never break, column ``named`` (record
    numbers and names) stays wide enough to read a number on one line."""
    extra = {wrap: ";white-space:pre-wrap", named: ";min-width:11em",
             **dict.fromkeys(nowrap, ";white-space:nowrap")}
    head = "".join(f'<th style="{_CELL}">{_esc(h)}</th>' for h in header)
    body = "".join(
        "<tr>" + "".join(f'<td style="{_CELL}{extra.get(i, "")}">{_esc(c)}</td>'
                         for i, c in enumerate(row)) + "</tr>"
        for row in rows)
    return (f'<table style="border-collapse:collapse;margin:4px 0"><thead><tr>{head}</tr>'
            f"</thead><tbody>{body}</tbody></table>")


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest} s"


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


@dataclass(frozen=True)
class JobReport:
    """What one job run did, ready to show (see the module docstring)."""

    title: str
    outcome: RunOutcome
    label: str
    counts: Mapping[str, int]
    started_at: datetime
    duration_s: float
    result: JobResult
    notes: tuple[str, ...] = ()
    changes: pl.DataFrame = field(default_factory=pl.DataFrame)
    failures: pl.DataFrame = field(default_factory=pl.DataFrame)
    history: tuple[RunPoint, ...] = ()
    dashboards_url: str = DEFAULT_DASHBOARDS_URL
    dry_run: bool = False
    open_alerts: pl.DataFrame = field(default_factory=pl.DataFrame)

    # -- the parts ---------------------------------------------------------------------------
    def headline(self) -> Html:
        """Outcome, counts, when and how long, and what a person should know."""
        counts = " · ".join(f"<b>{self.counts.get(n, 0)}</b> {n}" for n in HEADLINE_COUNTS)
        when = f"{self.started_at:%Y-%m-%d %H:%M} UTC"
        notes = "".join(f'<div style="{_NOTE}">{_esc(n)}</div>' for n in self.notes)
        body = (f'<div style="font-size:1.25em;margin-bottom:6px">'
                f"{outcome_badge(self.outcome, self.label)} {_esc(self.title)}</div>"
                f"<div>{counts}</div>"
                f'<div style="{_NOTE}">started {when}, synchronized in {_duration(self.duration_s)}</div>'
                f"{notes}")
        text = (f"{self.label}: {self.title}; "
                + ", ".join(f"{n} {self.counts.get(n, 0)}" for n in HEADLINE_COUNTS)
                + f"; started {when}, synchronized in {_duration(self.duration_s)}")
        return Html(f'<div style="margin:4px 0 8px">{body}</div>', text)

    def changed_records(self) -> Html:
        """The records the run changed or held, capped at :data:`CHANGES_CAP`."""
        total = self.changes.height
        if not total:
            return Html(f'<p style="{_NOTE}">No record needed a change.</p>',
                        "no record needed a change")
        shown = self.changes.head(CHANGES_CAP)
        cap = (f"Showing the first {CHANGES_CAP} of {total} changed records; the counts above "
               "are complete." if total > CHANGES_CAP else f"{_plural(total, 'record')}.")
        table = _table(["mapping", "record", "change", "fields", "result"], shown.iter_rows(),
                       nowrap=(0, 2, 4), named=1)
        return Html(f'<p style="{_NOTE}">{_esc(cap)}</p>{table}', cap)

    def failures_by_cause(self) -> Html:
        """Failed records grouped by cause (most records first), full messages."""
        if not self.failures.height:
            return Html(f'<p style="{_NOTE}">No record failed in this run.</p>',
                        "no record failed in this run")
        parts, lines = [], []
        for cause, group in _by_cause(self.failures):
            count = group["record"].n_unique()
            listed = group.head(RECORDS_PER_CAUSE_CAP)
            cap = (f" — the first {RECORDS_PER_CAUSE_CAP} are listed"
                   if group.height > RECORDS_PER_CAUSE_CAP else "")
            parts.append(f'<div style="margin:12px 0 2px"><b>{_esc(_plural(count, "record"))}'
                         f"</b>: {_esc(_cause_text(cause))}{_esc(cap)}</div>"
                         + _table(["record", "direction", "message"],
                                  listed.select("record", "direction", "message").iter_rows(),
                                  wrap=2, nowrap=(1,), named=0))
            lines.append(f"{_plural(count, 'record')}: {_cause_text(cause)}")
        return Html("".join(parts), "\n".join(lines))

    def alerts(self) -> Html:
        """The open alerts (evaluated after this run), this job's and mapping's first."""
        return Html(*alerts_html(self.open_alerts))

    def runs_over_time(self) -> RunsChart:
        """The job's last :data:`HISTORY_RUNS` runs, this one included."""
        count = len(self.history)
        return runs_chart(self.history, f"Last {'run' if count == 1 else f'{count} runs'} of "
                          f"{self.title}")

    def troubleshooting(self) -> Html:
        """Where to go next: the troubleshooting dashboard."""
        url = f"{self.dashboards_url.rstrip('/')}/voila/render/{TROUBLESHOOTING_NOTEBOOK}"
        text = ("Group, retry or skip failed records in the troubleshooting dashboard: "
                f"{url} (served by `nav-crm-ops ui`).")
        return Html(f'<p>Group, retry or skip failed records in the <a href="{_esc(url)}" '
                    f'target="_blank">troubleshooting dashboard</a>.</p>'
                    f'<p style="{_NOTE}">The link works while the dashboards run (`nav-crm-ops '
                    f"ui`); when they are served elsewhere, set the job's dashboards_url "
                    f"parameter.</p>", text)

    def hand_back(self, result_path: str | Path) -> JobResult:
        """Write the summary the job runner reads (nothing when run interactively)."""
        return write_result(result_path, self.result)


def _open_alerts(ws: Workspace, info: _RunInfo) -> pl.DataFrame:
    """Open alerts, those about this job or mapping first."""
    frame = ws.alerts()
    if not frame.height:
        return frame
    mine = (pl.col("subject") == info.job_name) | pl.col("subject").str.starts_with(info.mapping)
    return frame.with_columns(mine.alias("_mine")).sort(["_mine", "id"], descending=True
                                                         ).drop("_mine")


def _cause_text(cause: str) -> str:
    """A cause as people read it: the error log's placeholders for the values that differ
    between records (``'<value>'``, ``<n>``) shown as an ellipsis and N."""
    return cause.replace("'<value>'", "…").replace("<value>", "…").replace("<n>", "N")


def _by_cause(failures: pl.DataFrame) -> list[tuple[str, pl.DataFrame]]:
    groups = [(str(key[0]), frame) for key, frame in failures.group_by("cause", maintain_order=True)]
    return sorted(groups, key=lambda g: (-g[1]["record"].n_unique(), g[0]))


# -- gathering ------------------------------------------------------------------------------------
def run_sync_job(workspace: str | Path, mapping: str, *, job_name: str = "",
                 dry_run: bool = False, dashboards_url: str = "",
                 title: str = "", approval: Mapping[str, Any] | None = None) -> JobReport:
    """Preview and (unless ``dry_run``) synchronize ``mapping`` in the workspace at
    ``workspace``, and gather the report; the workspace is closed when this returns.

    ``approval`` (the job's approval settings, :mod:`nav_crm_ops.jobs.approvals`) runs the job
    in approval mode (:func:`~nav_crm_ops.jobs.approval_gate.run_gate`); approvals are kept
    under ``job_name`` (the mapping's name when run without one)."""
    ws = open_workspace(workspace)
    try:
        mapping = ws.mappings.get(mapping).name  # an unknown mapping fails before any request
        job = job_name or mapping
        settings = (None if approval is None or dry_run
                    else ApprovalSettings.parse(job, approval))
        if not dry_run:
            with mapping_lease(ws.store, mapping):  # busy elsewhere: fail before the preview
                pass
        started, clock = datetime.now(UTC), time.monotonic()
        if settings is not None:
            gate = run_gate(ws, mapping, job, settings)
            return _gated(ws, gate, _RunInfo(
                title or job, mapping, job_name, started, time.monotonic() - clock,
                dashboards_url or DEFAULT_DASHBOARDS_URL))
        plan = ws.preview(mapping)
        report = None if dry_run else ws.sync(mapping, job_name=job_name)
        duration = time.monotonic() - clock
        return _gather(ws, plan, report, _RunInfo(
            title or job_name or mapping, mapping, job_name, started, duration,
            dashboards_url or DEFAULT_DASHBOARDS_URL))
    finally:
        ws.close()


@dataclass(frozen=True)
class _RunInfo:
    title: str
    mapping: str
    job_name: str
    started_at: datetime
    duration_s: float
    dashboards_url: str


def _erp(ws: Workspace) -> str:
    return "NAV" if ws.config.workspace.profile == ErpProfile.NAV2018 else "BC"


def _stamp(value: str | None) -> str:
    return "-" if not value else f"{value[:16].replace('T', ' ')} UTC"


def _gated(ws: Workspace, gate: GateResult, info: _RunInfo) -> JobReport:
    """An approval-mode run's report: as any run's when it wrote (and who approved the plan
    it applied), else what waits for approval, why, and how to approve or reject it."""
    waiting = gate.waiting
    if gate.report is not None or waiting is None:
        report = _gather(ws, gate.plan, gate.report, info)
        done = gate.applied
        if done is None:
            return report
        note = (f"Applied plan #{done.id} ({done.plan_path}) exactly as approved by "
                f"{done.approved_by} at {_stamp(done.approved_at)}; records changed since its "
                "preview were refused (listed as failed) and are previewed again next run.")
        return replace(report, notes=(note, *report.notes),
                       result=replace(report.result, message=note))
    label = f"waiting for approval: {waiting.why}"
    since = ("saved by this run" if gate.new
             else f"waiting since {_stamp(waiting.created_at)}")
    how = (f"Nothing was written. Plan #{waiting.id} is saved as {waiting.plan_path} ({since}, "
           f"expires {_stamp(waiting.expires_at)}). Approve it with `nav-crm-ops plans "
           f"approve {waiting.id} --by NAME` or reject it with `nav-crm-ops plans reject "
           f"{waiting.id} --by NAME`: the job's next run applies exactly this plan and refuses "
           "the records changed since.")
    # changed: a waiting job must not sleep for inactivity; its next run applies the plan
    result = JobResult(changed=True, counts={AWAITING_APPROVAL: 1}, message=label,
                       outcome=RunOutcome.AWAITING_APPROVAL)
    return JobReport(info.title, RunOutcome.AWAITING_APPROVAL, label, {}, info.started_at,
                     info.duration_s, result, (how,),
                     _changes(gate.plan, set(), _erp(ws), dry_run=True), pl.DataFrame(),
                     _history(ws, info, ()), info.dashboards_url,
                     open_alerts=_open_alerts(ws, info))


def _gather(ws: Workspace, plan: Plan, report: SyncReport | None, info: _RunInfo) -> JobReport:
    erp = _erp(ws)
    if report is None:
        pending = plan.records.filter(pl.col("action").is_in([str(a) for a in _CHANGING]))
        result = JobResult(changed=pending.height > 0,
                           message=f"dry run: {_plural(pending.height, 'record')} would change")
        return JobReport(info.title, RunOutcome.SUCCEEDED, "dry run: nothing written",
                         {}, info.started_at, info.duration_s, result, (result.message,),
                         _changes(plan, set(), erp, dry_run=True), pl.DataFrame(),
                         _history(ws, info, ()), info.dashboards_url, dry_run=True,
                         open_alerts=_open_alerts(ws, info))
    result = JobResult.from_report(report)
    errors = _failed_not_held(ws, info.mapping, report.run_ids)
    failed_ids = set(errors["source_id"].drop_nulls().to_list())
    notes = tuple(f"{r.mapping}: {r.message}" for r in report.results if r.message
                  and r.outcome not in (RunOutcome.SUCCEEDED_WITH_FAILURES,
                                        RunOutcome.HELD_CONFLICTS))
    totals = report.with_skipped_totals(ws.store)
    notes += _skipped_notes(totals)
    counts = {**report.counts, "skipped": totals.skipped}  # all skipped now, as printed reports
    return JobReport(info.title, report.outcome, report.outcome_label(), counts,
                     info.started_at, info.duration_s, result, notes,
                     _changes(plan, failed_ids, erp, dry_run=False), _failures(errors, erp),
                     _history(ws, info, report.run_ids), info.dashboards_url,
                     open_alerts=_open_alerts(ws, info))


def _skipped_notes(report: SyncReport) -> tuple[str, ...]:
    """What a person should know about skipped records: they are not synchronized at all."""
    return tuple(f"{r.mapping}: {_plural(r.skipped, 'record')} skipped after failing again "
                 "and again: not synchronized until restored in the troubleshooting dashboard."
                 for r in report.results if r.skipped)


def _failed_not_held(ws: Workspace, mapping: str, run_ids: Sequence[int]) -> pl.DataFrame:
    """The record errors of the run, without its held conflicts (the error log keeps those
    too; the report lists them with their values among the changed records)."""
    runs = list(run_ids)
    errors = ws.errors(mapping).filter(pl.col("run_id").is_in(runs))
    held = ws.failed_records(mapping).filter(
        pl.col("run_id").is_in(runs) & (pl.col("state") == "conflict"))
    return errors.join(held.select("direction", "source_id"), on=["direction", "source_id"],
                       how="anti")


def _action_text(action: str, erp: str) -> str:
    texts: dict[str, str] = {
        PlanAction.INSERT_CRM: "create in CRM", PlanAction.INSERT_NAV: f"create in {erp}",
        PlanAction.UPDATE_CRM: "update CRM", PlanAction.UPDATE_NAV: f"update {erp}",
        PlanAction.UPDATE_BOTH: f"update {erp} and CRM",
        PlanAction.CONFLICT: "held: changed on both sides",
        PlanAction.DELETION_CONFLICT: "held: deleted on one side"}
    return texts.get(action, action)


def _field_text(change: Mapping[str, Any], erp: str) -> str:
    """``field: old → new`` (the value at the side written), or both values of a conflict."""
    name = str(change["field"])
    if change["conflict"]:
        return f"{name}: {erp} {change['nav_value']!r} / CRM {change['crm_value']!r}"
    target = str(change["target"])
    old = change["crm_value"] if target == "crm" else change["nav_value"]
    if old is None:
        return f"{name} = {change['new_value']!r}"
    return f"{name}: {old!r} → {change['new_value']!r}"


def _record_text(row: Mapping[str, Any]) -> str:
    nav = record_label(row["nav_key"], row["nav_name"])
    crm = record_label(row["crm_key"], row["crm_name"])
    first = crm if row["action"] == PlanAction.INSERT_NAV else nav
    return first or nav or crm or str(row["nav_id"] or row["crm_id"] or row["record_id"])


def _result_text(row: Mapping[str, Any], failed_ids: set[str], dry_run: bool) -> str:
    if row["action"] in _HELD:
        return "held (not written)"
    if dry_run:
        return "would be written"
    if {row["nav_id"], row["crm_id"]} & failed_ids:
        return "failed (see below)"
    return "written"


def _changes(plan: Plan, failed_ids: set[str], erp: str, *, dry_run: bool) -> pl.DataFrame:
    """One row per changed or held record of the plan: mapping, record, change, fields,
    result (the first :data:`CHANGES_CAP` get their field texts)."""
    records = plan.records.filter(pl.col("action").cast(pl.Utf8).is_in([str(a) for a in _CHANGING]))
    fields = plan.field_changes.filter(shown_change()).join(
        records.head(CHANGES_CAP).select("mapping", "record_id"), on=["mapping", "record_id"],
        how="semi")
    by_record: dict[tuple[str, str], list[str]] = {}
    for change in fields.iter_rows(named=True):
        by_record.setdefault((change["mapping"], change["record_id"]), []).append(
            _field_text(change, erp))
    rows = [(row["mapping"], _record_text(row), _action_text(str(row["action"]), erp),
             "; ".join(by_record.get((row["mapping"], row["record_id"]), [])),
             _result_text(row, failed_ids, dry_run))
            for row in records.iter_rows(named=True)]
    return pl.DataFrame(rows, schema=["mapping", "record", "change", "fields", "result"],
                        orient="row")


def _failures(errors: pl.DataFrame, erp: str) -> pl.DataFrame:
    """One row per failed record of the run (its last message): cause, record, direction,
    full message."""
    direction = {"to_crm": f"{erp} → CRM", "from_crm": f"CRM → {erp}"}
    latest = errors.sort("id").unique(subset=["direction", "source_id"], keep="last",
                                      maintain_order=True)
    rows = [(row["normalized_message"] or row["message"],
             row["source_label"] or row["source_id"] or "(unknown record)",
             direction.get(row["direction"], row["direction"]), row["message"])
            for row in latest.iter_rows(named=True)]
    return pl.DataFrame(rows, schema=["cause", "record", "direction", "message"], orient="row")


def _history(ws: Workspace, info: _RunInfo, run_ids: Sequence[int]) -> tuple[RunPoint, ...]:
    """The job's last :data:`HISTORY_RUNS` runs from the job log: the entries of one run share
    its output notebook (this run's are not linked yet: they are known by id); entries of
    runs outside any job count once per start second."""
    log = ws.runs(info.mapping, limit=HISTORY_RUNS * 8).filter(pl.col("kind") == "sync")
    if info.job_name:
        log = log.filter(pl.col("job_name") == info.job_name)
    current = set(run_ids)
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in log.iter_rows(named=True):
        key = ("this run" if row["id"] in current
               else row["output_path"] or str(row["started_at"])[:19])
        groups.setdefault(key, []).append(row)
    points = [RunPoint(
        started_at=min(datetime.fromisoformat(r["started_at"]) for r in rows),
        outcome=RunOutcome.worst(RunOutcome(r["outcome"]) for r in rows),
        written=sum(r["inserted"] + r["modified"] + r["deleted"] for r in rows),
        failed=sum(r["failed"] for r in rows)) for rows in groups.values()]
    return tuple(sorted(points, key=lambda p: p.started_at)[-HISTORY_RUNS:])
