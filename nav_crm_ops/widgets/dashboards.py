"""Serve the front-end notebooks as Voilà dashboards (``nav-crm-ops ui`` / ``make dashboards``).

Why Voilà: people who never open JupyterLab still get the four panels as web pages; Voilà runs
each notebook in its own kernel and shows only the widgets and outputs. Tracebacks are shown
(``show_tracebacks``) so a failure is never a blank page. The notebooks open the workspace
named by ``$NAV_CRM_OPS_WORKSPACE`` (or the sandbox when unset), so no secret is passed here.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from ..exceptions import NavCrmOpsError
from .session import WORKSPACE_ENV

__all__ = ["DEFAULT_PORT", "dashboard_environment", "serve_dashboards", "voila_command"]

DEFAULT_PORT = 8866


def voila_command(notebooks: str | os.PathLike[str], *, port: int = DEFAULT_PORT,
                  ip: str = "127.0.0.1", open_browser: bool = False) -> list[str]:
    """The command line that serves every notebook in ``notebooks`` (a tree page lists them)."""
    if importlib.util.find_spec("voila") is None:
        raise NavCrmOpsError("Voilà is not installed in this environment; install it with "
                             "`pip install voila` to serve the dashboards, or open the "
                             "notebooks in JupyterLab (`make lab`)")
    folder = Path(notebooks)
    if not folder.is_dir():
        raise NavCrmOpsError(f"notebook folder {folder} does not exist; pass the folder that "
                             "holds preview_changes.ipynb and the other front ends")
    command = [sys.executable, "-m", "voila", f"--port={port}", f"--Voila.ip={ip}",
               "--show_tracebacks=True", str(folder)]
    if not open_browser:
        command.insert(3, "--no-browser")
    return command


def dashboard_environment(workspace: str | os.PathLike[str] | None,
                          base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for the Voilà process: ``$NAV_CRM_OPS_WORKSPACE`` set when given."""
    env = dict(os.environ if base is None else base)
    if workspace is not None:
        env[WORKSPACE_ENV] = str(Path(workspace).resolve())
    return env


def serve_dashboards(notebooks: str | os.PathLike[str] = "notebooks", *,
                     workspace: str | os.PathLike[str] | None = None,
                     port: int = DEFAULT_PORT, open_browser: bool = False) -> int:
    """Run Voilà in the foreground until it stops (Ctrl+C); returns its exit code."""
    command = voila_command(notebooks, port=port, open_browser=open_browser)
    try:
        return subprocess.call(command, env=dashboard_environment(workspace))
    except KeyboardInterrupt:
        return 0
