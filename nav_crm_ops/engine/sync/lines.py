"""Document lines in the preview: the documents a plan creates get their lines.

Documents the plan creates get one field change per line value (``lines[2].quantity``, what the
preview shows and apply writes with the document, in one request); a line that cannot be
written fails its document with the reason (``line <n>: <reason>``), so no document ever exists
without its lines.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import polars as pl

from ...connectors.factory import Connections
from ..ids import record_id_expr
from ..mapping import TableMapping
from ..plan import line_field
from ..resolve import Resolver
from ..sides import field_frame
from ..vocabulary import INSERTS, PlanAction, Side, action_is, inserts_to
from .checks import check_writes
from .classify import change_rows, record_rows

__all__ = ["plan_lines"]


@dataclass
class _Lines:
    """What the lines of the created documents add to the plan."""

    changes: list[dict[str, Any]] = field(default_factory=list)
    problems: dict[str, str] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)

    def fail(self, document: str, text: str) -> None:
        known = self.problems.get(document)
        self.problems[document] = f"{known}; {text}" if known else text


def _read_lines(mapping: TableMapping, doc_ids: list[str], source: Side, resolver: Resolver,
                connections: Connections) -> pl.DataFrame | None:
    """The lines of the documents ``doc_ids`` of ``source`` as a field frame with their
    document (``__document``) and position (``__position``, from 1 in line order)."""
    assert mapping.lines is not None
    lines = mapping.line_mapping
    spec = source.pick(mapping.lines.nav, mapping.lines.crm)
    client = (connections.business_central_for(spec.api) if source is Side.NAV
              else connections.dataverse)
    conditions = {f.name: f.only_when for f in lines.enabled_fields() if f.only_when}
    select = list(dict.fromkeys([
        *source.pick(lines.nav_select, lines.crm_select)(),
        spec.parent_read_column, spec.order, *(c.column for c in conditions.values())]))
    raw = client.read_by_ids(spec.entity, spec.parent_read_column, doc_ids, select=select)
    if raw.height == 0:
        return None
    frame = field_frame(raw, lines, source, resolver).with_columns(
        pl.when(raw.get_column(c.column).cast(pl.Utf8).is_in(list(c.values)))
        .then(pl.col(name)).otherwise(pl.lit(None, pl.Utf8)).alias(name)
        for name, c in conditions.items()).with_columns(
        raw.select(record_id_expr(pl.col(spec.parent_read_column))).to_series()
        .alias("__document"),
        raw.get_column(spec.order).alias("__order"))
    return frame.sort("__document", "__order", nulls_last=True).with_columns(
        pl.int_range(1, pl.len() + 1).over("__document").alias("__position"))


def _add_lines(mapping: TableMapping, frame: pl.DataFrame, target: Side, found: _Lines,
               resolver: Resolver) -> None:
    """Field changes of every line (on the document and, for the check, on the line)."""
    lines = mapping.line_mapping
    source = target.other
    writing = [f for f in lines.enabled_fields() if target.pick(f.writes_to_nav, f.writes_to_crm)]
    line_records: list[dict[str, Any]] = []
    line_changes: list[dict[str, Any]] = []
    for row in frame.iter_rows(named=True):
        document, position = row["__document"], row["__position"]
        found.counts[document] = found.counts.get(document, 0) + 1
        line_id = f"{document}:{position}"
        line_records.append({"mapping": lines.name, "record_id": line_id,
                             "action": str(PlanAction.insert(target)), "direction": "none"})
        for fld in writing:
            value = row.get(fld.name)
            if value is None or value == "":
                continue
            common = {"base_value": None, source.column("value"): value,
                      "changed_side": str(source), "target": str(target), "new_value": value,
                      "conflict": False, "resolution": "none"}
            line_changes.append({"mapping": lines.name, "record_id": line_id,
                                 "field": fld.name, **common})
            found.changes.append({"mapping": mapping.name, "record_id": document,
                                  "field": line_field(position, fld.name), **common})
    checked = check_writes(lines, record_rows(line_records), change_rows(line_changes), resolver)
    for line_id, message in checked.filter(action_is(PlanAction.FAIL)).select(
            "record_id", "message").iter_rows():
        document, _, position = line_id.rpartition(":")
        found.fail(document, f"line {position}: {message}")


def _with_lines(records: pl.DataFrame, found: _Lines) -> pl.DataFrame:
    """Documents whose lines cannot be written fail; the others say how many lines they have."""
    action = pl.col("action").cast(pl.Utf8)
    lines_note = pl.col("record_id").replace_strict(
        {k: f"{v} line(s)" for k, v in found.counts.items()}, default=None, return_dtype=pl.Utf8)
    inserting = action_is(*INSERTS)
    failed = pl.col("record_id").is_in(list(found.problems)) & inserting
    return records.with_columns(
        pl.when(failed).then(pl.lit(str(PlanAction.FAIL))).otherwise(action).alias("action"),
        pl.when(failed).then(pl.col("record_id").replace_strict(
            found.problems, default=None, return_dtype=pl.Utf8))
        .when(inserting)
        .then(pl.concat_str([pl.col("message"), lines_note], separator="; ",
                            ignore_nulls=True))
        .otherwise(pl.col("message")).alias("message"),
        pl.when(failed).then(pl.lit("none"))
        .otherwise(pl.col("direction").cast(pl.Utf8)).alias("direction"))


def plan_lines(mapping: TableMapping, records: pl.DataFrame, changes: pl.DataFrame,
               resolver: Resolver, connections: Connections,
               ) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The plan with the lines of the documents it creates (see the module docstring)."""
    found = _Lines()
    for target in (Side.CRM, Side.NAV):
        docs = records.filter(inserts_to(target))
        if docs.height == 0:
            continue
        source = target.other
        frame = _read_lines(mapping, docs[source.column("id")].to_list(), source, resolver,
                            connections)
        if frame is not None:
            _add_lines(mapping, frame, target, found, resolver)
    if found.changes:
        changes = pl.concat([changes, change_rows(found.changes)], how="diagonal_relaxed")
    return _with_lines(records, found), changes
