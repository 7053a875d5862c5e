"""What PostgreSQL revealed about the state store (issue #19, item 2): concurrent schema
creation, check-then-write races, integrity errors, lease refusals and lease clocks.

Race tests run on both databases (``state_url``); the ones about PostgreSQL's server log and
clock run on the session's private PostgreSQL server (``pg_server``, tests/pg.py).
"""

from __future__ import annotations

import subprocess
import sys
import threading

import pytest

from nav_crm_ops.exceptions import LeaseHeldError, StateConflictError
from nav_crm_ops.store import SCHEMA_VERSION, StateStore
from nav_crm_ops.store import leases as leases_module
from nav_crm_ops.store.schema import utc_now
from tests.pg import PgServer

OPEN_AND_REPORT = (
    "import sys\n"
    "from nav_crm_ops.store import StateStore\n"
    "with StateStore.open(sys.argv[1]) as store:\n"
    "    print(store.schema_version)\n"
)


def test_four_processes_opening_an_empty_database_at_once_all_succeed(state_url: str) -> None:
    """``migrate`` is serialized (an advisory lock on PostgreSQL, the write lock on SQLite):
    without it, three of four processes failed creating ``schema_version`` twice."""
    children = [subprocess.Popen([sys.executable, "-c", OPEN_AND_REPORT, state_url],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                for _ in range(4)]
    results = [(child.wait(timeout=120), *child.communicate()) for child in children]
    assert [(code, out.strip()) for code, out, _ in results] == [(0, str(SCHEMA_VERSION))] * 4, \
        [err for _, _, err in results]
    with StateStore.open(state_url) as store, store.transaction(write=False) as conn:
        versions = [row[0] for row in conn.exec_driver_sql(
            "SELECT version FROM schema_version ORDER BY version")]
    assert versions == list(range(1, SCHEMA_VERSION + 1))


def test_four_processes_upgrading_one_database_at_once_all_succeed(state_url: str) -> None:
    """A version-6 database (``runs.status`` 20 characters wide on PostgreSQL) opened by four
    processes at once: one upgrades, the others wait and find it current; afterwards the
    23-character outcome ``succeeded_with_failures`` fits."""
    with StateStore.open(state_url) as store, store.transaction() as conn:
        conn.exec_driver_sql("DELETE FROM schema_version WHERE version >= 7")
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql("ALTER TABLE runs ALTER COLUMN status TYPE VARCHAR(20)")
    children = [subprocess.Popen([sys.executable, "-c", OPEN_AND_REPORT, state_url],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                for _ in range(4)]
    results = [(child.wait(timeout=120), *child.communicate()) for child in children]
    assert [(code, out.strip()) for code, out, _ in results] == [(0, str(SCHEMA_VERSION))] * 4, \
        [err for _, _, err in results]
    with StateStore.open(state_url) as store:
        run_id = store.start_run("customer", "to_crm")
        store.finish_run(run_id, "succeeded_with_failures")
        assert store.runs_frame()["status"].to_list() == ["succeeded_with_failures"]


def test_two_threads_refreshing_one_reference_cache_entry_both_succeed(state_url: str) -> None:
    """The refresh upserts (``ON CONFLICT DO UPDATE``) instead of delete-then-insert, which
    raised a raw IntegrityError when two threads refreshed the same scope."""
    errors: list[BaseException] = []
    tables = [{f"K{i}": f"thread {n} {i}" for i in range(40)} for n in range(2)]

    def refresh(store: StateStore, table: dict[str, str | None]) -> None:
        try:
            for _ in range(25):
                store.put_cached_map("paymentterms", table)
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    with StateStore.open(state_url) as first, StateStore.open(state_url) as second:
        threads = [threading.Thread(target=refresh, args=(store, table))
                   for store, table in zip((first, second), tables, strict=True)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert errors == []
        cached = first.cached_map("paymentterms")
    assert cached is not None and cached[0] in tables


def test_a_shrinking_refresh_drops_the_keys_it_no_longer_has(state_url: str) -> None:
    with StateStore.open(state_url) as store:
        store.put_cached_map("currencies", {"EUR": "1", "USD": "2"})
        store.put_cached_map("currencies", {"USD": "3"})
        assert store.cached_map("currencies")[0] == {"USD": "3"}  # type: ignore[index]
        store.put_cached_map("currencies", {})
        assert store.cached_map("currencies")[0] == {"": None}  # type: ignore[index]


def test_an_integrity_error_becomes_a_state_conflict_error_that_says_what_happened(
        state_url: str) -> None:
    with StateStore.open(state_url) as store:
        store.upsert_couplings("customer", [{"nav_id": "N1", "crm_id": "C1"}])
        with pytest.raises(StateConflictError, match="already coupled") as coupled:
            store.upsert_couplings("customer", [{"nav_id": "N2", "crm_id": "C1"}])
        assert "uq_couplings_crm" in coupled.value.detail or "UNIQUE" in coupled.value.detail
        with (pytest.raises(StateConflictError, match="retry the operation") as raw,
              store.transaction() as conn):
            conn.exec_driver_sql("INSERT INTO leases (name, holder, acquired_at, expires_at) "
                                 "VALUES ('x', 'a', 't', 't'), ('x', 'b', 't', 't')")
        assert "leases" in raw.value.detail


def test_a_refused_lease_logs_no_unique_key_violation(pg_server: PgServer) -> None:
    """Refusals are ``INSERT … ON CONFLICT DO NOTHING``: the server log stays clean (only
    the log lines between this test's two markers count; the server is shared)."""
    with StateStore.open(pg_server.create_database()) as store:
        begin, end = _log_marker(store, "begin"), ""
        store.acquire_lease("mapping:CUSTOMER", "host:1 A", ttl_s=60)
        for _ in range(5):
            with pytest.raises(LeaseHeldError, match="host:1 A"):
                store.acquire_lease("mapping:CUSTOMER", "host:2 B", ttl_s=60)
        end = _log_marker(store, "end")
    log = pg_server.log_text()
    assert begin in log and end in log
    refusals = log[log.index(begin):log.index(end)]
    assert "duplicate key" not in refusals and "leases_pkey" not in refusals


def _log_marker(store: StateStore, what: str) -> str:
    marker = f"lease refusal check {what} {utc_now()}"
    with store.transaction() as conn:
        conn.exec_driver_sql(f"DO $$ BEGIN RAISE LOG '{marker}'; END $$")
    return marker


def test_lease_times_come_from_the_database_clock(pg_server: PgServer,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """A client whose clock runs an hour ahead must not see a live lease as expired: on
    PostgreSQL the lease times are the server's ``now()``."""
    with StateStore.open(pg_server.create_database()) as store:
        held = store.acquire_lease("job:CUSTOMER", "host:1 A", ttl_s=60)
        monkeypatch.setattr(leases_module, "utc_now",
                            lambda offset_s=0.0: utc_now(offset_s + 3600))
        with pytest.raises(LeaseHeldError, match="host:1 A"):
            store.acquire_lease("job:CUSTOMER", "host:2 B", ttl_s=60)
        renewed = store.renew_lease("job:CUSTOMER", "host:1 A", ttl_s=60)
    assert held.expires_at <= renewed.expires_at < utc_now(120)
