"""``nav-crm-ops alerts``: the open alerts (or every alert), and ``--check`` to evaluate now.

Why a module of its own: the main CLI is at its size limit; like ``jobs/cli.py`` this command
registers itself with the main group (:func:`nav_crm_ops.cli._register_groups`).
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from .cli_options import json_option, workspace_option

__all__ = ["alerts_command"]


@click.command("alerts")
@click.option("--check", is_flag=True,
              help="Evaluate the rules now (as after every run), record and send new alerts.")
@click.option("--all", "show_all", is_flag=True, help="Also list resolved alerts.")
@click.option("--limit", default=200, show_default=True, type=click.IntRange(1, 100_000))
@workspace_option
@json_option
def alerts_command(check: bool, show_all: bool, limit: int, workspace_path: Path,
                   as_json: bool) -> None:
    """What needs attention: failed-record share, unusual change counts or run times, jobs
    without success, conflict and skip backlogs, watermarks that stopped moving. Each alert
    says what happened and where to look; a condition that persists is one alert."""
    from .engine.workspace import open_workspace

    ws = open_workspace(workspace_path)
    try:
        notes: list[str] = ws.check_alerts().lines() if check else []
        frame = ws.alerts(state=None if show_all else "open", limit=limit)
    finally:
        ws.close()
    if as_json:
        rows = [{**row, "details": json.loads(row["details"] or "{}")}
                for row in frame.drop("company").iter_rows(named=True)]
        click.echo(json.dumps({"alerts": rows, "notes": notes}, indent=1))
        return
    for note in notes:
        click.echo(note)
    if not frame.height:
        click.echo("no open alerts" if not show_all else "no alerts recorded")
        return
    for row in frame.iter_rows(named=True):
        state = "" if row["state"] == "open" else f" ({row['state']} {row['resolved_at'][:16]})"
        seen = f", seen {row['seen_count']} times" if row["seen_count"] > 1 else ""
        click.echo(f"[{row['severity']}] {row['message']}{state}\n"
                   f"    where to look: {row['where_to_look']}\n"
                   f"    since {row['first_seen'][:16].replace('T', ' ')} UTC{seen}"
                   + (f"; {row['notified']}".replace("\n", "; ") if row["notified"] else ""))
