"""The Preview panel's approvals section (issue #20, item 2: "a button in the preview
dashboard") against a workspace on the CRONUS sandbox where a real approval-mode job run (the
job runner and papermill, as in tests/jobs/test_approvals.py) saved a plan that waits: the
list says why it waits, the plan opens read-only in the review grid, a decision needs a typed
name, the list then says what the next run does, the job's next run applies the plan; refused
decisions (edited file, already decided, expired) are shown in words and change nothing."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest
from sqlalchemy import update

from nav_crm_ops import open_workspace
from nav_crm_ops.engine.mapping import MappingSet
from nav_crm_ops.engine.workspace import Workspace
from nav_crm_ops.exceptions import PlanError
from nav_crm_ops.jobs import JobRunner, init_queue
from nav_crm_ops.store.approvals import Approval, ApprovalState
from nav_crm_ops.store.runs import RunOutcome
from nav_crm_ops.store.schema import approvals as approvals_table
from nav_crm_ops.store.schema import utc_now
from nav_crm_ops.widgets import PreviewPanel
from nav_crm_ops.widgets.dashboard_links import APPROVALS, dashboard_link
from tests.conftest import CliRunner
from tests.jobs.test_approvals import _edit_a_value

JOB = "CURRENCY - Dynamics 365 Sales synchronization job"


@pytest.fixture
def runner(workspace_dir: Path) -> Iterator[JobRunner]:
    with JobRunner(workspace_dir) as opened:
        init_queue(opened.queue, MappingSet.for_workspace(opened.config))
        yield opened


@pytest.fixture
def waiting(runner: JobRunner, workspace_dir: Path, cli: CliRunner) -> Approval:
    """CURRENCY in approval mode stopped by ``max_creates: 0``: its plan waits."""
    code, _out, err = cli("jobs", "set", "CURRENCY", "--approval", '{"max_creates": 0}',
                          "-w", str(workspace_dir))
    assert code == 0, err
    run = runner.run("CURRENCY")
    assert run.outcome is RunOutcome.AWAITING_APPROVAL, run.error
    [pending] = runner.store.approvals.find(job=JOB)
    return pending


@pytest.fixture
def ws(workspace_dir: Path) -> Iterator[Workspace]:
    with open_workspace(workspace_dir) as opened:
        yield opened


def state(ws: Workspace, approval: Approval) -> Approval:
    found = ws.store.approvals.get(approval.id)
    assert found is not None
    return found


def test_review_then_approve_in_a_typed_name_and_the_next_run_applies_the_plan(
        runner: JobRunner, waiting: Approval, ws: Workspace) -> None:
    panel = PreviewPanel(ws)
    section = panel.approvals
    creates = waiting.counts["creates"]
    assert "1 plan(s) wait for a decision" in section.headline.value
    assert section.body.layout.display == "flex"
    [row] = section.table.frame.iter_rows(named=True)
    assert (row["number"], row["state"], row["job"], row["mapping"], row["creates"]) == (
        f"#{waiting.id}", "pending", JOB, "CURRENCY", creates)
    assert row["why"] == f"{creates} creates > 0" and row["saved"].endswith(" UTC")
    assert "waits for a decision" in row["next run"]
    assert section.approve_button.disabled  # nothing selected yet

    section.table.select([waiting.id])
    assert not section.approve_button.disabled
    detail = html.unescape(section.detail.value)
    assert f"why it waits{creates} creates > 0" in re.sub(r"<[^>]+>", "", detail)
    assert waiting.plan_path in detail and "due " in detail

    section.review_button.click()  # the same grid and diff as any preview, read-only
    assert panel.plan is not None and panel.reviewing == waiting
    assert panel.table.frame.height == panel.plan.records.height >= creates
    assert f"approval #{waiting.id}" in html.unescape(panel.review_banner.value)
    assert panel.apply_button.disabled and panel.exclude_button.disabled
    panel.table.choices["action"].value = "insert_crm"
    panel.table.select([panel.table.page_rows.get_column("row_key")[0]])
    assert "nav-crm-ops-diff" in panel.diff.value and "insert_crm" in panel.diff.value
    panel.run_apply()  # what a click on the disabled button would do: refused, nothing runs
    assert panel.errors.kind == "warning" and "review only" in panel.errors.message
    assert panel.report is None

    section.person.value = "  "
    section.approve_button.click()  # no name: refused in words, nothing recorded
    assert section.errors.kind == "warning" and "Type your name" in section.errors.message
    assert state(ws, waiting).state is ApprovalState.PENDING

    section.person.value = "Dana Reviewer"
    section.comment.value = "checked the new currencies"
    section.approve_button.click()
    approved = state(ws, waiting)
    assert (approved.state, approved.approved_by, approved.note) == (
        ApprovalState.APPROVED, "Dana Reviewer", "checked the new currencies")
    assert section.errors.kind == "info"
    assert f"Approved #{waiting.id}" in section.errors.message
    assert "applies exactly this plan" in section.errors.message
    [row] = section.table.frame.iter_rows(named=True)
    assert row["state"] == "approved" and row["decided"].startswith("approved by Dana Reviewer")
    assert "applies exactly this plan" in row["next run"]
    assert "1 approved plan(s) apply at their job's next run" in section.headline.value
    assert section.comment.value == "" and section.approve_button.disabled
    assert PreviewPanel(ws).approvals.person.value == "Dana Reviewer"  # kept for the session

    with pytest.raises(PlanError, match="already approved by Dana Reviewer"):
        section.approve_button.click()  # approving twice (another tab): said in words
    assert "Could not approve the plan" in section.errors.message

    applied = runner.run("CURRENCY")
    assert applied.outcome.completed and applied.counts["inserted"] == creates, applied.error
    done = state(ws, waiting)
    assert done.state is ApprovalState.APPLIED and set(done.applied_run_ids) == set(
        applied.run_ids)
    section.refresh_button.click()
    assert section.errors.message == ""  # "the next run applies it" is no longer news
    assert section.table.frame.height == 0 and section.body.layout.display == "none"
    assert "No plan waits for a decision" in section.headline.value
    section.show_decided.value = True
    [row] = section.table.frame.iter_rows(named=True)
    assert row["state"] == "applied" and row["next run"].startswith("applied ")


def test_refusals_are_shown_in_words_and_a_rejection_keeps_the_comment(
        runner: JobRunner, waiting: Approval, ws: Workspace) -> None:
    panel = PreviewPanel(ws)
    section = panel.approvals
    section.table.select([waiting.id])
    section.person.value = "Mallory"
    path = ws.config.root / waiting.plan_path
    original = path.read_bytes()
    _edit_a_value(path)
    with pytest.raises(PlanError):
        section.approve_button.click()
    assert "was modified after it was saved" in section.errors.message
    with pytest.raises(PlanError):
        section.review_button.click()  # an edited plan is not shown as if it were the plan
    assert panel.plan is None
    assert state(ws, waiting).state is ApprovalState.PENDING
    path.write_bytes(original)

    section.person.value = "Dana"
    section.comment.value = "not this week"
    section.reject_button.click()
    rejected = state(ws, waiting)
    assert (rejected.state, rejected.rejected_by, rejected.note) == (
        ApprovalState.REJECTED, "Dana", "not this week")
    assert "Rejected" in section.errors.message and "previews again" in section.errors.message
    assert section.table.frame.height == 0  # decided: off the list of open plans
    section.show_decided.value = True
    section.table.select([waiting.id])
    assert section.approve_button.disabled and section.reject_button.disabled
    with pytest.raises(PlanError, match="already rejected by Dana"):
        section.decide(approve=True)

    again = runner.run("CURRENCY")  # previews again and waits again
    assert again.outcome is RunOutcome.AWAITING_APPROVAL, again.error
    section.refresh()
    newest = section.focus("currency")
    assert newest is not None and newest.id != waiting.id
    assert section.selected == newest
    with runner.store.transaction() as conn:  # an hour after its expiry
        conn.execute(update(approvals_table).where(approvals_table.c.id == newest.id)
                     .values(expires_at=utc_now(-1)))
    with pytest.raises(PlanError, match="expired at"):
        section.approve_button.click()
    assert state(ws, newest).state is ApprovalState.EXPIRED
    listed = section.table.frame.filter(pl.col("id") == newest.id).row(0, named=True)
    assert listed["state"] == "expired" and "previews again" in listed["next run"]


def test_the_section_is_one_line_without_approvals_and_links_open_it(
        offline_workspace: Workspace) -> None:
    section = PreviewPanel(offline_workspace).approvals
    assert section.table.frame.height == 0 and section.body.layout.display == "none"
    assert "No plan waits for a decision" in section.headline.value
    assert section.focus() is None
    link = dashboard_link(APPROVALS, mapping="CUSTOMER")
    assert "preview_changes.ipynb?view=approvals&amp;mapping=CUSTOMER" in link
