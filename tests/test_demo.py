"""`make demo`: the default job queue run through papermill against a fresh CRONUS sandbox."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from nav_crm_ops.config import load_config
from nav_crm_ops.demo import run_demo
from nav_crm_ops.engine.mapping import MappingSet
from nav_crm_ops.jobs import sync_job_name
from nav_crm_ops.sandbox import SandboxInfo
from nav_crm_ops.sandbox.nav import nav_credentials
from nav_crm_ops.secrets import Secret


def secret_of(directory: Path) -> str:
    return str(json.loads((directory / "sandbox" / "sandbox.json").read_text())["client_secret"])


def assert_secret_in_no_workspace_file(directory: Path) -> None:
    secret = secret_of(directory).encode()
    written = [p for p in (directory / "workspace").rglob("*") if p.is_file()]
    assert any(p.suffix == ".ipynb" for p in written) and any(p.suffix == ".html" for p in written)
    leaked = [p for p in written if secret in p.read_bytes()]
    assert leaked == []


def test_quick_demo_runs_jobs_through_papermill_and_shows_failed_records(tmp_path: Path) -> None:
    lines: list[str] = []
    runs = run_demo(tmp_path, echo=lines.append, mappings=["CURRENCY", "CUSTOMER"])
    assert [r.job for r in runs] == [sync_job_name("CURRENCY"), sync_job_name("CUSTOMER")]
    assert all(r.outcome.completed for r in runs), [r.error for r in runs]
    # the dirty CRONUS customers fail on purpose: the run says so, it does not call it failed
    assert [r.outcome.value for r in runs] == ["succeeded", "succeeded_with_failures"]
    assert all(r.output_notebook is not None and r.output_notebook.exists() for r in runs)
    assert sum(r.counts["failed"] for r in runs) > 0
    text = "\n".join(lines)
    assert "make lab" in text and sync_job_name("CUSTOMER") in text
    assert "inserted" in text and "output notebook" in text
    assert_secret_in_no_workspace_file(tmp_path)
    config = (tmp_path / "workspace" / "nav_crm_ops.toml").read_text()
    assert "client_secret_env" in config


@pytest.mark.slow
def test_cli_demo_runs_every_default_job_and_exits_zero(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "nav_crm_ops.cli", "demo", "--dir", str(tmp_path)],
        capture_output=True, text=True, timeout=600, check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    for mapping in MappingSet.load().dependency_order():
        assert sync_job_name(mapping) in result.stdout
    assert "succeeded" in result.stdout and "make lab" in result.stdout
    secret = secret_of(tmp_path)
    assert secret not in result.stdout + result.stderr
    assert_secret_in_no_workspace_file(tmp_path)


def test_cli_demo_on_nav_2018_runs_the_nav_job_queue(tmp_path: Path) -> None:
    """``nav-crm-ops demo --profile nav2018``: the same job queue on the sandbox's NAV 2018
    page web services (Basic with the web service access key, named in the config only)."""
    result = subprocess.run(
        [sys.executable, "-m", "nav_crm_ops.cli", "demo", "--profile", "nav2018", "--dir",
         str(tmp_path)], capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "NAV 2018 http://127.0.0.1:" in result.stdout and "NAVCRM-SYNC" in result.stdout
    config = load_config(tmp_path / "workspace")
    assert config.workspace.profile.value == "nav2018"
    mappings = MappingSet.for_workspace(config).dependency_order()
    assert len(mappings) == 12
    table = result.stdout[result.stdout.index("\njob "):]
    for mapping in mappings:
        line = next(r for r in table.splitlines() if r.startswith(sync_job_name(mapping)))
        assert " succeeded " in line, line
    assert_secret_in_no_workspace_file(tmp_path)
    stored = json.loads((tmp_path / "sandbox" / "sandbox.json").read_text())
    info = SandboxInfo(base_url="", **{**stored, "client_secret": Secret(stored["client_secret"])})
    key = nav_credentials(info).access_key.reveal()
    assert key not in result.stdout + result.stderr
    assert not [p for p in (tmp_path / "workspace").rglob("*")
                if p.is_file() and key.encode() in p.read_bytes()]
