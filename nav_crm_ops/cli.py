"""The ``nav-crm-ops`` command line.

Every read command takes ``--json`` for scripts. Exit codes: 0 success, 1 the run finished with
failed, conflicting or skipped records (skipped: all the mapping's, not only those the run
read), 2 bad input (config, mapping, filter, plan file), 3 a service or connection
problem, 4 another process holds the lease.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
import polars as pl

from . import __version__
from .cli_options import (
    EXIT_BAD_INPUT,
    EXIT_FAILED_RECORDS,
    EXIT_LEASE,
    EXIT_SERVICE,
    WORKSPACE_ENV,
    json_option,
    workspace_option,
)
from .exceptions import (
    ConfigError,
    ConnectorError,
    LeaseHeldError,
    NavCrmOpsError,
    PlanError,
)


def exit_code_for(error: NavCrmOpsError) -> int:
    """Map an error class to the documented exit code."""
    if isinstance(error, (ConfigError, PlanError)):
        return EXIT_BAD_INPUT
    if isinstance(error, LeaseHeldError):
        return EXIT_LEASE
    if isinstance(error, ConnectorError):
        return EXIT_SERVICE
    return EXIT_BAD_INPUT


@click.group()
@click.version_option(__version__, prog_name="nav-crm-ops")
def cli() -> None:
    """Keep Business Central / NAV and Dynamics 365 Sales in sync."""


@cli.command()
@click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path),
              default=Path(".nav_crm_ops/demo"), show_default=True,
              help="Folder for the sandbox data and the demo workspace.")
@click.option("--profile", type=click.Choice(["bc-online", "nav2018"]), default="bc-online",
              show_default=True, help="The ERP the demo syncs: Business Central online (API "
              "v2.0) or NAV 2018 (OData v4 page web services).")
def demo(directory: Path, profile: str) -> None:
    """Start the CRONUS sandbox, create a workspace for it and run every default job once."""
    from .config import ErpProfile
    from .demo import run_demo

    run_demo(directory, echo=click.echo, profile=ErpProfile(profile))




@contextmanager
def _workspace(path: Path) -> Iterator[Any]:
    from .engine.workspace import open_workspace

    ws = open_workspace(path)
    try:
        yield ws
    finally:
        ws.close()


def _print_frame(frame: pl.DataFrame, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(frame.to_dicts(), default=str, indent=1))
        return
    if frame.height == 0:
        click.echo("(none)")
        return
    with pl.Config(tbl_rows=200, tbl_cols=30, fmt_str_lengths=120, tbl_width_chars=200,
                   tbl_hide_dataframe_shape=True, tbl_hide_column_data_types=True):
        click.echo(str(frame))


def _report_exit(report: Any, as_json: bool) -> int:
    if as_json:
        click.echo(json.dumps(report.to_frame().to_dicts(), default=str, indent=1))
    else:
        click.echo(str(report))
    return EXIT_FAILED_RECORDS if report.needs_attention else 0


@cli.command()
@click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path),
              default=Path("."), show_default=True, help="Workspace folder to create.")
@click.option("--sandbox", "sandbox_url", metavar="URL",
              help="Point the workspace at a running sandbox (nav-crm-ops sandbox).")
@click.option("--profile", type=click.Choice(["bc-online", "nav2018"]), default="bc-online",
              show_default=True, help="The ERP: Business Central online (API v2.0) or NAV "
              "2013 R2-2018 / BC on-premises (OData v4 page web services).")
@click.option("--force", is_flag=True, help="Overwrite an existing nav_crm_ops.toml.")
@click.option("--state-url", metavar="URL", help="The state database: sqlite:///state.db "
              "(default) or postgresql+psycopg://user@host:5432/dbname (no password in it).")
@click.option("--state-password-env", metavar="NAME", help="Environment variable holding the "
              "PostgreSQL state database's password.")
@click.option("--company", "company_name", metavar="NAME", help="The ERP company of this "
              "workspace, by name (a sandbox serving several: `sandbox --companies 2`).")
@click.option("--company-id", metavar="GUID", help="The Business Central company, by id.")
@click.option("--multi-company", is_flag=True, help="Several ERP companies share the Dataverse "
              "org: read and stamp only this company's CRM rows (bcbi_companyid); on by "
              "itself for a sandbox serving several companies (docs/multi-company.md).")
def init(directory: Path, sandbox_url: str | None, profile: str, force: bool,
         state_url: str | None, state_password_env: str | None, company_name: str | None,
         company_id: str | None, multi_company: bool) -> None:
    """Write nav_crm_ops.toml: connections, auth (secrets by environment variable name),
    state database and mapping files."""
    from .config import CONFIG_FILE, write_config

    target = directory / CONFIG_FILE
    if target.exists() and not force:
        raise click.UsageError(f"{target} exists; use --force to overwrite it")
    from .setup.crm_company import CompanyChoice

    nav = profile == "nav2018"
    company = CompanyChoice(company_name, company_id, multi_company)
    config = (_sandbox_config(sandbox_url, directory, nav=nav, company=company) if sandbox_url
              else company.apply(_template_config(directory, nav=nav)))
    if state_url or state_password_env:
        config = _with_state_database(config, state_url, state_password_env)
    path = write_config(config, directory)
    click.echo(f"wrote {path}")
    if config.dataverse.multi_company:
        _fill_company_row(config, directory)
    if sandbox_url:
        from .demo import SANDBOX_NAV_KEY_ENV, SANDBOX_SECRET_ENV

        click.echo(f"set ${SANDBOX_SECRET_ENV} to the client secret the sandbox printed"
                   + (f" and ${SANDBOX_NAV_KEY_ENV} to its NAV web service key" if nav else ""))
    else:
        click.echo("edit the URLs, company and " + ("NAV user" if nav else "client ids")
                   + "; put the secrets in the environment variables the file names")


def _with_state_database(config: Any, url: str | None, password_env: str | None) -> Any:
    """``config`` with its state database set by ``init --state-url``: the URL checked
    (:func:`nav_crm_ops.store.urls.check_state_url`) and, for PostgreSQL, opened once (schema
    created) so an unusable database fails here, with exit code 2, before anything is
    written. Messages show the URL without its password."""
    from sqlalchemy.engine import make_url

    from .store import StateStore
    from .store.urls import check_state_url

    settings = config.workspace.model_copy(update={
        "state_url": check_state_url(url or config.workspace.state_url),
        "state_password_env": password_env})
    checked = config.model_copy(update={"workspace": settings})
    database = make_url(str(checked.state_url)).database or ""
    if not settings.state_url.startswith("sqlite") or Path(database).is_file():
        # A database shared with other companies' workspaces: never take their rows.
        with StateStore.open(checked.state_url, adopt_rows=False) as store:
            click.echo(f"state database {store.where}: schema version {store.schema_version}")
    return checked


def _fill_company_row(config: Any, directory: Path) -> None:
    """``init`` of a multi-company workspace: its company's bcbi_company row found or
    created in Dataverse when the secret is at hand, else what to run later."""
    from .connectors.factory import connect
    from .exceptions import ConfigError
    from .setup.crm_company import fill_company_row

    try:
        connections = connect(config)
    except ConfigError:
        click.echo("multi-company workspace: set the secrets, then run `nav-crm-ops setup crm` "
                   "(it finds or creates this company's bcbi_company row in Dataverse)")
        return
    try:
        _, row = fill_company_row(config, connections.dataverse, directory)
    finally:
        connections.dataverse.http.close()
    click.echo(f"{'created' if row.created else 'found'} bcbi_company {row.name!r} in "
               f"Dataverse: dataverse.company_row_id = {row.row_id}")


def _sandbox_config(url: str, directory: Path, *, nav: bool = False,
                    company: Any = None) -> Any:
    import httpx

    from .demo import nav_sandbox_workspace_config, sandbox_workspace_config
    from .exceptions import ConfigError
    from .sandbox.server import SandboxInfo
    from .secrets import Secret

    base = url.rstrip("/")
    try:
        status = httpx.get(f"{base}/_sandbox/status", timeout=10).json()
    except (httpx.HTTPError, ValueError) as error:
        raise ConfigError(f"no sandbox answers at {base} ({error}); start one with "
                          "`nav-crm-ops sandbox` and pass the URL it prints") from None
    from .setup.crm_company import CompanyChoice

    chosen = (company or CompanyChoice()).pick(status)
    info = SandboxInfo(base_url=base, tenant=status["tenant"], environment=status["environment"],
                       company_id=chosen["id"], company_name=chosen["name"],
                       client_id=status["client_id"], client_secret=Secret(""))
    several = len(status.get("companies") or ()) > 1
    if nav:
        from .sandbox.nav.common import NAV_USER

        config = nav_sandbox_workspace_config(info, NAV_USER, directory)
    else:
        config = sandbox_workspace_config(info, directory)
    return (company or CompanyChoice()).apply(config, multi_company=several)


def _template_config(directory: Path, *, nav: bool = False) -> Any:
    from .config import (
        AuthConfig,
        BusinessCentralConfig,
        DataverseConfig,
        ErpProfile,
        NavConfig,
        WorkspaceConfig,
        WorkspaceSettings,
    )

    tenant = "<tenant id>"
    dataverse = DataverseConfig(
        url="https://<org>.crm.dynamics.com/api/data/v9.2/",
        auth=AuthConfig(authority=f"https://login.microsoftonline.com/{tenant}",
                        client_id="<app id>", client_secret_env="NAV_CRM_OPS_CLIENT_SECRET",
                        scope="https://<org>.crm.dynamics.com/.default"))
    if nav:
        return WorkspaceConfig(
            workspace=WorkspaceSettings(name=directory.resolve().name or "workspace",
                                        profile=ErpProfile.NAV2018),
            nav=NavConfig(odata_url="https://navserver:7048/DynamicsNAV110/ODataV4/",
                          company_name="CRONUS International Ltd.",
                          auth=AuthConfig(kind="basic", client_id="<NAV user>",
                                          client_secret_env="NAV_CRM_OPS_NAV_KEY")),
            dataverse=dataverse, root=directory)
    return WorkspaceConfig(
        workspace=WorkspaceSettings(name=directory.resolve().name or "workspace"),
        business_central=BusinessCentralConfig(
            api_url=f"https://api.businesscentral.dynamics.com/v2.0/{tenant}/Production/api/v2.0/",
            company_id="00000000-0000-0000-0000-000000000000", company_name="CRONUS",
            auth=AuthConfig(authority=f"https://login.microsoftonline.com/{tenant}",
                            client_id="<app id>", client_secret_env="NAV_CRM_OPS_CLIENT_SECRET",
                            scope="https://api.businesscentral.dynamics.com/.default")),
        dataverse=dataverse, root=directory)


@cli.group()
def mappings() -> None:
    """List, show and validate the integration table mappings."""


@mappings.command("list")
@workspace_option
@json_option
def mappings_list(workspace_path: Path, as_json: bool) -> None:
    """Mappings in dependency order."""
    from .config import load_config
    from .engine.mapping import MappingSet

    found = MappingSet.for_workspace(load_config(workspace_path))
    rows = [{"mapping": m.name, "direction": m.direction, "nav": m.nav.entity,
             "crm": m.crm.entity, "depends_on": ", ".join(m.depends_on),
             "fields": len(m.enabled_fields())} for m in found]
    _print_frame(pl.DataFrame(rows), as_json)


@mappings.command("show")
@click.argument("name")
@workspace_option
@json_option
def mappings_show(name: str, workspace_path: Path, as_json: bool) -> None:
    """One mapping as YAML (or JSON)."""
    import yaml

    from .config import load_config
    from .engine.mapping import MappingSet

    mapping = MappingSet.for_workspace(load_config(workspace_path)).get(name)
    data = mapping.model_dump(mode="json", exclude_defaults=True)
    click.echo(json.dumps(data, indent=1) if as_json else
               yaml.safe_dump(data, sort_keys=False, allow_unicode=True))


@mappings.command("validate")
@workspace_option
def mappings_validate(workspace_path: Path) -> None:
    """Check the workspace's mapping files (exit 2 with the reason when invalid)."""
    from .config import load_config
    from .engine.mapping import MappingSet

    found = MappingSet.for_workspace(load_config(workspace_path))
    click.echo(f"{len(found)} mappings are valid: {', '.join(found.dependency_order())}")


SHOWN_CHANGES = 100
"""Field changes the text preview lists; it says so when there are more."""


@cli.command()
@click.argument("names", nargs=-1)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the plan to FILE: FILE.jsonl (or .ndjson) gets JSON Lines, one "
                   "record with its field changes per line; any other name (plan.parquet) the "
                   "signed plan to apply later with `sync --plan FILE`.")
@click.option("--progress/--no-progress", default=True,
              help="Progress on stderr: bars on a terminal, a line per mapping otherwise.")
@workspace_option
@json_option
def preview(names: tuple[str, ...], out: Path | None, progress: bool, workspace_path: Path,
            as_json: bool) -> None:
    """What a sync would do (all mappings when none named); writes nothing to either side.

    --json prints one JSON document: plan_id, file, summary and counts, then every record
    (ids, natural keys, action) with every field change (old and new value, base, target
    side, conflict, resolution)."""
    from .cli_options import OutputKind, output_kind
    from .cli_progress import cli_progress

    kind = output_kind(out) if out is not None else None
    reporter = cli_progress(progress and not as_json)
    try:
        with _workspace(workspace_path) as ws:
            plan = ws.preview(list(names) or None, progress=reporter)
            if out is not None and kind is OutputKind.PLAN:
                ws.save_plan(plan, out)
    finally:
        reporter.close()
    lines = _write_json_lines(plan, out) if out is not None and kind is OutputKind.JSON_LINES \
        else None
    if as_json:
        from .engine.plan.export import write_json

        write_json(plan, sys.stdout, {"file": str(out or "")})
        return
    _print_preview(plan)
    if lines is not None:
        click.echo(f"{lines} record(s) with their field changes written to {out} (JSON Lines)")
    elif out is not None:
        click.echo(f"plan saved to {out}; apply it with `nav-crm-ops sync --plan {out}`")


def _write_json_lines(plan: Any, out: Path) -> int:
    """The plan as JSON Lines in ``out`` (a reader never sees half a file)."""
    from .engine.plan.export import save_json_lines

    return save_json_lines(plan, out)


def _print_preview(plan: Any) -> None:
    """The plan's summary, then its written field changes with the records' natural keys
    (at most :data:`SHOWN_CHANGES`, and a line saying so when there are more)."""
    click.echo(str(plan))
    named = [c for c in ("nav_key", "nav_name", "crm_key", "crm_name") if c in plan.records.columns]
    changes = plan.field_changes.filter(pl.col("target").cast(pl.Utf8) != "none").join(
        plan.records.select("mapping", "record_id", *named, "action"),
        on=["mapping", "record_id"], how="left")
    if not changes.height:
        return
    click.echo("")
    _print_frame(changes.select("mapping", *named, "action", "field", "nav_value", "crm_value",
                                "base_value", "target", "new_value").head(SHOWN_CHANGES), False)
    if changes.height > SHOWN_CHANGES:
        click.echo(f"showing the first {SHOWN_CHANGES} of {changes.height:,} field changes; "
                   "use --json or --out FILE.jsonl for all")


@cli.command()
@click.argument("names", nargs=-1)
@click.option("--all", "all_mappings", is_flag=True, help="Every mapping, in dependency order.")
@click.option("--plan", "plan_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Apply this saved plan (records changed since it was made are refused).")
@click.option("--job-name", default="", help="Name recorded in the job log.")
@click.option("--progress/--no-progress", default=True,
              help="Progress on stderr: bars on a terminal, a line per mapping otherwise.")
@workspace_option
@json_option
def sync(names: tuple[str, ...], all_mappings: bool, plan_file: Path | None, job_name: str,
         progress: bool, workspace_path: Path, as_json: bool) -> int:
    """Synchronize mappings now (preview + apply), or apply a saved plan."""

    if not names and not all_mappings and plan_file is None:
        raise click.UsageError("name one or more mappings, or use --all or --plan FILE")
    from .cli_progress import cli_progress

    bars = cli_progress(progress and not as_json)
    try:
        with _workspace(workspace_path) as ws:
            if plan_file is not None:
                report = ws.apply(ws.load_plan(plan_file), progress=bars, job_name=job_name)
            else:
                report = ws.sync_all(None if all_mappings else list(names), progress=bars,
                                     job_name=job_name)
            report = report.with_skipped_totals(ws.store)
    finally:
        bars.close()
    return _report_exit(report, as_json)


@cli.command()
@click.argument("mapping")
@click.argument("nav_id")
@click.argument("crm_id")
@workspace_option
def couple(mapping: str, nav_id: str, crm_id: str, workspace_path: Path) -> None:
    """Couple a BC record with a CRM record (by id)."""
    with _workspace(workspace_path) as ws:
        ws.couple(mapping, nav_id, crm_id)
    click.echo(f"{mapping}: coupled BC {nav_id} with CRM {crm_id}")


@cli.command()
@click.argument("mapping")
@click.option("--nav-id")
@click.option("--crm-id")
@workspace_option
def uncouple(mapping: str, nav_id: str | None, crm_id: str | None, workspace_path: Path) -> None:
    """Remove the coupling of a BC or CRM record."""
    if not nav_id and not crm_id:
        raise click.UsageError("give --nav-id or --crm-id")
    with _workspace(workspace_path) as ws:
        count = ws.uncouple(mapping, nav_id=nav_id, crm_id=crm_id)
    click.echo(f"{mapping}: {count} coupling(s) removed")


@cli.command()
@click.argument("mapping")
@click.option("--create", is_flag=True, help="Create unmatched records on the other side.")
@click.option("--dry-run", is_flag=True, help="Only show matched / unmatched / ambiguous.")
@workspace_option
@json_option
def match(mapping: str, create: bool, dry_run: bool, workspace_path: Path, as_json: bool) -> int:
    """Match-based coupling of uncoupled records on the mapping's match fields (exit 1 when
    a record could not be created: the message says why)."""
    with _workspace(workspace_path) as ws:
        result = ws.match_couple(mapping, create=create, apply=not dry_run)
    if not as_json:
        click.echo(", ".join(f"{n} {s}" for s, n in sorted(result.counts.items())) or
                   "nothing to match")
    _print_frame(result.frame, as_json)
    return EXIT_FAILED_RECORDS if result.counts.get("failed") else 0


@cli.command()
@click.argument("mapping", required=False)
@click.option("--groups", is_flag=True, help="Group by normalized message with counts.")
@click.option("--run", "run_id", type=int, help="Only errors of this run.")
@workspace_option
@json_option
def errors(mapping: str | None, groups: bool, run_id: int | None, workspace_path: Path,
           as_json: bool) -> None:
    """Record errors, newest first (or grouped by message)."""
    with _workspace(workspace_path) as ws:
        frame = ws.error_groups(mapping) if groups else ws.errors(mapping, run_id=run_id)
    if as_json or frame.height == 0:
        _print_frame(frame, as_json)
        return
    for row in frame.iter_rows(named=True):
        click.echo(_group_text(row) if groups else _error_text(row))


def _group_text(row: dict[str, Any]) -> str:
    """One cause: how many records (and occurrences), which, the message and what to do."""
    text = (f"{row['records']:>6} record(s) ({row['count']} x) {row['mapping']}: "
            f"{row['example']}")
    if row.get("examples"):
        text += f"\n       e.g. {row['examples']}"
    if row.get("advice"):
        text += f"\n       what to do: {row['advice']}"
    return text


def _error_text(row: dict[str, Any]) -> str:
    """One error: the record by number and name (its id in brackets), the full message."""
    kind = "transient" if row["transient"] else "permanent"
    label = row.get("source_label")
    record = f"{label} [{row['source_id']}]" if label else str(row["source_id"])
    return (f"#{row['id']} run {row['run_id']} {row['mapping']} {row['direction']} {record} "
            f"({kind})\n    {row['message']}")


@cli.command()
@click.argument("mapping", required=False)
@click.option("--id", "ids", multiple=True, help="Source record id (repeatable).")
@workspace_option
@json_option
def retry(mapping: str | None, ids: tuple[str, ...], workspace_path: Path, as_json: bool) -> int:
    """Synchronize failed records now (skipped ones need `unskip` first)."""
    with _workspace(workspace_path) as ws:
        report = ws.retry(mapping, list(ids) or None).with_skipped_totals(ws.store)
    if not report.results:
        click.echo("no failed records to retry")
        return 0
    return _report_exit(report, as_json)


@cli.command()
@click.argument("mapping")
@click.option("--id", "ids", multiple=True, help="Source record id (repeatable); all if none.")
@workspace_option
def unskip(mapping: str, ids: tuple[str, ...], workspace_path: Path) -> None:
    """Put skipped records back into the retry pass."""
    with _workspace(workspace_path) as ws:
        count = ws.unskip(mapping, list(ids) or None)
    click.echo(f"{mapping}: {count} record(s) restored; the next sync retries them")


@cli.command()
@click.argument("mapping", required=False)
@click.option("--limit", default=50, show_default=True)
@workspace_option
@json_option
def runs(mapping: str | None, limit: int, workspace_path: Path, as_json: bool) -> None:
    """The job log, newest first."""
    with _workspace(workspace_path) as ws:
        frame = ws.runs(mapping, limit=limit)
    if not as_json:
        frame = frame.select("id", "mapping", "direction", "kind", "status", "started_at",
                             "inserted", "modified", "unchanged", "failed", "skipped",
                             "conflicts", "coupled", "requests", "message")
    _print_frame(frame, as_json)


@cli.command()
@click.option("--dry-run", is_flag=True, help="Only count what would be removed.")
@workspace_option
@json_option
def purge(dry_run: bool, workspace_path: Path, as_json: bool) -> None:
    """Remove runs, resolved record errors and settled journal writes older than the
    workspace's [retention] days (what the daily retention job does); prints rows per table."""
    from .jobs.retention import purge_workspace

    policy, counts = purge_workspace(workspace_path, dry_run=dry_run)
    if as_json:
        click.echo(json.dumps({**counts.to_dict(), "policy": vars(policy)}, indent=1))
        return
    click.echo(f"retention: runs {policy.runs_days} days, resolved errors "
               f"{policy.resolved_errors_days} days, journal {policy.journal_days} days"
               + (" (dry run: nothing removed)" if dry_run else ""))
    click.echo(str(counts))


@cli.command()
@click.option("--notebooks", type=click.Path(file_okay=False, path_type=Path),
              default=Path("notebooks"), show_default=True,
              help="Folder holding the front-end notebooks.")
@click.option("--port", default=8866, show_default=True)
@click.option("--ip", default="127.0.0.1", show_default=True,
              help="Address to listen on (0.0.0.0: every interface; needs a login).")
@click.option("--token", envvar="NAV_CRM_OPS_UI_TOKEN", show_envvar=True,
              help="Access token (default: a random one, printed once in the start line). "
                   "Prefer the environment variable: other users can see command lines.")
@click.option("--password-hash", envvar="NAV_CRM_OPS_UI_PASSWORD_HASH", show_envvar=True,
              help="Log in with a password: its hash from jupyter_server.auth.passwd().")
@click.option("--no-auth", is_flag=True,
              help="Serve without a login; accepted only with a loopback --ip.")
@click.option("--workspace", "-w", "workspace_path", type=click.Path(path_type=Path),
              envvar=WORKSPACE_ENV,
              help="Workspace the dashboards open (default: an embedded CRONUS sandbox).")
def ui(notebooks: Path, port: int, ip: str, token: str | None, password_hash: str | None,
       no_auth: bool, workspace_path: Path | None) -> int:
    """Serve the notebooks as Voila dashboards (preview, run, logs, coupling) behind a login."""
    from .exceptions import ConfigError
    from .widgets.dashboards import dashboard_auth, serve_dashboards, start_message

    auth = dashboard_auth(ip=ip, token=token, hashed_password=password_hash, no_auth=no_auth)
    if not (notebooks / "preview_changes.ipynb").exists():
        raise ConfigError(f"{notebooks} does not hold the nav-crm-ops notebooks; run from the "
                          "repository root or pass --notebooks")
    click.echo(start_message(ip, port, auth))
    return serve_dashboards(notebooks, workspace=workspace_path, port=port, ip=ip, auth=auth)


def _register_groups() -> None:
    from .cli_alerts import alerts_command
    from .cli_listen import listen_command
    from .cli_plans import plans_group
    from .cli_reconcile import reconcile_command
    from .cli_revert import revert_command
    from .jobs.cli import jobs
    from .sandbox.cli import sandbox_group
    from .setup.cli import doctor_command, setup_group

    cli.add_command(sandbox_group)
    cli.add_command(jobs)
    cli.add_command(doctor_command)
    cli.add_command(setup_group)
    cli.add_command(alerts_command)
    cli.add_command(reconcile_command)
    cli.add_command(revert_command)
    cli.add_command(plans_group)
    cli.add_command(listen_command)


def main(argv: list[str] | None = None) -> None:
    """Console entry point: turns package errors into one clear line and an exit code."""
    _register_groups()
    try:
        result = cli.main(args=argv, prog_name="nav-crm-ops", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except NavCrmOpsError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(exit_code_for(exc))
    if isinstance(result, int) and result:
        sys.exit(result)


if __name__ == "__main__":
    main()
