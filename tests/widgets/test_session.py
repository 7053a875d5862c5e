"""notebook_workspace: the configured workspace, or the embedded CRONUS sandbox by default."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from nav_crm_ops.demo import SANDBOX_SECRET_ENV
from nav_crm_ops.widgets.session import (
    WORKSPACE_ENV,
    notebook_workspace,
    stop_notebook_sandboxes,
)


@pytest.fixture
def no_configured_workspace(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv(WORKSPACE_ENV, raising=False)
    # notebook_workspace sets the sandbox secret variable; monkeypatch restores it afterwards
    monkeypatch.setenv(SANDBOX_SECRET_ENV, "replaced by notebook_workspace")
    yield
    stop_notebook_sandboxes()


def test_without_a_workspace_the_sandbox_is_started_once(
        no_configured_workspace: None, tmp_path: Path) -> None:
    first = notebook_workspace(sandbox_dir=tmp_path)
    try:
        assert (tmp_path / "workspace" / "nav_crm_ops.toml").is_file()
        plan = first.preview("CURRENCY")
        assert plan.records.height > 0
    finally:
        first.close()
    second = notebook_workspace(sandbox_dir=tmp_path)
    try:
        assert second.config.dataverse.url == first.config.dataverse.url
    finally:
        second.close()


def test_configured_workspace_wins(workspace_dir: Path, monkeypatch: pytest.MonkeyPatch,
                                   tmp_path: Path) -> None:
    monkeypatch.setenv(WORKSPACE_ENV, str(workspace_dir))
    with notebook_workspace(sandbox_dir=tmp_path / "unused") as ws:
        assert Path(ws.config.root) == workspace_dir
    assert not (tmp_path / "unused").exists()
