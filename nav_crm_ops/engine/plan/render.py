"""How a plan shows itself: a heading, and its summary as text or an HTML table."""

from __future__ import annotations

import html

import polars as pl

from .schema import PlanMetadata

__all__ = ["heading", "summary_html", "summary_text"]


def heading(metadata: PlanMetadata, records: pl.DataFrame, field_changes: pl.DataFrame) -> str:
    m = metadata
    return (
        f"Plan {m.plan_id} created {m.created_at} for mappings "
        f"{', '.join(m.mappings) or '(none)'}: {records.height} records, "
        f"{int(records.get_column('included').sum())} included, "
        f"{field_changes.height} field changes"
    )


def summary_text(title: str, summary: pl.DataFrame) -> str:
    """The summary as an aligned text table under ``title``."""
    header = ["mapping", "action", "direction", "records", "included"]
    rows = [header] + [[str(v) for v in row] for row in summary.iter_rows()]
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = [
        "  ".join(
            cell.rjust(w) if i >= 3 else cell.ljust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join([title, *lines])


def summary_html(title: str, summary: pl.DataFrame) -> str:
    """The summary as an HTML table under ``title``."""
    head = "".join(f"<th>{html.escape(c)}</th>" for c in summary.columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row) + "</tr>"
        for row in summary.iter_rows()
    )
    return (
        f"<p>{html.escape(title)}</p>"
        f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    )
