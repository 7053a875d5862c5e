"""What the dashboards and the job reports show alike: the runs' time axis, the alert list.

Why one module: the dashboards' job-log chart (:mod:`nav_crm_ops.widgets.charts`) and the job
reports' chart (:mod:`nav_crm_ops.jobs.chart`) put runs on the same kind of axis, and both list
the open alerts the same way; an operator who reads one reads the other alike. Imports
matplotlib only when a chart is drawn and no widget library, so both layers can use it.
"""

from __future__ import annotations

import html
import itertools
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl

from .store.runs import RunOutcome

__all__ = ["MIN_SPAN", "alerts_html", "bar_width", "span", "time_axis"]

MIN_SPAN = timedelta(minutes=10)
"""The time axis shows at least this much (minute ticks), so a few runs are not walls."""


def span(times: Sequence[datetime]) -> timedelta:
    """The time the axis must show: the runs' spread, at least :data:`MIN_SPAN`."""
    return max(times[-1] - times[0], MIN_SPAN)


def bar_width(times: Sequence[datetime]) -> timedelta:
    """Bars stay apart: 70 % of the smallest gap between them, between a hundred-fiftieth and
    a twenty-fifth of the time shown (runs seconds apart still show)."""
    shown = span(times)
    gaps = [b - a for a, b in itertools.pairwise(times) if b > a]
    return max(min([min(gaps) * 0.7, shown / 25] if gaps else [shown / 25]), shown / 150)


def time_axis(axes: Any, times: Sequence[datetime], *, fontsize: int = 8) -> None:
    """A concise date axis around the runs (at least :data:`MIN_SPAN` wide), in UTC."""
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter

    shown = span(times)
    middle = times[0] + (times[-1] - times[0]) / 2
    axes.set_xlim(middle - shown * 0.55, middle + shown * 0.55)
    locator = AutoDateLocator()
    axes.xaxis.set_major_locator(locator)
    axes.xaxis.set_major_formatter(ConciseDateFormatter(locator, tz=UTC))
    axes.set_xlabel("run started (UTC)", fontsize=fontsize)


_SEVERITY_COLOURS = {"error": RunOutcome.FAILED.colour,
                     "warning": RunOutcome.SUCCEEDED_WITH_FAILURES.colour}
_NOTE = "color:#555;font-size:0.9em"


def alerts_html(alerts: pl.DataFrame) -> tuple[str, str]:
    """Open alerts (rows of ``Workspace.alerts()``, with a ``title`` column or the rule) as an
    HTML list and as plain text: severity colour, title, what happened, where to look, since."""
    if not alerts.height:
        return f'<p style="{_NOTE}">No open alerts.</p>', "no open alerts"
    items, lines = [], []
    for row in alerts.iter_rows(named=True):
        title = row.get("title") or row["rule"]
        colour = _SEVERITY_COLOURS.get(row["severity"], "#555")
        since = str(row["first_seen"])[:16].replace("T", " ")
        items.append(f'<li style="margin:6px 0"><b style="color:{colour}">'
                     f"{html.escape(title)}</b> — {html.escape(row['message'])}<br>"
                     f'<span style="{_NOTE}">where to look: '
                     f'{html.escape(row["where_to_look"])}; since {since} UTC</span></li>')
        lines.append(f"{title}: {row['message']} (where to look: {row['where_to_look']})")
    return (f'<ul class="nav-crm-ops-alerts" style="padding-left:1.2em;margin:4px 0">'
            f'{"".join(items)}</ul>', "\n".join(lines))
