"""Killing a sync in the middle of apply and running it again loses nothing and duplicates
nothing (the fast version; `make soak` runs many kill points)."""

from __future__ import annotations

import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest

from nav_crm_ops import open_workspace
from nav_crm_ops.sandbox import Sandbox

MAPPINGS = ["CURRENCY", "SALESPEOPLE", "UNIT OF MEASURE", "CUSTOMER", "CONTACT",
            "RESOURCE-PRODUCT", "ITEM-PRODUCT", "CUSTOMER STATISTICS"]


def _running(state: Path, mapping: str) -> bool:
    if not state.exists():
        return False
    try:
        with sqlite3.connect(state, timeout=1) as db:
            row = db.execute("SELECT count(*) FROM runs WHERE mapping = ?", (mapping,)).fetchone()
    except sqlite3.OperationalError:
        return False
    return bool(row and row[0])


def _kill_during_apply(workspace: Path, mapping: str, seed: int) -> int:
    process = subprocess.Popen(
        [sys.executable, "-m", "nav_crm_ops.cli", "sync", "--all", "--no-progress",
         "--workspace", str(workspace)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not _running(workspace / "state.db", mapping):
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
        assert time.monotonic() < deadline, "the sync never reached " + mapping
        time.sleep(0.05)
    time.sleep(random.Random(seed).uniform(0.0, 0.6))
    process.send_signal(signal.SIGKILL)
    return process.wait(timeout=30)


def test_killing_apply_and_running_again_leaves_no_duplicate_and_no_lost_change(
        workspace_dir: Path, fresh_sandbox: Sandbox) -> None:
    _crash_and_recover(workspace_dir, fresh_sandbox, "CUSTOMER", seed=11)


@pytest.mark.slow
@pytest.mark.parametrize("trial", range(20))
def test_crash_trials_at_different_points(workspace_dir: Path, fresh_sandbox: Sandbox,
                                          trial: int) -> None:
    mapping = ["CURRENCY", "CUSTOMER", "CONTACT", "ITEM-PRODUCT", "UNIT OF MEASURE"][trial % 5]
    _crash_and_recover(workspace_dir, fresh_sandbox, mapping, seed=100 + trial)


def _crash_and_recover(workspace_dir: Path, sandbox: Sandbox, mapping: str, *,
                       seed: int) -> None:
    sandbox.set_faults(f"rate=1.0,kinds=slow,seed={seed},slow=0.15-0.25")
    try:
        code = _kill_during_apply(workspace_dir, mapping, seed=seed)
    finally:
        sandbox.set_faults(None)
    assert code == -signal.SIGKILL
    with sqlite3.connect(workspace_dir / "state.db") as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    with open_workspace(workspace_dir) as ws:
        ws.sync_all()
        ws.sync_all()
        accounts = ws.connections.dataverse.read("accounts", select=["accountid", "name"])
        assert accounts.filter(pl.col("name").is_duplicated()).height == 0
        customers = ws.connections.business_central.read("customers",
                                                         select=["id", "displayName"])
        assert customers.filter(pl.col("displayName").is_duplicated()).height == 0
        products = ws.connections.dataverse.read("products", select=["productnumber"])
        assert products.filter(pl.col("productnumber").is_duplicated()).height == 0
        currencies = ws.connections.dataverse.read("transactioncurrencies",
                                                   select=["isocurrencycode"])
        assert currencies.filter(pl.col("isocurrencycode").is_duplicated()).height == 0
        for mapping in MAPPINGS:
            assert ws.compare(mapping).height == 0, mapping
        coupled = ws.store.couplings_frame("CUSTOMER")
        assert coupled.filter(pl.col("crm_id").is_duplicated()).height == 0
