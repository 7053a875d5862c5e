"""``nav-crm-ops sandbox`` as a real subprocess: banner, HTTP, ready file, status, errors."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "nav_crm_ops.cli", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=120)


def test_sandbox_command_prints_urls_credentials_and_serves(tmp_path: Path) -> None:
    ready = tmp_path / "ready.json"
    process = subprocess.Popen(
        [sys.executable, "-m", "nav_crm_ops.cli", "sandbox", "--port", "0", "--seed", "cronus",
         "--data", str(tmp_path / "data"), "--ready-file", str(ready)],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not ready.exists():
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "sandbox did not become ready"
            time.sleep(0.1)
        urls = json.loads(ready.read_text())
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
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    port = re.search(r"listening on http://127\.0\.0\.1:(\d+)", out)
    assert port and int(port.group(1)) > 0
    assert urls["base_url"].endswith(f":{port.group(1)}")
    assert f"Client secret (sandbox only)  {identity['client_secret']}" in out
    for label in ("Dataverse Web API", "Business Central API", "BC custom API", "Token URL",
                  "Client id", "Tenant", "Environment", "Company"):
        assert label in out
    assert not ready.exists()


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
