"""What a sync, apply or retry did: per mapping counts, run ids and a message.

Counts use the job log's names (:data:`nav_crm_ops.store.RUN_COUNTS`), so a report, the
``runs`` table and a notebook's summary always agree. One exception, so that nobody is told
"skipped 0" while thousands wait: ``skipped`` in a run's counts is the skipped records that
run came across, and :meth:`SyncReport.with_skipped_totals` adds how many records of each
mapping are skipped right now (all of them); the printed report shows that total.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

import polars as pl

from ..store import RUN_COUNTS, StateStore
from ..store.runs import RunOutcome

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
    skipped_total: int | None = None
    """Records of the mapping skipped right now, whether or not this run came across them
    (None: not counted; see :meth:`SyncReport.with_skipped_totals`)."""

    def count(self, name: str) -> int:
        return int(self.counts.get(name, 0))

    @property
    def outcome(self) -> RunOutcome:
        """How this mapping's part ended (:meth:`RunOutcome.decide`: failed records are not
        a failed run)."""
        return RunOutcome.decide(self.status, failed=self.count("failed"),
                                 conflicts=self.count("conflicts"), message=self.message)

    @property
    def skipped(self) -> int:
        """Skipped records: the total when counted, else those this run came across."""
        return self.count("skipped") if self.skipped_total is None else self.skipped_total

    def skipped_note(self) -> str:
        """What a person reads about the skipped records ("" when there are none)."""
        if not self.skipped:
            return ""
        seen = "" if self.skipped_total is None else \
            f" in total ({self.count('skipped')} of them came up in this run)"
        return (f"{self.mapping}: {self.skipped} record(s) skipped{seen}: they are not "
                f"synchronized until restored; why: `nav-crm-ops errors {self.mapping} "
                f"--groups`, restore: `nav-crm-ops unskip {self.mapping}`")


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
    def skipped(self) -> int:
        """Skipped records over every mapping (totals where counted, see
        :meth:`with_skipped_totals`)."""
        return sum(r.skipped for r in self.results)

    @property
    def outcome(self) -> RunOutcome:
        """The worst outcome of the mappings (succeeded when there are none)."""
        return RunOutcome.worst(r.outcome for r in self.results)

    def outcome_label(self) -> str:
        """The outcome as a person reads it, with the failed and conflict counts."""
        return self.outcome.label(self.failed, self.counts["conflicts"])

    @property
    def needs_attention(self) -> bool:
        """True when records failed, conflicted or are skipped: they are not synchronized
        (the CLI exits 1)."""
        return bool(self.failed or self.counts["conflicts"] or self.skipped)

    def with_skipped_totals(self, store: StateStore) -> SyncReport:
        """This report with every mapping's :attr:`MappingResult.skipped_total` counted in
        ``store`` (records skipped right now, not only those this run came across)."""
        if not self.results:
            return self
        skipped = store.record_status_frame(states=["skipped"])
        totals = dict(skipped.group_by("mapping").len().iter_rows()) if skipped.height else {}
        return SyncReport(tuple(
            replace(r, skipped_total=int(totals.get(r.mapping.upper(), 0)))
            for r in self.results))

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
        """One row per mapping: mapping, status, every count (``skipped``: this run's),
        duration, message and ``skipped_total`` (null when not counted)."""
        return pl.DataFrame(
            [{"mapping": r.mapping, "status": r.status,
              **{name: r.count(name) for name in RUN_COUNTS},
              "duration_s": round(r.duration_s, 2), "message": r.message,
              "skipped_total": r.skipped_total}
             for r in self.results],
            schema={"mapping": pl.Utf8, "status": pl.Utf8,
                    **dict.fromkeys(RUN_COUNTS, pl.Int64), "duration_s": pl.Float64,
                    "message": pl.Utf8, "skipped_total": pl.Int64},
        )

    def __add__(self, other: SyncReport) -> SyncReport:
        return SyncReport(self.results + other.results)

    def _rows(self) -> list[list[str]]:
        header = ["mapping", "status", *_SHOWN, "seconds"]
        rows = [[r.mapping, r.status,
                 *(str(r.skipped if n == "skipped" else r.count(n)) for n in _SHOWN),
                 f"{r.duration_s:.1f}"]
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
        notes += [note for note in (r.skipped_note() for r in self.results) if note]
        return "\n".join(lines + notes)

    def _repr_html_(self) -> str:
        rows = self._rows()
        head = "".join(f"<th>{html.escape(c)}</th>" for c in rows[0])
        body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>"
                       for row in rows[1:])
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
