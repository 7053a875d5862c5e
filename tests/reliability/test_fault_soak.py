"""Fault soak: repeated `sync --all` under injected faults while a driver edits both sides.

After the faults stop and a final run, both sides agree on every mapped field of every coupled
record, nothing is duplicated, every driver edit is on both sides (the CRM value where the
same field was edited on both sides: the workspace resolves conflicts with crm_wins), and
every failure is in the error log. The fast variant runs in `make test`; `make soak` runs the
long one (5,000 generated customers, more rounds).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
import pytest

from nav_crm_ops import WriteOp, load_config, open_workspace, write_config
from nav_crm_ops.connectors.dataverse import Dataverse
from nav_crm_ops.engine.workspace import Workspace
from nav_crm_ops.sandbox import Sandbox

MAPPINGS = ["CURRENCY", "SALESPEOPLE", "UNIT OF MEASURE", "CUSTOMER", "CONTACT",
            "RESOURCE-PRODUCT", "ITEM-PRODUCT", "CUSTOMER STATISTICS"]
SYNCED = [m for m in MAPPINGS if m != "CONTACT"]


@dataclass
class Driver:
    """Edits random coupled customers on both sides between runs and remembers what it wrote."""

    rng: random.Random
    expected: dict[tuple[str, str], str] = field(default_factory=dict)
    edits: int = 0
    person: Dataverse | None = None

    def edit(self, ws: Workspace, round_no: int, count: int) -> None:
        couplings = ws.store.couplings_frame("CUSTOMER").select("nav_id", "crm_id").rows()
        for nav_id, crm_id in self.rng.sample(couplings, min(count, len(couplings))):
            choice = self.rng.choice(("nav", "crm", "both", "same"))
            stamp = f"{round_no}-{self.rng.randrange(10**6)}"
            if choice in ("nav", "both", "same"):
                phone = f"+1 555 {stamp}"
                self._write(ws, "nav", nav_id, {"phoneNumber": phone})
                self.expected[(nav_id, "telephone1")] = phone
            if choice in ("crm", "both"):
                site = f"https://s{stamp}.example"
                self._write(ws, "crm", crm_id, {"websiteurl": site})
                self.expected[(nav_id, "websiteurl")] = site
            if choice == "same":  # the same field on both sides: CRM wins (crm_wins policy)
                phone = f"+44 20 {stamp}"
                self._write(ws, "crm", crm_id, {"telephone1": phone})
                self.expected[(nav_id, "telephone1")] = phone

    def _person(self, ws: Workspace) -> Dataverse:
        """CRM edits are a salesperson's (impersonated): the engine ignores its own changes."""
        if self.person is None:
            people = ws.connections.dataverse.read(
                "systemusers", select=["systemuserid"],
                filter="accessmode ne 4 and isdisabled eq false", top=1)
            self.person = ws.connections.dataverse.acting_as(str(people["systemuserid"][0]))
        return self.person

    def _write(self, ws: Workspace, side: str, key: str, payload: dict[str, object]) -> None:
        if side == "nav":
            outcome = ws.connections.business_central.write([
                WriteOp.update("customers", key, payload)])[0]
        else:
            outcome = self._person(ws).write([WriteOp.update("accounts", key, payload)])[0]
        assert outcome.ok, outcome.error
        self.edits += 1


def _crm_wins(workspace: Path) -> None:
    (workspace / "soak.yaml").write_text(
        "- {name: CUSTOMER, update_conflict: crm_wins}\n"
        "- {name: CONTACT, update_conflict: crm_wins}\n", encoding="utf-8")
    config = load_config(workspace)
    write_config(config.model_copy(update={"workspace": config.workspace.model_copy(
        update={"mapping_files": ("soak.yaml",)})}), workspace)


def soak(sandbox: Sandbox, workspace: Path, *, rounds: int, edits: int, seed: int,
         rate: float = 0.05) -> dict[str, int]:
    _crm_wins(workspace)
    driver = Driver(random.Random(seed))
    totals = {"conflicts": 0, "failures": 0, "retries": 0}
    faults = 0
    with open_workspace(workspace) as ws:
        seeded_accounts = set(ws.connections.dataverse.read(
            "accounts", select=["accountid"])["accountid"].to_list())
        seeded_customers = set(ws.connections.business_central.read(
            "customers", select=["id"])["id"].to_list())
        ws.sync_all(SYNCED)
        try:
            for round_no in range(rounds):
                sandbox.set_faults(None)
                driver.edit(ws, round_no, edits)
                sandbox.set_faults(f"rate={rate},kinds=503+reset+slow+429+commit504+commitreset,"
                                   f"seed={seed + round_no},slow=0.05-0.2")
                report = ws.sync_all(SYNCED)
                faults += sum(((sandbox.context.status().get("faults") or {})
                               .get("injected") or {}).values())
                totals["conflicts"] += report.counts["conflicts"]
                totals["failures"] += report.counts["failed"]
                totals["retries"] += report.counts["retries"]
        finally:
            sandbox.set_faults(None)
        ws.sync_all(SYNCED)
        ws.sync_all(SYNCED)
        for mapping in SYNCED:
            assert ws.compare(mapping).height == 0, (mapping, ws.compare(mapping).head(3))
        # nothing duplicated: every record the sync created is coupled (a lost or repeated
        # create would leave an uncoupled copy), and no BC number is on two CRM accounts
        coupled = ws.store.couplings_frame("CUSTOMER")
        accounts = ws.connections.dataverse.read("accounts",
                                                 select=["accountid", "accountnumber"])
        created_crm = set(accounts["accountid"].to_list()) - seeded_accounts
        assert created_crm <= set(coupled["crm_id"].to_list())
        numbered = accounts.filter(pl.col("accountnumber").is_not_null())
        assert numbered.filter(pl.col("accountnumber").is_duplicated()).height == 0
        customers = ws.connections.business_central.read("customers", select=["id"])
        created_nav = set(customers["id"].to_list()) - seeded_customers
        assert created_nav <= set(coupled["nav_id"].to_list())
        pairs = dict(ws.store.couplings_frame("CUSTOMER").select("nav_id", "crm_id").iter_rows())
        navs = ws.connections.business_central.read_by_ids(
            "customers", "id", list({n for n, _ in driver.expected}),
            select=["id", "phoneNumber"])
        crms = ws.connections.dataverse.read_by_ids(
            "accounts", "accountid", [pairs[n] for n, _ in driver.expected],
            select=["accountid", "telephone1", "websiteurl"])
        nav_phone = dict(navs.select("id", "phoneNumber").iter_rows())
        crm_rows = {r["accountid"]: r for r in crms.iter_rows(named=True)}
        for (nav_id, fld), value in driver.expected.items():
            assert crm_rows[pairs[nav_id]][fld] == value, (nav_id, fld)
            if fld == "telephone1":
                assert nav_phone[nav_id] == value, (nav_id, fld)
        logged = ws.errors().height
        assert logged >= totals["failures"]
    figures = {"edits": driver.edits, **totals, "faults_injected": faults}
    print("soak figures:", figures)
    return figures


def test_fault_soak_fast(workspace_dir: Path, fresh_sandbox: Sandbox) -> None:
    figures = soak(fresh_sandbox, workspace_dir, rounds=3, edits=6, seed=7, rate=0.2)
    assert figures["edits"] >= 6 and figures["faults_injected"] > 0


@pytest.mark.slow
def test_fault_soak_long(workspace_dir: Path, fresh_sandbox: Sandbox) -> None:
    fresh_sandbox.reset("scale:5000,seed=3")
    figures = soak(fresh_sandbox, workspace_dir, rounds=12, edits=40, seed=11)
    assert figures["edits"] >= 200
