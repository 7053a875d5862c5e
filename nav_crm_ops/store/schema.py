"""Tables of the state database and the ordered migrations that create and evolve them.

Why migrations from day one: workspaces outlive versions of this package. Every schema change
is one more function in :data:`MIGRATIONS`; :func:`migrate` applies the missing ones in order
inside one transaction each, and refuses a database written by a newer version.

Times are stored as fixed-width UTC ISO 8601 text (``2026-01-31T12:00:00.000000Z``) so they
sort and compare correctly as text in every database (leases rely on that).
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    insert,
    inspect,
    select,
    text,
)

from ..exceptions import StateStoreError

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "metadata", "migrate", "utc_now"]

metadata = MetaData()


def utc_now(offset_s: float = 0.0) -> str:
    """Now (plus ``offset_s`` seconds) as the fixed-width UTC text the store keeps."""
    stamp = datetime.now(UTC).timestamp() + offset_s
    return datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _company_default(context: Any) -> str:
    """The company of the store whose transaction inserts the row (``conn.info["company"]``,
    set by :meth:`StateStore._tx`): a repository that forgets to name the company still
    writes its own company's rows, never another's."""
    return str(context.root_connection.info.get("company", ""))


def company_column() -> Column[str]:
    """The ``company`` column every company-scoped table carries (see
    :mod:`nav_crm_ops.store.base`, ``Repository.scoped``): the ERP company the row belongs
    to, ``''`` for a store opened without one."""
    return Column("company", String(250), nullable=False, default=_company_default,
                  server_default="")


schema_version = Table(
    "schema_version", metadata,
    Column("version", Integer, primary_key=True),
    Column("description", String(200), nullable=False),
    Column("applied_at", String(32), nullable=False),
)

couplings = Table(
    "couplings", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    company_column(),
    Column("mapping", String(100), nullable=False),
    Column("nav_id", String(100), nullable=False),
    Column("crm_id", String(100), nullable=False),
    Column("nav_key", String(250)),
    Column("crm_key", String(250)),
    Column("nav_name", String(250)),
    Column("crm_name", String(250)),
    Column("nav_modified_at", String(40)),
    Column("crm_modified_at", String(40)),
    Column("nav_etag", String(200)),
    Column("crm_etag", String(200)),
    Column("base_values", Text),
    Column("created_at", String(32), nullable=False),
    Column("updated_at", String(32), nullable=False),
    UniqueConstraint("company", "mapping", "nav_id", name="uq_couplings_nav"),
    UniqueConstraint("company", "mapping", "crm_id", name="uq_couplings_crm"),
)

record_status = Table(
    "record_status", metadata,
    Column("company", String(250), primary_key=True, default=_company_default,
           server_default=""),
    Column("mapping", String(100), primary_key=True),
    Column("direction", String(10), primary_key=True),
    Column("source_id", String(100), primary_key=True),
    Column("destination_id", String(100)),
    Column("state", String(10), nullable=False),
    Column("transient", Boolean, nullable=False, default=False),
    Column("consecutive_failures", Integer, nullable=False, default=0),
    Column("fingerprint", Text),
    Column("message", Text, nullable=False, default=""),
    Column("run_id", Integer),
    Column("first_failed_at", String(32), nullable=False),
    Column("skipped_since", String(32)),
    Column("updated_at", String(32), nullable=False),
    Index("ix_record_status_state", "company", "mapping", "state"),
)

runs = Table(
    "runs", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    company_column(),
    Column("mapping", String(100), nullable=False),
    Column("direction", String(20), nullable=False),
    Column("kind", String(20), nullable=False),
    Column("job_name", String(200), nullable=False, default=""),
    Column("sync_id", Integer),
    Column("started_at", String(32), nullable=False),
    Column("finished_at", String(32)),
    Column("status", String(40), nullable=False),
    *(Column(name, Integer, nullable=False, default=0) for name in (
        "inserted", "modified", "deleted", "unchanged", "skipped", "failed", "coupled",
        "uncoupled", "conflicts", "requests", "retries", "bytes")),
    Column("message", Text, nullable=False, default=""),
    Column("output_path", Text),
    Index("ix_runs_mapping_started", "mapping", "started_at"),
    Index("ix_runs_company", "company", "id"),
)

record_errors = Table(
    "record_errors", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", Integer),
    company_column(),
    Column("mapping", String(100), nullable=False),
    Column("direction", String(20), nullable=False),
    Column("source_id", String(100)),
    Column("destination_id", String(100)),
    Column("source_label", String(500)),
    Column("transient", Boolean, nullable=False, default=False),
    Column("service_code", String(100)),
    Column("http_status", Integer),
    Column("message", Text, nullable=False),
    Column("normalized_message", Text, nullable=False),
    Column("payload", Text),
    Column("response", Text),
    Column("source_values", Text),
    Column("created_at", String(32), nullable=False),
    Index("ix_record_errors_run", "run_id"),
    Index("ix_record_errors_mapping", "mapping", "created_at"),
    Index("ix_record_errors_company", "company", "mapping", "created_at"),
)

watermarks = Table(
    "watermarks", metadata,
    Column("company", String(250), primary_key=True, default=_company_default,
           server_default=""),
    Column("mapping", String(100), primary_key=True),
    Column("side", String(3), primary_key=True),
    Column("value", String(40), nullable=False),
    Column("updated_at", String(32), nullable=False),
)

reference_cache = Table(
    "reference_cache", metadata,
    Column("company", String(250), primary_key=True, default=_company_default,
           server_default=""),
    Column("scope", String(200), primary_key=True),
    Column("key", String(250), primary_key=True),
    Column("value", Text),
    Column("updated_at", String(32), nullable=False),
)

option_mappings = Table(
    "option_mappings", metadata,
    Column("company", String(250), primary_key=True, default=_company_default,
           server_default=""),
    Column("mapping", String(100), primary_key=True),
    Column("field", String(100), primary_key=True),
    Column("nav_value", String(100), primary_key=True),
    Column("crm_value", Integer, nullable=False),
    Column("caption", String(250), nullable=False, default=""),
    Column("updated_at", String(32), nullable=False),
)

pending_ops = Table(
    "pending_ops", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", Integer),
    company_column(),
    Column("mapping", String(100), nullable=False),
    Column("op_id", String(200), nullable=False),
    Column("kind", String(20), nullable=False),
    Column("target", String(3), nullable=False),
    Column("record_key", String(200), nullable=False),
    Column("payload", Text),
    Column("state", String(10), nullable=False),
    Column("result", Text),
    Column("created_at", String(32), nullable=False),
    Column("updated_at", String(32), nullable=False),
    Index("ix_pending_ops_state", "state", "mapping"),
    UniqueConstraint("company", "op_id", name="uq_pending_ops_op"),
)

leases = Table(
    "leases", metadata,
    Column("company", String(250), primary_key=True, default=_company_default,
           server_default=""),
    Column("name", String(200), primary_key=True),
    Column("holder", String(300), nullable=False),
    Column("acquired_at", String(32), nullable=False),
    Column("expires_at", String(32), nullable=False),
)


def _initial(conn: Connection) -> None:
    metadata.create_all(conn, tables=[couplings, runs, record_errors, watermarks,
                                      option_mappings, pending_ops, leases])


_V1_COUPLING_STATUS_COLUMNS = (
    "last_result_to_crm", "last_result_from_crm", "last_run_to_crm", "last_run_from_crm",
    "consecutive_failures", "last_error_fingerprint", "last_error_message", "skipped",
    "skip_reason", "skipped_since",
)


def _record_status(conn: Connection) -> None:
    """Failure and skip state per source record (coupled or not) moves out of couplings;
    couplings gain the natural keys that lookups resolve through and each side's etag as
    last synced (the If-Match of a side the next run does not read).

    Idempotent on both shapes: databases created by version 1 have the old columns, new ones
    get the current ``couplings`` definition from :func:`_initial`.
    """
    present = {c["name"] for c in inspect(conn).get_columns("couplings")}
    for name, size in (("nav_key", 250), ("crm_key", 250), ("nav_etag", 200), ("crm_etag", 200)):
        if name not in present:
            conn.exec_driver_sql(f"ALTER TABLE couplings ADD COLUMN {name} VARCHAR({size})")
    for name in _V1_COUPLING_STATUS_COLUMNS:
        if name in present:
            conn.exec_driver_sql(f"ALTER TABLE couplings DROP COLUMN {name}")
    record_status.create(conn, checkfirst=True)
    reference_cache.create(conn, checkfirst=True)


jobs = Table(
    "jobs", metadata,
    Column("company", String(250), primary_key=True, default=_company_default,
           server_default=""),
    Column("name", String(200), primary_key=True),
    Column("position", Integer, nullable=False, default=0),
    Column("kind", String(20), nullable=False),
    Column("mapping", String(100), nullable=False, default=""),
    Column("notebook", Text, nullable=False),
    Column("parameters", Text, nullable=False, default="{}"),
    Column("status", String(40), nullable=False),
    Column("every_minutes", Integer),
    Column("weekdays", String(40), nullable=False, default=""),
    Column("starting_time", String(8)),
    Column("ending_time", String(8)),
    Column("timezone", String(60), nullable=False, default="UTC"),
    Column("earliest_start", String(32)),
    Column("expiration", String(32)),
    Column("max_attempts", Integer, nullable=False, default=3),
    Column("rerun_delay_s", Integer, nullable=False, default=60),
    Column("inactivity_timeout_min", Integer, nullable=False, default=0),
    Column("execution_timeout_s", Integer, nullable=False, default=1800),
    Column("attempts", Integer, nullable=False, default=0),
    Column("run_count", Integer, nullable=False, default=0),
    Column("last_run_at", String(32)),
    Column("last_finished_at", String(32)),
    Column("last_outcome", String(40), nullable=False, default=""),
    Column("last_duration_ms", Integer),
    Column("last_counts", Text),
    Column("last_run_ids", Text),
    Column("last_error", Text, nullable=False, default=""),
    Column("last_output", Text),
    Column("next_run_at", String(32)),
    Column("on_hold_since", String(32)),
    Column("created_at", String(32), nullable=False),
    Column("updated_at", String(32), nullable=False),
    Index("ix_jobs_position", "company", "position"),
)
"""The job queue (``nav_crm_ops.jobs``): one row per recurring job, its schedule and last run."""


def _job_queue(conn: Connection) -> None:
    jobs.create(conn, checkfirst=True)


def _error_group_index(conn: Connection) -> None:
    """Drilling into an error group of a million-row log went from a scan to a lookup."""
    if inspect(conn).has_table("record_errors"):
        conn.exec_driver_sql("CREATE INDEX IF NOT EXISTS ix_record_errors_group "
                             "ON record_errors (mapping, normalized_message)")


workspace_identity = Table(
    "workspace_identity", metadata,
    Column("id", Integer, primary_key=True),
    Column("state_id", String(36), nullable=False),
    Column("plan_key", String(64), nullable=False),
    Column("created_at", String(32), nullable=False),
)
"""One row (id 1) made with the database: the id plans name as the workspace they were made
for, and the key that signs them (HMAC-SHA256). Neither is ever written anywhere else."""


def _workspace_identity(conn: Connection) -> None:
    """Plans must identify the state database they were made with and be signed with a key
    only it holds: a plan from another workspace, or an edited one, is refused."""
    workspace_identity.create(conn, checkfirst=True)
    if conn.execute(select(workspace_identity.c.id)).first() is None:
        conn.execute(insert(workspace_identity).values(
            id=1, state_id=str(uuid.uuid4()), plan_key=secrets.token_hex(32),
            created_at=utc_now()))


def _record_names(conn: Connection) -> None:
    """People know records by number and name (``10000 The Cannon Group PLC``): couplings
    keep each side's name beside its natural key, a record error the label of its source
    record. Idempotent: new databases get the columns from the current definitions."""
    present = {c["name"] for c in inspect(conn).get_columns("couplings")}
    for name in ("nav_name", "crm_name"):
        if name not in present:
            conn.exec_driver_sql(f"ALTER TABLE couplings ADD COLUMN {name} VARCHAR(250)")
    if not inspect(conn).has_table("record_errors"):
        record_errors.create(conn)
    present = {c["name"] for c in inspect(conn).get_columns("record_errors")}
    if "source_label" not in present:
        conn.exec_driver_sql("ALTER TABLE record_errors ADD COLUMN source_label VARCHAR(500)")


def _wider_outcomes(conn: Connection) -> None:
    """``succeeded_with_failures`` (23 characters) did not fit the 20 of ``runs.status`` and
    ``jobs.last_outcome``: SQLite ignores declared lengths, PostgreSQL refused the write.
    Widen both to 40 where lengths are enforced (new databases get 40 from the tables)."""
    if conn.dialect.name == "sqlite":
        return
    for table, column in (("runs", "status"), ("jobs", "last_outcome")):
        conn.exec_driver_sql(f"ALTER TABLE {table} ALTER COLUMN {column} TYPE VARCHAR(40)")


COMPANY_KEYED = ("couplings", "record_status", "watermarks", "reference_cache",
                 "option_mappings", "pending_ops", "leases", "jobs")
"""Tables whose keys gain the company (migration 8 rebuilds them on SQLite)."""
COMPANY_ADDED = ("runs", "record_errors")
"""Tables that only gain the column (and an index)."""


def _companies(conn: Connection) -> None:
    """Several ERP companies share one state database: every company-scoped table gets a
    ``company`` column and its unique keys include it (issue #19, item 5).

    Existing rows belong to the one company that used the database so far; the migration
    cannot read a workspace config, so it fills them with the company of the store that runs
    it (``conn.info["company"]``: the workspace that opens the database first after the
    upgrade), ``''`` when opened without one. SQLite cannot change a key in place: those
    tables are rebuilt (rename, create, copy, drop); PostgreSQL alters them. Idempotent:
    tables created by :func:`_initial` already have the column."""
    company = str(conn.info.get("company", ""))
    inspector = inspect(conn)
    if not conn.info.get("adopt_rows", True):
        _refuse_to_adopt(conn, inspector.get_table_names())
    for name in (*COMPANY_KEYED, *COMPANY_ADDED):
        if not inspector.has_table(name):
            continue
        if "company" in {c["name"] for c in inspector.get_columns(name)}:
            continue
        table = metadata.tables[name]
        if name in COMPANY_ADDED:
            conn.exec_driver_sql(f"ALTER TABLE {name} ADD COLUMN company VARCHAR(250) "
                                 "NOT NULL DEFAULT ''")
            conn.execute(table.update().values(company=company))
            present = {c["name"] for c in inspect(conn).get_columns(name)}
            for index in table.indexes:  # not those of columns later migrations add
                if {c.name for c in index.columns} <= present:
                    index.create(conn, checkfirst=True)
        elif conn.dialect.name == "sqlite":
            _rebuild_sqlite(conn, table, company)
        else:
            _rekey_postgresql(conn, table, company)


def _refuse_to_adopt(conn: Connection, present: list[str]) -> None:
    """A new workspace (``init``) must not take the rows of a database written before
    companies existed: they are the workspace's that wrote them."""
    for name in ("couplings", "runs", "jobs"):
        if name in present and conn.execute(select(text("1")).select_from(
                metadata.tables[name]).limit(1)).first() is not None:
            raise StateStoreError(
                "this state database was written by an older nav-crm-ops, before several "
                "companies could share one; its rows belong to the workspace that uses it: "
                "run any command in that workspace first (it upgrades the database and keeps "
                "them), then create this workspace again")


def _rebuild_sqlite(conn: Connection, table: Table, company: str) -> None:
    inspector = inspect(conn)
    old = [c["name"] for c in inspector.get_columns(table.name)]
    for index in inspector.get_indexes(table.name):
        conn.exec_driver_sql(f'DROP INDEX IF EXISTS "{index["name"]}"')
    conn.exec_driver_sql(f"ALTER TABLE {table.name} RENAME TO {table.name}__before_company")
    table.create(conn)
    kept = ", ".join(c for c in old if c in table.c)
    conn.execute(text(f"INSERT INTO {table.name} ({kept}, company) SELECT {kept}, :company "
                      f"FROM {table.name}__before_company"), {"company": company})
    conn.exec_driver_sql(f"DROP TABLE {table.name}__before_company")


def _rekey_postgresql(conn: Connection, table: Table, company: str) -> None:
    inspector = inspect(conn)
    name = table.name
    conn.exec_driver_sql(f"ALTER TABLE {name} ADD COLUMN company VARCHAR(250) NOT NULL "
                         "DEFAULT ''")
    conn.execute(table.update().values(company=company))
    for unique in inspector.get_unique_constraints(name):
        conn.exec_driver_sql(f'ALTER TABLE {name} DROP CONSTRAINT "{unique["name"]}"')
    if "company" in table.primary_key.columns:
        primary = inspector.get_pk_constraint(name)["name"]
        conn.exec_driver_sql(f'ALTER TABLE {name} DROP CONSTRAINT "{primary}"')
        columns = ", ".join(c.name for c in table.primary_key.columns)
        conn.exec_driver_sql(f"ALTER TABLE {name} ADD PRIMARY KEY ({columns})")
    for constraint in table.constraints:
        if isinstance(constraint, UniqueConstraint):
            columns = ", ".join(c.name for c in constraint.columns)
            conn.exec_driver_sql(f"ALTER TABLE {name} ADD CONSTRAINT {constraint.name} "
                                 f"UNIQUE ({columns})")
    present = {c["name"] for c in inspect(conn).get_columns(name)}
    for index in table.indexes:  # not those of columns later migrations add
        conn.exec_driver_sql(f"DROP INDEX IF EXISTS {index.name}")
        if {c.name for c in index.columns} <= present:
            index.create(conn)


alerts = Table(
    "alerts", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    company_column(),
    Column("rule", String(40), nullable=False),
    Column("subject", String(250), nullable=False),
    Column("severity", String(10), nullable=False),
    Column("state", String(10), nullable=False),
    Column("message", Text, nullable=False),
    Column("where_to_look", Text, nullable=False),
    Column("details", Text),
    Column("first_seen", String(32), nullable=False),
    Column("last_seen", String(32), nullable=False),
    Column("seen_count", Integer, nullable=False, default=1),
    Column("resolved_at", String(32)),
    Column("notified", Text),
    Column("notified_at", String(32)),
    Index("ix_alerts_one_open", "company", "rule", "subject", unique=True,
          sqlite_where=text("state = 'open'"), postgresql_where=text("state = 'open'")),
    Index("ix_alerts_state", "company", "state", "id"),
)
"""Alerts (:mod:`nav_crm_ops.store.alerts`): one row per condition the alert rules found;
at most one open row per rule and subject (a persisting condition is one alert)."""


def _alerts(conn: Connection) -> None:
    """Alerts on runs (issue #20): rules evaluated after every run, sent once; a run's rows
    name the sync they belong to (``runs.sync_id``: both directions and the second pass are
    one sync, however fast syncs follow each other). Idempotent: tables rebuilt by migration
    8 already have the column."""
    alerts.create(conn, checkfirst=True)
    inspector = inspect(conn)
    if inspector.has_table("runs") and "sync_id" not in {
            c["name"] for c in inspector.get_columns("runs")}:
        conn.exec_driver_sql("ALTER TABLE runs ADD COLUMN sync_id INTEGER")


def _coupling_key_index(conn: Connection) -> None:
    """Lookups resolve the natural keys they need (a preview asks for the couplings of the
    records in play, by id or by NAV key): an index instead of a scan of the mapping."""
    conn.exec_driver_sql("CREATE INDEX IF NOT EXISTS ix_couplings_nav_key "
                         "ON couplings (company, mapping, nav_key)")


reconcile_runs = Table(
    "reconcile_runs", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    company_column(),
    Column("mapping", String(100), nullable=False),
    Column("started_at", String(32), nullable=False),
    Column("finished_at", String(32), nullable=False),
    *(Column(name, Integer, nullable=False, default=0) for name in (
        "in_step", "pending", "missed", "diverged", "partner_gone", "requests", "pages",
        "duration_ms", "healed")),
    Column("pairs", Text),
    Column("advice", Text),
    Column("healed_at", String(32)),
    Index("ix_reconcile_runs_mapping", "company", "mapping", "id"),
)
"""Drift checks (:mod:`nav_crm_ops.store.reconcile`): one row per reconcile of a mapping."""


def _reconcile_runs(conn: Connection) -> None:
    """Drift checks (issue #20): what each reconcile found, for the ``drift`` alert rule and
    ``nav-crm-ops reconcile --last``."""
    reconcile_runs.create(conn, checkfirst=True)


approvals = Table(
    "approvals", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    company_column(),
    Column("job", String(200), nullable=False),
    Column("mapping", String(100), nullable=False),
    Column("plan_id", String(36), nullable=False),
    Column("plan_path", Text, nullable=False),
    Column("digest", String(64), nullable=False),
    Column("counts", Text, nullable=False),
    Column("reasons", Text, nullable=False),
    Column("state", String(10), nullable=False),
    Column("created_at", String(32), nullable=False),
    Column("expires_at", String(32)),
    Column("approved_by", String(200)),
    Column("approved_at", String(32)),
    Column("rejected_by", String(200)),
    Column("rejected_at", String(32)),
    Column("note", Text, nullable=False, default=""),
    Column("applied_at", String(32)),
    Column("applied_run_ids", Text),
    Index("ix_approvals_job", "company", "job", "state"),
)
"""Approvals (:mod:`nav_crm_ops.store.approvals`): plans approval-mode jobs saved instead of
applying them, who approved or rejected each and when, and the runs that applied it."""


def _approvals(conn: Connection) -> None:
    """A job in approval mode keeps the plans that wait for a person (issue #20, item 2)."""
    approvals.create(conn, checkfirst=True)


change_history = Table(
    "change_history", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    company_column(),
    Column("run_id", Integer, nullable=False),
    Column("mapping", String(100), nullable=False),
    Column("target", String(3), nullable=False),
    Column("nav_id", String(100)),
    Column("crm_id", String(100)),
    Column("field", String(200)),
    Column("old_value", Text),
    Column("new_value", Text),
    Column("version", String(200)),
    Column("created", Boolean, nullable=False, default=False),
    Index("ix_change_history_run", "company", "run_id"),
)
"""What every applied write replaced (:mod:`nav_crm_ops.store.history`): one row per record
and field written, one per record created (``created``, no field), so a run can be reverted."""


def _change_history(conn: Connection) -> None:
    """Undo a run (issue #20, item 1): the values each applied write replaced."""
    change_history.create(conn, checkfirst=True)


webhook_subscriptions = Table(
    "webhook_subscriptions", metadata,
    Column("company", String(250), primary_key=True, default=_company_default),
    Column("id", String(100), primary_key=True),
    Column("resource", Text, nullable=False),
    Column("notification_url", Text, nullable=False),
    Column("client_state_hash", String(64), nullable=False),
    Column("etag", String(200), nullable=False, default=""),
    Column("expires_at", String(32), nullable=False),
    Column("created_at", String(32), nullable=False),
    Column("renewed_at", String(32)),
)
"""Business Central webhook subscriptions ``listen`` holds (:mod:`nav_crm_ops.store.subscriptions`);
the clientState only as its SHA-256."""

job_wakes = Table(
    "job_wakes", metadata,
    Column("company", String(250), primary_key=True, default=_company_default),
    Column("job", String(200), primary_key=True),
    Column("woken_at", String(32), nullable=False),
    Column("reason", Text, nullable=False, default=""),
)
"""Jobs a change notification woke: the runner treats them as due now and clears the mark."""

change_links = Table(
    "change_links", metadata,
    Column("company", String(250), primary_key=True, default=_company_default),
    Column("entity_set", String(200), primary_key=True),
    Column("delta_link", Text, nullable=False),
    Column("updated_at", String(32), nullable=False),
)
"""Dataverse change tracking: the ``@odata.deltaLink`` ``listen`` polls next, per table."""


def _wakes(conn: Connection) -> None:
    """Near-real-time wake-ups (issue #20, item 5)."""
    for table in (webhook_subscriptions, job_wakes, change_links):
        table.create(conn, checkfirst=True)


MIGRATIONS: tuple[tuple[int, str, Callable[[Connection], None]], ...] = (
    (1, "couplings, runs, record errors, watermarks, option mappings, pending ops, leases",
     _initial),
    (2, "record status per source record; natural keys, etags on couplings; reference cache",
     _record_status),
    (3, "job queue entries", _job_queue),
    (4, "index record errors by normalized message (error groups, drill-down)",
     _error_group_index),
    (5, "workspace identity: state database id and plan signing key", _workspace_identity),
    (6, "record names beside natural keys: couplings' nav_name/crm_name, errors' "
        "source_label", _record_names),
    (7, "run and job outcomes up to 40 characters (succeeded_with_failures)",
     _wider_outcomes),
    (8, "several ERP companies per state database: a company column in every scoped "
        "table and in its keys", _companies),
    (9, "alerts: one row per condition the alert rules found; runs name their sync",
     _alerts),
    (10, "index couplings by natural key (lookups of the records in play)",
     _coupling_key_index),
    (11, "reconcile runs: what each drift check of a mapping found", _reconcile_runs),
    (12, "approvals: plans approval-mode jobs saved, who decided and the runs that "
         "applied them", _approvals),
    (13, "change history: what each applied write replaced, to revert a run",
     _change_history),
    (14, "wake-ups: webhook subscriptions, woken jobs, Dataverse delta links", _wakes),
)
"""(version, description, function) in ascending order; append, never edit."""

SCHEMA_VERSION = MIGRATIONS[-1][0]

MIGRATION_LOCK = 0x6E61_7663_726D_0001
"""PostgreSQL advisory lock key ("navcrm" + 1) that :func:`migrate` holds while it runs."""


def current_version(conn: Connection) -> int:
    if not inspect(conn).has_table("schema_version"):
        return 0
    value = conn.execute(select(schema_version.c.version).order_by(
        schema_version.c.version.desc()).limit(1)).scalar()
    return int(value or 0)


def migrate(conn: Connection, where: str) -> int:
    """Bring the schema to :data:`SCHEMA_VERSION` (caller holds a write transaction).

    Serialized: on PostgreSQL a transaction-scoped advisory lock (:data:`MIGRATION_LOCK`)
    makes processes that open one database at once migrate one after the other (the others
    then find the schema current); on SQLite the write transaction already does."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
    schema_version.create(conn, checkfirst=True)
    version = current_version(conn)
    if version > SCHEMA_VERSION:
        raise StateStoreError(
            f"the state database {where} has schema version {version}, newer than this "
            f"nav-crm-ops understands ({SCHEMA_VERSION}); upgrade nav-crm-ops "
            "(pip install -U nav-crm-ops) before using this workspace"
        )
    for number, description, step in MIGRATIONS:
        if number > version:
            step(conn)
            conn.execute(insert(schema_version).values(
                version=number, description=description, applied_at=utc_now()))
            version = number
    return version
