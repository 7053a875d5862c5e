"""``nav-crm-ops listen`` in-process against the CRONUS sandbox over real loopback HTTP: it
subscribes, answers the handshake, wakes the jobs of a changed Business Central table,
refuses a notification with the wrong clientState, wakes on Dataverse changes made by a person
(not on the integration's own), renews, and unsubscribes on close.

Protocol: https://learn.microsoft.com/dynamics365/business-central/dev-itpro/api-reference/v2.0/dynamics-subscriptions
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from nav_crm_ops import WriteOp, open_workspace
from nav_crm_ops.config import load_config
from nav_crm_ops.connectors.dataverse import Dataverse
from nav_crm_ops.engine.mapping import MappingSet
from nav_crm_ops.engine.workspace import Workspace
from nav_crm_ops.jobs import JobQueue
from nav_crm_ops.jobs.defaults import default_jobs
from nav_crm_ops.jobs.listen import Listener, ListenOptions
from nav_crm_ops.sandbox import Sandbox
from nav_crm_ops.sandbox.business_central.subscriptions import webhook_hub
from nav_crm_ops.store.subscriptions import state_hash

pytestmark = pytest.mark.timeout(180)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def queue_customer_job(workspace: Path) -> str:
    """Only the CUSTOMER sync job (bidirectional: customers in BC, accounts in CRM)."""
    config = load_config(workspace)
    from nav_crm_ops.store import StateStore

    with StateStore.open(config.state_url) as store:
        entry = next(e for e in default_jobs(MappingSet.for_workspace(config))
                     if e.mapping == "CUSTOMER")
        JobQueue(store).add(entry)
        return entry.name


@pytest.fixture
def listener(workspace_dir: Path, fresh_sandbox: Sandbox) -> Iterator[Listener]:
    webhook_hub(fresh_sandbox.info).delay_s = 0.3
    queue_customer_job(workspace_dir)
    port = free_port()
    made = Listener(load_config(workspace_dir),
                    ListenOptions(public_url=f"http://127.0.0.1:{port}/bc-hook", port=port,
                                  poll_s=1))
    made.start()
    yield made
    made.close()


def wait_woken(listener: Listener, timeout_s: float = 10) -> dict[str, str]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        marks = listener.repo.woken()
        if marks:
            return marks
        time.sleep(0.1)
    return {}


def test_a_bc_customer_edit_wakes_the_customer_job_through_the_webhook(
        listener: Listener, workspace_dir: Path, fresh_sandbox: Sandbox) -> None:
    stored = listener.repo.listed()
    assert [row["resource"].rsplit("/", 1)[1] for row in stored] == ["customers"]
    assert stored[0]["client_state_hash"] == state_hash(listener._client_state)
    assert listener._client_state not in str(stored)
    with open_workspace(workspace_dir) as ws:
        bc = ws.connections.business_central
        customer = bc.read("customers", select=["id", "displayName"], top=1)
        outcome = bc.write([WriteOp.update("customers", str(customer["id"][0]),
                                           {"displayName": "Woken by a webhook"})])
        assert outcome[0].ok, outcome
    marks = wait_woken(listener)
    assert list(marks) == ["CUSTOMER - Dynamics 365 Sales synchronization job"]
    assert "Business Central webhook: customers changed" in next(iter(marks.values()))


def test_the_handshake_is_answered_and_a_wrong_client_state_is_refused(
        listener: Listener, caplog: pytest.LogCaptureFixture) -> None:
    host, port = listener.address
    url = f"http://{host}:{port}/bc-hook"
    handshake = httpx.post(url, params={"validationToken": "tok-123"})
    assert (handshake.status_code, handshake.text) == (200, "tok-123")
    sub_id = listener.repo.listed()[0]["id"]
    forged = {"value": [{"subscriptionId": sub_id, "clientState": "guessed-secret",
                         "resource": "api/v2.0/companies(x)/customers(y)",
                         "changeType": "updated"}]}
    with caplog.at_level("WARNING", logger="nav_crm_ops.listen"):
        refused = httpx.post(url, json=forged)
    assert refused.status_code == 401
    assert listener.repo.woken() == {}
    assert "wrong clientState" in caplog.text and "guessed-secret" not in caplog.text
    assert listener._client_state not in caplog.text
    assert httpx.post(url, content=b"not json").status_code == 400


def test_dataverse_changes_by_a_person_wake_the_job_the_integrations_own_do_not(
        listener: Listener, workspace_dir: Path,
        crm_person: Callable[[Workspace], Dataverse]) -> None:
    listener.poll_dataverse()  # the first poll only takes the delta link
    assert listener.repo.delta_link("accounts")
    assert listener.repo.woken() == {}
    with open_workspace(workspace_dir) as ws:
        own = ws.connections.dataverse
        account = own.read("accounts", select=["accountid"], top=2)
        ids = [str(v) for v in account["accountid"]]
        assert own.write([WriteOp.update("accounts", ids[0], {"telephone1": "0100"})])[0].ok
        listener.poll_dataverse()
        assert listener.repo.woken() == {}, "the integration's own write woke a job"
        person = crm_person(ws)
        assert person.write([WriteOp.update("accounts", ids[1], {"telephone1": "0101"})])[0].ok
        listener.poll_dataverse()
    marks = listener.repo.woken()
    assert list(marks) == ["CUSTOMER - Dynamics 365 Sales synchronization job"]
    assert "Dataverse change tracking: accounts changed" in next(iter(marks.values()))


def test_renewal_before_expiry_and_unsubscribe_on_close(
        workspace_dir: Path, fresh_sandbox: Sandbox) -> None:
    hub = webhook_hub(fresh_sandbox.info)
    queue_customer_job(workspace_dir)
    port = free_port()
    listener = Listener(load_config(workspace_dir), ListenOptions(
        public_url=f"http://127.0.0.1:{port}/bc-hook", port=port, renew_before_s=10 ** 9))
    try:
        listener.start()
        before = listener.repo.listed()[0]
        time.sleep(1.1)  # expirationDateTime has whole seconds
        listener.keep_alive()  # everything is "close to expiry": renewed with a handshake
        after = listener.repo.listed()[0]
        assert after["id"] == before["id"] and after["expires_at"] > before["expires_at"]
        assert after["renewed_at"]
        with hub._lock:  # BC dropped it (e.g. the subscriber failed a delivery)
            hub._subs.clear()
        listener.keep_alive()
        assert [row["id"] for row in listener.repo.listed()] != [before["id"]]
        assert len(hub._subs) == 1
    finally:
        listener.close()
    assert hub._subs == {} and listener.repo.listed() == []


def test_the_runner_runs_a_woken_job_now_and_leaves_a_held_one_alone(
        offline_workspace: Path, test_notebooks: Path, tmp_path: Path) -> None:
    """``run_due`` with wake marks (what ``listen`` writes): the sleeping Ready job runs at
    once, the On Hold one does not; both marks are cleared; ``run_loop``'s sleep ends early."""
    import threading
    from datetime import timedelta

    from nav_crm_ops.jobs import ON_HOLD, JobEntry, JobRunner
    from nav_crm_ops.jobs.queue import utc_clock
    from nav_crm_ops.jobs.recurrence import Recurrence
    from nav_crm_ops.store.subscriptions import subscriptions_of

    later = utc_clock() + timedelta(hours=10)
    with JobRunner(offline_workspace) as runner:
        for name, status in (("Woken", "Ready"), ("Held", ON_HOLD)):
            runner.queue.add(JobEntry(
                name=name, kind="notebook", notebook=str(test_notebooks / "passing.ipynb"),
                status=status, recurrence=Recurrence(every_minutes=600), next_run_at=later,
                parameters={"sleep_s": 0, "marker_path": str(tmp_path / f"{name}.txt")}))
        wakes = subscriptions_of(runner.store)
        assert runner.run_due() == []
        wakes.wake(["Woken", "Held"], "Business Central webhook: customers changed")
        runs = runner.run_due()
        assert [(r.job, r.outcome.value) for r in runs] == [("Woken", "succeeded")]
        assert wakes.woken() == {}
        assert runner.queue.get("Held").run_count == 0
        assert runner.queue.get("Woken").next_run_at > utc_clock() + timedelta(hours=9)

        stop = threading.Event()
        threading.Timer(1.0, lambda: wakes.wake(["Held"], "test")).start()
        started = time.monotonic()
        runner._wait_or_wake(600, stop)
        assert time.monotonic() - started < 10


def test_listen_refuses_a_public_url_that_is_not_absolute(
        cli: Callable[..., tuple[int, str, str]], offline_workspace: Path) -> None:
    code, out, err = cli("listen", "--public-url", "sync.example.com/hook",
                         "-w", str(offline_workspace))
    assert code == 2 and "--public-url" in err and "absolute http(s) URL" in err
    assert "Traceback" not in out + err
