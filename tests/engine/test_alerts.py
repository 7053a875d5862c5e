"""Alerts end to end: real runs on the sandbox, the rules over the real state database, a local
webhook receiver and a local SMTP server (aiosmtpd) hearing each alert once.

Each rule fires under the condition it describes — many failed records (account creation
refused by a revoked privilege), a held conflict, a skipped record, an unusual number of
changes, a run far slower than usual (every request delayed), a job without success, a
watermark that stops moving — and a condition that persists is not sent twice.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from nav_crm_ops import Workspace, open_workspace
from nav_crm_ops.config import AlertSettings, load_config, write_config
from nav_crm_ops.connectors.models import WriteOp
from nav_crm_ops.sandbox import Sandbox

HOOK_ENV = "NAV_CRM_OPS_TEST_ALERT_HOOK"


class Receiver:
    """A Teams/Slack-like incoming webhook on loopback: keeps every JSON body it is sent."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        received = self.bodies

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                received.append(json.loads(self.rfile.read(length)))
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"1")

            def log_message(self, *_: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook/secret-token"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def texts(self) -> list[str]:
        return [str(body["text"]) for body in self.bodies]


@pytest.fixture
def receiver(monkeypatch: pytest.MonkeyPatch) -> Iterator[Receiver]:
    hook = Receiver()
    monkeypatch.setenv(HOOK_ENV, hook.url)
    yield hook
    hook.server.shutdown()


def _with_alerts(workspace_dir: Path, **settings: Any) -> Workspace:
    """The workspace with ``[alerts]`` set as an operator writes it in nav_crm_ops.toml."""
    settings = {"webhook_url_env": HOOK_ENV, **settings}
    config = load_config(workspace_dir)
    write_config(config.model_copy(update={"alerts": AlertSettings(**settings)}), workspace_dir)
    assert "[alerts]" in (workspace_dir / "nav_crm_ops.toml").read_text()
    return open_workspace(workspace_dir)


def _open(ws: Workspace) -> list[tuple[str, str]]:
    frame = ws.alerts()
    return sorted(zip(frame["rule"].to_list(), frame["subject"].to_list(), strict=True))


def test_many_failed_records_alert_once_and_clear_after_a_good_run(
        workspace_dir: Path, fresh_sandbox: Sandbox, receiver: Receiver) -> None:
    ws = _with_alerts(workspace_dir, failed_ratio=0.5, failed_min_records=2,
                      skipped_backlog=1000)
    ws.sync_all(["CURRENCY", "SALESPEOPLE"])
    fresh_sandbox.set_privileges(["prvCreateAccount"])  # CRM refuses every new account
    first = ws.sync("CUSTOMER")
    assert first.failed >= 2
    assert _open(ws) == [("failed_ratio", "CUSTOMER")]  # evaluated after the run
    [text] = receiver.texts()
    assert "many records failed — CUSTOMER" in text and "records failed in the run" in text
    assert "Where to look: nav-crm-ops errors --mapping 'CUSTOMER'" in text
    card = receiver.bodies[0]["attachments"][0]
    assert card["contentType"] == "application/vnd.microsoft.card.adaptive"

    ws.sync("CUSTOMER")  # still failing: the same alert, touched, not sent again
    assert len(receiver.bodies) == 1
    [row] = ws.alerts().iter_rows(named=True)
    assert row["seen_count"] >= 2 and row["notified"] == "webhook: sent"

    fresh_sandbox.set_privileges(())
    ws.unskip("CUSTOMER")  # twice failed: skipped; back into the retry pass
    ws.sync("CUSTOMER")  # the retry pass creates them: the condition cleared
    assert _open(ws) == []
    resolved = ws.alerts(state="resolved")
    assert resolved["rule"].to_list() == ["failed_ratio"]
    assert len(receiver.bodies) == 1
    assert HOOK_ENV not in text and "secret-token" not in json.dumps(ws.alerts(state=None)
                                                                      .to_dicts())
    ws.close()


def _conflict(ws: Workspace, number: str, city_nav: str, city_crm: str) -> None:
    coupling = ws.store.couplings_frame("CUSTOMER").filter(pl.col("nav_key") == number)
    nav_id, crm_id = coupling["nav_id"].item(), coupling["crm_id"].item()
    people = ws.connections.dataverse.read("systemusers", select=["systemuserid"],
                                           filter="accessmode ne 4 and isdisabled eq false")
    with ws.connections.dataverse.acting_as(str(people["systemuserid"][0])) as person:
        [crm] = person.write([WriteOp.update("accounts", crm_id, {"address1_city": city_crm})])
    [nav] = ws.connections.business_central.write([WriteOp.update("customers", nav_id,
                                                                  {"city": city_nav})])
    assert crm.ok and nav.ok


def test_backlogs_of_held_conflicts_and_skipped_records(
        workspace_dir: Path, receiver: Receiver) -> None:
    """CRONUS holds customers BC refuses or CRM cannot take (a country BC does not know, a
    name too long, salespeople without a CRM user): they fail on the first sync and are
    skipped when they fail again."""
    ws = _with_alerts(workspace_dir, conflict_backlog=1, skipped_backlog=5,
                      failed_ratio=1.0, failed_min_records=1000)
    ws.sync_all(["CURRENCY", "SALESPEOPLE", "CUSTOMER"])
    assert _open(ws) == []  # failed once: in the retry pass, not skipped yet
    _conflict(ws, "20000", "York", "Leeds")
    ws.sync("CUSTOMER")
    assert _open(ws) == [("conflict_backlog", "CUSTOMER"), ("skipped_backlog", "CUSTOMER")]
    texts = sorted(receiver.texts())
    assert len(texts) == 2
    assert "1 held conflicts (the same field changed on both sides)" in texts[0]
    assert "skipped records" in texts[1] and "Unskip and retry" in texts[1]

    ws.unskip("CUSTOMER")
    check = ws.check_alerts()  # as `nav-crm-ops alerts --check` does
    assert [a.rule for a in check.changes.resolved] == ["skipped_backlog"]
    assert _open(ws) == [("conflict_backlog", "CUSTOMER")]
    assert check.changes.ongoing == 1 and len(receiver.bodies) == 2
    ws.close()


def _edit_customers(ws: Workspace, count: int, tag: str) -> None:
    ids = ws.store.couplings_frame("CUSTOMER")["nav_id"].to_list()[:count]
    results = ws.connections.business_central.write(
        [WriteOp.update("customers", nav_id, {"city": f"{tag}{i}"}) for i, nav_id in
         enumerate(ids)])
    assert all(r.ok for r in results)


def test_unusual_change_counts_and_run_times(workspace_dir: Path, fresh_sandbox: Sandbox,
                                             receiver: Receiver) -> None:
    ws = _with_alerts(workspace_dir, count_factor=3.0, count_min_records=4,
                      runtime_factor=3.0, runtime_min_s=0)
    ws.sync_all(["CURRENCY", "SALESPEOPLE", "CUSTOMER"])
    for run in range(3):  # the usual: one customer changed per run
        _edit_customers(ws, 1, f"Usual{run}-")
        ws.sync("CUSTOMER")
    assert _open(ws) == []
    _edit_customers(ws, 8, "Bulk")  # a bulk import in BC
    fresh_sandbox.set_faults("rate=1,kinds=slow,slow=0.6-0.6,seed=1")  # every request slow
    try:
        ws.sync("CUSTOMER")
    finally:
        fresh_sandbox.set_faults(None)
    assert _open(ws) == [("count_deviation", "CUSTOMER"), ("runtime", "CUSTOMER")]
    texts = receiver.texts()
    assert any("changed 8 records where its last" in t for t in texts)
    assert any("took" in t and "median" in t for t in texts)
    ws.close()


def test_a_job_without_success_and_a_watermark_that_stops_moving(
        workspace_dir: Path, receiver: Receiver, cli: Any) -> None:
    ws = _with_alerts(workspace_dir, job_stale_hours=24, watermark_stuck_hours=1,
                      failed_ratio=1.0, failed_min_records=1000, skipped_backlog=1000)
    ws.sync_all(["CURRENCY", "SALESPEOPLE", "CUSTOMER"])
    code, _, _ = cli("jobs", "init", "-w", str(workspace_dir))
    assert code == 0
    stuck = (datetime.now(UTC) - timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
    for run in range(3):  # the watermark bug: BC changes arrive, the watermark stays
        _edit_customers(ws, 2, f"Stuck{run}-")
        ws.sync("CUSTOMER")
        ws.store.sync_watermarks.set("CUSTOMER", "nav", stuck)
    check = ws.check_alerts()
    assert [(a.rule, a.subject) for a in check.changes.raised] == [
        ("watermark_stuck", "CUSTOMER (Business Central)")]
    later = ws.check_alerts(now=datetime.now(UTC) + timedelta(hours=25))
    stale = sorted(a.subject for a in later.changes.raised)
    assert "CUSTOMER - Dynamics 365 Sales synchronization job" in stale  # never succeeded
    assert len(stale) >= 5  # every active job of the queue: none has run in 25 hours
    assert [a.rule for a in later.changes.resolved] == ["watermark_stuck"]  # no runs since
    code, out, _ = cli("alerts", "-w", str(workspace_dir), "--all", "--json")
    assert code == 0
    listed = json.loads(out)["alerts"]
    assert {(a["rule"], a["state"]) for a in listed} == {
        ("watermark_stuck", "resolved"), ("job_not_succeeded", "open")}
    assert all(a["where_to_look"] and a["message"] and a["title"] for a in listed)
    code, out, _ = cli("alerts", "-w", str(workspace_dir))
    assert code == 0
    assert "has not succeeded for 25 hours" in out and "where to look: nav-crm-ops jobs list" in out
    ws.close()


def test_alerts_by_email(workspace_dir: Path, fresh_sandbox: Sandbox,
                         monkeypatch: pytest.MonkeyPatch) -> None:
    from aiosmtpd.controller import Controller
    from aiosmtpd.handlers import Message

    received: list[Any] = []

    class Keep(Message):
        def handle_message(self, message: Any) -> None:
            received.append(message)

    monkeypatch.delenv(HOOK_ENV, raising=False)
    with socket.socket() as probe:  # a free loopback port for the mail server
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(Keep(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        ws = _with_alerts(workspace_dir, webhook_url_env=None, failed_ratio=0.5,
                          failed_min_records=2, skipped_backlog=1000,
                          email_to=("ops@cronus.example",),
                          smtp_host="127.0.0.1", smtp_port=port)
        ws.sync_all(["CURRENCY", "SALESPEOPLE"])
        fresh_sandbox.set_privileges(["prvCreateAccount"])
        ws.sync("CUSTOMER")
        ws.sync("CUSTOMER")
        assert len(received) == 1
        assert received[0]["To"] == "ops@cronus.example"
        assert "many records failed" in received[0]["Subject"]
        assert "Where to look" in received[0].get_payload()
        [row] = ws.alerts().iter_rows(named=True)
        assert row["notified"] == "email: sent"
        ws.close()
    finally:
        controller.stop()
