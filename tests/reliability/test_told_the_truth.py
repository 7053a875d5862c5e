"""Issue #14, item 9: the user is told the truth about skipped records, records a create
could not write, ids that do not exist and a service that never answers."""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from nav_crm_ops import WriteOp, load_config, open_workspace, write_config
from nav_crm_ops.cli import EXIT_BAD_INPUT, EXIT_FAILED_RECORDS, exit_code_for
from nav_crm_ops.config import HttpSettings
from nav_crm_ops.connectors.dataverse import Dataverse
from nav_crm_ops.connectors.factory import connect
from nav_crm_ops.connectors.http import RetryPolicy, ServiceClient
from nav_crm_ops.engine.workspace import Workspace
from nav_crm_ops.exceptions import SyncError, TransientError

CliRunner = Callable[..., tuple[int, str, str]]  # the `cli` fixture of tests/conftest.py


def text_of(cli: CliRunner, *argv: str) -> tuple[int, str]:
    code, out, err = cli(*argv)
    return code, out + err


Person = Callable[[Workspace], Dataverse]
TOO_LONG = "Too long a name for Business Central " + "x" * 120  # BC displayName holds 100


def crm_accounts_too_long(ws: Workspace, person: Person, count: int) -> list[str]:
    ids = [str(uuid.uuid4()) for _ in range(count)]
    written = person(ws).write([WriteOp.create("accounts", {
        "name": f"{TOO_LONG} {n}", "customertypecode": 3}, key=key)
        for n, key in enumerate(ids)])
    assert all(o.ok for o in written)
    return ids


def test_the_report_counts_every_skipped_record_and_exits_1(
        workspace_dir: Path, crm_person: Person, cli: CliRunner) -> None:
    with open_workspace(workspace_dir) as ws:
        ws.sync_all(["CURRENCY", "SALESPEOPLE", "CUSTOMER"])
        crm_accounts_too_long(ws, crm_person, 3)
        ws.sync("CUSTOMER")
        ws.sync("CUSTOMER")  # the second identical failure skips a record
        statuses = ws.failed_records("CUSTOMER")
        skipped = statuses.filter(statuses["state"] == "skipped").height
        assert skipped >= 3 and skipped == statuses.height  # the seed's failures too
    # The next run reads only some of them (those in its overlap window, if any): it used to
    # count only those and exit 0.
    code, text = text_of(cli, "sync", "CUSTOMER", "--no-progress", "-w", str(workspace_dir))
    assert code == EXIT_FAILED_RECORDS, text
    assert f"CUSTOMER: {skipped} record(s) skipped in total (" in text, text
    assert " of them came up in this run): they are not synchronized until restored" in text
    assert "nav-crm-ops unskip CUSTOMER" in text
    header, _, row = text.splitlines()[:3]
    assert row.split()[header.split().index("skipped")] == str(skipped)
    code, text = text_of(cli, "sync", "CUSTOMER", "--json", "-w", str(workspace_dir))
    assert code == EXIT_FAILED_RECORDS and f'"skipped_total": {skipped}' in text


def test_match_create_shows_why_a_record_was_not_created(
        workspace_dir: Path, crm_person: Person, cli: CliRunner) -> None:
    with open_workspace(workspace_dir) as ws:
        ws.sync_all(["CURRENCY", "SALESPEOPLE", "CUSTOMER"])
        [account] = crm_accounts_too_long(ws, crm_person, 1)
    code, text = text_of(cli, "match", "CUSTOMER", "--create", "--json", "-w",
                     str(workspace_dir))
    assert code == EXIT_FAILED_RECORDS, text
    rows = {row["source_id"]: row for row in json.loads(text)}
    mine = rows[account]
    assert mine["status"] == "failed", mine
    assert mine["message"].startswith("not created: ") and "100 characters" in mine["message"]
    assert all(r["message"] != "no record on the other side matches" for r in rows.values()
               if r["status"] == "failed")


def test_sync_now_with_ids_that_do_not_exist_fails_naming_them(
        workspace_dir: Path) -> None:
    ghost_nav, ghost_crm = str(uuid.uuid4()), str(uuid.uuid4())
    with open_workspace(workspace_dir) as ws:
        ws.sync_all(["CURRENCY", "SALESPEOPLE", "CUSTOMER"])
        real = ws.store.couplings_frame("CUSTOMER")["nav_id"].item(0)
        runs = ws.runs("CUSTOMER").height
        with pytest.raises(SyncError) as refused:
            ws.sync_now("CUSTOMER", nav_ids=[real, ghost_nav], crm_ids=[ghost_crm.upper()])
        assert ws.runs("CUSTOMER").height == runs  # nothing was synchronized
    message = str(refused.value)
    assert f"BC customers {ghost_nav}" in message and f"CRM account {ghost_crm}" in message
    assert real not in message and "check the ids" in message
    assert exit_code_for(refused.value) == EXIT_BAD_INPUT


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A service on 127.0.0.1 that accepts connections and never answers."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/api/data/v9.2/"
    stop.set()
    thread.join()
    for conn in accepted:
        conn.close()
    listener.close()


class NoAuth:
    def headers(self) -> dict[str, str]:
        return {}

    def invalidate(self) -> bool:
        return False


def test_a_service_that_never_answers_fails_within_the_stated_limit(silent_server: str) -> None:
    client = ServiceClient(silent_server, NoAuth(), service="dataverse", timeout=0.5,
                           retry=RetryPolicy(max_retries=1), sleep=lambda _s: None)
    started = time.monotonic()
    with pytest.raises(TransientError) as failed:
        client.request("GET", "accounts?$top=1", entity="accounts")
    elapsed = time.monotonic() - started
    client.close()
    message = str(failed.value)
    assert f"no answer from {silent_server}accounts within 0.5 s" in message, message
    assert "[http] timeout_s" in message and "nav_crm_ops.toml" in message
    assert elapsed < 10, elapsed  # two attempts of 0.5 s; generous bound


def test_the_timeout_is_stated_in_the_workspace_config(workspace_dir: Path) -> None:
    config = load_config(workspace_dir)
    assert config.http.timeout_s == 60.0
    with open_workspace(workspace_dir) as ws:
        assert ws.connections.dataverse.http.timeout_s == 60.0
    write_config(config.model_copy(update={"http": HttpSettings(timeout_s=7.5)}), workspace_dir)
    assert "timeout_s = 7.5" in (workspace_dir / "nav_crm_ops.toml").read_text()
    connections = connect(load_config(workspace_dir))
    clients = (connections.dataverse, connections.business_central,
               connections.business_central_custom)
    assert {c.http.timeout_s for c in clients} == {7.5}
    for client in clients:
        client.close()
