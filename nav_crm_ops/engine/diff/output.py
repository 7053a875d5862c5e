"""The diff's output frames, built from the wide per-pair frame the decision produced.

Why separate: the decision works on one wide row per pair with integer codes; people and the
plan read a long ``field_changes`` frame (only the changed cells, named targets and
resolutions) and a ``records`` frame (one row per pair, ordered by key, with an action and a
message explaining any conflict).
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from ..vocabulary import PlanAction, Resolution
from .model import (
    ACTION_DTYPE,
    CHANGED_SIDE_DTYPE,
    ENGINE,
    RES_SAME,
    RESOLUTION_DTYPE,
    RESOLUTIONS,
    TARGET_CRM,
    TARGET_DTYPE,
    TARGET_NAV,
    TARGETS,
    DiffField,
)

__all__ = ["field_changes", "key_order", "records"]

_FAST_SORT_ROWS = 50_000
"""Key columns at least this long are ordered by :func:`key_order`'s integer prefixes."""


def _field_change_schema(key: str) -> dict[str, pl.DataType]:
    return {
        key: pl.Utf8(),
        "field": pl.Utf8(),
        "base_value": pl.Utf8(),
        "nav_value": pl.Utf8(),
        "crm_value": pl.Utf8(),
        "changed_side": CHANGED_SIDE_DTYPE,
        "target": TARGET_DTYPE,
        "new_value": pl.Utf8(),
        "conflict": pl.Boolean(),
        "resolution": RESOLUTION_DTYPE,
    }


def _changes_of(wide: pl.DataFrame, field: DiffField, order: int, key: str) -> pl.LazyFrame:
    """One field's changed cells, targets and resolutions still as codes."""
    name = field.name
    target = pl.col(f"__t_{name}")
    return (
        wide.lazy()
        .filter(pl.col(f"__s_{name}").is_not_null())
        .select(
            pl.col(key),
            pl.lit(name).alias("field"),
            pl.lit(order, pl.UInt32).alias("__order"),
            pl.col(f"__b_{name}").alias("base_value"),
            pl.col(f"__nv_{name}").alias("nav_value"),
            pl.col(f"__cv_{name}").alias("crm_value"),
            pl.col(f"__s_{name}").cast(CHANGED_SIDE_DTYPE).alias("changed_side"),
            target.alias("__target"),
            pl.when(target == TARGET_CRM)
            .then(pl.col(f"__nv_{name}"))
            .when(target == TARGET_NAV)
            .then(pl.col(f"__cv_{name}"))
            .when(pl.col(f"__r_{name}") == RES_SAME)
            .then(pl.col(f"__nv_{name}"))
            .alias("new_value"),
            pl.col(f"__x_{name}").alias("conflict"),
            pl.col(f"__r_{name}").alias("__resolution"),
        )
    )


def field_changes(wide: pl.DataFrame, fields: Sequence[DiffField], key: str) -> pl.DataFrame:
    """The long frame: one row per pair and changed field, by key then field order."""
    schema = _field_change_schema(key)
    parts = [_changes_of(wide, field, order, key) for order, field in enumerate(fields)]
    if not parts:
        return pl.DataFrame(schema=schema)
    long = pl.concat(parts).sort(key, "__order").collect(engine=ENGINE)
    return long.with_columns(
        pl.Series(TARGETS).gather(long.get_column("__target")).cast(TARGET_DTYPE).alias("target"),
        pl.Series(RESOLUTIONS)
        .gather(long.get_column("__resolution"))
        .cast(RESOLUTION_DTYPE)
        .alias("resolution"),
    ).select(list(schema))


def _conflict_messages(changes: pl.DataFrame, key: str) -> pl.DataFrame:
    """Per pair with a conflict: the conflicting fields' values and how it was resolved."""

    def shown(column: str) -> pl.Expr:
        return pl.format("'{}'", pl.col(column)).fill_null(pl.lit("<empty>"))

    conflicts = changes.filter(pl.col("conflict"))
    detail = pl.format(
        "{} (nav={}, crm={}, base={})",
        pl.col("field"),
        shown("nav_value"),
        shown("crm_value"),
        shown("base_value"),
    )
    return conflicts.group_by(key, maintain_order=True).agg(
        detail.str.join("; ").alias("__details"),
        pl.col("resolution").first().cast(pl.Utf8).alias("__resolution"),
    )


def _action() -> pl.Expr:
    """A pair's action from its hold flag and its counts of writes per side."""
    to_crm, to_nav = pl.col("n_changes_to_crm") > 0, pl.col("n_changes_to_nav") > 0
    return (
        pl.when(pl.col("__held"))
        .then(pl.lit(PlanAction.CONFLICT.value))
        .when(to_crm & to_nav)
        .then(pl.lit(PlanAction.UPDATE_BOTH.value))
        .when(to_crm)
        .then(pl.lit(PlanAction.UPDATE_CRM.value))
        .when(to_nav)
        .then(pl.lit(PlanAction.UPDATE_NAV.value))
        .otherwise(pl.lit(PlanAction.UNCHANGED.value))
        .cast(ACTION_DTYPE)
    )


def _conflict_message() -> pl.Expr:
    """What a person reads about a pair's conflict: why it was held, or who won."""
    return (
        pl.when(pl.col("__resolution") == Resolution.HELD.value)
        .then(
            pl.format(
                "held: both sides changed {} to different values since the last sync; "
                "nothing was written for this record. Keep one side's value (Keep BC value "
                "/ Keep CRM value in Preview changes), edit one side to agree, or set "
                "update_conflict: nav_wins or crm_wins in the mapping",
                pl.col("__details"),
            )
        )
        .when(pl.col("__details").is_not_null())
        .then(
            pl.format(
                "both sides changed {}; resolved by {}", pl.col("__details"), pl.col("__resolution")
            )
        )
    )


def _untouched_records(untouched_keys: pl.Series, key: str) -> pl.DataFrame:
    """Records of base pairs not in play: unchanged, nothing to write."""
    return untouched_keys.alias(key).to_frame().with_columns(
        pl.lit(PlanAction.UNCHANGED.value).cast(ACTION_DTYPE).alias("action"),
        pl.lit(0, pl.UInt32).alias("n_changes_to_crm"),
        pl.lit(0, pl.UInt32).alias("n_changes_to_nav"),
        pl.lit(0, pl.UInt32).alias("n_conflicts"),
        pl.lit(False).alias("never_synced"),
        pl.lit(None, pl.Utf8).alias("conflict_message"),
    )


def records(
    wide: pl.DataFrame, changes: pl.DataFrame, untouched_keys: pl.Series, key: str
) -> pl.DataFrame:
    """One row per pair in play (``wide``) and per base pair not in play, sorted by key."""
    seen = (
        wide.select(
            key,
            _action().alias("action"),
            "n_changes_to_crm",
            "n_changes_to_nav",
            "n_conflicts",
            (~pl.col("__in_base")).alias("never_synced"),
        )
        .join(_conflict_messages(changes, key), on=key, how="left")
        .with_columns(_conflict_message().alias("conflict_message"))
        .drop("__details", "__resolution")
    )
    both = pl.concat([seen, _untouched_records(untouched_keys, key)], rechunk=True)
    return both[key_order(both.get_column(key))]


def _fast_sortable(keys: pl.Series) -> bool:
    """Whether :func:`key_order` may try integer prefixes: many ASCII keys without nulls."""
    return not (
        keys.len() < _FAST_SORT_ROWS
        or keys.null_count()
        or (keys.str.len_bytes() != keys.str.len_chars()).any()
    )


def _shared_prefix(keys: pl.Series) -> int:
    """Length of the prefix every key shares (that of the lowest and highest key)."""
    lowest, highest = str(keys.min()), str(keys.max())
    shared = 0
    while shared < min(len(lowest), len(highest)) and lowest[shared] == highest[shared]:
        shared += 1
    return shared


def key_order(keys: pl.Series) -> pl.Series:
    """``keys.arg_sort()`` of unique keys, computed in about half the time for many ASCII keys.

    Comparing strings longer than 12 bytes makes the sort read each string's bytes from
    memory. For ASCII keys without nulls the bytes after the prefix that every key shares are
    sorted as big-endian integers instead, 8 bytes each, zero-padded: first the next 8 bytes,
    then, if two keys tie on them, the next 16. That order agrees with the keys' byte order
    wherever two keys' integers differ, so when no two keys tie it is the exact order; when
    some still tie, the strings are sorted as they are.
    """
    if not _fast_sortable(keys):
        return keys.arg_sort()
    shared = _shared_prefix(keys)
    frame = pl.DataFrame({"key": keys})

    def word(offset: int) -> pl.Expr:
        return (
            pl.col("key")
            .str.slice(shared + offset, 8)
            .str.pad_end(8, "\x00")
            .cast(pl.Binary)
            .bin.reinterpret(dtype=pl.UInt64, endianness="big")
        )

    high = frame.select(word(0)).to_series()
    order = high.arg_sort()
    ordered = high.gather(order)
    if not (ordered == ordered.shift()).any():
        return order
    words = pl.DataFrame({"high": high, "low": frame.select(word(8)).to_series()})
    ordered_words = words.with_row_index("__row").sort("high", "low")
    tied = ordered_words.select(
        ((pl.col("high") == pl.col("high").shift()) & (pl.col("low") == pl.col("low").shift()))
        .any()
    ).item()
    return keys.arg_sort() if tied else ordered_words.get_column("__row")
