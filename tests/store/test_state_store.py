"""State store against real SQLite files: migrations, couplings, skip rule, leases, errors."""

from __future__ import annotations

import multiprocessing
import sqlite3
import threading
import time
from pathlib import Path

import polars as pl
import pytest

from nav_crm_ops.exceptions import LeaseHeldError, StateStoreError
from nav_crm_ops.store import SCHEMA_VERSION, RecordFailure, StateStore, default_holder


@pytest.fixture
def store(state_url: str):
    """A new state database, once on SQLite and once on PostgreSQL (``state_url``)."""
    with StateStore.open(state_url) as opened:
        yield opened


def test_open_creates_schema_in_wal_mode_and_reopens(tmp_path: Path) -> None:
    path = tmp_path / "ws" / "state.db"
    with StateStore.open(path) as first:
        assert first.schema_version == SCHEMA_VERSION
        first.set_watermark("customer", "nav", "2026-01-01T00:00:00Z")
    with StateStore.open(f"sqlite:///{path}") as again:
        assert again.schema_version == SCHEMA_VERSION
        assert again.get_watermark("CUSTOMER", "nav") == "2026-01-01T00:00:00Z"
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        versions = raw.execute("SELECT version FROM schema_version").fetchall()
    assert versions == [(v,) for v in range(1, SCHEMA_VERSION + 1)]


def test_version_1_database_migrates_keeping_couplings(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    with sqlite3.connect(path) as raw:
        raw.executescript("""
            CREATE TABLE schema_version (version INTEGER PRIMARY KEY, description VARCHAR(200)
                NOT NULL, applied_at VARCHAR(32) NOT NULL);
            INSERT INTO schema_version VALUES (1, 'v1', '2026-11-22T00:00:00.000000Z');
            CREATE TABLE couplings (id INTEGER PRIMARY KEY, mapping VARCHAR(100) NOT NULL,
                nav_id VARCHAR(100) NOT NULL, crm_id VARCHAR(100) NOT NULL,
                nav_modified_at VARCHAR(40), crm_modified_at VARCHAR(40), base_values TEXT,
                last_result_to_crm VARCHAR(10), last_result_from_crm VARCHAR(10),
                last_run_to_crm INTEGER, last_run_from_crm INTEGER,
                consecutive_failures INTEGER NOT NULL, last_error_fingerprint TEXT,
                last_error_message TEXT, skipped BOOLEAN NOT NULL, skip_reason TEXT,
                skipped_since VARCHAR(32), created_at VARCHAR(32) NOT NULL,
                updated_at VARCHAR(32) NOT NULL,
                CONSTRAINT uq_couplings_nav UNIQUE (mapping, nav_id),
                CONSTRAINT uq_couplings_crm UNIQUE (mapping, crm_id));
            INSERT INTO couplings (mapping, nav_id, crm_id, base_values, consecutive_failures,
                skipped, created_at, updated_at) VALUES ('CUSTOMER', 'n1', 'c1', '{"name": "A"}',
                0, 0, 'x', 'x');
        """)
    with StateStore.open(path) as store:
        assert store.schema_version == SCHEMA_VERSION
        kept = store.get_coupling_by_nav("CUSTOMER", "n1")
        assert kept is not None and kept.crm_id == "c1" and kept.base_values == {"name": "A"}
        store.couple("CUSTOMER", "n2", "c2", nav_key="10000")
        assert store.record_failure("CUSTOMER", "n2", "to_crm", "x", transient=False).state == "failed"
    with sqlite3.connect(path) as raw:
        columns = {row[1] for row in raw.execute("PRAGMA table_info(couplings)")}
    assert "skipped" not in columns and {"nav_key", "crm_key"} <= columns


def test_open_folder_uses_state_db_inside(tmp_path: Path) -> None:
    with StateStore.open(tmp_path) as store:
        store.set_watermark("CURRENCY", "crm", "x")
    assert (tmp_path / "state.db").exists()


def test_newer_database_is_refused_with_upgrade_hint(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    StateStore.open(path).close()
    with sqlite3.connect(path) as raw:
        raw.execute("INSERT INTO schema_version VALUES (?, 'future', 'now')",
                    (SCHEMA_VERSION + 1,))
    with pytest.raises(StateStoreError, match="upgrade nav-crm-ops"):
        StateStore.open(path)


def test_couple_refuses_ids_coupled_elsewhere(store: StateStore) -> None:
    first = store.couple("customer", "nav-1", "crm-1", base_values={"name": "Cannon"})
    assert first.mapping == "CUSTOMER" and first.base_values == {"name": "Cannon"}
    assert store.couple("CUSTOMER", "nav-1", "crm-1").crm_id == "crm-1"  # idempotent
    with pytest.raises(StateStoreError, match="CRM record crm-1 is already coupled to NAV record nav-1"):
        store.couple("CUSTOMER", "nav-2", "crm-1")
    with pytest.raises(StateStoreError, match="NAV record nav-1 is already coupled to CRM record crm-1"):
        store.couple("CUSTOMER", "nav-1", "crm-2")
    store.couple("CONTACT", "nav-1", "crm-1")  # another mapping is independent
    assert store.get_coupling_by_crm("customer", "crm-1").nav_id == "nav-1"  # type: ignore[union-attr]
    assert store.uncouple("CUSTOMER", crm_id="crm-1") == 1
    assert store.get_coupling_by_nav("CUSTOMER", "nav-1") is None
    assert store.couple("CUSTOMER", "nav-2", "crm-1").nav_id == "nav-2"


def test_skip_rule_transient_never_skips(store: StateStore) -> None:
    for _ in range(5):
        state = store.record_failure("CUSTOMER", "n1", "to_crm", "HTTP 503 Service Unavailable",
                                     transient=True)
    assert not state.skipped and state.consecutive_failures == 0
    assert state.state == "failed" and state.transient
    assert store.record_status_frame("CUSTOMER")["source_id"].to_list() == ["n1"]


def test_skip_rule_same_permanent_error_twice_skips_uncoupled_records_too(store: StateStore) -> None:
    first = store.record_failure(
        "CUSTOMER", "n1", "to_crm",
        "The length of 'name' exceeded the maximum allowed length of '160'. Record 11111111-2222-3333-4444-555555555555",
        transient=False, run_id=1)
    assert not first.skipped and first.consecutive_failures == 1
    store.record_failure("CUSTOMER", "n1", "to_crm", "timeout", transient=True)
    second = store.record_failure(
        "CUSTOMER", "n1", "to_crm",
        "The length of 'name' exceeded the maximum allowed length of '160'. Record 99999999-2222-3333-4444-555555555555",
        transient=False, run_id=2)
    assert second.skipped and second.consecutive_failures == 2
    assert "exceeded the maximum allowed length" in second.message
    assert second.skipped_since and second.run_id == 2
    assert store.record_status_frame("CUSTOMER", states=["failed"]).height == 0
    assert store.unskip("CUSTOMER") == 1
    restored = store.record_status("CUSTOMER", "n1", "to_crm")
    assert restored is not None and restored.state == "failed"
    assert restored.consecutive_failures == 0
    store.record_success("CUSTOMER", "n1", "to_crm")
    assert store.record_status("CUSTOMER", "n1", "to_crm") is None


def test_skip_rule_different_messages_do_not_skip_and_conflicts_never_skip(store: StateStore) -> None:
    a = store.record_failure("CUSTOMER", "n1", "from_crm", "Salesperson must be coupled",
                             transient=False)
    b = store.record_failure("CUSTOMER", "n1", "from_crm", "Currency must be coupled",
                             transient=False)
    assert not a.skipped and not b.skipped and b.consecutive_failures == 1
    store.record_success("CUSTOMER", "n1", "from_crm")
    c = store.record_failure("CUSTOMER", "n1", "from_crm", "Currency must be coupled",
                             transient=False)
    assert c.consecutive_failures == 1 and not c.skipped
    never = store.record_failure("CUSTOMER", "n1", "from_crm", "Currency must be coupled",
                                 transient=False, skip_after=0)
    assert never.consecutive_failures == 2 and not never.skipped
    for _ in range(3):
        held = store.record_outcomes("CUSTOMER", "to_crm", failed=[RecordFailure(
            "n2", "name changed on both sides", conflict=True)])[0]
    assert held.state == "conflict" and not held.skipped


def test_bulk_upsert_100k_couplings_and_read_frame(store: StateStore) -> None:
    n = 100_000
    rows = pl.DataFrame({
        "nav_id": [f"nav-{i}" for i in range(n)],
        "crm_id": [f"crm-{i}" for i in range(n)],
        "base_values": [f'{{"name": "Customer {i}"}}' for i in range(n)],
    })
    started = time.perf_counter()
    assert store.upsert_couplings("CUSTOMER", rows) == n
    upserted = time.perf_counter() - started
    frame = store.couplings_frame("CUSTOMER")
    read = time.perf_counter() - started - upserted
    print(f"upsert {n} couplings: {upserted:.2f} s, read as DataFrame: {read:.2f} s")
    assert frame.height == n
    assert frame.filter(pl.col("nav_id") == "nav-77")["crm_id"].item() == "crm-77"
    some = store.couplings_frame("CUSTOMER", columns=["nav_id", "crm_id"],
                                 nav_ids=[f"nav-{i}" for i in range(0, 1500, 3)])
    assert some.columns == ["nav_id", "crm_id"] and some.height == 500
    assert store.count_couplings("customer") == n
    with pytest.raises(StateStoreError, match="unknown coupling column"):
        store.couplings_frame("CUSTOMER", columns=["nope"])
    assert upserted < 30 and read < 10
    store.upsert_couplings("CUSTOMER", [{"nav_id": "nav-5", "crm_id": "crm-5",
                                         "base_values": {"name": "renamed"}, "nav_key": "C5"}])
    renamed = store.get_coupling_by_nav("CUSTOMER", "nav-5")
    assert renamed is not None and renamed.base_values == {"name": "renamed"}
    store.upsert_couplings("CUSTOMER", [{"nav_id": "nav-5", "crm_id": "crm-5"}])
    kept = store.get_coupling_by_nav("CUSTOMER", "nav-5")
    assert kept is not None and kept.nav_key == "C5" and kept.base_values == {"name": "renamed"}
    with pytest.raises(StateStoreError, match="already coupled"):
        store.upsert_couplings("CUSTOMER", [{"nav_id": "nav-new", "crm_id": "crm-6"}])


def test_runs_and_error_groups(store: StateStore) -> None:
    run = store.start_run("CUSTOMER", "to_crm", "sync", job_name="nightly")
    for guid in ("11111111-1111-1111-1111-111111111111", "22222222-2222-2222-2222-222222222222"):
        store.add_record_error(
            "CUSTOMER", "to_crm",
            f"0x80044331 The length of 'name' of account {guid} exceeded 160.",
            run_id=run, source_id=guid, http_status=400, payload={"name": "x" * 200})
    store.add_record_error("CUSTOMER", "to_crm", "Throttled: retry after 30 s", run_id=run,
                           transient=True, http_status=429)
    store.finish_run(run, "finished", {"inserted": 3, "failed": 3, "requests": 7},
                     message="3 failed")
    runs = store.runs_frame("customer")
    assert runs.row(0, named=True)["inserted"] == 3 and runs.row(0, named=True)["status"] == "finished"
    with pytest.raises(StateStoreError, match="unknown run count"):
        store.finish_run(run, "finished", {"bogus": 1})
    groups = store.error_groups("CUSTOMER")
    assert groups["count"].to_list() == [2, 1]
    assert groups["normalized_message"][0] == "0x80044331 The length of '<value>' of account <guid> exceeded <n>."
    permanent = store.record_errors_frame("CUSTOMER", run_id=run, transient=False)
    assert permanent.height == 2 and permanent["http_status"].to_list() == [400, 400]


def test_purge_keeps_runs_that_skipped_records_point_at(store: StateStore) -> None:
    kept, purged = store.start_run("ITEM-PRODUCT", "to_crm"), store.start_run("ITEM-PRODUCT", "to_crm")
    for run in (kept, purged):
        store.add_record_error("ITEM-PRODUCT", "to_crm", "Unit PCS must be coupled", run_id=run)
        store.finish_run(run, "failed", {"failed": 1})
    for run in (kept, kept):
        store.record_failure("ITEM-PRODUCT", "n1", "to_crm", "Unit PCS must be coupled",
                             transient=False, run_id=run)
    assert store.purge_runs("9999-12-31T00:00:00Z") == 1
    assert store.runs_frame()["id"].to_list() == [kept]
    assert store.record_errors_frame()["run_id"].to_list() == [kept]


def test_bad_url_and_unknown_pairs_raise_state_store_errors(store: StateStore, tmp_path: Path) -> None:
    with pytest.raises(StateStoreError, match="not a valid SQLAlchemy URL"):
        StateStore.open("::bad::url://")
    with pytest.raises(StateStoreError, match="NAV record n9 is not coupled"):
        store.update_synced("CUSTOMER", "n9", base_values={})
    with pytest.raises(StateStoreError, match=r"direction 'both' is not one of"):
        store.record_success("CUSTOMER", "n9", "both")


def test_watermarks_options_and_journal(store: StateStore) -> None:
    store.set_watermark("CUSTOMER", "crm", "2026-01-01T00:00:00Z")
    store.set_watermark("CUSTOMER", "crm", "2026-01-02T00:00:00Z")
    assert store.watermarks("customer") == {"crm": "2026-01-02T00:00:00Z"}
    with pytest.raises(StateStoreError, match="side 'both'"):
        store.set_watermark("CUSTOMER", "both", "x")
    store.set_option_mapping("CUSTOMER", "paymenttermscode", "14 DAYS", 100000000, "14 DAYS")
    store.set_option_mapping("CUSTOMER", "paymenttermscode", "14 DAYS", 100000001, "Net 14")
    options = store.option_mappings("CUSTOMER", "paymenttermscode")
    assert options.select("nav_value", "crm_value").rows() == [("14 DAYS", 100000001)]
    ops = [{"op_id": f"r1:{i}", "kind": "update", "target": "crm", "record_key": f"c{i}",
            "payload": {"name": i}} for i in range(3)]
    assert store.journal_ops(1, "CUSTOMER", ops) == 3
    assert store.journal_ops(1, "CUSTOMER", ops) == 0
    store.mark_ops(["r1:0"], "sent")
    store.mark_ops(["r1:1"], "done", result={"status": 204})
    open_ops = store.pending_ops_frame("CUSTOMER")
    assert sorted(open_ops["op_id"].to_list()) == ["r1:0", "r1:2"]
    assert store.purge_ops() == 1


def test_lease_is_exclusive_and_expired_lease_is_taken_over(store: StateStore) -> None:
    lease = store.acquire_lease("mapping:CUSTOMER", "host:1 job A", ttl_s=60)
    with pytest.raises(LeaseHeldError) as info:
        store.acquire_lease("mapping:CUSTOMER", "host:2 job B", ttl_s=60)
    assert info.value.holder == "host:1 job A" and info.value.expires_at == lease.expires_at
    assert "host:1 job A" in str(info.value)
    store.renew_lease("mapping:CUSTOMER", "host:1 job A", ttl_s=60)
    assert store.release_lease("mapping:CUSTOMER", "host:1 job A")
    store.acquire_lease("mapping:CUSTOMER", "host:2 job B", ttl_s=0.05)
    time.sleep(0.1)
    taken = store.acquire_lease("mapping:CUSTOMER", "host:3 job C", ttl_s=60)
    assert taken.holder == "host:3 job C"
    with pytest.raises(LeaseHeldError, match="no longer held"):
        store.renew_lease("mapping:CUSTOMER", "host:2 job B", ttl_s=60)


def _race(path: str, holder: str, start: float, queue: multiprocessing.Queue) -> None:
    with StateStore.open(path) as own:
        while time.time() < start:
            time.sleep(0.001)
        try:
            own.acquire_lease("race", holder, ttl_s=60)
            queue.put(holder)
        except LeaseHeldError:
            queue.put("")


def test_lease_race_between_processes_has_one_winner(state_url: str) -> None:
    path = state_url
    StateStore.open(path).close()
    context = multiprocessing.get_context("fork")
    for attempt in range(3):
        queue = context.Queue()
        start = time.time() + 0.5
        workers = [context.Process(target=_race, args=(path, f"p{attempt}-{i}", start, queue))
                   for i in range(4)]
        for worker in workers:
            worker.start()
        results = [queue.get(timeout=60) for _ in workers]
        for worker in workers:
            worker.join(timeout=30)
        assert sum(1 for r in results if r) == 1, results
        with StateStore.open(path) as store:
            winner = next(r for r in results if r)
            assert store.lease("race").holder == winner  # type: ignore[union-attr]
            store.release_lease("race", winner)


def test_lease_race_between_threads_has_one_winner(tmp_path: Path) -> None:
    with StateStore.open(tmp_path / "state.db") as store:
        winners: list[str] = []
        barrier = threading.Barrier(8)

        def worker(i: int) -> None:
            barrier.wait()
            try:
                store.acquire_lease("t", f"thread-{i}", ttl_s=60)
                winners.append(f"thread-{i}")
            except LeaseHeldError:
                pass

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(winners) == 1
        assert store.lease("t").holder == winners[0]  # type: ignore[union-attr]


def test_a_lease_of_a_dead_process_on_this_host_can_be_taken_over(store: StateStore) -> None:
    import socket
    import subprocess
    import sys

    from nav_crm_ops.store import holder_is_dead
    from nav_crm_ops.store.leases import _process_key

    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    key = _process_key(child.pid)
    child.kill()
    child.wait()
    dead = f"{socket.gethostname()}:{child.pid} #0123abcd sync CUSTOMER @{key}"
    store.acquire_lease("mapping:CUSTOMER", dead, 600)
    assert holder_is_dead(dead)
    assert not holder_is_dead(default_holder("me"))
    assert not holder_is_dead(f"other-host:{child.pid} #0123abcd sync @{key}")
    assert not holder_is_dead(f"{socket.gethostname()}:{child.pid} sync CUSTOMER")  # no key
    taken = store.take_over_lease("mapping:CUSTOMER", dead, "me", 60)
    assert taken.holder == "me" and store.lease("mapping:CUSTOMER").holder == "me"  # type: ignore[union-attr]


def test_every_caller_of_one_process_has_its_own_lease_identity(store: StateStore) -> None:
    """Two threads (or two syncs) of one process used to get the same ``host:pid`` holder, and
    a lease is granted again to its holder: both held the mapping at once."""
    import threading

    holders: list[str] = []
    threads = [threading.Thread(target=lambda: holders.append(default_holder("sync CUSTOMER")))
               for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(holders)) == 2 and default_holder("x") != default_holder("x")
    store.acquire_lease("mapping:CUSTOMER", holders[0], 600)
    with pytest.raises(LeaseHeldError, match="sync CUSTOMER"):
        store.acquire_lease("mapping:CUSTOMER", holders[1], 600)
    store.release_lease("mapping:CUSTOMER", holders[1])  # not its lease: nothing happens
    assert store.lease("mapping:CUSTOMER").holder == holders[0]  # type: ignore[union-attr]
