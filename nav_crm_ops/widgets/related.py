"""A coupled customer's CRM opportunities, cases and quotes as HTML, for NAV users.

The rows come from ``Workspace.related_records`` (``engine/related.py``); this module only
renders them.
"""

from __future__ import annotations

import html

import polars as pl

from ..engine.related import RELATED_TABLES

__all__ = ["related_html"]

_STATES = {"opportunities": {0: "Open", 1: "Won", 2: "Lost"},
           "incidents": {0: "Active", 1: "Resolved", 2: "Canceled"},
           "quotes": {0: "Draft", 1: "Active", 2: "Won", 3: "Closed"}}
_PRIORITIES = {1: "High", 2: "Normal", 3: "Low"}


def related_html(frames: dict[str, pl.DataFrame]) -> str:
    """The three tables as HTML (state and priority in words)."""
    parts = ["<b>In Dynamics 365 Sales (read-only)</b>"]
    for table in RELATED_TABLES:
        frame = frames.get(table.title, pl.DataFrame())
        parts.append(f"<p><i>{html.escape(table.title)}: {frame.height}</i></p>")
        if frame.height == 0:
            continue
        head = "".join(f"<th>{html.escape(c)}</th>" for c in table.columns)
        rows = []
        for row in frame.iter_rows(named=True):
            cells = []
            for column in table.columns:
                value = row.get(column)
                if column == "statecode" and value is not None:
                    value = _STATES[table.entity_set].get(int(value), value)
                if column == "prioritycode" and value is not None:
                    value = _PRIORITIES.get(int(value), value)
                cells.append(f"<td>{html.escape('' if value is None else str(value))}</td>")
            rows.append(f"<tr>{''.join(cells)}</tr>")
        parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody>"
                     "</table>")
    return "".join(parts)
