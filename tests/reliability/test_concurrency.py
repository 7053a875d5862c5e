"""Two processes syncing the same mapping: the second is refused and told who holds it."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from nav_crm_ops.cli import EXIT_LEASE
from nav_crm_ops.sandbox import Sandbox


def _lease_holder(state: Path, name: str) -> str | None:
    if not state.exists():
        return None
    try:
        with sqlite3.connect(state, timeout=1) as db:
            row = db.execute("SELECT holder FROM leases WHERE name = ?", (name,)).fetchone()
    except sqlite3.OperationalError:
        return None
    return None if row is None else str(row[0])


def test_a_second_sync_process_of_the_same_mapping_is_refused(
        workspace_dir: Path, fresh_sandbox: Sandbox) -> None:
    command = [sys.executable, "-m", "nav_crm_ops.cli", "sync", "CURRENCY", "--no-progress",
               "--workspace", str(workspace_dir)]
    fresh_sandbox.set_faults("rate=1.0,kinds=slow,seed=2,slow=0.4-0.5")
    first = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while _lease_holder(workspace_dir / "state.db", "mapping:CURRENCY") is None:
            assert first.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        second = subprocess.run(command, capture_output=True, text=True, timeout=120)
    finally:
        fresh_sandbox.set_faults(None)
        first.wait(timeout=120)
    assert second.returncode == EXIT_LEASE
    assert f":{first.pid} #" in second.stderr and "sync CURRENCY" in second.stderr
    assert "wait for it to finish" in second.stderr
    assert first.returncode == 0
