"""A record table for the panels: an interactive grid (rows selected in the grid) paged, sorted
and filtered in Python over a polars frame, so it stays fast at 100,000 rows.

Why this split: the grid is itables' ``ITable`` widget (DataTables, MIT, its JavaScript bundled
in the Python package, so it renders without internet access in JupyterLab and Voilà). A grid
sends every row it holds to the browser, so 100,000 rows would freeze the page; here the search,
the choice filters, extra filters and the sort run in polars on the whole frame (vectorised,
milliseconds) and the grid holds one page. The page and the total ("rows 26-50 of 4,210") show
under it. People select rows by clicking them in the grid (Ctrl/Shift-click for several); the
selection comes back to Python as row positions of the page, turned into keys of
``key_column`` here (:attr:`DataTable.selected_keys`).
"""

from __future__ import annotations

import html
import importlib.util
import json
import math
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import ipywidgets as widgets
import polars as pl

from .errors import ActionButton, ErrorArea, guarded

__all__ = ["ALL", "DataTable", "excel_available"]

ALL = "(all)"
"""The choice-filter value meaning "no filter"."""

UNSORTED = ""
"""The sort choice meaning "keep the frame's own order" (e.g. newest run first)."""

_NARROW = widgets.Layout(width="40px")
_GRID_OPTIONS: dict[str, Any] = {
    # paging, sorting and searching happen in Python over every row (see the module docstring)
    "paging": False, "ordering": False,
    "layout": {"topStart": None, "topEnd": None, "bottomStart": None, "bottomEnd": None},
    "select": {"style": "os", "items": "row"},
    "language": {"emptyTable": "no rows match the search and filters"},
    "showIndex": False, "show_dtypes": False, "allow_html": True, "maxBytes": 0,
    "classes": "display nowrap compact cell-border hover",
    "style": "table-layout:auto;width:100%;margin:0;caption-side:bottom",
    # a styled cell's block fills the whole cell (so a row's background is one band); a
    # selected row shows the selection, not the style
    "css": ("table.dataTable tbody td:has(> div.nco-cell) { padding: 0; height: 1px; }\n"
            "table.dataTable tbody td > div.nco-cell { box-sizing: border-box; height: 100%; "
            "padding: 4px 6px; display: flex; align-items: center; }\n"
            "table.dataTable td.dt-type-numeric > div.nco-cell { justify-content: flex-end; }\n"
            "table.dataTable tr.selected td > div.nco-cell { background: transparent "
            "!important; color: inherit !important; }"),
}
"""The itables options of every grid, given again at each update (``ITable.update`` forgets
the ones not given). Cells are HTML this module escapes itself (``allow_html``) so a row can
carry its style; short values stay on one line (``nowrap``), long text wraps in its cell."""


def excel_available() -> bool:
    """True when polars can write .xlsx here (it needs the optional xlsxwriter package)."""
    return importlib.util.find_spec("xlsxwriter") is not None


def _grid() -> Any:
    """The itables grid widget (imported here: the package root stays light)."""
    from itables.widget import ITable

    return ITable(pl.DataFrame({"": []}, schema={"": pl.Utf8}), **_GRID_OPTIONS)


class DataTable:
    """See the module docstring.

    ``choice_columns`` get a dropdown each (distinct values); ``search`` matches any of
    ``search_columns`` (default: every text column) case-insensitively; :meth:`set_filter`
    adds filters a panel computes itself (e.g. "records changing field X"); ``sort_by`` and
    ``descending`` order every row. ``columns`` are the columns the grid shows (default: all);
    ``label_columns`` name a row for people (:attr:`selected_labels`); ``row_style(row)``
    returns CSS for a row's cells (e.g. struck through when excluded).
    """

    def __init__(self, frame: pl.DataFrame | None = None, *, key_column: str | None = None,
                 label_columns: Sequence[str] = (), choice_columns: Sequence[str] = (),
                 search_columns: Sequence[str] | None = None,
                 columns: Sequence[str] | None = None, page_size: int = 25,
                 row_style: Callable[[dict[str, Any]], str] | None = None,
                 errors: ErrorArea | None = None) -> None:
        self.errors = errors if errors is not None else ErrorArea()
        self.key_column = key_column
        self.label_columns = tuple(label_columns)
        self.choice_columns = tuple(choice_columns)
        self.search_columns = None if search_columns is None else tuple(search_columns)
        self.columns = None if columns is None else tuple(columns)
        self.row_style = row_style
        self._frame = pl.DataFrame()
        self._view = pl.DataFrame()
        self._page_keys: list[Any] = []
        self._extra: dict[str, pl.Expr] = {}
        self._page = 0
        self._select_listeners: list[Callable[[list[Any]], None]] = []
        self._rebuilding = False
        self._build_controls(page_size)
        self.grid = _grid()
        self.grid.layout = widgets.Layout(width="100%", overflow="auto")
        self._connect()
        own_errors = [self.errors.widget] if errors is None else []
        self.widget = widgets.VBox([
            *own_errors,
            widgets.HBox([self.search, *self.choices.values()],
                         layout=widgets.Layout(flex_flow="row wrap")),
            widgets.HBox([self.sort_by, self.descending, self.page_size],
                         layout=widgets.Layout(flex_flow="row wrap")),
            self.grid,
            widgets.HBox([self.first_button, self.prev_button, self.page_label,
                          self.next_button, self.last_button]),
        ], layout=widgets.Layout(width="100%", min_width="0"))
        self.widget.add_class("nav-crm-ops-table")
        if frame is not None:
            self.set_frame(frame)

    def _build_controls(self, page_size: int) -> None:
        """Search, choice filters, sort, page size and the pager (the grid is made apart)."""
        self.search = widgets.Text(placeholder="any text in the rows", description="Search",
                                   continuous_update=False)
        self.choices = {name: widgets.Dropdown(options=[ALL], value=ALL, description=name)
                        for name in self.choice_columns}
        self.sort_by = widgets.Dropdown(options=[("(as listed)", UNSORTED)], value=UNSORTED,
                                        description="Sort by")
        self.descending = widgets.Checkbox(value=False, description="descending", indent=False,
                                           layout=widgets.Layout(width="auto"))
        sizes = sorted({10, 25, 50, 100, 250, page_size})
        self.page_size = widgets.Dropdown(options=sizes, value=page_size,
                                          description="Rows/page")
        self.first_button = ActionButton(icon="angle-double-left", tooltip="first page",
                                         layout=_NARROW)
        self.prev_button = ActionButton(icon="angle-left", tooltip="previous page",
                                        layout=_NARROW)
        self.next_button = ActionButton(icon="angle-right", tooltip="next page", layout=_NARROW)
        self.last_button = ActionButton(icon="angle-double-right", tooltip="last page",
                                        layout=_NARROW)
        self.page_label = widgets.Label(value="")

    def _connect(self) -> None:
        refilter = guarded(self.errors, "filter the table")(lambda _: self._refresh_view())
        for control in (self.search, *self.choices.values(), self.sort_by, self.descending,
                        self.page_size):
            control.observe(refilter, names="value")
        page = guarded(self.errors, "page")
        self.first_button.on_click(page(lambda _: self.go_to(0)))
        self.prev_button.on_click(page(lambda _: self.go_to(self._page - 1)))
        self.next_button.on_click(page(lambda _: self.go_to(self._page + 1)))
        self.last_button.on_click(page(lambda _: self.go_to(self.page_count - 1)))
        self.grid.observe(guarded(self.errors, "select rows")(self._selection_changed),
                          names="selected_rows")

    # -- data -----------------------------------------------------------------------------------
    @property
    def frame(self) -> pl.DataFrame:
        """Every row, unfiltered."""
        return self._frame

    @property
    def view(self) -> pl.DataFrame:
        """The rows that pass the filters and the search, in the chosen order."""
        return self._view

    @property
    def page(self) -> int:
        return self._page

    @property
    def page_count(self) -> int:
        return max(1, math.ceil(self._view.height / self.page_size.value))

    @property
    def page_rows(self) -> pl.DataFrame:
        """The rows on the current page (the rows the grid holds), in grid order."""
        size = self.page_size.value
        return self._view.slice(self._page * size, size)

    @property
    def shown_columns(self) -> list[str]:
        """The columns the grid shows: ``columns`` that the frame has, or all of them."""
        return [c for c in (self.columns or self._frame.columns) if c in self._frame.columns]

    def set_frame(self, frame: pl.DataFrame, *, keep_page: bool = False) -> None:
        """Show new data (filters, search and sort stay; choices are rebuilt from the data)."""
        self._frame = frame
        self._rebuilding = True
        try:
            for name, dropdown in self.choices.items():
                values = ([] if name not in frame.columns else
                          sorted(str(v) for v in frame.get_column(name).drop_nulls().unique()))
                current = dropdown.value
                dropdown.options = [ALL, *values]
                dropdown.value = current if current in dropdown.options else ALL
            current_sort = self.sort_by.value
            self.sort_by.options = [("(as listed)", UNSORTED),
                                    *((c, c) for c in self.shown_columns)]
            self.sort_by.value = current_sort if current_sort in self.shown_columns else UNSORTED
        finally:
            self._rebuilding = False
        self._refresh_view(keep_page=keep_page)

    def set_filter(self, name: str, expression: pl.Expr | None) -> None:
        """Add, replace (same ``name``) or remove (None) a filter expression."""
        if expression is None:
            self._extra.pop(name, None)
        else:
            self._extra[name] = expression
        self._refresh_view()

    def _filter_expression(self) -> pl.Expr | None:
        conditions: list[pl.Expr] = list(self._extra.values())
        for name, dropdown in self.choices.items():
            if dropdown.value != ALL and name in self._frame.columns:
                conditions.append(pl.col(name).cast(pl.Utf8) == dropdown.value)
        term = self.search.value.strip().lower()
        if term:
            columns = [c for c in (self.search_columns or self._text_columns())
                       if c in self._frame.columns]
            if columns:
                conditions.append(pl.any_horizontal(
                    pl.col(c).cast(pl.Utf8).str.to_lowercase().str.contains(term, literal=True)
                    .fill_null(False) for c in columns))
            else:
                conditions.append(pl.lit(False))
        if not conditions:
            return None
        return pl.all_horizontal(conditions)

    def _text_columns(self) -> list[str]:
        return [name for name, dtype in self._frame.schema.items()
                if dtype in (pl.Utf8, pl.Categorical) or isinstance(dtype, pl.Enum)]

    def _refresh_view(self, *, keep_page: bool = False) -> None:
        if self._rebuilding:
            return
        expression = self._filter_expression()
        view = self._frame if expression is None else self._frame.filter(expression)
        column = self.sort_by.value
        if column != UNSORTED and column in view.columns:
            dtype = view.schema[column]
            key = (pl.col(column).cast(pl.Utf8)
                   if isinstance(dtype, (pl.Enum, pl.Categorical)) else pl.col(column))
            view = view.sort(key, descending=self.descending.value, nulls_last=True,
                             maintain_order=True)
        self._view = view
        self._page = min(self._page, self.page_count - 1) if keep_page else 0
        self._render()

    # -- paging and the grid ----------------------------------------------------------------------
    def go_to(self, page: int) -> None:
        """Show page ``page`` (0-based, clamped to the pages there are)."""
        self._page = max(0, min(page, self.page_count - 1))
        self._render()

    def _render(self) -> None:
        rows = self.page_rows
        start = self._page * self.page_size.value
        filtered = ("" if self._view.height == self._frame.height
                    else f" (filtered from {self._frame.height:,})")
        self.page_label.value = (
            f"rows {start + 1 if rows.height else 0:,}-{start + rows.height:,} of "
            f"{self._view.height:,}{filtered} · page {self._page + 1:,} of {self.page_count:,}")
        self.first_button.disabled = self.prev_button.disabled = self._page == 0
        self.next_button.disabled = self.last_button.disabled = \
            self._page >= self.page_count - 1
        self._page_keys = (rows.get_column(self.key_column).to_list()
                           if self.key_column is not None and self.key_column in rows.columns
                           else [])
        self._rebuilding = True
        try:
            self.grid.update(self._grid_frame(rows), selected_rows=[], **_GRID_OPTIONS)
        finally:
            self._rebuilding = False

    def _grid_frame(self, rows: pl.DataFrame) -> pl.DataFrame:
        """The page as the grid shows it: one escaped HTML text per cell, styled per row."""
        shown = [c for c in (self.columns or rows.columns) if c in rows.columns] or [""]
        cells: dict[str, list[str]] = {name: [] for name in shown}
        for row in rows.iter_rows(named=True):
            style = self.row_style(row) if self.row_style is not None else ""
            for name in shown:
                cells[name].append(_cell(row.get(name), style))
        return pl.DataFrame(cells, schema={name: pl.Utf8 for name in shown})

    @property
    def rendered_page(self) -> str:
        """The rows the grid holds, as the JSON of escaped HTML cells it was sent (what a
        person sees, for tests and debugging)."""
        return str(self.grid._dt_args.get("data_json", "[]"))

    @property
    def rendered_rows(self) -> list[list[str]]:
        """:attr:`rendered_page` parsed: one list of cell markup per row of the page."""
        rows: list[list[str]] = json.loads(self.rendered_page)
        return rows

    # -- selection ---------------------------------------------------------------------------------
    def _selection_changed(self, _: Any) -> None:
        if self._rebuilding:
            return
        keys = self.selected_keys
        for listener in self._select_listeners:
            listener(keys)

    def on_select(self, listener: Callable[[list[Any]], None]) -> None:
        """Call ``listener(keys)`` whenever the selection changes."""
        self._select_listeners.append(listener)

    @property
    def selected_keys(self) -> list[Any]:
        """The keys of the rows selected in the grid, in page order."""
        positions = sorted(set(self.grid.selected_rows))
        return [self._page_keys[i] for i in positions if 0 <= i < len(self._page_keys)]

    @property
    def selected_rows(self) -> pl.DataFrame:
        """The selected rows, every column of the frame."""
        keys = self.selected_keys
        if self.key_column is None or not keys:
            return self._frame.clear()
        return self._frame.filter(pl.col(self.key_column).is_in(keys))

    @property
    def selected_labels(self) -> list[str]:
        """The selected rows named for people (``label_columns`` joined by " · ")."""
        rows = self.selected_rows
        labels = [c for c in self.label_columns if c in rows.columns] or \
            [c for c in [self.key_column] if c is not None and c in rows.columns]
        return [" · ".join("" if row[c] is None else str(row[c]) for c in labels)
                for row in rows.iter_rows(named=True)]

    def select(self, keys: Sequence[Any]) -> None:
        """Select rows by key, as a person clicking them would (they must be on the current
        page; ``select([])`` clears the selection)."""
        missing = [k for k in keys if k not in self._page_keys]
        if missing:
            raise KeyError(f"{missing[:5]} are not on the current page; search or page to "
                           "them first")
        self.grid.selected_rows = sorted({self._page_keys.index(k) for k in keys})

    def select_present(self, keys: Sequence[Any]) -> list[Any]:
        """Select those of ``keys`` that are on the current page (e.g. to keep a selection
        across a reload); returns them."""
        present = [k for k in keys if k in self._page_keys]
        self.select(present)
        return present

    # -- export ----------------------------------------------------------------------------------
    def export(self, path: str | Path) -> Path:
        """Write the filtered rows to ``.csv`` (or ``.xlsx`` when xlsxwriter is installed)."""
        target = Path(path)
        frame = self._view.with_columns(
            pl.col(name).cast(pl.Utf8) for name, dtype in self._view.schema.items()
            if isinstance(dtype, (pl.Enum, pl.Categorical)))
        if target.suffix.lower() == ".csv":
            frame.write_csv(target)
        elif target.suffix.lower() == ".xlsx":
            if not excel_available():
                raise RuntimeError("writing .xlsx needs the xlsxwriter package; install it or "
                                   "export to .csv")
            frame.write_excel(target)
        else:
            raise ValueError(f"cannot export to {target.name}: use a .csv or .xlsx file name")
        return target


def _cell(value: Any, style: str) -> str:
    """One cell's markup: the whole text, escaped; long text wraps at a readable width (never
    cut), and a row's style sits on a block that fills the cell. Short plain cells stay bare
    text, so a page of 250 rows stays small on the wire. Stored UTC stamps
    (``2026-12-03T15:54:58.069875Z``) read as ``2026-12-03 15:54:58 UTC``."""
    raw = "" if value is None else str(value)
    stamp = _UTC_STAMP.match(raw)
    text = html.escape(f"{stamp.group(1)} {stamp.group(2)} UTC" if stamp else raw)
    css = (_LONG_CSS if len(text) > _LONG_TEXT else "") + style
    if not css:
        return text
    return f"<div class='nco-cell' style='{html.escape(css, quote=True)}'>{text}</div>"


_UTC_STAMP = re.compile(r"^(\d{4}-\d\d-\d\d)T(\d\d:\d\d:\d\d)(?:\.\d+)?(?:Z|\+00:00)$")
_LONG_TEXT = 60
_LONG_CSS = "min-width:16em;max-width:42em;white-space:normal;overflow-wrap:break-word;"
