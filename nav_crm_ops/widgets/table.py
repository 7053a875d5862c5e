"""A paged, filterable, searchable table over a polars frame that stays fast at 100k rows.

Why not a grid of widgets: a notebook front end sends every widget over the wire, so tens of
thousands of rows as widgets would freeze the page. Here filters and the text search run in
polars on the whole frame (vectorised, milliseconds), and only the current page is rendered as
one HTML widget. Rows of the page are listed in a multiple-choice selector, keyed by
``key_column``, so people (and tests) select records by setting ``table.selector.value``.
"""

from __future__ import annotations

import html
import importlib.util
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import ipywidgets as widgets
import polars as pl

from .errors import ActionButton, ErrorArea, guarded

__all__ = ["ALL", "DataTable", "excel_available"]

ALL = "(all)"
"""The choice-filter value meaning "no filter"."""

_CELL_CHARS = 80


def excel_available() -> bool:
    """True when polars can write .xlsx here (it needs the optional xlsxwriter package)."""
    return importlib.util.find_spec("xlsxwriter") is not None


class DataTable:
    """See the module docstring.

    ``choice_columns`` get a dropdown each (distinct values); ``search`` matches any of
    ``search_columns`` (default: every text column) case-insensitively; :meth:`set_filter`
    adds filters a panel computes itself (e.g. "records changing field X").
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
        self._extra: dict[str, pl.Expr] = {}
        self._page = 0
        self._select_listeners: list[Callable[[list[Any]], None]] = []
        self._rebuilding = False

        self.search = widgets.Text(placeholder="search", description="Search",
                                   continuous_update=False)
        self.choices = {name: widgets.Dropdown(options=[ALL], value=ALL, description=name)
                        for name in self.choice_columns}
        sizes = sorted({10, 25, 50, 100, 250, page_size})
        self.page_size = widgets.Dropdown(options=sizes, value=page_size,
                                          description="Rows")
        self.first_button = ActionButton(icon="angle-double-left", tooltip="first page", layout=widgets.Layout(width="40px"))
        self.prev_button = ActionButton(icon="angle-left", tooltip="previous page", layout=widgets.Layout(width="40px"))
        self.next_button = ActionButton(icon="angle-right", tooltip="next page", layout=widgets.Layout(width="40px"))
        self.last_button = ActionButton(icon="angle-double-right", tooltip="last page", layout=widgets.Layout(width="40px"))
        self.page_label = widgets.Label(value="")
        self.html = widgets.HTML(value="")
        self.selector = widgets.SelectMultiple(options=[], description="Select",
                                               rows=min(page_size, 10),
                                               layout=widgets.Layout(width="95%"))

        refilter = guarded(self.errors, "filter the table")(lambda _: self._refresh_view())
        self.search.observe(refilter, names="value")
        for dropdown in self.choices.values():
            dropdown.observe(refilter, names="value")
        self.page_size.observe(refilter, names="value")
        self.first_button.on_click(guarded(self.errors, "page")(lambda _: self.go_to(0)))
        self.prev_button.on_click(guarded(self.errors, "page")(lambda _: self.go_to(self._page - 1)))
        self.next_button.on_click(guarded(self.errors, "page")(lambda _: self.go_to(self._page + 1)))
        self.last_button.on_click(
            guarded(self.errors, "page")(lambda _: self.go_to(self.page_count - 1)))
        self.selector.observe(guarded(self.errors, "select rows")(self._selection_changed),
                              names="value")

        own_errors = [self.errors.widget] if errors is None else []
        self.widget = widgets.VBox([
            *own_errors,
            widgets.HBox([self.search, *self.choices.values(), self.page_size]),
            self.html,
            widgets.HBox([self.first_button, self.prev_button, self.page_label,
                          self.next_button, self.last_button]),
            self.selector,
        ])
        if frame is not None:
            self.set_frame(frame)

    # -- data -----------------------------------------------------------------------------------
    @property
    def frame(self) -> pl.DataFrame:
        """Every row, unfiltered."""
        return self._frame

    @property
    def view(self) -> pl.DataFrame:
        """The rows that pass the filters and the search, in order."""
        return self._view

    @property
    def page(self) -> int:
        return self._page

    @property
    def page_count(self) -> int:
        return max(1, math.ceil(self._view.height / self.page_size.value))

    @property
    def page_rows(self) -> pl.DataFrame:
        """The rows on the current page."""
        size = self.page_size.value
        return self._view.slice(self._page * size, size)

    def set_frame(self, frame: pl.DataFrame, *, keep_page: bool = False) -> None:
        """Show new data (filters and search stay; choices are rebuilt from the new data)."""
        self._frame = frame
        self._rebuilding = True
        try:
            for name, dropdown in self.choices.items():
                values = ([] if name not in frame.columns else
                          sorted(str(v) for v in frame.get_column(name).drop_nulls().unique()))
                current = dropdown.value
                dropdown.options = [ALL, *values]
                dropdown.value = current if current in dropdown.options else ALL
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
        self._view = self._frame if expression is None else self._frame.filter(expression)
        self._page = min(self._page, self.page_count - 1) if keep_page else 0
        self._render()

    # -- paging and selection ---------------------------------------------------------------------
    def go_to(self, page: int) -> None:
        """Show page ``page`` (0-based, clamped to the pages there are)."""
        self._page = max(0, min(page, self.page_count - 1))
        self._render()

    def _render(self) -> None:
        rows = self.page_rows
        start = self._page * self.page_size.value
        self.page_label.value = (
            f"rows {start + 1 if rows.height else 0}-{start + rows.height} of "
            f"{self._view.height} (filtered from {self._frame.height}) · page "
            f"{self._page + 1}/{self.page_count}")
        self.first_button.disabled = self.prev_button.disabled = self._page == 0
        self.next_button.disabled = self.last_button.disabled = \
            self._page >= self.page_count - 1
        self.html.value = self._page_html(rows)
        options: list[tuple[str, Any]] = []
        if self.key_column is not None and self.key_column in rows.columns:
            labels = [c for c in self.label_columns if c in rows.columns] or [self.key_column]
            needed = list(dict.fromkeys([self.key_column, *labels]))
            for row in rows.select(needed).iter_rows(named=True):
                text = " · ".join("" if row[c] is None else str(row[c]) for c in labels)
                options.append((text, row[self.key_column]))
        self._rebuilding = True
        try:
            self.selector.value = ()
            self.selector.options = options
        finally:
            self._rebuilding = False

    def _page_html(self, rows: pl.DataFrame) -> str:
        shown = [c for c in (self.columns or rows.columns) if c in rows.columns]
        head = "".join(f"<th>{html.escape(c)}</th>" for c in shown)
        body = []
        for row in rows.iter_rows(named=True):
            style = self.row_style(row) if self.row_style is not None else ""
            cells = "".join(f"<td title='{html.escape(_text(row[c]), quote=True)}'>"
                            f"{html.escape(_short(row[c]))}</td>" for c in shown)
            body.append(f"<tr style='{html.escape(style, quote=True)}'>{cells}</tr>")
        if not body:
            body.append(f"<tr><td colspan='{max(len(shown), 1)}'><i>no rows</i></td></tr>")
        return ("<div style='overflow-x:auto'><table class='nav-crm-ops-table' "
                "style='border-collapse:collapse;font-size:12px'>"
                f"<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table></div>")

    def _selection_changed(self, _: Mapping[str, Any]) -> None:
        if self._rebuilding:
            return
        keys = list(self.selector.value)
        for listener in self._select_listeners:
            listener(keys)

    def on_select(self, listener: Callable[[list[Any]], None]) -> None:
        """Call ``listener(keys)`` whenever the selection changes."""
        self._select_listeners.append(listener)

    @property
    def selected_keys(self) -> list[Any]:
        return list(self.selector.value)

    def select(self, keys: Sequence[Any]) -> None:
        """Select rows by key, as a person would (they must be on the current page)."""
        available = {value for _, value in self.selector.options}
        missing = [k for k in keys if k not in available]
        if missing:
            raise KeyError(f"{missing[:5]} are not on the current page; search or page to "
                           "them first")
        self.selector.value = tuple(keys)

    @property
    def selected_rows(self) -> pl.DataFrame:
        if self.key_column is None or not self.selector.value:
            return self._frame.clear()
        return self._frame.filter(pl.col(self.key_column).is_in(list(self.selector.value)))

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


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _short(value: Any) -> str:
    text = _text(value)
    return text if len(text) <= _CELL_CHARS else text[:_CELL_CHARS - 1] + "…"
