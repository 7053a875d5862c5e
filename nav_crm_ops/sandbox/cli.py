"""``nav-crm-ops sandbox``: run the embedded sandbox in the foreground, or report on its data.

``nav-crm-ops sandbox [--port 8765] [--seed cronus] ...`` prints where the APIs answer and the
credentials to use (this is the one place the sandbox's own client secret is printed), then
serves until interrupted. ``--ready-file`` writes the URLs (never the secret) as JSON once the
server listens, so scripts such as ``make demo`` can wait for it.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from types import FrameType
from typing import Any

import click

from ..exceptions import SandboxError
from .companies import MAX_COMPANIES
from .nav.common import nav_credentials
from .server import DEFAULT_DATA_DIR, Sandbox, SandboxInfo

__all__ = ["sandbox_group"]


def _describe(info: SandboxInfo, *, include_secret: bool) -> dict[str, Any]:
    data: dict[str, Any] = {
        "base_url": info.base_url,
        "dataverse_url": info.dataverse_url,
        "bc_api_url": info.bc_api_url,
        "bc_custom_api_url": info.bc_custom_api_url,
        "tenant": info.tenant,
        "environment": info.environment,
        "company_id": info.company_id,
        "company_name": info.company_name,
        "authority": info.authority,
        "token_url": info.token_url,
        "client_id": info.client_id,
        "dataverse_scope": info.dataverse_scope,
        "bc_scope": info.bc_scope,
        "nav_url": info.nav_url,
        "nav_user": nav_credentials(info).user,
    }
    if include_secret:
        data["client_secret"] = info.client_secret.reveal()
        data["nav_access_key"] = nav_credentials(info).access_key.reveal()
    return data


def _banner(info: SandboxInfo, profile: str = "bc-online") -> str:
    """What the sandbox serves and how to connect; ``profile`` nav2018 leads with the NAV 2018
    page services (both ERPs are always served over the same data)."""
    nav = [
        ("NAV 2018 OData v4", f"{info.nav_url}Company('{info.company_name}')/Customer"),
        ("NAV user", nav_credentials(info).user),
        ("NAV key (sandbox only)", nav_credentials(info).access_key.reveal()),
    ]
    rows = [*(nav if profile == "nav2018" else []),
        ("Dataverse Web API", info.dataverse_url),
        ("Business Central API", info.bc_api_url),
        ("BC custom API", info.bc_custom_api_url),
        ("Tenant", info.tenant),
        ("Environment", info.environment),
        ("Company", f"{info.company_id} ({info.company_name})"),
        ("Token URL", info.token_url),
        ("Dataverse scope", info.dataverse_scope),
        ("BC scope", info.bc_scope),
        ("Client id", info.client_id),
        ("Client secret (sandbox only)", info.client_secret.reveal()),
        *(nav if profile != "nav2018" else []),
        ("Status", f"{info.base_url}/_sandbox/status"),
    ]
    width = max(len(label) for label, _ in rows)
    lines = [f"nav-crm-ops sandbox listening on {info.base_url}"]
    lines += [f"  {label:<{width}}  {value}" for label, value in rows]
    choice = " --profile nav2018" if profile == "nav2018" else ""
    lines.append(f"Next: nav-crm-ops init --dir ws{choice} --sandbox {info.base_url}")
    lines.append("Press Ctrl+C to stop.")
    return "\n".join(lines)


def _write_json(path: Path, data: dict[str, Any]) -> None:
    temporary = path.with_suffix(path.suffix + ".tmp")
    temporary.write_text(json.dumps(data, indent=2), encoding="utf-8")
    temporary.replace(path)


def _stop_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


@click.group("sandbox", invoke_without_command=True)
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=8765, show_default=True, type=int,
              help="TCP port (0 picks a free one and prints it).")
@click.option("--data", "data_dir", default=str(DEFAULT_DATA_DIR), show_default=True,
              type=click.Path(file_okay=False), help="Directory of the sandbox's data.")
@click.option("--seed", default="cronus", show_default=True,
              help="Demo data: 'cronus' or 'scale:N[,seed=S]' (loaded when empty or --reset).")
@click.option("--reset", is_flag=True, help="Drop all data and load the seed again.")
@click.option("--faults", default=None,
              help="Inject faults, e.g. 'rate=0.05,kinds=503+reset+slow+429,seed=7'.")
@click.option("--limits", type=click.Choice(["on", "off"]), default="off", show_default=True,
              help="Scaled-down service protection limits (429s).")
@click.option("--no-crm-solution", "no_crm_solution", is_flag=True,
              help="Dataverse without the integration solution (the nav_ tables and columns); "
                   "`nav-crm-ops setup crm` creates them.")
@click.option("--companies", default=1, show_default=True,
              type=click.IntRange(1, MAX_COMPANIES),
              help="Business Central companies served beside the one Dataverse org "
                   "(CRONUS International Ltd., CRONUS UK Ltd., ...): multi-company sync, "
                   "with Dataverse's bcbi_company table (docs/multi-company.md).")
@click.option("--ready-file", type=click.Path(dir_okay=False), default=None,
              help="Write the URLs as JSON here once listening (no secret in it).")
@click.option("--pidfile", type=click.Path(dir_okay=False), default=None,
              help="Write the process id here while running.")
@click.option("--log-level", default="warning", show_default=True,
              type=click.Choice(["critical", "error", "warning", "info", "debug"]))
@click.option("--profile", type=click.Choice(["bc-online", "nav2018"]), default="bc-online",
              show_default=True, help="The ERP the banner leads with; Business Central's API "
              "and NAV 2018's page web services are both served over the same data.")
@click.pass_context
def sandbox_group(ctx: click.Context, host: str, port: int, data_dir: str, seed: str,
                  reset: bool, faults: str | None, limits: str, ready_file: str | None,
                  pidfile: str | None, log_level: str, no_crm_solution: bool,
                  profile: str, companies: int) -> None:
    """Run the local Dataverse + Business Central sandbox (serves until Ctrl+C)."""
    ctx.ensure_object(dict)
    ctx.obj["data_dir"] = data_dir
    if ctx.invoked_subcommand is not None:
        return
    try:
        sandbox = Sandbox(data_dir=data_dir, seed=seed, host=host, port=port, reset=reset,
                          limits=limits == "on", faults=faults, log_level=log_level,
                          crm_solution=not no_crm_solution, companies=companies)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--faults") from exc
    written: list[Path] = []
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    try:
        sandbox.start()
        if pidfile:
            Path(pidfile).write_text(str(os.getpid()), encoding="utf-8")
            written.append(Path(pidfile))
        click.echo(_banner(sandbox.info, profile))
        for company in sandbox.context.companies:
            click.echo(f"  Also company           {company.info.company_id} "
                       f"({company.info.company_name}): nav-crm-ops init --dir ws2 --sandbox "
                       f"{sandbox.info.base_url} --company '{company.info.company_name}'")
        if ready_file:
            _write_json(Path(ready_file), {
                "pid": os.getpid(), **_describe(sandbox.info, include_secret=False),
                "companies": [{"id": c.company_id, "name": c.company_name} for c in
                              (sandbox.info, *(o.info for o in sandbox.context.companies))]})
            written.append(Path(ready_file))
        while True:
            time.sleep(0.5)
    except KeyboardInterrupt:
        click.echo("Stopping sandbox.")
    finally:
        sandbox.stop()
        for path in written:
            path.unlink(missing_ok=True)


@sandbox_group.command("status")
@click.option("--data", "data_dir", default=None, type=click.Path(file_okay=False),
              help="Directory of the sandbox's data (default: the group's --data).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def status_command(ctx: click.Context, data_dir: str | None, as_json: bool) -> None:
    """Rows per table of a sandbox's data (no server needed)."""
    from .bc_schema import BC_ENTITIES
    from .dataverse_schema import DATAVERSE_ENTITIES
    from .store import SandboxStore

    directory = Path(data_dir or ctx.obj.get("data_dir") or DEFAULT_DATA_DIR)
    database = directory / "sandbox.db"
    if not database.exists():
        raise SandboxError(f"no sandbox data in {directory}; start one with "
                           f"`nav-crm-ops sandbox --data {directory}`")
    store = SandboxStore(database, (*DATAVERSE_ENTITIES, *BC_ENTITIES))
    try:
        counts = store.counts()
    finally:
        store.close()
    identity_path = directory / "sandbox.json"
    identity: dict[str, Any] = {}
    if identity_path.exists():
        identity = json.loads(identity_path.read_text(encoding="utf-8"))
    summary = {"data_dir": str(directory), "tenant": identity.get("tenant"),
               "company_id": identity.get("company_id"), "client_id": identity.get("client_id"),
               "counts": counts}
    if as_json:
        click.echo(json.dumps(summary, indent=2))
        return
    click.echo(f"Sandbox data in {directory} (tenant {summary['tenant']})")
    width = max(len(name) for name in counts)
    for name, count in counts.items():
        click.echo(f"  {name:<{width}}  {count:>8}")


if __name__ == "__main__":
    sandbox_group()
