"""The runs-over-time chart of a job report: one bar per run on a time axis, coloured by outcome.

Why matplotlib, rendered to PNG here: a static image shows the same in JupyterLab, Voilà and
the exported HTML, needs no internet access and no trusted notebook (the output notebooks
papermill writes are untrusted, so scripts and widgets would not render).
"""

from __future__ import annotations

import io
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from ..store.runs import RunOutcome

__all__ = ["RunPoint", "RunsChart", "runs_chart"]


@dataclass(frozen=True)
class RunPoint:
    """One job run on the chart: when it started, how it ended, records written and failed."""

    started_at: datetime
    outcome: RunOutcome
    written: int = 0
    failed: int = 0


@dataclass(frozen=True)
class RunsChart:
    """A rendered chart: shown as a PNG image by Jupyter, Voilà and nbconvert."""

    png: bytes
    title: str

    def _repr_png_(self) -> bytes:
        return self.png

    def __repr__(self) -> str:
        return self.title


_MIN_SPAN = timedelta(minutes=1)
"""The time axis shows at least this much, so a single run is a thin bar, not a wall."""


def _bar_width(times: Sequence[datetime]) -> timedelta:
    """Bars stay thin and apart: 60 % of the smallest gap between runs, at most a fortieth of
    the time axis, and never thinner than a two-hundredth (runs seconds apart still show)."""
    span = max(times[-1] - times[0], _MIN_SPAN)
    gaps = [b - a for a, b in itertools.pairwise(times) if b > a]
    width = min([min(gaps) * 0.6, span / 40] if gaps else [span / 40])
    return max(width, span / 200)


def _time_limits(times: Sequence[datetime]) -> tuple[datetime, datetime]:
    """The time axis: the runs with a margin, at least :data:`_MIN_SPAN` wide."""
    span = max(times[-1] - times[0], _MIN_SPAN)
    middle = times[0] + (times[-1] - times[0]) / 2
    return middle - span * 0.55, middle + span * 0.55


def runs_chart(points: Sequence[RunPoint], title: str) -> RunsChart:
    """Bars of records written plus failed per run (height), coloured by the run's outcome;
    a dot marks runs that wrote nothing, so every run is visible. Oldest left, newest right."""
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch
    from matplotlib.ticker import MaxNLocator

    ordered = sorted(points, key=lambda p: p.started_at)
    figure = Figure(figsize=(8.5, 2.8), dpi=110, layout="constrained")
    axes = figure.subplots()
    times = [p.started_at for p in ordered]
    colours = [p.outcome.colour for p in ordered]
    heights = [p.written + p.failed for p in ordered]
    if ordered:
        axes.bar(times, heights, width=_bar_width(times), color=colours, align="center")  # type: ignore[arg-type]
        axes.scatter(times, [0] * len(times), color=colours, s=18, zorder=3, clip_on=False)  # type: ignore[arg-type]
        axes.set_xlim(*_time_limits(times))  # type: ignore[arg-type]
        locator = AutoDateLocator()
        axes.xaxis.set_major_locator(locator)
        axes.xaxis.set_major_formatter(ConciseDateFormatter(locator))
    else:
        axes.text(0.5, 0.5, "no runs recorded yet", ha="center", va="center",
                  transform=axes.transAxes, color="#555")
    axes.set_ylabel("records written\n+ failed")
    axes.set_xlabel("run started (UTC)")
    axes.set_ylim(bottom=0, top=max([*heights, 1]) * 1.15)
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))  # records come whole
    axes.spines[["top", "right"]].set_visible(False)
    seen = list(dict.fromkeys(p.outcome for p in ordered))
    if seen:
        axes.legend(handles=[Patch(color=o.colour, label=o.label()) for o in seen],
                    loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False, fontsize=8)
    axes.set_title(title, loc="left", fontsize=10)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return RunsChart(buffer.getvalue(), title)
