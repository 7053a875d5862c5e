"""The time axis every runs-over-time chart shares (dashboards and job reports).

Why one module: the dashboards' job-log chart (:mod:`nav_crm_ops.widgets.charts`) and the job
reports' chart (:mod:`nav_crm_ops.jobs.chart`) put runs on the same kind of axis; an operator
who reads one reads the other alike (bar widths, margins, UTC ticks). Imports matplotlib only
when a chart is drawn, so importing this module stays light and needs no widget library.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

__all__ = ["MIN_SPAN", "bar_width", "span", "time_axis"]

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
