"""Record outcomes: which source records did not sync (``record_status``) and why
(``record_errors``).

Why a repository of its own: the retry pass and the skip rule are the store's only real logic;
keeping them next to the error log they explain keeps both in one place.

Record status: every source record that did not sync (coupled or not) has one row per mapping
and direction in ``record_status`` with state ``failed``, ``conflict`` or ``skipped``; the
next run reads those records again by id (the retry pass), a success deletes the row.

Skip rule (better than the reference): transient failures (throttling, timeouts, 5xx) never
count toward skipping; a permanent failure counts only when its *normalized* message equals the
previous one; ``skip_after`` such failures in a row skip the record, keeping the reason and
the time, until :meth:`RecordOutcomeRepository.unskip` puts it back into the retry pass
(``skip_after=0`` never skips). Held conflicts are retried every run and never skipped.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl
from sqlalchemy import Connection, bindparam, delete, func, insert, select, update

from ..exceptions import StateStoreError
from .base import (
    DriverStatement,
    Repository,
    check_direction,
    chunks,
    dumps,
    mapping_key,
    new_id,
    rows_frame,
    without_company,
)
from .normalize import normalize_error_message
from .retention import delete_in_chunks, open_error
from .schema import record_errors, record_status, utc_now

__all__ = ["STATUS_STATES", "RecordFailure", "RecordOutcomeRepository", "RecordStatus"]

STATUS_STATES = ("failed", "conflict", "skipped")
_KEY_COLUMNS = ("mapping", "direction", "source_id")


@dataclass(frozen=True)
class RecordFailure:
    """One record that failed in a run (input to :meth:`StateStore.record_outcomes`)."""

    source_id: str
    message: str
    transient: bool = False
    destination_id: str | None = None
    conflict: bool = False


@dataclass(frozen=True)
class RecordStatus:
    """Why a source record is in the retry pass (``failed``, ``conflict``) or ``skipped``."""

    mapping: str
    direction: str
    source_id: str
    state: str
    message: str
    transient: bool = False
    consecutive_failures: int = 0
    destination_id: str | None = None
    fingerprint: str | None = None
    run_id: int | None = None
    first_failed_at: str = ""
    skipped_since: str | None = None
    updated_at: str = ""

    @property
    def skipped(self) -> bool:
        return self.state == "skipped"


def failure_values(row: Any, failure: RecordFailure, skip_after: int,
                   now: str) -> dict[str, Any]:
    """Every status column after ``failure`` (the skip rule of the module docstring)."""
    previous = row.consecutive_failures if row is not None else 0
    values: dict[str, Any] = {
        "message": failure.message, "transient": failure.transient,
        "consecutive_failures": previous,
        "fingerprint": row.fingerprint if row is not None else None,
        "skipped_since": row.skipped_since if row is not None else None,
        "state": "failed",
    }
    if row is not None and row.state == "skipped":
        return values | {"state": "skipped"}
    if failure.conflict:
        return values | {"state": "conflict", "consecutive_failures": 0, "fingerprint": None}
    if failure.transient:
        return values
    new_fingerprint = normalize_error_message(failure.message)
    count = previous + 1 if new_fingerprint == values["fingerprint"] else 1
    values.update(consecutive_failures=count, fingerprint=new_fingerprint)
    if skip_after > 0 and count >= skip_after:
        values.update(state="skipped", skipped_since=now)
    return values


def _error_row(row: Mapping[str, Any], now: str, company: str) -> dict[str, Any]:
    return {
        "company": company, "run_id": row.get("run_id"), "mapping": mapping_key(str(row["mapping"])),
        "direction": row["direction"], "source_id": row.get("source_id"),
        "destination_id": row.get("destination_id"),
        "source_label": (str(row["source_label"])[:500] if row.get("source_label") else None),
        "transient": bool(row.get("transient", False)),
        "service_code": row.get("service_code"), "http_status": row.get("http_status"),
        "message": row["message"],
        "normalized_message": normalize_error_message(str(row["message"])),
        "payload": dumps(row.get("payload")), "response": dumps(row.get("response")),
        "source_values": dumps(row.get("source_values")), "created_at": now,
    }


def _error_filter(company: str, mapping: str | None, run_id: int | None,
                  transient: bool | None, normalized_message: str | None = None,
                  source_id: str | None = None) -> list[Any]:
    conditions: list[Any] = [record_errors.c.company == company]
    if mapping is not None:
        conditions.append(record_errors.c.mapping == mapping_key(mapping))
    if run_id is not None:
        conditions.append(record_errors.c.run_id == run_id)
    if transient is not None:
        conditions.append(record_errors.c.transient.is_(transient))
    if normalized_message is not None:
        conditions.append(record_errors.c.normalized_message == normalized_message)
    if source_id is not None:
        conditions.append(record_errors.c.source_id == source_id)
    return conditions


def _clear_statement(dialect: str) -> Any:
    """Delete one record's status (a success: it leaves the retry pass)."""
    c = record_status.c
    return delete(record_status).where(*(c[name] == bindparam(name) for name in _CLEAR_KEYS))


_CLEAR_KEYS = ("company", "mapping", "direction", "source_id")
_CLEAR = DriverStatement(_clear_statement)
_FEW = 2_000
"""Records in a retry pass (of one mapping and direction) read before clearing successes."""


class _Batch:
    """One run's outcomes for one mapping and direction, applied on one connection."""

    def __init__(self, conn: Connection, company: str, key: str, direction: str) -> None:
        self.conn, self.key, self.direction = conn, key, direction
        self.company = company
        c = record_status.c
        self.where = (c.company == company, c.mapping == key, c.direction == direction)

    def clear(self, source_ids: Sequence[str]) -> None:
        """Take ``source_ids`` out of the retry pass: one prepared single-key delete per id
        through the driver (SQLAlchemy's ``IN`` lists cost about 2 µs per id to render).

        Every sync clears every record it wrote, and the retry pass of a mapping and
        direction usually holds few records (none in a first sync): when it holds at most
        :data:`_FEW`, they are read first and only those among ``source_ids`` deleted —
        the rows the deletes of every id would remove, without a statement per id that
        finds nothing. (On SQLite the write transaction keeps others from adding any in
        between; on PostgreSQL one committed in between counts as committed after this
        transaction, as it could have been.)"""
        if not source_ids:
            return
        held = self._held()
        wanted = source_ids if held is None else [i for i in source_ids if i in held]
        company, key, direction = self.company, self.key, self.direction
        _CLEAR.run(self.conn, [(company, key, direction, i) for i in wanted], _CLEAR_KEYS)

    def _held(self) -> set[str] | None:
        """The source ids in this mapping and direction's retry pass; None when there are
        more than :data:`_FEW`."""
        ids = self.conn.execute(select(record_status.c.source_id).where(*self.where)
                                .limit(_FEW + 1)).scalars().all()
        return None if len(ids) > _FEW else set(ids)

    def current(self, source_ids: Sequence[str]) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for chunk in chunks(source_ids):
            rows = self.conn.execute(select(record_status).where(
                *self.where, record_status.c.source_id.in_(chunk))).all()
            found.update({row.source_id: row for row in rows})
        return found

    def write(self, inserts: list[dict[str, Any]], updates: list[dict[str, Any]]) -> None:
        if inserts:
            self.conn.execute(insert(record_status), inserts)
        if not updates:
            return
        c = record_status.c
        names = [n for n in updates[0] if n not in (*_KEY_COLUMNS, "company")]
        self.conn.execute(
            update(record_status).where(
                c.company == self.company,
                c.mapping == bindparam("k_mapping"),
                c.direction == bindparam("k_direction"),
                c.source_id == bindparam("k_source_id"))
            .values({n: bindparam(n) for n in names}),
            [{**{n: u[n] for n in names}, "k_mapping": u["mapping"],
              "k_direction": u["direction"], "k_source_id": u["source_id"]}
             for u in updates])


class RecordOutcomeRepository(Repository):
    """The ``record_status`` (retry pass, skip rule) and ``record_errors`` tables."""

    # -- record status ---------------------------------------------------------------------------
    def apply(self, mapping: str, direction: str, *, succeeded: Iterable[str] = (),
              failed: Iterable[RecordFailure] = (), run_id: int | None = None,
              skip_after: int = 2) -> list[RecordStatus]:
        """Apply one run's outcomes in one transaction: successes leave the retry pass,
        failures enter it under the skip rule. Returns the statuses of the failed records."""
        key, direction = mapping_key(mapping), check_direction(direction)
        ok = [str(i) for i in succeeded]
        failures = list(failed)
        now = utc_now()
        result: list[RecordStatus] = []
        with self._tx() as conn:
            batch = _Batch(conn, self.company, key, direction)
            batch.clear(ok)
            current = batch.current([f.source_id for f in failures])
            inserts: list[dict[str, Any]] = []
            updates: list[dict[str, Any]] = []
            for failure in failures:
                row = current.get(failure.source_id)
                values = failure_values(row, failure, skip_after, now)
                values.update(
                    company=self.company, mapping=key, direction=direction, source_id=failure.source_id,
                    run_id=run_id, updated_at=now,
                    destination_id=failure.destination_id or (
                        row.destination_id if row is not None else None),
                    first_failed_at=row.first_failed_at if row is not None else now)
                (inserts if row is None else updates).append(values)
                result.append(RecordStatus(**{k: v for k, v in values.items()
                                              if k != "company"}))
            batch.write(inserts, updates)
        return result

    def status(self, mapping: str, source_id: str, direction: str) -> RecordStatus | None:
        c = record_status.c
        with self._tx(write=False) as conn:
            row = conn.execute(select(record_status).where(
                self.scoped(record_status), c.mapping == mapping_key(mapping), c.direction == check_direction(direction),
                c.source_id == source_id)).first()
        if row is None:
            return None
        return RecordStatus(**{k: v for k, v in row._mapping.items() if k != "company"})

    def status_frame(self, mapping: str | None = None, *,
                     states: Sequence[str] = STATUS_STATES) -> pl.DataFrame:
        """Records in the retry pass or skipped (one row per mapping, direction, source)."""
        bad = sorted(set(states) - set(STATUS_STATES))
        if bad:
            raise StateStoreError(f"record state(s) {bad} unknown; valid: {list(STATUS_STATES)}")
        query = select(record_status).where(record_status.c.state.in_(list(states)))
        return self._frame(record_status, query.order_by(record_status.c.updated_at), mapping)

    def unskip(self, mapping: str, source_ids: Iterable[str] | None = None, *,
               direction: str | None = None) -> int:
        """Put skipped records back into the retry pass (all of ``mapping`` when no ids)."""
        c = record_status.c
        query = update(record_status).where(self.scoped(record_status),
                                            c.mapping == mapping_key(mapping),
                                            c.state == "skipped")
        if direction is not None:
            query = query.where(c.direction == check_direction(direction))
        if source_ids is not None:
            query = query.where(c.source_id.in_([str(i) for i in source_ids]))
        with self._tx() as conn:
            return conn.execute(query.values(
                state="failed", skipped_since=None, consecutive_failures=0, fingerprint=None,
                updated_at=utc_now())).rowcount or 0

    # -- record errors ---------------------------------------------------------------------------
    def add_error(self, mapping: str, direction: str, message: str, *,
                  run_id: int | None = None, source_id: str | None = None,
                  destination_id: str | None = None, transient: bool = False,
                  service_code: str | None = None, http_status: int | None = None,
                  payload: Any = None, response: Any = None,
                  source_values: Any = None, source_label: str | None = None) -> int:
        with self._tx() as conn:
            result = conn.execute(insert(record_errors).values(
                company=self.company, run_id=run_id, mapping=mapping_key(mapping), direction=direction,
                source_id=source_id, destination_id=destination_id,
                source_label=source_label[:500] if source_label else None, transient=transient,
                service_code=service_code, http_status=http_status, message=message,
                normalized_message=normalize_error_message(message), payload=dumps(payload),
                response=dumps(response), source_values=dumps(source_values),
                created_at=utc_now()))
            return new_id(result)

    def add_errors(self, rows: Iterable[Mapping[str, Any]]) -> int:
        """Many record errors in one transaction (keys as :meth:`add_error`'s arguments plus
        ``mapping``, ``direction`` and ``message``)."""
        now = utc_now()
        values = [_error_row(row, now, self.company) for row in rows]
        if values:
            with self._tx() as conn:
                conn.execute(insert(record_errors), values)
        return len(values)

    def purge_errors(self, older_than: str, *, dry_run: bool = False) -> int:
        """Delete resolved record errors created before ``older_than`` (UTC ISO text), in
        short chunked transactions; errors of records still in the retry pass or skipped are
        kept (:func:`retention.open_error`). Returns the rows removed (``dry_run``: that would
        be)."""
        c = record_errors.c
        with self._tx(write=False) as conn:
            old = list(conn.execute(select(c.id).where(
                self.scoped(record_errors), c.created_at < older_than,
                ~open_error())).scalars())
        return len(old) if dry_run else delete_in_chunks(self._tx, record_errors, old,
                                                          ~open_error())

    def errors_frame(self, mapping: str | None = None, *, run_id: int | None = None,
                     transient: bool | None = None, normalized_message: str | None = None,
                     source_id: str | None = None, limit: int = 10_000) -> pl.DataFrame:
        """Record errors, newest first (payload/response/source values as JSON text);
        ``normalized_message`` drills into one :meth:`error_groups` group, ``source_id``
        gives one record's history."""
        query = select(record_errors).where(*_error_filter(
            self.company, mapping, run_id, transient, normalized_message, source_id))
        with self._tx(write=False) as conn:
            rows = conn.execute(query.order_by(record_errors.c.id.desc()).limit(limit)).all()
        return without_company(rows_frame(rows, record_errors))

    def error_groups(self, mapping: str | None = None, *, run_id: int | None = None,
                     transient: bool | None = None) -> pl.DataFrame:
        """Errors grouped by normalized message: ``count`` (occurrences), ``records``
        (distinct source records: what a person has to look at), first/last seen, one
        example."""
        c = record_errors.c
        query = (select(c.mapping, c.normalized_message, func.count().label("count"),
                        func.count(func.distinct(c.source_id)).label("records"),
                        func.min(c.created_at).label("first_seen"),
                        func.max(c.created_at).label("last_seen"),
                        func.max(c.message).label("example"))
                 .where(*_error_filter(self.company, mapping, run_id, transient))
                 .group_by(c.mapping, c.normalized_message)
                 .order_by(func.count().desc(), c.mapping))
        with self._tx(write=False) as conn:
            rows = conn.execute(query).all()
        return pl.DataFrame([tuple(r) for r in rows], orient="row", schema={
            "mapping": pl.Utf8(), "normalized_message": pl.Utf8(), "count": pl.Int64(),
            "records": pl.Int64(), "first_seen": pl.Utf8(), "last_seen": pl.Utf8(), "example": pl.Utf8()})
