"""``make demo``: start the CRONUS sandbox, create a workspace for it and run the main job.

Until the synchronization engine lands (issue 4) the main job is the connection check that
every sync starts with: authenticate to both services through msal, then read each default
mapping's records on both sides through the connectors, exactly as a sync reads them.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .config import (
    AuthConfig,
    BusinessCentralConfig,
    DataverseConfig,
    WorkspaceConfig,
    WorkspaceSettings,
    write_config,
)
from .connectors.factory import connect
from .engine.mapping import MappingSet
from .sandbox import Sandbox, SandboxInfo

__all__ = ["SANDBOX_SECRET_ENV", "DemoRow", "run_demo", "sandbox_workspace_config"]

SANDBOX_SECRET_ENV = "NAV_CRM_OPS_SANDBOX_SECRET"


def sandbox_workspace_config(info: SandboxInfo, root: Path,
                             secret_env: str = SANDBOX_SECRET_ENV) -> WorkspaceConfig:
    """A workspace config pointing at a running sandbox; the secret is named, not stored."""
    return WorkspaceConfig(
        workspace=WorkspaceSettings(name="cronus-sandbox"),
        business_central=BusinessCentralConfig(
            api_url=info.bc_api_url, custom_api_url=info.bc_custom_api_url,
            company_id=info.company_id, company_name=info.company_name,
            auth=AuthConfig(authority=info.authority, client_id=info.client_id,
                            client_secret_env=secret_env, scope=info.bc_scope),
        ),
        dataverse=DataverseConfig(
            url=info.dataverse_url,
            auth=AuthConfig(authority=info.authority, client_id=info.client_id,
                            client_secret_env=secret_env, scope=info.dataverse_scope),
        ),
        root=root,
    )


@dataclass(frozen=True)
class DemoRow:
    mapping: str
    direction: str
    nav_entity: str
    nav_records: int
    crm_entity: str
    crm_records: int


def run_demo(directory: Path, echo: Callable[[str], object] = print) -> list[DemoRow]:
    """Run the demo in ``directory`` (sandbox data + workspace); returns one row per mapping."""
    directory.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with Sandbox(data_dir=directory / "sandbox", seed="cronus", reset=True, port=0) as sandbox:
        info = sandbox.info
        echo(f"Sandbox running: Dataverse {info.dataverse_url}")
        echo(f"                 Business Central {info.bc_api_url}")
        os.environ[SANDBOX_SECRET_ENV] = info.client_secret.reveal()
        config = sandbox_workspace_config(info, directory / "workspace")
        path = write_config(config, config.root)
        echo(f"Workspace config: {path} (secret read from ${SANDBOX_SECRET_ENV})")
        connections = connect(config)
        rows = []
        for mapping in MappingSet.load():
            bc = connections.business_central_for(mapping.nav.api)
            nav = bc.read(mapping.nav.entity, select=mapping.nav_select(),
                          filter=mapping.nav.filter or None)
            crm = connections.dataverse.read(mapping.crm.entity, select=mapping.crm_select(),
                                             filter=mapping.crm.filter or None)
            rows.append(DemoRow(mapping.name, mapping.direction, mapping.nav.entity, nav.height,
                                mapping.crm.entity, crm.height))
    echo("")
    echo(f"{'mapping':<18} {'direction':<14} {'NAV/BC records':>22} {'CRM records':>28}")
    for row in rows:
        echo(f"{row.mapping:<18} {row.direction:<14} "
            f"{row.nav_entity + ': ' + str(row.nav_records):>22} "
            f"{row.crm_entity + ': ' + str(row.crm_records):>28}")
    stats = [connections.dataverse.http.stats, connections.business_central.http.stats,
             connections.business_central_custom.http.stats]
    echo("")
    echo(f"Requests: {sum(s.requests for s in stats)} "
        f"(retries {sum(s.retries for s in stats)}), {time.monotonic() - started:.1f} s")
    return rows
