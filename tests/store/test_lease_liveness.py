"""Lease liveness and heartbeats (issue #19, item 4) on SQLite and PostgreSQL.

A holder is alive while its lease is: host name + pid never prove a holder of another
container dead, nor a live process with another token; a heartbeat that finds its lease gone
(expired, or taken by another holder after it expired) reports it lost and cancels the work's
token, so the engine stops at its next safe point.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid

import pytest

from nav_crm_ops.engine.progress import CancelToken, check_cancelled, guarded
from nav_crm_ops.exceptions import LeaseHeldError, SyncCancelled
from nav_crm_ops.store import StateStore, default_holder, holder_is_dead
from nav_crm_ops.store.heartbeat import LeaseHeartbeat
from nav_crm_ops.store.leases import _process_key
from tests.pg import PgServer


def _holder(pid: int, key: str) -> str:
    return f"{socket.gethostname()}:{pid} #{uuid.uuid4().hex} sync CUSTOMER @{key}"


def _gone_pid() -> tuple[int, str]:
    """The pid of a process that ran here and exited, and its process key."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    key = _process_key(child.pid)
    child.kill()
    child.wait()
    assert key
    return child.pid, key


def test_same_host_name_and_pid_in_another_container_keeps_its_live_lease(
        state_url: str) -> None:
    """Two containers share a host name and reuse pids: a holder whose pid does not exist
    here, but whose pid namespace is another, is not ours to judge dead."""
    pid, key = _gone_pid()
    boot, namespace, start = key.split(".")
    elsewhere = _holder(pid, f"{boot}.{int(namespace) + 1}.{start}")
    assert holder_is_dead(_holder(pid, key))  # the same pid in this namespace: provably gone
    assert not holder_is_dead(elsewhere)
    with StateStore.open(state_url) as store:
        store.acquire_lease("mapping:CUSTOMER", elsewhere, 1.0)
        with pytest.raises(LeaseHeldError) as held:
            store.acquire_lease("mapping:CUSTOMER", default_holder("me"), 60)
        assert held.value.holder == elsewhere
        time.sleep(1.2)  # its heartbeat stopped: once the lease expired, it is dead
        mine = store.acquire_lease("mapping:CUSTOMER", default_holder("me"), 60)
        assert store.lease("mapping:CUSTOMER").holder == mine.holder  # type: ignore[union-attr]


def test_same_host_name_and_pid_with_another_token_is_alive(state_url: str) -> None:
    """This very process under another token (another thread, another sync) is alive; a
    holder whose pid now names a process started at another time (a recycled pid) is
    provably gone."""
    key = _process_key(os.getpid())
    live = _holder(os.getpid(), key)
    boot, namespace, start = key.split(".")
    recycled = _holder(os.getpid(), f"{boot}.{namespace}.{int(start) + 1}")
    assert not holder_is_dead(live)
    assert holder_is_dead(recycled)
    with StateStore.open(state_url) as store:
        store.acquire_lease("job:Nightly", live, 60)
        with pytest.raises(LeaseHeldError):
            store.acquire_lease("job:Nightly", default_holder("jobs run"), 60)
        store.acquire_lease("job:Recycled", recycled, 600)
        taken = store.acquire_lease("job:Recycled", default_holder("jobs run"), 60)
        assert store.lease("job:Recycled").holder == taken.holder  # type: ignore[union-attr]


def test_a_heartbeat_keeps_a_short_lease_and_reports_a_lost_one(state_url: str) -> None:
    with StateStore.open(state_url) as store:
        me, other = default_holder("me"), default_holder("other")
        store.acquire_lease("mapping:CURRENCY", me, 0.6)
        token = CancelToken()
        with LeaseHeartbeat(lambda: store.renew_lease("mapping:CURRENCY", me, 0.6),
                            "mapping:CURRENCY", 0.6, token=token) as beat:
            time.sleep(2.0)
            with pytest.raises(LeaseHeldError):
                store.acquire_lease("mapping:CURRENCY", other, 60)
        assert beat.lost == "" and beat.renewals >= 4 and not token.cancelled

        # The heartbeat stopped (a frozen process): the lease expires and another takes it.
        time.sleep(0.8)
        store.acquire_lease("mapping:CURRENCY", other, 60)
        token = CancelToken()
        with LeaseHeartbeat(lambda: store.renew_lease("mapping:CURRENCY", me, 0.6),
                            "mapping:CURRENCY", 0.6, token=token) as beat:
            deadline = time.monotonic() + 5
            while not beat.lost and time.monotonic() < deadline:
                time.sleep(0.05)
        assert "no longer held" in beat.lost and other in beat.lost
        with guarded(token), pytest.raises(SyncCancelled, match="the lease was lost"):
            check_cancelled(None, "writing CURRENCY to CRM")
        check_cancelled(None, "outside the guarded block")  # the guard ends with the block
        assert store.lease("mapping:CURRENCY").holder == other  # type: ignore[union-attr]


def test_an_expired_lease_nobody_took_is_lost_too(state_url: str) -> None:
    """Renewing after expiry is refused even when no one took it: another caller may have
    checked, found it free, and be about to start."""
    with StateStore.open(state_url) as store:
        me = default_holder("me")
        store.acquire_lease("job:Nightly", me, 0.3)
        time.sleep(0.5)
        with pytest.raises(LeaseHeldError, match="expired"):
            store.renew_lease("job:Nightly", me, 0.3)


def _unreachable(server: PgServer, database: str, seconds: float) -> None:
    """The database refuses every connection for ``seconds`` (its sessions are ended)."""
    import psycopg

    admin = f"host=127.0.0.1 port={server.port} user=postgres dbname=postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false')
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                     "WHERE datname = %s AND pid <> pg_backend_pid()", (database,))
        time.sleep(seconds)
        conn.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true')


@pytest.mark.parametrize("outage_s, kept", [(1.2, True), (4.0, False)])
def test_a_heartbeat_retries_through_an_outage_until_the_lease_would_expire(
        pg_server: PgServer, outage_s: float, kept: bool) -> None:
    """The database unreachable for less than the lease's lifetime: renewals fail and are
    retried, and the lease is kept; for longer: it is reported lost (never silently)."""
    url = pg_server.create_database()
    with StateStore.open(url) as store:
        me = default_holder("me")
        store.acquire_lease("mapping:ITEM", me, 3.0)
        beat = LeaseHeartbeat(lambda: store.renew_lease("mapping:ITEM", me, 3.0),
                              "mapping:ITEM", 3.0, token=CancelToken()).start()
        try:
            time.sleep(0.8)
            _unreachable(pg_server, url.rsplit("/", 1)[1], outage_s)
            time.sleep(2.5)
        finally:
            beat.stop()
        if kept:
            assert beat.lost == "" and beat.failures >= 1 and beat.renewals >= 2
            assert store.lease("mapping:ITEM").holder == me  # type: ignore[union-attr]
        else:
            assert "could not be renewed before it expired" in beat.lost
