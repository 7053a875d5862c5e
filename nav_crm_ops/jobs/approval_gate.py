"""One run of a sync job in approval mode, and a person's approval or rejection of a plan.

Why a module of its own: the job report (:func:`nav_crm_ops.jobs.report.run_sync_job`) runs
the gate and shows what it decided; ``nav-crm-ops plans`` approves and rejects through the same
functions, so the checks (digest, signature, state, expiry) live in one place.

A run (:func:`run_gate`), in order:

1. pending approvals of the job past their ``expires_at`` expire;
2. an **approved** plan of the job is applied — exactly that file, checked again (signed by
   this workspace, unedited, the digest recorded at approval), through
   :meth:`Workspace.apply`, which refuses every record changed since the preview
   (``engine.freshness``) and reports it; the approval becomes ``applied`` with the job-log
   run ids. Nothing else runs: the job continues normally next time;
3. a **pending** approval: the run waits again, without reading the services;
4. otherwise the mapping is previewed; a plan within the thresholds is synchronized as any
   job does (``Workspace.sync``: plans again and writes, so a record edited in the seconds
   between is written as it is then); one above them is saved signed under
   ``<workspace>/plans/`` and a pending approval records why.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from ..exceptions import ConfigError, PlanError
from ..store.approvals import Approval, ApprovalRepository, ApprovalState
from ..store.schema import utc_now
from .approvals import ApprovalSettings, approval_reasons, check_fields, plan_counts

if TYPE_CHECKING:
    from ..engine.plan import Plan
    from ..engine.report import SyncReport
    from ..engine.workspace import Workspace

__all__ = ["PLANS_DIR", "GateResult", "approve", "find_approval", "reject", "run_gate",
           "stop_waiting"]

PLANS_DIR = "plans"
"""Where approval-mode jobs save the plans that wait (inside the workspace)."""
_TIME = "%Y-%m-%dT%H:%M:%S.%fZ"


@dataclass(frozen=True)
class GateResult:
    """What an approval-mode run did: ``report`` is None when nothing was written (the run
    waits for ``waiting``); ``applied`` is the approval whose plan this run applied."""

    plan: Plan
    report: SyncReport | None = None
    waiting: Approval | None = None
    applied: Approval | None = None
    new: bool = False
    """The run saved ``waiting`` now (False: it was waiting already)."""


def run_gate(ws: Workspace, mapping: str, job: str, settings: ApprovalSettings) -> GateResult:
    """One approval-mode run of ``job`` synchronizing ``mapping`` (see the module
    docstring)."""
    check_fields(settings, ws.mappings.get(mapping), job)
    repo = ws.store.approvals
    repo.expire(job=job, now=utc_now(), note="not approved before it expired; the job "
                "previewed again")
    approved = repo.find(job=job, states=[ApprovalState.APPROVED])
    if approved:
        return _apply_approved(ws, repo, approved[-1], job)
    for pending in repo.find(job=job, states=[ApprovalState.PENDING]):
        try:
            return GateResult(checked_plan(ws, pending), waiting=pending)
        except PlanError as error:  # gone or edited: nobody can approve it any more
            repo.move(pending.id, [ApprovalState.PENDING], ApprovalState.EXPIRED,
                      note=f"{error}; the job previewed again")
    plan = ws.preview(mapping)
    counts = plan_counts(plan, ws.store.couplings.count(mapping), settings.fields)
    reasons = approval_reasons(counts, settings)
    if not reasons:
        return GateResult(plan, report=ws.sync(mapping, job_name=job))
    path = _plan_path(ws, job)
    ws.save_plan(plan, path)
    from ..engine.plan import read_plan_metadata

    expires = datetime.now(UTC) + timedelta(hours=settings.expires_after_hours)
    approval = repo.add(job=job, mapping=mapping, plan_id=plan.metadata.plan_id,
                        plan_path=_stored_path(path, ws.config.root),
                        digest=str(read_plan_metadata(path)["content_sha256"]),
                        counts=counts.to_dict(), reasons=reasons,
                        expires_at=expires.strftime(_TIME))
    return GateResult(plan, waiting=approval, new=True)


def _apply_approved(ws: Workspace, repo: ApprovalRepository, approval: Approval,
                    job: str) -> GateResult:
    """Apply exactly the approved plan; a plan file that no longer checks out expires the
    approval and fails the run (a person must know)."""
    try:
        plan = checked_plan(ws, approval)
    except PlanError as error:
        repo.move(approval.id, [ApprovalState.APPROVED], ApprovalState.EXPIRED,
                  note=f"not applied: {error}")
        raise PlanError(f"approval #{approval.id} of job {job!r} was not applied: {error}; "
                        "the approval expired and the next run previews again") from None
    report = ws.apply(plan, job_name=job)
    repo.move(approval.id, [ApprovalState.APPROVED], ApprovalState.APPLIED,
              applied_at=utc_now(), applied_run_ids=report.run_ids)
    return GateResult(plan, report=report, applied=repo.get(approval.id) or approval)


def checked_plan(ws: Workspace, approval: Approval) -> Plan:
    """The approval's plan, loaded and checked: signed by this workspace and unedited
    (:meth:`Workspace.load_plan`), and the very file that was recorded (its digest)."""
    path = plan_file(approval, ws.config.root)
    plan = ws.load_plan(path)
    if plan.metadata.content_sha256 != approval.digest:
        raise PlanError(f"plan file {path} is not the plan recorded for approval "
                        f"#{approval.id} (its digest differs): it was replaced after the job "
                        "saved it")
    return plan


def plan_file(approval: Approval, root: Path) -> Path:
    path = Path(approval.plan_path)
    return path if path.is_absolute() else root / path


def _stored_path(path: Path, root: Path) -> str:
    resolved, base = path.resolve(), root.resolve()
    return str(resolved.relative_to(base)) if resolved.is_relative_to(base) else str(resolved)


def _plan_path(ws: Workspace, job: str) -> Path:
    slug = re.sub(r"[^a-z0-9]+", "-", job.lower()).strip("-")[:60] or "job"
    folder = ws.config.root / PLANS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{slug}-{datetime.now(UTC):%Y%m%dT%H%M%S%f}.parquet"


# -- a person decides -----------------------------------------------------------------------------
def find_approval(repo: ApprovalRepository, ref: str, root: Path) -> Approval:
    """The approval named by ``ref``: its number, its plan's id, or its plan file's path
    (absolute, or relative to the current folder or the workspace)."""
    text = ref.strip()
    found: list[Approval] = []
    if text.lstrip("#").isdigit():
        one = repo.get(int(text.lstrip("#")))
        found = [one] if one is not None else []
    if not found:
        found = repo.find(plan_id=text, limit=1)
    if not found and text:
        for candidate in (Path(text).expanduser(), root / text):
            found = repo.find(plan_path=_stored_path(candidate, root), limit=1)
            if found:
                break
    if not found:
        raise ConfigError(f"no approval {ref!r} in this workspace: give its number, its plan "
                          "id or its plan file (`nav-crm-ops plans list` shows them)")
    return found[0]


def _person(by: str) -> str:
    name = " ".join(by.split())
    if not name or len(name) > 200:
        raise ConfigError("--by must name the person deciding (1 to 200 characters)")
    return name


def approve(ws: Workspace, ref: str, by: str) -> Approval:
    """``by`` approves the pending plan ``ref``: refused (PlanError) when it is not pending,
    has expired, or its file was edited, replaced or is not this workspace's."""
    name = _person(by)
    repo = ws.store.approvals
    approval = find_approval(repo, ref, ws.config.root)
    _refuse_decided(approval)
    if approval.expires_at is not None and approval.expires_at <= utc_now():
        repo.move(approval.id, [ApprovalState.PENDING], ApprovalState.EXPIRED,
                  note="not approved before it expired")
        raise PlanError(f"approval #{approval.id} expired at {approval.expires_at}; the job "
                        "previews again at its next run")
    checked_plan(ws, approval)
    if not repo.move(approval.id, [ApprovalState.PENDING], ApprovalState.APPROVED,
                     approved_by=name, approved_at=utc_now()):
        raise PlanError(f"approval #{approval.id} changed while it was being approved: "
                        "`nav-crm-ops plans list` shows its state now")
    return repo.get(approval.id) or approval


def reject(ws: Workspace, ref: str, by: str, reason: str = "") -> Approval:
    """``by`` rejects a pending (or approved, not yet applied) plan: it is never applied, and
    the job previews again at its next run."""
    name = _person(by)
    repo = ws.store.approvals
    approval = find_approval(repo, ref, ws.config.root)
    if approval.state not in (ApprovalState.PENDING, ApprovalState.APPROVED):
        _refuse_decided(approval)
    if not repo.move(approval.id, [ApprovalState.PENDING, ApprovalState.APPROVED],
                     ApprovalState.REJECTED, rejected_by=name, rejected_at=utc_now(),
                     note=" ".join(reason.split())):
        raise PlanError(f"approval #{approval.id} changed while it was being rejected "
                        "(the job may have applied it): `nav-crm-ops plans list` shows it")
    return repo.get(approval.id) or approval


def _refuse_decided(approval: Approval) -> None:
    if approval.state is ApprovalState.PENDING:
        return
    who = {ApprovalState.APPROVED: f" by {approval.approved_by} at {approval.approved_at}",
           ApprovalState.APPLIED: f" at {approval.applied_at}",
           ApprovalState.REJECTED: f" by {approval.rejected_by} at {approval.rejected_at}",
           }.get(approval.state, f" ({approval.note})" if approval.note else "")
    raise PlanError(f"approval #{approval.id} is already {approval.state.value}{who}; only "
                    "a pending plan can be approved")


def stop_waiting(repo: ApprovalRepository, job: str) -> int:
    """Approval mode was turned off for ``job``: its open approvals expire (nothing would
    apply them)."""
    return repo.expire(job=job, now=utc_now(), note="approval mode was turned off for the job",
                       all_open=True)
