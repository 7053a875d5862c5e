"""Is a plan still true? What changed since the preview, record by record.

Why: a plan is applied later than it was made — a saved plan after the scheduled sync already
ran, a preview left open in a dashboard for an hour. Applying it as if nothing happened creates
every record the scheduled sync created a second time, or couples a record that was coupled to
another one since. So apply first compares each record with what the preview saw, and refuses
the records whose state changed; they come back in the next preview, as they are then:

* **couplings** (always, from the state database, no request): the preview stores, per record,
  the CRM record its NAV record was coupled to and the NAV record its CRM record was coupled to
  (``nav_coupled_to`` / ``crm_coupled_to``; null when uncoupled). A record coupled, uncoupled or
  coupled elsewhere since is refused;
* **versions** (saved plans: :meth:`Workspace.apply`): the records a plan writes are read again
  by id (their version only), and a record edited or deleted on either side since the preview
  is refused. Updates carry the version read as ``If-Match`` too; inserts have nothing else to
  stop them.
"""

from __future__ import annotations

from collections.abc import Iterable

import polars as pl

from ..connectors.factory import Connections
from ..connectors.reader import ETAG
from ..store import StateStore
from .ids import record_id
from .mapping import TableMapping
from .vocabulary import Side
from .vocabulary import writes as writing

__all__ = ["COUPLING_COLUMNS", "changed_couplings", "changed_versions", "with_couplings_seen"]

COUPLING_COLUMNS = ("nav_coupled_to", "crm_coupled_to")
"""Plan record columns: the coupling each side's record had when the preview read it."""

_REFUSED_SCHEMA = {"record_id": pl.Utf8, "message": pl.Utf8}
_SIDE_NAME = {"nav": "BC", "crm": "CRM"}


def with_couplings_seen(records: pl.DataFrame, couplings: pl.DataFrame) -> pl.DataFrame:
    """``records`` with :data:`COUPLING_COLUMNS` from ``couplings`` (nav_id, crm_id)."""
    records = records.with_columns(pl.col("nav_id").cast(pl.Utf8), pl.col("crm_id").cast(pl.Utf8))
    return _joined(records, couplings.select("nav_id", "crm_id").cast(pl.Utf8))


def _joined(records: pl.DataFrame, couplings: pl.DataFrame) -> pl.DataFrame:
    by_nav = couplings.select("nav_id", pl.col("crm_id").alias("nav_coupled_to"))
    by_crm = couplings.select("crm_id", pl.col("nav_id").alias("crm_coupled_to"))
    return (records.drop(COUPLING_COLUMNS, strict=False)
            .join(by_nav, on="nav_id", how="left", maintain_order="left")
            .join(by_crm, on="crm_id", how="left", maintain_order="left"))


def changed_couplings(mapping: str, records: pl.DataFrame, store: StateStore) -> pl.DataFrame:
    """``record_id`` and ``message`` of the records whose coupling changed since the preview.

    Plans made before these columns existed cannot be checked and are refused whole by the plan
    loader (format version), so a missing column here is an error in the caller."""
    if records.height == 0:
        return pl.DataFrame(schema=_REFUSED_SCHEMA)
    by_nav = store.couplings_frame(mapping, columns=["nav_id", "crm_id"],
                                   nav_ids=_present(records["nav_id"]))
    # A CRM id is coupled at most once per mapping (uq_couplings_crm): one the NAV lookup
    # found needs no second lookup (an update of coupled records asked for every pair twice).
    found = set(by_nav.get_column("crm_id").to_list())
    crm_ids = [i for i in _present(records["crm_id"]) if i not in found]
    current = pl.concat([
        by_nav, store.couplings_frame(mapping, columns=["nav_id", "crm_id"], crm_ids=crm_ids),
    ]).unique()
    seen = records.select("record_id", "nav_id", "crm_id", "nav_key", "crm_key", "action",
                          *COUPLING_COLUMNS)
    now = _joined(seen.drop(COUPLING_COLUMNS), current).select(
        "record_id", pl.col("nav_coupled_to").alias("__nav_now"),
        pl.col("crm_coupled_to").alias("__crm_now"))
    both = seen.join(now, on="record_id", how="left", maintain_order="left")
    moved = both.filter(pl.col("nav_coupled_to").ne_missing(pl.col("__nav_now"))
                        | pl.col("crm_coupled_to").ne_missing(pl.col("__crm_now")))
    return pl.DataFrame([(row["record_id"], _coupling_message(row))
                         for row in moved.iter_rows(named=True)],
                        schema=_REFUSED_SCHEMA, orient="row")


def _present(column: pl.Series) -> list[str]:
    return [str(v) for v in column.drop_nulls().unique().to_list()]


def _coupling_message(row: dict[str, object]) -> str:
    side = "nav" if row["nav_coupled_to"] != row["__nav_now"] else "crm"
    was, now = row[f"{side}_coupled_to"], row[f"__{side}_now"]
    other = Side(side).other.label
    what = f"the {_SIDE_NAME[side]} record {_name(row, side)}"
    if was is None:
        change = f"was coupled to {other} record {now} after the preview"
    elif now is None:
        change = f"was uncoupled from {other} record {was} after the preview"
    else:
        change = f"was coupled to {other} record {now} instead of {was} after the preview"
    action = str(row["action"])
    consequence = ("not created again" if action.startswith("insert")
                   else "not written or coupled")
    return (f"changed after the preview: {what} {change} (by another sync or a person); "
            f"{consequence}. It is previewed again as it is now in the next run")


def _name(row: dict[str, object], side: str) -> str:
    key, record_id = row.get(f"{side}_key"), row.get(f"{side}_id")
    return f"{key} ({record_id})" if key else str(record_id)


def changed_versions(mapping: TableMapping, records: pl.DataFrame,
                     connections: Connections) -> pl.DataFrame:
    """``record_id`` and ``message`` of the written records edited or deleted on either side
    since the preview (read again by id, versions only: a few requests per thousand records)."""
    writes = records.filter(writing())
    refused: dict[str, str] = {}
    for side in ("nav", "crm"):
        wanted = writes.filter(pl.col(f"{side}_version").is_not_null()
                               & pl.col(f"{side}_id").is_not_null())
        if wanted.height == 0:
            continue
        versions = _read_versions(mapping, side, wanted[f"{side}_id"].to_list(), connections)
        for row in wanted.iter_rows(named=True):
            now = versions.get(record_id(row[f"{side}_id"]))
            if now == row[f"{side}_version"] or row["record_id"] in refused:
                continue
            what = f"the {_SIDE_NAME[side]} record {_name(row, side)}"
            change = "was deleted" if now is None else "was edited"
            refused[row["record_id"]] = (
                f"changed after the preview: {what} {change} since; not written. "
                "It is previewed again as it is now in the next run")
    return pl.DataFrame(list(refused.items()), schema=_REFUSED_SCHEMA, orient="row")


def _read_versions(mapping: TableMapping, side: str, ids: Iterable[str],
                   connections: Connections) -> dict[str, str]:
    spec = Side(side).pick(mapping.nav, mapping.crm)
    client = (connections.business_central_for(mapping.nav.api) if side == "nav"
              else connections.dataverse)
    frame = client.read_by_ids(spec.entity, spec.key, list(ids), select=[spec.key], etag=True)
    if frame.height == 0:
        return {}
    return {record_id(k): str(v) for k, v in
            zip(frame[spec.key].to_list(), frame[ETAG].to_list(), strict=True)}
