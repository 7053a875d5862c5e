"""Records (JSON dicts) to polars DataFrames with stable dtypes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import polars as pl

__all__ = ["DATETIME", "records_to_frame"]

DATETIME = pl.Datetime("ms", "UTC")
KNOWN_DATETIMES = frozenset({"createdon", "modifiedon", "overriddencreatedon",
                             "lastModifiedDateTime", "Last_Date_Modified"})


def records_to_frame(records: Sequence[Mapping[str, Any]], columns: Sequence[str],
                     schema: Mapping[str, Any] | None = None) -> pl.DataFrame:
    """Build a frame with exactly ``columns`` (or all keys when empty), null-filled.

    Datetime columns (declared in ``schema`` or known timestamp fields) are parsed to
    ``Datetime("ms", "UTC")``; other declared dtypes are cast; the rest are inferred, with
    text (GUIDs, strings) kept as ``Utf8``. Annotation keys (``@odata.etag`` …) are kept only
    when named in ``columns``.
    """
    declared = dict(schema or {})
    names = list(columns) if columns else _all_keys(records)
    series = [_column(name, [r.get(name) for r in records], _dtype_for(name, declared))
              for name in names]
    return pl.DataFrame(series) if series else pl.DataFrame()


def _dtype_for(name: str, declared: Mapping[str, Any]) -> Any:
    """The declared dtype, else ``DATETIME`` for well-known timestamp fields, else None.

    The services send timestamps as text; without this they would stay strings and never
    compare with the watermark."""
    dtype = declared.get(name)
    if dtype is None and name in KNOWN_DATETIMES:
        return DATETIME
    return dtype


def _column(name: str, values: list[Any], dtype: Any) -> pl.Series:
    """One column: datetimes parsed, declared dtypes cast, all-null as text, the rest inferred."""
    if (dtype is not None and dtype == DATETIME) or isinstance(dtype, pl.Datetime):
        text = pl.Series(name, [None if v is None else str(v) for v in values], pl.Utf8)
        return text.str.to_datetime(time_unit="ms", time_zone="UTC", strict=False)
    if dtype is not None:
        return pl.Series(name, values, dtype=dtype, strict=False)
    if all(v is None for v in values):
        return pl.Series(name, values, dtype=pl.Utf8)
    return _infer(name, values)


def _infer(name: str, values: list[Any]) -> pl.Series:
    sample = next(v for v in values if v is not None)
    if isinstance(sample, bool):
        return pl.Series(name, values, dtype=pl.Boolean, strict=False)
    if isinstance(sample, (int, float)) and not isinstance(sample, bool):
        if all(isinstance(v, int) for v in values if v is not None):
            return pl.Series(name, values, dtype=pl.Int64, strict=False)
        return pl.Series(name, values, dtype=pl.Float64, strict=False)
    if isinstance(sample, str):
        return pl.Series(name, [None if v is None else str(v) for v in values], dtype=pl.Utf8)
    return pl.Series(name, values, dtype=pl.Object)


def _all_keys(records: Sequence[Mapping[str, Any]]) -> list[str]:
    seen: dict[str, None] = {}
    for record in records:
        for key in record:
            if "@" not in key:
                seen.setdefault(key, None)
    return list(seen)
