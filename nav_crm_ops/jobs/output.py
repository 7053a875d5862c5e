"""The output notebook of a job run as a report: code hidden, the outcome on top, and HTML.

Why: the output notebook is the operator's record of a run, read by people who do not read
code. The committed job notebooks keep their code for developers; after papermill ran one,
:func:`finish_output_notebook` marks every code cell's input hidden (JupyterLab and Voilà then
show only outputs and text), puts a banner with the outcome and the error on top when the
notebook did not finish its work (failed, timed out, cancelled: its own headline cell never ran)
in place of papermill's error cells, and exports the HTML without any input (nbconvert
``exclude_input``).
"""

from __future__ import annotations

import html
from pathlib import Path

from ..store.runs import RunOutcome

__all__ = ["BANNER_TAG", "PAPERMILL_ERROR_TAG", "finish_output_notebook", "hide_code",
           "outcome_badge"]

BANNER_TAG = "nav-crm-ops-outcome"
"""Tag of the banner cell the runner inserts (so a second pass never adds another)."""
PAPERMILL_ERROR_TAG = "papermill-error-cell-tag"
"""papermill's own error cells ("An Exception was encountered at In [4]", pointing at prompts
that the report hides): the banner says it instead, the traceback output stays."""


def outcome_badge(outcome: RunOutcome, label: str) -> str:
    """The outcome as a coloured badge (inline styles: they survive nbconvert, Voilà and an
    untrusted notebook's sanitizer)."""
    return (f'<span style="display:inline-block;padding:2px 10px;border-radius:4px;'
            f'background:{outcome.colour};color:#fff;font-weight:600">'
            f"{html.escape(label)}</span>")


def hide_code(notebook: object) -> None:
    """Mark every code cell's input hidden in JupyterLab (``jupyter.source_hidden``) and for
    nbconvert's tag filters (``remove_input``); the source stays for developers."""
    for cell in getattr(notebook, "cells", []):
        if cell.get("cell_type") != "code":
            continue
        metadata = cell.setdefault("metadata", {})
        metadata.setdefault("jupyter", {})["source_hidden"] = True
        tags = metadata.setdefault("tags", [])
        if "remove_input" not in tags:
            tags.append("remove_input")


def _banner(outcome: RunOutcome, label: str, error: str) -> str:
    why = (f"\n\n{html.escape(error)}" if error else "")
    return (f"**Outcome: {outcome_badge(outcome, label)}** — the report below stops where "
            f"the run stopped.{why}")


def finish_output_notebook(path: Path, outcome: RunOutcome, label: str,
                           error: str = "") -> tuple[Path | None, str]:
    """Hide the code of the output notebook at ``path``, add the outcome banner when the run
    did not finish its work, save it and write its HTML next to it. Returns the HTML path (None
    when rendering failed) and the rendering problem; a problem here never fails the job."""
    import nbformat
    from nbconvert import HTMLExporter

    try:
        notebook = nbformat.read(str(path), as_version=4)
        notebook.cells = [c for c in notebook.cells
                          if PAPERMILL_ERROR_TAG not in c.get("metadata", {}).get("tags", [])]
        hide_code(notebook)
        has_banner = any(BANNER_TAG in c.get("metadata", {}).get("tags", [])
                         for c in notebook.cells)
        if not outcome.completed and not has_banner:
            banner = nbformat.v4.new_markdown_cell(_banner(outcome, label, error))
            banner.metadata["tags"] = [BANNER_TAG]
            notebook.cells.insert(0, banner)
        nbformat.write(notebook, str(path))
        exporter = HTMLExporter(exclude_input=True, exclude_input_prompt=True,
                                exclude_output_prompt=True)
        body, _ = exporter.from_notebook_node(notebook)
    except Exception as exc:  # nbformat/nbconvert surface parse and template errors in many types
        return None, f"HTML rendering failed: {type(exc).__name__}: {exc}"
    target = path.with_suffix(".html")
    target.write_text(body, encoding="utf-8")
    return target, ""
