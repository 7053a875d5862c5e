"""A plan as JSON for scripts: every record with its field changes, streamed.

Why a module of its own: ``nav-crm-ops preview --json`` and ``--out FILE.jsonl`` must carry what
a preview is for — each record (ids, natural keys, action) with each field change (old and new
value, base, target side, conflict, resolution) — not only the counts of :meth:`Plan.summary`.
A plan of 100,000 records is written record by record (:func:`record_objects` yields one
object at a time over slices of the plan), so no giant JSON text is held in memory.

One record object (the same in ``--json``'s ``records`` list and on each JSON Lines line)::

    {"mapping": "CUSTOMER", "record_id": "...", "nav_id": "...", "crm_id": "...",
     "nav_key": "10000", "crm_key": "10000", "action": "update_crm", "direction": "to_crm",
     ..., "changes": [{"field": "telephone1", "target": "crm", "old_value": "0123",
     "new_value": "0456", "base_value": "0123", "nav_value": "0456", "crm_value": "0123",
     "changed_side": "nav", "conflict": false, "resolution": "nav_wins"}]}

Every column of :attr:`Plan.records` is a record key; ``changes`` holds every field change of
the record (also those written nowhere: fields both sides changed alike, held conflicts).
``old_value`` is the value the target side holds now (null when the change is written
nowhere); ``new_value`` the value written there.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Any

import polars as pl

from ..vocabulary import Side
from .io import replace_atomically
from .model import Plan

__all__ = ["CHANGE_KEYS", "plan_document_head", "record_objects", "save_json_lines",
           "write_json",
           "write_json_lines"]

CHANGE_KEYS: tuple[str, ...] = ("field", "target", "old_value", "new_value", "base_value",
                                "nav_value", "crm_value", "changed_side", "conflict",
                                "resolution")
"""Keys of one field change, in the order they are written."""

_SLICE = 5_000
"""Records turned into Python objects at a time (bounds the memory a large plan needs)."""


def _old_value() -> pl.Expr:
    target = pl.col("target").cast(pl.Utf8)
    return (pl.when(target == Side.CRM.value).then(pl.col("crm_value"))
            .when(target == Side.NAV.value).then(pl.col("nav_value"))
            .otherwise(pl.lit(None, pl.Utf8)).alias("old_value"))


def _changes_by_record(field_changes: pl.DataFrame) -> pl.DataFrame:
    """One row per (mapping, record_id): ``changes``, the list of its field changes."""
    changes = field_changes.with_columns(_old_value())
    return changes.group_by("mapping", "record_id", maintain_order=True).agg(
        pl.struct(*(pl.col(c).cast(pl.Utf8) if changes.schema[c] != pl.Boolean else pl.col(c)
                    for c in CHANGE_KEYS)).alias("changes"))


def record_objects(plan: Plan) -> Iterator[dict[str, Any]]:
    """Each plan record (in plan order) as a JSON-ready dict with its field changes."""
    records = plan.records.with_columns(
        pl.col(name).cast(pl.Utf8) for name, dtype in plan.records.schema.items()
        if isinstance(dtype, pl.Enum))
    joined = records.join(_changes_by_record(plan.field_changes), on=["mapping", "record_id"],
                          how="left", maintain_order="left")
    for start in range(0, joined.height, _SLICE):
        for row in joined.slice(start, _SLICE).iter_rows(named=True):
            row["changes"] = row["changes"] or []
            yield row


def plan_document_head(plan: Plan, extra: Mapping[str, Any]) -> dict[str, Any]:
    """What ``preview --json`` printed before records were added (``plan_id``, ``file``,
    ``summary``), plus ``counts`` (records per action) and the totals of records and
    field changes; ``extra`` goes first (the saved file)."""
    return {"plan_id": plan.metadata.plan_id, **extra,
            "summary": plan.summary().to_dicts(), "counts": plan.counts(),
            "created_at": plan.metadata.created_at, "mappings": list(plan.metadata.mappings),
            "record_count": plan.records.height,
            "field_change_count": plan.field_changes.height}


def _dumps(value: Any, indent: int | None = None, *, ascii_only: bool = False) -> str:
    return json.dumps(value, default=str, ensure_ascii=ascii_only, indent=indent)


def write_json(plan: Plan, stream: IO[str], extra: Mapping[str, Any]) -> None:
    """One JSON document: :func:`plan_document_head` plus ``records``, every record with its
    field changes, written record by record (ASCII with ``\\u`` escapes: standard output may
    not be UTF-8)."""
    head = _dumps(plan_document_head(plan, extra), indent=1, ascii_only=True)
    stream.write(head[:-1].rstrip() + ',\n "records": [')
    for index, record in enumerate(record_objects(plan)):
        stream.write(("," if index else "") + "\n  " + _dumps(record, ascii_only=True))
    stream.write("\n ]\n}\n")


def save_json_lines(plan: Plan, out: Path) -> int:
    """The plan as JSON Lines in ``out`` (written whole or not at all); the line count."""
    def write(partial: Path) -> int:
        with partial.open("w", encoding="utf-8") as stream:
            return write_json_lines(plan, stream)
    return replace_atomically(out, write, "JSON Lines file")


def write_json_lines(plan: Plan, stream: IO[str]) -> int:
    """JSON Lines (UTF-8 text for a file opened as such): one line per record (its
    ``changes`` inside, and the ``plan_id``), in plan order; returns the number of lines."""
    count = 0
    plan_id = plan.metadata.plan_id
    for record in record_objects(plan):
        stream.write(_dumps({"plan_id": plan_id, **record}) + "\n")
        count += 1
    return count
