"""Approving a plan in the Preview dashboard, in headless Debian Chromium (issue #20 item 2:
"or a button in the preview dashboard"), served as ``nav-crm-ops ui`` serves it (behind the
login; fixtures in conftest.py).

A real approval-mode job run (the job runner and papermill) saves a plan that waits; a link
``?view=approvals&mapping=CURRENCY`` opens the dashboard with it selected; the person reviews
its records in the same grid and diff as any preview, types a name and approves; the job's next
run applies exactly that plan. The screen is saved as ``approvals.png`` (docs/screenshots under
``make screenshots``, tests/artifacts otherwise).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from nav_crm_ops.engine.mapping import MappingSet
from nav_crm_ops.engine.workspace import open_workspace
from nav_crm_ops.jobs import JobRunner, init_queue
from nav_crm_ops.store.approvals import ApprovalState
from nav_crm_ops.store.runs import RunOutcome
from nav_crm_ops.widgets.dashboard_links import APPROVALS
from tests.conftest import CliRunner
from tests.notebooks.browser import ROOT
from tests.notebooks.test_browser_app import (
    assert_no_developer_text,
    button,
    capture,
    data_rows,
    first_cell,
    grid,
    sync_api_expect,
)

if TYPE_CHECKING:
    from playwright.sync_api import Page

ARTIFACTS = ROOT / "tests" / "artifacts"
JOB = "CURRENCY - Dynamics 365 Sales synchronization job"


@pytest.fixture
def runner(workspace_dir: Path) -> Iterator[JobRunner]:
    with JobRunner(workspace_dir) as opened:
        init_queue(opened.queue, MappingSet.for_workspace(opened.config))
        yield opened


def test_approve_in_the_browser_then_the_next_run_applies_the_plan(
        runner: JobRunner, workspace_dir: Path, cli: CliRunner, app_page: Page,
        screenshot_dir: Path) -> None:
    code, _out, err = cli("jobs", "set", "CURRENCY", "--approval", '{"max_creates": 0}',
                          "-w", str(workspace_dir))
    assert code == 0, err
    stopped = runner.run("CURRENCY")
    assert stopped.outcome is RunOutcome.AWAITING_APPROVAL, stopped.error
    [pending] = runner.store.approvals.find(job=JOB)
    creates = pending.counts["creates"]
    with open_workspace(workspace_dir) as ws:
        currencies = ws.connections.dataverse.read("transactioncurrencies").height

    page = app_page
    base = page.url.split("?")[0].rstrip("/")
    page.goto(f"{base}/voila/render/{APPROVALS.notebook}{APPROVALS.query}&mapping=CURRENCY")
    section = page.locator(".nav-crm-ops-approvals")
    section.get_by_text("1 plan(s) wait for a decision").wait_for()
    listed = section.locator("table.dataTable")
    sync_api_expect(listed.locator("tbody tr.selected")).to_have_count(1)  # the link chose it
    sync_api_expect(listed.locator("tbody tr.selected")).to_contain_text(f"{creates} creates > 0")
    section.get_by_text(f"Approval #{pending.id}").wait_for()

    button(page, "Show in the review grid").click()
    page.locator(".nav-crm-ops-reviewing", has_text=f"approval #{pending.id}").wait_for()
    records = grid(page, 0)  # the review grid: the page's record grid, as in any preview
    first_cell(data_rows(records).filter(has_text="insert_crm").first).click()
    page.locator(".nav-crm-ops-diff").wait_for()
    assert button(page, "Apply included records").is_disabled()

    approve = button(page, "Approve")
    sync_api_expect(approve).to_be_enabled()
    section.get_by_label("Your name").fill("Dana Reviewer")
    section.get_by_label("Comment").fill("checked the new currencies")
    section.get_by_label("Comment").press("Tab")
    capture(page, screenshot_dir, "approvals")
    approve.click()
    section.get_by_text(f"Approved #{pending.id}").wait_for()
    section.get_by_text("applies exactly this plan").first.wait_for()
    sync_api_expect(listed.locator("tbody tr").first).to_contain_text("approved by Dana Reviewer")
    assert_no_developer_text(page)
    decided = runner.store.approvals.get(pending.id)
    assert decided is not None and (decided.state, decided.approved_by, decided.note) == (
        ApprovalState.APPROVED, "Dana Reviewer", "checked the new currencies")

    applied = runner.run("CURRENCY")  # the job's next run applies exactly that plan
    assert applied.outcome.completed and applied.counts["inserted"] == creates, applied.error
    done = runner.store.approvals.get(pending.id)
    assert done is not None and done.state is ApprovalState.APPLIED
    with open_workspace(workspace_dir) as ws:
        assert ws.connections.dataverse.read("transactioncurrencies").height == (
            currencies + creates)
    button(page, "Refresh").click()
    section.get_by_text(re.compile("No plan waits for a decision")).wait_for()
    sync_api_expect(listed).to_be_hidden()  # one line when nothing waits
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    section.screenshot(path=str(ARTIFACTS / "approvals-none-waiting.png"))
