"""Approvals (``approvals``): plans a job in approval mode saved instead of applying them, and
what a person decided about each.

Why a table: a plan that crossed a job's thresholds waits for a named person (issue #20, item
2). Every approval is kept — who approved or rejected it, when, why it needed approval, which
plan file (with its digest) and, once applied, the job-log runs that applied it — so
``nav-crm-ops plans list`` answers "who let this change through?" long after the run.

States (:class:`ApprovalState`) only move forward, each move one conditional update (the row
must still be in the state the caller read), so a person approving while the job expires the
same approval never both win::

    pending ──approve──▶ approved ──the job's next run──▶ applied
       │                    │
       ├──reject────────────┴──▶ rejected
       └──not approved in time (or approval mode turned off)──▶ expired
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import insert, select, update

from .base import Repository, new_id
from .schema import approvals, utc_now

__all__ = ["Approval", "ApprovalRepository", "ApprovalState"]


class ApprovalState(StrEnum):
    """Where an approval stands (see the module docstring)."""

    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    APPLIED = "applied"
    EXPIRED = "expired"


@dataclass(frozen=True)
class Approval:
    """One approval row. ``counts``: the plan's creates, updates, deletes, coupled records;
    ``reasons``: why it needs approval (``120 creates > 50``); ``plan_path`` relative to the
    workspace when it lies inside it."""

    id: int
    job: str
    mapping: str
    plan_id: str
    plan_path: str
    digest: str
    counts: Mapping[str, int]
    reasons: tuple[str, ...]
    state: ApprovalState
    created_at: str
    expires_at: str | None = None
    approved_by: str = ""
    approved_at: str | None = None
    rejected_by: str = ""
    rejected_at: str | None = None
    note: str = ""
    applied_at: str | None = None
    applied_run_ids: tuple[int, ...] = ()

    @property
    def why(self) -> str:
        """The reasons as one line (``120 creates > 50; creditlimit changes (4 records)``)."""
        return "; ".join(self.reasons)

    @classmethod
    def of(cls, row: Any) -> Approval:
        data = dict(row._mapping)
        return cls(
            id=int(data["id"]), job=data["job"], mapping=data["mapping"],
            plan_id=data["plan_id"], plan_path=data["plan_path"], digest=data["digest"],
            counts=json.loads(data["counts"] or "{}"),
            reasons=tuple(json.loads(data["reasons"] or "[]")),
            state=ApprovalState(data["state"]), created_at=data["created_at"],
            expires_at=data["expires_at"], approved_by=data["approved_by"] or "",
            approved_at=data["approved_at"], rejected_by=data["rejected_by"] or "",
            rejected_at=data["rejected_at"], note=data["note"] or "",
            applied_at=data["applied_at"],
            applied_run_ids=tuple(json.loads(data["applied_run_ids"] or "[]")))

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly (``plans list --json``)."""
        return {"id": self.id, "state": self.state.value, "job": self.job,
                "mapping": self.mapping, "plan_id": self.plan_id, "plan_path": self.plan_path,
                "digest": self.digest, "counts": dict(self.counts),
                "reasons": list(self.reasons), "created_at": self.created_at,
                "expires_at": self.expires_at, "approved_by": self.approved_by or None,
                "approved_at": self.approved_at, "rejected_by": self.rejected_by or None,
                "rejected_at": self.rejected_at, "note": self.note,
                "applied_at": self.applied_at, "applied_run_ids": list(self.applied_run_ids)}


class ApprovalRepository(Repository):
    """The ``approvals`` table of this repository's company."""

    def add(self, *, job: str, mapping: str, plan_id: str, plan_path: str, digest: str,
            counts: Mapping[str, int], reasons: Sequence[str],
            expires_at: str | None) -> Approval:
        """Record a pending approval for a saved plan; returns it."""
        values = {"company": self.company, "job": job, "mapping": mapping,
                  "plan_id": plan_id, "plan_path": plan_path, "digest": digest,
                  "counts": json.dumps(dict(counts), sort_keys=True),
                  "reasons": json.dumps(list(reasons)), "state": ApprovalState.PENDING.value,
                  "created_at": utc_now(), "expires_at": expires_at, "note": ""}
        with self._tx() as conn:
            approval_id = new_id(conn.execute(insert(approvals).values(**values)))
        found = self.get(approval_id)
        assert found is not None
        return found

    def get(self, approval_id: int) -> Approval | None:
        with self._tx(write=False) as conn:
            row = conn.execute(select(approvals).where(
                self.scoped(approvals), approvals.c.id == approval_id)).first()
        return None if row is None else Approval.of(row)

    def find(self, *, job: str | None = None, states: Collection[ApprovalState] = (),
             plan_id: str | None = None, plan_path: str | None = None,
             limit: int = 200) -> list[Approval]:
        """Approvals newest first, narrowed by job, states, plan id or plan path."""
        c = approvals.c
        query = select(approvals).where(self.scoped(approvals))
        for column, value in ((c.job, job), (c.plan_id, plan_id), (c.plan_path, plan_path)):
            if value is not None:
                query = query.where(column == value)
        if states:
            query = query.where(c.state.in_([ApprovalState(s).value for s in states]))
        with self._tx(write=False) as conn:
            rows = conn.execute(query.order_by(c.id.desc()).limit(limit)).all()
        return [Approval.of(row) for row in rows]

    def move(self, approval_id: int, from_states: Collection[ApprovalState],
             to_state: ApprovalState, **values: Any) -> bool:
        """Move one approval to ``to_state`` (with ``values``: who, when, note, run ids) only
        while it is still in one of ``from_states``; False when it no longer was."""
        c = approvals.c
        if "applied_run_ids" in values:
            values["applied_run_ids"] = json.dumps([int(i) for i in values["applied_run_ids"]])
        with self._tx() as conn:
            return bool(conn.execute(update(approvals).where(
                self.scoped(approvals), c.id == approval_id,
                c.state.in_([ApprovalState(s).value for s in from_states]),
            ).values(state=to_state.value, **values)).rowcount)

    def expire(self, *, job: str, now: str, note: str, all_open: bool = False) -> int:
        """Expire the job's pending approvals whose time ran out (``all_open``: every pending
        or approved one, e.g. approval mode was turned off); returns how many."""
        c = approvals.c
        states = [ApprovalState.PENDING.value]
        conditions = [self.scoped(approvals), c.job == job]
        if all_open:
            states.append(ApprovalState.APPROVED.value)
        else:
            conditions += [c.expires_at.is_not(None), c.expires_at <= now]
        with self._tx() as conn:
            return int(conn.execute(update(approvals).where(
                *conditions, c.state.in_(states)).values(
                state=ApprovalState.EXPIRED.value, note=note)).rowcount or 0)
