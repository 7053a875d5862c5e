"""What every ``nav-crm-ops`` command group shares: the documented exit codes and the
``--workspace`` / ``--json`` options.

Why a module of its own: the main CLI (``cli.py``) registers the groups that live next to their
layer (``jobs/cli.py``, ``setup/cli.py``); they cannot import the main CLI (it imports them),
and writing the options and codes again in each would let them drift apart.
"""

from __future__ import annotations

from pathlib import Path

import click

__all__ = ["EXIT_BAD_INPUT", "EXIT_FAILED_RECORDS", "EXIT_LEASE", "EXIT_SERVICE",
           "WORKSPACE_ENV", "json_option", "workspace_option"]

EXIT_FAILED_RECORDS = 1
"""Some records failed or conflict (``doctor``: a mapping is not ready; jobs: a job failed)."""
EXIT_BAD_INPUT = 2
"""Bad input: config, mapping, filter, plan file, credentials format, unknown record."""
EXIT_SERVICE = 3
"""A service cannot be reached or refuses the credentials."""
EXIT_LEASE = 4
"""Another process holds the mapping's (or job's) lease."""
WORKSPACE_ENV = "NAV_CRM_OPS_WORKSPACE"

workspace_option = click.option(
    "--workspace", "-w", "workspace_path", type=click.Path(path_type=Path), default=Path("."),
    envvar=WORKSPACE_ENV, show_default=True,
    help=f"Workspace folder holding nav_crm_ops.toml (or ${WORKSPACE_ENV}).")
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
