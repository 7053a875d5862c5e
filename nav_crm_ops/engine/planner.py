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
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import polars as pl

from ..connectors.factory import Connections
from ..store import StateStore
from .diff import three_way_diff
from .freshness import with_couplings_seen
from .ids import crm_id_for
from .mapping import MappingSet, TableMapping
from .matching import match_records
from .plan import FIELD_CHANGE_SCHEMA, RECORD_SCHEMA, line_field, plan_rows_from_diff
from .progress import CancelToken, Progress, ProgressEvent, check_cancelled, emit
from .resolve import Resolver, is_unresolved
from .sides import (
    SideReader,
    empty_field_frame,
    field_frame,
    integration_user_id,
    known_integration_user,
    remember_integration_user,
)

__all__ = ["MappingPlan", "Planner", "Selection", "format_moment", "parse_moment"]


@dataclass(frozen=True)
class Selection:
    """Records chosen by a person (synchronize now, retry). ``direction`` forces the source
    side's values onto the other side for every field the mapping lets flow that way."""

    nav_ids: tuple[str, ...] = ()
    crm_ids: tuple[str, ...] = ()
    direction: Literal["to_crm", "from_crm"] | None = None


@dataclass(frozen=True)
class MappingPlan:
    records: pl.DataFrame
    field_changes: pl.DataFrame
    watermarks: dict[str, str] = field(default_factory=dict)


def _version(column: str) -> pl.Expr:
    """A version column with empty text as null: an empty version must never be sent, because
    ``If-Match`` falls back to ``*`` (overwrite whatever is there) without one."""
    return pl.when(pl.col(column) == "").then(None).otherwise(pl.col(column))


def format_moment(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def parse_moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def _record_rows(rows: list[dict[str, Any]]) -> pl.DataFrame:
    schema = {k: (pl.Utf8() if isinstance(v, pl.Enum) else v) for k, v in RECORD_SCHEMA.items()}
    return pl.DataFrame(rows, schema=schema)


def _change_rows(rows: list[dict[str, Any]]) -> pl.DataFrame:
    schema = {k: (pl.Utf8() if isinstance(v, pl.Enum) else v)
              for k, v in FIELD_CHANGE_SCHEMA.items()}
    return pl.DataFrame(rows, schema=schema)


def _unique(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.unique(subset="_id", keep="last", maintain_order=True)


WHOAMI_TTL_S = 7 * 24 * 3600.0
SCOPE = "__scope"
BC_BLANK_DATE = "0001-01-01"
"""Business Central's empty date (dates are never null in its API)."""
NOTES = "__notes"
_INSERTS = ("insert_crm", "insert_nav")
_UPDATES = ("update_crm", "update_nav", "update_both", "conflict")


def _with_extras(frame: pl.DataFrame, raw: pl.DataFrame | None, mapping: TableMapping,
                 side: Literal["nav", "crm"]) -> pl.DataFrame:
    """Columns the plan needs besides the fields: the id that scopes ``coupled_in`` and the
    notes on values the mapping cannot carry (``not_synchronized``; empty, zero and BC's blank
    date carry nothing worth a note)."""
    height = frame.height
    scope_column = mapping.nav.coupled_in_field if side == "nav" else None
    if raw is not None and scope_column and scope_column in raw.columns:
        scope = raw.get_column(scope_column).cast(pl.Utf8).str.to_lowercase().alias(SCOPE)
    else:
        scope = frame.get_column("_id").alias(SCOPE)
    notes: list[pl.Expr] = []
    if raw is not None:
        for item in mapping.not_synchronized:
            if item.side == side and item.column in raw.columns:
                value = pl.col(item.column).cast(pl.Utf8)
                blank = value.is_null() | value.is_in(["", "0", "0.0"]) | value.str.starts_with(
                    BC_BLANK_DATE)
                notes.append(pl.when(~blank)
                             .then(pl.concat_str([pl.lit(f"{item.note} ({item.column} "),
                                                  value, pl.lit(")")]))
                             .otherwise(pl.lit(None, pl.Utf8)))
    if raw is not None and notes and height:
        note = raw.select(pl.concat_str(notes, separator="; ", ignore_nulls=True)
                          .alias(NOTES)).get_column(NOTES)
        note = note.replace("", None)
    else:
        note = pl.Series(NOTES, [None] * height, dtype=pl.Utf8)
    return frame.with_columns(scope, note)


def _fields(raw: pl.DataFrame, mapping: TableMapping, side: Literal["nav", "crm"],
            resolver: Resolver) -> pl.DataFrame:
    return _with_extras(field_frame(raw, mapping, side, resolver), raw, mapping, side)


class Planner:
    """Builds :class:`MappingPlan` values for the mappings of one workspace."""

    def __init__(self, mappings: MappingSet, store: StateStore, connections: Connections, *,
                 overlap: timedelta = timedelta(seconds=30),
                 ignore_own_changes: bool = True) -> None:
        self.mappings = mappings
        self.store = store
        self.connections = connections
        self.overlap = overlap
        self.ignore_own_changes = ignore_own_changes

    def _identify(self) -> None:
        """Learn the integration's CRM user id (for ignoring its own changes) from the state
        store, or ask ``WhoAmI`` once and remember it there for a week."""
        client = self.connections.dataverse
        if not self.ignore_own_changes or known_integration_user(client):
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
        bc = self.connections.business_central_for(mapping.nav.api)
        return (SideReader(mapping, "nav", bc),
                SideReader(mapping, "crm", self.connections.dataverse,
                           ignore_own_changes=self.ignore_own_changes))

    def has_changes(self, mapping: TableMapping) -> bool:
        """Anything modified on either side since the watermarks (records waiting in the retry
        pass do not count: they are retried when the job runs anyway)."""
        marks = self.store.watermarks(mapping.name)
        if not (marks.get("nav") and marks.get("crm")):
            return True
        nav, crm = self.readers(mapping)
        return (nav.probe(parse_moment(marks["nav"]))
                or crm.probe(parse_moment(marks["crm"])))

    # -- the plan ------------------------------------------------------------------------------
    def plan(self, mapping: TableMapping, selection: Selection | None = None, *,
             retry: bool = True, progress: Progress | None = None,
             cancel: CancelToken | None = None) -> MappingPlan:
        """The plan of one mapping (module docstring); ``retry=False`` leaves the retry pass
        out (a follow-up pass right after an apply must not count its failures twice)."""
        started = datetime.now(UTC) - timedelta(seconds=1)
        self._identify()
        resolver = Resolver(self.mappings, self.store, self.connections)
        nav_reader, crm_reader = self.readers(mapping)
        marks = self.store.watermarks(mapping.name)
        first = selection is None and not (marks.get("nav") and marks.get("crm"))
        couplings = self.store.couplings_frame(mapping.name)
        nav_to_crm = dict(zip(couplings["nav_id"].to_list(), couplings["crm_id"].to_list(),
                              strict=True))
        crm_to_nav = {c: n for n, c in nav_to_crm.items()}
        statuses = self.store.record_status_frame(mapping.name)
        retry_pass = statuses.filter(pl.col("state") != "skipped")
        if not retry:
            retry_pass = retry_pass.clear()
        skipped = statuses.filter(pl.col("state") == "skipped") if selection is None else \
            statuses.clear()

        def ids(frame: pl.DataFrame, direction: str) -> list[str]:
            return frame.filter(pl.col("direction") == direction)["source_id"].to_list()

        # 1. read
        requested_nav: set[str] = set()
        requested_crm: set[str] = set()
        if selection is not None:
            want_nav = {*selection.nav_ids, *(crm_to_nav[c] for c in selection.crm_ids
                                              if c in crm_to_nav)}
            want_crm = {*selection.crm_ids, *(nav_to_crm[n] for n in selection.nav_ids
                                              if n in nav_to_crm)}
            changed_nav = changed_crm = None
        else:
            emit(progress, ProgressEvent(mapping.name, "read nav", 0))
            changed_nav = None if self._target_only(mapping, "nav", first) else \
                nav_reader.changed(None if first else parse_moment(marks["nav"]), self.overlap)
            check_cancelled(cancel, f"the {mapping.name} preview")
            emit(progress, ProgressEvent(mapping.name, "read crm", 0))
            changed_crm = None if self._target_only(mapping, "crm", first) else \
                crm_reader.changed(None if first else parse_moment(marks["crm"]), self.overlap)
            check_cancelled(cancel, f"the {mapping.name} preview")
            retry_nav, retry_crm = ids(retry_pass, "to_crm"), ids(retry_pass, "from_crm")
            want_nav = set() if first else {*retry_nav, *(crm_to_nav[c] for c in retry_crm
                                                          if c in crm_to_nav)}
            want_crm = set() if first else {*retry_crm, *(nav_to_crm[n] for n in retry_nav
                                                          if n in nav_to_crm)}
        nav = self._frame(mapping, "nav", changed_nav, resolver)
        crm = self._frame(mapping, "crm", changed_crm, resolver)
        if mapping.nav.coupled_in is not None:
            scope = self.store.couplings_frame(mapping.nav.coupled_in,
                                               columns=["nav_id"])["nav_id"].to_list()
            nav = nav.filter(pl.col(SCOPE).is_in(scope))
        nav, crm = self._read_missing(mapping, nav, crm, want_nav, want_crm, resolver,
                                      requested_nav, requested_crm)
        both_sides = {*want_nav, *(crm_to_nav[c] for c in want_crm if c in crm_to_nav)}

        # 2. coupled pairs, skips, deletions
        skipped_pairs = {*ids(skipped, "to_crm"), *(crm_to_nav.get(c, c)
                                                    for c in ids(skipped, "from_crm"))}
        coupled_nav = nav.filter(pl.col("_id").is_in(list(nav_to_crm)))
        coupled_crm = crm.filter(pl.col("_id").is_in(list(crm_to_nav)))
        pairs = set(coupled_nav["_id"].to_list()) | {crm_to_nav[c] for c in coupled_crm["_id"]}
        base_missing = set(couplings.filter(pl.col("base_values").is_null())["nav_id"].to_list())
        both_sides |= pairs & base_missing
        if selection is not None and selection.direction is not None:
            both_sides |= pairs
        nav, crm = self._read_missing(
            mapping, nav, crm,
            {p for p in both_sides if p in nav_to_crm} - set(nav["_id"].to_list()),
            {nav_to_crm[p] for p in both_sides if p in nav_to_crm} - set(crm["_id"].to_list()),
            resolver, requested_nav, requested_crm)
        coupled_nav = nav.filter(pl.col("_id").is_in(list(nav_to_crm)))
        coupled_crm = crm.filter(pl.col("_id").is_in(list(crm_to_nav)))
        pairs = (set(coupled_nav["_id"].to_list()) | {crm_to_nav[c] for c in coupled_crm["_id"]}
                 | {p for p in both_sides if p in nav_to_crm})
        present_nav, present_crm = set(nav["_id"].to_list()), set(crm["_id"].to_list())
        deleted: dict[str, str] = {}
        for pair in pairs:
            if pair in requested_nav and pair not in present_nav:
                deleted[pair] = "nav"
            elif nav_to_crm[pair] in requested_crm and nav_to_crm[pair] not in present_crm:
                deleted[pair] = "crm"
        record_rows: list[dict[str, Any]] = []
        insert_frames: list[tuple[pl.DataFrame, pl.DataFrame]] = []
        for pair in sorted(pairs & skipped_pairs):
            reason = statuses.filter(pl.col("source_id").is_in([pair, nav_to_crm[pair]]))
            record_rows.append(self._row(mapping, pair, pair, nav_to_crm[pair], "skip",
                                         skip_reason="skipped_coupling",
                                         message=reason["message"].item(0) if reason.height
                                         else "skipped"))
        for pair, side in sorted(deleted.items()):
            if pair not in skipped_pairs:
                rows, restores = self._deletion(mapping, pair, nav_to_crm[pair], side, nav, crm)
                record_rows += rows
                insert_frames += restores
        diff_pairs = pairs - skipped_pairs - set(deleted)

        # 3. matching and creates for uncoupled records
        uncoupled_nav = nav.filter(~pl.col("_id").is_in(list(nav_to_crm)))
        uncoupled_crm = crm.filter(~pl.col("_id").is_in(list(crm_to_nav)))
        skipped_sources = {*ids(skipped, "to_crm"), *ids(skipped, "from_crm")}
        for frame, side in ((uncoupled_nav, "nav"), (uncoupled_crm, "crm")):
            for record_id in set(frame["_id"].to_list()) & skipped_sources:
                reason = statuses.filter(pl.col("source_id") == record_id)
                record_rows.append(self._row(
                    mapping, record_id, record_id if side == "nav" else None,
                    record_id if side == "crm" else None, "skip",
                    skip_reason="skipped_coupling", message=reason["message"].item(0)))
        uncoupled_nav = uncoupled_nav.filter(~pl.col("_id").is_in(list(skipped_sources)))
        uncoupled_crm = uncoupled_crm.filter(~pl.col("_id").is_in(list(skipped_sources)))
        matched_nav, matched_crm, rows, inserts = self._uncoupled(
            mapping, uncoupled_nav, uncoupled_crm, first=first, selection=selection,
            nav_reader=nav_reader, crm_reader=crm_reader, resolver=resolver,
            coupled_nav_ids=set(nav_to_crm), coupled_crm_ids=set(crm_to_nav),
            retrying=set(retry_pass["source_id"].to_list()))
        record_rows += rows
        insert_frames += inserts

        # 4. three-way diff of coupled and newly matched pairs
        check_cancelled(cancel, f"the {mapping.name} preview")
        emit(progress, ProgressEvent(mapping.name, "plan", 0, len(diff_pairs) + matched_nav.height))
        diff_records, diff_changes = self._diff(mapping, couplings, coupled_nav, coupled_crm,
                                                crm_to_nav, diff_pairs, matched_nav, matched_crm,
                                                selection)
        records = pl.concat([diff_records, _record_rows(record_rows),
                             *(r for r, _ in insert_frames)], how="diagonal_relaxed")
        field_changes = pl.concat([diff_changes, *(c for _, c in insert_frames)],
                                  how="diagonal_relaxed")
        records = self._check_writes(mapping, records, field_changes, resolver)
        if mapping.create_only:
            records = self._created_once(mapping, records)
        if mapping.lines is not None:
            records, field_changes = self._lines(mapping, records, field_changes, resolver)
        records = with_couplings_seen(self._notes(records, nav, crm), couplings)
        watermarks = {} if selection is not None else {
            "nav": self._watermark(marks.get("nav"), changed_nav, mapping, "nav", started),
            "crm": self._watermark(marks.get("crm"), changed_crm, mapping, "crm", started),
        }
        return MappingPlan(records, field_changes, watermarks)

    # -- steps ---------------------------------------------------------------------------------
    @staticmethod
    def _target_only(mapping: TableMapping, side: Literal["nav", "crm"], first: bool) -> bool:
        """A ``create_only`` mapping never writes a coupled record again, so after the first
        sync (which reads everything, to match before creating) the changes of the side it only
        writes to are not needed: matching candidates are read by value."""
        writes_only_to = "nav" if mapping.direction == "from_crm" else "crm"
        return (mapping.create_only and mapping.direction != "bidirectional" and not first
                and side == writes_only_to)

    def _frame(self, mapping: TableMapping, side: Literal["nav", "crm"],
               raw: pl.DataFrame | None, resolver: Resolver) -> pl.DataFrame:
        if raw is None:
            return _with_extras(empty_field_frame(mapping), None, mapping, side)
        return _unique(_fields(raw, mapping, side, resolver))

    def _read_missing(self, mapping: TableMapping, nav: pl.DataFrame, crm: pl.DataFrame,
                      want_nav: Iterable[str], want_crm: Iterable[str], resolver: Resolver,
                      requested_nav: set[str], requested_crm: set[str],
                      ) -> tuple[pl.DataFrame, pl.DataFrame]:
        nav_reader, crm_reader = self.readers(mapping)
        missing_nav = sorted(set(want_nav) - set(nav["_id"].to_list()) - requested_nav)
        missing_crm = sorted(set(want_crm) - set(crm["_id"].to_list()) - requested_crm)
        requested_nav.update(missing_nav)
        requested_crm.update(missing_crm)
        if missing_nav:
            extra = _fields(nav_reader.by_ids(missing_nav), mapping, "nav", resolver)
            nav = _unique(pl.concat([nav, extra], how="diagonal_relaxed"))
        if missing_crm:
            extra = _fields(crm_reader.by_ids(missing_crm), mapping, "crm", resolver)
            crm = _unique(pl.concat([crm, extra], how="diagonal_relaxed"))
        return nav, crm

    @staticmethod
    def _row(mapping: TableMapping, record_id: str, nav_id: str | None, crm_id: str | None,
             action: str, **extra: Any) -> dict[str, Any]:
        return {"mapping": mapping.name, "record_id": record_id, "pair_id": nav_id,
                "nav_id": nav_id, "crm_id": crm_id, "action": action, **extra}

    def _insert_frames(self, mapping: TableMapping, frame: pl.DataFrame,
                       target: Literal["crm", "nav"], *, message: str | None = None,
                       salt: str = "") -> tuple[pl.DataFrame, pl.DataFrame]:
        """Plan rows for creating every record of ``frame`` on ``target`` (vectorized: a first
        sync may create hundreds of thousands); the field changes are the values the created
        record receives (what the preview shows). ``salt`` gives a restored CRM record a new
        deterministic id."""
        source = "nav" if target == "crm" else "crm"
        templates = mapping.templates.crm if target == "crm" else mapping.templates.nav
        if message is not None:
            note = pl.Series("message", [message] * frame.height, dtype=pl.Utf8)
        elif any(t.filter for t in templates):
            notes = [self._insert_note(mapping.template_for(target, row))
                     for row in frame.iter_rows(named=True)]
            note = pl.Series("message", notes, dtype=pl.Utf8)
        else:
            note = pl.Series("message", [self._insert_note(mapping.template_for(target, {}))]
                             * frame.height, dtype=pl.Utf8)
        ids = frame["_id"]
        if target == "crm":
            crm_ids = pl.Series("crm_id", [crm_id_for(mapping.name, i, salt)
                                           for i in ids.to_list()], dtype=pl.Utf8)
            records = frame.select(
                pl.lit(mapping.name).alias("mapping"), pl.col("_id").alias("record_id"),
                pl.col("_id").alias("pair_id"), pl.col("_id").alias("nav_id"),
                crm_ids, pl.lit("insert_crm").alias("action"),
                pl.col("_version").alias("nav_version"), pl.col("_key").alias("nav_key"), note)
        else:
            records = frame.select(
                pl.lit(mapping.name).alias("mapping"), pl.col("_id").alias("record_id"),
                pl.lit(None, pl.Utf8).alias("pair_id"), pl.lit(None, pl.Utf8).alias("nav_id"),
                pl.col("_id").alias("crm_id"), pl.lit("insert_nav").alias("action"),
                pl.col("_version").alias("crm_version"), pl.col("_key").alias("crm_key"), note)
        names = [f.name for f in mapping.enabled_fields()
                 if (f.writes_to_crm if target == "crm" else f.writes_to_nav)]
        if not names:
            return records, _change_rows([])
        long = frame.select("_id", *[pl.col(n).cast(pl.Utf8) for n in names]).unpivot(
            index="_id", variable_name="field", value_name="value").filter(
            pl.col("value").is_not_null() & (pl.col("value") != ""))
        changes = long.select(
            pl.lit(mapping.name).alias("mapping"), pl.col("_id").alias("record_id"), "field",
            pl.lit(None, pl.Utf8).alias("base_value"), pl.col("value").alias(f"{source}_value"),
            pl.lit(source).alias("changed_side"), pl.lit(target).alias("target"),
            pl.col("value").alias("new_value"), pl.lit(False).alias("conflict"),
            pl.lit("none").alias("resolution"))
        return records, changes

    @staticmethod
    def _insert_note(template: Any) -> str:
        return "no match: create" + (f" (template {template.name})" if template else "")

    def _deletion(self, mapping: TableMapping, pair: str, crm_id: str, gone: str,
                  nav: pl.DataFrame, crm: pl.DataFrame,
                  ) -> tuple[list[dict[str, Any]], list[tuple[pl.DataFrame, pl.DataFrame]]]:
        """A deletion conflict row, or (policy ``restore``) the plan rows re-creating the
        record that is gone from the side that still has it."""
        where = "BC" if gone == "nav" else "CRM"
        policy = mapping.deletion_conflict
        if policy == "restore":
            present = crm if gone == "nav" else nav
            row = present.filter(pl.col("_id") == (crm_id if gone == "nav" else pair))
            if row.height:
                target: Literal["crm", "nav"] = "nav" if gone == "nav" else "crm"
                note = f"the {where} record was deleted: restore it" + (
                    " (the old coupling is replaced)" if target == "nav" else "")
                return [], [self._insert_frames(mapping, row, target, message=note,
                                                salt=f"restore:{crm_id}")]
        message = (f"the coupled {where} record no longer exists (deleted or out of reach): "
                   + ("the coupling will be removed" if policy == "remove_coupling" else
                      "uncouple it with `nav-crm-ops uncouple`, or set deletion_conflict to "
                      "remove_coupling or restore in the mapping"))
        return [self._row(mapping, pair, pair, crm_id, "deletion_conflict", message=message)], []

    def _uncoupled(self, mapping: TableMapping, nav: pl.DataFrame, crm: pl.DataFrame, *,
                   first: bool, selection: Selection | None, nav_reader: SideReader,
                   crm_reader: SideReader, resolver: Resolver, coupled_nav_ids: set[str],
                   coupled_crm_ids: set[str], retrying: set[str],
                   ) -> tuple[pl.DataFrame, pl.DataFrame, list[dict[str, Any]],
                              list[tuple[pl.DataFrame, pl.DataFrame]]]:
        """Match uncoupled records, then decide insert / skip / fail for the rest. Uncoupled
        records act (match, create) on a first sync, for a selection, in mappings that are not
        only-coupled, and when they are in the retry pass (they were meant to be created)."""
        to_crm = "to_crm" in mapping.directions
        from_crm = "from_crm" in mapping.directions
        sources_nav = nav if to_crm else nav.clear()
        sources_crm = crm if from_crm else crm.clear()
        rows: list[dict[str, Any]] = []
        if not (selection is not None or first or not mapping.only_coupled):
            for frame, side in ((sources_nav, "nav"), (sources_crm, "crm")):
                waiting = frame.filter(~pl.col("_id").is_in(list(retrying)))
                for record_id, key in waiting.select("_id", "_key").iter_rows():
                    rows.append(self._row(
                        mapping, record_id, record_id if side == "nav" else None,
                        record_id if side == "crm" else None, "skip", skip_reason="only_coupled",
                        **{f"{side}_key": key},
                        message="not coupled, and the mapping synchronizes only coupled "
                                "records: couple it, or use `nav-crm-ops match --create`"))
            sources_nav = sources_nav.filter(pl.col("_id").is_in(list(retrying)))
            sources_crm = sources_crm.filter(pl.col("_id").is_in(list(retrying)))
            nav, crm = sources_nav, sources_crm
        candidates_nav, candidates_crm = nav, crm
        if not first:
            candidates_crm = self._candidates(mapping, sources_nav, crm, crm_reader, resolver,
                                              coupled_crm_ids)
            candidates_nav = self._candidates(mapping, sources_crm, nav, nav_reader, resolver,
                                              coupled_nav_ids)
        result = match_records(mapping, candidates_nav, candidates_crm)
        source_ids = {("nav", i) for i in sources_nav["_id"].to_list()} | {
            ("crm", i) for i in sources_crm["_id"].to_list()}
        matched = result.filter(
            (pl.col("status") == "matched") & (pl.col("source_side") == "nav")
            & (pl.col("source_id").is_in(sources_nav["_id"].to_list())
               | pl.col("other_id").is_in(sources_crm["_id"].to_list())))
        pairs = matched.select(pl.col("source_id").alias("_id"),
                               pl.col("other_id").alias("__crm_id"), "message")
        matched_nav = candidates_nav.join(pairs, on="_id", how="inner")
        matched_crm = candidates_crm.join(
            pairs.select(pl.col("__crm_id").alias("_id"), pl.col("_id").alias("pair_id")),
            on="_id", how="inner")
        # A record waiting uncoupled that matches one in the retry pass is no skip: it is the
        # partner found (e.g. created by a write whose reply was lost), coupled now.
        paired = {*pairs["_id"].to_list(), *pairs["__crm_id"].to_list()}
        rows = [row for row in rows if row["record_id"] not in paired]
        create = selection is not None or first or mapping.create_when_no_match or (
            mapping.only_coupled and bool(retrying))
        unmatched: dict[str, list[str]] = {"nav": [], "crm": []}
        for entry in result.iter_rows(named=True):
            side, record_id = entry["source_side"], entry["source_id"]
            if (side, record_id) not in source_ids or entry["status"] == "matched":
                continue
            key = {f"{side}_key": entry["source_key"]}
            if entry["status"] == "ambiguous":
                rows.append(self._row(mapping, record_id, record_id if side == "nav" else None,
                                      record_id if side == "crm" else None, "fail",
                                      message=entry["message"], **key))
            elif not create:
                rows.append(self._row(mapping, record_id, record_id if side == "nav" else None,
                                      record_id if side == "crm" else None, "skip",
                                      skip_reason="only_coupled", **key,
                                      message="no match on the other side and "
                                              "create_when_no_match is off: couple it by hand"))
            else:
                unmatched[side].append(record_id)
        inserts = [self._insert_frames(mapping, frame.filter(pl.col("_id").is_in(unmatched[side])),
                                       "crm" if side == "nav" else "nav")
                   for frame, side in ((sources_nav, "nav"), (sources_crm, "crm"))
                   if unmatched[side]]
        return matched_nav, matched_crm, rows, inserts

    def _candidates(self, mapping: TableMapping, sources: pl.DataFrame, present: pl.DataFrame,
                    reader: SideReader, resolver: Resolver, coupled: set[str]) -> pl.DataFrame:
        """Uncoupled records of the other side that could match ``sources`` (read by value)."""
        frames = [present]
        if sources.height:
            for _, fields in mapping.match_groups():
                fld = fields[0]
                if fld.lookup is not None or fld.options is not None or fld.nav_reference:
                    continue
                column = fld.nav if reader.side == "nav" else fld.crm
                values = [v for v in sources[fld.name].drop_nulls().unique().to_list() if v]
                if values:
                    raw = reader.by_values(column, values)
                    frames.append(_fields(raw, mapping, reader.side, resolver))
        found = _unique(pl.concat(frames, how="diagonal_relaxed"))
        return found.filter(~pl.col("_id").is_in(list(coupled)))

    def _diff(self, mapping: TableMapping, couplings: pl.DataFrame, coupled_nav: pl.DataFrame,
              coupled_crm: pl.DataFrame, crm_to_nav: dict[str, str], pairs: set[str],
              matched_nav: pl.DataFrame, matched_crm: pl.DataFrame,
              selection: Selection | None) -> tuple[pl.DataFrame, pl.DataFrame]:
        fields = mapping.diff_fields()
        names = [f.name for f in fields]
        wanted = list(pairs)
        nav_side = pl.concat([
            coupled_nav.filter(pl.col("_id").is_in(wanted)).with_columns(
                pl.col("_id").alias("pair_id"), pl.lit(None, pl.Utf8).alias("message"),
                pl.lit(None, pl.Utf8).alias("__crm_id")),
            matched_nav.with_columns(pl.col("_id").alias("pair_id")),
        ], how="diagonal_relaxed")
        crm_side = pl.concat([
            coupled_crm.with_columns(pl.col("_id").replace_strict(
                crm_to_nav, default=None, return_dtype=pl.Utf8).alias("pair_id"))
            .filter(pl.col("pair_id").is_in(wanted)),
            matched_crm,
        ], how="diagonal_relaxed")
        pair_couplings = couplings.filter(pl.col("nav_id").is_in(wanted))
        if selection is not None and selection.direction is not None:
            destination = crm_side if selection.direction == "to_crm" else nav_side
            base = destination.select("pair_id", *names)
        elif pair_couplings.filter(pl.col("base_values").is_not_null()).height:
            decoded = pair_couplings.filter(pl.col("base_values").is_not_null()).select(
                pl.col("nav_id").alias("pair_id"),
                pl.col("base_values").str.json_decode(
                    pl.Struct({n: pl.Utf8 for n in names})).alias("__base"))
            base = decoded.unnest("__base")
        else:
            base = pl.DataFrame(schema={"pair_id": pl.Utf8, **dict.fromkeys(names, pl.Utf8)})
        diff = three_way_diff(nav_side.select("pair_id", *names), crm_side.select("pair_id", *names),
                              base, fields, conflict_policy=mapping.update_conflict,
                              mapping_direction=mapping.direction)
        ids_frame = pl.concat([
            pair_couplings.select(pl.col("nav_id").alias("pair_id"), "nav_id", "crm_id",
                                  pl.col("nav_etag").alias("__nav_etag"),
                                  pl.col("crm_etag").alias("__crm_etag"),
                                  pl.lit(None, pl.Utf8).alias("__note")),
            nav_side.filter(~pl.col("pair_id").is_in(pair_couplings["nav_id"].to_list())).select(
                "pair_id", pl.col("_id").alias("nav_id"), pl.col("__crm_id").alias("crm_id"),
                pl.lit(None, pl.Utf8).alias("__nav_etag"), pl.lit(None, pl.Utf8).alias("__crm_etag"),
                pl.col("message").alias("__note")),
        ], how="diagonal_relaxed")
        versions = ids_frame.join(
            nav_side.select("pair_id", pl.col("_version").alias("__nav_read")), on="pair_id",
            how="left").join(
            crm_side.select("pair_id", pl.col("_version").alias("__crm_read")), on="pair_id",
            how="left").select(
            "pair_id", "nav_id", "crm_id",
            pl.coalesce(*(_version(c) for c in ("__nav_read", "__nav_etag"))).alias("nav_version"),
            pl.coalesce(*(_version(c) for c in ("__crm_read", "__crm_etag"))).alias("crm_version"),
            "__note")
        records, changes = plan_rows_from_diff(mapping.name, diff, versions.drop("__note"))
        keys = pl.concat([
            pair_couplings.select("pair_id" if "pair_id" in pair_couplings.columns
                                  else pl.col("nav_id").alias("pair_id"), "nav_key", "crm_key"),
            nav_side.select("pair_id", pl.col("_key").alias("nav_key"),
                            pl.lit(None, pl.Utf8).alias("crm_key")),
            crm_side.select("pair_id", pl.lit(None, pl.Utf8).alias("nav_key"),
                            pl.col("_key").alias("crm_key")),
        ], how="vertical_relaxed").group_by("pair_id").agg(
            pl.col("nav_key").drop_nulls().last(), pl.col("crm_key").drop_nulls().last())
        records = records.join(keys.rename({"pair_id": "record_id"}), on="record_id", how="left")
        notes = versions.select("pair_id", "__note").filter(pl.col("__note").is_not_null())
        records = records.join(notes.rename({"pair_id": "record_id"}), on="record_id",
                               how="left").with_columns(
            pl.when(pl.col("__note").is_not_null())
            .then(pl.concat_str([pl.lit("new coupling: "), pl.col("__note"),
                                 pl.when(pl.col("message").is_not_null())
                                 .then(pl.lit("; ") + pl.col("message")).otherwise(pl.lit(""))]))
            .otherwise(pl.col("message")).alias("message")).drop("__note")
        return records.with_columns(pl.col("action").cast(pl.Utf8)), changes.with_columns(
            pl.col("changed_side").cast(pl.Utf8), pl.col("target").cast(pl.Utf8),
            pl.col("resolution").cast(pl.Utf8))

    def _check_writes(self, mapping: TableMapping, records: pl.DataFrame,
                      changes: pl.DataFrame, resolver: Resolver) -> pl.DataFrame:
        """Turn records whose values cannot be written into ``fail`` with the reason."""
        problems: dict[str, list[str]] = {}
        writing = changes.filter(pl.col("target").is_in(["crm", "nav"]))
        for fld in mapping.enabled_fields():
            if fld.lookup is None and fld.options is None and fld.nav_reference is None:
                continue
            rows = writing.filter(pl.col("field") == fld.name)
            if rows.height == 0:
                continue
            to_crm = rows.filter(pl.col("target") == "crm")
            if fld.lookup is not None and fld.clear_on_failed_lookup:
                continue
            if fld.lookup is not None and to_crm.height:
                resolved = resolver.lookup_nav_to_crm(fld, to_crm["new_value"].drop_nulls())
                for record_id, value in to_crm.select("record_id", "new_value").iter_rows():
                    if value and value not in resolved:
                        problems.setdefault(record_id, []).append(
                            resolver.lookup_failure(fld, value, to="crm"))
            if fld.options is not None and to_crm.height:
                known, _ = resolver.option_maps(mapping.name, fld)
                for record_id, value in to_crm.select("record_id", "new_value").iter_rows():
                    if value and value not in known and fld.options.on_missing == "record":
                        problems.setdefault(record_id, []).append(
                            f"{fld.nav} {value!r} has no CRM option in {fld.crm}: add "
                            f"{{nav: {value}, crm: <value>}} to the options of field {fld.name} "
                            f"in mapping {mapping.name}, or set on_missing: create")
            for record_id, value in rows.filter(pl.col("target") == "nav").select(
                    "record_id", "new_value").iter_rows():
                if not value:
                    continue
                if is_unresolved(value):
                    problems.setdefault(record_id, []).append(
                        resolver.lookup_failure(fld, value, to="nav") if fld.lookup is not None
                        else f"{fld.crm}: CRM {value.strip('<>')} has no BC code: add it to the "
                             f"options of field {fld.name} in mapping {mapping.name}")
                elif (fld.lookup is not None and fld.lookup.via is not None
                      and resolver.key_to_via(fld, value) is None):
                    problems.setdefault(record_id, []).append(
                        resolver.lookup_failure(fld, value, to="nav"))
                elif fld.nav_reference is not None and resolver.reference_id(fld, value) is None:
                    problems.setdefault(record_id, []).append(
                        f"{fld.nav}: BC has no {fld.nav_reference.entity} with code {value!r}: "
                        "create it in BC or change the value in CRM")
        if not problems:
            return records
        messages = pl.DataFrame({"record_id": list(problems),
                                 "__problem": ["; ".join(v) for v in problems.values()]})
        return records.join(messages, on="record_id", how="left").with_columns(
            pl.when(pl.col("__problem").is_not_null() & pl.col("action").is_in(
                ["insert_crm", "insert_nav", "update_crm", "update_nav", "update_both"]))
            .then(pl.lit("fail")).otherwise(pl.col("action")).alias("action"),
            pl.when(pl.col("__problem").is_not_null() & pl.col("action").is_in(
                ["insert_crm", "insert_nav", "update_crm", "update_nav", "update_both"]))
            .then(pl.col("__problem")).otherwise(pl.col("message")).alias("message"),
        ).with_columns(
            pl.when(pl.col("action") == "fail").then(pl.lit("none"))
            .otherwise(pl.col("direction")).alias("direction")).drop("__problem")

    @staticmethod
    def _created_once(mapping: TableMapping, records: pl.DataFrame) -> pl.DataFrame:
        """``create_only`` mappings: a coupled record is never written again; its changes and
        a missing partner are reported instead (the follow-up step handles posted and deleted
        orders)."""
        action = pl.col("action").cast(pl.Utf8)
        touched = action.is_in([*_UPDATES, "deletion_conflict"])
        note = pl.lit(f"{mapping.name} writes a record once, when it creates it: this change "
                      "is not synchronized (change the other side by hand if it matters)")
        gone = pl.lit(f"the other side's record no longer exists: {mapping.name}'s follow-up "
                      "step settles it (posted or deleted)")
        return records.with_columns(
            pl.when(touched).then(pl.lit("skip")).otherwise(action).alias("action"),
            pl.when(touched).then(pl.lit("create_only"))
            .otherwise(pl.col("skip_reason").cast(pl.Utf8)).alias("skip_reason"),
            pl.when(action == "deletion_conflict").then(gone)
            .when(touched).then(note).otherwise(pl.col("message")).alias("message"),
            pl.when(touched).then(pl.lit("none"))
            .otherwise(pl.col("direction").cast(pl.Utf8)).alias("direction"),
        )

    @staticmethod
    def _notes(records: pl.DataFrame, nav: pl.DataFrame, crm: pl.DataFrame) -> pl.DataFrame:
        """Append the ``not_synchronized`` notes of each record's source to its message."""
        found = [frame.filter(pl.col(NOTES).is_not_null()).select("_id", NOTES)
                 for frame in (nav, crm) if NOTES in frame.columns]
        notes = pl.concat(found) if found else pl.DataFrame()
        if notes.height == 0 or records.height == 0:
            return records
        notes = notes.unique(subset="_id", keep="first")
        action = pl.col("action").cast(pl.Utf8)
        joined = records.join(notes.rename({"_id": "record_id"}), on="record_id", how="left")
        return joined.with_columns(
            pl.when(pl.col(NOTES).is_not_null() & action.is_in([*_INSERTS, *_UPDATES]))
            .then(pl.concat_str([pl.col("message"), pl.col(NOTES)], separator="; ",
                                ignore_nulls=True))
            .otherwise(pl.col("message")).alias("message")).drop(NOTES)

    def _lines(self, mapping: TableMapping, records: pl.DataFrame, changes: pl.DataFrame,
               resolver: Resolver) -> tuple[pl.DataFrame, pl.DataFrame]:
        """Documents the plan creates get their lines: one field change per line value
        (``lines[2].quantity``, what the preview shows and apply writes with the document);
        a line that cannot be written fails its document with the reason."""
        assert mapping.lines is not None
        lines = mapping.line_mapping
        action = pl.col("action").cast(pl.Utf8)
        extra_changes: list[dict[str, Any]] = []
        problems: dict[str, str] = {}
        counts: dict[str, int] = {}
        for target in ("crm", "nav"):
            docs = records.filter(action == f"insert_{target}")
            if docs.height == 0:
                continue
            source: Literal["nav", "crm"] = "nav" if target == "crm" else "crm"
            spec = mapping.lines.nav if source == "nav" else mapping.lines.crm
            doc_ids = docs["nav_id" if source == "nav" else "crm_id"].to_list()
            client = (self.connections.business_central_for(spec.api) if source == "nav"
                      else self.connections.dataverse)
            conditions = {f.name: f.only_when for f in lines.enabled_fields() if f.only_when}
            select = list(dict.fromkeys([
                *(lines.nav_select() if source == "nav" else lines.crm_select()),
                spec.parent_read_column, spec.order,
                *(c.column for c in conditions.values())]))
            raw = client.read_by_ids(spec.entity, spec.parent_read_column, doc_ids,
                                     select=select)
            if raw.height == 0:
                continue
            frame = field_frame(raw, lines, source, resolver).with_columns(
                pl.when(raw.get_column(c.column).cast(pl.Utf8).is_in(list(c.values)))
                .then(pl.col(name)).otherwise(pl.lit(None, pl.Utf8)).alias(name)
                for name, c in conditions.items()).with_columns(
                raw.get_column(spec.parent_read_column).cast(pl.Utf8).str.to_lowercase()
                .alias("__document"),
                raw.get_column(spec.order).alias("__order"))
            frame = frame.sort("__document", "__order", nulls_last=True).with_columns(
                pl.int_range(1, pl.len() + 1).over("__document").alias("__position"))
            writing = [f for f in lines.enabled_fields()
                       if (f.writes_to_crm if target == "crm" else f.writes_to_nav)]
            line_records: list[dict[str, Any]] = []
            line_changes: list[dict[str, Any]] = []
            for row in frame.iter_rows(named=True):
                document, position = row["__document"], row["__position"]
                counts[document] = counts.get(document, 0) + 1
                line_id = f"{document}:{position}"
                line_records.append({"mapping": lines.name, "record_id": line_id,
                                     "action": f"insert_{target}", "direction": "none"})
                for fld in writing:
                    value = row.get(fld.name)
                    if value is None or value == "":
                        continue
                    common = {"base_value": None, f"{source}_value": value,
                              "changed_side": source, "target": target, "new_value": value,
                              "conflict": False, "resolution": "none"}
                    line_changes.append({"mapping": lines.name, "record_id": line_id,
                                         "field": fld.name, **common})
                    extra_changes.append({"mapping": mapping.name, "record_id": document,
                                          "field": line_field(position, fld.name), **common})
            checked = self._check_writes(lines, _record_rows(line_records),
                                         _change_rows(line_changes), resolver)
            for line_id, message in checked.filter(action == "fail").select(
                    "record_id", "message").iter_rows():
                document, _, position = line_id.rpartition(":")
                text = f"line {position}: {message}"
                problems[document] = f"{problems[document]}; {text}" if document in problems \
                    else text
        if extra_changes:
            changes = pl.concat([changes, _change_rows(extra_changes)], how="diagonal_relaxed")
        lines_note = pl.col("record_id").replace_strict(
            {k: f"{v} line(s)" for k, v in counts.items()}, default=None, return_dtype=pl.Utf8)
        failed = pl.col("record_id").is_in(list(problems)) & action.is_in(list(_INSERTS))
        records = records.with_columns(
            pl.when(failed).then(pl.lit("fail")).otherwise(action).alias("action"),
            pl.when(failed).then(pl.col("record_id").replace_strict(
                problems, default=None, return_dtype=pl.Utf8))
            .when(action.is_in(list(_INSERTS)))
            .then(pl.concat_str([pl.col("message"), lines_note], separator="; ",
                                ignore_nulls=True))
            .otherwise(pl.col("message")).alias("message"),
            pl.when(failed).then(pl.lit("none"))
            .otherwise(pl.col("direction").cast(pl.Utf8)).alias("direction"))
        return records, changes

    def _watermark(self, old: str | None, changed: pl.DataFrame | None, mapping: TableMapping,
                   side: Literal["nav", "crm"], started: datetime) -> str:
        cap = format_moment(started)
        spec = mapping.nav if side == "nav" else mapping.crm
        newest: str | None = None
        if changed is not None and changed.height and spec.modified in changed.columns:
            column = changed.get_column(spec.modified)
            if isinstance(column.dtype, pl.Datetime):
                latest = column.max()
                newest = format_moment(latest) if isinstance(latest, datetime) else None
        candidates = [m for m in (old, min(newest, cap) if newest else None) if m]
        if not candidates:
            return cap
        return max(candidates)

