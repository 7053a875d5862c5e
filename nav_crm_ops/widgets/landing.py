"""The dashboards' start page: what each dashboard is for, one line each, and a link to it.

Why a page of its own instead of Voilà's file tree: people choose a task, not a notebook file,
and the tree would list everything in the folder (the job notebooks under ``jobs/`` too, which
only make sense under papermill). :mod:`.voila_server` serves this page at ``/`` and at
``/voila/tree``, and renders only the notebooks named in :data:`DASHBOARDS`.
"""

from __future__ import annotations

import html
from dataclasses import dataclass

__all__ = ["DASHBOARDS", "Dashboard", "landing_html", "render_path"]


@dataclass(frozen=True)
class Dashboard:
    """One entry of the start page: the notebook it opens, its title and what it is for."""

    notebook: str
    title: str
    purpose: str
    view: str = ""
    """A query string (``view=runs``) the dashboard opens with, for entries that open a
    dashboard on one of its views."""

    @property
    def query(self) -> str:
        return f"?{self.view}" if self.view else ""


DASHBOARDS: tuple[Dashboard, ...] = (
    Dashboard("preview_changes.ipynb", "Preview changes",
              "See what a sync would write, record by record and field by field; exclude what "
              "you do not want, then apply exactly the rest."),
    Dashboard("run_mappings.ipynb", "Run mappings",
              "Synchronize one, several or all mappings now, in dependency order, with live "
              "progress and Cancel."),
    Dashboard("couple_records.ipynb", "Couple records",
              "Find a NAV / Business Central record and its Dynamics 365 counterpart side by "
              "side; couple, uncouple, create the missing one, or sync a pair now."),
    Dashboard("analyse_logs.ipynb", "Troubleshoot failed records",
              "Failures grouped by cause with what to do; open a record to see what was sent "
              "and answered; retry or unskip it.", view="view=errors"),
    Dashboard("analyse_logs.ipynb", "Run history",
              "Every run over time with its outcome, records written and failed, duration and "
              "requests (the job log of Troubleshoot).", view="view=runs"),
)
"""What the start page lists, in the order people usually need them."""


def render_path(dashboard: Dashboard) -> str:
    """The dashboard's address below the server's base URL."""
    return f"voila/render/{dashboard.notebook}{dashboard.query}"


def landing_html(base_url: str = "/") -> str:
    """The whole start page (a plain HTML document: no kernel starts until a link is opened)."""
    base = base_url if base_url.endswith("/") else base_url + "/"
    items = "".join(
        f"<li><a href='{html.escape(base + render_path(d), quote=True)}'>"
        f"{html.escape(d.title)}</a><p>{html.escape(d.purpose)}</p></li>"
        for d in DASHBOARDS)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>nav-crm-ops dashboards</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body {{ font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0;
       color: #1f2328; background: #f6f8fa; }}
header {{ background: #1f3a5f; color: white; padding: 20px 32px; }}
header h1 {{ margin: 0; font-size: 22px; font-weight: 600; }}
header p {{ margin: 6px 0 0; opacity: .85; }}
main {{ max-width: 860px; padding: 24px 32px; }}
ul {{ list-style: none; padding: 0; margin: 0; }}
li {{ background: white; border: 1px solid #d0d7de; border-radius: 6px; padding: 14px 18px;
     margin-bottom: 12px; }}
li a {{ font-size: 17px; font-weight: 600; color: #0b5cad; text-decoration: none; }}
li a:hover {{ text-decoration: underline; }}
li p {{ margin: 6px 0 0; color: #424a53; }}
footer {{ color: #57606a; font-size: 13px; padding: 0 32px 24px; }}
</style></head>
<body><header><h1>nav-crm-ops dashboards</h1>
<p>Keep Dynamics NAV / Business Central and Dynamics 365 Sales in sync: choose what to do.</p>
</header>
<main><ul class="dashboards">{items}</ul></main>
<footer>Each dashboard opens on the workspace this server was started with; the first one
takes a few seconds to start.</footer>
</body></html>
"""
