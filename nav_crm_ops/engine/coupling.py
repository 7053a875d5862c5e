"""Coupling records by hand and by matching (``Workspace.couple`` / ``match_couple``).

A person couples two existing records, or asks the engine to match the uncoupled records of
both sides on the mapping's match fields (``engine.matching``) — only reporting, coupling the
matches, or also creating the unmatched records on the other side through a selected sync.
Every coupling operation is logged as a run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import polars as pl

from ..exceptions import StateStoreError, SyncError
from ..store import Coupling
from .context import EngineContext
from .ids import record_id
from .labels import record_label
from .mapping import TableMapping
from .matching import MATCH_SCHEMA, match_records
from .report import SyncReport
from .sides import field_frame
from .sync.snapshot import Selection
from .vocabulary import Side

__all__ = ["MatchResult", "couple_records", "create_unmatched", "match_and_couple"]

SyncSelection = Callable[[TableMapping, Selection], SyncReport]
"""Synchronizes selected records of a mapping now (the workspace's, holding the lease)."""


@dataclass(frozen=True)
class MatchResult:
    """Match-based coupling of one mapping: one row per uncoupled record of either side.

    ``frame`` columns: ``source_side``, ``source_id``, ``source_key``, ``status`` (matched,
    unmatched, ambiguous; after apply also ``coupled``, and ``created`` with create=True),
    ``other_id``, ``message``.
    """

    mapping: str
    frame: pl.DataFrame
    report: SyncReport = field(default_factory=SyncReport)

    @property
    def counts(self) -> dict[str, int]:
        found = self.frame.group_by("status").len()
        return {str(s): int(n) for s, n in found.iter_rows()}


def couple_records(ctx: EngineContext, spec: TableMapping, nav_id: str, crm_id: str
                   ) -> Coupling:
    """Couple two existing records (both read first; a record coupled elsewhere is refused)."""
    nav_reader, crm_reader = ctx.readers(spec)
    nav = nav_reader.by_ids([nav_id])
    crm = crm_reader.by_ids([crm_id])
    if nav.height == 0:
        raise SyncError(f"mapping {spec.name}: BC {spec.nav.entity} record {nav_id} does "
                        "not exist; check the id")
    if crm.height == 0:
        raise SyncError(f"mapping {spec.name}: CRM {spec.crm.logical_name} record {crm_id} "
                        "does not exist; check the id")
    nav_key, nav_name = _key_and_name(nav, spec.nav.natural_key, spec.nav.name)
    crm_key, crm_name = _key_and_name(crm, spec.crm.natural_key, spec.crm.name)
    try:
        coupling = ctx.store.couple(spec.name, record_id(nav_id), record_id(crm_id),
                                    nav_key=nav_key, crm_key=crm_key, nav_name=nav_name,
                                    crm_name=crm_name)
    except StateStoreError as error:
        raise SyncError(str(error)) from None
    run = ctx.store.start_run(spec.name, spec.directions[0], "couple")
    ctx.store.finish_run(
        run, "finished", {"coupled": 1},
        message=f"coupled {spec.nav.entity} {record_label(nav_key, nav_name, nav_id)} with "
                f"CRM {spec.crm.logical_name} {record_label(crm_key, crm_name, crm_id)}")
    return coupling


def _key_and_name(frame: pl.DataFrame, key: str | None,
                  name: str | None) -> tuple[str | None, str | None]:
    """The natural key and name of the one record of ``frame`` (None when not mapped)."""
    def text(column: str | None) -> str | None:
        value = frame.get_column(column).item(0) if column and column in frame.columns else None
        return None if value is None else str(value)
    return text(key), text(name)


def _uncoupled(ctx: EngineContext, spec: TableMapping) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Both sides' records (field frames) that no coupling of ``spec`` holds."""
    planner = ctx.planner()
    resolver = ctx.resolver()
    nav_reader, crm_reader = planner.readers(spec)
    nav = field_frame(nav_reader.changed(None, planner.overlap), spec, "nav", resolver)
    crm = field_frame(crm_reader.changed(None, planner.overlap), spec, "crm", resolver)
    # The couplings of the records read (ids only), not the mapping's whole table with bases.
    coupled_nav = ctx.store.couplings_frame(spec.name, columns=["nav_id"],
                                            nav_ids=nav["_id"].to_list())["nav_id"]
    coupled_crm = ctx.store.couplings_frame(spec.name, columns=["crm_id"],
                                            crm_ids=crm["_id"].to_list())["crm_id"]
    return (nav.filter(~pl.col("_id").is_in(coupled_nav.to_list())),
            crm.filter(~pl.col("_id").is_in(coupled_crm.to_list())))


def _couple_matches(ctx: EngineContext, spec: TableMapping, frame: pl.DataFrame,
                    nav: pl.DataFrame, crm: pl.DataFrame) -> pl.DataFrame:
    """Store the couplings of the matched pairs (logged as a ``match`` run); the frame with
    ``matched`` become ``coupled``."""
    matched = frame.filter((pl.col("status") == "matched")
                           & (pl.col("source_side") == str(Side.NAV)))
    keys_nav = {i: (k, n) for i, k, n in nav.select("_id", "_key", "_name").iter_rows()}
    keys_crm = {i: (k, n) for i, k, n in crm.select("_id", "_key", "_name").iter_rows()}
    rows = [{"nav_id": n, "crm_id": c, "nav_key": keys_nav.get(n, (None, None))[0],
             "crm_key": keys_crm.get(c, (None, None))[0],
             "nav_name": keys_nav.get(n, (None, None))[1],
             "crm_name": keys_crm.get(c, (None, None))[1]}
            for n, c in matched.select("source_id", "other_id").iter_rows()]
    ctx.store.upsert_couplings(spec.name, rows)
    run = ctx.store.start_run(spec.name, spec.directions[0], "match")
    counts = {"coupled": len(rows),
              "failed": frame.filter(pl.col("status") == "ambiguous").height}
    ctx.store.finish_run(run, "finished", counts, message=f"{len(rows)} coupled by matching")
    return frame.with_columns(pl.when(pl.col("status") == "matched")
                              .then(pl.lit("coupled")).otherwise(pl.col("status"))
                              .alias("status"))


def match_and_couple(ctx: EngineContext, spec: TableMapping, *, create: bool, apply: bool,
                     sync_selection: SyncSelection) -> MatchResult:
    """Match uncoupled records of both sides on the mapping's match fields (see
    ``Workspace.match_couple``)."""
    nav, crm = _uncoupled(ctx, spec)
    frame = match_records(spec, nav, crm) if nav.height or crm.height else pl.DataFrame(
        schema=MATCH_SCHEMA)
    if not apply:
        return MatchResult(spec.name, _with_labels(frame, nav, crm))
    frame = _couple_matches(ctx, spec, frame, nav, crm)
    report = SyncReport()
    if create:
        frame, report = create_unmatched(ctx, spec, frame, sync_selection)
    return MatchResult(spec.name, _with_labels(frame, nav, crm), report)


def _with_labels(frame: pl.DataFrame, nav: pl.DataFrame, crm: pl.DataFrame) -> pl.DataFrame:
    """``source_record`` and ``other_record``: both records of a suggestion by number and
    name (the id when the record has neither)."""
    def labels(side: pl.DataFrame) -> dict[str, str]:
        return {str(i): record_label(k, n, i) for i, k, n in
                side.select("_id", "_key", "_name").iter_rows()} if side.height else {}

    by_side = {str(Side.NAV): labels(nav), str(Side.CRM): labels(crm)}
    rows = frame.select("source_side", "source_id", "other_id").iter_rows()
    source, other = [], []
    for side, source_id, other_id in rows:
        own, theirs = by_side.get(side, {}), by_side.get(str(Side(side).other), {})
        source.append(own.get(str(source_id), source_id))
        other.append(theirs.get(str(other_id), other_id) if other_id is not None else None)
    return frame.with_columns(pl.Series("source_record", source, dtype=pl.Utf8),
                              pl.Series("other_record", other, dtype=pl.Utf8))


def create_unmatched(ctx: EngineContext, spec: TableMapping, frame: pl.DataFrame,
                     sync_selection: SyncSelection) -> tuple[pl.DataFrame, SyncReport]:
    """Create the unmatched records of ``frame`` on the other side (where the direction
    allows) and couple them. A record that could not be created becomes ``failed`` with
    the reason (``not created: <the error>``), not "no record matches"."""
    unmatched = frame.filter(pl.col("status") == "unmatched")

    def ids(side: Side) -> tuple[str, ...]:
        if side.other.direction not in spec.directions:
            return ()
        return tuple(unmatched.filter(pl.col("source_side") == str(side))["source_id"])

    nav_ids, crm_ids = ids(Side.NAV), ids(Side.CRM)
    if not nav_ids and not crm_ids:
        return frame, SyncReport()
    report = sync_selection(spec, Selection(nav_ids, crm_ids)).with_skipped_totals(ctx.store)
    tried = [*nav_ids, *crm_ids]
    reasons = ctx.store.record_status_frame(spec.name).filter(
        pl.col("source_id").is_in(tried)).unique("source_id", keep="last").select(
        "source_id", pl.concat_str(pl.lit("not created: "), pl.col("message").fill_null(
            "see `nav-crm-ops errors`")).alias("__reason"))
    frame = frame.join(reasons, on="source_id", how="left")
    is_tried = pl.col("source_id").is_in(tried)
    return frame.with_columns(
        pl.when(is_tried & pl.col("__reason").is_not_null()).then(pl.lit("failed"))
        .when(is_tried).then(pl.lit("created")).otherwise(pl.col("status")).alias("status"),
        pl.coalesce("__reason", "message").alias("message"),
    ).drop("__reason"), report

