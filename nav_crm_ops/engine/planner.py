"""Preview: see :mod:`nav_crm_ops.engine.sync.planner` (this path stays for notebooks and
callers)."""

from .sync.planner import WHOAMI_TTL_S, MappingPlan, Planner, Selection, format_moment, parse_moment

__all__ = ["WHOAMI_TTL_S", "MappingPlan", "Planner", "Selection", "format_moment",
           "parse_moment"]
