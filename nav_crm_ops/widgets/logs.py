"""LogsPanel: the job log over time, failed records grouped by cause, drill-down, retry.

Why: when a record fails people need to find out why quickly and fix it. The panel shows the
job log (``ws.runs``) with charts of changes, failures, durations and requests per run, and
flags on runs that failed or deviate from their peers (volume, duration); failed records
grouped by cause (``ws.error_groups``: distinct records, example records by name, advice with
a link to the dashboard that fixes it); a drill-down from a group to its records
(``ws.errors``; a capped list says so) and from a record — named by number and name — to its
full message, source values, the payload sent, the service's response and its history of
runs; retry of the selected records (``ws.retry_records``: each record's outcome is shown and
the detail pane refreshed; skipped records are retried only by "Unskip and retry", a plain
Retry says they are skipped) or unskip (``ws.unskip``); export of any table to CSV (Excel
when xlsxwriter is installed).
"""

from __future__ import annotations

import datetime as dt
import html
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import ipywidgets as widgets
import polars as pl

from ..engine.progress import CancelToken, Progress
from ..engine.report import SyncReport
from ..engine.troubleshoot import Outcome, RetryResult, advice_for
from ..presentation import alerts_html
from ..store.runs import RunOutcome
from .charts import runs_over_time_html
from .dashboard_links import advice_html
from .errors import ActionButton, ErrorArea, guarded
from .panel import Panel
from .progress import ProgressPanel
from .protocols import LogsWorkspace, mapping_names
from .revert import RevertBox
from .table import ALL, DataTable, excel_available

__all__ = ["LogsPanel"]

_SEP = "|"
CHART_RUNS = 30
"""How many of the newest runs the charts show."""


def _moment(column: str) -> pl.Expr:
    return pl.col(column).str.to_datetime(time_zone="UTC", strict=False)


def _duration_s(started: str, finished: str) -> pl.Expr:
    """Seconds between two UTC ISO text columns (null while a run is still going)."""
    return ((_moment(finished) - _moment(started)).dt.total_milliseconds() / 1000).round(2)


DEVIATION_FACTOR = 3
"""A run deviates when its changes or duration exceed this many times the median of the same
mapping, direction and kind (with at least ``DEVIATION_MIN_RUNS`` runs to compare)."""
DEVIATION_MIN_RUNS = 4
_MIN_SLOW_S = 10.0
_MIN_VOLUME = 10


def run_flags() -> pl.Expr:
    """Why a run deserves a look (comma separated, empty when none): failed records, unusual
    volume or duration against its peers (Census-style alerts). How the run ended is its
    ``outcome`` column (:func:`with_outcomes`)."""
    peers = ("mapping", "direction", "kind")
    changes = pl.col("inserted") + pl.col("modified") + pl.col("deleted")
    enough = pl.len().over(peers) >= DEVIATION_MIN_RUNS
    volume = enough & (changes > DEVIATION_FACTOR * changes.median().over(peers) + _MIN_VOLUME)
    slow = enough & (pl.col("duration_s") > pl.max_horizontal(
        DEVIATION_FACTOR * pl.col("duration_s").median().over(peers), pl.lit(_MIN_SLOW_S)))
    parts = [
        pl.when(pl.col("failed") > 0).then(pl.format("{} failed", pl.col("failed"))),
        pl.when(volume).then(pl.lit("unusual volume")),
        pl.when(slow.fill_null(False)).then(pl.lit("slow")),
    ]
    return pl.concat_list(parts).list.drop_nulls().list.join(", ")


def with_outcomes(runs: pl.DataFrame) -> pl.DataFrame:
    """The job log with ``outcome`` in words (``succeeded with 2 failed records``, as
    ``jobs list`` and the job reports say it) and ``outcome_colour`` (by meaning)."""
    outcomes = [RunOutcome(value) for value in runs.get_column("outcome").to_list()]
    failed, conflicts = runs.get_column("failed").to_list(), runs.get_column("conflicts").to_list()
    return runs.with_columns(
        pl.Series("outcome", [o.label(f or 0, c or 0)
                              for o, f, c in zip(outcomes, failed, conflicts, strict=True)],
                  dtype=pl.Utf8),
        pl.Series("outcome_colour", [o.colour for o in outcomes], dtype=pl.Utf8),
        pl.Series("outcome_key", [o.value for o in outcomes], dtype=pl.Utf8))


def _run_style(row: dict[str, Any]) -> str:
    """A run's row tinted by its outcome (succeeded: plain; flagged: light amber)."""
    if row.get("outcome_key") not in (None, RunOutcome.SUCCEEDED.value):
        return f"background:{row['outcome_colour']}22"
    return "background:#fff8e1" if row.get("flags") else ""


def _pretty(text: str | None) -> str:
    """JSON text indented for reading (as stored when it is not JSON)."""
    if text is None or text == "":
        return "(none recorded)"
    try:
        return json.dumps(json.loads(text), indent=2, ensure_ascii=False, sort_keys=True)
    except ValueError:
        return text


def _state_text(status: dict[str, Any] | None) -> str:
    """Where the record stands now: in the retry pass, skipped, or synchronized."""
    if status is None:
        return "not in the retry pass (synchronized, or never failed here)"
    if status["state"] == "skipped":
        return (f"skipped since {status['skipped_since']} after "
                f"{status['consecutive_failures']} failures with the same error: not "
                "synchronized until unskipped")
    if status["state"] == "conflict":
        return "conflict held: a person chooses the value to keep"
    return f"in the retry pass ({status['consecutive_failures']} failure(s) in a row)"


def _error_html(error: dict[str, Any], *, resolved: bool = False) -> str:
    """One record error in full: kind, codes, the whole message, advice, and the values.
    ``resolved``: the record synchronized since (the error is history, no advice)."""
    codes = " ".join(str(c) for c in (
        f"HTTP {error['http_status']}" if error["http_status"] else None,
        error["service_code"]) if c)
    advice = advice_for(error["message"], transient=bool(error["transient"]))
    kind = f"{'transient' if error['transient'] else 'permanent'} failure"
    parts = [
        "<p style='color:#1b5e20'><b>Synchronized since this failure</b>: nothing to do."
        f"</p><p><b>Last {kind}</b>" if resolved else f"<p><b>{kind[0].upper()}{kind[1:]}</b>",
        f"{f' ({html.escape(codes)})' if codes else ''}:</p>"
        f"<pre class='nav-crm-ops-message' style='white-space:pre-wrap'>"
        f"{html.escape(error['message'])}</pre>",
        "" if resolved else f"<p>{advice_html(advice.text, advice.remedy)}</p>"]
    shown = "" if resolved else " open"
    for title, column in (("Source values", "source_values"),
                          ("Payload sent", "payload"),
                          ("Service response", "response")):
        parts.append(f"<details{shown}><summary>{title}</summary><pre>"
                     f"{html.escape(_pretty(error[column]))}</pre></details>")
    return "".join(parts)


_OUTCOME_COLOURS = {Outcome.DONE: "#1b5e20", Outcome.NOT_ATTEMPTED: "#8d6e00",
                    Outcome.STILL_SKIPPED: "#8d6e00"}


def _outcomes_html(outcomes: pl.DataFrame) -> str:
    """Each retried record: its name, what became of it and the message when it failed."""
    rows = "".join(
        f"<tr><td>{html.escape(str(r['mapping']))}</td><td>{html.escape(str(r['record']))}"
        f"</td><td style='color:{_OUTCOME_COLOURS.get(Outcome(r['outcome']), '#b71c1c')}'>"
        f"<b>{html.escape(r['outcome'])}</b></td>"
        f"<td style='white-space:pre-wrap'>{html.escape(r['message'] or '')}</td></tr>"
        for r in outcomes.iter_rows(named=True))
    return ("<table class='nav-crm-ops-outcomes'><thead><tr><th>mapping</th><th>record</th>"
            f"<th>outcome</th><th>message</th></tr></thead><tbody>{rows}</tbody></table>")


class LogsPanel(Panel):
    """Tables (``runs_table``, ``groups_table``, ``records_table``, ``failed_table``) are
    :class:`DataTable` objects; ``detail`` shows the selected record; ``retry_button`` and
    ``unskip_button`` act on the records selected in ``records_table`` and ``failed_table``."""

    def __init__(self, workspace: LogsWorkspace, *, export_dir: str | Path | None = None,
                 page_size: int = 15) -> None:
        self.workspace = workspace
        self.report: SyncReport | None = None
        self.errors = ErrorArea()
        self.progress = ProgressPanel(self.errors)
        root = getattr(getattr(workspace, "config", None), "root", None)
        self.export_dir = Path(export_dir) if export_dir is not None else (
            Path(root) / "exports" if root is not None else Path.cwd() / "exports")
        self._build_tables(page_size)
        self._build_actions()
        self._connect()
        self.widget = self._layout()
        self.refresh()

    def _build_tables(self, page_size: int) -> None:
        """The mapping filter, the job log with its charts, and the three failure tables."""
        self.mapping_filter = widgets.Dropdown(options=[ALL, *mapping_names(self.workspace)],
                                               value=ALL, description="Mapping")
        self.refresh_button = ActionButton(description="Refresh", icon="refresh")
        self.alerts_box = widgets.HTML(value="")
        self.runs_chart = widgets.HTML(value="")
        self.runs_table = DataTable(
            key_column="id", label_columns=("id", "mapping", "started_at", "outcome", "flags"),
            row_style=_run_style,
            choice_columns=("mapping", "kind", "outcome", "direction"),
            columns=("id", "mapping", "direction", "kind", "job_name", "started_at", "outcome",
                     "flags",
                     "inserted", "modified", "deleted", "unchanged", "failed", "skipped",
                     "conflicts", "coupled", "requests", "duration_s", "message", "output_path"),
            page_size=page_size, errors=self.errors)
        self.groups_table = DataTable(
            key_column="group_key", label_columns=("records", "mapping", "normalized_message"),
            choice_columns=("mapping",),
            columns=("mapping", "records", "count", "normalized_message", "examples", "advice",
                     "last_seen"), page_size=page_size, errors=self.errors)
        self.records_table = DataTable(
            key_column="id", label_columns=("record", "direction", "created_at"),
            choice_columns=("direction", "transient"),
            search_columns=("record", "source_id", "message"),
            columns=("record", "direction", "run_id", "transient", "http_status",
                     "service_code", "message", "created_at"),
            page_size=page_size, errors=self.errors)
        self.records_note = widgets.HTML(value="")
        self.failed_table = DataTable(
            key_column="status_key", label_columns=("mapping", "record", "state"),
            choice_columns=("mapping", "state", "direction"),
            search_columns=("record", "source_id", "message"),
            columns=("mapping", "record", "direction", "state", "consecutive_failures",
                     "message", "advice", "skipped_since", "updated_at"),
            page_size=page_size, errors=self.errors)

    def _build_actions(self) -> None:
        """The record detail, retry/unskip of the selection, and exporting a table."""
        self.detail = widgets.HTML(value="<i>select a failed record to see its details</i>")
        self.retry_button = ActionButton(description="Retry selected", button_style="primary",
                                         icon="redo")
        self.unskip_button = ActionButton(description="Unskip selected", icon="undo")
        self.unskip_retry_button = ActionButton(description="Unskip and retry selected",
                                                icon="redo", layout=widgets.Layout(width="auto"))
        self.result = widgets.HTML(value="")
        self.retry_result: RetryResult | None = None
        self._detail_of: tuple[str, str | None] | None = None
        tables = ["job log", "error groups", "group records", "failed records"]
        self.export_choice = widgets.Dropdown(options=tables, value="job log",
                                              description="Export")
        formats = ["csv", "xlsx"] if excel_available() else ["csv"]
        self.export_format = widgets.Dropdown(options=formats, value="csv",
                                              description="Format")
        self.export_path = widgets.Text(value="", placeholder="file name (optional)",
                                        description="File")
        self.export_button = ActionButton(description="Export", icon="download")
        self.revert_box = RevertBox(self.workspace, self.errors)  # "Revert this run"

    def _connect(self) -> None:
        """Wire every control to its action; failures show in the error area (``guarded``)."""
        self.mapping_filter.observe(guarded(self.errors, "load the logs")(
            lambda _: self.refresh()), names="value")
        self.refresh_button.on_click(guarded(self.errors, "load the logs")(
            lambda _: self.refresh()))
        self.groups_table.on_select(guarded(self.errors, "open the error group")(
            lambda _: self._show_group()))
        self.records_table.on_select(guarded(self.errors, "show the failed record")(
            self._show_error_record))
        self.failed_table.on_select(guarded(self.errors, "show the failed record")(
            self._show_status_record))
        self.retry_button.on_click(guarded(self.errors, "start the retry")(
            lambda _: self.retry_selected()))
        self.unskip_button.on_click(guarded(self.errors, "unskip the selected records")(
            lambda _: self.unskip_selected()))
        self.unskip_retry_button.on_click(guarded(self.errors, "start the retry")(
            lambda _: self.retry_selected(unskip=True)))
        self.export_button.on_click(guarded(self.errors, "export the table")(
            lambda _: self.export()))
        self.runs_table.on_select(self.revert_box.select)

    def _layout(self) -> widgets.VBox:
        """One tab per view (job log, errors by cause, failed records), actions underneath."""
        tabs = widgets.Tab(children=[
            widgets.VBox([self.runs_chart, self.runs_table.widget, self.revert_box.widget]),
            widgets.VBox([widgets.HTML("<b>Failures grouped by cause</b>"),
                          self.groups_table.widget,
                          widgets.HTML("<b>Records of the selected group</b>"),
                          self.records_note, self.records_table.widget]),
            widgets.VBox([widgets.HTML("<b>Records in the retry pass or skipped</b>"),
                          self.failed_table.widget]),
        ])
        for index, title in enumerate(["Job log", "Errors by cause", "Failed records"]):
            tabs.set_title(index, title)
        self.tabs = tabs
        return widgets.VBox([
            widgets.HTML("<h3>Analyse logs and failed records</h3>"),
            widgets.HBox([self.mapping_filter, self.refresh_button]),
            self.errors.widget, self.alerts_box, tabs, self.detail,
            widgets.HBox([self.retry_button, self.unskip_button, self.unskip_retry_button]),
            self.progress.widget, self.result,
            widgets.HBox([self.export_choice, self.export_format, self.export_path,
                          self.export_button]),
        ])

    @property
    def mapping(self) -> str | None:
        value = self.mapping_filter.value
        return None if value == ALL else str(value)

    def show_mapping(self, name: str | None) -> None:
        """Narrow the panel to mapping ``name`` (as a link to this dashboard asks: any case);
        a name the workspace does not have leaves every mapping shown."""
        wanted = {str(o).upper(): o for o in self.mapping_filter.options}.get(
            (name or "").strip().upper())
        if wanted is not None:
            self.mapping_filter.value = wanted

    # -- loading ----------------------------------------------------------------------------------
    def refresh(self) -> None:
        """Reload the job log, error groups and failed records for the mapping filter."""
        mapping = self.mapping
        runs = self.workspace.runs(mapping)
        runs = runs.with_columns(_duration_s("started_at", "finished_at").alias("duration_s"))
        runs = with_outcomes(runs.with_columns(run_flags().alias("flags")))
        self.runs_table.set_frame(runs)
        self.runs_chart.value = self._runs_charts(runs)
        self.alerts_box.value = self._alerts(mapping)
        groups = self.workspace.error_groups(mapping).with_columns(
            pl.concat_str("mapping", pl.lit(_SEP), "normalized_message").alias("group_key"))
        self.groups_table.set_frame(groups)
        self.records_table.set_frame(pl.DataFrame())
        failed = self.workspace.failed_records(mapping).with_columns(
            pl.concat_str("mapping", pl.lit(_SEP), "direction", pl.lit(_SEP), "source_id")
            .alias("status_key"))
        self.failed_table.set_frame(failed)

    def _alerts(self, mapping: str | None) -> str:
        """The open alerts (of the mapping filtered on), each with where to look."""
        alerts = self.workspace.alerts()
        if mapping is not None:
            alerts = alerts.filter(pl.col("subject").str.starts_with(mapping))
        listed, _ = alerts_html(alerts)
        heading = f"Open alerts ({alerts.height})" if alerts.height else "Open alerts"
        return f"<b>{heading}</b>{listed}"

    def _runs_charts(self, runs: pl.DataFrame) -> str:
        syncs = runs.head(CHART_RUNS)
        return runs_over_time_html(
            syncs, title=f"changes and failures per run (newest {syncs.height}), by time")

    # -- drill-down ---------------------------------------------------------------------------------
    def _show_group(self) -> None:
        keys = self.groups_table.selected_keys
        if not keys:
            self.records_table.set_frame(pl.DataFrame())
            self.records_note.value = ""
            return
        frames = []
        for key in keys:
            mapping, message = str(key).split(_SEP, 1)
            frames.append(self.workspace.errors(mapping, normalized_message=message))
        records = pl.concat(frames, how="vertical_relaxed")
        if records.height:
            label = (pl.coalesce("source_label", "source_id") if "source_label" in
                     records.columns else pl.col("source_id"))
            records = records.with_columns(label.alias("record"))
        self.records_table.set_frame(records)
        chosen = self.groups_table.selected_rows
        total = int(chosen["count"].sum()) if chosen.height else records.height
        self.records_note.value = "" if records.height >= total else (
            f"<div style='color:#8d6e00'>Showing the newest {records.height:,} of {total:,} "
            "occurrences — narrow the filter (choose a mapping, or fix and retry the records "
            "shown first).</div>")

    def _show_error_record(self, keys: list[Any]) -> None:
        if not keys:
            return
        row = self.records_table.frame.filter(pl.col("id") == keys[0]).row(0, named=True)
        self._show_detail(row["mapping"], row["source_id"], row)

    def _show_status_record(self, keys: list[Any]) -> None:
        if not keys:
            return
        mapping, _direction, source_id = str(keys[0]).split(_SEP, 2)
        self._open_record(mapping, source_id)

    def _open_record(self, mapping: str, source_id: str | None) -> None:
        """Show one record with its newest error (read again: a retry may have changed it)."""
        history = self.workspace.errors(mapping, source_id=source_id) if source_id else None
        latest = history.row(0, named=True) if history is not None and history.height else None
        self._show_detail(mapping, source_id, latest)

    def _status_of(self, mapping: str, source_id: str | None) -> dict[str, Any] | None:
        frame = self.failed_table.frame
        if source_id is None or frame.height == 0:
            return None
        rows = frame.filter((pl.col("mapping") == mapping.upper())
                            & (pl.col("source_id") == source_id))
        return rows.row(0, named=True) if rows.height else None

    def _show_detail(self, mapping: str, source_id: str | None,
                     error: dict[str, Any] | None) -> None:
        self._detail_of = (mapping, source_id)
        status = self._status_of(mapping, source_id)
        label = ((error or {}).get("source_label") or (status or {}).get("record")
                 or source_id or "(no record)")
        parts = [f"<h4>{html.escape(mapping)} {html.escape(str(label))}</h4>",
                 f"<p style='color:#616161'>id {html.escape(str(source_id))} · "
                 f"{html.escape(_state_text(status))}</p>"]
        if error is not None:
            parts.append(_error_html(error, resolved=status is None))
        if source_id:
            parts.append(self._history_html(mapping, source_id))
        self.detail.value = "".join(parts)

    def _history_html(self, mapping: str, source_id: str) -> str:
        history = self.workspace.errors(mapping, source_id=source_id)
        runs = self.workspace.runs(mapping)
        joined = history.join(runs.select(pl.col("id").alias("run_id"), "started_at",
                                          pl.col("status").alias("run_status"), "job_name"),
                              on="run_id", how="left")
        rows = "".join(
            f"<tr><td>{r['run_id']}</td><td>{html.escape(str(r['started_at'] or ''))}</td>"
            f"<td>{html.escape(str(r['run_status'] or ''))}</td>"
            f"<td>{html.escape(str(r['job_name'] or ''))}</td>"
            f"<td>{html.escape(r['direction'])}</td><td>{html.escape(r['message'])}</td></tr>"
            for r in joined.iter_rows(named=True))
        return ("<b>History of runs</b><table><thead><tr><th>run</th><th>started</th>"
                "<th>run status</th><th>job</th><th>direction</th><th>error</th></tr>"
                f"</thead><tbody>{rows}</tbody></table>")

    # -- actions ----------------------------------------------------------------------------------
    def selected_records(self) -> dict[str, list[str]]:
        """Source ids selected in the group records and failed records tables, by mapping."""
        chosen: dict[str, list[str]] = {}
        rows = self.records_table.selected_rows
        if rows.height:
            for mapping, source_id in rows.select("mapping", "source_id").iter_rows():
                if source_id is not None:
                    chosen.setdefault(mapping, []).append(source_id)
        for key in self.failed_table.selected_keys:
            mapping, _direction, source_id = str(key).split(_SEP, 2)
            chosen.setdefault(mapping, []).append(source_id)
        return {m: list(dict.fromkeys(ids)) for m, ids in chosen.items()}

    def skipped_among(self, chosen: dict[str, list[str]]) -> int:
        """How many of the chosen records are skipped right now."""
        frame = self.failed_table.frame
        if frame.height == 0:
            return 0
        return sum(frame.filter((pl.col("mapping") == mapping.upper())
                                & pl.col("source_id").is_in(ids)
                                & (pl.col("state") == "skipped")).height
                   for mapping, ids in chosen.items())

    def retry_selected(self, *, unskip: bool = False) -> None:
        """Run the selected records again now (``ws.retry_records``) in the background;
        skipped ones only with ``unskip`` (Unskip and retry), else the panel says so."""
        chosen = self.selected_records()
        if not chosen:
            self.errors.show_info("Select failed records first (in a group or in the failed "
                                  "records tab).")
            return
        count = sum(len(ids) for ids in chosen.values())
        skipped = 0 if unskip else self.skipped_among(chosen)
        if skipped == count:
            self.errors.show_warning(
                f"{skipped} of the selected record(s) are skipped — unskip first, or use "
                "'Unskip and retry selected'. Nothing was retried.")
            return

        def work(progress: Progress, _cancel: CancelToken) -> RetryResult:
            results = [self.workspace.retry_records(mapping, ids, unskip=unskip,
                                                    progress=progress)
                       for mapping, ids in chosen.items()]
            return RetryResult(
                sum((r.report for r in results), SyncReport()),
                pl.concat([r.outcomes for r in results], how="vertical_relaxed"))

        action = "unskip and retry" if unskip else "retry"
        self.progress.start(f"{action} {count} record(s)", work, self._show_retry)

    def _show_retry(self, result: RetryResult) -> None:
        self.retry_result = result
        self.report = result.report
        self.result.value = (f"<h4>Retry result: {html.escape(result.summary())}</h4>"
                             f"{_outcomes_html(result.outcomes)}{result.report._repr_html_()}")
        self.refresh()
        if self._detail_of is not None:
            self._open_record(*self._detail_of)
        still = result.count(Outcome.STILL_SKIPPED)
        if still:
            self.errors.show_warning(f"{still} of the selected record(s) are skipped — unskip "
                                     "first, or use 'Unskip and retry selected'.")

    def unskip_selected(self) -> int:
        """Put the selected skipped records back into the retry pass (``ws.unskip``)."""
        chosen = self.selected_records()
        if not chosen:
            self.errors.show_info("Select skipped records first.")
            return 0
        count = sum(self.workspace.unskip(mapping, ids) for mapping, ids in chosen.items())
        self.refresh()
        self.errors.show_info(f"{count} record(s) back in the retry pass; the next run (or "
                              "Retry) synchronizes them again.")
        return count

    def export(self) -> Path | None:
        """Write the chosen table's filtered rows to the export folder."""
        tables: dict[str, DataTable] = {"job log": self.runs_table,
                                        "error groups": self.groups_table,
                                        "group records": self.records_table,
                                        "failed records": self.failed_table}
        table = tables[self.export_choice.value]
        suffix = f".{self.export_format.value}"
        name = self.export_path.value.strip() or (
            f"{self.export_choice.value.replace(' ', '-')}-"
            f"{dt.datetime.now(dt.UTC).strftime('%Y%m%d-%H%M%S')}{suffix}")
        target = Path(name)
        if target.suffix.lower() not in (".csv", ".xlsx"):
            target = target.with_name(target.name + suffix)
        if target.suffix.lower() == ".xlsx" and not excel_available():
            self.errors.show_info("Excel export needs the xlsxwriter package; exporting to "
                                  "CSV instead.")
            target = target.with_suffix(".csv")
        if not target.is_absolute():
            target = self.export_dir / target
        target.parent.mkdir(parents=True, exist_ok=True)
        table.export(target)
        self.errors.show_info(f"Exported {table.view.height} row(s) to {target}.")
        return target

    def select_group(self, mapping: str, normalized_message: str) -> None:
        """Select one error group, as a person clicking it would."""
        self.groups_table.search.value = ""
        key = f"{mapping}{_SEP}{normalized_message}"
        position = self.groups_table.view.get_column("group_key").to_list().index(key)
        self.groups_table.go_to(position // self.groups_table.page_size.value)
        self.groups_table.select([key])

    def select_sources(self, source_ids: Sequence[str]) -> None:
        """Select the group records of the given source ids (on the current page)."""
        rows = self.records_table.page_rows.filter(pl.col("source_id").is_in(list(source_ids)))
        self.records_table.select(rows.get_column("id").to_list())
