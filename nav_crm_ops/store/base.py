"""What every repository of the state store shares: the transaction helper and small helpers.

Why a module of its own: each table family has its own repository module (couplings, record
outcomes, runs, journal, leases, caches, watermarks, jobs); they all open transactions the same
way and check mapping names, directions and sides the same way, without importing each other or
:mod:`nav_crm_ops.store.state_store`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from operator import itemgetter
from typing import Any, Literal, Protocol

import polars as pl
from sqlalchemy import ColumnElement, Connection, Select, Table

from .. import jsontext
from ..exceptions import StateConflictError, StateStoreError

__all__ = ["DriverStatement", "InList", "Repository", "Side", "SyncDirection", "Transactions"]

SyncDirection = Literal["to_crm", "from_crm"]
Side = Literal["nav", "crm"]
CHUNK = 500
"""Ids per ``IN (...)`` list: stays below every database's bound-parameter limit."""


class Transactions(Protocol):
    """Opens one transaction (:meth:`StateStore.transaction`): writes take the write lock up
    front; database errors become StateStoreError."""

    def __call__(self, *, write: bool = True) -> AbstractContextManager[Connection]: ...


class Repository:
    """A table family's queries; every public method runs in its own transaction.

    Why a company: one state database may serve several ERP companies (issue #19, item 5).
    A repository is made for one of them (``company``, ``''`` when the store was opened
    without one) and every query it runs is narrowed by :meth:`scoped`; rows it inserts carry
    the company (named explicitly, and by the column default as a safety net). Two
    workspaces of different companies on one database never see each other's rows."""

    def __init__(self, tx: Transactions, company: str = "") -> None:
        self._tx = tx
        self.company = company

    def scoped(self, table: Table) -> ColumnElement[bool]:
        """The condition that keeps a query on ``table`` to this repository's company."""
        return table.c.company == self.company

    def _frame(self, table: Table, query: Select[Any], mapping: str | None) -> pl.DataFrame:
        """The rows ``query`` selects from ``table`` as a frame (every column of the table),
        narrowed to one mapping when ``mapping`` is given."""
        query = query.where(self.scoped(table))
        if mapping is not None:
            query = query.where(table.c.mapping == mapping_key(mapping))
        with self._tx(write=False) as conn:
            rows = conn.execute(query).all()
        return without_company(rows_frame(rows, table))


def conflict_error(where: str, exc: Exception) -> StateConflictError:
    """The :class:`StateConflictError` for a database integrity error (``exc``, SQLAlchemy's
    IntegrityError): which rule broke, in the driver's words, and what to do. Another writer
    that won a race for the same row is the usual cause."""
    detail = str(getattr(exc, "orig", exc)).strip().splitlines()
    return StateConflictError(
        f"a write to the state database {where} broke a uniqueness or integrity rule "
        f"({'; '.join(line.strip() for line in detail[:2])}); another process or thread "
        "probably wrote the same row at the same moment: retry the operation",
        detail=" ".join(detail))


def dialect_insert(dialect: str, table: Table) -> Any:
    """The INSERT of ``dialect`` (SQLite or PostgreSQL, the two supported state databases),
    which knows ``ON CONFLICT``."""
    if dialect == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql.insert(table)
    if dialect == "sqlite":
        from sqlalchemy.dialects import sqlite

        return sqlite.insert(table)
    raise StateStoreError(f"the state database supports SQLite and PostgreSQL, not {dialect}")


def upsert(conn: Connection, table: Table, keys: Sequence[str]) -> Any:
    """``INSERT INTO table … ON CONFLICT (keys) DO UPDATE`` setting every other column to the
    inserted value: one atomic statement where an update-or-insert in two steps would race
    with another writer."""
    statement = dialect_insert(conn.dialect.name, table)
    return statement.on_conflict_do_update(
        index_elements=list(keys),
        set_={c.name: statement.excluded[c.name] for c in table.columns if c.name not in keys})


class DriverStatement:
    """A statement compiled once per dialect and run with the driver's ``executemany``.

    Why: ``conn.execute(statement, rows)`` processes every row's parameters in SQLAlchemy's
    Python (about 9 µs per row); writes of a chunk of a large sync (couplings, journal,
    history, settled ops) pay that per record. Compiled once for the parameter names, the
    statement runs through ``exec_driver_sql``, which still wraps driver errors (an integrity
    error stays an IntegrityError for the store to map). Rows are dicts with the same keys, or
    tuples of the values of ``names`` (no dict per row: the cheapest form for sqlite3)."""

    def __init__(self, build: Callable[[str], Any]) -> None:
        self._build = build
        self._compiled: dict[tuple[str, tuple[str, ...]], Any] = {}
        self._pickers: dict[tuple[tuple[str, ...], tuple[str, ...]], Callable[[Any], Any]] = {}

    def run(self, conn: Connection, rows: Sequence[Any], names: Sequence[str] | None = None) -> None:
        """Run the statement once per row of ``rows``: dicts with the same keys, or (with
        ``names``) tuples of those parameters' values in that order."""
        if not rows:
            return
        keys = tuple(rows[0]) if names is None else tuple(names)
        compiled = self._compiled_for(conn, keys)
        order = tuple(compiled.positiontup) if compiled.positional else None
        params: list[Any]
        if names is None:
            params = list(rows) if order is None else _positional(rows, order)
        elif order is None:
            params = [dict(zip(keys, row, strict=True)) for row in rows]
        elif order == keys:
            params = list(rows)
        else:
            params = list(map(self._picker(keys, order), rows))
        conn.exec_driver_sql(compiled.string, params)

    def _compiled_for(self, conn: Connection, keys: tuple[str, ...]) -> Any:
        key = (conn.dialect.name, keys)
        compiled = self._compiled.get(key)
        if compiled is None:
            compiled = self._build(conn.dialect.name).compile(dialect=conn.dialect,
                                                              column_keys=list(keys))
            self._compiled[key] = compiled
        return compiled

    def _picker(self, keys: tuple[str, ...], order: tuple[str, ...]) -> Callable[[Any], Any]:
        """Reorders a tuple of ``keys`` values into the statement's parameter ``order``."""
        found = self._pickers.get((keys, order))
        if found is None:
            positions = [keys.index(name) for name in order]
            pick = itemgetter(*positions)
            found = pick if len(positions) > 1 else (lambda row: (pick(row),))
            self._pickers[(keys, order)] = found
        return found


def _positional(rows: Sequence[Mapping[str, Any]], order: Sequence[str]) -> list[tuple[Any, ...]]:
    """Each row's values in ``order`` as a tuple (one C-level ``itemgetter`` per row instead
    of a generator: a chunk of a large sync has thousands of rows)."""
    if len(order) == 1:
        name = order[0]
        return [(row[name],) for row in rows]
    pick = itemgetter(*order)
    return [pick(row) for row in rows]


def placeholder(conn: Connection) -> str:
    """The driver's parameter mark: ``%s`` (psycopg) or ``?`` (sqlite3)."""
    return "%s" if conn.dialect.paramstyle in ("format", "pyformat") else "?"


class InList:
    """A query with one ``IN`` list of ids, run through the driver in :data:`CHUNK`-sized
    slices, its SQL written once per list size.

    Why: SQLAlchemy renders an ``IN`` list again for every execution (about 2.5 µs per id);
    lookups of the records in play (couplings by id, a million of them in a first sync) pay
    that per record. The list sizes are powers of two up to :data:`CHUNK`; a shorter slice
    repeats its last id to fill the list (a repeated id in an ``IN`` list selects nothing more).

    ``template`` is SQL text with ``{p}`` for each of the leading parameters and ``{ids}`` for
    the list; only the store's own table and column names go into it, never values."""

    def __init__(self, template: str) -> None:
        self._template = template
        self._texts: dict[tuple[str, int], str] = {}

    def rows(self, conn: Connection, leading: Sequence[Any], ids: Sequence[Any]) -> list[Any]:
        """The rows of every slice of ``ids``, slice after slice (``leading``: the values of
        the ``{p}`` parameters before the list)."""
        mark = placeholder(conn)
        found: list[Any] = []
        for chunk in chunks(ids):
            size = in_list_size(len(chunk))
            params = (*leading, *chunk, *([chunk[-1]] * (size - len(chunk))))
            found += conn.exec_driver_sql(self._text(mark, size), params).all()
        return found

    def _text(self, mark: str, size: int) -> str:
        text = self._texts.get((mark, size))
        if text is None:
            text = self._template.format(p=mark, ids=", ".join([mark] * size))
            self._texts[(mark, size)] = text
        return text


def in_list_size(count: int) -> int:
    """The ``IN`` list size a slice of ``count`` ids runs with: the next power of two, at
    most :data:`CHUNK`."""
    size = 1
    while size < count:
        size *= 2
    return min(size, CHUNK)


def mapping_key(name: str) -> str:
    if not name or not name.strip():
        raise StateStoreError("a mapping name is required (e.g. 'CUSTOMER')")
    return name.strip().upper()


def check_direction(direction: str) -> SyncDirection:
    if direction not in ("to_crm", "from_crm"):
        raise StateStoreError(f"direction {direction!r} is not one of ['to_crm', 'from_crm']")
    return direction  # type: ignore[return-value]


def check_side(side: str) -> Side:
    if side not in ("nav", "crm"):
        raise StateStoreError(f"side {side!r} is not one of ['nav', 'crm']")
    return side  # type: ignore[return-value]


def dumps(value: Any) -> str | None:
    return None if value is None else jsontext.dumps(value, sort_keys=True)


def loads(text: str | None) -> Any:
    return None if text is None else jsontext.loads(text)


def rows_frame(rows: Sequence[Any], table: Table, columns: Sequence[str] | None = None) -> pl.DataFrame:
    names = list(columns or [c.name for c in table.columns])
    types = {c.name: c.type.python_type for c in table.columns}
    dtype_of = {int: pl.Int64(), bool: pl.Boolean(), str: pl.Utf8()}
    frame_schema = {n: dtype_of.get(types.get(n, str), pl.Utf8()) for n in names}
    return pl.DataFrame([tuple(r) for r in rows], schema=frame_schema, orient="row")


def without_company(frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` without the ``company`` column: a repository's rows are all of its own
    company, so the column only repeats it."""
    return frame.drop("company") if "company" in frame.columns else frame


def new_id(result: Any) -> int:
    key = result.inserted_primary_key
    if key is None:
        raise StateStoreError("the database did not return the new row's id")
    return int(key[0])


def chunks(ids: Sequence[Any]) -> list[Sequence[Any]]:
    """``ids`` in slices of :data:`CHUNK`."""
    return [ids[start:start + CHUNK] for start in range(0, len(ids), CHUNK)]
