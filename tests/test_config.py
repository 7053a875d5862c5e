"""Workspace config: round trip, clear errors, secrets named never stored."""

from __future__ import annotations

from pathlib import Path

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
