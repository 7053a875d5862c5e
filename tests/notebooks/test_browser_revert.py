""""Revert this run" in the troubleshooting dashboard, driven in headless Debian Chromium:
the bad run (CRM account names uppercased) selected in the job log, its reversal previewed
(counts and the held conflict), applied on the confirm click. Screenshot:
``logs-revert.png`` in ``screenshot_dir`` (``docs/screenshots/`` under ``make screenshots``)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from nav_crm_ops import WriteOp, open_workspace
from tests.engine.test_revert import _bad_run, _names
from tests.notebooks.browser import CHROMIUM, CHROMIUM_ARGS, TIMEOUT_MS, serving_voila

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytest.importorskip("voila", reason="the dashboard test needs voila (pip install voila)")
sync_api = pytest.importorskip("playwright.sync_api",
                               reason="the dashboard test needs playwright (pip install playwright)")
pytestmark = pytest.mark.skipif(CHROMIUM is None,
                                reason="Debian's chromium is not installed (make browser)")


@pytest.fixture
def page_and_url(workspace_dir: Path, tmp_path: Path) -> Iterator[tuple[Page, str]]:
    with serving_voila(workspace_dir, tmp_path,
                       ready_path="/voila/render/analyse_logs.ipynb") as url, \
            sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1500, "height": 1600})
            context.set_default_timeout(TIMEOUT_MS)
            yield context.new_page(), url
        finally:
            browser.close()


def test_revert_this_run_in_the_logs_dashboard(page_and_url: tuple[Page, str],
                                               workspace_dir: Path, screenshot_dir: Path
                                               ) -> None:
    page, url = page_and_url
    run_id, changed, before = _bad_run(workspace_dir)
    with open_workspace(workspace_dir) as ws:
        people = ws.connections.dataverse.read("systemusers", select=["systemuserid"],
                                               filter="accessmode ne 4 and isdisabled eq false")
        with ws.connections.dataverse.acting_as(str(people["systemuserid"][0])) as person:
            [out] = person.write([WriteOp.update("accounts", changed[0],
                                                 {"name": "Edited Since Ltd"})])
        assert out.ok
    page.goto(f"{url}/voila/render/analyse_logs.ipynb")
    page.get_by_text("Analyse logs and failed records", exact=True).wait_for()
    row = page.locator("table.dataTable tbody tr").filter(
        has=page.locator("td", has_text=re.compile(rf"^{run_id}$"))).first
    row.wait_for()
    row.click()
    page.locator("button.widget-button", has_text="Revert this run").first.click()
    summary = page.get_by_text(re.compile(rf"revert of run {run_id} \(CUSTOMER, CRM\)")).first
    summary.wait_for()
    assert f"{len(changed) - 1} field(s) to revert" in summary.inner_text()
    page.get_by_text("Held as conflicts", exact=False).first.wait_for()
    page.screenshot(path=str(screenshot_dir / "logs-revert.png"), full_page=True)
    with open_workspace(workspace_dir) as ws:  # previewed only
        assert _names(ws, changed)[changed[1]] == before[changed[1]].upper()
    page.locator("button.widget-button", has_text="Confirm revert").first.click()
    page.get_by_text("Reverted.").first.wait_for()
    with open_workspace(workspace_dir) as ws:
        now = _names(ws, changed)
    assert now[changed[0]] == "Edited Since Ltd"
    assert all(now[i] == before[i] for i in changed[1:])
