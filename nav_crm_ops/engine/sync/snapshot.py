"""The preview's first phase: what both sides and the state store hold for one mapping now.

A :class:`Snapshot` is the state the phases of :meth:`Planner.plan` share — read snapshot,
coupled pairs / skips / deletions (``engine.sync.classify``), matching and creates, diff, checks —
instead of a long list of parameters: the couplings and record statuses as the state store has
them, each side's rows read (field frames, ``engine.sides``), which ids were asked for by id,
and the plan rows the phases decided so far.

Reading (:func:`read_snapshot`): each side's changes since its watermark (``ge`` with an
overlap; everything on the first sync), plus the records in the retry pass (failed or
conflicting, read by id on both sides) — or, for "synchronize now" and retries, only the
selected records.

Couplings (:meth:`Snapshot.load_couplings`): never the mapping's whole table. The couplings, with
their bases, of the ids in play are looked up in the state store in chunks as the ids become
known — the selection and the retry pass first, then every record read (changes, records read
by id, matching candidates read by value) and at last the records a plan creates — so memory
grows with the changes, not with the table. Deletions need nothing more: a pair is found
deleted when a record asked for by id (retry pass, selection, pairs read on both sides) is not
there (``engine.sync.classify``). On a first sync everything is read, so the couplings of
everything are looked up, still only those of the records read.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import polars as pl

from ...store import StateStore
from ..ids import record_id_expr
from ..mapping import TableMapping
from ..progress import CancelToken, Progress, ProgressEvent, check_cancelled, emit
from ..resolve import Resolver
from ..sides import SideSource, empty_field_frame, field_frame
from ..vocabulary import Direction, Side

__all__ = ["NOTES", "SCOPE", "Selection", "Snapshot", "coupled_in_scope", "field_rows",
           "format_moment", "parse_moment", "read_snapshot", "unique_rows", "watermark"]

SCOPE = "__scope"
BC_BLANK_DATE = "0001-01-01"
"""Business Central's empty date (dates are never null in its API)."""
NOTES = "__notes"

InsertFrames = tuple[pl.DataFrame, pl.DataFrame]


@dataclass(frozen=True)
class Selection:
    """Records chosen by a person (synchronize now, retry). ``direction`` forces the source
    side's values onto the other side for every field the mapping lets flow that way."""

    nav_ids: tuple[str, ...] = ()
    crm_ids: tuple[str, ...] = ()
    direction: Literal["to_crm", "from_crm"] | None = None


def format_moment(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def parse_moment(text: str) -> datetime:
    """A stored moment as an aware UTC datetime (a text without an offset is UTC, never the
    machine's local time)."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)


def unique_rows(frame: pl.DataFrame) -> pl.DataFrame:
    """One row per record id (the last read wins)."""
    return frame.unique(subset="_id", keep="last", maintain_order=True)


def _notes(raw: pl.DataFrame, mapping: TableMapping, side: Side | str) -> pl.Series:
    """The ``not_synchronized`` notes of each row (empty, zero and BC's blank date carry
    nothing worth a note)."""
    notes: list[pl.Expr] = []
    for item in mapping.not_synchronized:
        if item.side == Side(side) and item.column in raw.columns:
            value = pl.col(item.column).cast(pl.Utf8)
            blank = value.is_null() | value.is_in(["", "0", "0.0"]) | value.str.starts_with(
                BC_BLANK_DATE)
            notes.append(pl.when(~blank)
                         .then(pl.concat_str([pl.lit(f"{item.note} ({item.column} "),
                                              value, pl.lit(")")]))
                         .otherwise(pl.lit(None, pl.Utf8)))
    if not notes or raw.height == 0:
        return pl.Series(NOTES, [None] * raw.height, dtype=pl.Utf8)
    note = raw.select(pl.concat_str(notes, separator="; ", ignore_nulls=True)
                      .alias(NOTES)).get_column(NOTES)
    return note.replace("", None)


def with_extras(frame: pl.DataFrame, raw: pl.DataFrame | None, mapping: TableMapping,
                side: Side | str) -> pl.DataFrame:
    """Columns the plan needs besides the fields: the id that scopes ``coupled_in`` and the
    notes on values the mapping cannot carry (``not_synchronized``)."""
    scope_column = Side(side).pick(mapping.nav.coupled_in_field, None)
    if raw is not None and scope_column and scope_column in raw.columns:
        scope = raw.select(record_id_expr(pl.col(scope_column))).to_series().alias(SCOPE)
    else:
        scope = frame.get_column("_id").alias(SCOPE)
    if raw is None:
        note = pl.Series(NOTES, [None] * frame.height, dtype=pl.Utf8)
    else:
        note = _notes(raw, mapping, side)
    return frame.with_columns(scope, note)


def field_rows(raw: pl.DataFrame, mapping: TableMapping, side: Side | str,
               resolver: Resolver) -> pl.DataFrame:
    """Rows read from one side as a field frame with the plan's extra columns."""
    return with_extras(field_frame(raw, mapping, side, resolver), raw, mapping, side)


QUIET_LAG = timedelta(minutes=5)
"""How far behind the preview's start a side's watermark may move when its change read found
nothing newer: longer than a service transaction lasts (Dataverse ends a request after two
minutes), so a change stamped before that moment and committed after the read is not
skipped. The doctor reports a service clock this far off this machine's (``clock skew``)."""


def watermark(old: str | None, changed: pl.DataFrame | None, mapping: TableMapping,
              side: Side | str, started: datetime) -> str:
    """A side's new watermark: the newest modified-on read, capped at the preview's start,
    never before the old one — and, for a side whose changes were read, at least
    :data:`QUIET_LAG` before the preview's start.

    Why the lag rule: the read saw every change since the old watermark up to its start, so
    nothing older than that moment is left to read (less the lag). Without it a side nobody
    else edits kept its watermark where the last person's edit left it: every later read
    asked for all of this integration's own writes since (left out by ``_modifiedby_value
    ne``, but scanned by the service each time), a million rows after a first sync."""
    cap = format_moment(started)
    spec = Side(side).pick(mapping.nav, mapping.crm)
    newest: str | None = None
    if changed is not None and changed.height and spec.modified in changed.columns:
        column = changed.get_column(spec.modified)
        if isinstance(column.dtype, pl.Datetime):
            latest = column.max()
            newest = format_moment(latest) if isinstance(latest, datetime) else None
    candidates = [m for m in (old, min(newest, cap) if newest else None) if m]
    if changed is not None:
        candidates.append(format_moment(started - QUIET_LAG))
    if not candidates:
        return cap
    return max(candidates)


def _ids(frame: pl.DataFrame, direction: str) -> list[str]:
    return frame.filter(pl.col("direction") == direction)["source_id"].to_list()


@dataclass
class Snapshot:
    """What one mapping's preview knows and has decided so far (see the module docstring)."""

    mapping: TableMapping
    selection: Selection | None
    started: datetime
    resolver: Resolver
    nav_reader: SideSource
    crm_reader: SideSource
    marks: dict[str, str]
    store: StateStore
    statuses: pl.DataFrame
    retry_pass: pl.DataFrame
    skipped: pl.DataFrame
    couplings: pl.DataFrame = field(default_factory=pl.DataFrame)
    """The couplings (every column) of the ids looked up so far (:meth:`load_couplings`)."""
    nav: pl.DataFrame = field(default_factory=pl.DataFrame)
    crm: pl.DataFrame = field(default_factory=pl.DataFrame)
    changed_nav: pl.DataFrame | None = None
    changed_crm: pl.DataFrame | None = None
    requested_nav: set[str] = field(default_factory=set)
    requested_crm: set[str] = field(default_factory=set)
    both_sides: set[str] = field(default_factory=set)
    """Pairs read on both sides (no base, retry pass, selection)."""
    record_rows: list[dict[str, Any]] = field(default_factory=list)
    insert_frames: list[InsertFrames] = field(default_factory=list)
    diff_pairs: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.couplings = self.store.couplings_frame(self.mapping.name, nav_ids=[])
        self.nav_to_crm: dict[str, str] = {}
        self.crm_to_nav: dict[str, str] = {}
        self._asked: dict[Side, set[str]] = {Side.NAV: set(), Side.CRM: set()}
        # Nothing stored, nothing to look up (a first sync: no query per chunk of ids read).
        self._none_stored = not self.store.has_couplings(self.mapping.name)

    def load_couplings(self, nav_ids: Iterable[str] = (), crm_ids: Iterable[str] = ()) -> None:
        """Look up the couplings of the ids not looked up yet (module docstring). A coupling
        found is the pair of both of its ids; one that contradicts a pair already known (a
        person coupled meanwhile) is left out: apply re-checks every coupling anyway
        (``engine.freshness``)."""
        if self._none_stored:
            return
        by_nav, by_crm = self._unasked(Side.NAV, nav_ids), self._unasked(Side.CRM, crm_ids)
        found = ([self.store.couplings_frame(self.mapping.name, nav_ids=by_nav)] if by_nav
                 else []) + ([self.store.couplings_frame(self.mapping.name, crm_ids=by_crm)]
                             if by_crm else [])
        if not found:
            return
        new = pl.concat(found).unique("nav_id", keep="first", maintain_order=True).filter(
            ~pl.col("nav_id").is_in(list(self.nav_to_crm))
            & ~pl.col("crm_id").is_in(list(self.crm_to_nav)))
        if new.height == 0:
            return
        self.couplings = pl.concat([self.couplings, new])
        nav_ids, crm_ids = new["nav_id"].to_list(), new["crm_id"].to_list()
        self.nav_to_crm.update(zip(nav_ids, crm_ids, strict=True))
        self.crm_to_nav.update(zip(crm_ids, nav_ids, strict=True))
        self._asked[Side.NAV].update(nav_ids)
        self._asked[Side.CRM].update(crm_ids)

    def _unasked(self, side: Side, ids: Iterable[str]) -> list[str]:
        """``ids`` whose coupling was not looked up yet (now marked as looked up)."""
        asked = self._asked[side]
        fresh = [i for i in dict.fromkeys(ids) if i and i not in asked]
        asked.update(fresh)
        return fresh

    def load_read(self) -> None:
        """Look up the couplings of every record read so far."""
        self.load_couplings(self.nav["_id"].to_list(), self.crm["_id"].to_list())

    @property
    def first(self) -> bool:
        """A first sync: no selection and no watermarks yet (everything is read)."""
        return self.selection is None and not all(self.marks.get(side) for side in Side)

    def retry_ids(self, direction: str) -> list[str]:
        return _ids(self.retry_pass, direction)

    def skipped_ids(self, direction: str) -> list[str]:
        return _ids(self.skipped, direction)

    def partners(self, nav_ids: Iterable[str], crm_ids: Iterable[str]) -> tuple[set[str],
                                                                                set[str]]:
        """Both records of every pair touched by ``nav_ids`` / ``crm_ids``."""
        nav, crm = set(nav_ids), set(crm_ids)
        return ({*nav, *(self.crm_to_nav[c] for c in crm if c in self.crm_to_nav)},
                {*crm, *(self.nav_to_crm[n] for n in nav if n in self.nav_to_crm)})

    def frame(self, side: Side | str, raw: pl.DataFrame | None) -> pl.DataFrame:
        if raw is None:
            return with_extras(empty_field_frame(self.mapping), None, self.mapping, side)
        return unique_rows(field_rows(raw, self.mapping, side, self.resolver))

    def read_missing(self, want_nav: Iterable[str], want_crm: Iterable[str]) -> None:
        """Read by id the wanted records neither read nor asked for yet."""
        missing_nav = sorted(set(want_nav) - set(self.nav["_id"].to_list()) - self.requested_nav)
        missing_crm = sorted(set(want_crm) - set(self.crm["_id"].to_list()) - self.requested_crm)
        self.requested_nav.update(missing_nav)
        self.requested_crm.update(missing_crm)
        if missing_nav:
            extra = field_rows(self.nav_reader.by_ids(missing_nav), self.mapping, Side.NAV,
                               self.resolver)
            self.nav = unique_rows(pl.concat([self.nav, extra], how="diagonal_relaxed"))
        if missing_crm:
            extra = field_rows(self.crm_reader.by_ids(missing_crm), self.mapping, Side.CRM,
                               self.resolver)
            self.crm = unique_rows(pl.concat([self.crm, extra], how="diagonal_relaxed"))
        self.load_read()

    def reader(self, side: Side | str) -> SideSource:
        """Where ``side``'s rows come from."""
        return Side(side).pick(self.nav_reader, self.crm_reader)

    def _is_coupled(self, side: Side | str) -> pl.Expr:
        """Rows of ``side`` whose record is coupled."""
        return pl.col("_id").is_in(list(Side(side).pick(self.nav_to_crm, self.crm_to_nav)))

    def coupled(self, side: Side | str) -> pl.DataFrame:
        """The rows read on ``side`` whose record is coupled."""
        return Side(side).pick(self.nav, self.crm).filter(self._is_coupled(side))

    def uncoupled(self, side: Side | str) -> pl.DataFrame:
        """The rows read on ``side`` whose record is not coupled."""
        return Side(side).pick(self.nav, self.crm).filter(~self._is_coupled(side))

    def watermarks(self) -> dict[str, str]:
        """The new watermarks (none for a selection: it reads no changes)."""
        if self.selection is not None:
            return {}
        return {str(side): watermark(self.marks.get(side),
                                     side.pick(self.changed_nav, self.changed_crm),
                                     self.mapping, side, self.started)
                for side in Side}


def target_only(mapping: TableMapping, side: Side | str, first: bool) -> bool:
    """A ``create_only`` mapping never writes a coupled record again, so after the first
    sync (which reads everything, to match before creating) the changes of the side it only
    writes to are not needed: matching candidates are read by value."""
    writes_only_to = Side.NAV if mapping.direction == Direction.FROM_CRM else Side.CRM
    return (mapping.create_only and mapping.direction != "bidirectional" and not first
            and Side(side) is writes_only_to)


def open_snapshot(mapping: TableMapping, store: StateStore, resolver: Resolver,
                  readers: tuple[SideSource, SideSource], selection: Selection | None,
                  retry: bool, started: datetime) -> Snapshot:
    """The state store's view of the mapping: watermarks, retry pass, skips (couplings are
    looked up as the records in play become known: :meth:`Snapshot.load_couplings`)."""
    statuses = store.record_status_frame(mapping.name)
    retry_pass = statuses.filter(pl.col("state") != "skipped")
    skipped = statuses.filter(pl.col("state") == "skipped") if selection is None else \
        statuses.clear()
    return Snapshot(mapping, selection, started, resolver,
                    readers[0], readers[1], store.watermarks(mapping.name), store,
                    statuses, retry_pass if retry else retry_pass.clear(), skipped)


def read_snapshot(snap: Snapshot, store: StateStore, overlap: timedelta,
                  progress: Progress | None, cancel: CancelToken | None) -> Snapshot:
    """Read the changes (or the selection) and the retry pass of both sides."""
    mapping, selection = snap.mapping, snap.selection
    if selection is not None:
        snap.load_couplings(selection.nav_ids, selection.crm_ids)
        want_nav, want_crm = snap.partners(selection.nav_ids, selection.crm_ids)
    else:
        snap.changed_nav = _read_changes(snap, Side.NAV, overlap, progress, cancel)
        snap.changed_crm = _read_changes(snap, Side.CRM, overlap, progress, cancel)
        want_nav, want_crm = set(), set()
        if not snap.first:
            retry_nav, retry_crm = snap.retry_ids("to_crm"), snap.retry_ids("from_crm")
            snap.load_couplings(retry_nav, retry_crm)
            want_nav, want_crm = snap.partners(retry_nav, retry_crm)
    snap.nav = snap.frame(Side.NAV, snap.changed_nav)
    snap.crm = snap.frame(Side.CRM, snap.changed_crm)
    if mapping.nav.coupled_in is not None:
        snap.nav = snap.nav.filter(pl.col(SCOPE).is_in(
            coupled_in_scope(store, mapping.nav.coupled_in, snap.nav[SCOPE].to_list())))
    snap.read_missing(want_nav, want_crm)
    snap.both_sides = {*want_nav, *(snap.crm_to_nav[c] for c in want_crm
                                    if c in snap.crm_to_nav)}
    return snap


def coupled_in_scope(store: StateStore, mapping: str, ids: Iterable[str | None]) -> list[str]:
    """Which of ``ids`` are NAV records coupled in ``mapping`` (a ``coupled_in`` scope),
    asked for these ids only."""
    wanted = [i for i in dict.fromkeys(ids) if i]
    if not wanted:
        return []
    return store.couplings_frame(mapping, columns=["nav_id"], nav_ids=wanted)["nav_id"].to_list()


def _read_changes(snap: Snapshot, side: Side | str, overlap: timedelta,
                  progress: Progress | None, cancel: CancelToken | None) -> pl.DataFrame | None:
    """One side's changes since its watermark (everything on a first sync); None when the
    side's changes are not needed (:func:`target_only`)."""
    side = Side(side)
    stage = f"read {side}"
    emit(progress, ProgressEvent(snap.mapping.name, stage, 0))
    changed = None
    if not target_only(snap.mapping, side, snap.first):
        since = None if snap.first else parse_moment(snap.marks[side])
        changed = snap.reader(side).changed(since, overlap, lambda rows: emit(
            progress, ProgressEvent(snap.mapping.name, stage, rows)))
    check_cancelled(cancel, f"the {snap.mapping.name} preview")
    return changed
