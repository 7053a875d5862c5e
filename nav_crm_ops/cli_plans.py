"""``nav-crm-ops plans``: the plans approval-mode jobs saved, and a person's decision on each.

Why a module of its own: the main CLI is at its size limit; like ``cli_alerts.py`` this group
registers itself with the main group (:func:`nav_crm_ops.cli._register_groups`). The checks
(digest, signature, state, expiry) are :mod:`nav_crm_ops.jobs.approval_gate`'s; a refused
approval is a PlanError (exit 2) that says why and what to do.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import click

from .cli_options import json_option, workspace_option

if TYPE_CHECKING:
    from .engine.workspace import Workspace

__all__ = ["plans_group"]

_STATES = ("pending", "approved", "rejected", "applied", "expired")


@contextmanager
def _workspace(workspace_path: Path) -> Iterator[Workspace]:
    from .engine.workspace import open_workspace

    ws = open_workspace(workspace_path)
    try:
        yield ws
    finally:
        ws.close()


def _when(value: str | None) -> str:
    return "-" if not value else value[:16].replace("T", " ")


@click.group("plans")
def plans_group() -> None:
    """Plans waiting for approval: list them, approve or reject one (docs/approvals.md)."""


@plans_group.command("list")
@click.option("--state", type=click.Choice(_STATES), help="Only approvals in this state.")
@click.option("--job", help="Only this job's approvals (its name).")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 100_000))
@workspace_option
@json_option
def list_command(state: str | None, job: str | None, limit: int, workspace_path: Path,
                 as_json: bool) -> None:
    """Every approval, newest first: its plan, why it needed approval, who decided when."""
    from .store.approvals import ApprovalState

    with _workspace(workspace_path) as ws:
        found = ws.store.approvals.find(
            job=job, states=[ApprovalState(state)] if state else (), limit=limit)
    if as_json:
        click.echo(json.dumps([a.to_dict() for a in found], indent=1))
        return
    if not found:
        click.echo("no approvals recorded" + (f" in state {state}" if state else ""))
        return
    for a in found:
        decided = (f"approved by {a.approved_by} {_when(a.approved_at)}" if a.approved_by
                   else "")
        if a.rejected_by:
            decided = f"rejected by {a.rejected_by} {_when(a.rejected_at)}"
        runs = ", ".join(map(str, a.applied_run_ids))
        applied = f"; applied {_when(a.applied_at)} (runs {runs})" if a.applied_at else ""
        click.echo(f"#{a.id}  {a.state.value:<8}  {a.job}  saved {_when(a.created_at)} UTC\n"
                   f"    why: {a.why}\n    plan: {a.plan_path}"
                   + (f"\n    {decided}{applied}" if decided or applied else "")
                   + (f"\n    note: {a.note}" if a.note else ""))


@plans_group.command("approve")
@click.argument("plan")
@click.option("--by", "by", required=True, help="The name of the person approving.")
@workspace_option
def approve_command(plan: str, by: str, workspace_path: Path) -> None:
    """Approve PLAN (its approval number, plan id or file): the job's next run applies
    exactly it, refusing records changed since. An edited plan file is refused (exit 2)."""
    from .jobs.approval_gate import approve

    with _workspace(workspace_path) as ws:
        approval = approve(ws, plan, by)
    click.echo(f"approved #{approval.id} ({approval.job}: {approval.why}) by "
               f"{approval.approved_by} at {_when(approval.approved_at)} UTC; the job's next "
               "run applies it")


@plans_group.command("reject")
@click.argument("plan")
@click.option("--by", "by", required=True, help="The name of the person rejecting.")
@click.option("--reason", default="", help="Why (kept with the approval).")
@workspace_option
def reject_command(plan: str, by: str, reason: str, workspace_path: Path) -> None:
    """Reject PLAN: it is never applied; the job previews again at its next run."""
    from .jobs.approval_gate import reject

    with _workspace(workspace_path) as ws:
        approval = reject(ws, plan, by, reason)
    click.echo(f"rejected #{approval.id} ({approval.job}) by {approval.rejected_by}; the job "
               "previews again at its next run")
