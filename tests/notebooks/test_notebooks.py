"""The front-end notebooks: committed clean, and each executes headless against the sandbox."""

from __future__ import annotations

import ast
from pathlib import Path

import nbformat
import papermill
import pytest

from nav_crm_ops.engine.workspace import open_workspace

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
FRONT_ENDS = ["preview_changes", "run_mappings", "analyse_logs", "couple_records"]


@pytest.mark.parametrize("name", FRONT_ENDS)
def test_committed_without_outputs_and_explained(name: str) -> None:
    notebook = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    assert notebook.cells[0].cell_type == "markdown" and notebook.cells[0].source.startswith("# ")
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert all(not cell.outputs and cell.execution_count is None for cell in code)
    parameters = [cell for cell in code if "parameters" in cell.metadata.get("tags", [])]
    assert len(parameters) == 1
    names = [target.id for node in ast.parse(parameters[0].source).body
             if isinstance(node, ast.Assign) for target in node.targets
             if isinstance(target, ast.Name)]
    assert "workspace_path" in names and "autorun" in names
    assert not [n for n in names if any(w in n.lower() for w in ("secret", "password", "token"))]


@pytest.mark.parametrize("profile", ["bc-online", "nav2018"])
@pytest.mark.parametrize("name", FRONT_ENDS)
def test_executes_headless_against_the_sandbox(name: str, profile: str, tmp_path: Path,
                                                request: pytest.FixtureRequest) -> None:
    """Each front end runs its main path on a Business Central online workspace and on a
    NAV 2018 one (page web services): nothing above the connectors depends on the ERP."""
    fixture = "nav_workspace" if profile == "nav2018" else "workspace_dir"
    workspace_dir: Path = request.getfixturevalue(fixture)
    output = tmp_path / f"{name}.out.ipynb"
    papermill.execute_notebook(
        str(NOTEBOOKS / f"{name}.ipynb"), str(output),
        parameters={"workspace_path": str(workspace_dir), "autorun": True},
        kernel_name="python3", execution_timeout=120, progress_bar=False, cwd=str(tmp_path))
    executed = nbformat.read(output, as_version=4)
    text = "".join(out.get("text", "") for cell in executed.cells if cell.cell_type == "code"
                   for out in cell.get("outputs", []) if out.get("output_type") == "stream")
    widgets = [out for cell in executed.cells if cell.cell_type == "code"
               for out in cell.get("outputs", [])
               if "application/vnd.jupyter.widget-view+json" in out.get("data", {})]
    assert widgets, "the panel was not displayed"
    if name == "preview_changes":
        assert "for mappings CURRENCY:" in text
    elif name == "run_mappings":
        with open_workspace(workspace_dir) as ws:
            assert ws.runs("CURRENCY").height >= 1
        assert "CURRENCY" in text
    elif name == "analyse_logs":
        assert "runs," in text and "error groups" in text
    else:
        assert text.startswith("Matching CUSTOMER: ")
