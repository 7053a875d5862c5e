""""Revert this run" in the troubleshooting dashboard (the logs panel's run detail).

Why a widget of its own: the logs panel is near its size limit, and a revert is two steps a
person must see apart — the reversal previewed (what goes back, what is held because someone
changed it since, which created records are deactivated or deleted), then applied only on a
confirm click. The engine does the work (:mod:`nav_crm_ops.engine.revert`); this box shows
it. Selecting a run in the job log offers it; a run that cannot be reverted says why.
"""

from __future__ import annotations

import html
from typing import Any

import ipywidgets as widgets

from .errors import ActionButton, ErrorArea, guarded

__all__ = ["RevertBox"]

SHOWN_HELD = 20
"""Held fields the preview lists."""


class RevertBox:
    """Preview and apply the revert of the run selected in the job log."""

    def __init__(self, workspace: Any, errors: ErrorArea) -> None:
        self.workspace = workspace
        self.errors = errors
        self.run_id: int | None = None
        self.planned: Any = None
        self.result: Any = None
        self.preview_button = ActionButton(description="Revert this run", icon="undo",
                                           disabled=True, layout=widgets.Layout(width="auto"))
        self.confirm_button = ActionButton(description="Confirm revert", icon="check",
                                           button_style="danger", disabled=True,
                                           layout=widgets.Layout(width="auto"))
        self.summary = widgets.HTML(value="")
        self.preview_button.on_click(guarded(errors, "preview the revert")(
            lambda _: self.preview()))
        self.confirm_button.on_click(guarded(errors, "revert the run")(lambda _: self.confirm()))
        self.widget = widgets.VBox([widgets.HBox([self.preview_button, self.confirm_button]),
                                    self.summary])

    def select(self, keys: list[Any]) -> None:
        """The job log's selection changed: offer the revert of one selected run."""
        self.run_id = int(keys[0]) if len(keys) == 1 else None
        self.planned = None
        self.preview_button.disabled = self.run_id is None
        self.confirm_button.disabled = True
        self.summary.value = "" if self.run_id is None else (
            f"<i>run {self.run_id} selected: <b>Revert this run</b> previews its reversal "
            "(nothing is written until you confirm)</i>")

    def preview(self) -> None:
        """Build the reversal of the selected run and show it; confirm becomes possible when
        there is something to write."""
        from ..engine.revert import revert_plan

        if self.run_id is None:
            return
        self.planned = revert_plan(self.workspace, self.run_id)
        self.confirm_button.disabled = not self.planned.has_work
        self.summary.value = self._preview_html(self.planned)

    def confirm(self) -> Any:
        """Apply the previewed reversal (the confirm click) and show what it did."""
        from ..engine.revert import apply_revert

        if self.planned is None or not self.planned.has_work:
            return None
        self.confirm_button.disabled = True
        self.result = apply_revert(self.workspace, self.planned)
        self.summary.value = ("<b>Reverted.</b><pre>" + html.escape(self.result.summary())
                              + "</pre>")
        self.planned = None
        return self.result

    @staticmethod
    def _preview_html(planned: Any) -> str:
        held = "".join(f"<li>{html.escape(line)}</li>" for line in planned.held[:SHOWN_HELD])
        more = (f"<li>... and {len(planned.held) - SHOWN_HELD} more</li>"
                if len(planned.held) > SHOWN_HELD else "")
        stuck = "".join(f"<li>{html.escape(c.problem)}</li>" for c in planned.created
                        if c.problem and not c.done)
        parts = [f"<b>{html.escape(planned.summary())}</b>"]
        if held or more:
            parts.append("<div>Held as conflicts (changed since the run; never overwritten):"
                         f"<ul>{held}{more}</ul></div>")
        if stuck:
            parts.append(f"<div>Created records with no known way to revert:<ul>{stuck}</ul>"
                         "</div>")
        if planned.has_work:
            parts.append("<i>Confirm revert applies it.</i>")
        return "".join(parts)
