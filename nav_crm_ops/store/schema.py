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


schema_version = Table(
    "schema_version", metadata,
    Column("version", Integer, primary_key=True),
    Column("description", String(200), nullable=False),
    Column("applied_at", String(32), nullable=False),
)

couplings = Table(
    "couplings", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
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
    UniqueConstraint("mapping", "nav_id", name="uq_couplings_nav"),
    UniqueConstraint("mapping", "crm_id", name="uq_couplings_crm"),
)

record_status = Table(
    "record_status", metadata,
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
    Index("ix_record_status_state", "mapping", "state"),
)

runs = Table(
    "runs", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("mapping", String(100), nullable=False),
    Column("direction", String(20), nullable=False),
    Column("kind", String(20), nullable=False),
    Column("job_name", String(200), nullable=False, default=""),
    Column("started_at", String(32), nullable=False),
    Column("finished_at", String(32)),
    Column("status", String(40), nullable=False),
    *(Column(name, Integer, nullable=False, default=0) for name in (
        "inserted", "modified", "deleted", "unchanged", "skipped", "failed", "coupled",
        "uncoupled", "conflicts", "requests", "retries", "bytes")),
    Column("message", Text, nullable=False, default=""),
    Column("output_path", Text),
    Index("ix_runs_mapping_started", "mapping", "started_at"),
)

record_errors = Table(
    "record_errors", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", Integer),
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
)

watermarks = Table(
    "watermarks", metadata,
    Column("mapping", String(100), primary_key=True),
    Column("side", String(3), primary_key=True),
    Column("value", String(40), nullable=False),
    Column("updated_at", String(32), nullable=False),
)

reference_cache = Table(
    "reference_cache", metadata,
    Column("scope", String(200), primary_key=True),
    Column("key", String(250), primary_key=True),
    Column("value", Text),
    Column("updated_at", String(32), nullable=False),
)

option_mappings = Table(
    "option_mappings", metadata,
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
    Column("mapping", String(100), nullable=False),
    Column("op_id", String(200), nullable=False, unique=True),
    Column("kind", String(20), nullable=False),
    Column("target", String(3), nullable=False),
    Column("record_key", String(200), nullable=False),
    Column("payload", Text),
    Column("state", String(10), nullable=False),
    Column("result", Text),
    Column("created_at", String(32), nullable=False),
    Column("updated_at", String(32), nullable=False),
    Index("ix_pending_ops_state", "state", "mapping"),
)

leases = Table(
    "leases", metadata,
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
    Index("ix_jobs_position", "position"),
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
