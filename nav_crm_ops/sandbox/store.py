"""SQLite storage shared by the emulated services.

One table per :class:`EntityDef` with real typed columns, a hidden global ``_version`` (etags and
change tracking) and a ``_deleted`` tombstone table. The services write through this module so
that timestamps, versions and tombstones follow one set of rules.

Naming: an entity is found by its name, its entity set, or ``"<service>:<name>"``. A name or set
shared by entities of both services is ambiguous unqualified; such entities get service-prefixed
table names (``dataverse__contact``) and must be addressed as ``"dataverse:contact"``.

Row conventions: lookups are stored under the column name (``parentcustomerid``) as lowercase
GUID text; datetimes as ISO-8601 UTC text with milliseconds (``2024-05-01T10:00:00.123Z``) so text
order is time order; dates as ``YYYY-MM-DD``; bools as 0/1 (returned as ``bool``); json as text
(returned parsed). ``order_by`` items are ``(column, descending)``; the key is the final tiebreak.

Indexes: key, ``_version``, modified column, plus ``EntityDef.extra["alternate_keys"]``
(case-insensitive) and ``EntityDef.extra["indexed"]`` columns.
"""

from __future__ import annotations

import itertools
import json
import math
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .schema import Column, EntityDef
from .timestamps import (
    clock_text,
    format_timestamp,
    milliseconds,
    normalize_date,
    normalize_datetime,
)

__all__ = [
    "KeyExistsError",
    "RecordNotFoundError",
    "SandboxStore",
    "format_timestamp",
    "narrow_from",
    "normalize_datetime",
]

_SQL_TYPES = {
    "guid": "TEXT", "string": "TEXT", "memo": "TEXT", "int": "INTEGER", "bigint": "INTEGER",
    "decimal": "REAL", "money": "REAL", "bool": "INTEGER", "datetime": "TEXT", "date": "TEXT",
    "choice": "INTEGER", "lookup": "TEXT", "option": "TEXT", "json": "TEXT",
}
VERSION = "_version"
NARROW_ROWS = 50_000
"""Rows a range read may sort per page (see :func:`narrow_from`)."""
CHANGED_BY = "modifiedby"
"""The column naming who last changed a row (Dataverse tables): indexed with the modified-on
column and the key, the change index a reader's "changed since, not by me" read counts on."""
_WRITES = itertools.count(1)
"""Write stamps: each write to a table takes the next (see :meth:`SandboxStore.written`)."""


class KeyExistsError(Exception):
    """A row with the same primary key already exists."""


class RecordNotFoundError(Exception):
    """The row to change does not exist."""


def _to_db(column: Column, value: Any) -> Any:
    """Python value → SQLite value for one column (raises ValueError/TypeError on bad input)."""
    if value is None:
        return None
    kind = column.type
    if kind in ("string", "memo", "option"):
        return str(value)
    if kind in ("guid", "lookup"):
        return str(value).lower()
    if kind == "datetime":
        return normalize_datetime(value)
    if kind == "date":
        return normalize_date(value)
    if kind == "bool":
        return 1 if value else 0
    if kind in ("int", "bigint", "choice"):
        return int(value)
    if kind in ("decimal", "money"):
        return float(value)
    if kind == "json":
        return json.dumps(value)
    return value


def _reads_back(values: dict[str, Any]) -> bool:
    """Whether each bound value reads back as itself (:meth:`_Table.updated`): SQLite stores a
    NaN as NULL and -0.0 as 0; text, integers and other floats come back as bound."""
    for value in values.values():
        if type(value) is float and (value != value or (
                value == 0.0 and math.copysign(1.0, value) < 0)):
            return False
    return True


class _Table:
    """Per-entity SQL facts computed once."""

    def __init__(self, entity: EntityDef, table: str) -> None:
        self.entity = entity
        self.table = table
        self.columns: tuple[Column, ...] = entity.columns
        self.names = frozenset(entity.column_names) | {VERSION}
        self.bool_columns = tuple(c.name for c in entity.columns if c.type == "bool")
        self.json_columns = tuple(c.name for c in entity.columns if c.type == "json")
        self.select_list = ", ".join(f'"{name}"' for name in (*entity.column_names, VERSION))
        self.all_names = (*entity.column_names, VERSION)
        self.insert_sql = (f'INSERT INTO "{table}" ({self.select_list}) '
                           f'VALUES ({", ".join("?" for _ in self.all_names)})')
        self.by_name = {c.name: c for c in entity.columns}
        self.written = next(_WRITES)
        self._updates: dict[tuple[bool, tuple[str, ...]], str] = {}

    def column_sql(self, name: str) -> str:
        """``name`` quoted for SQL; KeyError when the entity has no such column."""
        if name not in self.names:
            raise KeyError(f"unknown column '{name}' for entity '{self.entity.name}'")
        return f'"{name}"'

    def update_sql(self, names: tuple[str, ...], returning: bool = True) -> str:
        """``UPDATE ... SET <names> WHERE <key> = ? [RETURNING <row>]``, built once per set of
        columns (a batch of updates sends the same columns again and again)."""
        sql = self._updates.get((returning, names))
        if sql is None:
            assignments = ", ".join(f'"{name}" = ?' for name in names)
            sql = self._updates[(returning, names)] = (
                f'UPDATE "{self.table}" SET {assignments} WHERE "{self.entity.key}" = ?'
                + (f" RETURNING {self.select_list}" if returning else ""))
        return sql

    def updated(self, current: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
        """The row ``current`` is once ``values`` (as bound) are stored, as :meth:`to_row`
        reads it back (see :func:`_reads_back`)."""
        row = dict(current)
        row.update(values)
        for name in self.bool_columns:
            if name in values and row[name] is not None:
                row[name] = bool(row[name])
        for name in self.json_columns:
            if name in values and row[name] is not None:
                row[name] = json.loads(row[name])
        return row

    def to_row(self, values: Sequence[Any]) -> dict[str, Any]:
        row = dict(zip(self.all_names, values, strict=True))
        for name in self.bool_columns:
            if row[name] is not None:
                row[name] = bool(row[name])
        for name in self.json_columns:
            if row[name] is not None:
                row[name] = json.loads(row[name])
        return row


class SandboxStore:
    """Write-through SQLite store with a monotonic clock and a global row version."""

    def __init__(self, path: Path, entities: Iterable[EntityDef]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._depth = 0
        self._closed = False
        self._rolled_back = 0  # the write stamp of the latest rollback: it undid writes
        self._conn = sqlite3.connect(str(self.path), check_same_thread=False,
                                     isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._tables: dict[str, _Table] = {}
        self._lookup: dict[str, _Table | None] = {}
        self._register(list(entities))
        self._create_schema()
        self._version = self._load_version()
        self._clock_ms = milliseconds(self._load_clock())

    # ----------------------------------------------------------------- schema
    def _register(self, entities: list[EntityDef]) -> None:
        name_count: dict[str, int] = {}
        for ent in entities:
            name_count[ent.name] = name_count.get(ent.name, 0) + 1
            if ent.entity_set != ent.name:
                name_count[ent.entity_set] = name_count.get(ent.entity_set, 0) + 1
        # SQLite table names ignore case, so the table decision compares lower-cased names.
        table_count: dict[str, int] = {}
        for ent in entities:
            table_count[ent.name.lower()] = table_count.get(ent.name.lower(), 0) + 1
        for ent in entities:
            shared = name_count[ent.name] > 1 or table_count[ent.name.lower()] > 1
            table = f"{ent.service}__{ent.name}" if shared else ent.name
            info = _Table(ent, table)
            qualified = f"{ent.service}:{ent.name}"
            if qualified in self._tables:
                raise ValueError(f"entity {qualified} is defined twice")
            self._tables[qualified] = info
            self._lookup[qualified] = info
            self._lookup[f"{ent.service}:{ent.entity_set}"] = info
            for alias in {ent.name, ent.entity_set}:
                self._lookup[alias] = None if name_count[alias] > 1 else info

    def _create_schema(self) -> None:
        with self._lock:
            cur = self._conn.cursor()
            cur.execute("BEGIN")
            for info in self._tables.values():
                _create_table(cur, info)
            cur.execute("CREATE TABLE IF NOT EXISTS _deleted "
                        "(entity TEXT NOT NULL, key TEXT NOT NULL, version INTEGER NOT NULL)")
            cur.execute("CREATE INDEX IF NOT EXISTS ix__deleted ON _deleted (entity, version)")
            cur.execute("CREATE TABLE IF NOT EXISTS _meta (name TEXT PRIMARY KEY, value TEXT)")
            cur.execute("CREATE TABLE IF NOT EXISTS _definitions "
                        "(seq INTEGER PRIMARY KEY AUTOINCREMENT, body TEXT NOT NULL)")
            cur.execute("COMMIT")

    # ----------------------------------------------------------------- run-time schema
    def define(self, entity: EntityDef, *, fresh: bool = False,
               cleared: Sequence[str] = ()) -> None:
        """Add or replace one entity's definition at run time (created tables and columns).

        ``fresh``: drop rows a table of that name kept from an earlier run; ``cleared``:
        empty these columns (values an earlier run left in a column created again)."""
        qualified = f"{entity.service}:{entity.name}"
        old = self._tables.get(qualified)
        info = _Table(entity, old.table if old is not None else entity.name)
        with self._lock, self.transaction():
            _create_table(self._conn.cursor(), info, fresh=fresh, cleared=cleared)
        self._tables[qualified] = info
        for alias in (qualified, f"{entity.service}:{entity.entity_set}", entity.name,
                      entity.entity_set):
            if ":" in alias or alias not in self._lookup or self._lookup[alias] is old:
                self._lookup[alias] = info

    def drop(self, entity: str) -> None:
        """Forget an entity defined at run time and drop its table."""
        info = self._table(entity)
        with self._lock:
            self._conn.execute(f'DROP TABLE IF EXISTS "{info.table}"')
            self._tables.pop(f"{info.entity.service}:{info.entity.name}", None)
            for alias, found in list(self._lookup.items()):
                if found is info:
                    del self._lookup[alias]

    def definitions(self) -> list[dict[str, Any]]:
        """The run-time definitions saved with :meth:`add_definition`, oldest first."""
        with self._lock:
            rows = self._conn.execute("SELECT body FROM _definitions ORDER BY seq").fetchall()
        return [json.loads(body) for (body,) in rows]

    def add_definition(self, definition: dict[str, Any]) -> None:
        with self._lock:
            self._conn.execute("INSERT INTO _definitions (body) VALUES (?)",
                               [json.dumps(definition)])

    def clear_definitions(self) -> None:
        with self._lock:
            self._conn.execute("DELETE FROM _definitions")

    def _load_version(self) -> int:
        best = 0
        for info in self._tables.values():
            row = self._conn.execute(f'SELECT max("{VERSION}") FROM "{info.table}"').fetchone()
            best = max(best, row[0] or 0)
        row = self._conn.execute("SELECT max(version) FROM _deleted").fetchone()
        best = max(best, row[0] or 0)
        meta = self._conn.execute("SELECT value FROM _meta WHERE name='version'").fetchone()
        return max(best, int(meta[0]) if meta else 0)

    def _load_clock(self) -> datetime:
        latest = ""
        for info in self._tables.values():
            row = self._conn.execute(
                f'SELECT max("{info.entity.modified_column}") FROM "{info.table}"').fetchone()
            if row[0] and str(row[0]) > latest:
                latest = str(row[0])
        meta = self._conn.execute("SELECT value FROM _meta WHERE name='clock'").fetchone()
        if meta and meta[0] > latest:
            latest = meta[0]
        if not latest:
            return datetime.fromtimestamp(0, UTC)
        try:
            return datetime.fromisoformat(latest)
        except ValueError:
            return datetime.fromtimestamp(0, UTC)

    def _table(self, name: str) -> _Table:
        try:
            info = self._lookup[name]
        except KeyError:
            raise KeyError(f"unknown entity '{name}'") from None
        if info is None:
            raise KeyError(f"entity name '{name}' is defined by both services; "
                           f"qualify it as '<service>:{name}'")
        return info

    # ----------------------------------------------------------------- basics
    def entity(self, name: str) -> EntityDef:
        """The definition of an entity by name, entity set or ``service:name``."""
        return self._table(name).entity

    @property
    def entities(self) -> tuple[EntityDef, ...]:
        return tuple(info.entity for info in self._tables.values())

    def table_name(self, entity: str) -> str:
        """The SQLite table holding ``entity`` (for read-only diagnostics)."""
        return self._table(entity).table

    @property
    def version(self) -> int:
        """The highest row version handed out so far."""
        return self._version

    def now(self) -> str:
        """Next server timestamp: strictly increasing milliseconds, never behind the wall clock."""
        with self._lock:
            wall = time.time_ns() // 1_000_000
            self._clock_ms = wall if wall > self._clock_ms else self._clock_ms + 1
            return clock_text(self._clock_ms)

    def _next_version(self) -> int:
        self._version += 1
        return self._version

    def _prepare(self, info: _Table, row: dict[str, Any], stamp: str) -> dict[str, Any]:
        ent = info.entity
        info.written = next(_WRITES)
        unknown = set(row) - info.names
        if unknown:
            raise KeyError(f"unknown column(s) {sorted(unknown)} for entity '{ent.name}'")
        values: dict[str, Any] = {}
        for col in info.columns:
            if col.name in row:
                values[col.name] = _to_db(col, row[col.name])
            elif col.default is not None:
                values[col.name] = _to_db(col, col.default)
            else:
                values[col.name] = None
        if values.get(ent.key) is None:
            values[ent.key] = str(uuid.uuid4())
        if ent.created_column and values.get(ent.created_column) is None:
            values[ent.created_column] = stamp
        if values.get(ent.modified_column) is None:
            values[ent.modified_column] = stamp
        version = self._next_version()
        if ent.version_column:
            values[ent.version_column] = version
        values[VERSION] = version
        return values

    # ----------------------------------------------------------------- writes
    def insert(self, entity: str, row: dict[str, Any]) -> dict[str, Any]:
        """Insert one row (key generated when absent); returns the stored row."""
        info = self._table(entity)
        with self._lock:
            values = self._prepare(info, row, self.now())
            names = info.all_names
            try:
                self._conn.execute(info.insert_sql, [values[n] for n in names])
            except sqlite3.IntegrityError as exc:
                raise KeyExistsError(
                    f"{info.entity.name} with key {values[info.entity.key]} already exists"
                ) from exc
            return info.to_row([values[n] for n in names])

    def insert_many(self, entity: str, rows: Iterable[dict[str, Any]]) -> int:
        """Bulk insert in one transaction (seeding); returns the number of rows inserted."""
        info = self._table(entity)
        names = info.all_names
        with self._lock, self.transaction():
            stamp = self.now()
            batch = [[values[n] for n in names]
                     for values in (self._prepare(info, row, stamp) for row in rows)]
            try:
                self._conn.executemany(info.insert_sql, batch)
            except sqlite3.IntegrityError as exc:
                raise KeyExistsError(f"duplicate key while bulk inserting {info.entity.name}: "
                                     f"{exc}") from exc
            return len(batch)

    def update(self, entity: str, key: str, changes: dict[str, Any],
               current: dict[str, Any] | None = None) -> dict[str, Any]:
        """``changes`` to one row, a new modified time and version: one UPDATE ... RETURNING.
        ``current``: the row as stored, read in this transaction (an update checks its etag
        first): the written row is then built from it and the stored values, as a read gives
        it, not returned by the UPDATE (RETURNING cost more than the update itself, ~13 us a
        row; it answers a REAL column's whole number as an integer, a read as a float)."""
        info = self._table(entity)
        ent = info.entity
        if unknown := set(changes) - info.names:
            raise KeyError(f"unknown column(s) {sorted(unknown)} for entity '{ent.name}'")
        with self._lock:
            values = {name: _to_db(info.by_name[name], value)
                      for name, value in changes.items() if name not in (ent.key, VERSION)}
            if ent.modified_column not in changes:
                values[ent.modified_column] = self.now()
            version = self._next_version()
            if ent.version_column:
                values[ent.version_column] = version
            values[VERSION] = version
            info.written = next(_WRITES)
            args = [*values.values(), _to_db(info.by_name[ent.key], key)]
            if current is not None and _reads_back(values):
                if self._conn.execute(info.update_sql(tuple(values), False), args).rowcount:
                    return info.updated(current, values)
                found = []
            else:
                found = self._conn.execute(info.update_sql(tuple(values)), args).fetchall()
            if not found:
                self._version = version - 1
                raise RecordNotFoundError(f"{ent.name} with key {key} does not exist")
            return info.to_row(found[0])

    def delete(self, entity: str, key: str) -> dict[str, Any] | None:
        """Delete one row and record a tombstone; returns the deleted row (None if absent)."""
        info = self._table(entity)
        with self._lock:
            row = self.get(entity, key)
            if row is None:
                return None
            stored_key = row[info.entity.key]
            info.written = next(_WRITES)
            self._conn.execute(f'DELETE FROM "{info.table}" WHERE "{info.entity.key}" = ?',
                               [stored_key])
            self._conn.execute("INSERT INTO _deleted (entity, key, version) VALUES (?, ?, ?)",
                               [info.table, stored_key, self._next_version()])
            return row

    # ----------------------------------------------------------------- reads
    def get(self, entity: str, key: str) -> dict[str, Any] | None:
        info = self._table(entity)
        key_col = info.by_name[info.entity.key]
        with self._lock:
            found = self._conn.execute(
                f'SELECT {info.select_list} FROM "{info.table}" WHERE "{info.entity.key}" = ?',
                [_to_db(key_col, key)]).fetchone()
        return info.to_row(found) if found else None

    def written(self, entity: str) -> int:
        """A stamp that changes with every write to ``entity`` and every rollback (to cache
        what is read of it)."""
        return max(self._table(entity).written, self._rolled_back)

    def query(
        self,
        entity: str,
        where_sql: str = "",
        params: Sequence[Any] = (),
        order_by: Sequence[tuple[str, bool]] = (),
        after: tuple[Any, ...] | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[dict[str, Any]]:
        """Rows matching ``where_sql`` in ``order_by`` order (key last), after a keyset cursor.

        ``after`` holds the order_by values then the key of the last row already returned.
        """
        info = self._table(entity)
        key = info.entity.key
        order = [(info.column_sql(name), desc) for name, desc in order_by
                 if name != key]
        order.append((f'"{key}"', False))
        clauses = [f"({where_sql})"] if where_sql else []
        args: list[Any] = list(params)
        if after is not None:
            if len(after) != len(order):
                raise ValueError(f"keyset cursor needs {len(order)} values, got {len(after)}")
            cursor_sql, cursor_args = _keyset_condition(order, list(after))
            clauses.append(cursor_sql)
            args.extend(cursor_args)
        sql = f'SELECT {info.select_list} FROM "{info.table}"'
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        sql += " ORDER BY " + ", ".join(f"{col} {'DESC' if desc else 'ASC'}"
                                        for col, desc in order)
        if limit is not None or offset:
            sql += " LIMIT ? OFFSET ?"
            args.extend([-1 if limit is None else limit, offset])
        with self._lock:
            rows = self._conn.execute(sql, args).fetchall()
        to_row = info.to_row
        return [to_row(r) for r in rows]

    def count(self, entity: str, where_sql: str = "", params: Sequence[Any] = ()) -> int:
        info = self._table(entity)
        sql = f'SELECT count(*) FROM "{info.table}"'
        if where_sql:
            sql += f" WHERE {where_sql}"
        with self._lock:
            return int(self._conn.execute(sql, list(params)).fetchone()[0])

    def changes(self, entity: str,
                since_version: int) -> tuple[list[dict[str, Any]], list[str], int]:
        """Rows changed and keys deleted after ``since_version``, and the version to resume from."""
        info = self._table(entity)
        with self._lock:
            rows = self._conn.execute(
                f'SELECT {info.select_list} FROM "{info.table}" WHERE "{VERSION}" > ? '
                f'ORDER BY "{VERSION}"', [since_version]).fetchall()
            deleted = self._conn.execute(
                "SELECT key FROM _deleted WHERE entity = ? AND version > ? ORDER BY version",
                [info.table, since_version]).fetchall()
            current = self._version
        changed = [info.to_row(r) for r in rows]
        alive = {row[info.entity.key] for row in changed}
        gone: list[str] = []
        for (key,) in deleted:
            if key not in alive and key not in gone and self.get(entity, key) is None:
                gone.append(key)
        return changed, gone, current

    def counts(self) -> dict[str, int]:
        """Rows per entity, keyed by qualified name ``service:name``."""
        return {name: self.count(name) for name in self._tables}

    # ----------------------------------------------------------------- lifecycle
    def transaction(self) -> _Transaction:
        """Atomic unit of work; nests through savepoints; rolls back on exception."""
        return _Transaction(self)

    def reset(self) -> None:
        """Drop all rows of every entity (the version counter keeps increasing)."""
        with self._lock, self.transaction():
            for info in self._tables.values():
                info.written = next(_WRITES)
                self._conn.execute(f'DELETE FROM "{info.table}"')
            self._conn.execute("DELETE FROM _deleted")
            self._save_meta()

    def _save_meta(self) -> None:
        self._conn.executemany(
            "INSERT INTO _meta (name, value) VALUES (?, ?) "
            "ON CONFLICT(name) DO UPDATE SET value = excluded.value",
            [("version", str(self._version)), ("clock", clock_text(self._clock_ms))])

    def close(self) -> None:
        """Save the clock and version and close the file (again: nothing to do)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self._depth == 0:
                self._save_meta()
            self._conn.close()


class _Transaction:
    """One transaction of a store (a savepoint inside another): a plain context manager, as
    every part of a ``$batch`` opens one (a generator-based one cost more than its SQL)."""

    __slots__ = ("depth", "store")

    def __init__(self, store: SandboxStore) -> None:
        self.store = store
        self.depth = 0

    def __enter__(self) -> None:
        store = self.store
        store._lock.acquire()
        try:
            self.depth = depth = store._depth
            store._conn.execute("BEGIN" if depth == 0 else f"SAVEPOINT sp{depth}")
        except BaseException:
            store._lock.release()
            raise
        store._depth = depth + 1

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: Any) -> None:
        store, depth = self.store, self.depth
        try:
            store._depth = depth
            if kind is None:
                store._conn.execute("COMMIT" if depth == 0 else f"RELEASE sp{depth}")
                return
            store._rolled_back = next(_WRITES)
            if depth == 0:
                store._conn.execute("ROLLBACK")
            else:
                store._conn.execute(f"ROLLBACK TO sp{depth}")
                store._conn.execute(f"RELEASE sp{depth}")
            # Versions stay consumed so an etag is never reused for different content.
        finally:
            store._lock.release()


def narrow_from(store: SandboxStore, entity: str, column: str, lower: Any,
                where_sql: str = "", params: Sequence[Any] = ()) -> bool:
    """Whether few rows have ``column`` at or above ``lower`` — or, failing that, pass the
    whole filter ``where_sql``: at most ``NARROW_ROWS`` and an eighth of the table, counted
    on ``column``'s index (the caller knows it has one), stopping past that many. See
    ``odata_filter.RangeIndex``.

    The whole filter is counted on the change index (:data:`CHANGED_BY`), which holds the
    columns of a change read that leaves out the reader's own writes, so counting reads no
    row of the table; a filter that index cannot serve counts as not narrow."""
    info = store._table(entity)
    name = info.column_sql(column)
    with store._lock:
        size = store._conn.execute(f'SELECT max(rowid) FROM "{info.table}"').fetchone()[0]
        cap = min(NARROW_ROWS, (size or 0) // 8)
        found = store._conn.execute(
            f'SELECT count(*) FROM (SELECT 1 FROM "{info.table}" WHERE {name} >= ? LIMIT ?)',
            [lower, cap + 1]).fetchone()[0]
        if found <= cap:
            return True
        if not where_sql or info.entity.column(CHANGED_BY) is None:
            return False
        try:
            found = store._conn.execute(
                f'SELECT count(*) FROM (SELECT 1 FROM "{info.table}" INDEXED BY '
                f'"ix_{info.table}_changes" WHERE {where_sql} LIMIT ?)',
                [*params, cap + 1]).fetchone()[0]
        except sqlite3.OperationalError:  # "no query solution": the filter has no bound
            return False
    return bool(found <= cap)


def _create_table(cur: sqlite3.Cursor, info: _Table, *, fresh: bool = False,
                  cleared: Sequence[str] = ()) -> None:
    """Create one entity's table and indexes (adding columns an older file lacks); ``fresh``
    drops an older table first, ``cleared`` columns are emptied."""
    ent = info.entity
    if fresh:
        cur.execute(f'DROP TABLE IF EXISTS "{info.table}"')
    defs = []
    for col in ent.columns:
        pk = " PRIMARY KEY" if col.name == ent.key else ""
        defs.append(f'"{col.name}" {_SQL_TYPES[col.type]}{pk}')
    defs.append(f'"{VERSION}" INTEGER NOT NULL')
    cur.execute(f'CREATE TABLE IF NOT EXISTS "{info.table}" ({", ".join(defs)})')
    # A data directory made by an older sandbox lacks columns added since: add them (empty)
    # so it keeps working without a reset.
    present = {r[1] for r in cur.execute(f'PRAGMA table_info("{info.table}")')}
    for col in ent.columns:
        if col.name not in present:
            cur.execute(f'ALTER TABLE "{info.table}" ADD COLUMN "{col.name}" '
                        f"{_SQL_TYPES[col.type]}")
    cur.execute(f'CREATE INDEX IF NOT EXISTS "ix_{info.table}__version" '
                f'ON "{info.table}" ("{VERSION}")')
    if ent.column(CHANGED_BY) is None:
        cur.execute(f'CREATE INDEX IF NOT EXISTS "ix_{info.table}_modified" '
                    f'ON "{info.table}" ("{ent.modified_column}", "{ent.key}")')
    else:  # the change index (see narrow_from) serves every read the older one served
        cur.execute(f'DROP INDEX IF EXISTS "ix_{info.table}_modified"')
        cur.execute(f'CREATE INDEX IF NOT EXISTS "ix_{info.table}_changes" ON "{info.table}" '
                    f'("{ent.modified_column}", "{CHANGED_BY}", "{ent.key}")')
    for name in ent.extra.get("alternate_keys", ()):
        cur.execute(f'CREATE INDEX IF NOT EXISTS "ix_{info.table}_{name}" '
                    f'ON "{info.table}" ("{name}" COLLATE NOCASE)')
    natural = ent.extra.get("natural_key")
    indexed = list(ent.extra.get("indexed", ()))
    if natural and ent.column(natural) is not None:
        indexed.append(natural)
    for name in indexed:
        cur.execute(f'CREATE INDEX IF NOT EXISTS "ix_{info.table}_{name}" '
                    f'ON "{info.table}" ("{name}")')
    for name in cleared:
        cur.execute(f'UPDATE "{info.table}" SET "{name}" = NULL')


def _keyset_condition(order: list[tuple[str, bool]],
                      values: list[Any]) -> tuple[str, list[Any]]:
    """SQL for "sorts strictly after ``values``" under SQLite's NULL ordering (NULLs first)."""
    alternatives: list[str] = []
    args: list[Any] = []
    for index, (col, desc) in enumerate(order):
        parts: list[str] = []
        part_args: list[Any] = []
        for prev_index, (prev_col, _) in enumerate(order[:index]):
            parts.append(f"{prev_col} IS ?")
            part_args.append(values[prev_index])
        value = values[index]
        if desc:
            if value is None:
                continue
            parts.append(f"({col} < ? OR {col} IS NULL)")
        elif value is None:
            parts.append(f"{col} IS NOT NULL")
        else:
            parts.append(f"{col} > ?")
        if value is not None:
            part_args.append(value)
        alternatives.append("(" + " AND ".join(parts) + ")")
        args.extend(part_args)
    return "(" + (" OR ".join(alternatives) or "0") + ")", args
