"""The sandbox application as a whole: admin routes, reset, persistence across restarts."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from nav_crm_ops.exceptions import SandboxError
from nav_crm_ops.sandbox import Sandbox


def bc_headers(sb: Sandbox) -> dict[str, str]:
    info = sb.info
    token = httpx.post(info.token_url, data={
        "grant_type": "client_credentials", "client_id": info.client_id,
        "client_secret": info.client_secret.reveal(), "scope": info.bc_scope,
    }).json()["access_token"]
    return {"Authorization": f"Bearer {token}"}


def test_status_reports_rows_per_table(sandbox: Sandbox) -> None:
    status = httpx.get(sandbox.info.base_url + "/_sandbox/status").json()
    counts = status["counts"]
    assert counts["business_central:companies"] == 1
    assert counts["business_central:customers"] > 0 and counts["dataverse:account"] > 0
    assert status["tenant"] == sandbox.info.tenant
    assert "client_secret" not in str(status)
    assert sandbox.info.client_secret.reveal() not in str(status)


def test_reset_endpoint_restores_the_seed(fresh_sandbox: Sandbox) -> None:
    info = fresh_sandbox.info
    headers = bc_headers(fresh_sandbox)
    customers = f"{info.bc_api_url}companies({info.company_id})/customers"
    before = httpx.get(customers + "/$count", headers=headers).text
    created = httpx.post(customers, headers=headers, json={"displayName": "Temporary"})
    assert created.status_code == 201
    assert httpx.get(customers + "/$count", headers=headers).text == str(int(before) + 1)
    reset = httpx.post(info.base_url + "/_sandbox/reset", params={"seed": "cronus"})
    assert reset.status_code == 200
    assert reset.json()["counts"]["business_central:customers"] == int(before)
    assert httpx.get(customers + "/$count", headers=headers).text == before
    bad = httpx.post(info.base_url + "/_sandbox/reset", params={"seed": "nonsense"})
    assert bad.status_code == 400 and "nonsense" in bad.json()["error"]
    assert httpx.get(customers + "/$count", headers=headers).text == before


def test_data_survives_a_restart_and_reset_flag_drops_it(tmp_path: Path) -> None:
    with Sandbox(data_dir=tmp_path, port=0) as first:
        info = first.info
        url = f"{info.bc_api_url}companies({info.company_id})/customers"
        created = httpx.post(url, headers=bc_headers(first), json={"displayName": "Kept"})
        key = created.json()["id"]
    with Sandbox(data_dir=tmp_path, port=0) as second:
        url = f"{second.info.bc_api_url}companies({second.info.company_id})/customers({key})"
        assert httpx.get(url, headers=bc_headers(second)).json()["displayName"] == "Kept"
    with Sandbox(data_dir=tmp_path, port=0, reset=True) as third:
        url = f"{third.info.bc_api_url}companies({third.info.company_id})/customers({key})"
        assert httpx.get(url, headers=bc_headers(third)).status_code == 404


def test_bad_fault_spec_fails_before_serving(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="kinds"):
        Sandbox(data_dir=tmp_path, port=0, faults="rate=0.1,kinds=explode")


def test_unknown_seed_is_a_sandbox_error(tmp_path: Path) -> None:
    with pytest.raises(SandboxError, match="seed"):
        Sandbox(data_dir=tmp_path, port=0, seed="bogus")
