"""`make demo`'s main job, run in-process and through the real console script."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from nav_crm_ops.demo import run_demo
from nav_crm_ops.engine.mapping import MappingSet


def test_demo_reads_every_default_mapping_on_both_sides(tmp_path: Path) -> None:
    lines: list[str] = []
    rows = run_demo(tmp_path, echo=lines.append)
    assert [r.mapping for r in rows] == [m.name for m in MappingSet.load()]
    by_name = {r.mapping: r for r in rows}
    assert by_name["CUSTOMER"].nav_records >= 25
    assert by_name["CURRENCY"].crm_records < by_name["CURRENCY"].nav_records
    config = (tmp_path / "workspace" / "nav_crm_ops.toml").read_text()
    assert "client_secret_env" in config
    assert any(line.startswith("Requests:") for line in lines)


def test_cli_demo_exits_zero_and_prints_the_table(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "nav_crm_ops.cli", "demo", "--dir", str(tmp_path)],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "CUSTOMER" in result.stdout and "accounts" in result.stdout
    secret = json.loads((tmp_path / "sandbox" / "sandbox.json").read_text())["client_secret"]
    assert secret not in result.stdout + result.stderr
    assert secret not in (tmp_path / "workspace" / "nav_crm_ops.toml").read_text()
