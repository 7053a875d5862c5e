"""Canonical values: how the diff reads a field so the two sides and the base compare alike.

Why: the same value arrives as different text or dtypes from BC, Dataverse and the stored base
(``1.50`` vs ``1.5``, ``Yes`` vs ``true``, ``{GUID}`` vs ``guid``, local vs UTC times). Each
field kind has one display form (``text`` as is, ``number`` rounded to ``decimals`` and printed
by polars, ``bool`` as ``true``/``false``, ``datetime`` as UTC ISO 8601 ``...Z``, ``id`` as
lower-case GUIDs without braces); values that do not parse for their kind keep their stripped
text so nothing is silently lost. Nulls and empty strings are "empty" and equal each other.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import polars as pl

from ...exceptions import SyncError
from .model import DiffField, FrameLike

__all__ = ["canonical", "canonical_frame", "canonical_lazy", "compare_key", "lazy_input"]

_TRUE_WORDS = ("true", "1", "yes", "y", "t", "on")
_FALSE_WORDS = ("false", "0", "no", "n", "f", "off")
_DATETIME_WITH_OFFSET = ("%Y-%m-%dT%H:%M:%S%.f%:z", "%Y-%m-%dT%H:%M:%S%.f%z")
_DATETIME_NAIVE = ("%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M", "%Y-%m-%d")


def lazy_input(
    frame: FrameLike | None, key: str, columns: Sequence[str], label: str
) -> pl.LazyFrame:
    """``frame`` reduced to the key (as Utf8) and ``columns``; an empty frame for None.

    Refuses a frame lacking a column, naming the frame (``label``) and what it has."""
    if frame is None:
        return pl.LazyFrame(
            {key: []} | {c: [] for c in columns},
            schema={key: pl.Utf8} | dict.fromkeys(columns, pl.Utf8),
        )
    lazy = frame.lazy() if isinstance(frame, pl.DataFrame) else frame
    schema = lazy.collect_schema()
    missing = [c for c in (key, *columns) if c not in schema]
    if missing:
        raise SyncError(
            f"the {label} frame lacks column(s) {missing}: every frame passed to the diff needs "
            f"{key!r} and one column per diff field (has {list(schema.names())})"
        )
    return lazy.select(pl.col(key).cast(pl.Utf8), *[pl.col(c) for c in columns])


def _empty_to_null(text: pl.Expr) -> pl.Expr:
    return pl.when(text == "").then(None).otherwise(text)


def _stripped_text(expr: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    return expr.cast(pl.Utf8).str.strip_chars() if dtype != pl.Utf8 else expr.str.strip_chars()


def _canonical_text(expr: pl.Expr, dtype: pl.DataType, field: DiffField) -> pl.Expr:
    text = expr if dtype == pl.Utf8 else expr.cast(pl.Utf8)
    return _empty_to_null(text)


def _canonical_number(expr: pl.Expr, dtype: pl.DataType, field: DiffField) -> pl.Expr:
    fallback: pl.Expr | None = None
    if dtype == pl.Utf8:
        fallback = _empty_to_null(expr.str.strip_chars())
        number = fallback.cast(pl.Float64, strict=False)
    else:
        number = expr.cast(pl.Float64, strict=False)
    if field.decimals is not None:
        number = number.round(field.decimals)
    number = pl.when(number == 0).then(pl.lit(0.0)).otherwise(number)
    text = number.cast(pl.Utf8)
    return text if fallback is None else pl.coalesce(text, fallback)


def _canonical_bool(expr: pl.Expr, dtype: pl.DataType, field: DiffField) -> pl.Expr:
    if dtype == pl.Boolean:
        flag = expr
        fallback = None
    elif dtype.is_numeric():
        flag = expr != 0
        fallback = None
    else:
        fallback = _empty_to_null(_stripped_text(expr, dtype))
        mapping = dict.fromkeys(_TRUE_WORDS, True) | dict.fromkeys(_FALSE_WORDS, False)
        flag = fallback.str.to_lowercase().replace_strict(
            mapping, default=None, return_dtype=pl.Boolean
        )
    text = pl.when(flag).then(pl.lit("true")).when(~flag).then(pl.lit("false"))
    return text if fallback is None else pl.coalesce(text, fallback)


def _canonical_datetime(expr: pl.Expr, dtype: pl.DataType, field: DiffField) -> pl.Expr:
    fallback = None
    if isinstance(dtype, pl.Datetime):
        moment = (
            expr.dt.convert_time_zone("UTC")
            if dtype.time_zone is not None
            else expr.dt.replace_time_zone("UTC")
        )
    elif dtype == pl.Date:
        moment = expr.cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
    else:
        fallback = _empty_to_null(_stripped_text(expr, dtype))
        iso = fallback.str.replace(r"^(\d{4}-\d{2}-\d{2}) ", "${1}T").str.replace(r"Z$", "+00:00")
        attempts = [
            iso.str.to_datetime(f, time_unit="us", strict=False).dt.convert_time_zone("UTC")
            for f in _DATETIME_WITH_OFFSET
        ] + [
            iso.str.to_datetime(f, time_unit="us", strict=False).dt.replace_time_zone("UTC")
            for f in _DATETIME_NAIVE
        ]
        moment = pl.coalesce(attempts)
    text = moment.dt.cast_time_unit("us").dt.strftime("%Y-%m-%dT%H:%M:%S%.fZ")
    return text if fallback is None else pl.coalesce(text, fallback)


def _canonical_id(expr: pl.Expr, dtype: pl.DataType, field: DiffField) -> pl.Expr:
    return _empty_to_null(_stripped_text(expr, dtype).str.strip_chars("{}").str.to_lowercase())


_BY_KIND: dict[str, Callable[[pl.Expr, pl.DataType, DiffField], pl.Expr]] = {
    "text": _canonical_text,
    "number": _canonical_number,
    "bool": _canonical_bool,
    "datetime": _canonical_datetime,
    "id": _canonical_id,
}
"""The canonical form of each field kind (:data:`~.model.FIELD_KINDS`)."""


def canonical(expr: pl.Expr, dtype: pl.DataType, field: DiffField) -> pl.Expr:
    """The display form of one field's values: comparable across sides and dtypes."""
    if dtype == pl.Null:
        return pl.lit(None, dtype=pl.Utf8)
    return _BY_KIND[field.kind](expr, dtype, field)


def canonical_lazy(frame: pl.LazyFrame, key: str, fields: Sequence[DiffField]) -> pl.LazyFrame:
    """The key and every field of ``frame`` in canonical form."""
    schema = frame.collect_schema()
    return frame.select(
        pl.col(key),
        *[canonical(pl.col(f.name), schema[f.name], f).alias(f.name) for f in fields],
    )


def canonical_frame(
    frame: FrameLike, fields: Sequence[DiffField], *, key: str = "pair_id"
) -> pl.DataFrame:
    """``frame`` with every field column in its canonical Utf8 form (how the diff sees it)."""
    lazy = lazy_input(frame, key, [f.name for f in fields], "given")
    return canonical_lazy(lazy, key, fields).collect()


def compare_key(expr: pl.Expr, field: DiffField) -> pl.Expr:
    """What equality compares of a canonical value: text fields may ignore case."""
    if field.kind == "text" and not field.case_sensitive:
        return expr.str.to_lowercase()
    return expr
