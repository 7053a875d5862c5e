"""ApprovalsSection: the plans approval-mode jobs saved, reviewed and decided in the dashboard.

Why: a job in approval mode (docs/approvals.md) stops a plan above its thresholds and waits for
a named person. ``nav-crm-ops plans approve`` decides from the command line; the people who
review a sync's changes work in the Preview dashboard, so the same decision is made there:
the section lists what waits (job, mapping, when, creates / updates / deletions, the threshold
that stopped it), loads one plan into the Preview panel's review grid (the same record table
and field diff as any preview, read-only: what the job applies is the saved file), and
approves or rejects it in a person's name with an optional comment. The checks (digest,
signature, state, expiry) are :mod:`nav_crm_ops.jobs.approval_gate`'s, so a refusal reads as
on the command line ("approval #3 is already rejected by Dana at ...").

The dashboard login names nobody, so the name is typed, never guessed: a decision without one
is refused. It is remembered for the kernel's session (every panel opened in it starts with
it). :class:`~nav_crm_ops.widgets.preview.PreviewPanel` composes this section; ``?view=
approvals`` opens the Preview dashboard on it (:data:`.dashboard_links.APPROVALS`).
"""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol, cast

import ipywidgets as widgets
import polars as pl

from ..exceptions import ConfigError
from ..store.approvals import Approval, ApprovalState
from .errors import ActionButton, ErrorArea, guarded
from .table import ALL, DataTable

if TYPE_CHECKING:
    from ..engine.plan import Plan
    from ..engine.workspace import Workspace

__all__ = ["ApprovalsSection", "ApprovalsWorkspace", "approvals_frame", "next_run_text",
           "review_banner_html", "review_only_text"]


class ApprovalsWorkspace(Protocol):
    """What the section needs of a workspace: its state store (the ``approvals`` table, the
    job queue) and what :mod:`nav_crm_ops.jobs.approval_gate` checks a plan with."""

    store: Any
    config: Any

    def load_plan(self, path: Any) -> Plan: ...

OPEN_STATES = (ApprovalState.PENDING, ApprovalState.APPROVED)
"""What the list shows unless "show decided plans too" is ticked: plans a run has yet to act
on (pending: waits for a decision; approved: the next run applies it)."""

_COLUMNS = ("number", "state", "job", "mapping", "saved", "creates", "updates", "deletes",
            "why", "next run", "decided")
_STATE_STYLE = {ApprovalState.PENDING.value: "background:#fff8e1",
                ApprovalState.APPROVED.value: "background:#e8f5e9"}
_remembered = {"name": ""}
"""The name typed last in this kernel (the session): a new panel starts with it."""


def _when(value: str | None) -> str:
    return "" if not value else value[:16].replace("T", " ") + " UTC"


def _decided(approval: Approval) -> str:
    if approval.rejected_by:
        return f"rejected by {approval.rejected_by} {_when(approval.rejected_at)}"
    if approval.approved_by:
        return f"approved by {approval.approved_by} {_when(approval.approved_at)}"
    return ""


def next_run_text(approval: Approval, scheduled: str = "") -> str:
    """What the job's next run does about ``approval``, in words (``scheduled``: when that run
    is, e.g. "at 2026-12-03 22:00 UTC")."""
    when = f" ({scheduled})" if scheduled else ""
    job = approval.job
    return {
        ApprovalState.PENDING: (f"job {job} waits for a decision; its runs{when} write "
                                "nothing meanwhile"),
        ApprovalState.APPROVED: (f"the next run of job {job}{when} applies exactly this plan, "
                                 "refusing records changed since the preview"),
        ApprovalState.REJECTED: (f"never applied; the next run of job {job}{when} previews "
                                 "again (and waits again if still above a threshold)"),
        ApprovalState.EXPIRED: (f"never applied; the next run of job {job}{when} previews "
                                "again"),
        ApprovalState.APPLIED: (f"applied {_when(approval.applied_at)} (job-log runs "
                                f"{', '.join(map(str, approval.applied_run_ids)) or '-'})"),
    }[approval.state]


def review_banner_html(approval: Approval) -> str:
    """The line above the review grid while it shows ``approval``'s plan."""
    return (f"<div class='nav-crm-ops-reviewing' style='background:#fff8e1;padding:6px 10px'>"
            f"<b>Reviewing the plan of approval #{approval.id}</b> (job "
            f"{html.escape(approval.job)}, {html.escape(approval.state.value)}: "
            f"{html.escape(approval.why)}). Read-only: approve or reject it above; the job's "
            "next run applies the approved plan.</div>")


def review_only_text(approval: Approval) -> str:
    """Why the review grid refuses to exclude, resolve or apply."""
    return (f"The plan of approval #{approval.id} is shown for review only: approve or reject "
            "it above (the job applies it), or run a new preview.")


def approvals_frame(approvals: Sequence[Approval]) -> pl.DataFrame:
    """The list's rows, newest first: one per approval, counts as numbers."""
    rows = [{"id": a.id, "number": f"#{a.id}", "state": a.state.value, "job": a.job,
             "mapping": a.mapping, "saved": _when(a.created_at),
             "creates": int(a.counts.get("creates", 0)),
             "updates": int(a.counts.get("updates", 0)),
             "deletes": int(a.counts.get("deletes", 0)), "why": a.why,
             "next run": next_run_text(a), "decided": _decided(a)} for a in approvals]
    schema = {"id": pl.Int64, "creates": pl.Int64, "updates": pl.Int64, "deletes": pl.Int64}
    return pl.DataFrame(rows, schema_overrides=schema) if rows else pl.DataFrame(
        schema={c: schema.get(c, pl.Utf8) for c in ("id", *_COLUMNS)})


def _row_style(row: dict[str, Any]) -> str:
    return _STATE_STYLE.get(str(row.get("state")), "color:#57606a")


def _scheduled(workspace: ApprovalsWorkspace, job: str) -> str:
    """When ``job`` runs next, in words ("" when the queue does not say)."""
    from ..jobs.queue import JobQueue

    try:
        entry = JobQueue(workspace.store).get(job)
    except ConfigError:
        return "the job is no longer in the job queue"
    if entry.next_run_at is None:
        return f"not scheduled: the job is {entry.status}"
    return f"due {entry.next_run_at:%Y-%m-%d %H:%M} UTC"


class ApprovalsSection:
    """See the module docstring. ``review(plan, approval)`` shows a plan in the review grid
    (the Preview panel's); tests drive the children as people would: ``table.select([id])``,
    ``person.value``, ``approve_button.click()``."""

    def __init__(self, workspace: ApprovalsWorkspace,
                 review: Callable[[Plan, Approval], None], *, page_size: int = 10) -> None:
        self.workspace = workspace
        self.review = review
        self.approvals: dict[int, Approval] = {}
        self.errors = ErrorArea()
        self.headline = widgets.HTML(value="")
        self.show_decided = widgets.Checkbox(value=False, description="show decided plans too",
                                             indent=False, layout=widgets.Layout(width="auto"))
        self.refresh_button = ActionButton(description="Refresh", icon="refresh")
        self.table = DataTable(key_column="id", label_columns=("number", "job"),
                               choice_columns=("state", "job"),
                               search_columns=("number", "job", "mapping", "why", "decided"),
                               columns=_COLUMNS, page_size=page_size, row_style=_row_style,
                               errors=self.errors)
        # named apart from the record grids (pages and their tests address "the first record
        # grid" and its "Rows/page"; the review grid stays that, this list sits above it)
        self.table.widget.remove_class("nav-crm-ops-table")
        self.table.widget.add_class("nav-crm-ops-approvals-table")
        self.table.page_size.description = "Plans/page"
        self.detail = widgets.HTML(value="")
        self.review_button = ActionButton(description="Show in the review grid", icon="search")
        self.person = widgets.Text(value=_remembered["name"], description="Your name",
                                   placeholder="who decides (required)")
        self.comment = widgets.Text(value="", description="Comment",
                                    placeholder="optional: why", layout=widgets.Layout(
                                        width="40em"))
        self.approve_button = ActionButton(description="Approve", icon="check",
                                           button_style="success")
        self.reject_button = ActionButton(description="Reject", icon="times",
                                          button_style="danger")
        self._connect()
        self.widget = self._layout()
        self.refresh()

    def _connect(self) -> None:
        self.refresh_button.on_click(guarded(self.errors, "list the approvals")(
            lambda _: self.refresh()))
        self.show_decided.observe(guarded(self.errors, "list the approvals")(
            lambda _: self.refresh()), names="value")
        self.table.on_select(guarded(self.errors, "show the approval")(
            lambda _: self._show_detail()))
        self.review_button.on_click(guarded(self.errors, "load the plan for review")(
            lambda _: self.review_selected()))
        self.person.observe(lambda change: _remembered.update(name=str(change["new"])),
                            names="value")
        self.approve_button.on_click(guarded(self.errors, "approve the plan")(
            lambda _: self.decide(approve=True)))
        self.reject_button.on_click(guarded(self.errors, "reject the plan")(
            lambda _: self.decide(approve=False)))

    def _layout(self) -> widgets.VBox:
        """One line when nothing is listed (the Preview dashboard stays as it was for people
        who use no approvals); the list, the details and the decision otherwise."""
        self.body = widgets.VBox([
            self.table.widget,
            self.detail,
            widgets.HBox([self.review_button]),
            widgets.HBox([self.person, self.comment],
                         layout=widgets.Layout(flex_flow="row wrap")),
            widgets.HBox([self.approve_button, self.reject_button]),
        ])
        box = widgets.VBox([
            widgets.HTML("<h4>Plans waiting for approval</h4>"),
            widgets.HBox([self.headline, self.refresh_button, self.show_decided],
                         layout=widgets.Layout(align_items="center", flex_flow="row wrap")),
            self.errors.widget,
            self.body,
        ], layout=widgets.Layout(border="1px solid #d0d7de", padding="4px 10px",
                                 margin="0 0 12px 0"))
        box.add_class("nav-crm-ops-approvals")
        return box

    # -- the list ---------------------------------------------------------------------------------
    def refresh(self) -> None:
        """Read the approvals again (open ones; every one with "show decided plans too");
        the message about an earlier step goes (the job may have acted since)."""
        self.errors.clear()
        states = () if self.show_decided.value else OPEN_STATES
        found = self.workspace.store.approvals.find(states=states)
        self.approvals = {a.id: a for a in found}
        selected = self.table.selected_keys
        self.table.set_frame(approvals_frame(found), keep_page=True)
        self.table.select_present(selected)
        waiting = sum(a.state is ApprovalState.PENDING for a in found)
        approved = sum(a.state is ApprovalState.APPROVED for a in found)
        words = [f"<b>{waiting} plan(s) wait for a decision</b>" if waiting
                 else "No plan waits for a decision."]
        if approved:
            words.append(f"{approved} approved plan(s) apply at their job's next run.")
        self.headline.value = " ".join(words)
        self.body.layout.display = "flex" if found else "none"
        self._show_detail()

    def focus(self, mapping: str = "") -> Approval | None:
        """Select the newest plan waiting for a decision (of ``mapping`` when given, any
        case), as a link to ``?view=approvals&mapping=NAME`` asks; None when none waits."""
        wanted = mapping.strip().upper()
        waiting = [a for a in self.approvals.values() if a.state is ApprovalState.PENDING
                   and (not wanted or a.mapping.upper() == wanted)]
        if not waiting:
            return None
        newest = max(waiting, key=lambda a: a.id)
        self.table.search.value = ""
        for dropdown in self.table.choices.values():
            dropdown.value = ALL
        self.table.go_to(0)
        self.table.select([newest.id])
        return newest

    @property
    def selected(self) -> Approval | None:
        """The approval selected in the list (None: none selected)."""
        keys = self.table.selected_keys
        return self.approvals.get(int(keys[0])) if keys else None

    def _show_detail(self) -> None:
        approval = self.selected
        decidable = approval is not None and approval.state in OPEN_STATES
        self.approve_button.disabled = not (approval is not None
                                            and approval.state is ApprovalState.PENDING)
        self.reject_button.disabled = not decidable
        self.review_button.disabled = not decidable
        if approval is None:
            self.detail.value = ("<i>select a plan in the list to see why it waits, review "
                                 "its records and decide</i>" if self.approvals else "")
            return
        counts = ", ".join(f"{k.removeprefix('field:')}: {v}"
                           for k, v in sorted(approval.counts.items()) if k.startswith("field:"))
        facts = [
            ("job", f"{approval.job} (mapping {approval.mapping})"),
            ("why it waits", approval.why or "-"),
            ("plan", f"creates {approval.counts.get('creates', 0)}, "
                     f"updates {approval.counts.get('updates', 0)}, "
                     f"deletions {approval.counts.get('deletes', 0)}"
                     f" (records coupled before: {approval.counts.get('coupled', 0)})"
                     + (f"; watched fields changing: {counts}" if counts else "")),
            ("saved", f"{_when(approval.created_at)} as {approval.plan_path}"),
            ("expires", _when(approval.expires_at) or "never"),
            ("decided", _decided(approval) or "not yet"),
            ("note", approval.note),
            ("next run", next_run_text(approval, _scheduled(self.workspace, approval.job))),
        ]
        rows = "".join(f"<tr><th style='text-align:left;padding-right:12px'>{name}</th>"
                       f"<td>{html.escape(value)}</td></tr>" for name, value in facts if value)
        self.detail.value = (f"<p><b>Approval #{approval.id}</b> "
                             f"({html.escape(approval.state.value)})</p>"
                             f"<table class='nav-crm-ops-approval'>{rows}</table>")

    # -- review and decide ------------------------------------------------------------------------
    @property
    def _gate_workspace(self) -> Workspace:
        """The workspace as the approval gate types it (it uses only what the protocol has)."""
        return cast("Workspace", self.workspace)

    def review_selected(self) -> None:
        """Load the selected approval's plan, checked as the job checks it (signed by this
        workspace, unedited, the recorded digest), into the review grid."""
        from ..jobs.approval_gate import checked_plan

        approval = self.selected
        if approval is None:
            self.errors.show_info("Select a plan in the list first.")
            return
        self.review(checked_plan(self._gate_workspace, approval), approval)
        self.errors.show_info(f"The plan of approval #{approval.id} is shown in the review "
                              "grid below: select a record to see its field diff.")

    def decide(self, *, approve: bool) -> Approval | None:
        """Approve or reject the selected plan in the typed name; the list is read again and
        says what the job's next run does. Refusals (edited, replaced, expired, already
        decided) are shown in words, nothing changes."""
        from ..jobs import approval_gate

        approval = self.selected
        if approval is None:
            self.errors.show_info("Select a plan in the list first.")
            return None
        name = " ".join(self.person.value.split())
        if not name:
            self.errors.show_warning("Type your name in 'Your name' first: every decision is "
                                     "recorded with the person who made it.")
            return None
        comment = " ".join(self.comment.value.split())
        try:
            if approve:
                decided = approval_gate.approve(self._gate_workspace, str(approval.id), name)
                decided = self._with_comment(decided, comment)
            else:
                decided = approval_gate.reject(self._gate_workspace, str(approval.id), name, comment)
        finally:
            self.refresh()
        self.comment.value = ""
        verb = "Approved" if approve else "Rejected"
        self.errors.show_info(f"{verb} #{decided.id} ({decided.job}: {decided.why}) as "
                              f"{name}. Next: "
                              f"{next_run_text(decided, _scheduled(self.workspace, decided.job))}.")
        return decided

    def _with_comment(self, approval: Approval, comment: str) -> Approval:
        """Keep the approver's comment as the approval's note (a conditional update: lost
        only if the job applied the plan in between, which the list then shows)."""
        if not comment:
            return approval
        repo = self.workspace.store.approvals
        repo.move(approval.id, [ApprovalState.APPROVED], ApprovalState.APPROVED, note=comment)
        return repo.get(approval.id) or approval
