"""Apply: see :mod:`nav_crm_ops.engine.sync.applier` (this path stays for notebooks and
callers)."""

from .sync.applier import Applier

__all__ = ["Applier"]
