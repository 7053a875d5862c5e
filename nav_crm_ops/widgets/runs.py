"""RunMappingsPanel: run one, several or all mappings in dependency order, live, cancellable.

Why: a person who wants "sync now" should not need the CLI. The panel calls
``ws.sync_all(names)`` in the background (the engine sorts by dependency and takes each
mapping's lease), shows live progress per mapping (stage, records, failures so far) with a
Cancel button, and the results per mapping (``report.to_frame()``: every count, requests,
duration, message).
"""

from __future__ import annotations

import html

import ipywidgets as widgets
import polars as pl

from ..engine.progress import CancelToken, Progress
from ..engine.report import SyncReport
from ..store.runs import RunOutcome
from .charts import RUN_SERIES, stacked_bars_html
from .dashboard_links import next_steps_html, without_cli_hints
from .errors import ActionButton, ErrorArea, guarded
from .panel import Panel
from .progress import ProgressPanel
from .protocols import RunWorkspace, mapping_names

__all__ = ["RunMappingsPanel"]

_RESULT_COLUMNS = ("mapping", "outcome", "inserted", "modified", "deleted", "unchanged",
                   "conflicts", "failed", "skipped", "coupled", "requests", "retries",
                   "duration_s", "message")


class RunMappingsPanel(Panel):
    """``mapping_picker`` (empty = all), ``all_checkbox``, ``run_button``, ``progress``,
    ``results`` (HTML) and ``report`` (the last :class:`SyncReport`)."""

    def __init__(self, workspace: RunWorkspace, *, job_name: str = "run mappings notebook"
                 ) -> None:
        self.workspace = workspace
        self.job_name = job_name
        self.report: SyncReport | None = None
        self.errors = ErrorArea()
        self.progress = ProgressPanel(self.errors)
        names = mapping_names(workspace)
        self.mapping_picker = widgets.SelectMultiple(options=names, value=(),
                                                     description="Mappings", rows=len(names))
        self.all_checkbox = widgets.Checkbox(value=False, description="all mappings")
        self.order = widgets.HTML(value="")
        self.run_button = ActionButton(description="Run", button_style="primary", icon="play")
        self.results = widgets.HTML(value="")
        self.mapping_picker.observe(guarded(self.errors, "show the run order")(
            lambda _: self._show_order()), names="value")
        self.all_checkbox.observe(guarded(self.errors, "show the run order")(
            lambda _: self._show_order()), names="value")
        self.run_button.on_click(guarded(self.errors, "start the run")(lambda _: self.run()))
        self.widget = widgets.VBox([
            widgets.HTML("<h3>Run mappings</h3>"),
            widgets.HBox([self.mapping_picker, widgets.VBox([self.all_checkbox,
                                                             self.run_button])]),
            self.order, self.progress.widget, self.errors.widget, self.results])
        self._show_order()

    @property
    def selected(self) -> list[str] | None:
        """The mappings to run (None: all of them)."""
        if self.all_checkbox.value:
            return None
        return list(self.mapping_picker.value) or None

    def _show_order(self) -> None:
        chosen = self.selected
        order = self.workspace.mappings.dependency_order(chosen)
        self.order.value = ("<p>Runs in this order: " + " → ".join(html.escape(n) for n in order)
                            + (" (all mappings)" if chosen is None else "") + "</p>")

    def run(self) -> None:
        """Start ``ws.sync_all`` for the selection in the background."""
        chosen = self.selected
        label = ", ".join(chosen) if chosen else "all mappings"

        def work(progress: Progress, cancel: CancelToken) -> SyncReport:
            return self.workspace.sync_all(chosen, progress=progress, cancel=cancel,
                                           job_name=self.job_name)

        self.results.value = ""
        self.progress.start(f"run {label}", work, self.show_report,
                            mappings=self.workspace.mappings.dependency_order(chosen))

    def show_report(self, report: SyncReport) -> None:
        self.report = report
        frame = report.to_frame().with_columns(
            pl.Series("outcome", [r.outcome.value for r in report.results], dtype=pl.Utf8))
        self.results.value = _results_html(frame) + next_steps_html(report) + stacked_bars_html(
            [(r["mapping"], [r["inserted"] + r["modified"] + r["deleted"],
                             r.get("conflicts") or 0, r["failed"], r.get("skipped") or 0])
             for r in frame.iter_rows(named=True)],
            RUN_SERIES, title="records per mapping: written, held, failed, skipped")


def _results_html(frame: pl.DataFrame) -> str:
    columns = [c for c in _RESULT_COLUMNS if c in frame.columns]
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    rows = []
    for row in frame.iter_rows(named=True):
        outcome = RunOutcome(row["outcome"])
        style = "" if outcome is RunOutcome.SUCCEEDED else f"background:{outcome.colour}22"
        shown = {**row, "outcome": outcome.label(row.get("failed") or 0,
                                                 row.get("conflicts") or 0)}
        cells = "".join(f"<td>{html.escape(_shown(c, shown[c]))}</td>" for c in columns)
        rows.append(f"<tr style='{style}'>{cells}</tr>")
    return (f"<h4>Results per mapping</h4><table><thead><tr>{head}</tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>")


def _shown(column: str, value: object) -> str:
    """A result cell; messages without command-line hints (the links below replace them)."""
    return without_cli_hints(str(value)) if column == "message" else str(value)
