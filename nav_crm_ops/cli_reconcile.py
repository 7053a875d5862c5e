"""``nav-crm-ops reconcile MAPPING``: drift checks — every coupled pair compared now.

Why a module of its own: the main CLI is at its size limit; like ``cli_alerts.py`` this
command registers itself with the main group (:func:`nav_crm_ops.cli._register_groups`).
Exit codes: 0 every pair in step (or its drift healed), 1 drift found and not healed, 2 bad
input (unknown mapping, --out with --apply, an unusable --out file).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from .cli_options import EXIT_FAILED_RECORDS, json_option, workspace_option

__all__ = ["reconcile_command"]

SHOWN_PAIRS = 50
"""Out-of-step pairs the text output lists; it says so when there are more."""


@click.command("reconcile")
@click.argument("mapping")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Save the plan healing the drift to FILE (review it, then `nav-crm-ops "
                   "sync --plan FILE`); FILE.jsonl gets JSON Lines instead.")
@click.option("--apply", "apply_now", is_flag=True,
              help="Apply the healing plan at once (conflicts are held, never overwritten).")
@click.option("--last", is_flag=True,
              help="Show the latest stored reconcile of MAPPING; reads neither service.")
@click.option("--progress/--no-progress", default=True,
              help="Progress on stderr: bars on a terminal, a line otherwise.")
@workspace_option
@json_option
def reconcile_command(mapping: str, out: Path | None, apply_now: bool, last: bool,
                      progress: bool, workspace_path: Path, as_json: bool) -> int:
    """Compare every coupled pair of MAPPING on both sides with each other and with the last
    synchronized values, in chunks: in step, pending (the next sync handles it), missed (edited
    behind the watermark), diverged (changed on both sides) or partner gone. The drift can be
    healed as a plan, the same preview as any sync (--out FILE, or --apply)."""
    if last:
        if out is not None or apply_now:
            raise click.UsageError("--last shows the stored result; it cannot heal: run "
                                   "`nav-crm-ops reconcile MAPPING --out FILE` or `--apply`")
        return _show_last(mapping, workspace_path, as_json)
    heal = _heal_mode(out, apply_now)
    done, saved = _reconcile(mapping, heal, out, progress and not as_json, workspace_path)
    if as_json:
        click.echo(json.dumps({**done.result.to_dict(), "plan_file": str(out) if saved else "",
                               "report": None if done.report is None else
                               done.report.to_frame().to_dicts()}, default=str, indent=1))
    else:
        _print_result(done.result.to_dict())
        if done.report is not None:
            click.echo(str(done.report))
        if out is not None:
            click.echo(saved or "nothing to heal: no plan written")
    return EXIT_FAILED_RECORDS if done.result.remaining else 0


def _heal_mode(out: Path | None, apply_now: bool) -> str:
    """The ``HealMode`` the options ask for (``--out`` checked before any work)."""
    from .cli_options import output_kind

    if out is not None and apply_now:
        raise click.UsageError("use --out FILE (save the healing plan to review) or --apply "
                               "(apply it now), not both")
    if out is not None:
        output_kind(out)
        return "plan"
    return "apply" if apply_now else "report"


def _reconcile(mapping: str, heal: str, out: Path | None, progress: bool,
               workspace_path: Path) -> tuple[Any, str]:
    """Run the reconcile; save the heal plan to ``out``; the line saying where it went."""
    from .cli_options import OutputKind, output_kind
    from .cli_progress import cli_progress
    from .engine.reconcile import HealMode
    from .engine.workspace import open_workspace

    reporter = cli_progress(progress)
    ws = open_workspace(workspace_path)
    try:
        done = ws.reconcile(mapping, heal=HealMode(heal), progress=reporter)
        saved = ""
        if out is not None and done.plan is not None:
            if output_kind(out) is OutputKind.JSON_LINES:
                from .engine.plan.export import save_json_lines

                lines = save_json_lines(done.plan, out)
                saved = f"{lines} record(s) of the healing plan written to {out} (JSON Lines)"
            else:
                ws.save_plan(done.plan, out)
                saved = (f"healing plan saved to {out}; review it (`nav-crm-ops preview` shows "
                         f"the same), then apply it with `nav-crm-ops sync --plan {out}`")
    finally:
        reporter.close()
        ws.close()
    return done, saved


def _show_last(mapping: str, workspace_path: Path, as_json: bool) -> int:
    from .engine.workspace import open_workspace

    with open_workspace(workspace_path) as ws:
        name = ws.mappings.get(mapping).name
        row = ws.store.reconcile_runs.latest(name)
    if row is None:
        raise click.UsageError(f"no reconcile of {name} is recorded yet: run "
                               f"`nav-crm-ops reconcile {name}`")
    drift = row["missed"] + row["diverged"] + row["partner_gone"]
    remaining = max(drift - row["healed"], 0)
    if as_json:
        click.echo(json.dumps({**row, "remaining": remaining}, default=str, indent=1))
    else:
        counts = {k: row[k] for k in ("in_step", "pending", "missed", "diverged",
                                      "partner_gone")}
        _print_result({"mapping": name, "counts": counts, "compared": sum(counts.values()),
                       "requests": row["requests"], "pages": row["pages"],
                       "duration_s": row["duration_ms"] / 1000, "healed": row["healed"],
                       "started_at": row["started_at"], "advice": row["advice"],
                       "pairs": row["pairs"]})
    return EXIT_FAILED_RECORDS if remaining else 0


def _print_result(data: dict[str, Any]) -> None:
    """The counts, the pairs out of step (at most :data:`SHOWN_PAIRS`) and the advice."""
    counts = data["counts"]
    shown = ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in counts.items()
                      if n or k == "in_step")
    healed = f"; {data['healed']} healed" if data.get("healed") else ""
    click.echo(f"{data['mapping']}: {data['compared']} coupled pair(s) compared at "
               f"{str(data['started_at'])[:19].replace('T', ' ')} UTC in "
               f"{float(data['duration_s']):.1f} s ({data['requests']} requests, "
               f"{data['pages']} BC pages): {shown}{healed}")
    pairs = data["pairs"]
    for pair in pairs[:SHOWN_PAIRS]:
        click.echo(f"  {pair['class']:<12} BC {pair['nav_key'] or pair['nav_id']} "
                   f"[{pair['nav_id']}] / CRM {pair['crm_id']}: {pair['why']}")
    if len(pairs) > SHOWN_PAIRS:
        click.echo(f"  ... and {len(pairs) - SHOWN_PAIRS} more (--json lists them all)")
    if data.get("advice"):
        click.echo(f"what to do: {data['advice']}")
