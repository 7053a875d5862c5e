"""The dashboards as an application, in headless Debian Chromium (fixtures: conftest.py).

The start page lists the dashboards (no file tree); job notebooks, the folder listing and the
contents API are not reachable; no dashboard shows a repr or a developer note; records are
selected by clicking rows in the grid, and the panel acts on that selection.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from nav_crm_ops.engine.workspace import open_workspace
from nav_crm_ops.widgets.landing import DASHBOARDS

if TYPE_CHECKING:
    from playwright.sync_api import Locator, Page

    from tests.notebooks.browser import App

SCREENSHOTS_ENV = "NAV_CRM_OPS_SCREENSHOTS"  # as in conftest.py (make screenshots sets it)

DEVELOPER_TEXT = ("<Workspace", "autorun", "workspace_path", "raise_callback_errors",
                  "Traceback")


def sync_api_expect(locator: Locator) -> Any:
    from playwright.sync_api import expect

    return expect(locator)


def grid(page: Page, index: int) -> Locator:
    """The ``index``-th record grid of the page (a DataTable's itables grid)."""
    return page.locator(".nav-crm-ops-table").nth(index).locator("table.dataTable")


def data_rows(table: Locator) -> Locator:
    """The grid's rows (not the "no rows" line of an empty grid)."""
    return table.locator("tbody tr:not(:has(td.dt-empty))")


def button(page: Page, text: str) -> Locator:
    return page.locator("button.widget-button", has_text=text).first


def open_dashboard(page: Page, title: str) -> None:
    """Follow the start page's link, as a person would."""
    page.get_by_role("link", name=title).click()
    page.wait_for_url(re.compile(r"/voila/render/"))


def assert_no_developer_text(page: Page) -> None:
    text = page.locator("body").inner_text()
    shown = [t for t in DEVELOPER_TEXT if t in text]
    assert not shown, f"developer text on the dashboard: {shown}"


def test_start_page_lists_the_dashboards_and_nothing_else(app: App, app_page: Page) -> None:
    page = app_page
    links = page.locator("ul.dashboards a")
    assert links.all_inner_texts() == [d.title for d in DASHBOARDS]
    body = page.locator("body").inner_text()
    assert ".ipynb" not in body and "jobs" not in body
    for dashboard in DASHBOARDS:
        assert dashboard.purpose in body
    cookies = {c["name"]: c["value"] for c in page.context.cookies()}
    with httpx.Client(base_url=app.url, cookies=cookies, follow_redirects=False) as client:
        for path in ("/voila/render/jobs/sync_mapping.ipynb", "/voila/render/jobs/",
                     "/voila/api/contents", "/voila/api/contents/jobs",
                     "/voila/render/README.md", "/voila/files/jobs/sync_mapping.ipynb"):
            answer = client.get(path)
            assert answer.status_code in (403, 404), (path, answer.status_code)
            assert "sync_mapping" not in answer.text
        for path in ("/voila/tree", "/voila/tree/jobs"):  # the old tree: the start page
            answer = client.get(path)
            assert answer.status_code == 200 and "ul class=\"dashboards\"" in answer.text
            assert "sync_mapping" not in answer.text
    with httpx.Client(base_url=app.url, follow_redirects=False) as stranger:
        for path in ("/", "/voila/tree", "/voila/render/preview_changes.ipynb"):
            answer = stranger.get(path)  # without the login: sent to the login page
            assert answer.status_code == 302 and "/login" in answer.headers["location"], path


def test_rows_are_selected_in_the_grid(app_page: Page) -> None:
    """Click selects a row, Ctrl+click adds one; the panel acts on exactly those rows, and
    the grid shows the result (excluded rows struck through)."""
    page = app_page
    open_dashboard(page, "Preview changes")
    page.locator(".nav-crm-ops-home").wait_for()
    page.get_by_label("Mappings", exact=True).select_option(label="CURRENCY")
    button(page, "Preview").click()
    page.get_by_text("records in 1 mapping(s)").wait_for()
    page.get_by_label("action", exact=True).select_option(label="insert_crm")
    records = grid(page, 0)
    rows = data_rows(records)
    sync_api_expect(rows.first).to_contain_text("insert_crm")
    assert "rows 1-7 of 7 (filtered from 9)" in page.locator(".nav-crm-ops-table").first.inner_text()
    rows.nth(0).click()
    page.locator(".nav-crm-ops-diff").wait_for()
    rows.nth(2).click(modifiers=["Control"])
    sync_api_expect(records.locator("tbody tr.selected")).to_have_count(2)
    chosen = [rows.nth(i).locator("td").nth(3).inner_text() for i in (0, 2)]
    button(page, "Exclude selected").click()
    page.get_by_text("2 record(s) excluded").wait_for()
    struck = records.locator("tbody tr:has(div[style*='line-through'])")
    sync_api_expect(struck).to_have_count(2)
    assert sorted(struck.locator("td:nth-child(4)").all_inner_texts()) == sorted(chosen)
    assert_no_developer_text(page)


def test_no_dashboard_shows_a_repr_or_a_developer_note(app_page: Page) -> None:
    page = app_page
    start = page.url
    for dashboard in DASHBOARDS:
        page.goto(start)
        open_dashboard(page, dashboard.title)
        page.locator(".nav-crm-ops-home").wait_for()
        page.locator("button.widget-button").first.wait_for()
        assert_no_developer_text(page)
        if dashboard.view:  # the start page opens the right tab
            tab = {"view=runs": "Job log", "view=errors": "Errors by cause"}[dashboard.view]
            sync_api_expect(page.locator(".lm-TabBar-tab.lm-mod-current")).to_have_text(tab)


def test_a_link_naming_a_mapping_opens_the_dashboard_on_it(app_page: Page) -> None:
    """Links from run results and reports carry ``&mapping=NAME``: Troubleshoot opens on its
    errors tab narrowed to that mapping, Preview with it chosen; an unknown name shows all."""
    page = app_page
    base = page.url.split("?")[0].rstrip("/")
    page.goto(f"{base}/voila/render/analyse_logs.ipynb?view=errors&mapping=customer")
    page.locator("button.widget-button").first.wait_for()
    sync_api_expect(page.locator(".lm-TabBar-tab.lm-mod-current")).to_have_text("Errors by cause")
    chosen = page.get_by_label("Mapping", exact=True)
    sync_api_expect(chosen).to_have_value("CUSTOMER")
    page.goto(f"{base}/voila/render/preview_changes.ipynb?mapping=CONTACT")
    page.locator("button.widget-button").first.wait_for()
    picked = page.locator(".widget-select-multiple select option:checked")
    sync_api_expect(picked).to_have_text("CONTACT")
    page.goto(f"{base}/voila/render/analyse_logs.ipynb?mapping=NOSUCH")
    page.locator("button.widget-button").first.wait_for()
    sync_api_expect(page.get_by_label("Mapping", exact=True)).to_have_value("(all)")


# -- screenshots (make screenshots) -------------------------------------------------------------
def capture(page: Page, folder: Path, name: str) -> Path:
    """A PNG of the whole dashboard: the viewport grows to the content's height first (Voilà
    scrolls inside the page, so a "full page" shot alone would cut it)."""
    height = page.evaluate("""() => Math.max(...Array.from(document.querySelectorAll('body, body *'))
        .map(e => e.scrollHeight))""")
    size = page.viewport_size or {"width": 1440, "height": 1000}
    page.set_viewport_size({"width": size["width"], "height": min(max(int(height), 700), 5000)})
    page.wait_for_timeout(500)  # let the grids lay out again
    page.evaluate("""() => { window.scrollTo(0, 0);
        document.querySelectorAll('body *').forEach(e => { if (e.scrollTop) e.scrollTop = 0; }); }""")
    target = folder / f"{name}.png"
    page.screenshot(path=str(target))
    page.set_viewport_size(size)
    return target


def first_cell(row: Locator) -> Locator:
    """Where a person clicks a row: its first cell (a click in the middle of a wide row would
    scroll the grid sideways first)."""
    return row.locator("td").first


def back_to_start(page: Page, start: str) -> None:
    page.goto(start)
    page.get_by_role("heading", name="nav-crm-ops dashboards").wait_for()


@pytest.mark.skipif(not os.environ.get(SCREENSHOTS_ENV),
                    reason=f"screenshots only with {SCREENSHOTS_ENV} set (make screenshots)")
def test_screens(app_page: Page, workspace_dir: Path, screenshot_dir: Path) -> None:
    """Each dashboard through its main path, a screenshot of each (docs/screenshots/)."""
    page = app_page
    start = page.url
    with open_workspace(workspace_dir) as ws:
        ws.sync_all(["CUSTOMER"])  # failures to troubleshoot (salespeople not synchronized yet)
    capture(page, screenshot_dir, "landing")

    open_dashboard(page, "Preview changes")
    page.get_by_label("Mappings", exact=True).select_option(label="CUSTOMER")
    button(page, "Preview").click()
    page.get_by_text(re.compile(r"records in 1 mapping\(s\)")).wait_for()
    page.get_by_label("Rows/page").first.select_option(label="10")
    records = grid(page, 0)
    first_cell(data_rows(records).filter(has_text="accountnumber").first).click()
    page.locator(".nav-crm-ops-diff").first.wait_for()
    capture(page, screenshot_dir, "preview")

    back_to_start(page, start)
    open_dashboard(page, "Run mappings")
    page.get_by_label("Mappings", exact=True).select_option(label=["CURRENCY", "SALESPEOPLE"])
    button(page, "Run").click()
    page.locator(".nav-crm-ops-chart img").first.wait_for()  # the results, with their chart
    capture(page, screenshot_dir, "run-mappings")

    back_to_start(page, start)
    open_dashboard(page, "Couple records")
    page.get_by_label("Mapping", exact=True).select_option(label="CUSTOMER")
    button(page, "Search").click()
    data_rows(grid(page, 0)).first.wait_for()
    button(page, "Suggest matches").click()
    data_rows(grid(page, 2)).first.wait_for()
    first_cell(data_rows(grid(page, 0)).first).click()
    capture(page, screenshot_dir, "couple-records")

    back_to_start(page, start)
    open_dashboard(page, "Troubleshoot failed records")
    first_cell(data_rows(grid(page, 1)).first).click()
    first_cell(data_rows(grid(page, 2)).first).click()
    page.locator(".widget-html", has_text="Payload sent").first.wait_for()
    capture(page, screenshot_dir, "troubleshooting")

    back_to_start(page, start)
    open_dashboard(page, "Run history")
    page.locator(".nav-crm-ops-chart img").first.wait_for()
    capture(page, screenshot_dir, "run-history")
    # the job report's screenshot (docs/screenshots/job-report.png) is another test of this
    # target: see SCREENSHOT_TESTS in the Makefile
