"""Alerts (``alerts``): one row per condition the alert rules found, open until it clears.

Why a table: an alert must be sent once for a condition that persists (the rules run after
every run), listed later (``nav-crm-ops alerts``, the dashboards, the job reports) and closed
when the condition clears; the row keeps when it was first and last seen, how often, and
whether sending it worked. A condition that comes back after it cleared is a new alert.

The facts the rules read (:meth:`AlertRepository.facts`) are gathered here too, in a few
aggregate queries (counts per mapping and state, the newest runs), never whole tables.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl
from sqlalchemy import and_, delete, func, insert, or_, select, update

from .base import Repository, rows_frame
from .reconcile import latest_reconciles
from .runs import STOPPED_PREFIX
from .schema import alerts, jobs, reconcile_runs, record_status, runs, utc_now, watermarks

__all__ = ["ALERT_STATES", "AlertChanges", "AlertRepository", "StoredAlert"]

ALERT_STATES = ("open", "resolved")


@dataclass(frozen=True)
class StoredAlert:
    """An alert row as the senders and the CLI need it."""

    id: int
    rule: str
    subject: str
    severity: str
    message: str
    where: str
    first_seen: str

    @classmethod
    def of(cls, row: Any) -> StoredAlert:
        return cls(int(row.id), str(row.rule), str(row.subject), str(row.severity),
                   str(row.message), str(row.where_to_look), str(row.first_seen))


@dataclass(frozen=True)
class AlertChanges:
    """What one evaluation changed: alerts raised now (to be sent), and those that cleared."""

    raised: tuple[StoredAlert, ...] = ()
    resolved: tuple[StoredAlert, ...] = ()
    ongoing: int = 0


class AlertRepository(Repository):
    """The ``alerts`` table, and the facts the rules read."""

    def record(self, findings: Iterable[Any], *, now: str | None = None) -> AlertChanges:
        """Open an alert per new finding (``engine.alerts.Finding``), touch those already open,
        resolve open alerts whose condition no longer holds. One transaction: two runners
        evaluating at once never open the same alert twice (the write lock / row lock)."""
        now = now or utc_now()
        found = {(f.rule.value, f.subject): f for f in findings}
        c = alerts.c
        with self._tx() as conn:
            open_rows = {(r.rule, r.subject): r for r in conn.execute(select(alerts).where(
                self.scoped(alerts), c.state == "open").with_for_update())}
            raised = [self._open(conn, f, now) for key, f in found.items()
                      if key not in open_rows]
            for key in found.keys() & open_rows.keys():
                conn.execute(update(alerts).where(c.id == open_rows[key].id).values(
                    last_seen=now, seen_count=c.seen_count + 1))
            gone = [r for key, r in open_rows.items() if key not in found]
            if gone:
                conn.execute(update(alerts).where(c.id.in_([r.id for r in gone])).values(
                    state="resolved", resolved_at=now))
            ongoing = len(found.keys() & open_rows.keys())
        return AlertChanges(tuple(raised), tuple(StoredAlert.of(r) for r in gone), ongoing)

    def _open(self, conn: Any, finding: Any, now: str) -> StoredAlert:
        values = {"company": self.company, "rule": finding.rule.value,
                  "subject": finding.subject, "severity": finding.severity.value,
                  "state": "open", "message": finding.message, "where_to_look": finding.where,
                  "details": json.dumps(finding.details, sort_keys=True, default=str),
                  "first_seen": now, "last_seen": now, "seen_count": 1}
        new = conn.execute(insert(alerts).values(**values)).inserted_primary_key
        return StoredAlert(int(new[0]), values["rule"], values["subject"], values["severity"],
                           values["message"], values["where_to_look"], now)

    def mark_sent(self, alert_id: int, channel: str, error: str = "") -> None:
        """Record that ``channel`` (``webhook``, ``email``) sent the alert, or why it could not."""
        note = f"{channel}: {error}" if error else f"{channel}: sent"
        c = alerts.c
        with self._tx() as conn:
            row = conn.execute(select(c.notified).where(c.id == alert_id,
                                                        self.scoped(alerts))).first()
            if row is None:
                return
            notes = [n for n in (row.notified or "").split("\n") if n and
                     not n.startswith(f"{channel}:")]
            conn.execute(update(alerts).where(c.id == alert_id).values(
                notified="\n".join([*notes, note]), notified_at=utc_now()))

    def frame(self, *, state: str | None = "open", limit: int = 200) -> pl.DataFrame:
        """Alerts newest first (open ones by default; ``state=None``: every state)."""
        query = select(alerts).where(self.scoped(alerts)).order_by(alerts.c.id.desc())
        if state is not None:
            query = query.where(alerts.c.state == state)
        with self._tx(write=False) as conn:
            rows = conn.execute(query.limit(limit)).all()
        return rows_frame(rows, alerts)

    def purge(self, older_than: str, *, dry_run: bool = False) -> int:
        """Delete alerts resolved before ``older_than`` (open ones stay, whatever their age);
        returns how many (``dry_run``: would be)."""
        c = alerts.c
        old = (self.scoped(alerts), c.state == "resolved", c.resolved_at < older_than)
        with self._tx(write=not dry_run) as conn:
            if dry_run:
                return int(conn.execute(select(func.count()).select_from(alerts)
                                        .where(*old)).scalar() or 0)
            return int(conn.execute(delete(alerts).where(*old)).rowcount or 0)

    # -- what the rules read -------------------------------------------------------------------
    def facts(self, *, runs_per_mapping: int = 12) -> dict[str, Any]:
        """The inputs of ``engine.alerts.evaluate`` (as keyword arguments of ``AlertFacts``):
        the newest sync runs of each mapping, record-status counts per mapping and state, the
        jobs with their last successful run, the watermarks, the latest reconcile of each
        mapping."""
        with self._tx(write=False) as conn:
            return {"runs": self._recent_runs(conn, runs_per_mapping),
                    "status_counts": {(str(m), str(s)): int(n) for m, s, n in conn.execute(
                        select(record_status.c.mapping, record_status.c.state, func.count())
                        .where(self.scoped(record_status))
                        .group_by(record_status.c.mapping, record_status.c.state))},
                    "jobs": self._jobs(conn),
                    "watermarks": [dict(r._mapping) for r in conn.execute(
                        select(watermarks).where(self.scoped(watermarks)))],
                    "reconciles": latest_reconciles(conn, self.scoped(reconcile_runs))}

    def _recent_runs(self, conn: Any, per_mapping: int) -> list[dict[str, Any]]:
        """The newest twice ``per_mapping`` sync runs of each mapping (both directions)."""
        ranked = select(runs, func.row_number().over(
            partition_by=runs.c.mapping, order_by=runs.c.id.desc()).label("rank")).where(
            self.scoped(runs), runs.c.kind == "sync").subquery()
        rows = conn.execute(select(ranked).where(ranked.c.rank <= per_mapping * 2))
        return [dict(r._mapping) for r in rows]

    def _jobs(self, conn: Any) -> list[dict[str, Any]]:
        """Jobs with ``last_success_at``: the newest finish of a sync run of the job that did
        its work (the queue keeps only the job's last run)."""
        worked = or_(runs.c.status == "finished", and_(
            runs.c.status == "failed", runs.c.failed + runs.c.conflicts > 0,
            runs.c.message.not_like(f"{STOPPED_PREFIX}%")))  # RunOutcome.decide's rule
        done = select(runs.c.job_name, func.max(runs.c.finished_at).label("last_success_at")
                      ).where(self.scoped(runs), worked, runs.c.job_name != ""
                              ).group_by(runs.c.job_name).subquery()
        query = (select(jobs, done.c.last_success_at)
                 .select_from(jobs.outerjoin(done, done.c.job_name == jobs.c.name))
                 .where(self.scoped(jobs)))
        return [dict(r._mapping) for r in conn.execute(query)]


def describe(changes: AlertChanges) -> Sequence[str]:
    """One line per raised and resolved alert (the CLI and the job runner's log)."""
    return ([f"alert: {a.message}" for a in changes.raised]
            + [f"cleared: {a.message}" for a in changes.resolved])
