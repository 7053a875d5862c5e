"""The summary table of job runs that ``jobs run`` and ``make demo`` print."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from .runner import JobRun

__all__ = ["SUMMARY_COUNTS", "runs_table"]

SUMMARY_COUNTS = ("inserted", "modified", "unchanged", "failed", "skipped", "conflicts")


def runs_table(runs: Sequence[JobRun], *, relative_to: Path | None = None) -> str:
    """Job, queue status, outcome (as the job list and the report headline say it), counts,
    duration and the HTML report (else the output notebook; relative to ``relative_to`` when
    given); one line per run, then the errors."""
    header = ["job", "status", "outcome", *SUMMARY_COUNTS, "seconds", "report"]
    rows = [header]
    for run in runs:
        rows.append([run.job, run.status, run.label,
                     *(str(run.counts.get(name, 0)) for name in SUMMARY_COUNTS),
                     f"{run.duration_s:.1f}",
                     shown_path(run.output_html or run.output_notebook, relative_to)])
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    numeric = range(3, 3 + len(SUMMARY_COUNTS) + 1)
    lines = ["  ".join(cell.rjust(w) if i in numeric else cell.ljust(w)
                       for i, (cell, w) in enumerate(zip(row, widths, strict=True))).rstrip()
             for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    problems = [f"{run.job}: {run.error or run.message}" for run in runs
                if run.error or (not run.ran and run.message)]
    return "\n".join(lines + problems)


def shown_path(path: Path | str | None, relative_to: Path | None) -> str:
    """A path as printed: relative to ``relative_to`` when inside it, "-" when None."""
    if path is None:
        return "-"
    path = Path(path)
    if relative_to is not None and path.is_relative_to(relative_to):
        return str(path.relative_to(relative_to))
    return str(path)
