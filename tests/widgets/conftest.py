"""Widget test fixtures: callbacks re-raise, workspaces over the real sandbox or offline."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from nav_crm_ops.demo import SANDBOX_SECRET_ENV, sandbox_workspace_config
from nav_crm_ops.engine.workspace import Workspace, open_workspace
from nav_crm_ops.sandbox import Sandbox
from nav_crm_ops.widgets.errors import raise_callback_errors


@pytest.fixture(autouse=True)
def callbacks_reraise() -> Iterator[None]:
    """Every widget test runs with the test switch on: a failing callback fails the test."""
    with raise_callback_errors():
        yield


@pytest.fixture
def offline_workspace(sandbox: Sandbox, tmp_path: Path,
                      monkeypatch: pytest.MonkeyPatch) -> Iterator[Workspace]:
    """A real workspace on its own state file, configured for the session sandbox; tests that
    use it only call methods that read or write the state store (no service is touched)."""
    monkeypatch.setenv(SANDBOX_SECRET_ENV, sandbox.info.client_secret.reveal())
    workspace = Workspace(sandbox_workspace_config(sandbox.info, tmp_path / "offline"))
    yield workspace
    workspace.close()


@pytest.fixture
def sandbox_workspace(workspace_dir: Path) -> Iterator[Workspace]:
    """``open_workspace`` on the fresh CRONUS sandbox (the real end-to-end path)."""
    workspace = open_workspace(workspace_dir)
    yield workspace
    workspace.close()
