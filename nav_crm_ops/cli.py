"""The ``nav-crm-ops`` command line.

Every read command takes ``--json`` for scripts. Exit codes: 0 success, 1 the run finished with
failed records, 2 bad input (config, mapping, filter, plan file), 3 a service or connection
problem, 4 another process holds the lease.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from . import __version__
from .exceptions import (
    ConfigError,
    ConnectorError,
    LeaseHeldError,
    NavCrmOpsError,
    PlanError,
)

EXIT_FAILED_RECORDS = 1
EXIT_BAD_INPUT = 2
EXIT_SERVICE = 3
EXIT_LEASE = 4


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
def demo(directory: Path) -> None:
    """Start the CRONUS sandbox, create a workspace for it and run the main job."""
    from .demo import run_demo

    run_demo(directory, echo=click.echo)


def _register_groups() -> None:
    from .sandbox.cli import sandbox_group

    cli.add_command(sandbox_group)


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
