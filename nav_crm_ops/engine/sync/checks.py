"""The preview's last phase: can the planned values be written, and what the plan says.

* :func:`check_writes` — values that cannot be written (a lookup to an uncoupled record, a code
  without a CRM option, a CRM choice without a BC code, a BC code that does not exist) turn the
  record into ``fail`` with a message that says what to do;
* :func:`created_once` — ``create_only`` mappings never write a coupled record again;
* :func:`with_notes` — the ``not_synchronized`` notes of each record's source in its message;
* :func:`failed_with` — records turned into ``fail`` with their reasons (the document-lines
  step uses it too).
"""

from __future__ import annotations

from collections.abc import Mapping

import polars as pl

from ..mapping import FieldMapping, TableMapping
from ..resolve import Resolver, is_unresolved
from ..vocabulary import INSERTS, UPDATES, PlanAction, Side, action_is, changes_to, writes
from .snapshot import NOTES

__all__ = ["check_writes", "created_once", "failed_with", "field_problems", "with_notes"]

Problems = dict[str, list[str]]


def _add(problems: Problems, record_id: str, message: str) -> None:
    problems.setdefault(record_id, []).append(message)


def _to_crm_problems(mapping: TableMapping, fld: FieldMapping, rows: pl.DataFrame,
                     resolver: Resolver, problems: Problems) -> None:
    """Lookups without a coupled CRM record, codes without a CRM option."""
    if rows.height == 0:
        return
    values = rows.select("record_id", "new_value").rows()
    if fld.lookup is not None:
        resolved = resolver.lookup_nav_to_crm(fld, rows["new_value"].drop_nulls())
        for record_id, value in values:
            if value and value not in resolved:
                _add(problems, record_id, resolver.lookup_failure(fld, value, to="crm"))
    if fld.options is not None:
        known, _ = resolver.option_maps(mapping.name, fld)
        for record_id, value in values:
            if value and value not in known and fld.options.on_missing == "record":
                _add(problems, record_id,
                     f"{fld.nav} {value!r} has no CRM option in {fld.crm}: add "
                     f"{{nav: {value}, crm: <value>}} to the options of field {fld.name} "
                     f"in mapping {mapping.name}, or set on_missing: create")


def _to_nav_problem(mapping: TableMapping, fld: FieldMapping, value: str,
                    resolver: Resolver) -> str | None:
    """Why one value cannot be written to BC, or None."""
    if is_unresolved(value):
        if fld.lookup is not None:
            return resolver.lookup_failure(fld, value, to="nav")
        return (f"{fld.crm}: CRM {value.strip('<>')} has no BC code: add it to the options of "
                f"field {fld.name} in mapping {mapping.name}")
    if (fld.lookup is not None and fld.lookup.via is not None
            and resolver.key_to_via(fld, value) is None):
        return resolver.lookup_failure(fld, value, to="nav")
    if fld.nav_reference is not None and resolver.reference_id(fld, value) is None:
        return (f"{fld.nav}: BC has no {fld.nav_reference.entity} with code {value!r}: "
                "create it in BC or change the value in CRM")
    return None


def field_problems(mapping: TableMapping, changes: pl.DataFrame,
                   resolver: Resolver) -> Problems:
    """Per record, why its values cannot be written (records that can are not listed)."""
    problems: Problems = {}
    writing = changes.filter(pl.col("target").is_in([str(s) for s in Side]))
    for fld in mapping.enabled_fields():
        if fld.lookup is None and fld.options is None and fld.nav_reference is None:
            continue
        rows = writing.filter(pl.col("field") == fld.name)
        if rows.height == 0 or (fld.lookup is not None and fld.clear_on_failed_lookup):
            continue
        _to_crm_problems(mapping, fld, rows.filter(changes_to(Side.CRM)), resolver, problems)
        for record_id, value in rows.filter(changes_to(Side.NAV)).select(
                "record_id", "new_value").iter_rows():
            problem = _to_nav_problem(mapping, fld, value, resolver) if value else None
            if problem:
                _add(problems, record_id, problem)
    return problems


def failed_with(records: pl.DataFrame, problems: Mapping[str, str],
                applies_to: pl.Expr) -> pl.DataFrame:
    """``records`` in which those with a problem (and matching ``applies_to``) ``fail`` with
    it as their message and write nowhere."""
    if not problems:
        return records
    messages = pl.DataFrame({"record_id": list(problems), "__problem": list(problems.values())})
    failing = pl.col("__problem").is_not_null() & applies_to
    return records.join(messages, on="record_id", how="left").with_columns(
        pl.when(failing).then(pl.lit(str(PlanAction.FAIL))).otherwise(pl.col("action"))
        .alias("action"),
        pl.when(failing).then(pl.col("__problem")).otherwise(pl.col("message")).alias("message"),
    ).with_columns(
        pl.when(action_is(PlanAction.FAIL)).then(pl.lit("none"))
        .otherwise(pl.col("direction")).alias("direction")).drop("__problem")


def check_writes(mapping: TableMapping, records: pl.DataFrame, changes: pl.DataFrame,
                 resolver: Resolver) -> pl.DataFrame:
    """Turn records whose values cannot be written into ``fail`` with the reason."""
    problems = field_problems(mapping, changes, resolver)
    return failed_with(records, {k: "; ".join(v) for k, v in problems.items()}, writes())


def created_once(mapping: TableMapping, records: pl.DataFrame) -> pl.DataFrame:
    """``create_only`` mappings: a coupled record is never written again; its changes and
    a missing partner are reported instead (the follow-up step handles posted and deleted
    orders)."""
    action = pl.col("action").cast(pl.Utf8)
    touched = action_is(*UPDATES, PlanAction.CONFLICT, PlanAction.DELETION_CONFLICT)
    note = pl.lit(f"{mapping.name} writes a record once, when it creates it: this change "
                  "is not synchronized (change the other side by hand if it matters)")
    gone = pl.lit(f"the other side's record no longer exists: {mapping.name}'s follow-up "
                  "step settles it (posted or deleted)")
    return records.with_columns(
        pl.when(touched).then(pl.lit(str(PlanAction.SKIP))).otherwise(action).alias("action"),
        pl.when(touched).then(pl.lit("create_only"))
        .otherwise(pl.col("skip_reason").cast(pl.Utf8)).alias("skip_reason"),
        pl.when(action_is(PlanAction.DELETION_CONFLICT)).then(gone)
        .when(touched).then(note).otherwise(pl.col("message")).alias("message"),
        pl.when(touched).then(pl.lit("none"))
        .otherwise(pl.col("direction").cast(pl.Utf8)).alias("direction"),
    )


def with_notes(records: pl.DataFrame, nav: pl.DataFrame, crm: pl.DataFrame) -> pl.DataFrame:
    """Append the ``not_synchronized`` notes of each record's source to its message."""
    found = [frame.filter(pl.col(NOTES).is_not_null()).select("_id", NOTES)
             for frame in (nav, crm) if NOTES in frame.columns]
    notes = pl.concat(found) if found else pl.DataFrame()
    if notes.height == 0 or records.height == 0:
        return records
    notes = notes.unique(subset="_id", keep="first")
    joined = records.join(notes.rename({"_id": "record_id"}), on="record_id", how="left")
    return joined.with_columns(
        pl.when(pl.col(NOTES).is_not_null()
                & action_is(*INSERTS, *UPDATES, PlanAction.CONFLICT))
        .then(pl.concat_str([pl.col("message"), pl.col(NOTES)], separator="; ",
                            ignore_nulls=True))
        .otherwise(pl.col("message")).alias("message")).drop(NOTES)
