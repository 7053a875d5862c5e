"""The base every panel shares: it displays itself in a notebook.

Why: ``PreviewPanel(ws)`` as the last expression of a cell should show the panel, as any
widget would; the panel's widget tree lives in ``panel.widget``. Under Voilà a line above it
links back to the dashboards' start page (people arrive from there and have no file tree).
"""

from __future__ import annotations

import html

import ipywidgets as widgets

from .session import dashboards_home

__all__ = ["Panel", "home_link"]


def home_link() -> widgets.HTML | None:
    """The "all dashboards" link for a dashboard under Voilà; None elsewhere."""
    home = dashboards_home()
    if home is None:
        return None
    link = widgets.HTML(f"<a href='{html.escape(home, quote=True)}' "
                        "style='text-decoration:none'>&larr; All dashboards</a>")
    link.add_class("nav-crm-ops-home")
    return link


class Panel:
    """Subclasses set ``self.widget`` (the panel's root box) in their constructor."""

    widget: widgets.Box

    def _ipython_display_(self) -> None:
        from IPython.display import display

        link = home_link()
        display(self.widget if link is None else widgets.VBox([link, self.widget]))
