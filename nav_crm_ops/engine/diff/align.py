"""Which side rows are in play: each side row aligned with its base row, and kept only if they differ.

Why: passing complete side frames must cost little more than passing only the changed rows.
Each side row finds its base row through a join of 64-bit key hashes (every match confirmed on
the key itself), then its values are compared with the base's exactly; no hash ever decides that
values are equal. Long frames are compared raw first (cheap, one column at a time), and
canonically only where raw values or dtypes differ.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

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

    Distinct hashes prove distinct keys, and counting 64-bit hashes is several times faster
    than counting strings; only when hashes repeat are the keys themselves counted (a repeat
    is then a real duplicate or, very rarely, a hash collision). ``hashes``: the frames'
    :func:`key_hashes` if already computed.
    """
    hashes = hashes if hashes is not None else key_hashes(frames, key)
    counted = pl.collect_all(
        (pl.LazyFrame([hashes[label]]).select(pl.first().n_unique()) for label in frames),
        engine=ENGINE,
    )
    distinct = {
        label: found.item() == frame.height
        for (label, frame), found in zip(frames.items(), counted, strict=True)
    }
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


def base_positions(
    sides: Sequence[pl.DataFrame],
    base: pl.DataFrame,
    key: str,
    by_hash: bool,
    hashes: Sequence[pl.Series] | None = None,
) -> list[pl.Series]:
    """Per side, for each row the row number of the base row with the same key (null if none).

    ``by_hash`` (the base's key hashes are distinct) joins 64-bit key hashes instead of the
    strings; every match is then confirmed on the keys themselves, so a side key whose hash
    collides with another base key's finds no base row, exactly as with a string join (the
    base holds no other row with that hash). Null keys never match, as in a polars join.
    ``hashes``: the sides' then the base's :func:`key_hashes`, if already computed.

    The join runs on polars' streaming engine: for a million 64-bit keys on each side it
    takes about half the CPU of the in-memory join (the pairs come out in no order; they are
    scattered into place by row number).
    """
    base_keys = base.get_column(key)

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
    if not by_hash:
        return found
    return _confirmed_on_keys(sides, found, base_keys, key)


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
    if frame.n_chunks() == 1 or rows.len() == 0:
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
    are compared raw first, one column at a time against the base column gathered into the
    side's order (equal raw values of the same dtype are equal canonically too), then
    canonically only for the few rows whose raw values differ and for fields whose dtypes
    differ from the base's. Short frames (changed rows) are compared canonically at once.
    """
    comparable = [_raw_comparable(frame, base, fields) for frame, _ in sides]
    raw_equal = _raw_equal(sides, base, fields, comparable)
    return [
        _canonically_differing(
            frame, positions, equal, base, fields, [f for f in fields if f not in fields_of]
        )
        for (frame, positions), equal, fields_of in zip(sides, raw_equal, comparable, strict=True)
    ]


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


def _raw_equal(
    sides: Sequence[SideRows],
    base: pl.DataFrame,
    fields: Sequence[DiffField],
    comparable: Sequence[list[DiffField]],
) -> list[pl.Series]:
    """Per side and row, whether it has a base row whose raw values of the side's
    ``comparable`` fields are equal to its own."""
    raw_equal = [positions.is_not_null() for _, positions in sides]
    for field in fields:
        users = [index for index, fields_of in enumerate(comparable) if field in fields_of]
        if not users:
            continue
        largest = max(sides[index][1].len() for index in users)
        column = gatherable(base.get_column(field.name), largest)
        # One query per side, collected together: comparing a million strings with base rows
        # in another order is bound by memory latency, so the sides run in parallel.
        equal = pl.collect_all(
            (
                pl.LazyFrame(
                    [
                        sides[index][0].get_column(field.name).alias("side"),
                        sides[index][1].alias("row"),
                    ]
                ).select(pl.col("side").eq_missing(pl.lit(column).gather(pl.col("row"))))
                for index in users
            ),
            engine=ENGINE,
        )
        for index, same in zip(users, equal, strict=True):
            raw_equal[index] = raw_equal[index] & same.to_series()
    return raw_equal


def _canonically_differing(
    side: pl.DataFrame,
    positions: pl.Series,
    raw_equal: pl.Series,
    base: pl.DataFrame,
    fields: Sequence[DiffField],
    others: Sequence[DiffField],
) -> pl.Series:
    """Row numbers of ``side`` rows without a base row or canonically unlike it.

    Rows equal raw on the raw-comparable fields need only the ``others`` compared."""
    side_schema, base_schema = side.schema, base.schema

    def differs(rows: pl.Series, compared: Sequence[DiffField]) -> pl.Series:
        if rows.len() == 0 or not compared:
            return rows.clear()
        names = [f.name for f in compared]
        pair = pl.concat(
            [
                rows_of(side.select(names), rows),
                base.select(pl.col(n).alias(f"__b_{n}") for n in names)[positions.gather(rows)],
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

    has_base = positions.is_not_null()
    without_base = (~has_base).arg_true()
    raw_differing = differs((has_base & ~raw_equal).arg_true(), fields)
    others_differing = differs(raw_equal.arg_true(), others)
    return pl.concat([without_base, raw_differing, others_differing]).sort()
