"""Leases (``leases``): named, expiring locks that keep two callers from writing one mapping or
running one job at once.

Why a repository of its own: taking a lease must be atomic in SQL across processes and hosts;
the holder identity (:func:`default_holder`) and the dead-holder takeover live with it.
"""

from __future__ import annotations

import os
import re
import socket
import uuid
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, delete, or_, select, text, update
from sqlalchemy.dialects import postgresql, sqlite

from ..exceptions import LeaseHeldError, StateStoreError
from .base import Repository
from .schema import leases, utc_now

__all__ = ["Lease", "LeaseRepository", "database_now", "default_holder", "holder_is_dead",
           "take_lease"]

_PG_STAMP = 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'
"""to_char format of the store's fixed-width UTC text (see :func:`schema.utc_now`)."""


_KEY = re.compile(r" @(([0-9a-f]+)\.([0-9]+)\.[0-9]+)$")
"""The process key at the end of a holder (:func:`default_holder`)."""


def _process_key(pid: int | str = "self") -> str:
    """``<boot id>.<pid namespace>.<start time>`` of process ``pid`` (Linux), "" when unknown.

    Why all three: a pid alone names different processes in two containers (each has its own
    pid namespace, yet both may share the host name) and after a reboot (boot id); the start
    time tells a recycled pid from the holder. Only when the boot id and the pid namespace are
    this process's own can a holder's pid be checked here at all."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip().replace("-", "")[:12]
        namespace = os.stat(f"/proc/{pid}/ns/pid").st_ino
        stat = Path(f"/proc/{pid}/stat").read_text()
        start = stat.rsplit(")", 1)[1].split()[19]  # field 22, counted after the name
    except (OSError, IndexError):
        return ""
    return f"{boot}.{namespace}.{start}"


@cache
def _own_key() -> tuple[str, str]:
    """(boot id, pid namespace) of this process: whose pids :func:`holder_is_dead` may check."""
    key = _process_key()
    boot, _, rest = key.partition(".")
    return boot, rest.partition(".")[0]


def default_holder(description: str = "") -> str:
    """``host:pid #uuid description @process-key``: who holds a lease, readable in messages.

    The uuid is new on every call, so each caller — process, thread, notebook kernel, or two
    syncs of one process — holds a lease under its own identity: a lease is never granted to a
    second caller because it runs in the same process (or a process of the same host name and
    pid in another container). The process key (:func:`_process_key`) only lets
    :func:`holder_is_dead` prove a holder of this very machine and pid namespace gone."""
    key = _process_key(os.getpid())
    text = f"{socket.gethostname()}:{os.getpid()} #{uuid.uuid4().hex} {description}".strip()
    return f"{text} @{key}" if key else text


def holder_is_dead(holder: str) -> bool:
    """True only when ``holder`` (from :func:`default_holder`) provably no longer runs: same
    host name, same boot and pid namespace as this process, and its pid is gone or now names
    a process started at another time. Then its lease can be taken over at once; in every
    other case (another container or host, an older holder without a process key) liveness
    is the lease's expiry, which the holder's heartbeat keeps in the future."""
    host, _, pid = holder.split(" ", 1)[0].rpartition(":")
    found = _KEY.search(holder)
    if host != socket.gethostname() or not pid.isdigit() or found is None:
        return False
    key, boot, namespace = found.group(1), found.group(2), found.group(3)
    if (boot, namespace) != _own_key() or not boot:
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass
    current = _process_key(pid)
    return bool(current) and current != key


def database_now(conn: Connection, ttl_s: float) -> tuple[str, str]:
    """Now and now + ``ttl_s`` in the store's UTC text form, by the database's clock on
    PostgreSQL (``now()``: runners on several hosts judge expiry by one clock), by this
    machine's on SQLite (a local file: every client shares this clock)."""
    if conn.dialect.name != "postgresql":
        return utc_now(), utc_now(ttl_s)
    row = conn.execute(text(
        "SELECT to_char(now() AT TIME ZONE 'UTC', :fmt), "
        "to_char((now() + make_interval(secs => CAST(:ttl AS double precision))) "
        "AT TIME ZONE 'UTC', :fmt)"), {"fmt": _PG_STAMP, "ttl": ttl_s}).one()
    return str(row[0]), str(row[1])


def _insert_if_absent(dialect: str) -> Any:
    """``INSERT INTO leases … ON CONFLICT DO NOTHING`` for the two supported databases."""
    if dialect == "postgresql":
        return postgresql.insert(leases).on_conflict_do_nothing(
            index_elements=["company", "name"])
    if dialect == "sqlite":
        return sqlite.insert(leases).on_conflict_do_nothing(
            index_elements=["company", "name"])
    raise StateStoreError(f"leases support SQLite and PostgreSQL state databases, not {dialect}")


def take_lease(conn: Connection, name: str, holder: str, ttl_s: float) -> Lease | None:
    """Take ``name`` for ``holder`` inside the caller's transaction, or None when another
    live holder has it: an expired lease (or one ``holder`` already holds) with one
    conditional UPDATE, a missing one with ``INSERT … ON CONFLICT DO NOTHING`` (a refusal is a
    row count of 0, never a unique-key violation in the server's log). Why a function: the
    job queue takes a job's lease in the same transaction that claims the job."""
    now, expires = database_now(conn, ttl_s)
    taken = conn.execute(update(leases).where(
        # A lease name per company: the company of the caller's store (``conn.info``).
        leases.c.company == conn.info.get("company", ""), leases.c.name == name,
        or_(leases.c.expires_at <= now, leases.c.holder == holder),
    ).values(holder=holder, acquired_at=now, expires_at=expires)).rowcount
    if not taken:
        taken = conn.execute(_insert_if_absent(conn.dialect.name).values(
            company=conn.info.get("company", ""), name=name, holder=holder, acquired_at=now, expires_at=expires,
        ).returning(leases.c.name)).first() is not None
    return Lease(name, holder, now, expires) if taken else None


@dataclass(frozen=True)
class Lease:
    name: str
    holder: str
    acquired_at: str
    expires_at: str


class LeaseRepository(Repository):
    """The ``leases`` table."""

    def acquire(self, name: str, holder: str, ttl_s: float) -> Lease:
        """Take ``name`` for ``holder`` for ``ttl_s`` seconds, or raise LeaseHeldError.

        Atomic in SQL: an expired lease (or one ``holder`` already holds) is taken with one
        conditional UPDATE; a missing one with an ``INSERT … ON CONFLICT DO NOTHING``, so a
        refusal is a row count of 0, never a unique-key violation in the server's log. Times
        come from the database's clock (:func:`database_now`), not each client's. A lease of
        a process of this host that no longer runs (:func:`holder_is_dead`) is taken over at
        once instead of waiting for it to expire.
        """
        if ttl_s <= 0:
            raise StateStoreError(f"lease {name!r}: ttl_s must be positive, got {ttl_s}")
        with self._tx() as conn:
            lease = take_lease(conn, name, holder, ttl_s)
        if lease is not None:
            return lease
        current = self.get(name)
        if current is not None and holder_is_dead(current.holder):
            return self.take_over(name, current.holder, holder, ttl_s)
        raise LeaseHeldError(
            f"lease {name!r} is held by {current.holder if current else 'another process'} "
            f"until {current.expires_at if current else 'unknown'}; wait for it to finish "
            "or, if that process is gone, wait until the lease expires",
            holder=current.holder if current else "",
            expires_at=current.expires_at if current else "",
        )

    def renew(self, name: str, holder: str, ttl_s: float) -> Lease:
        """Extend a lease ``holder`` still holds (LeaseHeldError if it was lost)."""
        with self._tx() as conn:
            now, expires = database_now(conn, ttl_s)
            renewed = conn.execute(update(leases).where(
                self.scoped(leases), leases.c.name == name, leases.c.holder == holder,
                leases.c.expires_at > now,
            ).values(expires_at=expires)).rowcount
        if not renewed:
            current = self.get(name)
            taken = current is not None and current.holder != holder
            raise LeaseHeldError(
                f"lease {name!r} is no longer held by {holder!r}"
                + (f"; {current.holder} holds it until {current.expires_at}" if taken
                   and current else f" (it expired{' at ' + current.expires_at if current else ''})")
                + "; stop the work it protected and acquire it again",
                holder=current.holder if current else "",
                expires_at=current.expires_at if current else "",
            )
        current = self.get(name)
        assert current is not None
        return current

    def take_over(self, name: str, dead_holder: str, holder: str, ttl_s: float) -> Lease:
        """Take a lease from a holder known to be dead (e.g. a killed process on this host)
        without waiting for it to expire; LeaseHeldError if someone else took it meanwhile."""
        with self._tx() as conn:
            now, expires = database_now(conn, ttl_s)
            taken = conn.execute(update(leases).where(
                self.scoped(leases), leases.c.name == name, leases.c.holder == dead_holder,
            ).values(holder=holder, acquired_at=now, expires_at=expires)).rowcount
        if not taken:
            return self.acquire(name, holder, ttl_s)
        return Lease(name, holder, now, expires)

    def release(self, name: str, holder: str) -> bool:
        """Give the lease back; False when ``holder`` did not hold it."""
        with self._tx() as conn:
            return bool(conn.execute(delete(leases).where(
                self.scoped(leases), leases.c.name == name,
                leases.c.holder == holder)).rowcount)

    def get(self, name: str) -> Lease | None:
        """The current lease row of ``name`` (may be expired), or None."""
        with self._tx(write=False) as conn:
            row = conn.execute(select(leases).where(self.scoped(leases),
                                                    leases.c.name == name)).first()
        if row is None:
            return None
        return Lease(**{k: v for k, v in row._mapping.items() if k != "company"})
