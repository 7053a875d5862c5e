"""``nav-crm-ops doctor`` and ``nav-crm-ops setup crm``.

Exit codes follow the main CLI: ``doctor`` 0 when every mapping and workspace check is ready, 1
otherwise, 2 bad input (unknown workspace, bad config or mapping), 3 when a service cannot be
reached or authenticated (what was found is still printed); ``setup crm`` 0 when everything
needed exists (or was created), 1 when a step failed, 2 and 3 as ``doctor``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from ..cli_options import EXIT_FAILED_RECORDS, EXIT_SERVICE, json_option, workspace_option
from .checkup import Checkup
from .crm_setup import SetupPlan, SetupResult, StepStatus
from .doctor import DoctorReport
from .facts import Facts, ProbeStatus, Service

__all__ = ["doctor_command", "setup_group"]

EXIT_NOT_READY = EXIT_FAILED_RECORDS


def _doctor_exit(report: DoctorReport) -> int:
    if report.unreachable:
        return EXIT_SERVICE
    return 0 if report.ready else EXIT_NOT_READY


@click.command("doctor")
@workspace_option
@json_option
def doctor_command(workspace_path: Path, as_json: bool) -> int:
    """Check the workspace against both services: per mapping, every table, column, option
    value, privilege, BC entity set and property it needs, each problem with what to do;
    authentication, the BC company and the clocks (exit 0 ready, 1 not, 3 unreachable)."""
    with Checkup.open(workspace_path) as checkup:
        report = checkup.doctor()
    click.echo(json.dumps(report.to_dict(), indent=1) if as_json else report.render())
    return _doctor_exit(report)


@click.group("setup")
def setup_group() -> None:
    """Prepare a service for the mappings (Dataverse: `setup crm`)."""


def _plan_dict(plan: SetupPlan, results: list[SetupResult] | None,
               facts: Facts) -> dict[str, Any]:
    done = {id(r.step): r for r in results or []}
    return {
        "steps": [{"kind": s.kind.value, "table": s.table, "name": s.name,
                   "detail": s.detail, "request": s.request,
                   "status": done[id(s)].status.value if id(s) in done else "planned",
                   "message": done[id(s)].message if id(s) in done else ""}
                  for s in plan.steps],
        "problems": [{"check": p.check, "message": p.message, "fix": p.fix}
                     for p in facts.probes if p.status is not ProbeStatus.OK],
    }


def _render(plan: SetupPlan, results: list[SetupResult] | None, dry_run: bool) -> str:
    if plan.empty:
        return "Dataverse has every table, column and option value the mappings need; " \
               "nothing to create"
    if dry_run:
        lines = [f"setup crm would send {len(plan.steps)} request(s) (dry run: nothing "
                 "created):"]
        lines += [f"  + {s.describe()}" for s in plan.steps]
        lines.append("run `nav-crm-ops setup crm` without --dry-run to create them")
        return "\n".join(lines)
    lines = []
    for result in results or []:
        mark = "✗" if result.status is StepStatus.FAILED else "✓"
        lines.append(f"  {mark} {result.status.value}: {result.step.describe()}")
        if result.status is StepStatus.FAILED:
            lines.append(f"      {result.message}")
    lines.append("run `nav-crm-ops doctor` to check the workspace")
    return "\n".join(lines)


def _company_row(workspace_path: Path, as_json: bool) -> None:
    """A multi-company workspace's bcbi_company row, found or created first (its id is what
    the mappings filter by)."""
    from .crm_company import fill_workspace_company_row

    row = fill_workspace_company_row(workspace_path)
    if row is not None and not as_json:
        click.echo(f"  ✓ {'created' if row.created else 'found'}: bcbi_company {row.name!r} "
                   f"(bcbi_externalid {row.external_id}) — dataverse.company_row_id = "
                   f"{row.row_id}")


@setup_group.command("crm")
@click.option("--dry-run", is_flag=True, help="Only show what would be created.")
@workspace_option
@json_option
def setup_crm(dry_run: bool, workspace_path: Path, as_json: bool) -> int:
    """Create in Dataverse the integration solution's tables and columns and the option
    values the mappings need (POST EntityDefinitions / Attributes / RelationshipDefinitions,
    InsertOptionValue); idempotent: what exists is left alone. A workspace sharing the org
    with other companies (``[dataverse] multi_company``) gets its company's bcbi_company row
    first (found or created; its id written to the config)."""
    _company_row(workspace_path, as_json)
    with Checkup.open(workspace_path) as checkup:
        facts = checkup.facts()
        if facts.crm is None or not facts.crm.tables_read:
            problems = [p for p in facts.probes if p.status is not ProbeStatus.OK
                        and p.service is Service.DATAVERSE]
            for probe in problems:
                click.echo(f"error: {probe.message}" + (f" — {probe.fix}" if probe.fix else ""),
                           err=True)
            return EXIT_SERVICE
        plan = checkup.plan(facts.crm)
        results = None if dry_run or plan.empty else checkup.apply(plan)
    if as_json:
        click.echo(json.dumps(_plan_dict(plan, results, facts), indent=1))
    else:
        click.echo(_render(plan, results, dry_run))
    failed = any(r.status is StepStatus.FAILED for r in results or [])
    return EXIT_NOT_READY if failed else 0
