"""Which side rows are in play: each side row aligned with its base row, and kept only if they differ.

Why: passing complete side frames must cost little more than passing only the changed rows.
Each side row finds its base row through a join of 64-bit key hashes (every match confirmed on
the key itself; a side holding the base's keys in the base's order needs no join), then its
values are compared with the base's exactly; no hash ever decides that values are equal. Long
frames are compared raw first (cheap, a few columns at a time), and canonically only where raw
values or dtypes differ.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import polars as pl

from ...exceptions import SyncError
from .canonical import canonical, compare_key
from .model import ENGINE, DiffField

__all__ = [
    "base_positions",
    "gatherable",
    "key_hashes",
    "key_hashes_unique",
    "rows_differing_from_base",
    "rows_of",
]

_KEY_HASH_SEED = 20_261_123
"""Any fixed seed: key hashes only ever speed up joins and uniqueness checks, never decide."""
_RAW_COMPARE_ROWS = 50_000
"""Side frames at least this long are compared raw first (see :func:`rows_differing_from_base`);
shorter ones, usually the changed rows only, are compared canonically at once."""

_ORDER_PROBE_ROWS = 64
"""Rows whose keys :func:`_in_base_order` compares before all of them (most sides in another
order than the base differ within these)."""

_COMPARE_GROUP = 2
"""Fields :func:`_raw_equal` compares per round: enough expressions to keep every core busy,
few enough base columns joined into one chunk at a time (16 MB per million rows each)."""

JOIN_ENGINE: Literal["streaming"] = "streaming"
"""The engine of the key join (see :func:`base_positions`)."""

SideRows = tuple[pl.DataFrame, pl.Series]
"""A side frame with its :func:`base_positions` (the base row number of each row, or null)."""


def _duplicate_keys(frame: pl.DataFrame, key: str) -> list[str]:
    """Up to five keys that occur more than once in ``frame`` (for the error message)."""
    found = frame.select(key).filter(pl.col(key).is_duplicated()).unique().sort(key).head(5)
    return list(found.get_column(key).to_list())


def key_hashes(frames: dict[str, pl.DataFrame], key: str) -> dict[str, pl.Series]:
    """Per frame, the 64-bit hashes of its keys (computed once: the uniqueness check and the
    key join both use them; the frames' hashes in parallel)."""
    hashed = pl.collect_all(
        (frame.lazy().select(pl.col(key).hash(_KEY_HASH_SEED)) for frame in frames.values()),
        engine=ENGINE,
    )
    return {label: found.to_series() for label, found in zip(frames, hashed, strict=True)}


def key_hashes_unique(
    frames: dict[str, pl.DataFrame], key: str, hashes: dict[str, pl.Series] | None = None
) -> dict[str, bool]:
    """Refuse frames holding a key twice; per frame, whether its key hashes are all distinct.

    Distinct hashes prove distinct keys, and sorting 64-bit hashes is many times faster than
    counting strings; only when hashes repeat are the keys themselves counted (a repeat
    is then a real duplicate or, very rarely, a hash collision). ``hashes``: the frames'
    :func:`key_hashes` if already computed.
    """
    hashes = hashes if hashes is not None else key_hashes(frames, key)
    distinct = {label: _all_distinct(hashes[label]) for label in frames}
    duplicated = [
        label
        for label, frame in frames.items()
        if not distinct[label] and frame.get_column(key).n_unique() != frame.height
    ]
    if duplicated:
        details = "; ".join(
            f"{label}: {_duplicate_keys(frames[label], key)}" for label in duplicated
        )
        raise SyncError(
            "each frame passed to the diff must hold one row per coupled pair; duplicated "
            f"{key} values in {details}"
        )
    return distinct


def _all_distinct(hashes: pl.Series) -> bool:
    """Whether no two of ``hashes`` are equal: numpy sorts a million 64-bit integers (with SIMD)
    in a fraction of the time polars takes to count the distinct ones."""
    ordered = np.sort(hashes.to_numpy())
    return not bool((ordered[1:] == ordered[:-1]).any())


def base_positions(
    sides: Sequence[pl.DataFrame],
    base: pl.DataFrame,
    key: str,
    by_hash: bool,
    hashes: Sequence[pl.Series] | None = None,
) -> list[pl.Series]:
    """Per side, for each row the row number of the base row with the same key (null if none).

    A side holding the base's keys in the base's order (no null among them) needs no join: its
    rows are the base's rows (checked on the keys themselves, on a few rows first).
    ``by_hash`` (the base's key hashes are distinct) joins 64-bit key hashes instead of the
    strings; every match is then confirmed on the keys themselves, so a side key whose hash
    collides with another base key's finds no base row, exactly as with a string join (the
    base holds no other row with that hash). Null keys never match, as in a polars join.
    ``hashes``: the sides' then the base's :func:`key_hashes`, if already computed.
    """
    base_keys = base.get_column(key)
    joined = [
        i for i, side in enumerate(sides) if not _in_base_order(side.get_column(key), base_keys)
    ]
    found = _joined_positions(
        [sides[i] for i in joined],
        base_keys,
        key,
        by_hash,
        None if hashes is None else [*(hashes[i] for i in joined), hashes[len(sides)]],
    )
    if by_hash:
        found = _confirmed_on_keys([sides[i] for i in joined], found, base_keys, key)
    positions = dict(zip(joined, found, strict=True))
    return [
        positions[i]
        if i in positions
        else pl.int_range(side.height, dtype=pl.get_index_type(), eager=True)
        for i, side in enumerate(sides)
    ]


def _in_base_order(keys: pl.Series, base_keys: pl.Series) -> bool:
    """Whether ``keys`` are ``base_keys`` row for row, none of them null."""
    return (
        keys.len() == base_keys.len()
        and not keys.null_count()
        and keys.head(_ORDER_PROBE_ROWS).equals(base_keys.head(_ORDER_PROBE_ROWS))
        and bool(keys.eq_missing(base_keys).all())
    )


def _joined_positions(
    sides: Sequence[pl.DataFrame],
    base_keys: pl.Series,
    key: str,
    by_hash: bool,
    hashes: Sequence[pl.Series] | None,
) -> list[pl.Series]:
    """:func:`base_positions` by a join of the keys or (``by_hash``) of their hashes, the
    matches not yet confirmed.

    The join runs on polars' streaming engine: for a million 64-bit keys on each side it
    takes about half the CPU of the in-memory join (the pairs come out in no order; they are
    scattered into place by row number).
    """

    def join_column(index: int, keys: pl.Series) -> pl.Series:
        if not by_hash:
            return keys
        return hashes[index] if hashes is not None else keys.hash(_KEY_HASH_SEED)

    base_rows = pl.LazyFrame({"__on": join_column(len(sides), base_keys)}).with_row_index(
        "__base"
    )
    found: list[pl.Series] = []
    for index, side in enumerate(sides):  # one after the other: two hash tables cost memory
        matches = (
            pl.LazyFrame({"__on": join_column(index, side.get_column(key))})
            .with_row_index("__side")
            .join(base_rows, on="__on", how="inner")
            .select("__side", "__base")
            .collect(engine=JOIN_ENGINE)
        )
        nothing = pl.repeat(None, side.height, dtype=pl.get_index_type(), eager=True)
        found.append(
            nothing.scatter(matches.get_column("__side"), matches.get_column("__base"))
            if matches.height
            else nothing
        )
        del matches
    return found


def _confirmed_on_keys(
    sides: Sequence[pl.DataFrame], found: list[pl.Series], base_keys: pl.Series, key: str
) -> list[pl.Series]:
    """``found`` (positions from a hash join) without matches whose keys differ (collisions)."""
    keys = gatherable(base_keys, max((p.len() for p in found), default=0))
    confirmed = pl.collect_all(
        (
            pl.LazyFrame([side.get_column(key).alias("key"), positions.alias("row")]).select(
                (pl.col("key") == pl.lit(keys).gather(pl.col("row"))).fill_null(False)
            )
            for side, positions in zip(sides, found, strict=True)
        ),
        engine=ENGINE,
    )
    return [
        positions.set(~same.to_series(), None)
        for positions, same in zip(found, confirmed, strict=True)
    ]


def gatherable(column: pl.Series, rows: int) -> pl.Series:
    """``column`` ready for gathering ``rows`` random rows.

    Gathering from a column in many chunks (as parquet readers return them) costs about ten
    times as much per row as from one chunk; joining the chunks costs about as much as
    gathering a sixteenth of the column, so it pays only for large gathers.
    """
    return column.rechunk() if column.n_chunks() > 1 and rows * 16 > column.len() else column


def rows_of(frame: pl.DataFrame, rows: pl.Series) -> pl.DataFrame:
    """``frame[rows]`` for ascending, distinct row numbers ``rows``.

    A frame in many chunks (as parquet readers return it) is filtered with a mask instead:
    gathering a few thousand rows from it costs about three times as much per column.
    """
    if max(frame.n_chunks("all"), default=1) == 1 or rows.len() == 0:
        return frame[rows]
    return frame.filter(pl.repeat(False, frame.height, eager=True).scatter(rows, True))


def rows_differing_from_base(
    sides: Sequence[SideRows], base: pl.DataFrame, fields: Sequence[DiffField]
) -> list[pl.Series]:
    """Per side, the row numbers of the rows that differ canonically from their base row or
    have none (``sides``: each frame with its :func:`base_positions`).

    Every field value is compared with its base value exactly; no hash ever decides that two
    values are equal (a row-hash pre-filter would not save the work: the rows whose hashes
    agree, nearly all of them, would still need this compare). Long frames (complete sides)
    are compared raw first, a few fields at a time against the base columns gathered into the
    side's order (equal raw values of the same dtype are equal canonically too), and each
    round compares canonically only the few rows whose raw values of its fields differ
    (:func:`_raw_rounds`); fields whose dtypes differ from the base's, and every field of a
    short frame (changed rows), are compared canonically at once.
    """
    comparable = [_raw_comparable(frame, base, fields) for frame, _ in sides]
    differing = [positions.is_null() for _, positions in sides]
    _raw_rounds(sides, base, fields, comparable, differing)
    for (frame, positions), fields_of, marks in zip(sides, comparable, differing, strict=True):
        others = [f for f in fields if f not in fields_of]
        if others:
            columns = {f.name: base.get_column(f.name) for f in others}
            rows = positions.is_not_null().arg_true()
            marks.scatter(_canonically_unlike(frame, positions, rows, columns, others, base), True)
    return [marks.arg_true() for marks in differing]


def _raw_comparable(
    frame: pl.DataFrame, base: pl.DataFrame, fields: Sequence[DiffField]
) -> list[DiffField]:
    """The fields of a long side frame whose raw values compare with the base's as they are
    (same dtype, base column not all-null); none for a short frame."""
    if frame.height < _RAW_COMPARE_ROWS:
        return []
    base_schema = base.schema
    return [
        f
        for f in fields
        if base_schema[f.name] != pl.Null and frame.schema[f.name] == base_schema[f.name]
    ]


def _raw_rounds(
    sides: Sequence[SideRows],
    base: pl.DataFrame,
    fields: Sequence[DiffField],
    comparable: Sequence[list[DiffField]],
    differing: list[pl.Series],
) -> None:
    """Mark in ``differing`` (per side, a flag per row) the rows canonically unlike their base
    row on one of the side's ``comparable`` fields.

    Comparing a million strings with base rows in another order is bound by memory latency,
    so every core should wait on some of it: a few fields at a time (:data:`_COMPARE_GROUP`),
    one query per side with each field a separate expression of one ``select`` (polars runs
    them on all cores), the queries collected together. Each base column is joined into one
    chunk once for both sides (:func:`gatherable`) and let go after its round; the rows
    whose raw values of the round's fields differ are compared canonically on those fields,
    with base values gathered from the same columns.
    """
    largest = max((positions.len() for _, positions in sides), default=0)
    used = [f for f in fields if any(f in fields_of for fields_of in comparable)]
    for start in range(0, len(used), _COMPARE_GROUP):
        group = used[start : start + _COMPARE_GROUP]
        columns = {f.name: gatherable(base.get_column(f.name), largest) for f in group}
        compared = [[f for f in group if f in fields_of] for fields_of in comparable]
        users = [index for index, fields_of in enumerate(compared) if fields_of]
        queries = [_raw_same(sides[index], compared[index], columns) for index in users]
        for index, same in zip(users, pl.collect_all(queries, engine=ENGINE), strict=True):
            frame, positions = sides[index]
            rows = (positions.is_not_null() & ~same.to_series()).arg_true()
            unlike = _canonically_unlike(frame, positions, rows, columns, compared[index], base)
            differing[index].scatter(unlike, True)
        del columns


def _raw_same(
    side: SideRows, compared: Sequence[DiffField], columns: dict[str, pl.Series]
) -> pl.LazyFrame:
    """Per row of ``side``, whether its raw values of the ``compared`` fields equal those of
    its base row (``columns``: the base's columns of those fields); meaningless for rows
    without a base row."""
    frame, positions = side
    return (
        pl.LazyFrame([frame.get_column(f.name) for f in compared] + [positions.alias("__row")])
        .select(
            pl.col(f.name).eq_missing(pl.lit(columns[f.name]).gather(pl.col("__row")))
            for f in compared
        )
        .select(pl.all_horizontal(pl.all()))
    )


def _canonically_unlike(
    side: pl.DataFrame,
    positions: pl.Series,
    rows: pl.Series,
    columns: dict[str, pl.Series],
    compared: Sequence[DiffField],
    base: pl.DataFrame,
) -> pl.Series:
    """Those of ``side``'s ``rows`` (ascending, each with a base row) whose ``compared`` fields
    differ canonically from the base row's (``columns``: the base's columns of those fields)."""
    if rows.len() == 0 or not compared:
        return rows.clear()
    side_schema, base_schema = side.schema, base.schema
    names = [f.name for f in compared]
    at = positions.gather(rows)
    pair = pl.concat(
        [
            rows_of(side.select(names), rows),
            pl.DataFrame([columns[n].gather(at).alias(f"__b_{n}") for n in names]),
        ],
        how="horizontal",
    )
    same = pair.select(
        pl.all_horizontal(
            compare_key(canonical(pl.col(f.name), side_schema[f.name], f), f).eq_missing(
                compare_key(canonical(pl.col(f"__b_{f.name}"), base_schema[f.name], f), f)
            )
            for f in compared
        )
    ).to_series()
    return rows.filter(~same)
