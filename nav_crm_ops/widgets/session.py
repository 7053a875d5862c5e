"""The workspace a notebook works on: the configured one, or the CRONUS sandbox by default.

Why: the front-end notebooks must open ready to use. With a workspace folder (the notebook's
``workspace_path`` parameter or ``$NAV_CRM_OPS_WORKSPACE``) they use its ``nav_crm_ops.toml``
and the secrets it names in the environment; without one they start the embedded sandbox (kept
running while the kernel lives, data kept under ``.nav_crm_ops/notebook-sandbox``) and a
workspace for it, so a new user can try everything safely. No secret is ever a notebook
parameter (papermill writes parameters into the output notebook).
"""

from __future__ import annotations

import atexit
import os
import urllib.parse
from pathlib import Path
from typing import TYPE_CHECKING

from ..config import write_config
from ..demo import SANDBOX_SECRET_ENV, sandbox_workspace_config
from ..engine.workspace import Workspace, open_workspace

if TYPE_CHECKING:
    from ..sandbox import Sandbox

__all__ = ["DEFAULT_SANDBOX_DIR", "WORKSPACE_ENV", "dashboard_mapping", "dashboard_view",
           "dashboards_home",
           "notebook_workspace", "stop_notebook_sandboxes"]

WORKSPACE_ENV = "NAV_CRM_OPS_WORKSPACE"
DEFAULT_SANDBOX_DIR = Path(".nav_crm_ops") / "notebook-sandbox"

_sandboxes: dict[Path, Sandbox] = {}


def stop_notebook_sandboxes() -> None:
    """Stop the sandboxes :func:`notebook_workspace` started (also done when Python exits)."""
    while _sandboxes:
        _, sandbox = _sandboxes.popitem()
        sandbox.stop()


atexit.register(stop_notebook_sandboxes)


def notebook_workspace(path: str | os.PathLike[str] | None = None, *,
                       sandbox_dir: str | os.PathLike[str] = DEFAULT_SANDBOX_DIR) -> Workspace:
    """Open ``path`` (or ``$NAV_CRM_OPS_WORKSPACE``); when neither is set, a workspace on the
    embedded CRONUS sandbox (started once per kernel and folder)."""
    chosen = str(path or "") or os.environ.get(WORKSPACE_ENV, "")
    if chosen:
        return open_workspace(chosen)
    folder = Path(sandbox_dir).resolve()
    sandbox = _sandboxes.get(folder)
    if sandbox is None:
        from ..sandbox import Sandbox  # only notebooks without a workspace need the sandbox

        sandbox = Sandbox(data_dir=folder / "sandbox", seed="cronus", port=0).start()
        _sandboxes[folder] = sandbox
    os.environ[SANDBOX_SECRET_ENV] = sandbox.info.client_secret.reveal()
    config = sandbox_workspace_config(sandbox.info, folder / "workspace")
    write_config(config, config.root)
    return open_workspace(config.root)


def dashboards_home() -> str | None:
    """The start page's address when this kernel runs a Voilà dashboard (Voilà puts its base
    URL in the kernel's environment), else None (JupyterLab, papermill)."""
    base = os.environ.get("VOILA_BASE_URL", "")
    return base or None


def dashboard_view() -> str:
    """The ``view`` a dashboard was opened with (``.../analyse_logs.ipynb?view=runs`` gives
    ``runs``), from the query string Voilà hands the kernel; "" when none."""
    return _query_value("view")


def dashboard_mapping() -> str:
    """The ``mapping`` a dashboard was opened with (``...?view=errors&mapping=CUSTOMER``, as
    links from another dashboard or a report about one mapping carry it); "" when none."""
    return _query_value("mapping")


def _query_value(name: str) -> str:
    query = urllib.parse.parse_qs(os.environ.get("QUERY_STRING", ""))
    return (query.get(name) or [""])[0]
