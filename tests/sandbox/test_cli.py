"""``nav-crm-ops sandbox`` as a real subprocess: banner, HTTP, ready file, status, errors."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[2]


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "nav_crm_ops.cli", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=120)


@dataclass
class Served:
    """A ``nav-crm-ops sandbox`` subprocess: its ready file's JSON, then its output."""

    process: subprocess.Popen[str]
    ready: dict[str, Any]
    out: str = ""
    err: str = ""


@contextmanager
def serving(tmp_path: Path, *options: str) -> Iterator[Served]:
    """Run ``nav-crm-ops sandbox --port 0 …`` until its ready file appears; SIGTERM after."""
    ready = tmp_path / "ready.json"
    process = subprocess.Popen(
        [sys.executable, "-m", "nav_crm_ops.cli", "sandbox", "--port", "0", *options,
         "--data", str(tmp_path / "data"), "--ready-file", str(ready)],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    served = Served(process, {})
    try:
        deadline = time.monotonic() + 60
        while not ready.exists():
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "sandbox did not become ready"
            time.sleep(0.1)
        served.ready = json.loads(ready.read_text())
        yield served
    finally:
        process.send_signal(signal.SIGTERM)
        served.out, served.err = process.communicate(timeout=30)


def test_sandbox_command_prints_urls_credentials_and_serves(tmp_path: Path) -> None:
    with serving(tmp_path, "--seed", "cronus") as served:
        process, urls = served.process, served.ready
        assert "client_secret" not in urls
        assert urls["pid"] == process.pid
        identity = json.loads((tmp_path / "data" / "sandbox.json").read_text())
        token = httpx.post(urls["token_url"], data={
            "grant_type": "client_credentials", "client_id": urls["client_id"],
            "client_secret": identity["client_secret"], "scope": urls["bc_scope"]})
        assert token.status_code == 200
        companies = httpx.get(urls["bc_api_url"] + "companies", headers={
            "Authorization": f"Bearer {token.json()['access_token']}"})
        assert companies.json()["value"][0]["id"] == urls["company_id"]
    out, err = served.out, served.err
    assert process.returncode == 0, err
    port = re.search(r"listening on http://127\.0\.0\.1:(\d+)", out)
    assert port and int(port.group(1)) > 0
    assert urls["base_url"].endswith(f":{port.group(1)}")
    assert f"Client secret (sandbox only)  {identity['client_secret']}" in out
    for label in ("Dataverse Web API", "Business Central API", "BC custom API", "Token URL",
                  "Client id", "Tenant", "Environment", "Company"):
        assert label in out
    assert not (tmp_path / "ready.json").exists()


def test_status_reads_the_data_dir_without_a_server(tmp_path: Path) -> None:
    missing = run_cli("sandbox", "status", "--data", str(tmp_path / "none"))
    assert missing.returncode != 0 and "no sandbox data" in missing.stderr
    env_dir = tmp_path / "data"
    from nav_crm_ops.sandbox import Sandbox

    with Sandbox(data_dir=env_dir, port=0):
        pass
    result = run_cli("sandbox", "status", "--data", str(env_dir), "--json")
    assert result.returncode == 0, result.stderr
    counts = json.loads(result.stdout)["counts"]
    assert counts["business_central:customers"] > 0
    text = run_cli("sandbox", "status", "--data", str(env_dir))
    assert re.search(r"business_central:customers\s+\d+", text.stdout)


def test_bad_fault_spec_is_a_usage_error(tmp_path: Path) -> None:
    result = run_cli("sandbox", "--port", "0", "--data", str(tmp_path),
                     "--faults", "rate=0.1,kinds=fire")
    assert result.returncode == 2
    assert "fire" in result.stderr and "--faults" in result.stderr
    assert not (tmp_path / "sandbox.db").exists()


def test_the_nav_2018_profile_leads_with_the_page_services(tmp_path: Path) -> None:
    """``nav-crm-ops sandbox --profile nav2018``: the banner starts with the NAV 2018 OData v4
    URL, user and web service access key, and names the init command for a NAV workspace."""
    with serving(tmp_path, "--profile", "nav2018") as served:
        base = served.ready["base_url"]
    assert served.process.returncode == 0, served.err
    lines = served.out.splitlines()
    assert lines[1].lstrip().startswith("NAV 2018 OData v4") and "NAV user" in lines[2]
    key = re.search(r"NAV key \(sandbox only\)\s+(\S+)", served.out)
    assert key and len(key.group(1)) == 44
    assert f"nav-crm-ops init --dir ws --profile nav2018 --sandbox {base}" in served.out
