"""Change history (``change_history``): what every applied write replaced, so a run can be undone.

Why a table: a bad run (a wrong transformation, a bad import) writes thousands of wrong
values; the way back must not be by hand (issue #20, item 1). Every successful write of an
apply keeps, on the side it wrote, per record and field: the value the preview read there
(the plan's ``crm_value`` / ``nav_value``), the value written and the version the write
returned. A create keeps one compact row (``created``, no field): reverting deactivates or
deletes the record, so no field values are needed, and a first sync of a million records
pays one small row each (issue #19's per-record budget).

Rows are written per chunk in one ``executemany`` statement (:meth:`HistoryRepository.record`)
and read per run (:meth:`HistoryRepository.of_run`). Retention removes the rows of runs the
job log no longer holds (:meth:`HistoryRepository.purge_orphans`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import polars as pl
from sqlalchemy import delete, func, select

from .base import Repository, mapping_key
from .schema import change_history, runs

if TYPE_CHECKING:
    from .state_store import StateStore

__all__ = ["HISTORY_COLUMNS", "HistoryRepository"]

HISTORY_COLUMNS = ("run_id", "mapping", "target", "nav_id", "crm_id", "field", "old_value",
                   "new_value", "version", "created")
"""The columns of one history row, in the order :meth:`HistoryRepository.record` takes them."""

_SCHEMA = {"id": pl.Int64, "run_id": pl.Int64, "mapping": pl.Utf8, "target": pl.Utf8,
           "nav_id": pl.Utf8, "crm_id": pl.Utf8, "field": pl.Utf8, "old_value": pl.Utf8,
           "new_value": pl.Utf8, "version": pl.Utf8, "created": pl.Boolean}


class HistoryRepository(Repository):
    """The ``change_history`` table (module docstring)."""

    @classmethod
    def of(cls, store: StateStore) -> HistoryRepository:
        """The history of ``store``'s company (through the store's transactions)."""
        return cls(store.transaction, store.company)

    def record(self, rows: Sequence[tuple[Any, ...]]) -> int:
        """Store history rows (tuples in :data:`HISTORY_COLUMNS` order) in one statement."""
        if not rows:
            return 0
        keys = {m: mapping_key(m) for m in {row[1] for row in rows}}
        company = self.company
        # tuples straight to the driver's executemany: a first sync stores one row per
        # record created, so the per-row cost counts (issue #19's budget)
        params = [(company, r[0], keys[r[1]], *r[2:]) for r in rows]
        columns = ("company", *HISTORY_COLUMNS)
        with self._tx() as conn:
            mark = "%s" if conn.dialect.paramstyle in ("format", "pyformat") else "?"
            conn.exec_driver_sql(
                f"INSERT INTO change_history ({', '.join(columns)}) "
                f"VALUES ({', '.join([mark] * len(columns))})", params)
        return len(params)

    def of_run(self, run_id: int) -> pl.DataFrame:
        """Every history row of ``run_id``, in the order written."""
        c = change_history.c
        with self._tx(write=False) as conn:
            rows = conn.execute(select(*(c[n] for n in _SCHEMA)).where(
                self.scoped(change_history), c.run_id == int(run_id)).order_by(c.id)).all()
        return pl.DataFrame([tuple(r) for r in rows], schema=_SCHEMA, orient="row")

    def run(self, run_id: int) -> dict[str, Any] | None:
        """The job-log row of ``run_id`` (this company's), None when there is none."""
        with self._tx(write=False) as conn:
            row = conn.execute(select(runs).where(self.scoped(runs),
                                                  runs.c.id == int(run_id))).first()
        return None if row is None else dict(row._mapping)

    def count(self, run_id: int) -> int:
        c = change_history.c
        with self._tx(write=False) as conn:
            return int(conn.execute(select(func.count()).select_from(change_history).where(
                self.scoped(change_history), c.run_id == int(run_id))).scalar() or 0)

    def purge_orphans(self, *, dry_run: bool = False) -> int:
        """Delete the history of runs the job log no longer holds (retention purged them);
        returns how many rows (``dry_run``: would be)."""
        c = change_history.c
        gone = (self.scoped(change_history), c.run_id.not_in(select(runs.c.id)))
        with self._tx(write=not dry_run) as conn:
            if dry_run:
                return int(conn.execute(select(func.count()).select_from(change_history)
                                        .where(*gone)).scalar() or 0)
            return int(conn.execute(delete(change_history).where(*gone)).rowcount or 0)
