"""The diff's output frames, built from the wide per-pair frame the decision produced.

Why separate: the decision works on one wide row per pair with integer codes; people and the
plan read a long ``field_changes`` frame (only the changed cells, named targets and
resolutions) and a ``records`` frame (one row per pair, ordered by key, with an action and a
message explaining any conflict).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from ..vocabulary import PlanAction, Resolution
from .align import gatherable
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

__all__ = ["field_changes", "key_order", "orders_by_prefixes", "records"]

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


def _untouched_keys(base_keys: pl.Series, base_rows: pl.Series) -> pl.Series:
    """Keys of the base pairs not in play (``base_rows``: the base rows of the pairs in play)."""
    keep = pl.repeat(True, base_keys.len(), eager=True)
    rows = base_rows.drop_nulls()
    if rows.len():
        keep = keep.scatter(rows, False)
    return base_keys.filter(keep)


def _records_in_base_order(
    seen: pl.DataFrame, keys: pl.Series, order: pl.Series, key: str
) -> pl.DataFrame:
    """Every base pair's record in key order, when every pair in play has a base row: each
    record of a pair in play (``seen``) takes its base row's place in the base ``keys`` put in
    ``order`` (their :func:`key_order`); the other places are unchanged records (as
    :func:`_untouched_records`)."""
    index_type = pl.get_index_type()
    at_base_row = pl.repeat(None, keys.len(), dtype=index_type, eager=True)
    if seen.height:
        at_base_row = at_base_row.scatter(
            seen.get_column("__base_row"), pl.int_range(seen.height, dtype=index_type, eager=True)
        )
    rows = at_base_row.gather(order)
    return (
        seen.drop(key, "__base_row")
        .select(pl.all().gather(rows))
        .select(
            pl.lit(gatherable(keys, keys.len()).gather(order)).alias(key),
            pl.col("action").fill_null(pl.lit(PlanAction.UNCHANGED.value).cast(ACTION_DTYPE)),
            pl.col("n_changes_to_crm", "n_changes_to_nav", "n_conflicts").fill_null(0),
            pl.col("never_synced").fill_null(False),
            "conflict_message",
        )
    )


def orders_by_prefixes(keys: pl.Series) -> bool:
    """Whether ``keys`` are many enough for the records' fast paths (:func:`key_order`'s
    integer prefixes, records put in the base's key order)."""
    return keys.len() >= _FAST_SORT_ROWS


def records(
    wide: pl.DataFrame,
    changes: pl.DataFrame,
    base_keys: pl.Series,
    key: str,
    base_order: Callable[[], pl.Series] | None = None,
) -> pl.DataFrame:
    """One row per pair in play (``wide``) and per base pair not in play, sorted by key
    (``base_keys``: the key column of the whole base; ``base_order``: gives their
    :func:`key_order` if already under way)."""
    seen = (
        wide.select(
            key,
            _action().alias("action"),
            "n_changes_to_crm",
            "n_changes_to_nav",
            "n_conflicts",
            (~pl.col("__in_base")).alias("never_synced"),
            "__base_row",
        )
        .join(_conflict_messages(changes, key), on=key, how="left")
        .with_columns(_conflict_message().alias("conflict_message"))
        .drop("__details", "__resolution")
    )
    if orders_by_prefixes(base_keys) and not seen.get_column("never_synced").any():
        order = base_order() if base_order is not None else key_order(base_keys)
        return _records_in_base_order(seen, base_keys, order, key)
    untouched = _untouched_keys(base_keys, seen.get_column("__base_row"))
    both = pl.concat([seen.drop("__base_row"), _untouched_records(untouched, key)], rechunk=True)
    return both[key_order(both.get_column(key))]


@dataclass(frozen=True)
class _KeyShape:
    """What :func:`key_order` needs to know of many ASCII keys without nulls: the length of
    the prefix every key shares, and the byte length every key has (None if they differ)."""

    shared: int
    length: int | None

    @classmethod
    def of(cls, keys: pl.Series) -> _KeyShape | None:
        """The keys' shape from one query (its parts run in parallel); None unless
        :func:`key_order` may try integer prefixes: many ASCII keys without nulls."""
        if keys.len() < max(_FAST_SORT_ROWS, 1) or keys.null_count():
            return None
        key, size = pl.col("key"), pl.col("key").str.len_bytes()
        found = keys.alias("key").to_frame().select(
            (size != key.str.len_chars()).any().alias("wide"),
            size.min().alias("shortest"),
            size.max().alias("longest"),
            key.min().alias("lowest"),
            key.max().alias("highest"),
        ).row(0, named=True)
        if found["wide"]:
            return None
        lowest, highest = str(found["lowest"]), str(found["highest"])
        shared = 0
        while shared < min(len(lowest), len(highest)) and lowest[shared] == highest[shared]:
            shared += 1
        same = found["shortest"] == found["longest"]
        return cls(shared, int(found["longest"]) if same else None)

    def first_word(self, keys: pl.Series) -> pl.Series:
        """The 8 bytes after the shared prefix of each key as a big-endian integer, padded with
        zeros. Keys of one length with at most 8 bytes after the prefix are ordered as well by
        their last 8 bytes (those before the prefix's end are the same in every key), which
        need no padding: a third of the work."""
        if self.length is not None and self.length - self.shared <= 8 <= self.length:
            tail = keys.str.tail(8)
        else:
            tail = keys.str.slice(self.shared, 8).str.pad_end(8, "\x00")
        return tail.cast(pl.Binary).bin.reinterpret(dtype=pl.UInt64, endianness="big")


def key_order(keys: pl.Series) -> pl.Series:
    """``keys.arg_sort()`` of unique keys, computed in a fraction of the time for many ASCII keys.

    Comparing strings longer than 12 bytes makes the sort read each string's bytes from
    memory. For ASCII keys without nulls the bytes after the prefix that every key shares are
    sorted as big-endian integers instead, 8 bytes each, zero-padded: first the next 8 bytes
    (numpy's sort of 64-bit integers, several times faster than polars' ``arg_sort``), then,
    if two keys tie on them, the next 16. That order agrees with the keys' byte order
    wherever two keys' integers differ, so when no two keys tie it is the exact order; when
    some still tie, the strings are sorted as they are.
    """
    shape = _KeyShape.of(keys)
    if shape is None:
        return keys.arg_sort()
    shared = shape.shared
    high = shape.first_word(keys)
    words = high.to_numpy()
    order = np.argsort(words)
    ordered = words[order]
    if not (ordered[1:] == ordered[:-1]).any():
        return pl.Series(order).cast(pl.get_index_type())

    def word(offset: int) -> pl.Expr:
        return (
            pl.col("key")
            .str.slice(shared + offset, 8)
            .str.pad_end(8, "\x00")
            .cast(pl.Binary)
            .bin.reinterpret(dtype=pl.UInt64, endianness="big")
        )

    frame = pl.DataFrame({"key": keys})
    words_frame = pl.DataFrame({"high": high, "low": frame.select(word(8)).to_series()})
    ordered_words = words_frame.with_row_index("__row").sort("high", "low")
    tied = ordered_words.select(
        ((pl.col("high") == pl.col("high").shift()) & (pl.col("low") == pl.col("low").shift()))
        .any()
    ).item()
    return keys.arg_sort() if tied else ordered_words.get_column("__row")
