"""What every ``nav-crm-ops`` command group shares: the documented exit codes and the
``--workspace`` / ``--json`` options.

Why a module of its own: the main CLI (``cli.py``) registers the groups that live next to their
layer (``jobs/cli.py``, ``setup/cli.py``); they cannot import the main CLI (it imports them),
and writing the options and codes again in each would let them drift apart.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

import click

__all__ = ["EXIT_BAD_INPUT", "EXIT_FAILED_RECORDS", "EXIT_LEASE", "EXIT_ON_HOLD",
           "EXIT_SERVICE", "JSON_LINES_SUFFIXES", "WORKSPACE_ENV", "OutputKind", "json_option", "output_kind",
           "workspace_option"]

EXIT_FAILED_RECORDS = 1
"""Some records failed or conflict (``doctor``: a mapping is not ready; jobs: a job failed)."""
EXIT_BAD_INPUT = 2
"""Bad input: config, mapping, filter, plan file, credentials format, unknown record."""
EXIT_SERVICE = 3
"""A service cannot be reached or refuses the credentials."""
EXIT_LEASE = 4
"""Another process holds the mapping's (or job's) lease, or (``jobs run NAME``) a job it
depends on is running: not run, so a scheduler retries it."""
EXIT_ON_HOLD = 5
"""``jobs run NAME --skip-on-hold`` exits with this when the job is On Hold (not run); the
generated Airflow DAG marks the task skipped on it."""
WORKSPACE_ENV = "NAV_CRM_OPS_WORKSPACE"

workspace_option = click.option(
    "--workspace", "-w", "workspace_path", type=click.Path(path_type=Path), default=Path("."),
    envvar=WORKSPACE_ENV, show_default=True,
    help=f"Workspace folder holding nav_crm_ops.toml (or ${WORKSPACE_ENV}).")
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")


JSON_LINES_SUFFIXES = (".jsonl", ".ndjson")
"""``--out`` files with these suffixes get JSON Lines; any other a plan (Parquet) to apply."""


class OutputKind(StrEnum):
    """What ``preview --out FILE`` writes, by the file's suffix."""

    PLAN = "plan"
    """The signed plan (Parquet) that ``sync --plan FILE`` applies."""
    JSON_LINES = "jsonl"
    """One JSON object per record with its field changes, for scripts."""


def output_kind(path: Path) -> OutputKind:
    """What to write to ``path`` (a file: click's ``dir_okay=False`` refuses a folder),
    checked before any work: its folder must exist, and a
    ``.json`` name is refused (neither a plan nor JSON Lines; the message says which to use).
    Raises :class:`click.BadParameter` (exit 2) with what to fix."""
    folder = path.parent
    if not folder.is_dir():
        raise click.BadParameter(f"folder {folder} does not exist: create it first "
                                 f"(mkdir -p {folder}) or name a file in an existing folder",
                                 param_hint="--out")
    suffix = path.suffix.lower()
    if suffix == ".json":
        raise click.BadParameter(
            f"{path}: write JSON Lines to a .jsonl file (one record per line), the plan to apply "
            "to a .parquet file, or use --json > FILE for one JSON document", param_hint="--out")
    return OutputKind.JSON_LINES if suffix in JSON_LINES_SUFFIXES else OutputKind.PLAN
