"""Reconcile runs (``reconcile_runs``): what each drift check of a mapping found.

Why a table: the ``drift`` alert rule (``engine.alerts``) and ``nav-crm-ops reconcile --last``
read the latest reconcile of a mapping long after it ran (a scheduled job runs it, a person
reads it next morning); a heal records how many of its drifted pairs are in step now. The
drifted pairs' ids are kept (at most :data:`KEPT_PAIRS` of them) so ``--last`` can name them.

The second pass of a reconcile walks the couplings in id order, ids only
(:meth:`ReconcileRepository.coupled_ids`): never the mapping's whole table at once.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

from sqlalchemy import ColumnElement, Connection, delete, func, insert, select, update

from .base import CHUNK, Repository, mapping_key
from .schema import couplings, reconcile_runs, utc_now

__all__ = ["KEPT_PAIRS", "ReconcileRepository", "latest_reconciles"]

KEPT_PAIRS = 1000
"""Out-of-step pairs stored per run (the counts are always complete)."""
_COUNTS = ("in_step", "pending", "missed", "diverged", "partner_gone")


class ReconcileRepository(Repository):
    """The ``reconcile_runs`` table, and the couplings' ids in chunks."""

    def record(self, result: Mapping[str, Any]) -> int:
        """Store one reconcile (``ReconcileResult.to_dict()``); returns its id."""
        counts = result["counts"]
        pairs = list(result.get("pairs") or ())
        values = {"company": self.company, "mapping": mapping_key(result["mapping"]),
                  "started_at": result["started_at"], "finished_at": utc_now(),
                  **{name: int(counts.get(name, 0)) for name in _COUNTS},
                  "requests": int(result["requests"]), "pages": int(result["pages"]),
                  "duration_ms": int(float(result["duration_s"]) * 1000),
                  "pairs": json.dumps(pairs[:KEPT_PAIRS]), "advice": result.get("advice", ""),
                  "healed": int(result.get("healed", 0))}
        with self._tx() as conn:
            new = conn.execute(insert(reconcile_runs).values(**values)).inserted_primary_key
        assert new is not None
        return int(new[0])

    def set_healed(self, run_id: int, healed: int) -> None:
        """Record that ``healed`` of the run's drifted pairs are in step after a heal."""
        c = reconcile_runs.c
        with self._tx() as conn:
            conn.execute(update(reconcile_runs).where(self.scoped(reconcile_runs),
                                                      c.id == run_id).values(
                healed=healed, healed_at=utc_now()))

    def latest(self, mapping: str) -> dict[str, Any] | None:
        """The newest reconcile of ``mapping`` (``pairs`` decoded), None before the first."""
        c = reconcile_runs.c
        with self._tx(write=False) as conn:
            row = conn.execute(select(reconcile_runs).where(
                self.scoped(reconcile_runs), c.mapping == mapping_key(mapping)
            ).order_by(c.id.desc()).limit(1)).first()
        if row is None:
            return None
        data = dict(row._mapping)
        data.pop("company", None)
        data["pairs"] = json.loads(data["pairs"] or "[]")
        return data

    def purge(self, older_than: str, *, dry_run: bool = False) -> int:
        """Delete reconciles finished before ``older_than`` except each mapping's newest (the
        drift alert and ``--last`` read it); returns how many (``dry_run``: would be)."""
        c = reconcile_runs.c
        newest = select(func.max(c.id)).where(self.scoped(reconcile_runs)).group_by(c.mapping)
        old = (self.scoped(reconcile_runs), c.finished_at < older_than, c.id.not_in(newest))
        with self._tx(write=not dry_run) as conn:
            if dry_run:
                return int(conn.execute(select(func.count()).select_from(reconcile_runs)
                                        .where(*old)).scalar() or 0)
            return int(conn.execute(delete(reconcile_runs).where(*old)).rowcount or 0)

    def coupled_ids(self, mapping: str, size: int = CHUNK) -> Iterator[list[str]]:
        """The NAV ids of ``mapping``'s couplings, ``size`` at a time in coupling order (a
        keyset walk: each chunk is one short query)."""
        c = couplings.c
        after = 0
        while True:
            with self._tx(write=False) as conn:
                rows = conn.execute(select(c.id, c.nav_id).where(
                    self.scoped(couplings), c.mapping == mapping_key(mapping), c.id > after
                ).order_by(c.id).limit(size)).all()
            if not rows:
                return
            after = int(rows[-1][0])
            yield [str(r[1]) for r in rows]


def latest_reconciles(conn: Connection, scoped: ColumnElement[bool]) -> list[dict[str, Any]]:
    """The newest reconcile of each mapping (``scoped``: the company condition on
    ``reconcile_runs``), for the alert rules."""
    c = reconcile_runs.c
    newest = select(func.max(c.id)).where(scoped).group_by(c.mapping)
    rows = conn.execute(select(*(c[n] for n in (
        "id", "mapping", "started_at", "in_step", "pending", "missed", "diverged",
        "partner_gone", "healed"))).where(c.id.in_(newest)))
    return [dict(r._mapping) for r in rows]
