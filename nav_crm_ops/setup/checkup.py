"""One workspace being checked or set up: its config, mappings, their requirements and the
connections, opened once for ``doctor`` and ``setup crm`` (the command line and notebooks).

Why not the engine's :class:`~nav_crm_ops.engine.workspace.Workspace`: that one opens the
state database and takes leases; checking a workspace must work before any of it exists and
must not change it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from types import TracebackType

from ..config import WorkspaceConfig, load_config
from ..connectors.factory import Connections, connect
from ..connectors.metadata import DataverseMetadata
from ..engine.mapping import MappingSet
from .crm_setup import SetupPlan, SetupResult, apply_plan, plan_setup
from .crm_solution import CRM_SOLUTION
from .doctor import DEFAULT_OVERLAP, DoctorReport, build_report
from .facts import CrmFacts, Facts, Service, gather_facts
from .requirements import MappingRequirements, requirements_for

__all__ = ["Checkup"]


@dataclass
class Checkup:
    config: WorkspaceConfig
    mappings: MappingSet
    requirements: list[MappingRequirements]
    connections: Connections

    @classmethod
    def open(cls, path: str | Path) -> Checkup:
        """Load the workspace (ConfigError / MappingError when it is wrong) and connect."""
        config = load_config(path)
        mappings = MappingSet.for_workspace(config)
        requirements = [requirements_for(m, mappings) for m in mappings]
        return cls(config, mappings, requirements, connect(config))

    def close(self) -> None:
        for client in (self.connections.dataverse, self.connections.business_central,
                       self.connections.business_central_custom):
            client.http.close()

    def __enter__(self) -> Checkup:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()

    def facts(self) -> Facts:
        """Read what the services have (every table the mappings or the solution name)."""
        tables = {t.logical_name for r in self.requirements for t in r.crm_tables}
        tables |= {c.table for r in self.requirements for c in r.crm_columns}
        tables |= {t.logical_name for t in CRM_SOLUTION.tables}
        tables |= {c.lookup_target for c in CRM_SOLUTION.columns if c.lookup_target}
        choice_tables = {o.table for r in self.requirements for o in r.options}
        apis = {e.api for r in self.requirements for e in r.bc_entities}
        scopes = {Service.DATAVERSE: self.config.dataverse.auth.scope,
                  Service.BUSINESS_CENTRAL: self.config.erp_auth.scope}
        return gather_facts(self.connections, crm_tables=tables, choice_tables=choice_tables,
                            bc_apis=apis, scopes=scopes)

    def doctor(self, overlap: timedelta = DEFAULT_OVERLAP) -> DoctorReport:
        return build_report(self.config, self.requirements, self.facts(), overlap)

    def plan(self, facts: CrmFacts) -> SetupPlan:
        return plan_setup(self.requirements, facts)

    def apply(self, plan: SetupPlan) -> list[SetupResult]:
        return apply_plan(plan, DataverseMetadata(self.connections.dataverse))
