"""Match-based coupling: pair uncoupled records of the two sides on the mapping's match fields.

Rules (the reference's, made duplicate-proof): match groups are tried by ascending priority;
all fields of a group must be non-empty and equal (case-insensitive unless the field says
otherwise); exactly one candidate that no other record also matches couples; several candidates
(or one candidate claimed by several records) make *both* sides ``ambiguous``: they are neither
coupled nor created, so a duplicate on one side is never copied to the other. Records no group
decides are ``unmatched``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

from .mapping import FieldMapping, TableMapping
from .vocabulary import Side

__all__ = ["MATCH_SCHEMA", "match_records"]

MATCH_SCHEMA: dict[str, pl.DataType] = {
    "source_side": pl.Utf8(), "source_id": pl.Utf8(), "source_key": pl.Utf8(),
    "status": pl.Utf8(), "other_id": pl.Utf8(), "message": pl.Utf8(),
}


UNMATCHED = "no record on the other side matches"


def _group_key(fields: tuple[FieldMapping, ...]) -> pl.Expr:
    parts = []
    for fld in fields:
        column = pl.col(fld.name).cast(pl.Utf8).str.strip_chars()
        case_sensitive = fld.match.case_sensitive if fld.match else False
        parts.append(column if case_sensitive else column.str.to_lowercase())
    return pl.concat_str(parts, separator="\x1f").alias("__match")


def _describe(fields: tuple[FieldMapping, ...], side: Side) -> str:
    return " + ".join(side.pick(f.nav, f.crm) for f in fields)


def _filled(frame: pl.DataFrame, fields: tuple[FieldMapping, ...]) -> pl.DataFrame:
    """``frame``'s records whose fields of the group are all filled, with their group key."""
    names = [f.name for f in fields]
    return frame.filter(pl.all_horizontal(pl.col(n).is_not_null() for n in names)) \
        .select("_id", "_key", _group_key(fields))


@dataclass
class _Matching:
    """One matching run: the records of each side still open, and the decisions so far.

    Why an object: every match group narrows the open records of both sides and adds
    decisions for both; the decisions decide which records later groups still see."""

    mapping: TableMapping
    nav_open: pl.DataFrame
    crm_open: pl.DataFrame
    decided: list[dict[str, str | None]] = field(default_factory=list)

    def decide(self, side: Side, record_id: str, key: str | None, status: str,
               other_id: str | None, message: str) -> None:
        self.decided.append({"source_side": side.value, "source_id": record_id,
                             "source_key": key, "status": status, "other_id": other_id,
                             "message": message})

    def try_group(self, fields: tuple[FieldMapping, ...]) -> None:
        """Decide the open records one match group pairs (coupled or ambiguous)."""
        hits = _filled(self.nav_open, fields).join(
            _filled(self.crm_open, fields), on="__match", how="inner", suffix="_crm")
        if hits.height == 0:
            return
        hits = hits.with_columns(
            pl.len().over("_id").alias("__per_nav"), pl.len().over("_id_crm").alias("__per_crm"))
        nav_fields, crm_fields = _describe(fields, Side.NAV), _describe(fields, Side.CRM)
        self._couple_unique(hits, f"matched on {nav_fields} = {crm_fields}")
        ambiguous = hits.filter((pl.col("__per_nav") > 1) | (pl.col("__per_crm") > 1))
        self._ambiguous_nav(ambiguous, crm_fields)
        self._ambiguous_crm(ambiguous, nav_fields)
        self._close_decided()

    def _couple_unique(self, hits: pl.DataFrame, message: str) -> None:
        """Pairs where each record has exactly one candidate, claimed by no one else."""
        for row in hits.iter_rows(named=True):
            if row["__per_nav"] == 1 and row["__per_crm"] == 1:
                self.decide(Side.NAV, row["_id"], row["_key"], "matched", row["_id_crm"], message)
                self.decide(Side.CRM, row["_id_crm"], row["_key_crm"], "matched", row["_id"],
                            message)

    def _ambiguous_nav(self, ambiguous: pl.DataFrame, crm_fields: str) -> None:
        for nav_id, group in ambiguous.group_by("_id", maintain_order=True):
            crm_ids = group.get_column("_id_crm").unique(maintain_order=True).to_list()
            self.decide(
                Side.NAV, str(nav_id[0]), group.get_column("_key").item(0), "ambiguous", None,
                f"ambiguous: {len(crm_ids)} CRM {self.mapping.crm.logical_name} records match "
                f"on {crm_fields} ({', '.join(crm_ids)}) or they also match other BC "
                "records: merge the duplicates in CRM or couple one by hand")

    def _ambiguous_crm(self, ambiguous: pl.DataFrame, nav_fields: str) -> None:
        for crm_id, group in ambiguous.group_by("_id_crm", maintain_order=True):
            nav_ids = group.get_column("_id").unique(maintain_order=True).to_list()
            self.decide(
                Side.CRM, str(crm_id[0]), group.get_column("_key_crm").item(0), "ambiguous",
                None,
                f"ambiguous: matches {len(nav_ids)} BC {self.mapping.nav.entity} record(s) on "
                f"{nav_fields} ({', '.join(nav_ids)}) that also match other CRM records, or "
                "several records here match the same one: couple by hand")

    def _close_decided(self) -> None:
        """Drop the decided records from the open ones: later groups never see them."""
        taken = {side: {d["source_id"] for d in self.decided if d["source_side"] == side}
                 for side in Side}
        self.nav_open = self.nav_open.filter(~pl.col("_id").is_in(list(taken[Side.NAV])))
        self.crm_open = self.crm_open.filter(~pl.col("_id").is_in(list(taken[Side.CRM])))

    def unmatched(self) -> list[pl.DataFrame]:
        """Every record still open, as result rows: no group decided it (column-wise: on a
        first sync that is nearly every record)."""
        return [rest.select(pl.lit(side.value, pl.Utf8).alias("source_side"),
                            pl.col("_id").cast(pl.Utf8).alias("source_id"),
                            pl.col("_key").cast(pl.Utf8).alias("source_key"),
                            pl.lit("unmatched", pl.Utf8).alias("status"),
                            pl.lit(None, pl.Utf8).alias("other_id"),
                            pl.lit(UNMATCHED, pl.Utf8).alias("message"))
                for side, rest in ((Side.NAV, self.nav_open), (Side.CRM, self.crm_open))]


def match_records(mapping: TableMapping, nav: pl.DataFrame, crm: pl.DataFrame) -> pl.DataFrame:
    """Match uncoupled NAV rows with uncoupled CRM rows (field frames, see ``engine.sides``).

    Returns one row per record of either side (:data:`MATCH_SCHEMA`): ``status`` matched,
    ambiguous or unmatched, ``other_id`` the partner of a match, ``message`` for people.
    """
    names = [f.name for f in mapping.enabled_fields()]
    run = _Matching(mapping, nav.select("_id", "_key", *names), crm.select("_id", "_key", *names))
    for _, fields in mapping.match_groups():
        run.try_group(fields)
    return pl.concat([pl.DataFrame(run.decided, schema=MATCH_SCHEMA), *run.unmatched()])
