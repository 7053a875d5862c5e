"""What a sync, apply or retry did: per mapping counts, run ids and a message.

Counts use the job log's names (:data:`nav_crm_ops.store.RUN_COUNTS`), so a report, the
``runs`` table and a notebook's summary always agree.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from dataclasses import dataclass, field

import polars as pl

from ..store import RUN_COUNTS

__all__ = ["CHANGE_COUNTS", "MappingResult", "SyncReport"]

CHANGE_COUNTS = ("inserted", "modified", "deleted", "coupled", "uncoupled")
"""Counts that mean a run changed something (a job with none of them is inactive)."""
_SHOWN = ("inserted", "modified", "unchanged", "conflicts", "failed", "skipped", "coupled",
          "requests")


@dataclass(frozen=True)
class MappingResult:
    """One mapping's part of a run. ``status``: ``finished`` (no failures), ``failed`` (some
    records failed or conflicted; see the error log), ``refused`` (records changed since the
    plan), ``cancelled``."""

    mapping: str
    status: str
    counts: Mapping[str, int] = field(default_factory=dict)
    run_ids: tuple[int, ...] = ()
    message: str = ""
    duration_s: float = 0.0

    def count(self, name: str) -> int:
        return int(self.counts.get(name, 0))


@dataclass(frozen=True)
class SyncReport:
    """The results of one call, one :class:`MappingResult` per mapping in run order."""

    results: tuple[MappingResult, ...] = ()

    @property
    def counts(self) -> dict[str, int]:
        """Totals over every mapping, every :data:`RUN_COUNTS` key present."""
        return {name: sum(r.count(name) for r in self.results) for name in RUN_COUNTS}

    @property
    def failed(self) -> int:
        return self.counts["failed"]

    @property
    def changed(self) -> bool:
        """True when anything was written or (un)coupled."""
        return any(self.counts[name] for name in CHANGE_COUNTS)

    @property
    def run_ids(self) -> tuple[int, ...]:
        return tuple(run for result in self.results for run in result.run_ids)

    def result(self, mapping: str) -> MappingResult:
        for result in self.results:
            if result.mapping.upper() == mapping.upper():
                return result
        raise KeyError(f"no result for mapping {mapping!r}; this report has "
                       f"{[r.mapping for r in self.results]}")

    def to_frame(self) -> pl.DataFrame:
        """One row per mapping: mapping, status, every count, duration and message."""
        return pl.DataFrame(
            [{"mapping": r.mapping, "status": r.status,
              **{name: r.count(name) for name in RUN_COUNTS},
              "duration_s": round(r.duration_s, 2), "message": r.message}
             for r in self.results],
            schema={"mapping": pl.Utf8, "status": pl.Utf8,
                    **dict.fromkeys(RUN_COUNTS, pl.Int64), "duration_s": pl.Float64,
                    "message": pl.Utf8},
        )

    def __add__(self, other: SyncReport) -> SyncReport:
        return SyncReport(self.results + other.results)

    def _rows(self) -> list[list[str]]:
        header = ["mapping", "status", *_SHOWN, "seconds"]
        rows = [[r.mapping, r.status, *(str(r.count(n)) for n in _SHOWN), f"{r.duration_s:.1f}"]
                for r in self.results]
        return [header, *rows]

    def __str__(self) -> str:
        rows = self._rows()
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        lines = ["  ".join(cell.ljust(w) if i < 2 else cell.rjust(w)
                           for i, (cell, w) in enumerate(zip(row, widths, strict=True)))
                 for row in rows]
        lines.insert(1, "  ".join("-" * w for w in widths))
        notes = [f"{r.mapping}: {r.message}" for r in self.results if r.message]
        return "\n".join(lines + notes)

    def _repr_html_(self) -> str:
        rows = self._rows()
        head = "".join(f"<th>{html.escape(c)}</th>" for c in rows[0])
        body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>"
                       for row in rows[1:])
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
