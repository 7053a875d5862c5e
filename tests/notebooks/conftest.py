"""Browser fixtures for the dashboards as an application: Voilà served as ``nav-crm-ops ui``
serves it (behind the login, random token), a logged-in headless Debian Chromium page.

Used by ``test_browser_app.py`` (and ``make screenshots``). Without chromium these tests skip
with the reason, unless ``NAV_CRM_OPS_REQUIRE_BROWSER=1`` (``make test``) makes that a failure.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from nav_crm_ops.widgets.dashboards import DashboardAuth
from tests.notebooks.browser import (
    CHROMIUM,
    CHROMIUM_ARGS,
    ROOT,
    TIMEOUT_MS,
    App,
    serving_voila,
)

if TYPE_CHECKING:
    from playwright.sync_api import Page

SCREENSHOTS_ENV = "NAV_CRM_OPS_SCREENSHOTS"
"""A folder (``make screenshots``: docs/screenshots) that the screen tests write PNGs to."""


def _need_browser() -> None:
    pytest.importorskip("voila", reason="the dashboard tests need voila")
    pytest.importorskip("playwright.sync_api", reason="the dashboard tests need playwright")
    if CHROMIUM is None:
        if os.environ.get("NAV_CRM_OPS_REQUIRE_BROWSER") == "1":
            raise RuntimeError("chromium is not installed: run `make browser`")
        pytest.skip("Debian's chromium is not installed (make browser)")


@pytest.fixture
def app(workspace_dir: Path, tmp_path: Path) -> Iterator[App]:
    """Voilà serving notebooks/ as ``nav-crm-ops ui`` does, on the test workspace."""
    _need_browser()
    auth = DashboardAuth.generate()
    with serving_voila(workspace_dir, tmp_path, auth=auth) as url:
        yield App(url, auth.token)


@pytest.fixture
def app_page(app: App) -> Iterator[Page]:
    """A Chromium page logged in through the address ``nav-crm-ops ui`` prints, on the
    start page."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1440, "height": 1000})
            context.set_default_timeout(TIMEOUT_MS)
            page = context.new_page()
            page.goto(f"{app.url}/?token={app.token}")
            page.get_by_role("heading", name="nav-crm-ops dashboards").wait_for()
            yield page
        finally:
            browser.close()


@pytest.fixture
def screenshot_dir() -> Path:
    """Where screen tests save PNGs: ``$NAV_CRM_OPS_SCREENSHOTS`` or tests/artifacts/."""
    folder = Path(os.environ.get(SCREENSHOTS_ENV) or ROOT / "tests" / "artifacts")
    folder.mkdir(parents=True, exist_ok=True)
    return folder
