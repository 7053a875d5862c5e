"""The state database: opening and migrating it, its transactions, and one repository per table
family.

Why one small explicit API: the engine, the job runner and the notebooks all read and change
the same state; every change goes through a repository method and runs in its own transaction,
so a crash never leaves half a change behind. :class:`StateStore` owns the engine and the
transactions and exposes the repositories (``store.couplings``, ``store.outcomes``,
``store.runs``, ``store.journal``, ``store.leases``, ``store.caches``,
``store.sync_watermarks``, ``store.jobs``, ``store.alerts``); its older flat methods (``couple``,
``record_outcomes``, ``acquire_lease``...) delegate to them and keep working.

A SQLite file in the workspace by default (WAL mode, busy timeout, writes take the write lock
up front with ``BEGIN IMMEDIATE`` so two processes never deadlock on a lock upgrade); any
SQLAlchemy URL works (PostgreSQL for shared installations).

Record status and the skip rule: see :mod:`nav_crm_ops.store.outcomes`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import polars as pl
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError

from ..exceptions import StateStoreError
from . import schema
from .alerts import AlertRepository
from .approvals import ApprovalRepository
from .base import conflict_error
from .caches import CacheRepository
from .couplings import Coupling, CouplingRepository
from .identity import WorkspaceIdentity, read_identity
from .jobs import JobRepository
from .journal import OP_STATES, JournalRepository
from .leases import Lease, LeaseRepository, default_holder, holder_is_dead
from .outcomes import STATUS_STATES, RecordFailure, RecordOutcomeRepository, RecordStatus
from .reconcile import ReconcileRepository
from .runs import RUN_COUNTS, RUN_KINDS, RunRepository
from .watermarks import WatermarkRepository

__all__ = ["BUSY_TIMEOUT_MS", "DEFAULT_STATE_FILE", "OP_STATES", "RUN_COUNTS", "RUN_KINDS",
           "STATUS_STATES", "Coupling", "Lease", "RecordFailure", "RecordStatus", "StateStore",
           "default_holder", "holder_is_dead"]

DEFAULT_STATE_FILE = "state.db"
BUSY_TIMEOUT_MS = 30_000
SQLITE_CACHE_KIB = 65_536
"""SQLite's page cache per connection (its default is 2 MB): a sync inserts couplings at
random places of two unique indexes on GUIDs, and with the default most of those index pages
were read again for each chunk (100,000-customer first sync: 25 -> 19 us of CPU per
coupling). Pages are taken only as they are read, so a small database uses little of it."""


def _to_url(url_or_path: str | Path) -> str:
    text = str(url_or_path)
    if "://" in text:
        return text
    path = Path(text)
    if path.is_dir():
        path = path / DEFAULT_STATE_FILE
    return f"sqlite:///{path.resolve()}"


class StateStore:
    """Open with :meth:`open`; close with :meth:`close` (or use as a context manager)."""

    def __init__(self, engine: Engine, where: str, company: str = "") -> None:
        self._engine = engine
        self.where = where
        self.company = company
        """The ERP company this store is opened for: every repository reads and writes only
        its rows (``''``: opened without one, e.g. by a script)."""
        tx = self.transaction
        self.couplings = CouplingRepository(tx, engine.dialect.name, company)
        self.outcomes = RecordOutcomeRepository(tx, company)
        self.runs = RunRepository(tx, company)
        self.journal = JournalRepository(tx, company)
        self.leases = LeaseRepository(tx, company)
        self.caches = CacheRepository(tx, company)
        self.sync_watermarks = WatermarkRepository(tx, company)
        self.jobs = JobRepository(tx, company)
        self.alerts = AlertRepository(tx, company)
        self.reconcile_runs = ReconcileRepository(tx, company)
        self.approvals = ApprovalRepository(tx, company)

    # -- opening ------------------------------------------------------------------------------
    @classmethod
    def open(cls, url_or_path: str | Path, *, company: str | None = None,
             adopt_rows: bool = True) -> StateStore:
        """Open (creating and migrating as needed) a SQLAlchemy URL, SQLite file or folder
        for one ERP ``company`` (see :mod:`nav_crm_ops.store.base`, ``Repository``).

        Without ``company``, a URL that names its own (the workspace config's
        :attr:`~nav_crm_ops.config.WorkspaceConfig.state_url` carries the workspace's ERP
        company as ``.company``) opens for that company, anything else for ``''``.

        A database written before companies existed gives its rows to the company that
        upgrades it (:func:`schema._companies`); ``adopt_rows=False`` (``init`` of a new
        workspace) refuses to upgrade one that holds rows instead, since they belong to the
        workspace that wrote them."""
        if company is None:
            company = str(getattr(url_or_path, "company", "") or "")
        url = _to_url(url_or_path)
        try:
            parsed = make_url(url)
        except (SQLAlchemyError, ValueError):
            # Neither the URL nor the parser's message (which quotes it) is shown: an
            # unparseable URL may still hold a password.
            raise StateStoreError("the state URL is not a valid SQLAlchemy URL; use e.g. "
                                  "sqlite:///state.db or postgresql+psycopg://user@host/db") from None
        if parsed.drivername == "postgresql":  # psycopg 3, not SQLAlchemy's default psycopg2
            parsed = parsed.set(drivername="postgresql+psycopg")
            url = parsed.render_as_string(hide_password=False)
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
        store = cls(engine, where, company)
        try:
            with store._tx() as conn:
                conn.info["adopt_rows"] = adopt_rows
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
            cursor.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
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
        return f"StateStore({self.where!r}, company={self.company!r})"

    def identity(self) -> WorkspaceIdentity:
        """This database's id and plan signing key (see :mod:`nav_crm_ops.store.identity`)."""
        with self._tx(write=False) as conn:
            return read_identity(conn, self.where)

    @property
    def schema_version(self) -> int:
        with self._tx(write=False) as conn:
            return schema.current_version(conn)

    def transaction(self, *, write: bool = True) -> AbstractContextManager[Connection]:
        """One transaction on the state database (every repository opens its own through
        this): writes take the write lock up front; errors become StateStoreError."""
        return self._tx(write=write)

    @contextmanager
    def _tx(self, *, write: bool = True) -> Iterator[Connection]:
        try:
            with self._engine.connect() as conn:
                conn.info["write"] = write
                conn.info["company"] = self.company
                with conn.begin():
                    yield conn
        except OperationalError as exc:
            raise StateStoreError(
                f"state database {self.where} is unavailable or locked ({exc.orig}); "
                "check the file/server and that no other process keeps it locked"
            ) from None
        except IntegrityError as exc:
            raise conflict_error(self.where, exc) from None

    # -- couplings (CouplingRepository) ----------------------------------------------------------
    def get_coupling_by_nav(self, mapping: str, nav_id: str) -> Coupling | None:
        return self.couplings.by_nav(mapping, nav_id)

    def get_coupling_by_crm(self, mapping: str, crm_id: str) -> Coupling | None:
        return self.couplings.by_crm(mapping, crm_id)

    def couple(self, mapping: str, nav_id: str, crm_id: str, *,
               nav_key: str | None = None, crm_key: str | None = None,
               nav_name: str | None = None, crm_name: str | None = None,
               base_values: Mapping[str, Any] | None = None,
               nav_modified_at: str | None = None,
               crm_modified_at: str | None = None) -> Coupling:
        """Couple two records (:meth:`CouplingRepository.couple`)."""
        return self.couplings.couple(
            mapping, nav_id, crm_id, nav_key=nav_key, crm_key=crm_key, nav_name=nav_name,
            crm_name=crm_name, base_values=base_values, nav_modified_at=nav_modified_at,
            crm_modified_at=crm_modified_at)

    def uncouple(self, mapping: str, *, nav_id: str | None = None, crm_id: str | None = None) -> int:
        """Remove the coupling of ``nav_id`` or ``crm_id``; returns how many were removed."""
        return self.couplings.uncouple(mapping, nav_id=nav_id, crm_id=crm_id)

    def upsert_couplings(self, mapping: str, rows: pl.DataFrame | Iterable[Mapping[str, Any]]) -> int:
        """Insert or update many couplings (:meth:`CouplingRepository.upsert`)."""
        return self.couplings.upsert(mapping, rows)

    def couplings_frame(self, mapping: str, *, columns: Sequence[str] | None = None,
                        nav_ids: Iterable[str] | None = None,
                        crm_ids: Iterable[str] | None = None,
                        nav_keys: Iterable[str] | None = None) -> pl.DataFrame:
        """Couplings as a polars frame, all or those of some ids or keys
        (:meth:`CouplingRepository.frame`)."""
        return self.couplings.frame(mapping, columns=columns, nav_ids=nav_ids, crm_ids=crm_ids,
                                    nav_keys=nav_keys)

    def count_couplings(self, mapping: str) -> int:
        return self.couplings.count(mapping)

    def has_couplings(self, mapping: str) -> bool:
        """Whether ``mapping`` has any coupling (cheaper than :meth:`count_couplings`)."""
        return self.couplings.any(mapping)

    def update_synced(self, mapping: str, nav_id: str, *, base_values: Mapping[str, Any],
                      nav_modified_at: str | None = None,
                      crm_modified_at: str | None = None) -> None:
        """Store the values and modified-on stamps as just synced (the next diff's base)."""
        self.couplings.update_synced(mapping, nav_id, base_values=base_values,
                                     nav_modified_at=nav_modified_at,
                                     crm_modified_at=crm_modified_at)

    # -- record status and errors (RecordOutcomeRepository) -------------------------------------
    def record_outcomes(self, mapping: str, direction: str, *, succeeded: Iterable[str] = (),
                        failed: Iterable[RecordFailure] = (), run_id: int | None = None,
                        skip_after: int = 2) -> list[RecordStatus]:
        """Apply one run's outcomes in one transaction (:meth:`RecordOutcomeRepository.apply`)."""
        return self.outcomes.apply(mapping, direction, succeeded=succeeded, failed=failed,
                                   run_id=run_id, skip_after=skip_after)

    def record_success(self, mapping: str, source_id: str, direction: str) -> None:
        """One record synced: it leaves the retry pass and its failure count is reset."""
        self.outcomes.apply(mapping, direction, succeeded=[source_id])

    def record_failure(self, mapping: str, source_id: str, direction: str, message: str, *,
                       transient: bool, run_id: int | None = None, skip_after: int = 2,
                       destination_id: str | None = None) -> RecordStatus:
        """One record failed; applies the skip rule and returns its status."""
        return self.outcomes.apply(mapping, direction, failed=[RecordFailure(
            source_id, message, transient, destination_id)], run_id=run_id,
            skip_after=skip_after)[0]

    def record_status(self, mapping: str, source_id: str, direction: str) -> RecordStatus | None:
        return self.outcomes.status(mapping, source_id, direction)

    def record_status_frame(self, mapping: str | None = None, *,
                            states: Sequence[str] = STATUS_STATES) -> pl.DataFrame:
        """Records in the retry pass or skipped (one row per mapping, direction, source)."""
        return self.outcomes.status_frame(mapping, states=states)

    def unskip(self, mapping: str, source_ids: Iterable[str] | None = None, *,
               direction: str | None = None) -> int:
        """Put skipped records back into the retry pass (all of ``mapping`` when no ids)."""
        return self.outcomes.unskip(mapping, source_ids, direction=direction)

    def add_record_error(self, mapping: str, direction: str, message: str, *,
                         run_id: int | None = None, source_id: str | None = None,
                         destination_id: str | None = None, transient: bool = False,
                         service_code: str | None = None, http_status: int | None = None,
                         payload: Any = None, response: Any = None,
                         source_values: Any = None, source_label: str | None = None) -> int:
        return self.outcomes.add_error(
            mapping, direction, message, run_id=run_id, source_id=source_id,
            destination_id=destination_id, transient=transient, service_code=service_code,
            http_status=http_status, payload=payload, response=response,
            source_values=source_values, source_label=source_label)

    def add_record_errors(self, rows: Iterable[Mapping[str, Any]]) -> int:
        """Many record errors in one transaction (keys as :meth:`add_record_error`'s
        arguments plus ``mapping``, ``direction`` and ``message``)."""
        return self.outcomes.add_errors(rows)

    def record_errors_frame(self, mapping: str | None = None, *, run_id: int | None = None,
                            transient: bool | None = None, normalized_message: str | None = None,
                            source_id: str | None = None, limit: int = 10_000) -> pl.DataFrame:
        """Record errors, newest first (:meth:`RecordOutcomeRepository.errors_frame`)."""
        return self.outcomes.errors_frame(mapping, run_id=run_id, transient=transient,
                                          normalized_message=normalized_message,
                                          source_id=source_id, limit=limit)

    def error_groups(self, mapping: str | None = None, *, run_id: int | None = None,
                     transient: bool | None = None) -> pl.DataFrame:
        """Errors grouped by normalized message: occurrences (``count``), distinct records
        (``records``), first/last seen, one example."""
        return self.outcomes.error_groups(mapping, run_id=run_id, transient=transient)

    # -- runs (RunRepository) ---------------------------------------------------------------------
    def start_run(self, mapping: str, direction: str, kind: str = "sync", *,
                  job_name: str = "") -> int:
        return self.runs.start(mapping, direction, kind, job_name=job_name)

    def finish_run(self, run_id: int, status: str, counts: Mapping[str, int] | None = None, *,
                   message: str = "", output_path: str | None = None) -> None:
        """Close a run; ``counts`` keys are :data:`RUN_COUNTS` (unknown keys are refused)."""
        self.runs.finish(run_id, status, counts, message=message, output_path=output_path)

    def set_run_output(self, run_ids: Iterable[int], output_path: str) -> int:
        """Link job-log entries to the output notebook (or report) that recorded them."""
        return self.runs.set_output(run_ids, output_path)

    def runs_frame(self, mapping: str | None = None, *, limit: int = 200) -> pl.DataFrame:
        """The job log, newest first."""
        return self.runs.frame(mapping, limit=limit)

    def purge_runs(self, older_than: str) -> int:
        """Delete runs finished before ``older_than`` (:meth:`RunRepository.purge`)."""
        return self.runs.purge(older_than)

    # -- watermarks (WatermarkRepository) ---------------------------------------------------------
    def get_watermark(self, mapping: str, side: str) -> str | None:
        """The last modified-on seen on ``side`` ('nav' or 'crm') of ``mapping``."""
        return self.sync_watermarks.get(mapping, side)

    def set_watermark(self, mapping: str, side: str, value: str) -> None:
        self.sync_watermarks.set(mapping, side, value)

    def watermarks(self, mapping: str) -> dict[str, str]:
        return self.sync_watermarks.all(mapping)

    # -- reference cache and option mappings (CacheRepository) -----------------------------------
    def cached_map(self, scope: str) -> tuple[dict[str, str | None], float] | None:
        """A cached translation table and its age in seconds, or None when never cached."""
        return self.caches.cached_map(scope)

    def put_cached_map(self, scope: str, table: Mapping[str, str | None]) -> None:
        """Replace the cached table ``scope`` (an empty table is kept as one empty marker)."""
        self.caches.put_cached_map(scope, table)

    def set_option_mapping(self, mapping: str, field: str, nav_value: str, crm_value: int,
                           caption: str = "") -> None:
        self.caches.set_option_mapping(mapping, field, nav_value, crm_value, caption)

    def option_mappings(self, mapping: str, field: str | None = None) -> pl.DataFrame:
        return self.caches.option_mappings(mapping, field)

    # -- pending operations journal (JournalRepository) ------------------------------------------
    def journal_ops(self, run_id: int | None, mapping: str,
                    ops: Iterable[Mapping[str, Any]]) -> int:
        """Write ops as pending (:meth:`JournalRepository.journal`)."""
        return self.journal.journal(run_id, mapping, ops)

    def mark_ops(self, op_ids: Iterable[str], state: str, result: Any = None) -> int:
        return self.journal.mark(op_ids, state, result)

    def pending_ops_frame(self, mapping: str | None = None, *,
                          states: Sequence[str] = ("pending", "sent")) -> pl.DataFrame:
        """Journaled ops in ``states`` (default: those a crash may have left unfinished)."""
        return self.journal.frame(mapping, states=states)

    def purge_ops(self, *, states: Sequence[str] = ("done",)) -> int:
        return self.journal.purge(states=states)

    # -- leases (LeaseRepository) -----------------------------------------------------------------
    def acquire_lease(self, name: str, holder: str, ttl_s: float) -> Lease:
        """Take ``name`` for ``holder`` for ``ttl_s`` seconds, or raise LeaseHeldError
        (:meth:`LeaseRepository.acquire`)."""
        return self.leases.acquire(name, holder, ttl_s)

    def renew_lease(self, name: str, holder: str, ttl_s: float) -> Lease:
        """Extend a lease ``holder`` still holds (LeaseHeldError if it was lost)."""
        return self.leases.renew(name, holder, ttl_s)

    def take_over_lease(self, name: str, dead_holder: str, holder: str, ttl_s: float) -> Lease:
        """Take a lease from a holder known to be dead (:meth:`LeaseRepository.take_over`)."""
        return self.leases.take_over(name, dead_holder, holder, ttl_s)

    def release_lease(self, name: str, holder: str) -> bool:
        """Give the lease back; False when ``holder`` did not hold it."""
        return self.leases.release(name, holder)

    def lease(self, name: str) -> Lease | None:
        """The current lease row of ``name`` (may be expired), or None."""
        return self.leases.get(name)
