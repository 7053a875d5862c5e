"""Job queue rows (``jobs``): the SQL behind :class:`nav_crm_ops.jobs.queue.JobQueue`.

Why a repository in the store: every query of the state database lives in this package, so
its transactions and locking stay in one place; the job queue keeps the rules (statuses,
schedules) and turns rows into job entries. Rows here are plain column dicts.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import delete, func, insert, select, update

from ..exceptions import ConfigError
from .base import Repository
from .claims import Claim, ClaimRequest, Decide, claim_job
from .schema import jobs

__all__ = ["JobRepository"]


class JobRepository(Repository):
    """The ``jobs`` table, one row per job queue entry, keyed by name."""

    def add(self, values: Mapping[str, Any]) -> int:
        """Insert a new row and return its position: ``values["position"]``, or last in the
        order when that is 0. ConfigError when a job of that name (in any case) exists."""
        name = str(values["name"])
        with self._tx() as conn:
            exists = conn.execute(select(jobs.c.name).where(
                self.scoped(jobs), func.lower(jobs.c.name) == name.lower())).first()
            if exists is not None:
                raise ConfigError(f"a job named {exists[0]!r} already exists; change it with "
                                  "`nav-crm-ops jobs set` or remove it first")
            position = int(values["position"] or 0) or int(conn.execute(
                select(func.coalesce(func.max(jobs.c.position), 0)).where(
                    self.scoped(jobs))).scalar() or 0) + 1
            conn.execute(insert(jobs).values(**{**values, "position": position,
                                                "company": self.company}))
        return position

    def rows(self) -> list[dict[str, Any]]:
        """Every row, in run order (position, then name)."""
        with self._tx(write=False) as conn:
            rows = conn.execute(select(jobs).where(self.scoped(jobs))
                                .order_by(jobs.c.position, jobs.c.name)).all()
        return [dict(row._mapping) for row in rows]

    def update(self, name: str, values: Mapping[str, Any]) -> bool:
        """Write ``values`` into the row of ``name``; False when there is none."""
        with self._tx() as conn:
            return bool(conn.execute(update(jobs).where(self.scoped(jobs), jobs.c.name == name)
                                     .values(**values)).rowcount)

    def delete(self, name: str) -> bool:
        with self._tx() as conn:
            return bool(conn.execute(delete(jobs).where(self.scoped(jobs),
                                                        jobs.c.name == name)).rowcount)

    def update_if_status(self, name: str, status: str, values: Mapping[str, Any]) -> bool:
        """Write ``values`` only while the job still has ``status`` (another runner may have
        started it since it was read); False when it did not."""
        with self._tx() as conn:
            return bool(conn.execute(update(jobs).where(
                self.scoped(jobs), jobs.c.name == name, jobs.c.status == status
            ).values(**values)).rowcount)

    def begin_run(self, name: str, status: str, at: str | None) -> dict[str, Any] | None:
        """Set ``status``, count one more run started ``at`` and return the row (None when
        there is no job ``name``), in one transaction."""
        with self._tx() as conn:
            conn.execute(update(jobs).where(self.scoped(jobs), jobs.c.name == name).values(
                status=status, run_count=jobs.c.run_count + 1, last_run_at=at, updated_at=at))
            row = conn.execute(select(jobs).where(self.scoped(jobs),
                                                  jobs.c.name == name)).first()
        return None if row is None else dict(row._mapping)

    def claim(self, request: ClaimRequest, decide: Decide) -> Claim:
        """Check and start one job in one transaction, locking it and its related jobs
        (:func:`nav_crm_ops.store.claims.claim_job`: several runners, one queue)."""
        return claim_job(self._tx, request, decide, company=self.company)
