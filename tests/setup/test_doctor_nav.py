"""``nav-crm-ops doctor`` on a NAV 2018 workspace (``profile = "nav2018"``), against the
sandbox's OData v4 page web services over real loopback HTTP: the published pages are read
from the service root's ``$metadata`` and the companies from its ``Company`` entity set, and
each problem names what to fix in NAV or in the workspace."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from nav_crm_ops.demo import SANDBOX_NAV_KEY_ENV
from nav_crm_ops.sandbox import Sandbox
from nav_crm_ops.sandbox.nav import nav_credentials

CliRunner = Callable[..., tuple[int, str, str]]  # the `cli` fixture of tests/conftest.py


def _edit(workspace: Path, old: str, new: str) -> None:
    toml = workspace / "nav_crm_ops.toml"
    text = toml.read_text()
    assert old in text
    toml.write_text(text.replace(old, new))


def test_doctor_on_a_nav_workspace_lists_its_mappings_ready(
        nav_workspace: Path, cli: CliRunner, fresh_sandbox: Sandbox) -> None:
    code, out, err = cli("doctor", "-w", str(nav_workspace))
    assert code == 0, out + err
    assert "✓ nav authentication: credentials accepted; 1 company listed" in out
    assert "✓ nav OData v4 page web services: $metadata of" in out and "published pages" in out
    assert "✓ nav company: company 'CRONUS International Ltd.' is listed" in out
    assert "✓ CUSTOMER: ready" in out and "✗" not in out
    key = nav_credentials(fresh_sandbox.info).access_key.reveal()
    assert key not in out + err
    report = json.loads(cli("doctor", "-w", str(nav_workspace), "--json")[1])
    assert report["ready"] is True
    assert {c["service"] for c in report["checks"]} >= {"nav", "dataverse"}


def test_an_unpublished_page_and_a_misspelt_field_are_named(nav_workspace: Path,
                                                            cli: CliRunner) -> None:
    _edit(nav_workspace, 'customers = "Customer"', 'customers = "Customers"')
    (nav_workspace / "overrides.yaml").write_text(
        "- name: CONTACT\n  profiles:\n    nav2018:\n      fields:\n"
        "        - {name: telephone1, nav: Phone_Number}\n")
    _edit(nav_workspace, "mapping_files = []", 'mapping_files = ["overrides.yaml"]')
    code, out, _ = cli("doctor", "-w", str(nav_workspace))
    assert code == 1
    assert "✗ CUSTOMER: not ready" in out
    assert "no page is published as 'Customers' (for customers)" in out
    assert "publish the page as web service 'Customers' on NAV's Web Services page" in out
    assert "[nav.pages] customers" in out and "did you mean Customer?" in out
    assert "✗ CONTACT: not ready" in out
    assert "NAV Contact has no property 'Phone_Number'" in out
    assert "did you mean Phone_No?" in out and "overrides.yaml" in out
    assert "✓ CURRENCY: ready" in out


def test_a_wrong_company_and_a_wrong_access_key(nav_workspace: Path, cli: CliRunner,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    _edit(nav_workspace, 'company_name = "CRONUS International Ltd."',
          'company_name = "CRONUS UK Ltd."')
    code, out, _ = cli("doctor", "-w", str(nav_workspace))
    assert code == 1
    assert ("✗ nav company: company 'CRONUS UK Ltd.' is not among the companies this user "
            "can see: 'CRONUS International Ltd.'") in out
    assert "set nav.company_name in nav_crm_ops.toml" in out
    monkeypatch.setenv(SANDBOX_NAV_KEY_ENV, "not-the-key")
    code, out, err = cli("doctor", "-w", str(nav_workspace))
    assert code == 3, out + err
    assert "✗ nav authentication" in out and "not-the-key" not in out + err
    assert "web service access key" in out


def test_price_lists_computed_by_the_connection_need_their_pages(nav_workspace: Path,
                                                                 cli: CliRunner) -> None:
    """NAV 2018 has no price-list table: the connection computes the lists from the Sales
    Prices, Customer Price Groups and General Ledger Setup pages, so those must be published
    (the computed Sales_Price_Id / Price_List_Code are never looked for on the server)."""
    _edit(nav_workspace, 'generalLedgerSetup = "GeneralLedgerSetup"',
          'generalLedgerSetup = "GLSetup"')
    code, out, _ = cli("doctor", "-w", str(nav_workspace))
    assert code == 1
    assert "✗ CUSTPRCGRP-PRICE: not ready" in out
    assert "no page is published as 'GLSetup' (for generalLedgerSetup)" in out
    assert "✓ SALESPRC-PRODUCTPRICE: ready" in out
    assert "Sales_Price_Id" not in out and "Price_List_Code" not in out
