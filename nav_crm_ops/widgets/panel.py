"""The base every panel shares: it displays itself in a notebook.

Why: ``PreviewPanel(ws)`` as the last expression of a cell should show the panel, as any
widget would; the panel's widget tree lives in ``panel.widget``.
"""

from __future__ import annotations

import ipywidgets as widgets

__all__ = ["Panel"]


class Panel:
    """Subclasses set ``self.widget`` (the panel's root box) in their constructor."""

    widget: widgets.Box

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)
