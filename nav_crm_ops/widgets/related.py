"""A coupled customer's CRM opportunities, cases and quotes, read-only, for NAV users.

Why: the reference integration lets Business Central users see a coupled customer's sales
activity in CRM without leaving BC. Here the coupling panel shows it for a selected coupled
account. This is a read of three Dataverse tables filtered by the account's id, nothing is
written and no sync state is involved; the workspace's Dataverse client does the reading.
"""

from __future__ import annotations

import html
import uuid
from dataclasses import dataclass
from typing import Any

import polars as pl

from ..connectors.odata import F

__all__ = ["RELATED_TABLES", "RelatedTable", "related_crm_records", "related_html"]


@dataclass(frozen=True)
class RelatedTable:
    title: str
    entity_set: str
    columns: tuple[str, ...]


RELATED_TABLES = (
    RelatedTable("Opportunities", "opportunities",
                 ("name", "estimatedvalue", "estimatedclosedate", "closeprobability",
                  "statecode")),
    RelatedTable("Cases", "incidents", ("ticketnumber", "title", "prioritycode", "statecode")),
    RelatedTable("Quotes", "quotes",
                 ("quotenumber", "name", "totalamount", "effectiveto", "statecode")),
)
"""What is shown, per table: the columns people recognise."""

_STATES = {"opportunities": {0: "Open", 1: "Won", 2: "Lost"},
           "incidents": {0: "Active", 1: "Resolved", 2: "Canceled"},
           "quotes": {0: "Draft", 1: "Active", 2: "Won", 3: "Closed"}}
_PRIORITIES = {1: "High", 2: "Normal", 3: "Low"}


def related_crm_records(workspace: Any, account_id: str, *, top: int = 50
                        ) -> dict[str, pl.DataFrame]:
    """Opportunities, cases and quotes whose customer is ``account_id`` (title -> rows)."""
    customer = F("_customerid_value").eq(uuid.UUID(account_id))
    client = workspace.connections.dataverse
    return {table.title: client.read(table.entity_set, select=list(table.columns),
                                     filter=customer, top=top)
            for table in RELATED_TABLES}


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
