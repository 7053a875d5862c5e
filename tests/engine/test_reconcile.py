"""Drift checks on the sandbox: ``nav-crm-ops reconcile`` finds pairs edited behind the
watermark (an edit that keeps an old modified-on, as a bulk import or a database fix does),
tells them from pending edits the next sync handles, finds couplings to deleted records, and
heals the drift through the normal planner; the ``drift`` alert fires once and clears.

Edits behind the watermark are written as the sandbox itself (its store), keeping an old
``lastModifiedDateTime`` / ``modifiedon``: exactly what an incremental read can never see.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from nav_crm_ops import Workspace, open_workspace
from nav_crm_ops.config import AlertSettings, load_config, write_config
from nav_crm_ops.connectors import Dataverse
from nav_crm_ops.connectors.models import WriteOp
from nav_crm_ops.engine.progress import ProgressEvent
from nav_crm_ops.engine.reconcile import PairClass
from nav_crm_ops.sandbox import Sandbox
from tests.conftest import CliRunner
from tests.engine.test_alerts import HOOK_ENV, Receiver

OLD = "2020-01-02T03:04:05.000Z"
"""A modified-on long before any watermark of the test."""
MAPPINGS = ["CURRENCY", "SALESPEOPLE", "CUSTOMER"]


@pytest.fixture
def receiver(monkeypatch: pytest.MonkeyPatch) -> Iterator[Receiver]:
    hook = Receiver()
    monkeypatch.setenv(HOOK_ENV, hook.url)
    yield hook
    hook.server.shutdown()


def _synced(workspace_dir: Path) -> Workspace:
    """The workspace (alerts to the test's webhook; the other rules' thresholds out of reach
    of CRONUS's dirty records) after a first sync of customers."""
    config = load_config(workspace_dir)
    write_config(config.model_copy(update={"alerts": AlertSettings(
        webhook_url_env=HOOK_ENV, failed_ratio=1.0, failed_min_records=1000,
        skipped_backlog=1000, conflict_backlog=1000)}), workspace_dir)
    ws = open_workspace(workspace_dir)
    ws.sync_all(MAPPINGS)
    return ws


def _pairs(ws: Workspace, count: int) -> list[dict[str, Any]]:
    """``count`` coupled customers, by number."""
    frame = ws.store.couplings_frame("CUSTOMER", columns=["nav_id", "crm_id", "nav_key"])
    return frame.sort("nav_key").head(count).to_dicts()


def _behind(sandbox: Sandbox, side: str, key: str, changes: dict[str, Any]) -> None:
    """Edit a record as the service itself, keeping an old modified-on (behind the watermark)."""
    entity, modified = (("business_central:customers", "lastModifiedDateTime") if side == "nav"
                        else ("dataverse:account", "modifiedon"))
    sandbox.context.store.update(entity, key, {**changes, modified: OLD})


def _classes(ws: Workspace) -> dict[str, str]:
    result = ws.reconcile("CUSTOMER").result
    return {str(p.nav_key): p.kind.value for p in result.pairs}


def _drift_alerts(ws: Workspace, state: str | None = "open") -> list[str]:
    frame = ws.alerts(state=state)
    return frame.filter(pl.col("rule") == "drift")["subject"].to_list()


def _city(ws: Workspace, person: Dataverse, pair: dict[str, Any]) -> tuple[str, str]:
    nav = ws.connections.business_central.read("customers", select=["city"],
                                               filter=f"id eq {pair['nav_id']}")
    crm = person.read("accounts", select=["address1_city"],
                      filter=f"accountid eq {pair['crm_id']}")
    return str(nav["city"][0]), str(crm["address1_city"][0])


def test_reconcile_finds_edits_behind_the_watermark_and_heals_them(
        workspace_dir: Path, fresh_sandbox: Sandbox, cli: CliRunner,
        crm_person: Callable[[Workspace], Dataverse], receiver: Receiver) -> None:
    ws = _synced(workspace_dir)
    before = ws.reconcile("CUSTOMER").result
    assert before.remaining == 0 and before.counts[PairClass.MISSED] == 0
    missed_nav, missed_nav2, missed_crm, pending, gone, diverged = _pairs(ws, 6)
    person = crm_person(ws)
    _behind(fresh_sandbox, "nav", missed_nav["nav_id"], {"city": "Missedby"})
    _behind(fresh_sandbox, "nav", missed_nav2["nav_id"], {"city": "Bypassham"})
    _behind(fresh_sandbox, "crm", missed_crm["crm_id"], {"address1_city": "Importon"})
    _behind(fresh_sandbox, "nav", diverged["nav_id"], {"city": "Northgate"})
    _behind(fresh_sandbox, "crm", diverged["crm_id"], {"address1_city": "Southgate"})
    [edit] = ws.connections.business_central.write([WriteOp.update(
        "customers", pending["nav_id"], {"city": "Pendleton"})])
    [deleted] = person.write([WriteOp.delete("accounts", gone["crm_id"])])
    assert edit.ok and deleted.ok

    expected = {missed_nav["nav_key"]: "missed", missed_nav2["nav_key"]: "missed",
                missed_crm["nav_key"]: "missed", pending["nav_key"]: "pending",
                gone["nav_key"]: "partner_gone", diverged["nav_key"]: "diverged"}
    assert _classes(ws) == expected
    assert _drift_alerts(ws) == ["CUSTOMER"]
    drift_texts = [t for t in receiver.texts() if "pairs out of step" in t]
    assert len(drift_texts) == 1 and "edited behind the watermark" in drift_texts[0]

    ws.sync("CUSTOMER")  # a normal sync handles the pending edit, never the missed ones
    assert _city(ws, person, pending) == ("Pendleton", "Pendleton")
    assert _city(ws, person, missed_nav)[1] != "Missedby"
    expected.pop(pending["nav_key"])
    assert _classes(ws) == expected
    assert len([t for t in receiver.texts() if "pairs out of step" in t]) == 1  # not again

    code, out, err = cli("reconcile", "CUSTOMER", "--apply", "--no-progress",
                         "-w", str(workspace_dir))
    assert code == 1, out + err  # the diverged pair is held, the gone one needs a person
    assert "3 healed" in out and "deletion_conflict is 'none'" in out
    assert _city(ws, person, missed_nav) == ("Missedby", "Missedby")
    assert _city(ws, person, missed_nav2) == ("Bypassham", "Bypassham")
    assert _city(ws, person, missed_crm) == ("Importon", "Importon")
    assert _city(ws, person, diverged) == ("Northgate", "Southgate")  # held, not overwritten
    assert _classes(ws) == {gone["nav_key"]: "partner_gone",
                            diverged["nav_key"]: "diverged"}

    code, out, _ = cli("uncouple", "CUSTOMER", "--nav-id", gone["nav_id"],
                       "-w", str(workspace_dir))
    assert code == 0
    ws.sync_now("CUSTOMER", nav_ids=[diverged["nav_id"]], direction="to_crm")
    final = ws.reconcile("CUSTOMER").result
    assert final.remaining == 0 and final.counts[PairClass.IN_STEP] == final.compared
    assert _drift_alerts(ws) == [] and _drift_alerts(ws, "resolved") == ["CUSTOMER"]
    assert len([t for t in receiver.texts() if "pairs out of step" in t]) == 1
    code, out, _ = cli("reconcile", "CUSTOMER", "--last", "--json", "-w", str(workspace_dir))
    assert code == 0 and json.loads(out)["in_step"] == final.compared
    ws.close()


def test_a_healing_plan_is_saved_and_applied_with_sync_plan(
        workspace_dir: Path, fresh_sandbox: Sandbox, cli: CliRunner,
        crm_person: Callable[[Workspace], Dataverse], receiver: Receiver) -> None:
    ws = _synced(workspace_dir)
    [pair] = _pairs(ws, 1)
    _behind(fresh_sandbox, "nav", pair["nav_id"], {"city": "Quietham"})
    plan = workspace_dir / "heal.parquet"
    code, out, _ = cli("reconcile", "CUSTOMER", "--out", str(plan), "--no-progress",
                       "-w", str(workspace_dir))
    assert code == 1 and plan.exists() and "sync --plan" in out
    person = crm_person(ws)
    assert _city(ws, person, pair)[1] != "Quietham"  # only planned
    code, out, _ = cli("sync", "--plan", str(plan), "--no-progress", "-w", str(workspace_dir))
    assert code == 0, out
    assert _city(ws, person, pair) == ("Quietham", "Quietham")
    code, out, _ = cli("reconcile", "CUSTOMER", "--json", "--no-progress",
                       "-w", str(workspace_dir))
    assert code == 0 and json.loads(out)["remaining"] == 0
    ws.close()


def test_reconcile_reads_in_pages_and_counts_its_requests(workspace_dir: Path) -> None:
    ws = _synced(workspace_dir)
    nav = ws.connections.business_central
    customers = nav.read("customers", select=["id"], filter="blocked eq ' '").height
    nav.page_size = 7
    events: list[ProgressEvent] = []
    result = ws.reconcile("CUSTOMER", progress=events.append).result
    assert customers > 14 and math.ceil(customers / 7) <= result.pages <= customers // 7 + 1
    assert result.compared == ws.store.count_couplings("CUSTOMER") < customers
    assert result.requests >= result.pages + 2  # BC pages, and CRM partners read by id
    steps = [e.done for e in events if e.stage == "reconcile"]
    assert len(steps) >= result.pages and steps == sorted(steps) and steps[-1] == result.compared
    ws.close()


def test_bad_input_exits_2_and_writes_nothing(workspace_dir: Path, cli: CliRunner) -> None:
    code, _, err = cli("reconcile", "NO_SUCH", "-w", str(workspace_dir))
    assert code == 2 and "no mapping named" in err and "Traceback" not in err
    code, _, err = cli("reconcile", "CUSTOMER", "--apply", "--out",
                       str(workspace_dir / "x.parquet"), "-w", str(workspace_dir))
    assert code == 2 and "not both" in err
    code, _, err = cli("reconcile", "SALES ORDERS", "-w", str(workspace_dir))
    assert code == 2 and "create_only" in err and "Traceback" not in err
    code, _, err = cli("reconcile", "CUSTOMER", "--out", str(workspace_dir / "no" / "x.parquet"),
                       "-w", str(workspace_dir))
    assert code == 2 and "does not exist" in err
    code, _, err = cli("reconcile", "CUSTOMER", "--last", "-w", str(workspace_dir))
    assert code == 2 and "no reconcile of CUSTOMER" in err
    with open_workspace(workspace_dir) as ws:
        assert ws.store.reconcile_runs.latest("CUSTOMER") is None
