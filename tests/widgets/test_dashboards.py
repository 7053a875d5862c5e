"""The Voilà command line and environment used by ``nav-crm-ops ui`` (served for real in
tests/notebooks/test_voila_browser.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from nav_crm_ops.exceptions import NavCrmOpsError
from nav_crm_ops.widgets.dashboards import dashboard_environment, voila_command
from nav_crm_ops.widgets.session import WORKSPACE_ENV

pytest.importorskip("voila", reason="voila is not installed")


def test_command_serves_the_folder_on_loopback(tmp_path: Path) -> None:
    command = voila_command(tmp_path, port=9001)
    assert command[:3] == [sys.executable, "-m", "voila"]
    assert "--no-browser" in command and "--port=9001" in command
    assert "--Voila.ip=127.0.0.1" in command and "--show_tracebacks=True" in command
    assert command[-1] == str(tmp_path)
    assert "--no-browser" not in voila_command(tmp_path, open_browser=True)


def test_missing_folder_is_explained(tmp_path: Path) -> None:
    with pytest.raises(NavCrmOpsError, match="does not exist"):
        voila_command(tmp_path / "missing")


def test_environment_names_the_workspace_not_its_secret(tmp_path: Path) -> None:
    env = dashboard_environment(tmp_path, base={"PATH": "/usr/bin"})
    assert env == {"PATH": "/usr/bin", WORKSPACE_ENV: str(tmp_path.resolve())}
    assert dashboard_environment(None, base={"A": "1"}) == {"A": "1"}
