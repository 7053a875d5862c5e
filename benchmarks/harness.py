"""What a scenario hands back, and the small tools every scenario measures with.

Each measurement job runs in a process of its own (see :mod:`benchmarks.child`), so the peak
memory of a row is that job's alone. Timings are wall-clock (``time.perf_counter``) around the
measured operation only; loading inputs and starting servers are outside the timer.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

__all__ = [
    "Context",
    "JobSkipped",
    "Measurement",
    "Timing",
    "proc_status_mb",
    "timed",
]

T = TypeVar("T")
Role = Literal["ours", "baseline"]
Metric = Literal["wall_s", "rate_per_s"]


class JobSkipped(Exception):
    """A job that cannot run here (an optional baseline's package is missing): the runner
    lists it under "not measured" instead of failing the run."""


@dataclass(frozen=True)
class Context:
    """Where and how big: ``size`` records, data under ``workdir``, ``repeats`` timings."""

    quick: bool
    size: int
    workdir: Path
    repeats: int
    seed: int = 20261123


@dataclass(frozen=True)
class Timing:
    """Median and best of the repeated wall times, in seconds."""

    median_s: float
    best_s: float
    runs: int


def timed(operation: Callable[[], T], repeats: int) -> tuple[T, Timing]:
    """Run ``operation`` ``repeats`` times; the last result and the wall times."""
    walls: list[float] = []
    result: T | None = None
    for _ in range(max(1, repeats)):
        started = time.perf_counter()
        result = operation()
        walls.append(time.perf_counter() - started)
    assert result is not None
    return result, Timing(statistics.median(walls), min(walls), len(walls))


def proc_status_mb(key: str) -> float:
    """A memory line of /proc/self/status in MB (``VmRSS`` now, ``VmHWM`` peak so far)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1]) / 1024
    return float("nan")


@dataclass
class Measurement:
    """One row of the results table.

    ``metric`` says which figure the ratio uses: ``wall_s`` (lower is better; ratio =
    baseline wall / this wall) or ``rate_per_s`` (higher is better; ratio = this rate /
    baseline rate). ``baseline`` names the variant (same scenario) this row is compared with;
    a baseline row names itself and gets ratio 1.0; ``also_compare`` names further baselines
    the runner reports a ratio against. ``counts`` are the checked outcome counts
    (equal counts make the comparison apples to apples), ``expected`` the counts the input
    was built to produce; ``figures`` any further numbers. ``limits`` are the targets as
    ``{"<figure>_max": bound}`` / ``{"<figure>_min": bound}`` over the row's figures (``wall_s``,
    ``peak_rss_mb``, ``ratio`` or a key of ``figures``), checked on full runs only.
    """

    variant: str
    label: str
    role: Role
    baseline: str
    metric: Metric = "wall_s"
    also_compare: tuple[str, ...] = ()
    wall_s: float = 0.0
    wall_best_s: float = 0.0
    timing_runs: int = 1
    rate_per_s: float | None = None
    rate_unit: str = ""
    records: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    figures: dict[str, float] = field(default_factory=dict)
    expected: dict[str, int] = field(default_factory=dict)
    target: str = ""
    limits: dict[str, float] = field(default_factory=dict)
    notes: str = ""
    extrapolated: bool = False

    def with_timing(self, timing: Timing) -> Measurement:
        self.wall_s, self.wall_best_s, self.timing_runs = (
            timing.median_s, timing.best_s, timing.runs)
        return self

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
