"""The notebooks as Voilà dashboards, driven by Playwright in headless Debian Chromium.

Serves them as ``nav-crm-ops ui`` does (behind jupyter_server's login, with a random token),
logs in through the login form (a fresh browser is sent there first; a wrong token is refused),
then walks preview → select → apply and analyse-logs → drill into a failed record → retry,
asserts what the page shows and what the state store holds, and saves screenshots under
``tests/artifacts/`` for review (``login-*.png`` shows the login page). ``make test`` installs Debian's chromium first and sets
``NAV_CRM_OPS_REQUIRE_BROWSER=1``, so there a missing browser fails; a plain ``pytest`` run
skips it with the reason.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl
import pytest

from nav_crm_ops.engine.workspace import open_workspace
from tests.notebooks.browser import CHROMIUM, CHROMIUM_ARGS, ROOT, TIMEOUT_MS, App

if TYPE_CHECKING:
    from playwright.sync_api import Locator, Page

pytest.importorskip("voila", reason="the dashboard test needs voila (pip install voila)")
sync_api = pytest.importorskip("playwright.sync_api",
                               reason="the dashboard test needs playwright (pip install playwright)")

ARTIFACTS = ROOT / "tests" / "artifacts"

if CHROMIUM is None and os.environ.get("NAV_CRM_OPS_REQUIRE_BROWSER") == "1":
    raise RuntimeError("chromium is not installed: run `make browser` (apt-get install chromium)")
pytestmark = [
    pytest.mark.skipif(CHROMIUM is None,
                       reason="Debian's chromium is not installed (make browser)"),
]


Dashboards = App
"""The dashboards as served (the ``app`` fixture of tests/notebooks/conftest.py)."""


@pytest.fixture
def dashboards(app: App) -> App:
    """Voilà serving notebooks/ behind the login (as ``nav-crm-ops ui``), with the test
    workspace as the notebooks' default."""
    return app


@pytest.fixture
def voila_url(dashboards: Dashboards) -> str:
    return dashboards.url


def log_in(page: Page, dashboards: Dashboards) -> None:
    """Open a dashboard unauthenticated: the login page shows instead; a wrong token is
    refused; the right one leads on to the dashboard asked for."""
    page.goto(f"{dashboards.url}/voila/render/preview_changes.ipynb")
    page.wait_for_url(re.compile(r"/login\?next="))
    password = page.locator("input[type=password]").first
    password.wait_for()
    assert "Preview changes" not in page.content()
    shot(page, "login-1-page")
    password.fill("not-the-token")
    page.locator("button[type=submit], input[type=submit]").first.click()
    page.wait_for_load_state()
    assert "/login" in page.url
    shot(page, "login-2-refused")
    page.locator("input[type=password]").first.fill(dashboards.token)
    page.locator("button[type=submit], input[type=submit]").first.click()
    page.wait_for_url(re.compile(r"/voila/render/preview_changes\.ipynb$"))
    page.get_by_text("Preview changes", exact=True).wait_for()
    shot(page, "login-3-dashboard")


@pytest.fixture
def page(dashboards: Dashboards) -> Iterator[Page]:
    """A browser page that has logged in through the dashboards' login form."""
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 1800})
            context.set_default_timeout(TIMEOUT_MS)
            logged_in = context.new_page()
            log_in(logged_in, dashboards)
            yield logged_in
        finally:
            browser.close()


def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def select_in(page: Page, label: str) -> Locator:
    """The <select> of the ipywidgets selection widget whose description is ``label``."""
    return page.locator(".widget-select-multiple, .widget-select, .widget-dropdown").filter(
        has=page.locator("label", has_text=label)).locator("select").first


def button(page: Page, text: str) -> Locator:
    return page.locator("button.widget-button", has_text=text).first


def grid(page: Page, index: int) -> Locator:
    """The ``index``-th record grid (a DataTable's itables grid) of the page, in page order."""
    return page.locator(".nav-crm-ops-table").nth(index).locator("table.dataTable")


def cell(table: Locator, row: int, column: str) -> str:
    """The text of ``column`` (a header name) in the ``row``-th row of the grid."""
    headers = [h.strip() for h in table.locator("thead th").all_inner_texts()]
    return table.locator("tbody tr").nth(row).locator("td").nth(
        headers.index(column)).inner_text().replace("\xa0", " ").strip()


def test_the_printed_token_address_opens_the_dashboards(dashboards: Dashboards) -> None:
    """The address ``nav-crm-ops ui`` prints (``/?token=...``) logs a fresh browser straight in;
    without it the same browser only gets the login page."""
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 900})
            context.set_default_timeout(TIMEOUT_MS)
            page = context.new_page()
            page.goto(f"{dashboards.url}/voila/tree")
            page.locator("input[type=password]").first.wait_for()
            page.goto(f"{dashboards.url}/?token={dashboards.token}")
            page.get_by_role("link", name="Preview changes").wait_for()
            shot(page, "login-4-token-address-start-page")
            page.goto(f"{dashboards.url}/voila/render/analyse_logs.ipynb")
            page.get_by_text("Analyse logs and failed records", exact=True).wait_for()
        finally:
            browser.close()


def test_preview_select_apply_in_the_browser(page: Page, voila_url: str,
                                             workspace_dir: Path) -> None:
    page.goto(f"{voila_url}/voila/render/preview_changes.ipynb")
    page.get_by_text("Preview changes", exact=True).wait_for()
    select_in(page, "Mappings").select_option(label="CURRENCY")
    button(page, "Preview").click()
    page.get_by_text("records in 1 mapping(s)").wait_for()
    shot(page, "preview-1-summary")
    select_in(page, "action").select_option(label="insert_crm")
    records = grid(page, 0)
    sync_api.expect(records.locator("tbody tr").first).to_contain_text("insert_crm")
    code = cell(records, 0, "nav_record").split()[0]
    records.locator("tbody tr").first.click()  # rows are selected in the grid
    page.locator(".nav-crm-ops-diff").wait_for()
    assert "insert_crm" in page.locator(".widget-html").filter(
        has=page.locator(".nav-crm-ops-diff")).first.inner_text()
    button(page, "Exclude selected").click()
    page.get_by_text("1 record(s) excluded").wait_for()
    summary = page.get_by_text(re.compile(r"records in 1 mapping\(s\), \d+ included")).inner_text()
    found = re.search(r"(\d+) included", summary)
    assert found is not None
    included = int(found.group(1))
    shot(page, "preview-2-excluded")
    button(page, "Apply included records").click()
    page.get_by_text("Result", exact=True).wait_for()
    result = page.locator(".widget-html", has_text="Result").last.inner_text()
    assert "finished" in result
    shot(page, "preview-3-applied")
    with open_workspace(workspace_dir) as ws:
        couplings = ws.store.couplings_frame("CURRENCY")
    assert code not in couplings.get_column("nav_key").to_list()
    assert couplings.height == included


def test_drill_into_failed_record_and_retry_in_the_browser(page: Page, voila_url: str,
                                                           workspace_dir: Path) -> None:
    with open_workspace(workspace_dir) as ws:
        ws.sync_all(["CUSTOMER"])
        ws.sync_all(["SALESPEOPLE"])
        failed_before = ws.failed_records("CUSTOMER").height
    assert failed_before > 0
    page.goto(f"{voila_url}/voila/render/analyse_logs.ipynb")
    page.get_by_text("Analyse logs and failed records", exact=True).wait_for()
    shot(page, "logs-1-job-log")
    page.locator(".lm-TabBar-tab", has_text="Errors by cause").click()
    # the panel's grids in page order: job log, error groups, group records, failed records
    grid(page, 1).locator("tbody tr", has_text="salespersonCode").first.click()
    records = grid(page, 2)
    records.locator("tbody tr:not(:has(td.dt-empty))").first.wait_for()
    record = cell(records, 0, "record")
    with open_workspace(workspace_dir) as ws:
        failed = ws.failed_records("CUSTOMER")
    source = failed.filter(pl.col("record") == record).get_column("source_id")[0]
    records.locator("tbody tr").first.click()
    detail = page.locator(".widget-html", has_text="Payload sent").first
    detail.wait_for()
    text = detail.inner_text()
    assert record in text and "Source values" in text and "Service response" in text
    assert "History of runs" in text and "salespersonCode" in text
    shot(page, "logs-2-record")
    button(page, "Retry selected").click()
    page.get_by_text("Retry result").wait_for()
    shot(page, "logs-3-retried")
    with open_workspace(workspace_dir) as ws:
        still_failed = ws.failed_records("CUSTOMER").get_column("source_id").to_list()
        assert source not in still_failed
        assert ws.store.get_coupling_by_nav("CUSTOMER", source) is not None
