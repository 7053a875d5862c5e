"""Small bar charts as plain HTML, so the notebooks need no plotting library.

Why HTML: matplotlib is not a dependency of the toolkit, and a horizontal bar per value is all
the summaries need (counts by action, changes and failures per run). The charts are part of
an HTML widget, so they render in JupyterLab, in Voilà and in saved output notebooks.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

__all__ = ["bar_chart_html", "stacked_bars_html"]

PALETTE = ("#1976d2", "#388e3c", "#f57c00", "#d32f2f", "#7b1fa2", "#455a64", "#0097a7",
           "#c2185b")


def bar_chart_html(items: Sequence[tuple[str, float]], *, title: str = "",
                   unit: str = "", width_px: int = 320) -> str:
    """One labelled horizontal bar per ``(label, value)``, scaled to the largest value."""
    largest = max((value for _, value in items), default=0) or 1
    rows = []
    for index, (label, value) in enumerate(items):
        length = int(width_px * value / largest)
        colour = PALETTE[index % len(PALETTE)]
        rows.append(
            f"<tr><td style='padding-right:8px'>{html.escape(label)}</td>"
            f"<td><div style='background:{colour};height:12px;width:{length}px;"
            f"display:inline-block'></div> {_number(value)}{html.escape(unit)}</td></tr>")
    heading = f"<b>{html.escape(title)}</b>" if title else ""
    empty = "" if items else "<i>nothing to show</i>"
    return f"<div class='nav-crm-ops-chart'>{heading}<table>{''.join(rows)}</table>{empty}</div>"


def stacked_bars_html(rows: Sequence[tuple[str, Sequence[float]]], series: Sequence[str], *,
                      title: str = "", width_px: int = 360) -> str:
    """One stacked bar per row label (e.g. a run), one colour per series (with a legend)."""
    largest = max((sum(values) for _, values in rows), default=0) or 1
    legend = " ".join(
        f"<span style='color:{PALETTE[i % len(PALETTE)]}'>■</span> {html.escape(name)}"
        for i, name in enumerate(series))
    lines = []
    for label, values in rows:
        parts = "".join(
            f"<div title='{html.escape(name)}: {_number(value)}' style='background:"
            f"{PALETTE[i % len(PALETTE)]};height:12px;width:{int(width_px * value / largest)}px;"
            "display:inline-block'></div>"
            for i, (name, value) in enumerate(zip(series, values, strict=True)) if value)
        total = _number(sum(values))
        lines.append(f"<tr><td style='padding-right:8px;white-space:nowrap'>"
                     f"{html.escape(label)}</td><td>{parts} {total}</td></tr>")
    heading = f"<b>{html.escape(title)}</b><br>" if title else ""
    empty = "" if rows else "<i>nothing to show</i>"
    return (f"<div class='nav-crm-ops-chart'>{heading}{legend}<table>{''.join(lines)}</table>"
            f"{empty}</div>")


def _number(value: float) -> str:
    if float(value).is_integer():
        return str(int(value))
    return f"{value:.2f}" if abs(value) < 10 else f"{value:.1f}"
