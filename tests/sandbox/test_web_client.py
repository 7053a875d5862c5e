"""Record links open: the web-client links of a coupled record (``Workspace.record_links``) in
the formats of the real web clients, answered by the sandbox with a read-only record page
(Business Central after ``init --sandbox``, NAV 2018 for a ``nav2018`` workspace, Dynamics
365 for both), and 404 pages for records that do not exist."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

import httpx
import polars as pl
import pytest

from nav_crm_ops import open_workspace
from nav_crm_ops.config import load_config
from nav_crm_ops.demo import SANDBOX_SECRET_ENV
from nav_crm_ops.engine.workspace import Workspace
from nav_crm_ops.sandbox import Sandbox

CliRunner = Callable[..., tuple[int, str, str]]  # the `cli` fixture of tests/conftest.py
CANNON = "The Cannon Group PLC"  # CRONUS customer 10000, account of the same name in CRM


def _sync_customers(ws: Workspace) -> tuple[str, str]:
    ws.sync_all(["CURRENCY", "SALESPEOPLE", "CUSTOMER"])
    coupling = ws.store.couplings_frame("CUSTOMER").filter(pl.col("nav_key") == "10000")
    assert coupling.height == 1, "customer 10000 is not coupled"
    return coupling["nav_id"].item(), coupling["crm_id"].item()


def _page(url: str) -> httpx.Response:
    reply = httpx.get(url, timeout=30)
    assert reply.headers["content-type"].startswith("text/html")
    return reply


@pytest.fixture
def initialized(fresh_sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                cli: CliRunner) -> Path:
    """A workspace written by ``nav-crm-ops init --sandbox URL``."""
    monkeypatch.setenv(SANDBOX_SECRET_ENV, fresh_sandbox.info.client_secret.reveal())
    code, _, err = cli("init", "--dir", str(tmp_path / "ws"), "--sandbox",
                       fresh_sandbox.info.base_url)
    assert code == 0, err
    return tmp_path / "ws"


def test_init_sandbox_fills_the_web_client_urls(initialized: Path, fresh_sandbox: Sandbox,
                                                tmp_path: Path, cli: CliRunner) -> None:
    info = fresh_sandbox.info
    config = load_config(initialized)
    assert config.business_central is not None
    assert config.business_central.web_client_url == \
        f"{info.base_url}/businesscentral/{info.tenant}/{info.environment}"
    assert config.dataverse.web_url == f"{info.base_url}/crm"
    code, _, _ = cli("init", "--dir", str(tmp_path / "nav"), "--profile", "nav2018",
                     "--sandbox", info.base_url)
    nav = load_config(tmp_path / "nav").nav
    assert code == 0 and nav is not None and nav.web_client_url == f"{info.base_url}/nav/"


def test_business_central_and_dynamics_365_links_open_the_coupled_records(
        initialized: Path, fresh_sandbox: Sandbox) -> None:
    info = fresh_sandbox.info
    with open_workspace(initialized) as ws:
        nav_id, crm_id = _sync_customers(ws)
        links = ws.record_links("CUSTOMER", nav_id=nav_id, crm_id=crm_id)
    company = quote(info.company_name)
    assert links["business_central"] == (
        f"{info.base_url}/businesscentral/{info.tenant}/{info.environment}/?company={company}"
        f"&page=21&filter=%27SystemId%27%20IS%20%27{nav_id}%27")
    assert links["dynamics_365"] == (f"{info.base_url}/crm/main.aspx?etn=account"
                                     f"&pagetype=entityrecord&id={crm_id}")
    for url in links.values():
        reply = _page(url)
        assert reply.status_code == 200 and CANNON in reply.text and "10000" in reply.text
    bc = _page(links["business_central"]).text
    assert "Customer Card" in bc and "displayName" in bc
    crm = _page(links["dynamics_365"]).text
    assert "account" in crm and crm_id in crm and "address1_city" in crm

    # A filter by the card's key field works too, with the key in braces or not for CRM.
    by_number = f"{links['business_central'].split('&filter=')[0]}&filter=" + \
        quote("'No.' IS '10000'")
    assert CANNON in _page(by_number).text
    braced = links["dynamics_365"].replace(crm_id, quote("{" + crm_id.upper() + "}"))
    assert CANNON in _page(braced).text


def test_unknown_records_answer_a_404_page(initialized: Path, fresh_sandbox: Sandbox) -> None:
    info = fresh_sandbox.info
    unknown = str(uuid.uuid4())
    with open_workspace(initialized) as ws:
        links = ws.record_links("CUSTOMER", nav_id=unknown, crm_id=unknown)
    for url in links.values():
        reply = _page(url)
        assert reply.status_code == 404 and unknown in reply.text
    base = f"{info.base_url}/businesscentral/{info.tenant}/{info.environment}/"
    for query, says in ((f"company={quote('Other Ltd.')}&page=21", "Company 'Other Ltd.'"),
                        ("page=99999&filter=" + quote("'No.' IS '1'"), "no page '99999'"),
                        ("page=21&bookmark=27%3bEgAAAAJ7", "filter link"),
                        ("page=21&filter=" + quote("'Nope' IS '1'"), "no field 'Nope'")):
        reply = _page(base + "?" + query)
        assert reply.status_code == 404 and says in reply.text, reply.text
    reply = _page(f"{info.base_url}/crm/main.aspx?etn=nosuchtable&pagetype=entityrecord&id=x")
    assert reply.status_code == 404 and "no table 'nosuchtable'" in reply.text


def test_the_apis_still_demand_their_credentials(fresh_sandbox: Sandbox) -> None:
    """The record pages are no way around the APIs' authentication."""
    info = fresh_sandbox.info
    assert httpx.get(f"{info.dataverse_url}accounts", timeout=30).status_code == 401
    assert httpx.get(f"{info.bc_api_url}companies", timeout=30).status_code == 401
    assert httpx.get(f"{info.nav_url}Company", timeout=30).status_code == 401


def test_nav_2018_links_open_the_coupled_records(nav_workspace: Path,
                                                 fresh_sandbox: Sandbox) -> None:
    """A NAV workspace's ERP link is NAV 2018's web client format, filtering the card page
    by its key field (NAV 2018 tables have no SystemId)."""
    info = fresh_sandbox.info
    with open_workspace(nav_workspace) as ws:
        nav_id, crm_id = _sync_customers(ws)
        links = ws.record_links("CUSTOMER", nav_id=nav_id, crm_id=crm_id)
        missing = ws.record_links("CUSTOMER", nav_id="NOPE")["nav"]
    assert nav_id == "10000" and "business_central" not in links
    assert links["nav"] == (f"{info.base_url}/nav/?company={quote(info.company_name)}&page=21"
                            "&filter=%27No.%27%20IS%20%2710000%27")
    for url in links.values():
        reply = _page(url)
        assert reply.status_code == 200 and CANNON in reply.text
    assert "Customer Card" in _page(links["nav"]).text and "Phone_No" in _page(links["nav"]).text
    reply = _page(missing)
    assert reply.status_code == 404 and "NOPE" in reply.text
