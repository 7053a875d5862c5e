"""The panels' charts: matplotlib figures rendered to PNG, shown as an image with a caption.

Why static images: a PNG inside the widget's HTML shows the same in JupyterLab, in Voilà and in
an exported or saved notebook, needs no internet access and no JavaScript. The image's ``alt``
text says in words what the chart shows (read by screen readers and by the tests).

Colours follow meaning, never position (:class:`Meaning`): records written are green, failed
red, held conflicts amber, skipped or unchanged grey; measures with no good or bad side
(duration, requests) blue. Runs sit on a real time axis, oldest left and newest right, and are
named by their time, not their id.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import TYPE_CHECKING, Any

import polars as pl

from ..presentation import bar_width, span, time_axis
from ..store.runs import RunOutcome

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["ACTION_MEANINGS", "RUN_SERIES", "Meaning", "Series", "bar_chart_html",
           "runs_over_time_html", "stacked_bars_html"]


class Meaning(Enum):
    """What a number means, hence its colour (the run outcomes' colours, shared by every
    front end)."""

    WRITTEN = RunOutcome.SUCCEEDED.colour
    FAILED = RunOutcome.FAILED.colour
    CONFLICT = RunOutcome.HELD_CONFLICTS.colour
    SKIPPED = RunOutcome.SKIPPED.colour
    MEASURE = RunOutcome.RUNNING.colour

    @property
    def colour(self) -> str:
        return str(self.value)


@dataclass(frozen=True)
class Series:
    """One stacked part of a bar: its legend label and its meaning (colour)."""

    label: str
    meaning: Meaning


ACTION_MEANINGS: dict[str, Meaning] = {
    "insert_crm": Meaning.WRITTEN, "insert_nav": Meaning.WRITTEN,
    "update_crm": Meaning.WRITTEN, "update_nav": Meaning.WRITTEN,
    "update_both": Meaning.WRITTEN, "conflict": Meaning.CONFLICT,
    "deletion_conflict": Meaning.CONFLICT, "fail": Meaning.FAILED,
    "skip": Meaning.SKIPPED, "unchanged": Meaning.SKIPPED,
}
"""The meaning of each plan action (what a preview's bars are coloured by)."""

RUN_SERIES = (Series("written (inserted, modified, deleted)", Meaning.WRITTEN),
              Series("held conflicts", Meaning.CONFLICT), Series("failed", Meaning.FAILED),
              Series("skipped", Meaning.SKIPPED))
"""The parts of a run's bar in :func:`runs_over_time_html`."""

_DPI = 100


def _figure(width: float, height: float, rows: int = 1) -> tuple[Figure, Any]:
    from matplotlib.figure import Figure  # imported on first chart: the package stays light

    figure = Figure(figsize=(width, height), dpi=_DPI, layout="constrained")
    axes = figure.subplots(rows, 1, sharex=True, squeeze=False)[:, 0]
    for ax in axes:
        ax.spines[["top", "right"]].set_visible(False)
        ax.tick_params(labelsize=8)
    return figure, axes


def _figure_html(figure: Figure, title: str, description: str) -> str:
    """The figure as a PNG ``<img>`` (data URI) with ``title`` as caption, ``description``
    as its alt text."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return (f"<figure class='nav-crm-ops-chart' style='margin:4px 0'>"
            f"<figcaption><b>{html.escape(title)}</b></figcaption>"
            f"<img src='data:image/png;base64,{data}' alt='{html.escape(description, quote=True)}'"
            " style='max-width:100%;height:auto'></figure>")


def _empty_html(title: str, what: str) -> str:
    return (f"<figure class='nav-crm-ops-chart'><figcaption><b>{html.escape(title)}</b>"
            f"</figcaption><i>{html.escape(what)}</i></figure>")


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.1f}"


def bar_chart_html(items: Sequence[tuple[str, float, Meaning]], *, title: str,
                   unit: str = "") -> str:
    """One horizontal bar per ``(label, value, meaning)``, in the order given (top down)."""
    if not items:
        return _empty_html(title, "nothing to show")
    figure, (axes,) = _figure(5.0, 0.6 + 0.32 * len(items))
    labels = [label for label, _, _ in items]
    values = [value for _, value, _ in items]
    bars = axes.barh(labels, values, color=[m.colour for _, _, m in items])
    axes.bar_label(bars, labels=[_number(v) + unit for v in values], fontsize=8, padding=2)
    axes.invert_yaxis()
    axes.set_xlim(0, max([*values, 1]) * 1.15)
    described = "; ".join(f"{label}: {_number(value)}{unit}" for label, value, _ in items)
    return _figure_html(figure, title, described)


def stacked_bars_html(rows: Sequence[tuple[str, Sequence[float]]], series: Sequence[Series],
                      *, title: str) -> str:
    """One horizontal bar per row label (e.g. a mapping), stacked by ``series``; a legend
    names the series that occur."""
    if not rows:
        return _empty_html(title, "nothing to show")
    figure, (axes,) = _figure(6.5, 0.9 + 0.32 * len(rows))
    labels = [label for label, _ in rows]
    left = [0.0] * len(rows)
    for index, part in enumerate(series):
        values = [float(values[index]) for _, values in rows]
        if any(values):
            axes.barh(labels, values, left=left, color=part.meaning.colour, label=part.label)
        left = [a + b for a, b in zip(left, values, strict=True)]
    for position, total in enumerate(left):
        axes.text(total, position, f" {_number(total)}", va="center", fontsize=8)
    axes.invert_yaxis()
    axes.set_xlim(0, max([*left, 1]) * 1.15)
    if any(left):
        axes.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False, fontsize=8)
    described = "; ".join(
        f"{label}: " + ", ".join(f"{_number(v)} {s.label}" for s, v in
                                 zip(series, values, strict=True) if v)
        for label, values in rows)
    return _figure_html(figure, title, described or "nothing")


@dataclass(frozen=True)
class _Run:
    """One row of the job log, as the chart needs it."""

    started: datetime
    name: str
    parts: tuple[float, ...]
    duration: float
    requests: float
    outcome: RunOutcome

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> _Run:
        written = sum(int(row.get(c) or 0) for c in ("inserted", "modified", "deleted"))
        parts = (written, *(float(row.get(c) or 0) for c in ("conflicts", "failed", "skipped")))
        name = " ".join(str(row.get(c) or "") for c in ("mapping", "direction")).strip()
        outcome = _outcome(row)
        return cls(started=_parse_time(row["started_at"]), name=name, parts=parts,
                   duration=float(row.get("duration_s") or 0.0),
                   requests=float(row.get("requests") or 0), outcome=outcome)


def _outcome(row: dict[str, Any]) -> RunOutcome:
    """A job-log row's outcome (its ``outcome_key`` when the dashboard added one)."""
    stored = row.get("outcome_key") or row.get("outcome") or row.get("status")
    return RunOutcome.decide(str(stored or ""), failed=int(row.get("failed") or 0),
                             conflicts=int(row.get("conflicts") or 0),
                             message=str(row.get("message") or ""))


def _parse_time(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


@dataclass(frozen=True)
class _Bar:
    """Runs that started together (one "sync all", or a mapping's two directions): one bar."""

    started: datetime
    parts: tuple[float, ...]
    duration: float
    requests: float
    outcome: RunOutcome

    @classmethod
    def of(cls, runs: Sequence[_Run]) -> _Bar:
        return cls(started=runs[0].started,
                   parts=tuple(sum(values) for values in zip(*(r.parts for r in runs),
                                                             strict=True)),
                   duration=sum(r.duration for r in runs),
                   requests=sum(r.requests for r in runs),
                   outcome=RunOutcome.worst(r.outcome for r in runs))


def _bars(runs: Sequence[_Run]) -> list[_Bar]:
    """Runs in time order, those less than a hundredth of the time shown after the previous
    one joined into its bar (they could not be told apart at this scale)."""
    close = span([r.started for r in runs]) / 100
    groups: list[list[_Run]] = []
    for run in runs:
        if groups and run.started - groups[-1][-1].started < close:
            groups[-1].append(run)
        else:
            groups.append([run])
    return [_Bar.of(group) for group in groups]


def runs_over_time_html(runs: pl.DataFrame, *, title: str) -> str:
    """The job log on a time axis: records written / held / failed / skipped (stacked), the
    duration (coloured by the run's outcome) and the requests; runs that started together
    share a bar."""
    if runs.height == 0 or "started_at" not in runs.columns:
        return _empty_html(title, "no runs yet")
    points = sorted((_Run.from_row(r) for r in runs.iter_rows(named=True)),
                    key=lambda r: r.started)
    bars = _bars(points)
    times = [b.started for b in bars]
    width = bar_width(times)
    figure, (records, duration, requests) = _figure(9.0, 4.6, rows=3)
    _stack_records(records, bars, times, width)
    duration.bar(times, [b.duration for b in bars], width=width, align="edge",
                 color=[b.outcome.colour for b in bars])
    duration.set_ylabel("duration (s)", fontsize=8)
    requests.bar(times, [b.requests for b in bars], width=width, align="edge",
                 color=Meaning.MEASURE.colour)
    requests.set_ylabel("requests", fontsize=8)
    time_axis(requests, times)
    from matplotlib.patches import Patch

    seen = list(dict.fromkeys(b.outcome for b in bars))
    duration.legend(handles=[Patch(color=o.colour, label=o.label()) for o in seen],
                    title="run outcome", title_fontsize=8, loc="upper left",
                    bbox_to_anchor=(1.0, 1.0), frameon=False, fontsize=8)
    described = f"{len(points)} runs, oldest left, newest right: " + "; ".join(
        f"{p.name} at {p.started:%Y-%m-%d %H:%M:%S} UTC: {_number(p.parts[0])} written, "
        f"{_number(p.parts[2])} failed, {p.outcome.label()}" for p in reversed(points[-20:]))
    return _figure_html(figure, title, described)


def _stack_records(axes: Any, bars: Sequence[_Bar], times: Sequence[datetime],
                   width: timedelta) -> None:
    """The top panel: each bar's records stacked by meaning (:data:`RUN_SERIES`)."""
    bottom = [0.0] * len(bars)
    for index, part in enumerate(RUN_SERIES):
        values = [b.parts[index] for b in bars]
        if any(values):
            axes.bar(times, values, width=width, bottom=bottom, color=part.meaning.colour,
                     label=part.label, align="edge")
        bottom = [a + b for a, b in zip(bottom, values, strict=True)]
    axes.set_ylabel("records", fontsize=8)
    if any(bottom):
        axes.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False, fontsize=8)
