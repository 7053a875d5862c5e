"""Preview: decide, per record of one mapping, what a sync would do, without writing anywhere.

One run of :meth:`Planner.plan`:

1. read each side's changes since its watermark (``ge`` with an overlap; everything on the
   first sync), plus the records in the retry pass (failed or conflicting, read by id on both
   sides) — or, for "synchronize now" and retries, only the selected records;
2. express both sides in the field namespace (``engine.sides``) and split coupled from
   uncoupled records; skipped records become ``skip`` rows;
3. coupled pairs go through the three-way diff against their base; a side that was not read is
   unchanged since the last sync and so equals the base (pairs without a base, in the retry
   pass or selected are read on both sides, and a side that is gone is a deletion conflict);
4. uncoupled records are matched against the other side's uncoupled records before anything is
   created (so a first sync of tables holding data on both sides never duplicates): matched
   pairs are diffed as never-synced pairs and coupled on apply, ambiguous ones fail, unmatched
   ones are created when the mapping allows it (always on a first sync or for a selection;
   afterwards only with ``only_coupled: false`` and ``create_when_no_match``);
5. values that cannot be written (a lookup to an uncoupled record, a code without an option)
   turn the record into ``fail`` with a message that says what to do.

New watermarks (the highest modified-on read, capped at the preview's start) travel in the plan
and are stored by apply.

Where the rows come from is a seam: by default the connector readers (:meth:`Planner.readers`),
or any :class:`~nav_crm_ops.engine.sides.SideSource` pair given as ``Planner(sources=...)``
(``engine.memory.MemorySides``: polars frames, so every decision is tested without HTTP).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import polars as pl

from ...connectors.factory import Connections
from ...store import StateStore
from ..collector import bulk_work
from ..freshness import with_couplings_seen
from ..mapping import MappingSet, TableMapping
from ..progress import CancelToken, Progress, ProgressEvent, check_cancelled, emit
from ..resolve import Resolver
from ..sides import (
    SideReader,
    SideSource,
    integration_user_id,
    known_integration_user,
    remember_integration_user,
)
from ..vocabulary import Side
from .checks import check_writes, created_once, with_notes
from .classify import classify_coupled, classify_uncoupled, record_rows
from .lines import plan_lines
from .pairs import diff_pairs
from .snapshot import (
    Selection,
    Snapshot,
    format_moment,
    open_snapshot,
    parse_moment,
    read_snapshot,
)

__all__ = ["MappingPlan", "Planner", "Selection", "SourceFactory", "format_moment",
           "parse_moment"]

SourceFactory = Callable[[TableMapping], tuple[SideSource, SideSource]]
"""The NAV and CRM sources of one mapping (``Planner(sources=...)``)."""


@dataclass(frozen=True)
class MappingPlan:
    records: pl.DataFrame
    field_changes: pl.DataFrame
    watermarks: dict[str, str] = field(default_factory=dict)


WHOAMI_TTL_S = 7 * 24 * 3600.0


class Planner:
    """Builds :class:`MappingPlan` values for the mappings of one workspace.

    ``sources`` replaces the connector readers as the place rows are read from (module
    docstring); ``connections`` then serve only what the mappings resolve through a service
    (lookups and references not in the state store's cache, document lines)."""

    def __init__(self, mappings: MappingSet, store: StateStore, connections: Connections, *,
                 overlap: timedelta = timedelta(seconds=30),
                 ignore_own_changes: bool = True,
                 sources: SourceFactory | None = None) -> None:
        self.mappings = mappings
        self.store = store
        self.connections = connections
        self.overlap = overlap
        self.ignore_own_changes = ignore_own_changes
        self._sources = sources

    def _identify(self) -> None:
        """Learn the integration's CRM user id (for ignoring its own changes) from the state
        store, or ask ``WhoAmI`` once and remember it there for a week. Given sources have no
        integration user: they decide themselves which changes they return."""
        if self._sources is not None or not self.ignore_own_changes:
            return
        client = self.connections.dataverse
        if known_integration_user(client):
            return
        scope = f"whoami:{client.http.base_url}"
        cached = self.store.cached_map(scope)
        if cached is not None and cached[1] < WHOAMI_TTL_S and cached[0].get("user"):
            remember_integration_user(client, uuid.UUID(str(cached[0]["user"])))
            return
        user = integration_user_id(client)
        if user is not None:
            self.store.put_cached_map(scope, {"user": str(user)})

    def readers(self, mapping: TableMapping) -> tuple[SideReader, SideReader]:
        """The connector readers of ``mapping``'s two sides (browsing and coupling use them
        directly, whatever the preview reads from)."""
        bc = self.connections.business_central_for(mapping.nav.api)
        return (SideReader(mapping, Side.NAV, bc),
                SideReader(mapping, Side.CRM, self.connections.dataverse,
                           ignore_own_changes=self.ignore_own_changes))

    def sources(self, mapping: TableMapping) -> tuple[SideSource, SideSource]:
        """Where the preview reads ``mapping``'s NAV and CRM rows: the sources given to the
        constructor, else the connector readers."""
        if self._sources is not None:
            return self._sources(mapping)
        return self.readers(mapping)

    def has_changes(self, mapping: TableMapping) -> bool:
        """Anything modified on either side since the watermarks (records waiting in the retry
        pass do not count: they are retried when the job runs anyway)."""
        marks = self.store.watermarks(mapping.name)
        if not all(marks.get(side) for side in Side):
            return True
        nav, crm = self.sources(mapping)
        return (nav.probe(parse_moment(marks[Side.NAV]))
                or crm.probe(parse_moment(marks[Side.CRM])))

    # -- the plan ------------------------------------------------------------------------------
    @bulk_work()
    def plan(self, mapping: TableMapping, selection: Selection | None = None, *,
             retry: bool = True, progress: Progress | None = None,
             cancel: CancelToken | None = None) -> MappingPlan:
        """The plan of one mapping (module docstring); ``retry=False`` leaves the retry pass
        out (a follow-up pass right after an apply must not count its failures twice).

        Phases: read the snapshot (``engine.sync.snapshot``), classify coupled pairs and uncoupled
        records (``engine.sync.classify``), diff the pairs (``engine.sync.pairs``), check what
        can be written (``engine.sync.checks``, ``engine.sync.lines``)."""
        started = datetime.now(UTC) - timedelta(seconds=1)
        self._identify()
        resolver = Resolver(self.mappings, self.store, self.connections)
        snap = open_snapshot(mapping, self.store, resolver, self.sources(mapping), selection,
                             retry, started)
        read_snapshot(snap, self.store, self.overlap, progress, cancel)
        classify_coupled(snap)
        matched_nav, matched_crm = classify_uncoupled(snap)
        check_cancelled(cancel, f"the {mapping.name} preview")
        emit(progress, ProgressEvent(mapping.name, "plan", 0,
                                     len(snap.diff_pairs) + matched_nav.height))
        diff_records, diff_changes = diff_pairs(snap, matched_nav, matched_crm)
        records = pl.concat([diff_records, record_rows(snap.record_rows),
                             *(r for r, _ in snap.insert_frames)], how="diagonal_relaxed")
        field_changes = pl.concat([diff_changes, *(c for _, c in snap.insert_frames)],
                                  how="diagonal_relaxed")
        records, field_changes = self._checked(snap, records, field_changes)
        return MappingPlan(records, field_changes, snap.watermarks())

    def _checked(self, snap: Snapshot, records: pl.DataFrame, field_changes: pl.DataFrame,
                 ) -> tuple[pl.DataFrame, pl.DataFrame]:
        """The last phase: what cannot be written fails, ``create_only`` and document lines,
        notes and the couplings the preview saw."""
        mapping = snap.mapping
        records = check_writes(mapping, records, field_changes, snap.resolver)
        if mapping.create_only:
            records = created_once(mapping, records)
        if mapping.lines is not None:
            records, field_changes = plan_lines(mapping, records, field_changes, snap.resolver,
                                                self.connections)
        records = with_couplings_seen(with_notes(records, snap.nav, snap.crm), snap.couplings)
        return records, field_changes
