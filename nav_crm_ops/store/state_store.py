"""The state database: couplings, job log, record errors, watermarks, journal and leases.

Why one small explicit API: the engine, the job runner and the notebooks all read and change
the same state; every change goes through a method here and runs in its own transaction, so a
crash never leaves half a change behind.

A SQLite file in the workspace by default (WAL mode, busy timeout, writes take the write lock
up front with ``BEGIN IMMEDIATE`` so two processes never deadlock on a lock upgrade); any
SQLAlchemy URL works (PostgreSQL for shared installations).

Record status: every source record that did not sync (coupled or not) has one row per mapping
and direction in ``record_status`` with state ``failed``, ``conflict`` or ``skipped``; the
next run reads those records again by id (the retry pass), a success deletes the row.

Skip rule (better than the reference): transient failures (throttling, timeouts, 5xx) never
count toward skipping; a permanent failure counts only when its *normalized* message equals the
previous one; ``skip_after`` such failures in a row skip the record, keeping the reason and
the time, until :meth:`StateStore.unskip` puts it back into the retry pass (``skip_after=0``
never skips). Held conflicts are retried every run and never skipped.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import polars as pl
from sqlalchemy import (
    Connection,
    Engine,
    Table,
    and_,
    bindparam,
    create_engine,
    delete,
    event,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError

from ..exceptions import LeaseHeldError, StateStoreError
from . import schema
from .identity import WorkspaceIdentity, read_identity
from .normalize import normalize_error_message
from .schema import (
    couplings,
    leases,
    option_mappings,
    pending_ops,
    record_errors,
    record_status,
    reference_cache,
    runs,
    utc_now,
    watermarks,
)

__all__ = ["RUN_COUNTS", "Coupling", "Lease", "RecordFailure", "RecordStatus", "StateStore",
           "default_holder", "holder_is_dead"]

SyncDirection = Literal["to_crm", "from_crm"]
Side = Literal["nav", "crm"]
RUN_KINDS = ("sync", "couple", "uncouple", "match", "preview")
RUN_COUNTS = ("inserted", "modified", "deleted", "unchanged", "skipped", "failed", "coupled",
              "uncoupled", "conflicts", "requests", "retries", "bytes")
OP_STATES = ("pending", "sent", "done", "failed")
STATUS_STATES = ("failed", "conflict", "skipped")
DEFAULT_STATE_FILE = "state.db"
BUSY_TIMEOUT_MS = 30_000

_COUPLING_FRAME_SCHEMA: dict[str, pl.DataType] = {
    "mapping": pl.Utf8(), "nav_id": pl.Utf8(), "crm_id": pl.Utf8(), "nav_key": pl.Utf8(),
    "crm_key": pl.Utf8(), "nav_modified_at": pl.Utf8(), "crm_modified_at": pl.Utf8(),
    "nav_etag": pl.Utf8(), "crm_etag": pl.Utf8(), "base_values": pl.Utf8(), "created_at": pl.Utf8(), "updated_at": pl.Utf8(),
}


def default_holder(description: str = "") -> str:
    """``host:pid #token description``: who holds a lease, readable in error messages.

    The token is new on every call, so each caller — process, thread, notebook kernel, or two
    syncs of one process — holds a lease under its own identity: a lease is never granted to a
    second caller because it runs in the same process as the holder."""
    base = f"{socket.gethostname()}:{os.getpid()} #{secrets.token_hex(4)}"
    return f"{base} {description}".strip()


def holder_is_dead(holder: str) -> bool:
    """True when ``holder`` (from :func:`default_holder`) names a process of this host that
    no longer runs: its lease can be taken over at once instead of waiting for it to expire."""
    where = holder.split(" ", 1)[0]
    host, _, pid = where.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


@dataclass(frozen=True)
class Coupling:
    """One coupled pair: ids, natural keys (for lookups and display), last synced modified-on
    per side and ``base_values``, the field values as last synced (the three-way diff's base)."""

    mapping: str
    nav_id: str
    crm_id: str
    nav_key: str | None = None
    crm_key: str | None = None
    nav_modified_at: str | None = None
    crm_modified_at: str | None = None
    nav_etag: str | None = None
    crm_etag: str | None = None
    base_values: Mapping[str, Any] | None = None
    created_at: str = ""
    updated_at: str = ""


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


@dataclass(frozen=True)
class Lease:
    name: str
    holder: str
    acquired_at: str
    expires_at: str


def _mapping_key(name: str) -> str:
    if not name or not name.strip():
        raise StateStoreError("a mapping name is required (e.g. 'CUSTOMER')")
    return name.strip().upper()


def _direction(direction: str) -> SyncDirection:
    if direction not in ("to_crm", "from_crm"):
        raise StateStoreError(f"direction {direction!r} is not one of ['to_crm', 'from_crm']")
    return direction  # type: ignore[return-value]


def _side(side: str) -> Side:
    if side not in ("nav", "crm"):
        raise StateStoreError(f"side {side!r} is not one of ['nav', 'crm']")
    return side  # type: ignore[return-value]


def _dumps(value: Any) -> str | None:
    return None if value is None else json.dumps(value, default=str, sort_keys=True)


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def _to_url(url_or_path: str | Path) -> str:
    text = str(url_or_path)
    if "://" in text:
        return text
    path = Path(text)
    if path.is_dir():
        path = path / DEFAULT_STATE_FILE
    return f"sqlite:///{path.resolve()}"


def _frame(rows: Sequence[Any], table: Table, columns: Sequence[str] | None = None) -> pl.DataFrame:
    names = list(columns or [c.name for c in table.columns])
    types = {c.name: c.type.python_type for c in table.columns}
    dtype_of = {int: pl.Int64(), bool: pl.Boolean(), str: pl.Utf8()}
    frame_schema = {n: dtype_of.get(types.get(n, str), pl.Utf8()) for n in names}
    return pl.DataFrame([tuple(r) for r in rows], schema=frame_schema, orient="row")


def _new_id(result: Any) -> int:
    key = result.inserted_primary_key
    if key is None:
        raise StateStoreError("the database did not return the new row's id")
    return int(key[0])


class StateStore:
    """Open with :meth:`open`; close with :meth:`close` (or use as a context manager)."""

    def __init__(self, engine: Engine, where: str) -> None:
        self._engine = engine
        self.where = where

    # -- opening ------------------------------------------------------------------------------
    @classmethod
    def open(cls, url_or_path: str | Path) -> StateStore:
        """Open (creating and migrating as needed) a SQLAlchemy URL, SQLite file or folder."""
        url = _to_url(url_or_path)
        try:
            parsed = make_url(url)
        except SQLAlchemyError as exc:
            raise StateStoreError(f"state URL {url!r} is not a valid SQLAlchemy URL: {exc}") from None
        where = parsed.render_as_string(hide_password=True)
        is_sqlite = parsed.get_backend_name() == "sqlite"
        if is_sqlite and parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        try:
            engine = create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_MS / 1000}
                                   if is_sqlite else {})
        except (SQLAlchemyError, ImportError) as exc:
            raise StateStoreError(f"cannot open the state database {where}: {exc}") from None
        if is_sqlite:
            cls._configure_sqlite(engine)
        store = cls(engine, where)
        try:
            with store._tx() as conn:
                schema.migrate(conn, where)
        except SQLAlchemyError as exc:
            engine.dispose()
            raise StateStoreError(f"cannot open the state database {where}: {exc}") from None
        except StateStoreError:
            engine.dispose()
            raise
        return store

    @staticmethod
    def _configure_sqlite(engine: Engine) -> None:
        @event.listens_for(engine, "connect")
        def _connect(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _begin(conn: Connection) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.info.get("write", True) else "BEGIN")

    def close(self) -> None:
        self._engine.dispose()

    def __enter__(self) -> StateStore:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"StateStore({self.where!r})"

    def identity(self) -> WorkspaceIdentity:
        """This database's id and plan signing key (see :mod:`nav_crm_ops.store.identity`)."""
        with self._tx(write=False) as conn:
            return read_identity(conn, self.where)

    @property
    def schema_version(self) -> int:
        with self._tx(write=False) as conn:
            return schema.current_version(conn)

    def transaction(self, *, write: bool = True) -> AbstractContextManager[Connection]:
        """One transaction on the state database, for modules that own extra tables (the job
        queue): writes take the write lock up front; errors become StateStoreError."""
        return self._tx(write=write)

    @contextmanager
    def _tx(self, *, write: bool = True) -> Iterator[Connection]:
        try:
            with self._engine.connect() as conn:
                conn.info["write"] = write
                with conn.begin():
                    yield conn
        except OperationalError as exc:
            raise StateStoreError(
                f"state database {self.where} is unavailable or locked ({exc.orig}); "
                "check the file/server and that no other process keeps it locked"
            ) from None

    # -- couplings ----------------------------------------------------------------------------
    @staticmethod
    def _coupling(row: Any) -> Coupling:
        data = dict(row._mapping)
        data.pop("id", None)
        data["base_values"] = _loads(data.get("base_values"))
        return Coupling(**data)

    def _find(self, conn: Connection, mapping: str, column: str, value: str) -> Coupling | None:
        row = conn.execute(select(couplings).where(
            couplings.c.mapping == mapping, couplings.c[column] == value)).first()
        return None if row is None else self._coupling(row)

    def get_coupling_by_nav(self, mapping: str, nav_id: str) -> Coupling | None:
        with self._tx(write=False) as conn:
            return self._find(conn, _mapping_key(mapping), "nav_id", nav_id)

    def get_coupling_by_crm(self, mapping: str, crm_id: str) -> Coupling | None:
        with self._tx(write=False) as conn:
            return self._find(conn, _mapping_key(mapping), "crm_id", crm_id)

    def couple(self, mapping: str, nav_id: str, crm_id: str, *,
               nav_key: str | None = None, crm_key: str | None = None,
               base_values: Mapping[str, Any] | None = None,
               nav_modified_at: str | None = None,
               crm_modified_at: str | None = None) -> Coupling:
        """Couple two records; refuses ids already coupled to another record (says which)."""
        key = _mapping_key(mapping)
        if not nav_id or not crm_id:
            raise StateStoreError(f"mapping {key}: both a NAV id and a CRM id are required to couple")
        with self._tx() as conn:
            by_nav = self._find(conn, key, "nav_id", nav_id)
            by_crm = self._find(conn, key, "crm_id", crm_id)
            if by_nav is not None and by_nav.crm_id == crm_id:
                return by_nav
            if by_crm is not None:
                raise StateStoreError(
                    f"mapping {key}: CRM record {crm_id} is already coupled to NAV record "
                    f"{by_crm.nav_id}; uncouple that pair first or pick another CRM record"
                )
            if by_nav is not None:
                raise StateStoreError(
                    f"mapping {key}: NAV record {nav_id} is already coupled to CRM record "
                    f"{by_nav.crm_id}; uncouple that pair first or pick another NAV record"
                )
            now = utc_now()
            conn.execute(insert(couplings).values(
                mapping=key, nav_id=nav_id, crm_id=crm_id, nav_key=nav_key, crm_key=crm_key,
                base_values=_dumps(base_values), nav_modified_at=nav_modified_at,
                crm_modified_at=crm_modified_at, created_at=now, updated_at=now))
            found = self._find(conn, key, "nav_id", nav_id)
        assert found is not None
        return found

    def uncouple(self, mapping: str, *, nav_id: str | None = None, crm_id: str | None = None) -> int:
        """Remove the coupling of ``nav_id`` or ``crm_id``; returns how many were removed."""
        key = _mapping_key(mapping)
        if nav_id is None and crm_id is None:
            raise StateStoreError(f"mapping {key}: give nav_id or crm_id of the pair to uncouple")
        conditions = [couplings.c.mapping == key]
        if nav_id is not None:
            conditions.append(couplings.c.nav_id == nav_id)
        if crm_id is not None:
            conditions.append(couplings.c.crm_id == crm_id)
        with self._tx() as conn:
            return conn.execute(delete(couplings).where(*conditions)).rowcount or 0

    def upsert_couplings(self, mapping: str, rows: pl.DataFrame | Iterable[Mapping[str, Any]]) -> int:
        """Insert or update many couplings keyed by (mapping, nav_id) in one transaction.

        Rows need ``nav_id`` and ``crm_id``; optional ``nav_key``, ``crm_key``,
        ``nav_modified_at``, ``crm_modified_at``, ``nav_etag``, ``crm_etag`` and ``base_values`` (dict or JSON text); an
        optional column that is absent or null keeps the stored value. A CRM id coupled to
        another NAV id fails the whole batch with a StateStoreError naming it.
        """
        key = _mapping_key(mapping)
        records = rows.to_dicts() if isinstance(rows, pl.DataFrame) else [dict(r) for r in rows]
        if not records:
            return 0
        now = utc_now()
        values = []
        for record in records:
            if not record.get("nav_id") or not record.get("crm_id"):
                raise StateStoreError(f"mapping {key}: every coupling row needs nav_id and crm_id")
            base = record.get("base_values")
            values.append({
                "mapping": key, "nav_id": str(record["nav_id"]), "crm_id": str(record["crm_id"]),
                "nav_key": record.get("nav_key"), "crm_key": record.get("crm_key"),
                "nav_modified_at": record.get("nav_modified_at"),
                "crm_modified_at": record.get("crm_modified_at"),
                "nav_etag": record.get("nav_etag"), "crm_etag": record.get("crm_etag"),
                "base_values": base if isinstance(base, str) or base is None else _dumps(base),
                "created_at": now, "updated_at": now,
            })
        statement = self._upsert_statement()
        try:
            with self._tx() as conn:
                conn.execute(statement, values)
        except IntegrityError as exc:
            raise StateStoreError(
                f"mapping {key}: a CRM id in the batch is already coupled to another NAV "
                f"record ({exc.orig}); uncouple it first"
            ) from None
        return len(values)

    def _upsert_statement(self) -> Any:
        dialect = self._engine.dialect.name
        if dialect == "sqlite":
            from sqlalchemy.dialects import sqlite

            statement: Any = sqlite.insert(couplings)
        elif dialect == "postgresql":
            from sqlalchemy.dialects import postgresql

            statement = postgresql.insert(couplings)
        else:
            raise StateStoreError(f"bulk upsert supports SQLite and PostgreSQL, not {dialect}")
        kept = ("nav_key", "crm_key", "nav_modified_at", "crm_modified_at", "nav_etag",
                "crm_etag", "base_values")
        return statement.on_conflict_do_update(
            index_elements=["mapping", "nav_id"],
            set_={"crm_id": statement.excluded.crm_id, "updated_at": statement.excluded.updated_at,
                  **{name: func.coalesce(statement.excluded[name], couplings.c[name])
                     for name in kept}},
        )

    def couplings_frame(self, mapping: str, *, columns: Sequence[str] | None = None,
                        nav_ids: Iterable[str] | None = None,
                        crm_ids: Iterable[str] | None = None) -> pl.DataFrame:
        """Couplings of ``mapping`` as a polars frame (``base_values`` as JSON text): every
        column or only ``columns``, every coupling or only those of ``nav_ids`` (or of
        ``crm_ids``)."""
        key = _mapping_key(mapping)
        names = list(columns or _COUPLING_FRAME_SCHEMA)
        unknown = [n for n in names if n not in _COUPLING_FRAME_SCHEMA]
        if unknown:
            raise StateStoreError(f"unknown coupling column(s) {unknown}; valid: "
                                  f"{list(_COUPLING_FRAME_SCHEMA)}")
        schema = {n: _COUPLING_FRAME_SCHEMA[n] for n in names}
        query = select(*(couplings.c[c] for c in names)).where(couplings.c.mapping == key)
        rows: list[Any] = []
        with self._tx(write=False) as conn:
            if nav_ids is None and crm_ids is None:
                rows = list(conn.execute(query.order_by(couplings.c.id)).all())
            else:
                by, ids = ((couplings.c.nav_id, nav_ids) if nav_ids is not None
                           else (couplings.c.crm_id, crm_ids))
                wanted = list(dict.fromkeys(ids or ()))
                for start in range(0, len(wanted), 500):
                    rows += conn.execute(query.where(
                        by.in_(wanted[start:start + 500]))).all()
        return pl.DataFrame([tuple(r) for r in rows], schema=schema, orient="row")

    def count_couplings(self, mapping: str) -> int:
        with self._tx(write=False) as conn:
            return int(conn.execute(select(func.count()).select_from(couplings).where(
                couplings.c.mapping == _mapping_key(mapping))).scalar() or 0)

    def update_synced(self, mapping: str, nav_id: str, *, base_values: Mapping[str, Any],
                      nav_modified_at: str | None = None,
                      crm_modified_at: str | None = None) -> None:
        """Store the values and modified-on stamps as just synced (the next diff's base)."""
        changes: dict[str, Any] = {"base_values": _dumps(base_values), "updated_at": utc_now()}
        if nav_modified_at is not None:
            changes["nav_modified_at"] = nav_modified_at
        if crm_modified_at is not None:
            changes["crm_modified_at"] = crm_modified_at
        self._update_coupling(mapping, nav_id, changes)

    def _update_coupling(self, mapping: str, nav_id: str, changes: Mapping[str, Any]) -> None:
        key = _mapping_key(mapping)
        with self._tx() as conn:
            count = conn.execute(update(couplings).where(
                couplings.c.mapping == key, couplings.c.nav_id == nav_id).values(**changes)).rowcount
        if not count:
            raise StateStoreError(f"mapping {key}: NAV record {nav_id} is not coupled")

    # -- record status (retry pass, skip rule) --------------------------------------------------
    def record_outcomes(self, mapping: str, direction: str, *, succeeded: Iterable[str] = (),
                        failed: Iterable[RecordFailure] = (), run_id: int | None = None,
                        skip_after: int = 2) -> list[RecordStatus]:
        """Apply one run's outcomes in one transaction: successes leave the retry pass,
        failures enter it under the skip rule. Returns the statuses of the failed records."""
        key, direction = _mapping_key(mapping), _direction(direction)
        ok = [str(i) for i in succeeded]
        failures = list(failed)
        now = utc_now()
        c = record_status.c
        result: list[RecordStatus] = []
        with self._tx() as conn:
            for start in range(0, len(ok), 500):
                conn.execute(delete(record_status).where(
                    c.mapping == key, c.direction == direction,
                    c.source_id.in_(ok[start:start + 500])))
            ids = [f.source_id for f in failures]
            current: dict[str, Any] = {}
            for start in range(0, len(ids), 500):
                rows = conn.execute(select(record_status).where(
                    c.mapping == key, c.direction == direction,
                    c.source_id.in_(ids[start:start + 500]))).all()
                current.update({row.source_id: row for row in rows})
            inserts: list[dict[str, Any]] = []
            updates: list[dict[str, Any]] = []
            for failure in failures:
                row = current.get(failure.source_id)
                values = self._failure_values(row, failure, skip_after, now)
                values.update(
                    mapping=key, direction=direction, source_id=failure.source_id,
                    run_id=run_id, updated_at=now,
                    destination_id=failure.destination_id or (
                        row.destination_id if row is not None else None),
                    first_failed_at=row.first_failed_at if row is not None else now)
                (inserts if row is None else updates).append(values)
                result.append(RecordStatus(**values))
            if inserts:
                conn.execute(insert(record_status), inserts)
            if updates:
                names = [n for n in updates[0] if n not in ("mapping", "direction", "source_id")]
                conn.execute(
                    update(record_status).where(
                        c.mapping == bindparam("k_mapping"),
                        c.direction == bindparam("k_direction"),
                        c.source_id == bindparam("k_source_id"))
                    .values({n: bindparam(n) for n in names}),
                    [{**{n: u[n] for n in names}, "k_mapping": u["mapping"],
                      "k_direction": u["direction"], "k_source_id": u["source_id"]}
                     for u in updates])
        return result

    @staticmethod
    def _failure_values(row: Any, failure: RecordFailure, skip_after: int,
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

    def record_success(self, mapping: str, source_id: str, direction: str) -> None:
        """One record synced: it leaves the retry pass and its failure count is reset."""
        self.record_outcomes(mapping, direction, succeeded=[source_id])

    def record_failure(self, mapping: str, source_id: str, direction: str, message: str, *,
                       transient: bool, run_id: int | None = None, skip_after: int = 2,
                       destination_id: str | None = None) -> RecordStatus:
        """One record failed; applies the skip rule (module docstring) and returns its status."""
        return self.record_outcomes(mapping, direction, failed=[RecordFailure(
            source_id, message, transient, destination_id)], run_id=run_id,
            skip_after=skip_after)[0]

    def record_status(self, mapping: str, source_id: str, direction: str) -> RecordStatus | None:
        c = record_status.c
        with self._tx(write=False) as conn:
            row = conn.execute(select(record_status).where(
                c.mapping == _mapping_key(mapping), c.direction == _direction(direction),
                c.source_id == source_id)).first()
        return None if row is None else RecordStatus(**dict(row._mapping))

    def record_status_frame(self, mapping: str | None = None, *,
                            states: Sequence[str] = STATUS_STATES) -> pl.DataFrame:
        """Records in the retry pass or skipped (one row per mapping, direction, source)."""
        bad = sorted(set(states) - set(STATUS_STATES))
        if bad:
            raise StateStoreError(f"record state(s) {bad} unknown; valid: {list(STATUS_STATES)}")
        query = select(record_status).where(record_status.c.state.in_(list(states)))
        if mapping is not None:
            query = query.where(record_status.c.mapping == _mapping_key(mapping))
        with self._tx(write=False) as conn:
            rows = conn.execute(query.order_by(record_status.c.updated_at)).all()
        return _frame(rows, record_status)

    def unskip(self, mapping: str, source_ids: Iterable[str] | None = None, *,
               direction: str | None = None) -> int:
        """Put skipped records back into the retry pass (all of ``mapping`` when no ids)."""
        c = record_status.c
        query = update(record_status).where(c.mapping == _mapping_key(mapping),
                                            c.state == "skipped")
        if direction is not None:
            query = query.where(c.direction == _direction(direction))
        if source_ids is not None:
            query = query.where(c.source_id.in_([str(i) for i in source_ids]))
        with self._tx() as conn:
            return conn.execute(query.values(
                state="failed", skipped_since=None, consecutive_failures=0, fingerprint=None,
                updated_at=utc_now())).rowcount or 0

    # -- runs ---------------------------------------------------------------------------------
    def start_run(self, mapping: str, direction: str, kind: str = "sync", *,
                  job_name: str = "") -> int:
        if kind not in RUN_KINDS:
            raise StateStoreError(f"run kind {kind!r} is not one of {list(RUN_KINDS)}")
        with self._tx() as conn:
            result = conn.execute(insert(runs).values(
                mapping=_mapping_key(mapping), direction=direction, kind=kind, job_name=job_name,
                started_at=utc_now(), status="running", message="",
                **dict.fromkeys(RUN_COUNTS, 0)))
            return _new_id(result)

    def finish_run(self, run_id: int, status: str, counts: Mapping[str, int] | None = None, *,
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

    def set_run_output(self, run_ids: Iterable[int], output_path: str) -> int:
        """Link job-log entries to the output notebook (or report) that recorded them."""
        ids = [int(i) for i in run_ids]
        with self._tx() as conn:
            return conn.execute(update(runs).where(runs.c.id.in_(ids)).values(
                output_path=output_path)).rowcount or 0

    def runs_frame(self, mapping: str | None = None, *, limit: int = 200) -> pl.DataFrame:
        """The job log, newest first."""
        query = select(runs).order_by(runs.c.id.desc()).limit(limit)
        if mapping is not None:
            query = query.where(runs.c.mapping == _mapping_key(mapping))
        with self._tx(write=False) as conn:
            rows = conn.execute(query).all()
        return _frame(rows, runs)

    def purge_runs(self, older_than: str) -> int:
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
            for start in range(0, len(old), 500):
                chunk = old[start:start + 500]
                conn.execute(delete(record_errors).where(record_errors.c.run_id.in_(chunk)))
                conn.execute(delete(runs).where(runs.c.id.in_(chunk)))
        return len(old)

    # -- record errors --------------------------------------------------------------------------
    def add_record_error(self, mapping: str, direction: str, message: str, *,
                         run_id: int | None = None, source_id: str | None = None,
                         destination_id: str | None = None, transient: bool = False,
                         service_code: str | None = None, http_status: int | None = None,
                         payload: Any = None, response: Any = None,
                         source_values: Any = None) -> int:
        with self._tx() as conn:
            result = conn.execute(insert(record_errors).values(
                run_id=run_id, mapping=_mapping_key(mapping), direction=direction,
                source_id=source_id, destination_id=destination_id, transient=transient,
                service_code=service_code, http_status=http_status, message=message,
                normalized_message=normalize_error_message(message), payload=_dumps(payload),
                response=_dumps(response), source_values=_dumps(source_values),
                created_at=utc_now()))
            return _new_id(result)

    def add_record_errors(self, rows: Iterable[Mapping[str, Any]]) -> int:
        """Many record errors in one transaction (keys as :meth:`add_record_error`'s
        arguments plus ``mapping``, ``direction`` and ``message``)."""
        now = utc_now()
        values = [{
            "run_id": row.get("run_id"), "mapping": _mapping_key(str(row["mapping"])),
            "direction": row["direction"], "source_id": row.get("source_id"),
            "destination_id": row.get("destination_id"),
            "transient": bool(row.get("transient", False)),
            "service_code": row.get("service_code"), "http_status": row.get("http_status"),
            "message": row["message"],
            "normalized_message": normalize_error_message(str(row["message"])),
            "payload": _dumps(row.get("payload")), "response": _dumps(row.get("response")),
            "source_values": _dumps(row.get("source_values")), "created_at": now,
        } for row in rows]
        if values:
            with self._tx() as conn:
                conn.execute(insert(record_errors), values)
        return len(values)

    @staticmethod
    def _error_filter(mapping: str | None, run_id: int | None, transient: bool | None,
                      normalized_message: str | None = None,
                      source_id: str | None = None) -> list[Any]:
        conditions: list[Any] = []
        if mapping is not None:
            conditions.append(record_errors.c.mapping == _mapping_key(mapping))
        if run_id is not None:
            conditions.append(record_errors.c.run_id == run_id)
        if transient is not None:
            conditions.append(record_errors.c.transient.is_(transient))
        if normalized_message is not None:
            conditions.append(record_errors.c.normalized_message == normalized_message)
        if source_id is not None:
            conditions.append(record_errors.c.source_id == source_id)
        return conditions

    def record_errors_frame(self, mapping: str | None = None, *, run_id: int | None = None,
                            transient: bool | None = None, normalized_message: str | None = None,
                            source_id: str | None = None, limit: int = 10_000) -> pl.DataFrame:
        """Record errors, newest first (payload/response/source values as JSON text);
        ``normalized_message`` drills into one :meth:`error_groups` group, ``source_id``
        gives one record's history."""
        query = select(record_errors).where(*self._error_filter(
            mapping, run_id, transient, normalized_message, source_id))
        with self._tx(write=False) as conn:
            rows = conn.execute(query.order_by(record_errors.c.id.desc()).limit(limit)).all()
        return _frame(rows, record_errors)

    def error_groups(self, mapping: str | None = None, *, run_id: int | None = None,
                     transient: bool | None = None) -> pl.DataFrame:
        """Errors grouped by normalized message: count, first/last seen, one example."""
        c = record_errors.c
        query = (select(c.mapping, c.normalized_message, func.count().label("count"),
                        func.min(c.created_at).label("first_seen"),
                        func.max(c.created_at).label("last_seen"),
                        func.max(c.message).label("example"))
                 .where(*self._error_filter(mapping, run_id, transient))
                 .group_by(c.mapping, c.normalized_message)
                 .order_by(func.count().desc(), c.mapping))
        with self._tx(write=False) as conn:
            rows = conn.execute(query).all()
        return pl.DataFrame([tuple(r) for r in rows], orient="row", schema={
            "mapping": pl.Utf8(), "normalized_message": pl.Utf8(), "count": pl.Int64(),
            "first_seen": pl.Utf8(), "last_seen": pl.Utf8(), "example": pl.Utf8()})

    # -- watermarks ------------------------------------------------------------------------------
    def get_watermark(self, mapping: str, side: str) -> str | None:
        """The last modified-on seen on ``side`` ('nav' or 'crm') of ``mapping``."""
        with self._tx(write=False) as conn:
            return conn.execute(select(watermarks.c.value).where(
                watermarks.c.mapping == _mapping_key(mapping),
                watermarks.c.side == _side(side))).scalar()

    def set_watermark(self, mapping: str, side: str, value: str) -> None:
        key, side = _mapping_key(mapping), _side(side)
        with self._tx() as conn:
            changed = conn.execute(update(watermarks).where(
                watermarks.c.mapping == key, watermarks.c.side == side).values(
                value=value, updated_at=utc_now())).rowcount
            if not changed:
                conn.execute(insert(watermarks).values(
                    mapping=key, side=side, value=value, updated_at=utc_now()))

    def watermarks(self, mapping: str) -> dict[str, str]:
        with self._tx(write=False) as conn:
            rows = conn.execute(select(watermarks.c.side, watermarks.c.value).where(
                watermarks.c.mapping == _mapping_key(mapping))).all()
        return {side: value for side, value in rows}

    # -- reference cache -------------------------------------------------------------------------
    def cached_map(self, scope: str) -> tuple[dict[str, str | None], float] | None:
        """A cached translation table (e.g. payment terms id -> code) and its age in seconds,
        or None when never cached."""
        with self._tx(write=False) as conn:
            rows = conn.execute(select(reference_cache.c.key, reference_cache.c.value,
                                       reference_cache.c.updated_at)
                                .where(reference_cache.c.scope == scope)).all()
        if not rows:
            return None
        stamp = min(row[2] for row in rows)
        written = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
        return ({row[0]: row[1] for row in rows},
                (datetime.now(UTC) - written).total_seconds())

    def put_cached_map(self, scope: str, table: Mapping[str, str | None]) -> None:
        """Replace the cached table ``scope`` (an empty table is kept as one empty marker)."""
        now = utc_now()
        rows = [{"scope": scope, "key": k, "value": v, "updated_at": now}
                for k, v in table.items()] or [
            {"scope": scope, "key": "", "value": None, "updated_at": now}]
        with self._tx() as conn:
            conn.execute(delete(reference_cache).where(reference_cache.c.scope == scope))
            conn.execute(insert(reference_cache), rows)

    # -- option mappings -------------------------------------------------------------------------
    def set_option_mapping(self, mapping: str, field: str, nav_value: str, crm_value: int,
                           caption: str = "") -> None:
        key = _mapping_key(mapping)
        row = {"crm_value": crm_value, "caption": caption, "updated_at": utc_now()}
        where = and_(option_mappings.c.mapping == key, option_mappings.c.field == field,
                     option_mappings.c.nav_value == nav_value)
        with self._tx() as conn:
            if not conn.execute(update(option_mappings).where(where).values(**row)).rowcount:
                conn.execute(insert(option_mappings).values(
                    mapping=key, field=field, nav_value=nav_value, **row))

    def option_mappings(self, mapping: str, field: str | None = None) -> pl.DataFrame:
        query = select(option_mappings).where(option_mappings.c.mapping == _mapping_key(mapping))
        if field is not None:
            query = query.where(option_mappings.c.field == field)
        with self._tx(write=False) as conn:
            rows = conn.execute(query.order_by(option_mappings.c.field,
                                               option_mappings.c.crm_value)).all()
        return _frame(rows, option_mappings)

    # -- pending operations journal -----------------------------------------------------------------
    def journal_ops(self, run_id: int | None, mapping: str,
                    ops: Iterable[Mapping[str, Any]]) -> int:
        """Write ops (``op_id``, ``kind``, ``target``, ``record_key``, ``payload``) as pending.

        ``op_id`` is deterministic (same plan → same id): an op already journaled is kept as it
        is, so re-journaling after a crash never duplicates work.
        """
        key, now = _mapping_key(mapping), utc_now()
        rows = [dict(op) for op in ops]
        for row in rows:
            _side(str(row.get("target", "")))
        with self._tx() as conn:
            ids = [str(r["op_id"]) for r in rows]
            known: set[str] = set()
            for start in range(0, len(ids), 500):
                known.update(conn.execute(select(pending_ops.c.op_id).where(
                    pending_ops.c.op_id.in_(ids[start:start + 500]))).scalars())
            fresh = [{
                "run_id": run_id, "mapping": key, "op_id": str(r["op_id"]), "kind": str(r["kind"]),
                "target": str(r["target"]), "record_key": str(r.get("record_key", "")),
                "payload": _dumps(r.get("payload")), "state": "pending", "created_at": now,
                "updated_at": now,
            } for r in rows if str(r["op_id"]) not in known]
            if fresh:
                conn.execute(insert(pending_ops), fresh)
        return len(fresh)

    def mark_ops(self, op_ids: Iterable[str], state: str, result: Any = None) -> int:
        if state not in OP_STATES:
            raise StateStoreError(f"op state {state!r} is not one of {list(OP_STATES)}")
        ids = list(op_ids)
        with self._tx() as conn:
            return conn.execute(update(pending_ops).where(pending_ops.c.op_id.in_(ids)).values(
                state=state, result=_dumps(result), updated_at=utc_now())).rowcount or 0

    def pending_ops_frame(self, mapping: str | None = None, *,
                          states: Sequence[str] = ("pending", "sent")) -> pl.DataFrame:
        """Journaled ops in ``states`` (default: those a crash may have left unfinished)."""
        query = select(pending_ops).where(pending_ops.c.state.in_(list(states)))
        if mapping is not None:
            query = query.where(pending_ops.c.mapping == _mapping_key(mapping))
        with self._tx(write=False) as conn:
            rows = conn.execute(query.order_by(pending_ops.c.id)).all()
        return _frame(rows, pending_ops)

    def purge_ops(self, *, states: Sequence[str] = ("done",)) -> int:
        with self._tx() as conn:
            return conn.execute(delete(pending_ops).where(
                pending_ops.c.state.in_(list(states)))).rowcount or 0

    # -- leases ----------------------------------------------------------------------------------
    def acquire_lease(self, name: str, holder: str, ttl_s: float) -> Lease:
        """Take ``name`` for ``holder`` for ``ttl_s`` seconds, or raise LeaseHeldError.

        Atomic in SQL: an expired lease (or one ``holder`` already holds) is taken with one
        conditional UPDATE; a missing one with an INSERT that a concurrent INSERT makes fail.
        A lease of a process of this host that no longer runs (:func:`holder_is_dead`) is
        taken over at once instead of waiting for it to expire.
        """
        if ttl_s <= 0:
            raise StateStoreError(f"lease {name!r}: ttl_s must be positive, got {ttl_s}")
        now, expires = utc_now(), utc_now(ttl_s)
        try:
            with self._tx() as conn:
                taken = conn.execute(update(leases).where(
                    leases.c.name == name,
                    or_(leases.c.expires_at <= now, leases.c.holder == holder),
                ).values(holder=holder, acquired_at=now, expires_at=expires)).rowcount
                if not taken:
                    conn.execute(insert(leases).values(
                        name=name, holder=holder, acquired_at=now, expires_at=expires))
        except IntegrityError:
            current = self.lease(name)
            if current is not None and holder_is_dead(current.holder):
                return self.take_over_lease(name, current.holder, holder, ttl_s)
            raise LeaseHeldError(
                f"lease {name!r} is held by {current.holder if current else 'another process'} "
                f"until {current.expires_at if current else 'unknown'}; wait for it to finish "
                "or, if that process is gone, wait until the lease expires",
                holder=current.holder if current else "",
                expires_at=current.expires_at if current else "",
            ) from None
        return Lease(name, holder, now, expires)

    def renew_lease(self, name: str, holder: str, ttl_s: float) -> Lease:
        """Extend a lease ``holder`` still holds (LeaseHeldError if it was lost)."""
        now, expires = utc_now(), utc_now(ttl_s)
        with self._tx() as conn:
            renewed = conn.execute(update(leases).where(
                leases.c.name == name, leases.c.holder == holder, leases.c.expires_at > now,
            ).values(expires_at=expires)).rowcount
        if not renewed:
            current = self.lease(name)
            raise LeaseHeldError(
                f"lease {name!r} is no longer held by {holder!r}"
                + (f"; {current.holder} holds it until {current.expires_at}" if current else
                   " (it expired)") + "; stop the work it protected and acquire it again",
                holder=current.holder if current else "",
                expires_at=current.expires_at if current else "",
            )
        current = self.lease(name)
        assert current is not None
        return current

    def take_over_lease(self, name: str, dead_holder: str, holder: str, ttl_s: float) -> Lease:
        """Take a lease from a holder known to be dead (e.g. a killed process on this host)
        without waiting for it to expire; LeaseHeldError if someone else took it meanwhile."""
        now, expires = utc_now(), utc_now(ttl_s)
        with self._tx() as conn:
            taken = conn.execute(update(leases).where(
                leases.c.name == name, leases.c.holder == dead_holder,
            ).values(holder=holder, acquired_at=now, expires_at=expires)).rowcount
        if not taken:
            return self.acquire_lease(name, holder, ttl_s)
        return Lease(name, holder, now, expires)

    def release_lease(self, name: str, holder: str) -> bool:
        """Give the lease back; False when ``holder`` did not hold it."""
        with self._tx() as conn:
            return bool(conn.execute(delete(leases).where(
                leases.c.name == name, leases.c.holder == holder)).rowcount)

    def lease(self, name: str) -> Lease | None:
        """The current lease row of ``name`` (may be expired), or None."""
        with self._tx(write=False) as conn:
            row = conn.execute(select(leases).where(leases.c.name == name)).first()
        return None if row is None else Lease(**dict(row._mapping))
