"""What a person can act on in the dashboards, driven in headless Debian Chromium (Playwright).

The notebooks are served by Voilà as ``nav-crm-ops ui --no-auth`` does on loopback (the login
itself is covered by ``test_voila_browser.py``). Each test prepares the sandbox through the
Python API, then reads and clicks the page as a person would:

* the preview names records by number and name (no row identified by GUIDs only), a held
  conflict's diff says what each choice writes, and "Keep CRM value" writes CRM's value to BC;
* a skipped record selected in the failed records shows its full message; Retry says it is
  skipped; "Unskip and retry" shows its new outcome ("done") and the detail pane refreshes;
* the couple-records tables show numbers and names, not ids or versions.

Screenshots land in ``tests/artifacts/actions-*.png``. Without Debian's chromium the tests skip
(``make test`` requires it, see ``test_voila_browser.py``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl
import pytest

from nav_crm_ops import WriteOp
from nav_crm_ops.engine.workspace import Workspace, open_workspace
from tests.notebooks.browser import CHROMIUM, CHROMIUM_ARGS, ROOT, TIMEOUT_MS, serving_voila

if TYPE_CHECKING:
    from playwright.sync_api import Locator, Page

pytest.importorskip("voila", reason="the dashboard test needs voila (pip install voila)")
sync_api = pytest.importorskip("playwright.sync_api",
                               reason="the dashboard test needs playwright (pip install playwright)")

ARTIFACTS = ROOT / "tests" / "artifacts"
GUID = re.compile(r"^\{?[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
                  r"[0-9a-fA-F]{12}\}?$")

pytestmark = pytest.mark.skipif(CHROMIUM is None,
                                reason="Debian's chromium is not installed (make browser)")


@pytest.fixture
def voila_url(workspace_dir: Path, tmp_path: Path) -> Iterator[str]:
    """Voilà serving notebooks/ on loopback without a login, the test workspace as default."""
    with serving_voila(workspace_dir, tmp_path,
                       ready_path="/voila/render/run_mappings.ipynb") as url:
        yield url


@pytest.fixture
def page(voila_url: str) -> Iterator[Page]:
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1500, "height": 1600})
            context.set_default_timeout(TIMEOUT_MS)
            yield context.new_page()
        finally:
            browser.close()


def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"actions-{name}.png"), full_page=True)


def button(page: Page, text: str) -> Locator:
    return page.locator("button.widget-button", has_text=text).first


def grid_rows(page: Page, containing: str) -> Locator:
    """Rows of the visible record grids holding ``containing`` (the preview dashboard also
    holds the approvals' review grid, hidden until a plan is shown in it)."""
    return page.locator("table.dataTable tbody tr:visible", has_text=containing)


def _cells(row: Locator) -> list[str]:
    return [c.strip() for c in row.locator("td").all_inner_texts()]


def _conflict_on_customer(ws: Workspace, number: str) -> str:
    """Customer ``number`` synchronized, then its city changed on both sides (BC York, CRM
    Leeds by a person); returns its BC id."""
    ws.sync_all(["CURRENCY", "SALESPEOPLE", "CUSTOMER"])
    coupling = ws.store.couplings_frame("CUSTOMER").filter(pl.col("nav_key") == number)
    nav_id, crm_id = coupling["nav_id"].item(), coupling["crm_id"].item()
    people = ws.connections.dataverse.read("systemusers", select=["systemuserid"],
                                           filter="accessmode ne 4 and isdisabled eq false")
    with ws.connections.dataverse.acting_as(str(people["systemuserid"][0])) as person:
        [crm] = person.write([WriteOp.update("accounts", crm_id, {"address1_city": "Leeds"})])
    [nav] = ws.connections.business_central.write([WriteOp.update("customers", nav_id,
                                                                  {"city": "York"})])
    assert crm.ok and nav.ok
    return str(nav_id)


def test_preview_names_records_and_resolves_a_conflict(page: Page, voila_url: str,
                                                       workspace_dir: Path) -> None:
    with open_workspace(workspace_dir) as ws:
        _conflict_on_customer(ws, "20000")
    page.goto(f"{voila_url}/voila/render/preview_changes.ipynb")
    page.get_by_text("Preview changes", exact=True).wait_for()
    page.locator(".widget-select-multiple select").first.select_option(label="CUSTOMER")
    button(page, "Preview").click()
    page.get_by_text(re.compile(r"records in 1 mapping\(s\)")).wait_for()
    rows = page.locator("table.dataTable tbody tr:visible")
    rows.first.wait_for()
    header = page.locator("table.dataTable:visible thead").first.inner_text()
    assert "nav_record" in header and "crm_record" in header and "nav_key" not in header
    heads = page.locator("table.dataTable:visible thead th")
    columns = [c.strip() for c in heads.all_inner_texts()]
    nav_at, crm_at = columns.index("nav_record"), columns.index("crm_record")
    for index in range(rows.count()):
        cells = _cells(rows.nth(index))
        assert not (GUID.match(cells[nav_at]) and GUID.match(cells[crm_at])), cells
    conflict = grid_rows(page, "20000 Selangorian Ltd.").filter(has_text="conflict").first
    conflict.click()
    diff = page.locator(".widget-html", has_text="Held conflict").first
    diff.wait_for()
    text = diff.inner_text()
    assert "Keep CRM value writes to BC 20000 Selangorian Ltd.: address1_city: 'York' → " \
           "'Leeds' (the conflict)" in text
    assert "→ empty" not in text and "conflict_policy" not in text
    shot(page, "preview-conflict")
    button(page, "Keep CRM value").click()
    page.get_by_text(re.compile(r"Conflict 20000 Selangorian Ltd\.: keep crm value")).wait_for()
    assert grid_rows(page, "resolved: keep crm value").count() == 1
    shot(page, "preview-resolved")
    with open_workspace(workspace_dir) as ws:
        customer = ws.connections.business_central.read("customers",
                                                        filter="number eq '20000'")
        assert customer["city"].item() == "Leeds"


def test_skipped_record_unskipped_and_retried_shows_its_outcome(
        page: Page, voila_url: str, workspace_dir: Path) -> None:
    with open_workspace(workspace_dir) as ws:
        ws.sync_all(["CUSTOMER"])
        ws.sync_all(["CUSTOMER"])
        skipped = ws.failed_records("CUSTOMER").filter(
            (pl.col("state") == "skipped") & (pl.col("direction") == "to_crm")
            & pl.col("message").str.contains("salespersonCode"))
        row = skipped.row(0, named=True)
        ws.sync_all(["SALESPEOPLE"])
    label, message = row["record"], row["message"]
    assert not GUID.match(label)
    page.goto(f"{voila_url}/voila/render/analyse_logs.ipynb")
    page.get_by_text("Analyse logs and failed records", exact=True).wait_for()
    page.locator(".lm-TabBar-tab", has_text="Errors by cause").click()
    group = grid_rows(page, "salespersonCode").filter(has_text="couple it in Couple records")
    group.first.wait_for()
    assert not any(GUID.match(c) for c in _cells(group.first))
    shot(page, "logs-groups")
    page.locator(".lm-TabBar-tab", has_text="Failed records").click()
    record = grid_rows(page, label).first
    record.wait_for()
    assert "skipped" in record.inner_text()
    record.click()
    detail = page.locator(".widget-html", has_text="History of runs").first
    detail.wait_for()
    assert "skipped since" in detail.inner_text()
    assert message in page.locator("pre.nav-crm-ops-message").first.inner_text()
    shot(page, "logs-skipped-detail")
    button(page, "Retry selected").click()
    page.get_by_text(re.compile(r"1 of the selected record\(s\) are skipped — unskip first"))\
        .first.wait_for()
    button(page, "Unskip and retry selected").click()
    result = page.locator(".widget-html", has_text="Retry result: 1 done").first
    result.wait_for()
    assert label in result.inner_text()
    page.get_by_text("not in the retry pass").first.wait_for()
    shot(page, "logs-retried")
    with open_workspace(workspace_dir) as ws:
        assert ws.store.record_status("CUSTOMER", row["source_id"], "to_crm") is None


def test_couple_records_shows_numbers_and_names(page: Page, voila_url: str,
                                                workspace_dir: Path) -> None:
    with open_workspace(workspace_dir) as ws:
        ws.sync_all(["CURRENCY", "SALESPEOPLE", "CUSTOMER"])
    page.goto(f"{voila_url}/voila/render/couple_records.ipynb")
    page.get_by_text("Couple records", exact=True).wait_for()
    page.locator(".widget-dropdown select").first.select_option(label="CUSTOMER")
    button(page, "Search").click()
    cannon = grid_rows(page, "10000 The Cannon Group PLC").first
    cannon.wait_for()
    headers = page.locator("table.dataTable:visible thead").first.inner_text()
    assert "record" in headers and "version" not in headers and "coupled_to" not in headers
    for cell in cannon.locator("td").all_inner_texts():
        assert not GUID.match(cell.strip()), cell
    shot(page, "couple-records")


def test_a_run_with_failures_links_to_troubleshooting(page: Page, voila_url: str) -> None:
    page.goto(f"{voila_url}/voila/render/run_mappings.ipynb")
    page.get_by_text("Run mappings", exact=True).first.wait_for()
    page.locator(".widget-select-multiple select").first.select_option(label="CUSTOMER")
    button(page, "Run").click()
    link = page.locator("a", has_text="open Troubleshoot failed records").first
    link.wait_for()
    # the run's failures are all CUSTOMER's: the link opens Troubleshoot narrowed to it
    assert link.get_attribute("href") == "analyse_logs.ipynb?view=errors&mapping=CUSTOMER"
    assert "nav-crm-ops" not in page.locator(".widget-html", has_text="Results per mapping")\
        .first.inner_text()
    shot(page, "run-mappings")
