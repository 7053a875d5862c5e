"""A plan an approval-mode job saved is applied by that job, after approval, and nowhere else.

Why: the file lies in ``<workspace>/plans/`` signed by the workspace, so ``sync --plan`` or the
preview dashboard's "Load plan" would otherwise apply it before anyone approved it (or after
someone rejected it), and the approval record would not say who let the change through.
"""

from __future__ import annotations

from ..exceptions import PlanError
from ..store.approvals import Approval, ApprovalRepository, ApprovalState

__all__ = ["refuse_unapproved"]


def refuse_unapproved(repo: ApprovalRepository, plan_id: str, job_name: str) -> None:
    """Raise PlanError when plan ``plan_id`` belongs to an approval and this is not its job
    applying it once approved."""
    found = repo.find(plan_id=plan_id, limit=1) if plan_id else []
    if not found:
        return
    approval = found[0]
    if approval.state is ApprovalState.APPROVED and job_name == approval.job:
        return
    raise PlanError(f"plan {plan_id} is approval #{approval.id} of job {approval.job!r}, "
                    f"{_standing(approval)}")


def _standing(approval: Approval) -> str:
    number = approval.id
    if approval.state is ApprovalState.PENDING:
        return (f"waiting for approval: approve it (`nav-crm-ops plans approve {number} --by "
                "NAME` or the preview dashboard's Approvals) and the job applies exactly "
                "this plan at its next run")
    if approval.state is ApprovalState.APPROVED:
        return (f"approved by {approval.approved_by}: the job applies it at its next run "
                f"(`nav-crm-ops jobs run {approval.job}` runs it now)")
    if approval.state is ApprovalState.APPLIED:
        return f"applied already at {approval.applied_at}; preview again for what is left"
    if approval.state is ApprovalState.REJECTED:
        return (f"rejected by {approval.rejected_by}: it is never applied; preview again "
                "for a new plan")
    return "expired: it is never applied; the job previews again at its next run"
