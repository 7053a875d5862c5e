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

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from ...connectors.models import WriteOp, WriteOutcome
from ..mapping import TableMapping
from ..progress import CancelToken, Progress
from ..report import MappingResult
from ..vocabulary import INSERTS, Direction, Side, changes_to, same_value, writes_to

__all__ = ["ApplyRun", "Chunk", "DirectionTally", "Failure", "Prepared", "by_record",
           "column_by_record", "mapping_result", "values_by_record", "write_chunks"]

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


def by_record(changes: pl.DataFrame) -> dict[str, list[dict[str, Any]]]:
    """Field-change rows grouped by ``record_id`` (in their order)."""
    grouped: dict[str, list[dict[str, Any]]] = {}
    for row in changes.to_dicts():  # one conversion of the frame: far cheaper than iter_rows
        grouped.setdefault(row["record_id"], []).append(row)
    return grouped


def column_by_record(changes: pl.DataFrame, column: str) -> dict[str, dict[str, Any]]:
    """Per ``record_id`` (in order of first appearance), ``{field: column's value}`` in the
    order of its rows (None when the frame lacks ``column``).

    Why not :func:`by_record`: a first sync writes ~14 values per record; one dict per
    record, made in one call from a run of rows of two column lists (:func:`write_chunks`
    orders a chunk's rows record by record), costs a fraction of one dict per field change.
    A plan holds one field change per (record, field) (the diff's contract), so no value is
    lost by keying on the field."""
    runs = changes.get_column("record_id").rle()  # (length, record id) of each run of rows
    names = changes.get_column("field").to_list()
    values = (changes.get_column(column).to_list() if column in changes.columns
              else [None] * changes.height)
    grouped: dict[str, dict[str, Any]] = {}
    start = 0
    for length, record_id in zip(runs.struct.field("len").to_list(),
                                 runs.struct.field("value").to_list(), strict=True):
        end = start + length
        fields = dict(zip(names[start:end], values[start:end], strict=True))
        if record_id in grouped:  # a record met before (a frame not grouped by record)
            grouped[record_id].update(fields)
        else:
            grouped[record_id] = fields
        start = end
    return grouped


def values_by_record(changes: pl.DataFrame) -> dict[str, dict[str, Any]]:
    """Per ``record_id``, the values its field changes write: ``{field: new_value}``."""
    return column_by_record(changes, "new_value")


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
    written: dict[Side, int] = field(default_factory=dict)
    """Pairs written per side: counts, not ids (each record writes each side at most once per
    apply), so a million creates keep no per-record state after their chunk."""
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
        return record["action"] not in INSERTS and record["record_id"] not in self.bases

    def new_base(self, nav_id: str, values: Mapping[str, Any], *,
                 keep: bool = True) -> dict[str, Any]:
        """The stored base of ``nav_id`` with the written field values (``{field: value}``),
        kept for the next direction's writes. ``keep=False`` (a create: it writes one side
        only, so no later write reads it) does not keep it: a first sync of a million records
        would otherwise hold every record's base until the end (about 2 KB each)."""
        names = self.mapping.diff_field_names
        base = dict(self.bases.get(nav_id) or {})
        if values.keys() <= names:  # the usual record: every written field is in the base
            base.update(values)
        else:
            base.update({f: v for f, v in values.items() if f in names})
        if keep:
            self.bases[nav_id] = base
        return base

    def mark_written(self, nav_id: str, target: Side) -> None:
        """Count a pair written to ``target`` (``nav_id`` names it for the reader)."""
        self.written[target] = self.written.get(target, 0) + 1

    def touched(self, target: Side) -> int:
        """How many pairs this run wrote to ``target``."""
        return self.written.get(target, 0)


@dataclass
class Chunk:
    """One chunk of one direction's writes, from preparation to its stored outcome."""

    target: Side
    rows: list[dict[str, Any]]
    values: dict[str, dict[str, Any]]
    """Per record id, what its writes give each field: ``{field: new_value}`` in the order of
    its field changes (:func:`values_by_record`)."""
    prepared: list[Prepared] = field(default_factory=list)
    outcomes: list[WriteOutcome] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    coupling_rows: list[dict[str, Any]] = field(default_factory=list)
    succeeded: list[str] = field(default_factory=list)
    frame: pl.DataFrame | None = None
    """The chunk's field changes as a frame (what ``values`` was converted from), for the
    checks that are cheaper column-wise and what only some records need (:meth:`change_rows`,
    the target's old values)."""
    history: list[tuple[Any, ...]] = field(default_factory=list)
    """What the chunk's writes replaced (``store.history`` rows), stored with its outcome."""
    _old_values: dict[str, dict[str, Any]] | None = field(default=None, repr=False)
    _rows: dict[str, list[dict[str, Any]]] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self._side: str = self.target.value  # spelled once, not once per history row

    def keep_history(self, run_id: int, mapping: str, record: dict[str, Any],
                     version: str | None) -> None:
        """Keep what one successful write replaced, so its run can be reverted: per field
        written the target's value as the preview read it and the value written; a create
        keeps one compact row (reverting it deactivates or deletes the record)."""
        target, nav_id, crm_id = self._side, record["nav_id"], record["crm_id"]
        if record["action"] in INSERTS:
            self.history.append((run_id, mapping, target, nav_id, crm_id, None, None, None,
                                 version, True))
            return
        record_id = record["record_id"]
        old = self._olds().get(record_id, {})
        self.history.extend((run_id, mapping, target, nav_id, crm_id, name, old.get(name), value,
                             version, False)
                            for name, value in self.values.get(record_id, {}).items())

    def _olds(self) -> dict[str, dict[str, Any]]:
        """Per record id, the target's values as the preview read them (``{field: value}``),
        converted once per chunk and only when an update needs them."""
        if self._old_values is None:
            self._old_values = ({} if self.frame is None else
                                column_by_record(self.frame, self.target.column("value")))
        return self._old_values

    def change_rows(self) -> dict[str, list[dict[str, Any]]]:
        """The chunk's field-change rows by record id (:func:`by_record`), as failures store
        them; converted only for a chunk with failures."""
        if self._rows is None:
            self._rows = {} if self.frame is None else by_record(self.frame)
        return self._rows

    @property
    def direction(self) -> Direction:
        return self.target.direction

    def sent(self) -> list[tuple[Prepared, WriteOutcome]]:
        return list(zip(self.prepared, self.outcomes, strict=True))

    def created(self) -> list[tuple[dict[str, Any], WriteOutcome]]:
        """Records this chunk created (their outcomes ok)."""
        return [(p.record, o) for p, o in self.sent()
                if o.ok and p.record["action"] in INSERTS]

    def partners(self, failed_writes: set[str]) -> list[str]:
        """Ids on the written side of pairs written without failure: the other direction's
        retry pass lets go of them too."""
        column = self.target.column("id")
        return [str(p.record[column]) for p, o in self.sent()
                if o.ok and p.record["record_id"] not in failed_writes
                and p.record["nav_id"] and p.record["crm_id"]]


WRITE_VALUE_COLUMNS = ("record_id", "field", "new_value", "nav_value", "crm_value")
"""What the writer reads of a field change (payload, base, failure's source values)."""


def write_chunks(records: pl.DataFrame, changes: pl.DataFrame, target: Side,
                 size: int) -> Iterator[tuple[int, int, Chunk]]:
    """The records writing to ``target``, ``size`` at a time, each chunk with its own field
    changes: ``(first position, total, chunk)``.

    Why per chunk: a first sync of a million records writes about 14 million field values;
    turning them all into Python dicts at once took most of the client's memory (1.3 GB per
    100,000 records). Only the row numbers of the changes are ordered by chunk and record
    (integers, no copy of the strings); each chunk gathers and converts its own rows and
    values, record by record, in their order within a record (so each record's values are
    one run of rows: :func:`column_by_record` makes each record's dict in one call)."""
    rows = records.filter(writes_to(target))
    if rows.height == 0:
        return
    wanted = changes.filter(changes_to(target)).select(
        [c for c in WRITE_VALUE_COLUMNS if c in changes.columns])
    ids = rows.get_column("record_id")
    position = pl.Series("_position", range(rows.height), dtype=pl.Int64)
    order = (wanted.select(pl.col("record_id").replace_strict(ids, position, default=None,
                                                              return_dtype=pl.Int64)
                           .alias("_position"))
             .with_row_index("_row")
             .drop_nulls("_position")
             .sort("_position", "_row"))
    counts = dict(order.group_by(pl.col("_position") // size).len().iter_rows())
    positions = order.get_column("_row")
    del order
    offset = 0
    for number, start in enumerate(range(0, rows.height, size)):
        count = int(counts.get(number, 0))
        frame = wanted[positions.slice(offset, count)]
        offset += count
        yield start, rows.height, Chunk(target, rows.slice(start, size).to_dicts(),
                                        values_by_record(frame), frame=frame)


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
