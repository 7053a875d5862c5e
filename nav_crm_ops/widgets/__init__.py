"""ipywidgets front ends: panels that call the workspace API and hold no sync logic.

``from nav_crm_ops.widgets import PreviewPanel`` (and ``RunMappingsPanel``, ``LogsPanel``,
``CouplingPanel``); each takes the workspace in its constructor and displays itself (or show
``panel.widget``). Failures appear inside the panel in plain words; under
:func:`raise_callback_errors` (tests) they are raised too.
"""

from .coupling import CouplingPanel
from .errors import ActionButton, ErrorArea, callbacks_raise, raise_callback_errors
from .logs import LogsPanel
from .preview import PreviewPanel
from .progress import ProgressPanel
from .runs import RunMappingsPanel
from .session import dashboard_mapping, dashboard_view, notebook_workspace
from .table import DataTable

__all__ = [
    "ActionButton",
    "CouplingPanel",
    "DataTable",
    "ErrorArea",
    "LogsPanel",
    "PreviewPanel",
    "ProgressPanel",
    "RunMappingsPanel",
    "callbacks_raise",
    "dashboard_mapping",
    "dashboard_view",
    "notebook_workspace",
    "raise_callback_errors",
]
