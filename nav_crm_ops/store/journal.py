"""The pending-operations journal (``pending_ops``): what an apply is about to write.

Why a repository of its own: the applier journals every write before sending it and marks it
after, so a crashed run can be told apart from a finished one; op ids are deterministic, so
journaling the same plan twice never duplicates work.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import polars as pl
from sqlalchemy import delete, insert, select, update

from ..exceptions import StateStoreError
from .base import Repository, check_side, chunks, dumps, mapping_key
from .schema import pending_ops, utc_now

__all__ = ["OP_STATES", "JournalRepository"]

OP_STATES = ("pending", "sent", "done", "failed")


class JournalRepository(Repository):
    """The ``pending_ops`` table."""

    def journal(self, run_id: int | None, mapping: str,
                ops: Iterable[Mapping[str, Any]]) -> int:
        """Write ops (``op_id``, ``kind``, ``target``, ``record_key``, ``payload``) as pending.

        ``op_id`` is deterministic (same plan → same id): an op already journaled is kept as it
        is, so re-journaling after a crash never duplicates work.
        """
        key, now = mapping_key(mapping), utc_now()
        rows = [dict(op) for op in ops]
        for row in rows:
            check_side(str(row.get("target", "")))
        with self._tx() as conn:
            known: set[str] = set()
            for chunk in chunks([str(r["op_id"]) for r in rows]):
                known.update(conn.execute(select(pending_ops.c.op_id).where(
                    pending_ops.c.op_id.in_(chunk))).scalars())
            fresh = [{
                "run_id": run_id, "mapping": key, "op_id": str(r["op_id"]), "kind": str(r["kind"]),
                "target": str(r["target"]), "record_key": str(r.get("record_key", "")),
                "payload": dumps(r.get("payload")), "state": "pending", "created_at": now,
                "updated_at": now,
            } for r in rows if str(r["op_id"]) not in known]
            if fresh:
                conn.execute(insert(pending_ops), fresh)
        return len(fresh)

    def mark(self, op_ids: Iterable[str], state: str, result: Any = None) -> int:
        if state not in OP_STATES:
            raise StateStoreError(f"op state {state!r} is not one of {list(OP_STATES)}")
        ids = list(op_ids)
        with self._tx() as conn:
            return conn.execute(update(pending_ops).where(pending_ops.c.op_id.in_(ids)).values(
                state=state, result=dumps(result), updated_at=utc_now())).rowcount or 0

    def frame(self, mapping: str | None = None, *,
              states: Sequence[str] = ("pending", "sent")) -> pl.DataFrame:
        """Journaled ops in ``states`` (default: those a crash may have left unfinished)."""
        query = select(pending_ops).where(pending_ops.c.state.in_(list(states)))
        return self._frame(pending_ops, query.order_by(pending_ops.c.id), mapping)

    def purge(self, *, states: Sequence[str] = ("done",)) -> int:
        with self._tx() as conn:
            return conn.execute(delete(pending_ops).where(
                pending_ops.c.state.in_(list(states)))).rowcount or 0
