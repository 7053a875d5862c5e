"""Claiming a job (``jobs`` + ``leases``): the one transaction in which a runner checks that a
job may start and marks it started.

Why one transaction with row locks: any number of runners on any number of hosts read the same
queue. Checking "due, and no job it depends on (or that depends on it) running or due" and
then marking it In Process in two steps lets two runners both pass the check. Here the job's
row and the rows of every job related to it are locked (``SELECT … FOR UPDATE SKIP LOCKED`` on
PostgreSQL: a row another runner is claiming is skipped, never waited for, so two claims never
deadlock), read again, checked, and the job's lease taken and its row marked In Process before
the commit. On SQLite the transaction itself holds the database's write lock (``BEGIN
IMMEDIATE``), so claims are serialized and ``FOR UPDATE`` is left out. The rules of the check
are the job queue's (``decide``); the SQL is here.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, func, select, update

from .base import Transactions
from .leases import Lease, database_now, holder_is_dead, take_lease
from .schema import jobs, leases

__all__ = ["Claim", "ClaimRequest", "Decide", "claim_job"]

Decide = Callable[[Mapping[str, Any], list[Mapping[str, Any]]], str]
"""Given the job's row and its related jobs' rows (all locked, read after the lock): why it
may not start now, or "" when it may."""


@dataclass(frozen=True)
class ClaimRequest:
    """Who claims which job, under which lease, marking it with which status at what time."""

    name: str
    related: Collection[str]
    """Jobs whose rows must be locked and checked with it (dependencies and dependents)."""
    lease_name: str
    holder: str
    ttl_s: float
    status: str
    """The status the claimed job gets (In Process)."""
    at: str | None
    """When the run starts, in the store's UTC text (``last_run_at``)."""


@dataclass(frozen=True)
class Claim:
    """The result: ``row`` before and ``started`` after the claim (both None when refused),
    else ``refusal`` says why; ``holder`` / ``expires_at`` name a lease that refused it."""

    before: dict[str, Any] | None = None
    started: dict[str, Any] | None = None
    lease: Lease | None = None
    refusal: str = ""
    holder: str = ""
    expires_at: str = ""

    @property
    def claimed(self) -> bool:
        return self.started is not None


def _locked(conn: Connection, company: str, names: Collection[str]) -> list[Any]:
    """The rows of ``names`` this transaction could lock (rows another runner has locked
    are skipped, not waited for), in name order."""
    query = select(jobs).where(jobs.c.company == company, jobs.c.name.in_(sorted(names))
                               ).order_by(jobs.c.name)
    return list(conn.execute(query.with_for_update(skip_locked=True)).all())


def _lease_or_takeover(conn: Connection, company: str,
                       request: ClaimRequest) -> tuple[Lease | None, Any]:
    """The job's lease for the claimer, taken over from a holder proven dead
    (:func:`holder_is_dead`); else (None, the current lease row)."""
    lease = take_lease(conn, request.lease_name, request.holder, request.ttl_s)
    if lease is not None:
        return lease, None
    mine = (leases.c.company == company, leases.c.name == request.lease_name)
    current = conn.execute(select(leases).where(*mine)).first()
    if current is None or not holder_is_dead(current.holder):
        return None, current
    now, expires = database_now(conn, request.ttl_s)
    conn.execute(update(leases).where(*mine, leases.c.holder == current.holder)
                 .values(holder=request.holder, acquired_at=now, expires_at=expires))
    return Lease(request.lease_name, request.holder, now, expires), current


def claim_job(tx: Transactions, request: ClaimRequest, decide: Decide, *,
              company: str = "") -> Claim:
    """Claim ``request.name`` of ``company`` in one transaction (see the module docstring)."""
    ours = jobs.c.company == company
    with tx() as conn:
        row = conn.execute(select(jobs).where(ours, jobs.c.name == request.name)
                           .with_for_update(skip_locked=True)).first()
        if row is None:
            exists = conn.execute(select(func.count()).select_from(jobs).where(
                ours, jobs.c.name == request.name)).scalar()
            return Claim(refusal="another runner is starting it" if exists
                         else "it no longer exists")
        others = set(request.related) - {request.name}
        existing = int(conn.execute(select(func.count()).select_from(jobs).where(
            ours, jobs.c.name.in_(sorted(others)))).scalar() or 0) if others else 0
        related = _locked(conn, company, others) if others else []
        if len(related) < existing:
            return Claim(refusal="another runner is starting a job it depends on (or that "
                                 "depends on it)")
        refusal = decide(dict(row._mapping), [dict(r._mapping) for r in related])
        if refusal:
            return Claim(refusal=refusal)
        lease, current = _lease_or_takeover(conn, company, request)
        if lease is None:
            return Claim(refusal=f"it is being run by {current.holder} (lease until "
                                 f"{current.expires_at})" if current else "its lease is held",
                         holder=current.holder if current else "",
                         expires_at=current.expires_at if current else "")
        conn.execute(update(jobs).where(ours, jobs.c.name == request.name).values(
            status=request.status, run_count=jobs.c.run_count + 1, last_run_at=request.at,
            updated_at=request.at))
        started = conn.execute(select(jobs).where(ours, jobs.c.name == request.name)).first()
    assert started is not None
    return Claim(before=dict(row._mapping), started=dict(started._mapping), lease=lease)
