"""Fixtures of the job tests: a workspace whose services are never called (the generic test
notebooks do not connect), and the test notebooks' folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from nav_crm_ops.config import (
    AuthConfig,
    BusinessCentralConfig,
    DataverseConfig,
    WorkspaceConfig,
    write_config,
)

TEST_NOTEBOOKS = Path(__file__).parent / "notebooks"


@pytest.fixture
def offline_workspace(tmp_path: Path) -> Path:
    """A workspace folder with nav_crm_ops.toml and state in state.db; nothing listens at
    its URLs, so only jobs that never connect can run here."""
    auth = AuthConfig(authority="http://127.0.0.1:9/tenant", client_id="app",
                      client_secret_env="NAV_CRM_OPS_TEST_UNUSED_SECRET",
                      scope="http://127.0.0.1:9/crm/.default")
    config = WorkspaceConfig(
        business_central=BusinessCentralConfig(
            api_url="http://127.0.0.1:9/bc/api/v2.0/",
            company_id="00000000-0000-4000-8000-0000000000c0", auth=auth),
        dataverse=DataverseConfig(url="http://127.0.0.1:9/crm/api/data/v9.2/", auth=auth))
    root = tmp_path / "workspace"
    write_config(config, root)
    return root


@pytest.fixture
def test_notebooks() -> Path:
    return TEST_NOTEBOOKS
