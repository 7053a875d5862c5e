"""The job log (``runs``): one row per sync, couple, match or preview run, with its counts,
and the one vocabulary of how a run ended (:class:`RunOutcome`).

Why a repository of its own: runs are written by the engine and read by the job runner, the
CLI and the dashboards; purging old runs also removes the record errors they explain.

Why the outcome lives here: the engine stores a short ``status`` per run (``running``,
``finished``, ``failed``, ``cancelled``) where ``failed`` means both "some records failed or
conflicted" and "a service error stopped the run". :meth:`RunOutcome.decide` turns a status and
its counts into the outcome a person should read, for new rows and for rows written before the
outcome existed alike, so the job log, ``jobs list``, ``jobs run`` and the job reports agree.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import StrEnum

import polars as pl
from sqlalchemy import delete, insert, select, update

from ..exceptions import StateStoreError
from .base import Repository, chunks, mapping_key, new_id
from .retention import open_error
from .schema import record_errors, record_status, runs, utc_now

__all__ = ["RUN_COUNTS", "RUN_KINDS", "STOPPED_PREFIX", "RunOutcome", "RunRepository"]

RUN_KINDS = ("sync", "couple", "uncouple", "match", "preview", "revert")
RUN_COUNTS = ("inserted", "modified", "deleted", "unchanged", "skipped", "failed", "coupled",
              "uncoupled", "conflicts", "requests", "retries", "bytes")
STOPPED_PREFIX = "stopped: "
"""How the engine starts the message of a run a service error stopped (status ``failed``)."""


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


class RunOutcome(StrEnum):
    """How a sync run, a job run or a mapping's part of one ended; the value is the stable
    key scripts and stored rows use, :meth:`label` what a person reads, :attr:`colour` the
    colour every front end shows it in (by meaning, never by position)."""

    SUCCEEDED = "succeeded"
    SUCCEEDED_WITH_FAILURES = "succeeded_with_failures"
    """Written, but some records failed (they are in the retry pass and the error log)."""
    HELD_CONFLICTS = "held_conflicts"
    """Written, no record failed, but some were held: the same field changed on both sides."""
    AWAITING_APPROVAL = "awaiting_approval"
    """An approval-mode job previewed a plan above its thresholds, saved it and wrote nothing:
    a person approves it (``nav-crm-ops plans approve``) and the next run applies it."""
    FAILED = "failed"
    """The run itself failed: a service error stopped it, or its notebook raised."""
    CANCELLED = "cancelled"
    TIMED_OUT = "timeout"
    RUNNING = "running"
    BUSY = "busy"
    """A job that did not run: its mapping was being synchronized by someone else."""
    SKIPPED = "skipped"
    """A job that did not run: another runner holds it, or it was no longer due."""

    @property
    def colour(self) -> str:
        """CSS colour by meaning: failed and timed out red, with failed records orange, held
        conflicts amber, succeeded green, waiting for approval purple (a person must act),
        cancelled and not run grey, running blue."""
        return _COLOURS[self]

    @property
    def completed(self) -> bool:
        """The run did its work (records may still have failed or conflicted)."""
        return self in (RunOutcome.SUCCEEDED, RunOutcome.SUCCEEDED_WITH_FAILURES,
                        RunOutcome.HELD_CONFLICTS, RunOutcome.AWAITING_APPROVAL)

    @property
    def is_failure(self) -> bool:
        """The run did not do its work (``jobs run`` exits 1)."""
        return self in (RunOutcome.FAILED, RunOutcome.TIMED_OUT, RunOutcome.CANCELLED)

    def label(self, failed: int = 0, conflicts: int = 0) -> str:
        """What a person reads: ``succeeded with 2 failed records``, ``held conflicts (1)``,
        ``timed out``...; without counts, the outcome's name (``succeeded with failed
        records``) for legends."""
        if self is RunOutcome.SUCCEEDED_WITH_FAILURES and failed:
            held = f" and {_plural(conflicts, 'held conflict')}" if conflicts else ""
            return f"succeeded with {_plural(failed, 'failed record')}{held}"
        if self is RunOutcome.HELD_CONFLICTS and conflicts:
            return f"held conflicts ({conflicts})"
        return _LABELS.get(self, self.value)

    @classmethod
    def decide(cls, status: str, *, failed: int = 0, conflicts: int = 0,
               message: str = "") -> RunOutcome:
        """The one rule: a stored or reported ``status`` plus the run's failed and conflict
        counts. ``failed`` with failed or conflicting records and no "stopped: " message is a
        run that succeeded with failed records (or held conflicts); without them it failed."""
        known = _OLD_STATUSES.get(status.strip().lower())
        if known is None:
            try:
                known = cls(status)
            except ValueError:
                known = cls.FAILED
        if known not in (cls.SUCCEEDED, cls.FAILED):
            return known
        if known is cls.FAILED and (STOPPED_PREFIX in message or not (failed or conflicts)):
            return cls.FAILED
        if failed:
            return cls.SUCCEEDED_WITH_FAILURES
        return cls.HELD_CONFLICTS if conflicts else cls.SUCCEEDED

    @classmethod
    def worst(cls, outcomes: Iterable[RunOutcome]) -> RunOutcome:
        """The outcome of several parts (mappings of a run, directions of a mapping)."""
        return max(outcomes, key=_SEVERITY.index, default=cls.SUCCEEDED)


_COLOURS = {
    RunOutcome.SUCCEEDED: "#2e7d32", RunOutcome.SUCCEEDED_WITH_FAILURES: "#e65100",
    RunOutcome.HELD_CONFLICTS: "#f9a825", RunOutcome.AWAITING_APPROVAL: "#6a1b9a",
    RunOutcome.FAILED: "#c62828",
    RunOutcome.TIMED_OUT: "#c62828", RunOutcome.CANCELLED: "#757575",
    RunOutcome.RUNNING: "#1565c0", RunOutcome.BUSY: "#9e9e9e", RunOutcome.SKIPPED: "#9e9e9e",
}
_LABELS = {RunOutcome.SUCCEEDED_WITH_FAILURES: "succeeded with failed records",
           RunOutcome.HELD_CONFLICTS: "held conflicts", RunOutcome.TIMED_OUT: "timed out",
           RunOutcome.AWAITING_APPROVAL: "waiting for approval",
           RunOutcome.BUSY: "not run: mapping busy", RunOutcome.SKIPPED: "not run"}
_OLD_STATUSES = {"finished": RunOutcome.SUCCEEDED, "succeeded": RunOutcome.SUCCEEDED,
                 "failed": RunOutcome.FAILED, "timed out": RunOutcome.TIMED_OUT,
                 "succeeded with failed records": RunOutcome.SUCCEEDED_WITH_FAILURES,
                 "held conflicts": RunOutcome.HELD_CONFLICTS}
"""Stored statuses of the engine (``finished``) and of the job queue before the outcome
existed; values of :class:`RunOutcome` are read as themselves."""
_SEVERITY = [RunOutcome.SKIPPED, RunOutcome.BUSY, RunOutcome.SUCCEEDED,
             RunOutcome.AWAITING_APPROVAL, RunOutcome.HELD_CONFLICTS,
             RunOutcome.SUCCEEDED_WITH_FAILURES, RunOutcome.RUNNING, RunOutcome.CANCELLED,
             RunOutcome.TIMED_OUT, RunOutcome.FAILED]


class RunRepository(Repository):
    """The ``runs`` table (and, when purging, the record errors of purged runs)."""

    def start(self, mapping: str, direction: str, kind: str = "sync", *,
              job_name: str = "") -> int:
        if kind not in RUN_KINDS:
            raise StateStoreError(f"run kind {kind!r} is not one of {list(RUN_KINDS)}")
        with self._tx() as conn:
            result = conn.execute(insert(runs).values(
                company=self.company, mapping=mapping_key(mapping), direction=direction, kind=kind, job_name=job_name,
                started_at=utc_now(), status="running", message="",
                **dict.fromkeys(RUN_COUNTS, 0)))
            return new_id(result)

    def finish(self, run_id: int, status: str, counts: Mapping[str, int] | None = None, *,
               message: str = "", output_path: str | None = None) -> None:
        """Close a run; ``counts`` keys are :data:`RUN_COUNTS` (unknown keys are refused)."""
        counts = dict(counts or {})
        unknown = sorted(set(counts) - set(RUN_COUNTS))
        if unknown:
            raise StateStoreError(f"unknown run count(s) {unknown}; valid: {list(RUN_COUNTS)}")
        with self._tx() as conn:
            count = conn.execute(update(runs).where(
                runs.c.id == run_id, self.scoped(runs)).values(
                status=status, finished_at=utc_now(), message=message, output_path=output_path,
                **counts)).rowcount
        if not count:
            raise StateStoreError(f"run {run_id} does not exist (in company "
                                  f"{self.company or 'of this store'})")

    def link_sync(self, run_ids: Iterable[int]) -> None:
        """Mark job-log rows as one sync (both directions, the second pass): ``sync_id`` is
        the smallest of their ids. The alert rules judge a sync, not each of its rows."""
        ids = sorted({int(i) for i in run_ids})
        if ids:
            with self._tx() as conn:
                conn.execute(update(runs).where(runs.c.id.in_(ids), self.scoped(runs))
                             .values(sync_id=ids[0]))

    def set_output(self, run_ids: Iterable[int], output_path: str) -> int:
        """Link job-log entries to the output notebook (or report) that recorded them."""
        ids = [int(i) for i in run_ids]
        with self._tx() as conn:
            return conn.execute(update(runs).where(
                runs.c.id.in_(ids), self.scoped(runs)).values(
                output_path=output_path)).rowcount or 0

    def frame(self, mapping: str | None = None, *, limit: int = 200) -> pl.DataFrame:
        """The job log, newest first, with each run's ``outcome`` (:meth:`RunOutcome.decide`
        of its stored status and counts: rows of any age read alike)."""
        frame = self._frame(runs, select(runs).order_by(runs.c.id.desc()).limit(limit), mapping)
        outcomes = [RunOutcome.decide(status, failed=failed, conflicts=conflicts,
                                      message=message).value
                    for status, failed, conflicts, message in zip(
                        frame["status"], frame["failed"], frame["conflicts"], frame["message"],
                        strict=True)] if frame.height else []
        return frame.with_columns(pl.Series("outcome", outcomes, dtype=pl.Utf8))

    def purge(self, older_than: str, *, dry_run: bool = False) -> int:
        """Delete runs finished before ``older_than`` (UTC ISO text) and their record errors,
        in short chunked transactions; returns the runs removed (``dry_run``: that would be).

        Runs that a record in the retry pass or a skipped record still points at are kept (they
        explain it), and so are runs holding an open error (:func:`retention.open_error`).
        """
        c = runs.c
        still = (c.id.not_in(select(record_status.c.run_id).where(
                     record_status.c.run_id.is_not(None))),
                 c.id.not_in(select(record_errors.c.run_id).where(
                     record_errors.c.run_id.is_not(None), open_error())))
        with self._tx(write=False) as conn:
            old = list(conn.execute(select(c.id).where(
                self.scoped(runs), c.finished_at.is_not(None), c.finished_at < older_than, *still)).scalars())
        if dry_run:
            return len(old)
        removed = 0
        for chunk in chunks(old):
            with self._tx() as conn:
                conn.execute(delete(record_errors).where(
                    record_errors.c.run_id.in_(chunk), ~open_error()))
                removed += conn.execute(delete(runs).where(c.id.in_(chunk), *still)
                                        ).rowcount or 0
        return removed
