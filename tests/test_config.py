"""Workspace config: round trip, clear errors, secrets named never stored."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from nav_crm_ops.config import load_config, write_config
from nav_crm_ops.connectors.factory import connect
from nav_crm_ops.demo import SANDBOX_SECRET_ENV, sandbox_workspace_config
from nav_crm_ops.exceptions import ConfigError
from nav_crm_ops.sandbox import Sandbox


def test_config_round_trips_and_never_holds_the_secret(sandbox: Sandbox, tmp_path: Path) -> None:
    config = sandbox_workspace_config(sandbox.info, tmp_path)
    path = write_config(config, tmp_path)
    text = path.read_text()
    assert sandbox.info.client_secret.reveal() not in text
    assert SANDBOX_SECRET_ENV in text
    loaded = load_config(tmp_path)
    assert loaded.business_central.company_id == sandbox.info.company_id
    assert loaded.dataverse.url == sandbox.info.dataverse_url
    assert loaded.state_url == f"sqlite:///{tmp_path.resolve() / 'state.db'}"


def test_missing_secret_variable_is_named(sandbox: Sandbox, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NAV_CRM_OPS_TEST_MISSING", raising=False)
    config = sandbox_workspace_config(sandbox.info, tmp_path, secret_env="NAV_CRM_OPS_TEST_MISSING")
    with pytest.raises(ConfigError, match="NAV_CRM_OPS_TEST_MISSING is not set"):
        connect(config)


def test_bad_toml_and_missing_keys_say_what_to_fix(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="nav-crm-ops init"):
        load_config(tmp_path)
    (tmp_path / "nav_crm_ops.toml").write_text("[dataverse\nurl=")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(tmp_path)
    (tmp_path / "nav_crm_ops.toml").write_text('[dataverse]\nurl = "x"\n')
    with pytest.raises(ConfigError, match="business_central"):
        load_config(tmp_path)


def test_connections_read_both_services(sandbox: Sandbox, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SANDBOX_SECRET_ENV, sandbox.info.client_secret.reveal())
    connections = connect(sandbox_workspace_config(sandbox.info, tmp_path))
    customers = connections.business_central.read("customers", select=["id", "number"])
    resources = connections.business_central_for("navcrm/sync/v1.0").read("resources",
                                                                          select=["id", "number"])
    accounts = connections.dataverse.read("accounts", select=["accountid", "name"])
    assert "10000" in customers["number"].to_list()
    assert resources.height > 0 and accounts.height > 0


def test_values_are_checked_as_they_load_and_secrets_are_found_by_variable(
        sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from nav_crm_ops.config import WorkspaceConfig, configured_secrets

    config = sandbox_workspace_config(sandbox.info, tmp_path)
    data = config.model_dump(mode="json")
    data["business_central"]["company_id"] = sandbox.info.company_id.upper()
    data["business_central"]["custom_api_url"] = ""
    data["dataverse"]["web_url"] = ""
    data["dataverse"]["ignore_own_changes"] = False
    loaded = WorkspaceConfig.model_validate(data)  # upper-case GUID, empty optional URLs
    assert loaded.business_central.company_id == sandbox.info.company_id.upper()
    assert loaded.http.timeout_s == 60.0 and loaded.dataverse.ignore_own_changes is False
    for section, key, value in (("business_central", "web_client_url", "businesscentral.com"),
                                ("dataverse", "web_url", "file:///tmp/x"),
                                ("dataverse", "ignore_own_changes", 1)):
        bad = {**data, section: {**data[section], key: value}}
        with pytest.raises(ValueError, match=key):
            WorkspaceConfig.model_validate(bad)
    monkeypatch.setenv(SANDBOX_SECRET_ENV, "the-value")
    found = configured_secrets(config)
    assert [setting for setting, _ in found] == [
        f"dataverse.auth ({SANDBOX_SECRET_ENV})", f"business_central.auth ({SANDBOX_SECRET_ENV})"]
    monkeypatch.delenv(SANDBOX_SECRET_ENV)
    assert configured_secrets(config) == []


NAV_WORKSPACE = """
[workspace]
name = "nav"
profile = "nav2018"

[nav]
odata_url = "https://navserver:7048/DynamicsNAV110/ODataV4"
company_name = "CRONUS International Ltd."

[nav.auth]
kind = "basic"
client_id = "SYNC"
client_secret_env = "NAV_CRM_OPS_NAV_KEY"

[dataverse]
url = "https://cronus.crm4.dynamics.com/api/data/v9.2/"

[dataverse.auth]
authority = "https://login.microsoftonline.com/contoso.onmicrosoft.com"
client_id = "00000000-0000-0000-0000-000000000001"
client_secret_env = "NAV_CRM_OPS_CRM_SECRET"
scope = "https://cronus.crm4.dynamics.com/.default"
"""


def test_a_nav_workspace_has_a_nav_section_and_no_business_central(tmp_path: Path) -> None:
    from nav_crm_ops.config import DEFAULT_NAV_PAGES, ErpProfile

    (tmp_path / "nav_crm_ops.toml").write_text(NAV_WORKSPACE)
    config = load_config(tmp_path)
    assert config.workspace.profile is ErpProfile.NAV2018 and config.nav is not None
    assert config.nav.odata_url.endswith("/ODataV4/") and config.nav.batch is False
    assert config.nav.pages == DEFAULT_NAV_PAGES
    assert config.erp_company == "CRONUS International Ltd."
    assert config.erp_auth.client_id == "SYNC"
    with pytest.raises(ConfigError, match=r"profile nav2018: it has no \[business_central\]"):
        _ = config.bc
    written = write_config(config, tmp_path / "copy").read_text()
    assert "[nav.auth]" in written and "business_central" not in written
    assert load_config(tmp_path / "copy") == config.model_copy(update={"root": (
        tmp_path / "copy").resolve()})


@pytest.mark.parametrize(("change", "message"), [
    (lambda t: t.replace('profile = "nav2018"', 'profile = "bc-online"'),
     r"profile 'bc-online' needs a \[business_central\] section"),
    (lambda t: t.replace("[nav]", "[nav_]").replace("[nav.auth]", "[nav_.auth]"),
     r"profile 'nav2018' needs a \[nav\] section"),
    (lambda t: t.replace('kind = "basic"', 'kind = "client_credentials"'),
     r'kind = "basic" \(NavUserPassword'),
    (lambda t: t.replace("DynamicsNAV110/ODataV4", "DynamicsNAV110/OData"),
     "ends in /ODataV4/"),
    (lambda t: t.replace('profile = "nav2018"', 'profile = "nav2009"'), "bc-online"),
])
def test_nav_workspace_mistakes_say_what_to_write(tmp_path: Path, change: Any,
                                                  message: str) -> None:
    (tmp_path / "nav_crm_ops.toml").write_text(change(NAV_WORKSPACE))
    with pytest.raises(ConfigError, match=message):
        load_config(tmp_path)


def test_the_default_nav_pages_are_those_the_sandbox_publishes() -> None:
    """The service names a NAV workspace asks for by default are the ones the NAV sandbox
    (standing in for a NAV administrator's Web Services page) publishes for each table."""
    from nav_crm_ops.config import DEFAULT_NAV_PAGES
    from nav_crm_ops.sandbox.nav.pages import PAGES

    # the statistics page is computed from customers: it stands for customerStatistics
    published = {page.entity_set: page.service for page in PAGES}
    assert published == DEFAULT_NAV_PAGES
