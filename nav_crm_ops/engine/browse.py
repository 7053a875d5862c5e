"""Reading records for people: pick lists, what differs in coupled pairs, ids that exist.

These read the services through the mappings' side readers (``engine.sides``) and express
rows in the mapping's field namespace, like a preview does, but decide nothing and write
nothing.
"""

from __future__ import annotations

import polars as pl

from ..connectors.odata import F, any_of
from ..exceptions import SyncError
from .context import EngineContext
from .ids import record_id
from .labels import label_expr
from .mapping import TableMapping
from .sides import SideReader, field_frame
from .sync.snapshot import Selection
from .vocabulary import Side

__all__ = ["compare_pairs", "pick_records", "refuse_unknown_ids", "search_columns"]


def compare_pairs(ctx: EngineContext, spec: TableMapping) -> pl.DataFrame:
    """Coupled pairs whose mapped values differ right now (``Workspace.compare``)."""
    resolver = ctx.resolver()
    nav_reader, crm_reader = ctx.readers(spec)
    couplings = ctx.store.couplings_frame(spec.name, columns=["nav_id", "crm_id"])
    nav = field_frame(nav_reader.by_ids(couplings["nav_id"].to_list()), spec, "nav", resolver)
    crm = field_frame(crm_reader.by_ids(couplings["crm_id"].to_list()), spec, "crm", resolver)
    fields = spec.diff_fields()
    joined = couplings.join(nav.rename({f.name: f"nav:{f.name}" for f in fields}),
                            left_on="nav_id", right_on="_id", how="inner").join(
        crm.select("_id", *[pl.col(f.name).alias(f"crm:{f.name}") for f in fields]),
        left_on="crm_id", right_on="_id", how="inner")
    parts = []
    for fld in fields:
        left, right = pl.col(f"nav:{fld.name}"), pl.col(f"crm:{fld.name}")
        if fld.kind == "text" and not fld.case_sensitive:
            left, right = left.str.to_lowercase(), right.str.to_lowercase()
        differs = ~left.eq_missing(right)
        if spec.field(fld.name).not_null and fld.direction != "bidirectional":
            source = pl.col(f"nav:{fld.name}" if fld.direction == "to_crm"
                            else f"crm:{fld.name}")
            differs = differs & source.is_not_null()
        parts.append(joined.filter(differs).select(
            "nav_id", "crm_id", pl.col("_key").alias("nav_key"),
            pl.lit(fld.name).alias("field"),
            pl.col(f"nav:{fld.name}").alias("nav_value"),
            pl.col(f"crm:{fld.name}").alias("crm_value")))
    return pl.concat(parts) if parts else pl.DataFrame()


def search_columns(spec: TableMapping, side: Side | str) -> list[str]:
    """The columns a search looks in: the natural key, the name and the plain match fields."""
    side = Side(side)
    spec_side = side.pick(spec.nav, spec.crm)
    names = [c for c in (spec_side.natural_key, spec_side.name) if c]
    for _, fields in spec.match_groups():
        for fld in fields:
            if fld.lookup is None and fld.options is None:
                names.append(side.pick(fld.nav, fld.crm))
    return list(dict.fromkeys(names))


def _searched(reader: SideReader, side: Side, columns: list[str], search: str,
              top: int) -> pl.DataFrame:
    """Rows whose search columns contain ``search``."""
    if side is Side.CRM:
        return reader.client.read(reader.entity, select=reader.select, top=top, etag=True,
                                  filter=any_of([F(c).contains(search) for c in columns]))
    # Business Central refuses `or` across different fields: one read per field.
    found = [reader.client.read(reader.entity, select=reader.select, top=top, etag=True,
                                filter=F(c).contains(search)) for c in columns]
    return pl.concat([f for f in found if f.height] or found[:1],
                     how="diagonal_relaxed").unique(
        subset=[reader.key], keep="first", maintain_order=True).head(top)


def pick_records(ctx: EngineContext, spec: TableMapping, side: Side | str,
                 search: str | None, top: int) -> pl.DataFrame:
    """Records of one side for people to pick from (``Workspace.records``): ``record``
    (number and name), ``coupled_to`` (the partner's id) and ``coupled_record`` (its number
    and name), and ``synced_version`` — the version the last sync wrote or read on this side
    (a record whose ``version`` still equals it was not changed since, by anyone else)."""
    side = Side(side)
    reader = side.pick(*ctx.readers(spec))
    if search:
        raw = _searched(reader, side, search_columns(spec, side), search, top)
    else:
        raw = reader.client.read(reader.entity, select=reader.select, top=top, etag=True)
    frame = field_frame(raw, spec, side.literal, ctx.resolver())
    couplings = _couplings_of(ctx, spec, side, frame["_id"].to_list())
    own, other = side.column("id"), side.other.column("id")
    partners = couplings.select(
        pl.col(own).alias("_id"), pl.col(other).alias("coupled_to"),
        label_expr(side.other.column("key"), side.other.column("name"), other)
        .alias("coupled_record"),
        pl.col(side.column("etag")).alias("synced_version"))
    named = frame if "_name" in frame.columns else frame.with_columns(
        pl.lit(None, pl.Utf8).alias("_name"))
    return named.join(partners, on="_id", how="left").with_columns(
        label_expr("_key", "_name", "_id").alias("record")).rename(
        {"_id": "id", "_key": "key", "_name": "record_name", "_version": "version",
         "_modified": "modified"})


def _couplings_of(ctx: EngineContext, spec: TableMapping, side: Side,
                  ids: list[str]) -> pl.DataFrame:
    """The couplings of the records ``ids`` of ``side`` (never the mapping's whole table)."""
    if side is Side.NAV:
        return ctx.store.couplings_frame(spec.name, nav_ids=ids)
    return ctx.store.couplings_frame(spec.name, crm_ids=ids)


def refuse_unknown_ids(ctx: EngineContext, spec: TableMapping, selection: Selection) -> None:
    """Refuse (naming them) selected ids that are neither coupled in ``spec`` nor exist
    on their side; a coupled record that is gone is a deletion the sync handles."""
    nav_reader, crm_reader = ctx.readers(spec)
    missing: list[str] = []
    for ids, reader, side, what in (
            (selection.nav_ids, nav_reader, Side.NAV, f"BC {spec.nav.entity}"),
            (selection.crm_ids, crm_reader, Side.CRM, f"CRM {spec.crm.logical_name}")):
        coupled = side.column("id")
        known = set(_couplings_of(ctx, spec, side, list(ids))[coupled].to_list())
        unknown = [i for i in dict.fromkeys(ids) if i not in known]
        if not unknown:
            continue
        found = reader.by_ids(unknown)
        present = {record_id(v) for v in found[reader.key]} if found.height else set()
        missing += [f"{what} {i}" for i in unknown if i not in present]
    if missing:
        raise SyncError(f"mapping {spec.name}: no such record(s): {', '.join(missing)}; "
                        "check the ids (nothing was synchronized)")
