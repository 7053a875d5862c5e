"""The preview's diff phase: coupled pairs and matched records through the three-way diff.

The pairs to diff are the coupled pairs :func:`~nav_crm_ops.engine.sync.classify.classify_coupled`
kept (``Snapshot.diff_pairs``) and the never-synced pairs matching found; each pair is known by
its NAV id (``pair_id``). The base is the coupling's stored values, none for a matched pair, or
— for a selection forcing a direction — the destination's own values (so every field the
direction allows is written). Each plan row then gets the versions to send as ``If-Match``
(what was read now, else what the coupling remembers), both natural keys, and for a matched
pair the note that apply couples it.
"""

from __future__ import annotations

import polars as pl

from ..diff import three_way_diff
from ..plan import plan_rows_from_diff
from ..vocabulary import Direction, Side
from .snapshot import Snapshot

__all__ = ["diff_pairs"]


def _version(column: str) -> pl.Expr:
    """A version column with empty text as null: an empty version must never be sent, because
    ``If-Match`` falls back to ``*`` (overwrite whatever is there) without one."""
    return pl.when(pl.col(column) == "").then(None).otherwise(pl.col(column))


def _side_rows(snap: Snapshot, matched_nav: pl.DataFrame, matched_crm: pl.DataFrame,
               ) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Both sides' rows of the pairs to diff, each with its ``pair_id``."""
    wanted = list(snap.diff_pairs)
    nav_side = pl.concat([
        snap.coupled(Side.NAV).filter(pl.col("_id").is_in(wanted)).with_columns(
            pl.col("_id").alias("pair_id"), pl.lit(None, pl.Utf8).alias("message"),
            pl.lit(None, pl.Utf8).alias("__crm_id")),
        matched_nav.with_columns(pl.col("_id").alias("pair_id")),
    ], how="diagonal_relaxed")
    crm_side = pl.concat([
        snap.coupled(Side.CRM).with_columns(pl.col("_id").replace_strict(
            snap.crm_to_nav, default=None, return_dtype=pl.Utf8).alias("pair_id"))
        .filter(pl.col("pair_id").is_in(wanted)),
        matched_crm,
    ], how="diagonal_relaxed")
    return nav_side, crm_side


def _base(snap: Snapshot, pair_couplings: pl.DataFrame, nav_side: pl.DataFrame,
          crm_side: pl.DataFrame, names: list[str]) -> pl.DataFrame:
    """The diff's base: the destination's values for a selection forcing a direction, else
    the couplings' stored values (none for pairs never synced)."""
    selection = snap.selection
    if selection is not None and selection.direction is not None:
        destination = crm_side if selection.direction == Direction.TO_CRM else nav_side
        return destination.select("pair_id", *names)
    stored = pair_couplings.filter(pl.col("base_values").is_not_null())
    if stored.height:
        decoded = stored.select(
            pl.col("nav_id").alias("pair_id"),
            pl.col("base_values").str.json_decode(
                pl.Struct({n: pl.Utf8 for n in names})).alias("__base"))
        return decoded.unnest("__base")
    return pl.DataFrame(schema={"pair_id": pl.Utf8, **dict.fromkeys(names, pl.Utf8)})


def _versions(pair_couplings: pl.DataFrame, nav_side: pl.DataFrame,
              crm_side: pl.DataFrame) -> pl.DataFrame:
    """Per pair: both ids, the versions to write with (read now, else remembered by the
    coupling) and the matching note of a new pair (``__note``)."""
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
    return ids_frame.join(
        nav_side.select("pair_id", pl.col("_version").alias("__nav_read")), on="pair_id",
        how="left").join(
        crm_side.select("pair_id", pl.col("_version").alias("__crm_read")), on="pair_id",
        how="left").select(
        "pair_id", "nav_id", "crm_id",
        pl.coalesce(*(_version(c) for c in ("__nav_read", "__nav_etag"))).alias("nav_version"),
        pl.coalesce(*(_version(c) for c in ("__crm_read", "__crm_etag"))).alias("crm_version"),
        "__note")


_LABELS = ("nav_key", "crm_key", "nav_name", "crm_name")


def _keys(pair_couplings: pl.DataFrame, nav_side: pl.DataFrame,
          crm_side: pl.DataFrame) -> pl.DataFrame:
    """Both natural keys and names of every pair (read now, else remembered by the
    coupling)."""
    def side_rows(frame: pl.DataFrame, side: str) -> pl.DataFrame:
        none = pl.lit(None, pl.Utf8)
        own = {f"{side}_key": pl.col("_key"),
               f"{side}_name": pl.col("_name") if "_name" in frame.columns else none}
        return frame.select("pair_id", *(own.get(c, none).alias(c) for c in _LABELS))

    remembered = pair_couplings.select(
        "pair_id" if "pair_id" in pair_couplings.columns else pl.col("nav_id").alias("pair_id"),
        *(pl.col(c) if c in pair_couplings.columns else pl.lit(None, pl.Utf8).alias(c)
          for c in _LABELS))
    return pl.concat([remembered, side_rows(nav_side, "nav"), side_rows(crm_side, "crm")],
                     how="vertical_relaxed").group_by("pair_id").agg(
        pl.col(c).drop_nulls().last() for c in _LABELS)


def _with_coupling_notes(records: pl.DataFrame, versions: pl.DataFrame) -> pl.DataFrame:
    """A matched pair's message starts with ``new coupling: <how it matched>``."""
    notes = versions.select("pair_id", "__note").filter(pl.col("__note").is_not_null())
    return records.join(notes.rename({"pair_id": "record_id"}), on="record_id",
                        how="left").with_columns(
        pl.when(pl.col("__note").is_not_null())
        .then(pl.concat_str([pl.lit("new coupling: "), pl.col("__note"),
                             pl.when(pl.col("message").is_not_null())
                             .then(pl.lit("; ") + pl.col("message")).otherwise(pl.lit(""))]))
        .otherwise(pl.col("message")).alias("message")).drop("__note")


def diff_pairs(snap: Snapshot, matched_nav: pl.DataFrame, matched_crm: pl.DataFrame,
               ) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Plan records and field changes of the coupled pairs to diff and the matched pairs
    (module docstring); enum columns as text."""
    mapping = snap.mapping
    fields = mapping.diff_fields()
    names = [f.name for f in fields]
    nav_side, crm_side = _side_rows(snap, matched_nav, matched_crm)
    pair_couplings = snap.couplings.filter(pl.col("nav_id").is_in(list(snap.diff_pairs)))
    diff = three_way_diff(nav_side.select("pair_id", *names), crm_side.select("pair_id", *names),
                          _base(snap, pair_couplings, nav_side, crm_side, names), fields,
                          conflict_policy=mapping.update_conflict,
                          mapping_direction=mapping.direction)
    versions = _versions(pair_couplings, nav_side, crm_side)
    records, changes = plan_rows_from_diff(mapping.name, diff, versions.drop("__note"))
    keys = _keys(pair_couplings, nav_side, crm_side)
    records = records.join(keys.rename({"pair_id": "record_id"}), on="record_id", how="left")
    records = _with_coupling_notes(records, versions)
    return records.with_columns(pl.col("action").cast(pl.Utf8)), changes.with_columns(
        pl.col("changed_side").cast(pl.Utf8), pl.col("target").cast(pl.Utf8),
        pl.col("resolution").cast(pl.Utf8))
