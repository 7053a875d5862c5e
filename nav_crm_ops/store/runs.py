"""The job log (``runs``): one row per sync, couple, match or preview run, with its counts.

Why a repository of its own: runs are written by the engine and read by the job runner, the
CLI and the dashboards; purging old runs also removes the record errors they explain.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import polars as pl
from sqlalchemy import delete, insert, select, update

from ..exceptions import StateStoreError
from .base import Repository, chunks, mapping_key, new_id
from .schema import record_errors, record_status, runs, utc_now

__all__ = ["RUN_COUNTS", "RUN_KINDS", "RunRepository"]

RUN_KINDS = ("sync", "couple", "uncouple", "match", "preview")
RUN_COUNTS = ("inserted", "modified", "deleted", "unchanged", "skipped", "failed", "coupled",
              "uncoupled", "conflicts", "requests", "retries", "bytes")


class RunRepository(Repository):
    """The ``runs`` table (and, when purging, the record errors of purged runs)."""

    def start(self, mapping: str, direction: str, kind: str = "sync", *,
              job_name: str = "") -> int:
        if kind not in RUN_KINDS:
            raise StateStoreError(f"run kind {kind!r} is not one of {list(RUN_KINDS)}")
        with self._tx() as conn:
            result = conn.execute(insert(runs).values(
                mapping=mapping_key(mapping), direction=direction, kind=kind, job_name=job_name,
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
            count = conn.execute(update(runs).where(runs.c.id == run_id).values(
                status=status, finished_at=utc_now(), message=message, output_path=output_path,
                **counts)).rowcount
        if not count:
            raise StateStoreError(f"run {run_id} does not exist")

    def set_output(self, run_ids: Iterable[int], output_path: str) -> int:
        """Link job-log entries to the output notebook (or report) that recorded them."""
        ids = [int(i) for i in run_ids]
        with self._tx() as conn:
            return conn.execute(update(runs).where(runs.c.id.in_(ids)).values(
                output_path=output_path)).rowcount or 0

    def frame(self, mapping: str | None = None, *, limit: int = 200) -> pl.DataFrame:
        """The job log, newest first."""
        return self._frame(runs, select(runs).order_by(runs.c.id.desc()).limit(limit), mapping)

    def purge(self, older_than: str) -> int:
        """Delete runs finished before ``older_than`` (UTC ISO text) and their record errors.

        Runs that a skipped record still points at are kept: they explain why it was skipped.
        """
        kept = select(record_status.c.run_id).where(
            record_status.c.state == "skipped", record_status.c.run_id.is_not(None))
        with self._tx() as conn:
            keep = {row[0] for row in conn.execute(kept)}
            old = [row[0] for row in conn.execute(select(runs.c.id).where(
                runs.c.finished_at.is_not(None), runs.c.finished_at < older_than))
                if row[0] not in keep]
            for chunk in chunks(old):
                conn.execute(delete(record_errors).where(record_errors.c.run_id.in_(chunk)))
                conn.execute(delete(runs).where(runs.c.id.in_(chunk)))
        return len(old)
