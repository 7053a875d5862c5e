"""The state one mapping's apply carries from chunk to chunk, and its bookkeeping.

Why one object: an apply writes NAV → CRM, then CRM → NAV, chunk by chunk, and every step
needs the same running state — the tallies per direction, the stored bases (updated as writes
succeed, so the second direction sees the first one's values), the CRM records restored as
couplings, which records were written or failed, the fields both sides changed alike, progress
and cancellation. :class:`ApplyRun` holds it all; the applier's steps take the run instead of a
dozen parameters. Nothing here talks to a service or the state store, so the bookkeeping is
tested without HTTP (``tests/engine/test_run.py``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from ...connectors.models import WriteOp, WriteOutcome
from ..mapping import TableMapping
from ..progress import CancelToken, Progress
from ..report import MappingResult
from ..vocabulary import Direction, PlanAction, Side, same_value

__all__ = ["ApplyRun", "Chunk", "DirectionTally", "Failure", "Prepared", "by_record",
           "mapping_result"]

Failure = tuple[dict[str, Any], str, bool, Any, Any]
"""A record that did not sync: (record, message, transient, payload sent, response)."""


@dataclass
class DirectionTally:
    """Counts and outcomes of one direction, flushed to the store chunk by chunk."""

    run_id: int
    counts: dict[str, int] = field(default_factory=dict)

    def add(self, name: str, amount: int = 1) -> None:
        self.counts[name] = self.counts.get(name, 0) + amount


@dataclass
class Prepared:
    """One record's write, ready to send."""

    record: dict[str, Any]
    op: WriteOp
    source_values: dict[str, Any]


def by_record(changes: pl.DataFrame) -> dict[str, list[dict[str, Any]]]:
    """Field-change rows grouped by ``record_id`` (in their order)."""
    grouped: dict[str, list[dict[str, Any]]] = {}
    for row in changes.iter_rows(named=True):
        grouped.setdefault(row["record_id"], []).append(row)
    return grouped


@dataclass
class ApplyRun:
    """What travels through one mapping's apply (see the module docstring)."""

    mapping: TableMapping
    plan_id: str
    records: pl.DataFrame
    changes: pl.DataFrame
    tallies: dict[str, DirectionTally]
    bases: dict[str, Any] = field(default_factory=dict)
    coupled_crm: dict[str, str] = field(default_factory=dict)
    """CRM ids of ``insert_nav`` records still coupled (a restore): uncoupled before the create."""
    written: dict[str, set[Side]] = field(default_factory=dict)
    failed_writes: set[str] = field(default_factory=set)
    same: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    progress: Progress | None = None
    cancel: CancelToken | None = None

    def __post_init__(self) -> None:
        if not self.same and self.changes.height:
            self.same = by_record(self.changes.filter(same_value()))

    @property
    def first(self) -> DirectionTally:
        """The tally of the mapping's first direction (records without writes count there)."""
        return self.tallies[self.mapping.directions[0]]

    @property
    def first_direction(self) -> Direction:
        return Direction(self.mapping.directions[0])

    def tally(self, target: Side) -> DirectionTally:
        return self.tallies[target.direction]

    def targets(self) -> list[Side]:
        """The sides this mapping writes to, in the order apply writes them."""
        return [Direction(d).target for d in self.mapping.directions]

    def is_new_coupling(self, record: dict[str, Any]) -> bool:
        """A matched pair written for the first time (no stored base yet)."""
        return (not PlanAction(record["action"]).is_insert
                and record["record_id"] not in self.bases)

    def new_base(self, nav_id: str, values: Iterable[dict[str, Any]]) -> dict[str, Any]:
        """The stored base of ``nav_id`` with the written field values, kept for the next
        direction's writes."""
        names = self.mapping.diff_field_names
        base = dict(self.bases.get(nav_id) or {})
        for change in values:
            if change["field"] in names:
                base[change["field"]] = change["new_value"]
        self.bases[nav_id] = base
        return base

    def mark_written(self, nav_id: str, target: Side) -> None:
        self.written.setdefault(nav_id, set()).add(target)

    def touched(self, target: Side) -> int:
        """How many pairs this run wrote to ``target``."""
        return sum(1 for targets in self.written.values() if target in targets)


@dataclass
class Chunk:
    """One chunk of one direction's writes, from preparation to its stored outcome."""

    target: Side
    rows: list[dict[str, Any]]
    values: dict[str, list[dict[str, Any]]]
    prepared: list[Prepared] = field(default_factory=list)
    outcomes: list[WriteOutcome] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    coupling_rows: list[dict[str, Any]] = field(default_factory=list)
    succeeded: list[str] = field(default_factory=list)

    @property
    def direction(self) -> Direction:
        return self.target.direction

    def sent(self) -> list[tuple[Prepared, WriteOutcome]]:
        return list(zip(self.prepared, self.outcomes, strict=True))

    def created(self) -> list[tuple[dict[str, Any], WriteOutcome]]:
        """Records this chunk created (their outcomes ok)."""
        return [(p.record, o) for p, o in self.sent()
                if o.ok and PlanAction(p.record["action"]).is_insert]

    def partners(self, failed_writes: set[str]) -> list[str]:
        """Ids on the written side of pairs written without failure: the other direction's
        retry pass lets go of them too."""
        column = self.target.column("id")
        return [str(p.record[column]) for p, o in self.sent()
                if o.ok and p.record["record_id"] not in failed_writes
                and p.record["nav_id"] and p.record["crm_id"]]


def mapping_result(mapping: TableMapping, tallies: dict[str, DirectionTally], status: str,
                   message: str, refused: int, duration_s: float) -> MappingResult:
    """The mapping's result: counts of both directions and what a person should know."""
    counts: dict[str, int] = {}
    for tally in tallies.values():
        for name, amount in tally.counts.items():
            counts[name] = counts.get(name, 0) + amount
    failures = counts.get("failed", 0) + counts.get("conflicts", 0)
    if refused and not message:
        message = (f"{refused} record(s) changed since the preview and were not written; the "
                   "next run previews them again as they are now")
    if status == "failed" and not message:
        message = (f"{failures} record(s) failed or conflict: see `nav-crm-ops errors "
                   f"{mapping.name}`")
    return MappingResult(mapping.name, status, counts, tuple(t.run_id for t in tallies.values()),
                         message, duration_s)
