"""How people name a record: its number or code and its name (``10000 The Cannon Group PLC``,
``EUR Euro``), the id only when a record has neither.

A mapping side names the columns (``natural_key`` and ``name`` of ``nav:`` / ``crm:``); field
frames carry them as ``_key`` and ``_name``, plans and couplings as ``nav_key``/``nav_name``
and ``crm_key``/``crm_name``, record errors as ``source_label``. Every front end (previews,
couplings, error groups, confirmations, job reports, the command line) labels records with
:func:`record_label` or :func:`label_expr`, so a record reads the same everywhere.
"""

from __future__ import annotations

from typing import Any

import polars as pl

__all__ = ["label_expr", "record_label"]


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def record_label(key: Any, name: Any, record_id: Any = None) -> str:
    """``key name`` (the name alone when it is the key, or when there is no key); the id
    when the record has neither; "" when nothing is known."""
    key_text, name_text = _text(key), _text(name)
    if key_text and name_text and name_text != key_text:
        return f"{key_text} {name_text}"
    return key_text or name_text or _text(record_id)


def label_expr(key: str, name: str, record_id: str | None = None) -> pl.Expr:
    """:func:`record_label` over frame columns (absent ones may be given as None literals)."""
    key_text = pl.col(key).cast(pl.Utf8).str.strip_chars()
    name_text = pl.col(name).cast(pl.Utf8).str.strip_chars()
    both = key_text.is_not_null() & (key_text != "") & name_text.is_not_null() \
        & (name_text != "") & (name_text != key_text)
    fallback = [key_text.replace("", None), name_text.replace("", None)]
    if record_id is not None:
        fallback.append(pl.col(record_id).cast(pl.Utf8))
    return pl.when(both).then(pl.concat_str([key_text, name_text], separator=" ")).otherwise(
        pl.coalesce(*fallback))
