"""``nav-crm-ops doctor``: is this workspace ready to sync? Per mapping, every table, column,
option value, privilege, BC entity set and property it needs, each problem with what to do;
and for the workspace, authentication, the application user, the BC company and the clocks.

Why before the first sync: otherwise the first sync is the test, and its errors arrive record
by record. The checks compare :mod:`.requirements` with :mod:`.facts` and never write.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from importlib import resources
from typing import Any

from ..config import WorkspaceConfig
from ..connectors.metadata import BcEntitySet, ServiceClock
from ..engine.mapping.entries import read_entries
from .crm_solution import CRM_SOLUTION, CrmSolution
from .facts import ROOT_API, BcFacts, CrmFacts, Facts, Probe, ProbeStatus, Service
from .requirements import (
    BcPropertyNeed,
    CrmColumnNeed,
    MappingRequirements,
    OptionNeed,
    PrivilegeNeed,
    Use,
)

__all__ = [
    "DEFAULT_OVERLAP",
    "Area",
    "DoctorReport",
    "Finding",
    "MappingReport",
    "judge",
    "mapping_origins",
]

DEFAULT_OVERLAP = timedelta(seconds=30)
"""The overlap incremental reads allow (``Planner(overlap=...)``'s default): clocks further
apart than this can make a sync miss changes."""
SETUP_CRM = "run `nav-crm-ops setup crm`"
INSTALL_EXTENSION = "install the BC extension (bc-extension/README.md)"


class Area(StrEnum):
    TABLE = "table"
    COLUMN = "column"
    OPTION = "option value"
    PRIVILEGE = "privilege"
    BC_API = "bc api"
    BC_ENTITY = "bc entity set"
    BC_PROPERTY = "bc property"
    SERVICE = "service"


@dataclass(frozen=True)
class Finding:
    """One thing that is not ready: what is wrong and what to do."""

    area: Area
    problem: str
    fix: str


@dataclass(frozen=True)
class MappingReport:
    mapping: str
    checks: int
    findings: tuple[Finding, ...]

    @property
    def ready(self) -> bool:
        return not self.findings


@dataclass(frozen=True)
class DoctorReport:
    """Workspace-wide probes and one report per mapping."""

    workspace: str
    probes: tuple[Probe, ...]
    mappings: tuple[MappingReport, ...]

    @property
    def unreachable(self) -> bool:
        return any(p.status is ProbeStatus.UNREACHABLE for p in self.probes)

    @property
    def ready(self) -> bool:
        return (all(p.status is ProbeStatus.OK for p in self.probes)
                and all(m.ready for m in self.mappings))

    def to_dict(self) -> dict[str, Any]:
        return {
            "workspace": self.workspace, "ready": self.ready,
            "checks": [{"service": p.service.value, "check": p.check,
                        "status": p.status.value, "message": p.message, "fix": p.fix}
                       for p in self.probes],
            "mappings": [{"mapping": m.mapping, "ready": m.ready, "checks": m.checks,
                          "findings": [{"area": f.area.value, "problem": f.problem,
                                        "fix": f.fix} for f in m.findings]}
                         for m in self.mappings],
        }

    def render(self) -> str:
        """The report as an operator reads it: ✓/✗ per check and mapping, with the fix."""
        lines = [f"workspace {self.workspace}"]
        for probe in self.probes:
            mark = "✓" if probe.status is ProbeStatus.OK else "✗"
            lines.append(f"  {mark} {probe.service.value} {probe.check}: {probe.message}")
            if probe.fix:
                lines.append(f"      → {probe.fix}")
        for report in self.mappings:
            if report.ready:
                lines.append(f"✓ {report.mapping}: ready ({report.checks} checks)")
                continue
            if all(f.area is Area.SERVICE for f in report.findings):
                why = "; ".join(f.problem for f in report.findings)
                lines.append(f"✗ {report.mapping}: not checked ({why}: see the ✗ checks at "
                             "the top)")
                continue
            lines.append(f"✗ {report.mapping}: not ready")
            for finding in report.findings:
                lines.append(f"    ✗ {finding.problem}")
                lines.append(f"      → {finding.fix}")
        ready = sum(1 for m in self.mappings if m.ready)
        lines.append(f"{ready} of {len(self.mappings)} mappings ready"
                     + ("" if self.ready else "; fix the ✗ lines above and run doctor again"))
        return "\n".join(lines)


# -- where a mapping comes from ---------------------------------------------------------------
def mapping_origins(config: WorkspaceConfig) -> dict[str, str]:
    """Mapping name (upper case) → the file to edit: the last workspace override file that
    names it, else the packaged default (``mappings/<file>.yaml``)."""
    origins: dict[str, str] = {}
    folder = resources.files("nav_crm_ops.mappings")
    for item in sorted(folder.iterdir(), key=lambda p: p.name):
        if item.name.endswith(".yaml"):
            for entry in read_entries(item.read_text(encoding="utf-8"), item.name):
                origins[str(entry.get("name", "")).upper()] = f"mappings/{item.name}"
    for name in config.workspace.mapping_files:
        path = config.resolve_path(name)
        if not path.exists():
            continue
        for entry in read_entries(path.read_text(encoding="utf-8"), str(path)):
            origins[str(entry.get("name", "")).upper()] = name
    return origins


def _did_you_mean(name: str, candidates: Iterable[str]) -> str:
    pool = list(candidates)
    lowered = {c.lower(): c for c in pool}
    close = difflib.get_close_matches(name.lower(), list(lowered), n=1, cutoff=0.6)
    return f" (did you mean {lowered[close[0]]}?)" if close else ""


# -- the checks of one mapping ----------------------------------------------------------------
@dataclass(frozen=True)
class _Judge:
    """The comparison of one mapping's requirements with the facts."""

    facts: Facts
    origin: str
    solution: CrmSolution

    def crm(self, req: MappingRequirements) -> list[Finding]:
        crm = self.facts.crm
        if crm is None or not crm.tables_read:
            return [Finding(Area.SERVICE, "Dataverse could not be checked",
                            "fix the dataverse checks at the top first")]
        findings: list[Finding] = []
        missing: set[str] = set()
        for need in req.crm_tables:
            problem = self._table(crm, need.logical_name, need.entity_set)
            if problem is not None:
                findings.append(problem)
                if need.logical_name not in crm.tables:
                    missing.add(need.logical_name)
        for column in req.crm_columns:
            if column.table not in missing:
                findings.extend(self._column(crm, column))
        findings.extend(self._option(crm, o) for o in req.options
                        if o.table not in missing and not self._option_ok(crm, o))
        findings.extend(self._privileges(crm, req.privileges))
        return findings

    def _table(self, crm: CrmFacts, logical: str, entity_set: str) -> Finding | None:
        info = crm.tables.get(logical)
        if info is None:
            if self.solution.owns(logical):
                return Finding(Area.TABLE, f"Dataverse table {logical} does not exist (it is "
                               "part of the integration solution)", SETUP_CRM)
            return Finding(Area.TABLE, f"Dataverse table {logical} does not exist",
                           f"fix crm.logical_name in {self.origin}, or install the solution "
                           "that provides the table")
        if info.entity_set and entity_set and info.entity_set != entity_set:
            return Finding(Area.TABLE, f"Dataverse table {logical} has the entity set "
                           f"{info.entity_set!r}, the mapping names {entity_set!r}",
                           f"set crm.entity: {info.entity_set} in {self.origin}")
        if crm.attributes.get(logical) is None:
            return Finding(Area.TABLE, f"the columns of Dataverse table {logical} could not "
                           "be read", "see the dataverse checks at the top")
        return None

    def _column(self, crm: CrmFacts, need: CrmColumnNeed) -> list[Finding]:
        columns = crm.attributes.get(need.table)
        if columns is None:
            return []
        info = columns.get(need.column)
        if info is None:
            if self.solution.owns(need.table, need.column):
                return [Finding(Area.COLUMN, f"Dataverse column {need.table}.{need.column} "
                                "does not exist (integration solution)", SETUP_CRM)]
            hint = _did_you_mean(need.column, columns)
            return [Finding(Area.COLUMN, f"Dataverse column {need.table}.{need.column} does "
                            f"not exist ({need.where})",
                            f"fix the field name {need.column!r} in {self.origin}{hint}")]
        if not need.role.accepts(info.attribute_type):
            return [Finding(Area.COLUMN, f"Dataverse column {need.table}.{need.column} is a "
                            f"{info.attribute_type} column; {need.where} uses it as a "
                            f"{need.role.value}", f"point the field at a {need.role.value} "
                            f"column in {self.origin}")]
        return []

    @staticmethod
    def _option_ok(crm: CrmFacts, need: OptionNeed) -> bool:
        values = crm.options.get(need.table, {}).get(need.column)
        return values is None or need.value in values

    @staticmethod
    def _option(crm: CrmFacts, need: OptionNeed) -> Finding:
        return Finding(Area.OPTION, f"choice {need.table}.{need.column} has no option "
                       f"{need.value} ({need.label!r}; {need.where})",
                       f"{SETUP_CRM} (adds it with InsertOptionValue), or change the "
                       "option map's crm value")

    def _privileges(self, crm: CrmFacts, needs: Sequence[PrivilegeNeed]) -> list[Finding]:
        if crm.privileges is None:
            return []
        findings: list[Finding] = []
        for need in needs:
            info = crm.tables.get(need.table)
            if info is None or not info.schema_name:
                continue  # a missing table is reported as such; its privileges come with it
            name = need.name(info.schema_name)
            if name not in crm.privileges:
                findings.append(Finding(
                    Area.PRIVILEGE, f"the application user lacks the privilege {name}",
                    f"give the application user the privilege {name} (Security roles: "
                    f"table {info.schema_name}, {need.access.value}; e.g. in a role assigned to "
                    "it)"))
        return findings

    # Business Central / NAV ---------------------------------------------------------------
    def bc(self, req: MappingRequirements) -> list[Finding]:
        bc = self.facts.bc
        if bc is None:
            return [Finding(Area.SERVICE, "the ERP could not be checked",
                            "fix the business_central / nav checks at the top first")]
        findings: list[Finding] = []
        absent: set[tuple[str, str]] = set()
        for need in req.bc_entities:
            problem = self._entity(bc, need.api, need.entity_set)
            if problem is not None:
                absent.add((need.api, need.entity_set))
                if problem not in findings:
                    findings.append(problem)
        for prop in req.bc_properties:
            if (prop.api, prop.entity_set) not in absent:
                findings.extend(self._property(bc, prop))
        return findings

    def _entity(self, bc: BcFacts, api: str, entity_set: str) -> Finding | None:
        if bc.views is not None and bc.computed(entity_set):
            # computed from published pages: those must be there
            return next((f for s in bc.views.sources(entity_set)
                         if (f := self._entity(bc, api, s)) is not None), None)
        where, name = bc.locate(api, entity_set)
        if where not in bc.apis:
            return Finding(Area.BC_API, f"the $metadata of the {_erp(bc)} API {where} could "
                           "not be read", f"see the {bc.service.value} checks at the top")
        sets = bc.apis[where]
        url = bc.api_urls.get(where, where)
        if sets is None:
            return Finding(Area.BC_API, f"the BC custom API {api} does not exist at {url} "
                           "(404)", INSTALL_EXTENSION if api != ROOT_API else
                           "check business_central.api_url in nav_crm_ops.toml")
        if name in sets:
            return None
        hint = _did_you_mean(name, sets)
        if bc.service is Service.NAV:
            return Finding(Area.BC_ENTITY, f"no page is published as {name!r} (for "
                           f"{entity_set}) at {url}",
                           f"publish the page as web service {name!r} on NAV's Web Services "
                           f"page, or name its service in [nav.pages] {entity_set} = "
                           f"\"...\" in nav_crm_ops.toml{hint}")
        fix = (f"update the BC extension (bc-extension/README.md), or fix nav.entity in "
               f"{self.origin}{hint}" if api != ROOT_API
               else f"fix nav.entity {entity_set!r} in {self.origin}{hint}")
        return Finding(Area.BC_ENTITY, f"BC entity set {entity_set} is not in the API {api}",
                       fix)

    def _property(self, bc: BcFacts, need: BcPropertyNeed) -> list[Finding]:
        if bc.computed(need.entity_set, need.name):
            return []
        where, name = bc.locate(need.api, need.entity_set)
        entity: BcEntitySet | None = (bc.apis.get(where) or {}).get(name)
        if entity is None or need.name in entity.properties:
            return []
        hint = _did_you_mean(need.name, entity.properties)
        verb = "writes" if need.use is Use.WRITE else "reads"
        fix = f"fix the field name {need.name!r} in {self.origin}{hint}"
        if bc.service is Service.NAV:
            fix += f" (or add the field to the page published as {name!r})"
        return [Finding(Area.BC_PROPERTY, f"{_erp(bc)} {name} has no property "
                        f"{need.name!r} ({need.where} {verb} it)", fix)]


def _erp(bc: BcFacts) -> str:
    return "NAV" if bc.service is Service.NAV else "BC"


def judge(requirements: Sequence[MappingRequirements], facts: Facts,
          origins: Mapping[str, str], solution: CrmSolution = CRM_SOLUTION,
          ) -> list[MappingReport]:
    """One report per mapping: every problem of its requirements against the facts."""
    reports = []
    for req in requirements:
        origin = origins.get(req.mapping.upper(), "the workspace's mapping files")
        judge_ = _Judge(facts, origin, solution)
        findings = judge_.crm(req) + judge_.bc(req)
        checks = (len(req.crm_tables) + len(req.crm_columns) + len(req.options)
                  + len(req.privileges) + len(req.bc_entities) + len(req.bc_properties))
        reports.append(MappingReport(req.mapping, checks, tuple(findings)))
    return reports


# -- workspace-wide checks --------------------------------------------------------------------
def company_probe(config: WorkspaceConfig, bc: BcFacts | None) -> Probe | None:
    if bc is None or bc.companies is None:
        return None
    nav = bc.service is Service.NAV
    wanted = config.erp_company if nav else config.erp_company.lower()
    if wanted in bc.companies:
        shown = repr(wanted) if nav else f"{bc.companies[wanted]!r} ({wanted})"
        return Probe(bc.service, "company", ProbeStatus.OK, f"company {shown} is listed")
    listed = ", ".join(repr(name) if nav else f"{name} ({cid})"
                       for cid, name in bc.companies.items()) or "none"
    what = f"company {wanted!r}" if nav else f"company id {wanted}"
    setting = "nav.company_name" if nav else "business_central.company_id"
    return Probe(bc.service, "company", ProbeStatus.FAILED,
                 f"{what} is not among the companies this {'user' if nav else 'app'} can "
                 f"see: {listed}",
                 f"set {setting} in nav_crm_ops.toml to one of them (or give the "
                 f"{'user' if nav else 'app'} access to the company)")


def clock_probe(service: Service, clock: ServiceClock, overlap: timedelta) -> Probe | None:
    skew = clock.skew_s
    if skew is None:
        return None
    limit = overlap.total_seconds()
    text = (f"the service's clock is {abs(skew):.0f} s "
            f"{'ahead of' if skew >= 0 else 'behind'} this machine's (Date header; "
            f"allowed: {limit:.0f} s, the sync's overlap)")
    if abs(skew) <= limit:
        return Probe(service, "clock", ProbeStatus.OK, text)
    return Probe(service, "clock", ProbeStatus.FAILED, text,
                 "synchronize this machine's clock (NTP); watermarks depend on the clocks "
                 "agreeing within the overlap")


def workspace_probes(config: WorkspaceConfig, facts: Facts,
                     overlap: timedelta = DEFAULT_OVERLAP) -> tuple[Probe, ...]:
    probes = list(facts.probes)
    extra = [company_probe(config, facts.bc)]
    if facts.crm is not None:
        extra.append(clock_probe(Service.DATAVERSE, facts.crm.clock, overlap))
    if facts.bc is not None:
        extra.append(clock_probe(facts.bc.service, facts.bc.clock, overlap))
    probes.extend(p for p in extra if p is not None)
    return tuple(probes)


def build_report(config: WorkspaceConfig, requirements: Sequence[MappingRequirements],
                 facts: Facts, overlap: timedelta = DEFAULT_OVERLAP) -> DoctorReport:
    """The doctor's report for a workspace from the facts read."""
    return DoctorReport(config.workspace.name, workspace_probes(config, facts, overlap),
                        tuple(judge(requirements, facts, mapping_origins(config))))
