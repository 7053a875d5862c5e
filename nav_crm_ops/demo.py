"""``make demo``: the toolkit's main job end to end.

Starts the sandbox with fresh CRONUS data, writes a workspace for it (the client secret only in
an environment variable the config names), creates the default job queue, runs every job once
in order through papermill (one output notebook per run), prints the summary table and stops
the sandbox. The dirty CRONUS records make some records fail: that is what the
troubleshooting notebook is for.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from .config import (
    AuthConfig,
    BusinessCentralConfig,
    DataverseConfig,
    ErpProfile,
    NavConfig,
    WorkspaceConfig,
    WorkspaceSettings,
    write_config,
)
from .engine.mapping import MappingSet
from .exceptions import SyncError
from .jobs import JobRun, JobRunner, init_queue, runs_table
from .sandbox import Sandbox, SandboxInfo

__all__ = ["SANDBOX_NAV_KEY_ENV", "SANDBOX_SECRET_ENV", "nav_sandbox_workspace_config",
           "run_demo", "sandbox_workspace_config"]

SANDBOX_SECRET_ENV = "NAV_CRM_OPS_SANDBOX_SECRET"
SANDBOX_NAV_KEY_ENV = "NAV_CRM_OPS_SANDBOX_NAV_KEY"
"""Names the environment variable holding the sandbox NAV user's web service access key."""


def sandbox_workspace_config(info: SandboxInfo, root: Path,
                             secret_env: str = SANDBOX_SECRET_ENV) -> WorkspaceConfig:
    """A workspace config pointing at a running sandbox; the secret is named, not stored.
    Record links open the sandbox's read-only record pages (``sandbox.web_client``) for
    Business Central and Dynamics 365."""
    from .sandbox.web_client import bc_web_client_url, dataverse_web_url

    return WorkspaceConfig(
        workspace=WorkspaceSettings(name="cronus-sandbox"),
        business_central=BusinessCentralConfig(
            api_url=info.bc_api_url, custom_api_url=info.bc_custom_api_url,
            company_id=info.company_id, company_name=info.company_name,
            web_client_url=bc_web_client_url(info),
            auth=AuthConfig(authority=info.authority, client_id=info.client_id,
                            client_secret_env=secret_env, scope=info.bc_scope),
        ),
        dataverse=DataverseConfig(
            url=info.dataverse_url, web_url=dataverse_web_url(info),
            auth=AuthConfig(authority=info.authority, client_id=info.client_id,
                            client_secret_env=secret_env, scope=info.dataverse_scope),
        ),
        root=root,
    )


def nav_sandbox_workspace_config(info: SandboxInfo, nav_user: str, root: Path,
                                 secret_env: str = SANDBOX_SECRET_ENV,
                                 key_env: str = SANDBOX_NAV_KEY_ENV) -> WorkspaceConfig:
    """A NAV 2018 workspace (profile ``nav2018``) for a running sandbox: its OData v4 page
    web services with HTTP Basic (the user's web service access key named, not stored) and
    the same Dataverse as :func:`sandbox_workspace_config`; record links open the sandbox's
    NAV web client and Dynamics 365 record pages."""
    from .sandbox.web_client import nav_web_client_url

    online = sandbox_workspace_config(info, root, secret_env)
    return WorkspaceConfig(
        workspace=WorkspaceSettings(name="cronus-nav2018", profile=ErpProfile.NAV2018),
        nav=NavConfig(odata_url=info.nav_url, company_name=info.company_name,
                      web_client_url=nav_web_client_url(info),
                      auth=AuthConfig(kind="basic", client_id=nav_user,
                                      client_secret_env=key_env)),
        dataverse=online.dataverse, root=root)


def _demo_workspace(info: SandboxInfo, root: Path, profile: ErpProfile,
                    echo: Callable[[str], object]) -> WorkspaceConfig:
    """The demo's workspace config for the sandbox, its secrets in the environment variables
    the config names; says where the ERP answers."""
    os.environ[SANDBOX_SECRET_ENV] = info.client_secret.reveal()
    if profile is ErpProfile.NAV2018:
        from .sandbox.nav import nav_credentials

        credentials = nav_credentials(info)
        os.environ[SANDBOX_NAV_KEY_ENV] = credentials.access_key.reveal()
        echo(f"                 NAV 2018 {info.nav_url} (user {credentials.user}, "
             f"key in ${SANDBOX_NAV_KEY_ENV})")
        return nav_sandbox_workspace_config(info, credentials.user, root)
    echo(f"                 Business Central {info.bc_api_url}")
    return sandbox_workspace_config(info, root)


def run_demo(directory: Path, echo: Callable[[str], object] = print, *,
             mappings: Sequence[str] | None = None,
             profile: ErpProfile = ErpProfile.BC_ONLINE) -> list[JobRun]:
    """Run the demo in ``directory`` (sandbox data, workspace, output notebooks); returns
    one :class:`~nav_crm_ops.jobs.JobRun` per job. ``mappings`` limits the jobs run to those
    mappings' (a quicker demo); the queue always holds every default job of the ERP
    ``profile`` (Business Central online, or NAV 2018 page web services). Raises SyncError
    (after the table) when a job's notebook failed, so ``make demo`` exits non-zero."""
    directory.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    workspace = directory / "workspace"
    shutil.rmtree(workspace, ignore_errors=True)  # its state belongs to the previous sandbox
    with Sandbox(data_dir=directory / "sandbox", seed="cronus", reset=True, port=0) as sandbox:
        info = sandbox.info
        echo(f"Sandbox running: Dataverse {info.dataverse_url}")
        config = _demo_workspace(info, workspace, profile, echo)
        path = write_config(config, config.root)
        echo(f"Workspace config: {path} (secret read from ${SANDBOX_SECRET_ENV})")
        with JobRunner(config.root, echo=echo) as runner:
            queue = init_queue(runner.queue, MappingSet.for_workspace(runner.config))
            echo(f"Job queue: {len(queue)} jobs (nav-crm-ops jobs list -w {config.root})")
            wanted = None if mappings is None else {m.upper() for m in mappings}
            runs = [runner.run(entry.name) for entry, _ in queue
                    if wanted is None or entry.mapping.upper() in wanted]
    echo("")
    echo(runs_table(runs, relative_to=config.root))
    echo("")
    failed = sum(r.counts.get("failed", 0) for r in runs)
    echo(f"{len(runs)} jobs in {time.monotonic() - started:.1f} s; {failed} record(s) failed "
         "(dirty demo data): see the output notebooks and the troubleshooting notebook.")
    echo(f"Output notebooks (and .html) are under {config.root / 'runs'}; open them in "
         "JupyterLab with `make lab`.")
    broken = [r.job for r in runs if r.outcome.is_failure]
    if broken:
        raise SyncError(f"{len(broken)} demo job(s) did not finish: {broken}; their output "
                        "notebooks above show the failing cell")
    return runs
