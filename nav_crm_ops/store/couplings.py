"""Couplings: which NAV record is paired with which CRM record, per mapping.

Why a repository of its own: couplings are the store's busiest table (the planner reads them in
bulk, the applier writes them in batches) and carry the three-way diff's base values; their
queries, the bulk upsert and the pairing rules live here, behind :class:`StateStore`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl
from sqlalchemy import Connection, delete, func, insert, select, update

from ..exceptions import StateConflictError, StateStoreError
from .base import (
    DriverStatement,
    InList,
    Repository,
    Transactions,
    dialect_insert,
    dumps,
    loads,
    mapping_key,
)
from .schema import couplings, utc_now

__all__ = ["Coupling", "CouplingRepository"]

_COUPLING_FRAME_SCHEMA: dict[str, pl.DataType] = {
    "mapping": pl.Utf8(), "nav_id": pl.Utf8(), "crm_id": pl.Utf8(), "nav_key": pl.Utf8(),
    "crm_key": pl.Utf8(), "nav_name": pl.Utf8(), "crm_name": pl.Utf8(), "nav_modified_at": pl.Utf8(), "crm_modified_at": pl.Utf8(),
    "nav_etag": pl.Utf8(), "crm_etag": pl.Utf8(), "base_values": pl.Utf8(), "created_at": pl.Utf8(), "updated_at": pl.Utf8(),
}
_KEPT_ON_UPSERT = ("nav_key", "crm_key", "nav_name", "crm_name", "nav_modified_at", "crm_modified_at", "nav_etag",
                   "crm_etag", "base_values")


@dataclass(frozen=True)
class Coupling:
    """One coupled pair: ids, natural keys (for lookups and display) and names (display),
    last synced modified-on
    per side and ``base_values``, the field values as last synced (the three-way diff's base)."""

    mapping: str
    nav_id: str
    crm_id: str
    nav_key: str | None = None
    crm_key: str | None = None
    nav_name: str | None = None
    crm_name: str | None = None
    nav_modified_at: str | None = None
    crm_modified_at: str | None = None
    nav_etag: str | None = None
    crm_etag: str | None = None
    base_values: Mapping[str, Any] | None = None
    created_at: str = ""
    updated_at: str = ""


def _coupling(row: Any) -> Coupling:
    data = dict(row._mapping)
    data.pop("id", None)
    data.pop("company", None)
    data["base_values"] = loads(data.get("base_values"))
    return Coupling(**data)


def _find(conn: Connection, mapping: str, column: str, value: str) -> Coupling | None:
    row = conn.execute(select(couplings).where(  # the transaction's company: the repository's
        couplings.c.company == conn.info.get("company", ""),
        couplings.c.mapping == mapping, couplings.c[column] == value)).first()
    return None if row is None else _coupling(row)


def _name(value: Any) -> str | None:
    """A record's name as stored beside its key (cut to the column's 250 characters)."""
    return None if value is None or value == "" else str(value)[:250]


_UPSERT_COLUMNS = ("company", "mapping", "nav_id", "crm_id", "nav_key", "crm_key", "nav_name",
                   "crm_name", "nav_modified_at", "crm_modified_at", "nav_etag", "crm_etag",
                   "base_values", "created_at", "updated_at")
"""The columns of :func:`_upsert_row`'s tuples, in their order."""


def _upsert_row(key: str, record: Mapping[str, Any], now: str, company: str) -> tuple[Any, ...]:
    """One coupling's values in :data:`_UPSERT_COLUMNS` order (a tuple: the driver takes it
    as it is, where a dict per row cost a reordering more)."""
    get = record.get
    nav_id, crm_id = get("nav_id"), get("crm_id")
    if not nav_id or not crm_id:
        raise StateStoreError(f"mapping {key}: every coupling row needs nav_id and crm_id")
    base = get("base_values")
    return (company, key, str(nav_id), str(crm_id), get("nav_key"), get("crm_key"),
            _name(get("nav_name")), _name(get("crm_name")), get("nav_modified_at"),
            get("crm_modified_at"), get("nav_etag"), get("crm_etag"),
            base if base is None or isinstance(base, str) else dumps(base), now, now)


def _by_ids(names: tuple[str, ...], by: str) -> InList:
    """The lookup of couplings' ``names`` by a list of ``by`` values (ids or natural keys),
    each slice's rows in the order they were coupled."""
    return InList(f"SELECT {', '.join(names)} FROM couplings WHERE company = {{p}} "
                  f"AND mapping = {{p}} AND {by} IN ({{ids}}) ORDER BY id")


class CouplingRepository(Repository):
    """The ``couplings`` table. ``dialect`` (the engine's) picks the bulk upsert statement."""

    def __init__(self, tx: Transactions, dialect: str, company: str = "") -> None:
        super().__init__(tx, company)
        self._dialect = dialect
        self._upsert = DriverStatement(self._upsert_statement)
        self._lookups: dict[tuple[tuple[str, ...], str], InList] = {}

    def by_nav(self, mapping: str, nav_id: str) -> Coupling | None:
        with self._tx(write=False) as conn:
            return _find(conn, mapping_key(mapping), "nav_id", nav_id)

    def by_crm(self, mapping: str, crm_id: str) -> Coupling | None:
        with self._tx(write=False) as conn:
            return _find(conn, mapping_key(mapping), "crm_id", crm_id)

    def couple(self, mapping: str, nav_id: str, crm_id: str, *,
               nav_key: str | None = None, crm_key: str | None = None,
               nav_name: str | None = None, crm_name: str | None = None,
               base_values: Mapping[str, Any] | None = None,
               nav_modified_at: str | None = None,
               crm_modified_at: str | None = None) -> Coupling:
        """Couple two records; refuses ids already coupled to another record (says which)."""
        key = mapping_key(mapping)
        if not nav_id or not crm_id:
            raise StateStoreError(f"mapping {key}: both a NAV id and a CRM id are required to couple")
        with self._tx() as conn:
            by_nav = _find(conn, key, "nav_id", nav_id)
            by_crm = _find(conn, key, "crm_id", crm_id)
            if by_nav is not None and by_nav.crm_id == crm_id:
                return by_nav
            if by_crm is not None:
                raise StateStoreError(
                    f"mapping {key}: CRM record {crm_id} is already coupled to NAV record "
                    f"{by_crm.nav_id}; uncouple that pair first or pick another CRM record"
                )
            if by_nav is not None:
                raise StateStoreError(
                    f"mapping {key}: NAV record {nav_id} is already coupled to CRM record "
                    f"{by_nav.crm_id}; uncouple that pair first or pick another NAV record"
                )
            now = utc_now()
            conn.execute(insert(couplings).values(
                company=self.company, mapping=key, nav_id=nav_id, crm_id=crm_id, nav_key=nav_key, crm_key=crm_key,
                nav_name=_name(nav_name), crm_name=_name(crm_name), base_values=dumps(base_values), nav_modified_at=nav_modified_at,
                crm_modified_at=crm_modified_at, created_at=now, updated_at=now))
            found = _find(conn, key, "nav_id", nav_id)
        assert found is not None
        return found

    def uncouple(self, mapping: str, *, nav_id: str | None = None, crm_id: str | None = None) -> int:
        """Remove the coupling of ``nav_id`` or ``crm_id``; returns how many were removed."""
        key = mapping_key(mapping)
        if nav_id is None and crm_id is None:
            raise StateStoreError(f"mapping {key}: give nav_id or crm_id of the pair to uncouple")
        conditions = [self.scoped(couplings), couplings.c.mapping == key]
        if nav_id is not None:
            conditions.append(couplings.c.nav_id == nav_id)
        if crm_id is not None:
            conditions.append(couplings.c.crm_id == crm_id)
        with self._tx() as conn:
            return conn.execute(delete(couplings).where(*conditions)).rowcount or 0

    def upsert(self, mapping: str, rows: pl.DataFrame | Iterable[Mapping[str, Any]]) -> int:
        """Insert or update many couplings keyed by (mapping, nav_id) in one transaction.

        Rows need ``nav_id`` and ``crm_id``; optional ``nav_key``, ``crm_key``, ``nav_name``,
        ``crm_name``,
        ``nav_modified_at``, ``crm_modified_at``, ``nav_etag``, ``crm_etag`` and ``base_values`` (dict or JSON text); an
        optional column that is absent or null keeps the stored value. A CRM id coupled to
        another NAV id fails the whole batch with a StateStoreError naming it.
        """
        key = mapping_key(mapping)
        records = rows.to_dicts() if isinstance(rows, pl.DataFrame) else list(rows)
        if not records:
            return 0
        now = utc_now()
        company = self.company
        values = [_upsert_row(key, record, now, company) for record in records]
        try:
            with self._tx() as conn:
                self._execute_upsert(conn, values)
        except StateConflictError as exc:
            raise StateConflictError(
                f"mapping {key}: a CRM id in the batch is already coupled to another NAV "
                f"record ({exc.detail}); uncouple it first", detail=exc.detail,
            ) from None
        return len(values)

    def _execute_upsert(self, conn: Connection, values: list[tuple[Any, ...]]) -> None:
        """One prepared ``INSERT ... ON CONFLICT`` run by the driver's ``executemany``
        (:class:`~.base.DriverStatement`: about 9 µs per coupling less than SQLAlchemy's
        per-row parameter processing)."""
        self._upsert.run(conn, values, _UPSERT_COLUMNS)

    @staticmethod
    def _upsert_statement(dialect: str) -> Any:
        statement = dialect_insert(dialect, couplings)
        return statement.on_conflict_do_update(
            index_elements=["company", "mapping", "nav_id"],
            set_={"crm_id": statement.excluded.crm_id, "updated_at": statement.excluded.updated_at,
                  **{name: func.coalesce(statement.excluded[name], couplings.c[name])
                     for name in _KEPT_ON_UPSERT}},
        )

    def frame(self, mapping: str, *, columns: Sequence[str] | None = None,
              nav_ids: Iterable[str] | None = None,
              crm_ids: Iterable[str] | None = None,
              nav_keys: Iterable[str] | None = None) -> pl.DataFrame:
        """Couplings of ``mapping`` as a polars frame (``base_values`` as JSON text): every
        column or only ``columns``, every coupling or only those of ``nav_ids`` (or of
        ``crm_ids``, or of the natural keys ``nav_keys``).

        Why the id lists: a preview needs the couplings of the records in play, not the whole
        table (200,000 couplings with their bases cost half a gigabyte); they are asked for in
        :data:`~.base.CHUNK`-sized ``IN`` lists (prepared driver statements,
        :class:`~.base.InList`), each chunk's rows in the order they were coupled (so "the
        first coupling of a key" means the same as over the whole table)."""
        key = mapping_key(mapping)
        names = list(columns or _COUPLING_FRAME_SCHEMA)
        unknown = [n for n in names if n not in _COUPLING_FRAME_SCHEMA]
        if unknown:
            raise StateStoreError(f"unknown coupling column(s) {unknown}; valid: "
                                  f"{list(_COUPLING_FRAME_SCHEMA)}")
        schema = {n: _COUPLING_FRAME_SCHEMA[n] for n in names}
        wanted = [(c, ids) for c, ids in (("nav_id", nav_ids), ("crm_id", crm_ids),
                                          ("nav_key", nav_keys)) if ids is not None]
        with self._tx(write=False) as conn:
            if not wanted:
                query = select(*(couplings.c[c] for c in names)).where(
                    self.scoped(couplings), couplings.c.mapping == key)
                rows: list[Any] = list(conn.execute(query.order_by(couplings.c.id)).all())
            else:
                by, ids = wanted[0]
                lookup = self._lookup(tuple(names), by)
                rows = lookup.rows(conn, (self.company, key), list(dict.fromkeys(ids or ())))
        return pl.DataFrame([tuple(r) for r in rows], schema=schema, orient="row")

    def _lookup(self, names: tuple[str, ...], by: str) -> InList:
        """The driver statement of :meth:`frame` for these columns and lookup column."""
        found = self._lookups.get((names, by))
        if found is None:
            found = self._lookups[(names, by)] = _by_ids(names, by)
        return found

    def any(self, mapping: str) -> bool:
        """Whether ``mapping`` has a coupling at all: one index probe, where :meth:`count`
        reads every coupling's index entry (a million at scale, on every preview)."""
        with self._tx(write=False) as conn:
            return conn.execute(select(couplings.c.id).where(
                self.scoped(couplings), couplings.c.mapping == mapping_key(mapping)).limit(1)
            ).first() is not None

    def count(self, mapping: str) -> int:
        with self._tx(write=False) as conn:
            return int(conn.execute(select(func.count()).select_from(couplings).where(
                self.scoped(couplings), couplings.c.mapping == mapping_key(mapping))).scalar() or 0)

    def update_synced(self, mapping: str, nav_id: str, *, base_values: Mapping[str, Any],
                      nav_modified_at: str | None = None,
                      crm_modified_at: str | None = None) -> None:
        """Store the values and modified-on stamps as just synced (the next diff's base)."""
        changes: dict[str, Any] = {"base_values": dumps(base_values), "updated_at": utc_now()}
        if nav_modified_at is not None:
            changes["nav_modified_at"] = nav_modified_at
        if crm_modified_at is not None:
            changes["crm_modified_at"] = crm_modified_at
        key = mapping_key(mapping)
        with self._tx() as conn:
            count = conn.execute(update(couplings).where(
                self.scoped(couplings), couplings.c.mapping == key, couplings.c.nav_id == nav_id).values(**changes)).rowcount
        if not count:
            raise StateStoreError(f"mapping {key}: NAV record {nav_id} is not coupled")
