"""CouplingPanel: couple records by hand where matching cannot, and sync a pair now.

Why: match-based coupling handles most records; the rest need a person who knows that
"Cronus Cardoxy Sales" in CRM is customer 10000 in Business Central. The panel searches both
sides side by side (``ws.records``), shows matching suggestions as matched / unmatched /
ambiguous (``ws.match_couple(apply=False)``), couples (``ws.couple``), uncouples
(``ws.uncouple``), couples all matches or creates-and-couples the unmatched
(``ws.match_couple(apply=True, create=...)``), synchronizes the selected records now with a
direction choice (``ws.sync_now``) - warning when the destination was changed more recently
than the source - and shows links that open a pair in Business Central and Dynamics 365
(``ws.record_links``).
"""

from __future__ import annotations

import html
from typing import Any, Literal

import ipywidgets as widgets
import polars as pl

from ..engine.labels import record_label
from ..engine.progress import CancelToken, Progress
from ..engine.report import SyncReport
from ..engine.vocabulary import Side
from .errors import ActionButton, ErrorArea, guarded
from .panel import Panel
from .progress import ProgressPanel
from .protocols import CouplingWorkspace, mapping_names
from .related import related_html
from .table import DataTable

__all__ = ["CouplingPanel"]

MERGE = "merge"
_DIRECTIONS = [("NAV/BC → CRM", "to_crm"), ("CRM → NAV/BC", "from_crm"),
               ("three-way merge", MERGE)]


_HALF = widgets.Layout(width="49%", min_width="0")
"""Each side's grid takes half the width and scrolls sideways inside it."""


class CouplingPanel(Panel):
    """Child widgets: ``mapping``, ``nav_search``/``crm_search`` + ``search_button``,
    ``nav_table``/``crm_table`` (:class:`DataTable`, key ``id``), ``suggest_button`` +
    ``suggestions`` table, ``couple_button``, ``couple_suggestions_button``,
    ``couple_matches_button``, ``create_button``, ``uncouple_button``, ``direction`` +
    ``sync_button``, ``links``."""

    def __init__(self, workspace: CouplingWorkspace, *, top: int = 50, page_size: int = 15
                 ) -> None:
        self.workspace = workspace
        self.last_result: Any = None
        self.report: SyncReport | None = None
        self.errors = ErrorArea()
        self.progress = ProgressPanel(self.errors)
        self._build_search(top, page_size)
        self._build_actions(page_size)
        self._connect()
        self.widget = self._layout()

    def _build_search(self, top: int, page_size: int) -> None:
        """The mapping picker, both sides' search boxes and their record tables."""
        names = mapping_names(self.workspace)
        self.mapping = widgets.Dropdown(options=names, value=names[0] if names else None,
                                        description="Mapping")
        self.top = widgets.BoundedIntText(value=top, min=1, max=5000, description="Show")
        self.nav_search = widgets.Text(placeholder="number or name", description="NAV/BC")
        self.crm_search = widgets.Text(placeholder="number or name", description="CRM")
        self.search_button = ActionButton(description="Search", icon="search",
                                          button_style="primary")
        self.nav_table = DataTable(key_column="id", label_columns=("record",),
                                   page_size=page_size, errors=self.errors)
        self.crm_table = DataTable(key_column="id", label_columns=("record",),
                                   page_size=page_size, errors=self.errors)

    def _build_actions(self, page_size: int) -> None:
        """Couple/uncouple, the match suggestions, and sync-now with its newer-data warning."""
        self.suggest_button = ActionButton(description="Suggest matches", icon="magic")
        self.suggestions = DataTable(
            key_column="suggestion_key",
            label_columns=("status", "source_side", "source_record", "other_record"),
            choice_columns=("status", "source_side"),
            search_columns=("source_record", "other_record", "source_key", "message"),
            columns=("source_side", "source_record", "status", "other_record", "message"),
            page_size=page_size, errors=self.errors)
        self.couple_button = ActionButton(description="Couple selected pair", icon="link",
                                          button_style="success")
        self.couple_suggestions_button = ActionButton(description="Couple selected matches")
        self.couple_matches_button = ActionButton(description="Couple all matches")
        self.create_button = ActionButton(description="Create and couple unmatched",
                                          button_style="warning")
        self.uncouple_button = ActionButton(description="Uncouple selected", icon="unlink")
        self.direction = widgets.ToggleButtons(options=_DIRECTIONS, value="to_crm",
                                               description="Direction")
        self.warning = widgets.HTML(value="")
        self.confirm_overwrite = widgets.Checkbox(value=False,
                                                  description="overwrite the newer data")
        self.sync_button = ActionButton(description="Synchronize now", icon="refresh",
                                        button_style="danger")
        self.links = widgets.HTML(value="")
        self.related = widgets.HTML(value="")
        self.result = widgets.HTML(value="")

    def _connect(self) -> None:
        """Wire every control to its action; failures show in the error area (``guarded``)."""
        self.mapping.observe(guarded(self.errors, "switch the mapping")(
            lambda _: self._mapping_changed()), names="value")
        self.search_button.on_click(guarded(self.errors, "search the records")(
            lambda _: self.search()))
        self.suggest_button.on_click(guarded(self.errors, "suggest matches")(
            lambda _: self.suggest()))
        self.couple_button.on_click(guarded(self.errors, "couple the records")(
            lambda _: self.couple_selected()))
        self.couple_suggestions_button.on_click(guarded(self.errors, "couple the matches")(
            lambda _: self.couple_suggested()))
        self.couple_matches_button.on_click(guarded(self.errors, "couple all matches")(
            lambda _: self.run_match(create=False)))
        self.create_button.on_click(guarded(self.errors, "create and couple")(
            lambda _: self.run_match(create=True)))
        self.uncouple_button.on_click(guarded(self.errors, "uncouple the records")(
            lambda _: self.uncouple_selected()))
        self.sync_button.on_click(guarded(self.errors, "start the synchronization")(
            lambda _: self.sync_selected()))
        for table in (self.nav_table, self.crm_table):
            table.on_select(guarded(self.errors, "show the selected pair")(
                lambda _: self._selection_changed()))
        self.direction.observe(guarded(self.errors, "check the direction")(
            lambda _: self._check_newer()), names="value")

    def _layout(self) -> widgets.VBox:
        """Search on top, the two sides next to each other, then actions and suggestions."""
        return widgets.VBox([
            widgets.HTML("<h3>Couple records</h3>"),
            widgets.HBox([self.mapping, self.top]),
            widgets.HBox([self.nav_search, self.crm_search, self.search_button]),
            self.errors.widget,
            widgets.HBox([widgets.VBox([widgets.HTML("<b>Business Central / NAV</b>"),
                                        self.nav_table.widget], layout=_HALF),
                          widgets.VBox([widgets.HTML("<b>Dynamics 365 Sales</b>"),
                                        self.crm_table.widget], layout=_HALF)]),
            widgets.HBox([self.couple_button, self.uncouple_button]),
            self.links, self.related,
            widgets.HBox([self.direction, self.sync_button]),
            self.warning, self.confirm_overwrite,
            widgets.HTML("<b>Match-based suggestions</b>"),
            widgets.HBox([self.suggest_button, self.couple_suggestions_button,
                          self.couple_matches_button, self.create_button]),
            self.suggestions.widget,
            self.progress.widget, self.result,
        ])

    @property
    def mapping_name(self) -> str:
        return str(self.mapping.value)

    def _mapping_changed(self) -> None:
        for table in (self.nav_table, self.crm_table, self.suggestions):
            table.set_frame(pl.DataFrame())
        self.links.value = self.related.value = self.warning.value = self.result.value = ""

    # -- search and suggestions ------------------------------------------------------------------
    def search(self) -> None:
        """Load both sides' records matching the search texts (empty: the first ``top``)."""
        sides: tuple[tuple[Side, widgets.Text, DataTable], ...] = (
            (Side.NAV, self.nav_search, self.nav_table),
            (Side.CRM, self.crm_search, self.crm_table))
        for side, text, table in sides:
            frame = self.workspace.records(self.mapping_name, side.literal,
                                           text.value.strip() or None, top=self.top.value)
            table.label_columns = _label_columns(frame)
            table.columns = _shown_columns(frame)
            table.set_frame(frame)
        self.errors.show_info(f"{self.nav_table.frame.height} NAV/BC and "
                              f"{self.crm_table.frame.height} CRM record(s) found.")

    def suggest(self) -> None:
        """Show what match-based coupling would do (nothing is coupled)."""
        result = self.workspace.match_couple(self.mapping_name, apply=False)
        self._show_match(result)

    def _show_match(self, result: Any) -> None:
        self.last_result = result
        frame: pl.DataFrame = result.frame
        self.suggestions.set_frame(frame.with_columns(
            pl.concat_str("source_side", pl.lit(":"), "source_id").alias("suggestion_key")))
        counts = ", ".join(f"{n} {s}" for s, n in sorted(result.counts.items()))
        self.errors.show_info(f"Matching {self.mapping_name}: {counts or 'no uncoupled records'}.")

    # -- coupling ----------------------------------------------------------------------------------
    def couple_selected(self) -> None:
        """Couple the one NAV record and the one CRM record selected in the two tables."""
        nav, crm = self.nav_table.selected_keys, self.crm_table.selected_keys
        if len(nav) != 1 or len(crm) != 1:
            self.errors.show_info("Select exactly one NAV/BC record and one CRM record to "
                                  f"couple (selected: {len(nav)} and {len(crm)}).")
            return
        pair = self.workspace.couple(self.mapping_name, str(nav[0]), str(crm[0]))
        self._reload_tables()
        self._show_links(str(nav[0]), str(crm[0]))
        nav_label = record_label(getattr(pair, "nav_key", None), getattr(pair, "nav_name", None),
                                 nav[0])
        crm_label = record_label(getattr(pair, "crm_key", None), getattr(pair, "crm_name", None),
                                 crm[0])
        self.errors.show_info(f"Coupled NAV/BC {nav_label} with CRM {crm_label}.")

    def couple_suggested(self) -> int:
        """Couple the selected suggestions whose status is ``matched``."""
        rows = self.suggestions.selected_rows
        if self.suggestions.selected_keys:
            rows = rows.filter(pl.col("status") == "matched")
        if rows.height == 0:
            self.errors.show_info("Select one or more suggestions with status 'matched'.")
            return 0
        done: set[tuple[str, str]] = set()
        for row in rows.iter_rows(named=True):
            nav_id, crm_id = ((row["source_id"], row["other_id"])
                              if row["source_side"] == Side.NAV
                              else (row["other_id"], row["source_id"]))
            if (nav_id, crm_id) not in done:
                self.workspace.couple(self.mapping_name, nav_id, crm_id)
                done.add((nav_id, crm_id))
        self.suggest()
        self.errors.show_info(f"Coupled {len(done)} pair(s); the suggestions are refreshed.")
        return len(done)

    def run_match(self, *, create: bool) -> None:
        """Couple every match (and with ``create`` create the unmatched) in the background."""
        mapping = self.mapping_name

        def work(_progress: Progress, _cancel: CancelToken) -> Any:
            return self.workspace.match_couple(mapping, create=create, apply=True)

        def done(result: Any) -> None:
            self._show_match(result)
            report = getattr(result, "report", None)
            if report is not None and report.results:
                self.report = report
                self.result.value = report._repr_html_()

        action = "create and couple" if create else "couple all matches of"
        self.progress.start(f"{action} {mapping}", work, done)

    def uncouple_selected(self) -> int:
        """Uncouple the selected records (of either table)."""
        count = 0
        for nav_id in self.nav_table.selected_keys:
            count += self.workspace.uncouple(self.mapping_name, nav_id=str(nav_id))
        for crm_id in self.crm_table.selected_keys:
            count += self.workspace.uncouple(self.mapping_name, crm_id=str(crm_id))
        if count == 0 and not (self.nav_table.selected_keys or self.crm_table.selected_keys):
            self.errors.show_info("Select the coupled records to uncouple first.")
            return 0
        names = [_label(table.frame, str(key)) or str(key)
                 for table in (self.nav_table, self.crm_table) for key in table.selected_keys]
        self._reload_tables()
        self.errors.show_info(f"{count} coupling(s) removed ({', '.join(names)}).")
        return count

    def _reload_tables(self) -> None:
        selected = (self.nav_table.selected_keys, self.crm_table.selected_keys)
        self.search()
        for table, keys in zip((self.nav_table, self.crm_table), selected, strict=True):
            table.select_present(keys)

    # -- links, newer-data warning, sync now --------------------------------------------------------
    def _selection_changed(self) -> None:
        nav, crm = self.nav_table.selected_keys, self.crm_table.selected_keys
        nav_id = str(nav[0]) if len(nav) == 1 else None
        crm_id = str(crm[0]) if len(crm) == 1 else None
        if nav_id and not crm_id:
            crm_id = _partner(self.nav_table.frame, nav_id)
        if crm_id and not nav_id:
            nav_id = _partner(self.crm_table.frame, crm_id)
        self._show_links(nav_id, crm_id)
        self._show_related(nav_id, crm_id)
        self._check_newer()

    def _show_related(self, nav_id: str | None, crm_id: str | None) -> None:
        """A coupled customer's CRM opportunities, cases and quotes (accounts only)."""
        spec = self.workspace.mappings.get(self.mapping_name)
        coupled = (nav_id is not None and crm_id is not None
                   and _partner(self.nav_table.frame, nav_id) == crm_id) or (
            crm_id is not None and _partner(self.crm_table.frame, crm_id) is not None)
        if not coupled or crm_id is None or spec.crm.logical_name != "account":
            self.related.value = ""
            return
        self.related.value = related_html(self.workspace.related_records(crm_id))

    def _show_links(self, nav_id: str | None, crm_id: str | None) -> None:
        if not nav_id and not crm_id:
            self.links.value = ""
            return
        links = self.workspace.record_links(self.mapping_name, nav_id=nav_id, crm_id=crm_id)
        names = {"business_central": "Open in Business Central",
                 "nav": "Open in Dynamics NAV", "dynamics_365": "Open in Dynamics 365 Sales"}
        ids = " ↔ ".join(
            f"{side} {html.escape(_label(table.frame, record))} (id {html.escape(record)})"
            for side, table, record in (("NAV/BC", self.nav_table, nav_id),
                                        ("CRM", self.crm_table, crm_id)) if record)
        self.links.value = f"<div style='color:#616161'>{ids}</div>" + " · ".join(
            f"<a href='{html.escape(url, quote=True)}' target='_blank' rel='noopener'>"
            f"{names.get(kind, kind)}</a>" for kind, url in links.items())

    def newer_destination(self) -> str:
        """A warning when the destination of the chosen direction changed after the source
        (for the selected coupled records whose partner is loaded), else ''. A destination
        still at the version the last sync wrote or read (``synced_version``) was changed by
        nobody since — its newer time is the integration's own write: no warning."""
        direction = self.direction.value
        if direction == MERGE:
            return ""
        warnings = []
        source, target = ((self.nav_table, self.crm_table) if direction == "to_crm"
                          else (self.crm_table, self.nav_table))
        for key in source.selected_keys:
            partner = _partner(source.frame, str(key))
            if partner is None:
                continue
            mine = source.frame.filter(pl.col("id") == key)
            theirs = target.frame.filter(pl.col("id") == partner)
            if theirs.height == 0 or "modified" not in mine.columns or _unchanged(theirs):
                continue
            source_time, target_time = mine.get_column("modified")[0], \
                theirs.get_column("modified")[0]
            if source_time and target_time and str(target_time) > str(source_time):
                label = theirs.get_column("record")[0] or partner
                warnings.append(f"{label} was changed at {target_time}, after the source "
                                f"({source_time})")
        return "; ".join(warnings)

    def _check_newer(self) -> None:
        text = self.newer_destination()
        self.confirm_overwrite.value = False
        self.warning.value = "" if not text else (
            "<div style='background:#fff8e1;color:#8d6e00;padding:6px'>The destination holds "
            f"newer data: {html.escape(text)}. Tick 'overwrite the newer data' to synchronize "
            "anyway, or choose the other direction or the three-way merge.</div>")

    def sync_selected(self) -> None:
        """Synchronize the selected records now in the chosen direction (background)."""
        nav_ids = [str(k) for k in self.nav_table.selected_keys]
        crm_ids = [str(k) for k in self.crm_table.selected_keys]
        if not nav_ids and not crm_ids:
            self.errors.show_info("Select the records to synchronize first.")
            return
        if self.newer_destination() and not self.confirm_overwrite.value:
            self._check_newer()
            self.errors.show_warning("Not synchronized: the destination holds newer data (see "
                                     "the warning).")
            return
        choice = self.direction.value
        direction: Literal["to_crm", "from_crm"] | None = None if choice == MERGE else choice
        mapping = self.mapping_name

        def work(progress: Progress, _cancel: CancelToken) -> SyncReport:
            return self.workspace.sync_now(mapping, nav_ids=nav_ids, crm_ids=crm_ids,
                                           direction=direction, progress=progress)

        def done(report: SyncReport) -> None:
            self.report = report
            self.result.value = f"<h4>Synchronized</h4>{report._repr_html_()}"

        self.progress.start(f"synchronize {len(nav_ids) + len(crm_ids)} record(s) of {mapping}",
                            work, done)


def _unchanged(row: pl.DataFrame) -> bool:
    """The record is at the version the last sync of its pair wrote or read."""
    if "synced_version" not in row.columns or "version" not in row.columns:
        return False
    synced, now = row.get_column("synced_version")[0], row.get_column("version")[0]
    return synced is not None and synced == now


def _label(frame: pl.DataFrame, record_id: str) -> str:
    """A loaded record's number and name ("" when it is not in the table)."""
    if "record" not in frame.columns:
        return ""
    found = frame.filter(pl.col("id") == record_id).get_column("record")
    return "" if found.is_empty() or found[0] is None else str(found[0])


def _partner(frame: pl.DataFrame, record_id: str) -> str | None:
    if "coupled_to" not in frame.columns:
        return None
    found = frame.filter(pl.col("id") == record_id).get_column("coupled_to")
    return None if found.is_empty() or found[0] is None else str(found[0])


_HIDDEN = ("id", "key", "record_name", "version", "synced_version", "coupled_to")
"""Columns kept for the panel's work, not shown (ids and versions: in the detail and links)."""


def _label_columns(frame: pl.DataFrame) -> tuple[str, ...]:
    """How a row is named: its number and name, and the record it is coupled to."""
    return tuple(c for c in ("record", "coupled_record") if c in frame.columns)


def _shown_columns(frame: pl.DataFrame) -> tuple[str, ...]:
    """``record`` and the record it is coupled to first, then the mapped fields and
    ``modified``; no ids or versions (a GUID says nothing to a person and wraps over lines)."""
    fields = [c for c in frame.columns
              if c not in (*_HIDDEN, "record", "coupled_record", "modified")]
    return tuple(c for c in ("record", "coupled_record", *fields, "modified")
                 if c in frame.columns)
