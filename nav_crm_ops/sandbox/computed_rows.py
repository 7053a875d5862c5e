"""Query computed rows with the same $filter/$orderby SQL as stored entities.

Computed entities (rows derived on every read, never stored) load their rows into an in-memory
SQLite table, so every filter the stored entities accept (comparisons, ``in``, functions,
datetimes) behaves the same on them, without a second filter implementation.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["ComputedTable"]

_SQL_TYPES = {"guid": "TEXT", "string": "TEXT", "int": "INTEGER", "decimal": "REAL",
              "datetime": "TEXT", "date": "TEXT", "bool": "INTEGER"}
VERSION = "_version"


class ComputedTable:
    """One request's computed rows as a throw-away SQLite table."""

    def __init__(self, columns: Mapping[str, str], rows: Sequence[Mapping[str, Any]]) -> None:
        self.columns = dict(columns)
        names = [*self.columns, VERSION]
        self._conn = sqlite3.connect(":memory:")
        defs = ", ".join(f'"{name}" {_SQL_TYPES.get(kind, "TEXT")}'
                         for name, kind in self.columns.items())
        self._conn.execute(f'CREATE TABLE t ({defs}, "{VERSION}" INTEGER)')
        self._conn.executemany(
            f'INSERT INTO t VALUES ({", ".join("?" for _ in names)})',
            [[row.get(name) for name in names] for row in rows])
        self._names = names

    def count(self, where: str, args: Sequence[Any]) -> int:
        sql = "SELECT count(*) FROM t" + (f" WHERE {where}" if where else "")
        return int(self._conn.execute(sql, list(args)).fetchone()[0])

    def select(self, where: str, args: Sequence[Any], order: Sequence[tuple[str, bool]],
               limit: int, offset: int) -> list[dict[str, Any]]:
        """Rows matching ``where`` in ``order`` (column names already checked)."""
        sql = f'SELECT {", ".join(chr(34) + n + chr(34) for n in self._names)} FROM t'
        if where:
            sql += f" WHERE {where}"
        if order:
            sql += " ORDER BY " + ", ".join(f'"{name}" {"DESC" if desc else "ASC"}'
                                            for name, desc in order)
        sql += " LIMIT ? OFFSET ?"
        found = self._conn.execute(sql, [*args, limit, offset]).fetchall()
        return [dict(zip(self._names, values, strict=True)) for values in found]

    def close(self) -> None:
        self._conn.close()
