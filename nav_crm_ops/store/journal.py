"""The pending-operations journal (``pending_ops``): what an apply is about to write.

Why a repository of its own: the applier journals every write before sending it and marks it
after, so a crashed run can be told apart from a finished one; op ids are deterministic, so
journaling the same plan twice never duplicates work.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import polars as pl
from sqlalchemy import bindparam, delete, insert, null, select, update

from ..exceptions import StateStoreError
from .base import (
    DriverStatement,
    Repository,
    check_side,
    chunks,
    dialect_insert,
    dumps,
    mapping_key,
)
from .retention import SETTLED_OP_STATES, delete_in_chunks
from .schema import pending_ops, utc_now

__all__ = ["OP_STATES", "JournalRepository"]

OP_STATES = ("pending", "sent", "done", "failed")


def _sent_statement(dialect: str) -> Any:
    """Journal an op as ``sent``; one already journaled (a re-sent plan) keeps its row and
    payload and is marked ``sent`` again."""
    statement = dialect_insert(dialect, pending_ops)
    return statement.on_conflict_do_update(
        index_elements=["company", "op_id"],
        set_={"state": statement.excluded.state, "result": null(),
              "updated_at": statement.excluded.updated_at})


_SENT = DriverStatement(_sent_statement)
_SENT_COLUMNS = ("run_id", "company", "mapping", "op_id", "kind", "target", "record_key",
                 "payload", "state", "result", "created_at", "updated_at")


def _settled_statement(dialect: str) -> Any:
    """Remove one op still ``sent`` (it succeeded)."""
    c = pending_ops.c
    return delete(pending_ops).where(c.company == bindparam("company"),
                                     c.op_id == bindparam("op_id"),
                                     c.state == bindparam("state"))


def _failed_statement(dialect: str) -> Any:
    """Mark one op still ``sent`` as ``failed``."""
    c = pending_ops.c
    return update(pending_ops).where(
        c.company == bindparam("k_company"), c.op_id == bindparam("k_op_id"),
        c.state == bindparam("k_state")).values(state=bindparam("new_state"), result=null(),
                                                updated_at=bindparam("new_updated_at"))


_DONE = DriverStatement(_settled_statement)
_FAILED = DriverStatement(_failed_statement)


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
                    self.scoped(pending_ops), pending_ops.c.op_id.in_(chunk))).scalars())
            fresh = [{
                "run_id": run_id, "company": self.company, "mapping": key, "op_id": str(r["op_id"]), "kind": str(r["kind"]),
                "target": str(r["target"]), "record_key": str(r.get("record_key", "")),
                "payload": dumps(r.get("payload")), "state": "pending", "created_at": now,
                "updated_at": now,
            } for r in rows if str(r["op_id"]) not in known]
            if fresh:
                conn.execute(insert(pending_ops), fresh)
        return len(fresh)

    def journal_sent(self, run_id: int | None, mapping: str,
                     ops: Iterable[Mapping[str, Any]]) -> int:
        """Journal ops and mark them ``sent`` in one statement and one commit, just before
        they are sent: what :meth:`journal` then :meth:`mark` (``sent``) leave, in one
        transaction instead of three (a 100,000-record first sync journals 100,000 ops).

        An op already journaled (a re-sent plan) keeps its row and payload and is marked
        ``sent`` as :meth:`mark` would. Returns how many ops were given."""
        key, now, company = mapping_key(mapping), utc_now(), self.company
        rows = [(run_id, company, key, str(op["op_id"]), str(op["kind"]),
                 check_side(str(op.get("target", ""))),
                 str(op.get("record_key", "")), dumps(op.get("payload")), "sent", None, now, now)
                for op in ops]
        if not rows:
            return 0
        with self._tx() as conn:
            _SENT.run(conn, rows, _SENT_COLUMNS)
        return len(rows)

    def settle(self, done: Sequence[str], failed: Sequence[str]) -> None:
        """After a chunk's replies, in one transaction: the ops that succeeded are settled
        and removed at once (marking them ``done`` and purging them later cost a second
        pass over every row), those that failed are marked ``failed`` (kept for retention:
        their outcome is also a record error). Only ops still ``sent`` are touched.

        One prepared single-op statement per op through the driver's ``executemany``
        (:class:`~.base.DriverStatement`): cheaper than ``IN`` lists, which SQLAlchemy
        rendered again per chunk (about 2.5 µs per op) and SQLite sorted before deleting."""
        company = self.company
        with self._tx() as conn:
            _DONE.run(conn, [(company, op_id, "sent") for op_id in done],
                      ("company", "op_id", "state"))
            now = utc_now()
            _FAILED.run(conn, [(company, op_id, "sent", "failed", now) for op_id in failed],
                        ("k_company", "k_op_id", "k_state", "new_state", "new_updated_at"))

    def mark(self, op_ids: Iterable[str], state: str, result: Any = None) -> int:
        if state not in OP_STATES:
            raise StateStoreError(f"op state {state!r} is not one of {list(OP_STATES)}")
        ids = list(op_ids)
        with self._tx() as conn:
            return conn.execute(update(pending_ops).where(
                self.scoped(pending_ops), pending_ops.c.op_id.in_(ids)).values(
                state=state, result=dumps(result), updated_at=utc_now())).rowcount or 0

    def frame(self, mapping: str | None = None, *,
              states: Sequence[str] = ("pending", "sent")) -> pl.DataFrame:
        """Journaled ops in ``states`` (default: those a crash may have left unfinished)."""
        query = select(pending_ops).where(pending_ops.c.state.in_(list(states)))
        return self._frame(pending_ops, query.order_by(pending_ops.c.id), mapping)

    def purge(self, *, states: Sequence[str] = ("done",), older_than: str | None = None,
              dry_run: bool = False) -> int:
        """Delete ops in settled ``states`` (last marked before ``older_than``, UTC ISO text,
        when given) in short chunked transactions; returns the rows removed (``dry_run``: that
        would be). Unsettled states are refused: a crash may have left those ops unfinished."""
        unsettled = sorted(set(states) - set(SETTLED_OP_STATES))
        if unsettled:
            raise StateStoreError(f"op state(s) {unsettled} are not settled (a crashed run may "
                                  f"have left them unfinished); only {list(SETTLED_OP_STATES)} "
                                  "can be purged")
        c = pending_ops.c
        settled = c.state.in_(list(states)) & self.scoped(pending_ops)
        query = select(c.id).where(settled)
        if older_than is not None:
            query = query.where(c.updated_at < older_than)
        with self._tx(write=False) as conn:
            old = list(conn.execute(query).scalars())
        return len(old) if dry_run else delete_in_chunks(self._tx, pending_ops, old, settled)
