""""Revert this run" in the logs panel over the sandbox: selecting the bad run offers its
revert, the preview shows the counts and the held conflict, and only the confirm click writes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from nav_crm_ops import WriteOp, open_workspace
from nav_crm_ops.connectors import Dataverse
from nav_crm_ops.engine.workspace import Workspace
from nav_crm_ops.widgets import LogsPanel
from tests.engine.test_revert import _bad_run, _names


def test_revert_this_run_previews_then_applies_on_confirm(
        workspace_dir: Path, crm_person: Callable[[Workspace], Dataverse]) -> None:
    run_id, changed, before = _bad_run(workspace_dir)
    with open_workspace(workspace_dir) as ws:
        [out] = crm_person(ws).write([WriteOp.update("accounts", changed[0],
                                                     {"name": "Edited Since Ltd"})])
        assert out.ok
        panel = LogsPanel(ws)
        box = panel.revert_box
        assert box.preview_button.disabled
        panel.runs_table.select([run_id])
        assert not box.preview_button.disabled and box.confirm_button.disabled
        box.preview_button.click()
        assert f"{len(changed) - 1} field(s) to revert" in box.summary.value
        assert "Held as conflicts" in box.summary.value and "Edited Since Ltd" in box.summary.value
        assert _names(ws, changed)[changed[1]] == before[changed[1]].upper()  # nothing written
        assert not box.confirm_button.disabled
        box.confirm_button.click()
        assert "Reverted." in box.summary.value and box.confirm_button.disabled
        now = _names(ws, changed)
        assert now[changed[0]] == "Edited Since Ltd"
        assert all(now[i] == before[i] for i in changed[1:])
        box.preview_button.click()  # again: nothing left to write
        assert "already reverted" in box.summary.value and box.confirm_button.disabled
