"""Retention: the job log, record errors and the journal do not grow forever.

Why a module of its own: three repositories purge by age under one policy, and they share two
rules that must never drift apart:

- an error is *open* while its record is still in ``record_status`` (in the retry pass, held
  as a conflict, or skipped): a person may still be troubleshooting it, so no purge removes it
  (nor the run it belongs to); once the record syncs (after an unskip, say) the error is
  *resolved* and ages out like any other;
- deletes go in chunks of :data:`~nav_crm_ops.store.base.CHUNK` ids, one short transaction
  each, so a large table never holds the write lock for long (syncs keep running).

:func:`purge_old` applies a :class:`RetentionPolicy` (the ``[retention]`` section of the
workspace config) and returns a :class:`PurgeCounts`; ``dry_run`` only counts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, Table, delete, exists

from ..exceptions import StateStoreError
from .base import Transactions, chunks
from .history import HistoryRepository
from .schema import record_errors, record_status

if TYPE_CHECKING:
    from .state_store import StateStore

__all__ = ["SETTLED_OP_STATES", "PurgeCounts", "RetentionPolicy", "delete_in_chunks",
           "open_error", "purge_old"]

SETTLED_OP_STATES = ("done", "failed")
"""Journal states whose outcome is known; ``pending`` and ``sent`` ops may be what a crashed
run left unfinished, so no purge ever removes them."""

_STAMP = "%Y-%m-%dT%H:%M:%S.%fZ"
"""The fixed-width UTC text the store keeps (:func:`~nav_crm_ops.store.schema.utc_now`)."""


@dataclass(frozen=True)
class RetentionPolicy:
    """How many days each kind of row is kept (defaults as the ``[retention]`` section's)."""

    runs_days: int = 90
    resolved_errors_days: int = 30
    journal_days: int = 7

    def __post_init__(self) -> None:
        bad = {name: days for name, days in asdict(self).items()
               if not isinstance(days, int) or isinstance(days, bool) or days < 1}
        if bad:
            raise StateStoreError(f"retention days must be whole numbers of at least 1; got "
                                  f"{bad}")

    def cutoff(self, days: int, now: datetime | None = None) -> str:
        """The stored-time text ``days`` before ``now`` (rows older than it are purged)."""
        moment = (now or datetime.now(UTC)).astimezone(UTC) - timedelta(days=days)
        return moment.strftime(_STAMP)


@dataclass(frozen=True)
class PurgeCounts:
    """Rows removed (or, for a dry run, that would be) per table."""

    runs: int = 0
    record_errors: int = 0
    pending_ops: int = 0
    alerts: int = 0
    reconcile_runs: int = 0
    dry_run: bool = False

    @property
    def total(self) -> int:
        return (self.runs + self.record_errors + self.pending_ops + self.alerts
                + self.reconcile_runs)

    def tables(self) -> dict[str, int]:
        """``{table: rows}`` in the order a person reads them."""
        return {"runs": self.runs, "record_errors": self.record_errors,
                "pending_ops": self.pending_ops, "alerts": self.alerts,
                "reconcile_runs": self.reconcile_runs}

    def to_dict(self) -> dict[str, Any]:
        return {"dry_run": self.dry_run, "tables": self.tables(), "total": self.total}

    def __str__(self) -> str:
        verb = "would remove" if self.dry_run else "removed"
        return "\n".join(f"{table:<14} {verb} {rows}" for table, rows in self.tables().items())


def open_error() -> ColumnElement[bool]:
    """True for a ``record_errors`` row whose record is still in ``record_status`` (retry
    pass, conflict or skipped): such errors, and their runs, are never purged."""
    status, error = record_status.c, record_errors.c
    return exists().where(status.company == error.company, status.mapping == error.mapping, status.direction == error.direction,
                          status.source_id == error.source_id)


def delete_in_chunks(tx: Transactions, table: Table, ids: Sequence[Any],
                     *still: ColumnElement[bool]) -> int:
    """Delete rows of ``table`` by ``id``, one short transaction per chunk; ``still`` is
    checked again at delete time (a row that changed since it was selected stays)."""
    removed = 0
    for chunk in chunks(ids):
        with tx() as conn:
            removed += conn.execute(delete(table).where(table.c.id.in_(chunk), *still)
                                    ).rowcount or 0
    return removed


def purge_old(store: StateStore, policy: RetentionPolicy | None = None, *,
              dry_run: bool = False, now: datetime | None = None) -> PurgeCounts:
    """Purge what ``policy`` says is old: resolved record errors first (their payloads and
    responses are what makes the database big), then runs, then settled journal ops, then
    alerts resolved and drift checks made as long ago as the runs kept (open alerts and each
    mapping's newest drift check stay)."""
    policy = policy or RetentionPolicy()
    errors = store.outcomes.purge_errors(policy.cutoff(policy.resolved_errors_days, now),
                                         dry_run=dry_run)
    runs = store.runs.purge(policy.cutoff(policy.runs_days, now), dry_run=dry_run)
    if not dry_run:  # the values a purged run replaced go with it (store.history)
        HistoryRepository.of(store).purge_orphans()
    ops = store.journal.purge(older_than=policy.cutoff(policy.journal_days, now),
                              states=SETTLED_OP_STATES, dry_run=dry_run)
    alerts = store.alerts.purge(policy.cutoff(policy.runs_days, now), dry_run=dry_run)
    checks = store.reconcile_runs.purge(policy.cutoff(policy.runs_days, now), dry_run=dry_run)
    return PurgeCounts(runs=runs, record_errors=errors, pending_ops=ops, alerts=alerts,
                       reconcile_runs=checks, dry_run=dry_run)
