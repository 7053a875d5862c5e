"""The preview's second and third phases: which records are pairs, skips, deletions, matches
and creates.

* :func:`classify_coupled` — coupled pairs: a side that was not read is unchanged since the last
  sync and so equals the base (pairs without a base, in the retry pass or selected are read on
  both sides, and a side that is gone is a deletion conflict); skipped couplings become
  ``skip`` rows; the rest go to the three-way diff (``Snapshot.diff_pairs``);
* :func:`classify_uncoupled` — uncoupled records are matched against the other side's
  uncoupled records before anything is created (so a first sync of tables holding data on both
  sides never duplicates): matched pairs are diffed as never-synced pairs and coupled on
  apply, ambiguous ones fail, unmatched ones are created when the mapping allows it (always on
  a first sync or for a selection; afterwards only with ``only_coupled: false`` and
  ``create_when_no_match``).

Every decision is a plan row appended to the :class:`~nav_crm_ops.engine.sync.snapshot.Snapshot`
(``record_rows``, ``insert_frames``); the functions deciding from frames alone
(:func:`insert_frames`, :func:`deletion`, :func:`uncoupled_decisions`) need no service.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import polars as pl

from ..ids import crm_ids_for
from ..mapping import TableMapping
from ..matching import match_records
from ..plan import FIELD_CHANGE_SCHEMA, RECORD_SCHEMA
from ..vocabulary import Direction, PlanAction, Side
from .snapshot import InsertFrames, Snapshot, field_rows, unique_rows

__all__ = ["change_rows", "classify_coupled", "classify_uncoupled", "deletion",
           "insert_frames", "plan_row", "record_rows", "uncoupled_decisions"]

ONLY_COUPLED = ("not coupled, and the mapping synchronizes only coupled records: couple it, "
                "or use `nav-crm-ops match --create`")
NO_MATCH = "no match on the other side and create_when_no_match is off: couple it by hand"


def record_rows(rows: list[dict[str, Any]]) -> pl.DataFrame:
    """Plan record rows as a frame (enum columns as text)."""
    schema = {k: (pl.Utf8() if isinstance(v, pl.Enum) else v) for k, v in RECORD_SCHEMA.items()}
    return pl.DataFrame(rows, schema=schema)


def change_rows(rows: list[dict[str, Any]]) -> pl.DataFrame:
    """Plan field-change rows as a frame (enum columns as text)."""
    schema = {k: (pl.Utf8() if isinstance(v, pl.Enum) else v)
              for k, v in FIELD_CHANGE_SCHEMA.items()}
    return pl.DataFrame(rows, schema=schema)


def plan_row(mapping: TableMapping, record_id: str, nav_id: str | None, crm_id: str | None,
             action: PlanAction, **extra: Any) -> dict[str, Any]:
    """One plan record row."""
    return {"mapping": mapping.name, "record_id": record_id, "pair_id": nav_id,
            "nav_id": nav_id, "crm_id": crm_id, "action": str(action), **extra}


def side_row(mapping: TableMapping, record_id: str, side: Side | str, action: PlanAction,
             **extra: Any) -> dict[str, Any]:
    """The plan row of an uncoupled record of ``side``."""
    side = Side(side)
    return plan_row(mapping, record_id, side.pick(record_id, None), side.pick(None, record_id),
                    action, **extra)


def _insert_note(template: Any) -> str:
    return "no match: create" + (f" (template {template.name})" if template else "")


def _insert_messages(mapping: TableMapping, frame: pl.DataFrame, target: Side,
                     message: str | None) -> pl.Series:
    templates = target.pick(mapping.templates.nav, mapping.templates.crm)
    if message is not None:
        notes = [message] * frame.height
    elif any(t.filter for t in templates):
        notes = [_insert_note(mapping.template_for(target.literal, row))
                 for row in frame.iter_rows(named=True)]
    else:
        notes = [_insert_note(mapping.template_for(target.literal, {}))] * frame.height
    return pl.Series("message", notes, dtype=pl.Utf8)


def _coupling_labels(snap: Snapshot, pair: str) -> dict[str, Any]:
    """The numbers and names a coupled pair's coupling remembers (for ``skip`` rows)."""
    found = snap.couplings.filter(pl.col("nav_id") == pair)
    columns = ("nav_key", "crm_key", "nav_name", "crm_name")
    if found.height == 0:
        return {}
    row = found.row(0, named=True)
    return {c: row.get(c) for c in columns if row.get(c) is not None}


def _name(frame: pl.DataFrame) -> pl.Expr:
    """The records' names (``_name``; none in frames made without one)."""
    return pl.col("_name") if "_name" in frame.columns else pl.lit(None, pl.Utf8)


def insert_frames(mapping: TableMapping, frame: pl.DataFrame, target: Side | str, *,
                  message: str | None = None, salt: str = "") -> InsertFrames:
    """Plan rows for creating every record of ``frame`` on ``target`` (vectorized: a first
    sync may create hundreds of thousands); the field changes are the values the created
    record receives (what the preview shows). ``salt`` gives a restored CRM record a new
    deterministic id."""
    target = Side(target)
    source = target.other
    note = _insert_messages(mapping, frame, target, message)
    common = (pl.lit(mapping.name).alias("mapping"), pl.col("_id").alias("record_id"))
    if target is Side.CRM:
        crm_ids = crm_ids_for(mapping.name, frame["_id"].to_list(), salt, scope=mapping.id_scope)
        records = frame.select(
            *common, pl.col("_id").alias("pair_id"), pl.col("_id").alias("nav_id"),
            crm_ids, pl.lit(str(PlanAction.INSERT_CRM)).alias("action"),
            pl.col("_version").alias("nav_version"), pl.col("_key").alias("nav_key"),
            _name(frame).alias("nav_name"), note)
    else:
        records = frame.select(
            *common, pl.lit(None, pl.Utf8).alias("pair_id"), pl.lit(None, pl.Utf8).alias("nav_id"),
            pl.col("_id").alias("crm_id"), pl.lit(str(PlanAction.INSERT_NAV)).alias("action"),
            pl.col("_version").alias("crm_version"), pl.col("_key").alias("crm_key"),
            _name(frame).alias("crm_name"), note)
    names = [f.name for f in mapping.enabled_fields()
             if target.pick(f.writes_to_nav, f.writes_to_crm)]
    if not names:
        return records, change_rows([])
    long = frame.select("_id", *[pl.col(n).cast(pl.Utf8) for n in names]).unpivot(
        index="_id", variable_name="field", value_name="value").filter(
        pl.col("value").is_not_null() & (pl.col("value") != ""))
    changes = long.select(
        pl.lit(mapping.name).alias("mapping"), pl.col("_id").alias("record_id"), "field",
        pl.lit(None, pl.Utf8).alias("base_value"), pl.col("value").alias(source.column("value")),
        pl.lit(str(source)).alias("changed_side"), pl.lit(str(target)).alias("target"),
        pl.col("value").alias("new_value"), pl.lit(False).alias("conflict"),
        pl.lit("none").alias("resolution"))
    return records, changes


def deletion(mapping: TableMapping, pair: str, crm_id: str, gone: Side | str,
             nav: pl.DataFrame, crm: pl.DataFrame,
             ) -> tuple[list[dict[str, Any]], list[InsertFrames]]:
    """A deletion conflict row, or (policy ``restore``) the plan rows re-creating the
    record that is gone from the side that still has it."""
    gone_side = Side(gone)
    policy = mapping.deletion_conflict
    if policy == "restore":
        present = crm if gone_side is Side.NAV else nav
        row = present.filter(pl.col("_id") == (crm_id if gone_side is Side.NAV else pair))
        if row.height:
            note = f"the {gone_side.label} record was deleted: restore it" + (
                " (the old coupling is replaced)" if gone_side is Side.NAV else "")
            return [], [insert_frames(mapping, row, gone_side, message=note,
                                      salt=f"restore:{crm_id}")]
    message = (f"the coupled {gone_side.label} record no longer exists (deleted or out of "
               "reach): " + ("the coupling will be removed" if policy == "remove_coupling" else
                             "uncouple it with `nav-crm-ops uncouple`, or set deletion_conflict "
                             "to remove_coupling or restore in the mapping"))
    return [plan_row(mapping, pair, pair, crm_id, PlanAction.DELETION_CONFLICT,
                     message=message)], []


# -- coupled pairs ------------------------------------------------------------------------------
def _pairs(snap: Snapshot) -> set[str]:
    """Pairs (by NAV id) of which at least one side was read."""
    return (set(snap.coupled(Side.NAV)["_id"].to_list())
            | {snap.crm_to_nav[c] for c in snap.coupled(Side.CRM)["_id"]})


def _deleted(snap: Snapshot, pairs: set[str]) -> dict[str, Side]:
    """Pairs whose record was asked for by id on a side and not found there."""
    present_nav, present_crm = set(snap.nav["_id"].to_list()), set(snap.crm["_id"].to_list())
    deleted: dict[str, Side] = {}
    for pair in pairs:
        crm_id = snap.nav_to_crm[pair]
        if pair in snap.requested_nav and pair not in present_nav:
            deleted[pair] = Side.NAV
        elif crm_id in snap.requested_crm and crm_id not in present_crm:
            deleted[pair] = Side.CRM
    return deleted


def classify_coupled(snap: Snapshot) -> None:
    """Coupled pairs: read the other side where needed, then skips, deletions and the pairs
    to diff (see the module docstring)."""
    mapping = snap.mapping
    skipped_pairs = {*snap.skipped_ids("to_crm"),
                     *(snap.crm_to_nav.get(c, c) for c in snap.skipped_ids("from_crm"))}
    pairs = _pairs(snap)
    base_missing = set(snap.couplings.filter(pl.col("base_values").is_null())["nav_id"].to_list())
    snap.both_sides |= pairs & base_missing
    if snap.selection is not None and snap.selection.direction is not None:
        snap.both_sides |= pairs
    wanted = {p for p in snap.both_sides if p in snap.nav_to_crm}
    snap.read_missing(wanted - set(snap.nav["_id"].to_list()),
                      {snap.nav_to_crm[p] for p in wanted} - set(snap.crm["_id"].to_list()))
    pairs = _pairs(snap) | wanted
    deleted = _deleted(snap, pairs)
    for pair in sorted(pairs & skipped_pairs):
        reason = snap.statuses.filter(pl.col("source_id").is_in([pair, snap.nav_to_crm[pair]]))
        snap.record_rows.append(plan_row(
            mapping, pair, pair, snap.nav_to_crm[pair], PlanAction.SKIP,
            skip_reason="skipped_coupling", **_coupling_labels(snap, pair),
            message=reason["message"].item(0) if reason.height else "skipped"))
    for pair, side in sorted(deleted.items()):
        if pair not in skipped_pairs:
            rows, restores = deletion(mapping, pair, snap.nav_to_crm[pair], side, snap.nav,
                                      snap.crm)
            snap.record_rows += rows
            snap.insert_frames += restores
    snap.diff_pairs = pairs - skipped_pairs - set(deleted)


# -- uncoupled records --------------------------------------------------------------------------
@dataclass(frozen=True)
class Uncoupled:
    """Uncoupled records that act (match, create) and the candidates they match against."""

    sources_nav: pl.DataFrame
    sources_crm: pl.DataFrame
    candidates_nav: pl.DataFrame
    candidates_crm: pl.DataFrame
    create: bool
    """Unmatched sources are created (else skipped as ``only_coupled``)."""


def _candidates(snap: Snapshot, sources: pl.DataFrame, present: pl.DataFrame,
                side: Side) -> pl.DataFrame:
    """Uncoupled records of ``side`` that could match ``sources`` (read by value)."""
    mapping = snap.mapping
    reader = snap.reader(side)
    frames = [present]
    if sources.height:
        for _, fields in mapping.match_groups():
            fld = fields[0]
            if fld.lookup is not None or fld.options is not None or fld.nav_reference:
                continue
            values = [v for v in sources[fld.name].drop_nulls().unique().to_list() if v]
            if values:
                raw = reader.by_values(side.pick(fld.nav, fld.crm), values)
                frames.append(field_rows(raw, mapping, side, snap.resolver))
    found = unique_rows(pl.concat(frames, how="diagonal_relaxed"))
    ids = found["_id"].to_list()
    if side is Side.NAV:
        snap.load_couplings(nav_ids=ids)
    else:
        snap.load_couplings(crm_ids=ids)
    coupled = side.pick(snap.nav_to_crm, snap.crm_to_nav)
    return found.filter(~pl.col("_id").is_in(list(coupled)))


def _only_coupled_skips(snap: Snapshot, nav: pl.DataFrame, crm: pl.DataFrame,
                        retrying: set[str]) -> list[dict[str, Any]]:
    """``skip`` rows of uncoupled records in a mapping that synchronizes only coupled ones
    (those in the retry pass still act: they were meant to be created)."""
    rows = []
    for frame, side in ((nav, Side.NAV), (crm, Side.CRM)):
        waiting = frame.filter(~pl.col("_id").is_in(list(retrying)))
        for record_id, key, name in waiting.select("_id", "_key", _name(waiting)).iter_rows():
            rows.append(side_row(snap.mapping, record_id, side, PlanAction.SKIP,
                                 skip_reason="only_coupled", **{side.column("key"): key,
                                                                side.column("name"): name},
                                 message=ONLY_COUPLED))
    return rows


def _acting(snap: Snapshot, nav: pl.DataFrame, crm: pl.DataFrame,
            ) -> tuple[Uncoupled, list[dict[str, Any]]]:
    """Which uncoupled records act, against which candidates; the ``only_coupled`` skips."""
    mapping, selection, first = snap.mapping, snap.selection, snap.first
    retrying = set(snap.retry_pass["source_id"].to_list())
    sources_nav = nav if Direction.TO_CRM in mapping.directions else nav.clear()
    sources_crm = crm if Direction.FROM_CRM in mapping.directions else crm.clear()
    skips: list[dict[str, Any]] = []
    if not (selection is not None or first or not mapping.only_coupled):
        skips = _only_coupled_skips(snap, sources_nav, sources_crm, retrying)
        sources_nav = sources_nav.filter(pl.col("_id").is_in(list(retrying)))
        sources_crm = sources_crm.filter(pl.col("_id").is_in(list(retrying)))
        nav, crm = sources_nav, sources_crm
    candidates_nav, candidates_crm = nav, crm
    if not first:
        candidates_crm = _candidates(snap, sources_nav, crm, Side.CRM)
        candidates_nav = _candidates(snap, sources_crm, nav, Side.NAV)
    create = selection is not None or first or mapping.create_when_no_match or (
        mapping.only_coupled and bool(retrying))
    return Uncoupled(sources_nav, sources_crm, candidates_nav, candidates_crm, create), skips


def uncoupled_decisions(mapping: TableMapping, acting: Uncoupled,
                        ) -> tuple[pl.DataFrame, list[dict[str, Any]], dict[Side, list[str]]]:
    """Match the acting records: the matched pairs (``_id`` = NAV id, ``__crm_id``,
    ``message``), the ``fail`` rows (ambiguous) and ``skip`` rows (no match, no create), and
    the unmatched ids to create per source side."""
    result = match_records(mapping, acting.candidates_nav, acting.candidates_crm)
    # the ids as one-row list columns: no conversion of a Python list of 100,000 ids per use
    nav_ids, crm_ids = acting.sources_nav["_id"].implode(), acting.sources_crm["_id"].implode()
    matched = result.filter(
        (pl.col("status") == "matched") & (pl.col("source_side") == str(Side.NAV))
        & (pl.col("source_id").is_in(nav_ids) | pl.col("other_id").is_in(crm_ids)))
    pairs = matched.select(pl.col("source_id").alias("_id"),
                           pl.col("other_id").alias("__crm_id"), "message")
    rows: list[dict[str, Any]] = []
    unmatched: dict[Side, list[str]] = {Side.NAV: [], Side.CRM: []}
    # the sources in play that did not match, in the result's order; a first sync creates
    # nearly all of them, so those are taken column-wise and only the others row by row
    todo = result.filter((pl.col("status") != "matched") & (
        ((pl.col("source_side") == str(Side.NAV)) & pl.col("source_id").is_in(nav_ids))
        | ((pl.col("source_side") == str(Side.CRM)) & pl.col("source_id").is_in(crm_ids))))
    if acting.create:
        for side in (Side.NAV, Side.CRM):
            unmatched[side] = todo.filter((pl.col("source_side") == str(side))
                                          & (pl.col("status") != "ambiguous"))[
                "source_id"].to_list()
        todo = todo.filter(pl.col("status") == "ambiguous")
    names = {(side, i): n for side, frame in ((Side.NAV, acting.sources_nav),
                                              (Side.CRM, acting.sources_crm))
             for i, n in frame.select("_id", _name(frame)).iter_rows()} if todo.height else {}
    for entry in todo.iter_rows(named=True):
        side, record_id = Side(entry["source_side"]), entry["source_id"]
        key = {side.column("key"): entry["source_key"],
               side.column("name"): names.get((side, record_id))}
        if entry["status"] == "ambiguous":
            rows.append(side_row(mapping, record_id, side, PlanAction.FAIL,
                                 message=entry["message"], **key))
        else:  # no match and no create (a create's unmatched were taken above)
            rows.append(side_row(mapping, record_id, side, PlanAction.SKIP,
                                 skip_reason="only_coupled", message=NO_MATCH, **key))
    return pairs, rows, unmatched


def _skipped_sources(snap: Snapshot, nav: pl.DataFrame,
                     crm: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """``skip`` rows for uncoupled records marked skipped; the others."""
    skipped = {*snap.skipped_ids("to_crm"), *snap.skipped_ids("from_crm")}
    for frame, side in ((nav, Side.NAV), (crm, Side.CRM)):
        for row in frame.filter(pl.col("_id").is_in(list(skipped))).iter_rows(named=True):
            record_id = row["_id"]
            reason = snap.statuses.filter(pl.col("source_id") == record_id)
            snap.record_rows.append(side_row(snap.mapping, record_id, side, PlanAction.SKIP,
                                             skip_reason="skipped_coupling",
                                             message=reason["message"].item(0),
                                             **{side.column("key"): row.get("_key"),
                                                side.column("name"): row.get("_name")}))
    return (nav.filter(~pl.col("_id").is_in(list(skipped))),
            crm.filter(~pl.col("_id").is_in(list(skipped))))


def classify_uncoupled(snap: Snapshot) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Uncoupled records: skips, matches (returned: NAV and CRM rows of each matched pair),
    failures and creates (appended to the snapshot)."""
    mapping = snap.mapping
    nav, crm = _skipped_sources(snap, snap.uncoupled(Side.NAV), snap.uncoupled(Side.CRM))
    acting, skips = _acting(snap, nav, crm)
    pairs, rows, unmatched = uncoupled_decisions(mapping, acting)
    matched_nav = acting.candidates_nav.join(pairs, on="_id", how="inner")
    matched_crm = acting.candidates_crm.join(
        pairs.select(pl.col("__crm_id").alias("_id"), pl.col("_id").alias("pair_id")),
        on="_id", how="inner")
    # A record waiting uncoupled that matches one in the retry pass is no skip: it is the
    # partner found (e.g. created by a write whose reply was lost), coupled now.
    paired = {*pairs["_id"].to_list(), *pairs["__crm_id"].to_list()}
    snap.record_rows += [row for row in skips if row["record_id"] not in paired] + rows
    snap.insert_frames += [
        insert_frames(mapping, frame.filter(pl.col("_id").is_in(unmatched[side])), side.other)
        for frame, side in ((acting.sources_nav, Side.NAV), (acting.sources_crm, Side.CRM))
        if unmatched[side]]
    # The plan remembers the coupling each record had (engine.freshness), the new CRM ids of
    # the records it creates included.
    # (lazily: nothing is gathered when no coupling is stored, as on a first sync)
    created = [records for records, _ in snap.insert_frames]
    snap.load_couplings((i for f in created for i in f["nav_id"].to_list() if i),
                        (i for f in created for i in f["crm_id"].to_list() if i))
    return matched_nav, matched_crm
