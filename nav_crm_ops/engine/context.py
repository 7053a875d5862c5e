"""What the engine's person-facing operations share: mappings, state store, connections.

The workspace builds one :class:`EngineContext` when an operation needs the services (coupling,
comparing, browsing records); the operations (``engine.coupling``, ``engine.browse``) take it
instead of the workspace, so they do not depend on it and each is read on its own.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..connectors.factory import Connections
from ..store import StateStore
from .mapping import MappingSet, TableMapping
from .resolve import Resolver
from .sides import SideReader
from .sync.applier import Applier
from .sync.planner import Planner

__all__ = ["EngineContext"]


@dataclass(frozen=True)
class EngineContext:
    """One workspace's mappings, state store and (connected) services."""

    mappings: MappingSet
    store: StateStore
    connections: Connections
    ignore_own_changes: bool = True

    def planner(self) -> Planner:
        return Planner(self.mappings, self.store, self.connections,
                       ignore_own_changes=self.ignore_own_changes)

    def applier(self) -> Applier:
        return Applier(self.mappings, self.store, self.connections)

    def resolver(self) -> Resolver:
        return Resolver(self.mappings, self.store, self.connections)

    def readers(self, mapping: TableMapping) -> tuple[SideReader, SideReader]:
        """The NAV and CRM readers of ``mapping``."""
        return self.planner().readers(mapping)

    def requests(self) -> int:
        """Requests sent so far by the connections (a run's request count is a difference)."""
        c = self.connections
        return sum(x.stats.requests for x in (c.dataverse, c.business_central,
                                              c.business_central_custom))
