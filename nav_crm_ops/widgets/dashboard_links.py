"""Links between the dashboards, and advice shown with the link that carries it out.

Why: advice inside a dashboard pointed at the command line ("see nav-crm-ops errors CONTACT").
A person in a dashboard follows a link instead: each :class:`~nav_crm_ops.engine.troubleshoot
.Remedy` names the dashboard where the cause is fixed (entries of the start page,
:data:`.landing.DASHBOARDS`). The notebooks are served side by side (Voilà
``/voila/render/<name>.ipynb``, JupyterLab's file browser), so a link relative to the current
notebook opens the other one in both.
"""

from __future__ import annotations

import html
import re
import urllib.parse
from collections.abc import Callable

from ..engine.report import MappingResult, SyncReport
from ..engine.troubleshoot import Remedy
from .landing import DASHBOARDS, Dashboard

__all__ = ["APPROVALS", "COUPLE", "PREVIEW", "TROUBLESHOOT", "advice_html", "dashboard_link",
           "next_steps_html", "without_cli_hints"]

_CLI_HINT = re.compile(r"\s*[:;,]?\s*(?:see|why:|restore:)?\s*`nav-crm-ops [^`]*`")
"""A command-line hint inside a message ("...: see `nav-crm-ops errors CUSTOMER`")."""


def _listed(notebook: str, title: str, view: str = "") -> Dashboard:
    """The start page's entry for ``notebook`` (and ``view``), so links and the start page
    name a dashboard alike."""
    return next((d for d in DASHBOARDS if d.notebook == notebook and d.view == view),
                Dashboard(notebook, title, "", view))


PREVIEW = _listed("preview_changes.ipynb", "Preview changes")
COUPLE = _listed("couple_records.ipynb", "Couple records")
TROUBLESHOOT = _listed("analyse_logs.ipynb", "Troubleshoot failed records", "view=errors")
APPROVALS = _listed("preview_changes.ipynb", "Approve plans", "view=approvals")
"""The Preview dashboard opened on its approvals section (plans approval-mode jobs saved):
a job report or run history about a run waiting for approval links here."""

_WHERE: dict[Remedy, Dashboard] = {
    Remedy.COUPLE: COUPLE,
    Remedy.RESOLVE_CONFLICT: PREVIEW,
}


def dashboard_link(dashboard: Dashboard, text: str | None = None, *,
                   mapping: str | None = None) -> str:
    """An ``<a>`` opening ``dashboard`` in a new tab (relative to the current notebook),
    narrowed to ``mapping`` when given (``&mapping=CUSTOMER``)."""
    query = dashboard.query
    if mapping:
        query += ("&" if query else "?") + urllib.parse.urlencode({"mapping": mapping})
    href = dashboard.notebook + query
    return (f"<a href='{html.escape(href, quote=True)}' target='_blank' "
            f"rel='noopener'>{html.escape(text or dashboard.title)}</a>")


def advice_html(text: str | None, remedy: str | Remedy | None) -> str:
    """The advice, followed by "open <dashboard>" when a dashboard carries it out."""
    if not text:
        return ""
    where = _WHERE.get(Remedy(remedy)) if remedy else None
    link = f" → open {dashboard_link(where)}" if where is not None else ""
    return f"<b>What to do:</b> {html.escape(text)}{link}"


def next_steps_html(report: SyncReport) -> str:
    """Where to go about records that did not synchronize (links, not command lines)."""
    steps = []
    stuck = report.failed + report.skipped
    if stuck:
        link = dashboard_link(TROUBLESHOOT, "open Troubleshoot failed records",
                              mapping=_only(report, lambda r: r.count("failed") + r.skipped))
        steps.append(f"{stuck} record(s) failed or are skipped: {link} to see why, retry or "
                     "unskip them")
    conflicts = report.counts["conflicts"]
    if conflicts:
        where = dashboard_link(PREVIEW, "open Preview changes",
                               mapping=_only(report, lambda r: r.count("conflicts")))
        steps.append(f"{conflicts} conflict(s) held: {where} and keep "
                     "the BC or the CRM value")
    return "".join(f"<p style='color:#b71c1c'>{step}</p>" for step in steps)


def _only(report: SyncReport, count: Callable[[MappingResult], int]) -> str | None:
    """The one mapping of ``report`` with something to ``count`` (a link opens the dashboard
    on it), None when several or none have."""
    names = {r.mapping for r in report.results if count(r)}
    return next(iter(names)) if len(names) == 1 else None


def without_cli_hints(text: str | None) -> str:
    """``text`` without its command-line hints (a dashboard shows links instead,
    :func:`next_steps_html`)."""
    return _CLI_HINT.sub("", text or "").strip()
