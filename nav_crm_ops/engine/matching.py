"""Match-based coupling: pair uncoupled records of the two sides on the mapping's match fields.

Rules (the reference's, made duplicate-proof): match groups are tried by ascending priority;
all fields of a group must be non-empty and equal (case-insensitive unless the field says
otherwise); exactly one candidate that no other record also matches couples; several candidates
(or one candidate claimed by several records) make *both* sides ``ambiguous``: they are neither
coupled nor created, so a duplicate on one side is never copied to the other. Records no group
decides are ``unmatched``.
"""

from __future__ import annotations

from typing import Literal

import polars as pl

from .mapping import FieldMapping, TableMapping

__all__ = ["MATCH_SCHEMA", "match_records"]

MATCH_SCHEMA: dict[str, pl.DataType] = {
    "source_side": pl.Utf8(), "source_id": pl.Utf8(), "source_key": pl.Utf8(),
    "status": pl.Utf8(), "other_id": pl.Utf8(), "message": pl.Utf8(),
}


def _group_key(fields: tuple[FieldMapping, ...]) -> pl.Expr:
    parts = []
    for fld in fields:
        column = pl.col(fld.name).cast(pl.Utf8).str.strip_chars()
        case_sensitive = fld.match.case_sensitive if fld.match else False
        parts.append(column if case_sensitive else column.str.to_lowercase())
    return pl.concat_str(parts, separator="\x1f").alias("__match")


def _describe(fields: tuple[FieldMapping, ...], side: Literal["nav", "crm"]) -> str:
    return " + ".join(f.nav if side == "nav" else f.crm for f in fields)


def match_records(mapping: TableMapping, nav: pl.DataFrame, crm: pl.DataFrame) -> pl.DataFrame:
    """Match uncoupled NAV rows with uncoupled CRM rows (field frames, see ``engine.sides``).

    Returns one row per record of either side (:data:`MATCH_SCHEMA`): ``status`` matched,
    ambiguous or unmatched, ``other_id`` the partner of a match, ``message`` for people.
    """
    decided: list[dict[str, str | None]] = []
    nav_open, crm_open = nav.select("_id", "_key", *[f.name for f in mapping.enabled_fields()]), \
        crm.select("_id", "_key", *[f.name for f in mapping.enabled_fields()])
    for _, fields in mapping.match_groups():
        names = [f.name for f in fields]
        nav_keys = nav_open.filter(pl.all_horizontal(pl.col(n).is_not_null() for n in names)) \
            .select("_id", "_key", _group_key(fields))
        crm_keys = crm_open.filter(pl.all_horizontal(pl.col(n).is_not_null() for n in names)) \
            .select("_id", "_key", _group_key(fields))
        hits = nav_keys.join(crm_keys, on="__match", how="inner", suffix="_crm")
        if hits.height == 0:
            continue
        hits = hits.with_columns(
            pl.len().over("_id").alias("__per_nav"), pl.len().over("_id_crm").alias("__per_crm"))
        nav_fields, crm_fields = _describe(fields, "nav"), _describe(fields, "crm")
        for row in hits.iter_rows(named=True):
            if row["__per_nav"] == 1 and row["__per_crm"] == 1:
                message = f"matched on {nav_fields} = {crm_fields}"
                decided.append({"source_side": "nav", "source_id": row["_id"],
                                "source_key": row["_key"], "status": "matched",
                                "other_id": row["_id_crm"], "message": message})
                decided.append({"source_side": "crm", "source_id": row["_id_crm"],
                                "source_key": row["_key_crm"], "status": "matched",
                                "other_id": row["_id"], "message": message})
        ambiguous = hits.filter((pl.col("__per_nav") > 1) | (pl.col("__per_crm") > 1))
        for nav_id, group in ambiguous.group_by("_id", maintain_order=True):
            crm_ids = group.get_column("_id_crm").unique(maintain_order=True).to_list()
            decided.append({
                "source_side": "nav", "source_id": str(nav_id[0]),
                "source_key": group.get_column("_key").item(0), "status": "ambiguous",
                "other_id": None, "message": (
                    f"ambiguous: {len(crm_ids)} CRM {mapping.crm.logical_name} records match "
                    f"on {crm_fields} ({', '.join(crm_ids)}) or they also match other BC "
                    "records: merge the duplicates in CRM or couple one by hand")})
        for crm_id, group in ambiguous.group_by("_id_crm", maintain_order=True):
            nav_ids = group.get_column("_id").unique(maintain_order=True).to_list()
            decided.append({
                "source_side": "crm", "source_id": str(crm_id[0]),
                "source_key": group.get_column("_key_crm").item(0), "status": "ambiguous",
                "other_id": None, "message": (
                    f"ambiguous: matches {len(nav_ids)} BC {mapping.nav.entity} record(s) on "
                    f"{nav_fields} ({', '.join(nav_ids)}) that also match other CRM records, or "
                    "several records here match the same one: couple by hand")})
        taken_nav = {d["source_id"] for d in decided if d["source_side"] == "nav"}
        taken_crm = {d["source_id"] for d in decided if d["source_side"] == "crm"}
        nav_open = nav_open.filter(~pl.col("_id").is_in(list(taken_nav)))
        crm_open = crm_open.filter(~pl.col("_id").is_in(list(taken_crm)))
    for side, rest in (("nav", nav_open), ("crm", crm_open)):
        for record_id, key in rest.select("_id", "_key").iter_rows():
            decided.append({"source_side": side, "source_id": record_id, "source_key": key,
                            "status": "unmatched", "other_id": None,
                            "message": "no record on the other side matches"})
    return pl.DataFrame(decided, schema=MATCH_SCHEMA)
