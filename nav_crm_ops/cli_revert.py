"""``nav-crm-ops revert RUN_ID``: undo a run — preview, save or apply its reversal.

Why a module of its own: the main CLI is at its size limit; like ``cli_reconcile.py`` this
command registers itself with the main group (:func:`nav_crm_ops.cli._register_groups`).
Without flags it previews (the same rendering as ``preview``); ``--out FILE`` saves the plan
for ``sync --plan FILE``; ``--apply`` applies it at once (``engine.revert``). Exit codes: 0
done (or nothing to do), 1 fields held as conflicts or records that failed, 2 bad input (an
unknown run, a run that wrote nothing, a run that is no sync, --out with --apply).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from .cli_options import EXIT_FAILED_RECORDS, json_option, workspace_option

__all__ = ["revert_command"]

SHOWN_HELD = 50
"""Held fields the text output lists; it says so when there are more."""
SHOWN_CHANGES = 100
"""Field changes the text preview lists (as ``preview``); it says so when there are more."""


@click.command("revert")
@click.argument("run_id", type=int)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Save the reversal plan to FILE (review it, then `nav-crm-ops sync --plan "
                   "FILE`); FILE.jsonl gets JSON Lines instead. Records the run created are "
                   "deactivated or deleted only by --apply.")
@click.option("--apply", "apply_now", is_flag=True,
              help="Apply the reversal at once (fields changed since are held, never "
                   "overwritten).")
@click.option("--progress/--no-progress", default=False,
              help="Progress on stderr while applying.")
@workspace_option
@json_option
def revert_command(run_id: int, out: Path | None, apply_now: bool, progress: bool,
                   workspace_path: Path, as_json: bool) -> int:
    """Undo run RUN_ID of the job log (`nav-crm-ops runs` lists them): every field it wrote
    gets the value it replaced, unless someone changed it since (held as a conflict); records
    it created are deactivated (CRM) / blocked (BC), or deleted per the mapping's
    on_revert_created, and uncoupled. Without flags it only previews."""
    from .cli_options import output_kind
    from .engine.revert import apply_revert, revert_plan
    from .engine.workspace import open_workspace

    if out is not None and apply_now:
        raise click.UsageError("use --out FILE (save the reversal to review) or --apply (apply "
                               "it now), not both")
    kind = output_kind(out) if out is not None else None
    with open_workspace(workspace_path) as ws:
        planned = revert_plan(ws, run_id)
        saved = _save(ws, planned, out, kind)
        done = None
        if apply_now and planned.has_work:
            from .cli_progress import cli_progress

            reporter = cli_progress(progress and not as_json)
            try:
                done = apply_revert(ws, planned, progress=reporter)
            finally:
                reporter.close()
    if as_json:
        click.echo(json.dumps({**planned.to_dict(), "plan_file": str(out) if saved else "",
                               "applied": done is not None,
                               "report": None if done is None else
                               done.report.to_frame().to_dicts(),
                               "created_reverted": 0 if done is None else
                               done.created_reverted}, default=str, indent=1))
    else:
        _print(planned, done, saved)
    return EXIT_FAILED_RECORDS if _failed(planned, done) else 0


def _save(ws: Any, planned: Any, out: Path | None, kind: Any) -> str:
    """Save the reversal to ``out`` (a signed plan, or JSON Lines); the line saying where."""
    from .cli_options import OutputKind

    if out is None:
        return ""
    if kind is OutputKind.JSON_LINES:
        from .engine.plan.export import save_json_lines

        lines = save_json_lines(planned.plan, out)
        return f"{lines} record(s) of the reversal written to {out} (JSON Lines)"
    ws.save_plan(planned.plan, out)
    return (f"reversal plan saved to {out}; apply it with `nav-crm-ops sync --plan {out}`"
            + (" (the records the run created are reverted only by `--apply`)"
               if planned.to_create_revert else ""))


def _failed(planned: Any, done: Any) -> bool:
    """Whether a person has something left to do: held fields, or records that failed."""
    if done is None:
        return False
    failed = sum(r.counts.get("failed", 0) + r.counts.get("conflicts", 0)
                 for r in done.report.results)
    return bool(failed or done.created_failed or planned.held)


def _print(planned: Any, done: Any, saved: str) -> None:
    click.echo(planned.summary())
    for line in planned.held[:SHOWN_HELD]:
        click.echo(f"  held: {line}")
    if len(planned.held) > SHOWN_HELD:
        click.echo(f"  ... and {len(planned.held) - SHOWN_HELD} more (--json lists them all)")
    for record in planned.created:
        if record.problem and not record.done:
            click.echo(f"  created {record.target.label} {record.record_id}: {record.problem}")
    if done is not None:
        click.echo(done.summary())
        return
    if planned.plan.records.height:
        click.echo("")
        _print_plan(planned.plan)
    if saved:
        click.echo(saved)
    elif planned.has_work:
        click.echo(f"preview only: `nav-crm-ops revert {planned.run_id} --apply` applies it")


def _print_plan(plan: Any) -> None:
    """The plan as ``preview`` prints it: its summary, then the field changes shown (written
    or held) with the records' natural keys and names."""
    import polars as pl

    click.echo(str(plan))
    named = ["nav_key", "nav_name", "crm_key", "crm_name"]
    changes = plan.field_changes.filter(
        (pl.col("target").cast(pl.Utf8) != "none") | pl.col("conflict")).join(
        plan.records.select("mapping", "record_id", *named, "action"),
        on=["mapping", "record_id"], how="left")
    if not changes.height:
        return
    click.echo("")
    frame = changes.select("mapping", *named, "action", "field", "nav_value", "crm_value",
                           "new_value", "target", "conflict").head(SHOWN_CHANGES)
    with pl.Config(tbl_rows=SHOWN_CHANGES, tbl_cols=30, fmt_str_lengths=120,
                   tbl_width_chars=200, tbl_hide_dataframe_shape=True,
                   tbl_hide_column_data_types=True):
        click.echo(str(frame))
    if changes.height > SHOWN_CHANGES:
        click.echo(f"... and {changes.height - SHOWN_CHANGES} more field changes "
                   "(--json or --out FILE.jsonl lists them all)")
