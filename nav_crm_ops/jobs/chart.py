"""The runs-over-time chart of a job report: one bar per run on a time axis, coloured by outcome.

Why matplotlib, rendered to PNG here: a static image shows the same in JupyterLab, Voilà and
the exported HTML, needs no internet access and no trusted notebook (the output notebooks
papermill writes are untrusted, so scripts and widgets would not render).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from ..presentation import bar_width, time_axis
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


def runs_chart(points: Sequence[RunPoint], title: str) -> RunsChart:
    """Bars of records written plus failed per run (height), coloured by the run's outcome;
    a dot marks runs that wrote nothing, so every run is visible. Oldest left, newest right."""
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
        axes.bar(times, heights, width=bar_width(times), color=colours, align="center")  # type: ignore[arg-type]
        axes.scatter(times, [0] * len(times), color=colours, s=18, zorder=3, clip_on=False)  # type: ignore[arg-type]
        time_axis(axes, times, fontsize=10)
    else:
        axes.text(0.5, 0.5, "no runs recorded yet", ha="center", va="center",
                  transform=axes.transAxes, color="#555")
    axes.set_ylabel("records written\n+ failed")
    if not ordered:
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
