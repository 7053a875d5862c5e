"""``nav-crm-ops setup crm``: create in Dataverse what the mappings need and the org lacks —
the integration solution's tables and columns (D6 ``POST EntityDefinitions``, D7 ``POST
.../Attributes``, D8 ``POST RelationshipDefinitions``) and the option values the option maps
name (D9 ``InsertOptionValue``).

Why a plan first: metadata changes are hard to take back in a real org, so ``--dry-run`` shows
exactly the steps; the plan is computed from what the org has, so running it again finds
nothing to do (idempotent), and a definition created meanwhile by someone else ("already
exists") counts as done.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from ..connectors.metadata import DataverseMetadata
from ..exceptions import ConnectorError
from .crm_solution import CRM_SOLUTION, ColumnKind, CrmSolution, SolutionColumn
from .definitions import column_body, relationship_body, table_body
from .facts import CrmFacts
from .requirements import MappingRequirements

__all__ = ["SetupPlan", "SetupResult", "SetupStep", "StepKind", "apply_plan", "plan_setup"]

CODE_ALREADY_EXISTS = "0x80044363"
"""The refusal of a definition whose name is taken (D10)."""


class StepKind(StrEnum):
    TABLE = "create table"
    COLUMN = "create column"
    LOOKUP = "create lookup"
    OPTION = "add option value"


class StepStatus(StrEnum):
    CREATED = "created"
    EXISTED = "already existed"
    FAILED = "failed"


@dataclass(frozen=True)
class SetupStep:
    """One metadata request: what it creates and the request it sends."""

    kind: StepKind
    table: str
    name: str
    detail: str
    request: str

    def describe(self) -> str:
        return f"{self.kind.value} {self.table}" + (
            f".{self.name}" if self.name else "") + f" — {self.detail} ({self.request})"


@dataclass(frozen=True)
class SetupPlan:
    steps: tuple[SetupStep, ...]
    bodies: tuple[tuple[str, Any], ...]
    """Per step: (path argument, body) — kept apart so the frozen step prints cleanly."""

    @property
    def empty(self) -> bool:
        return not self.steps


@dataclass(frozen=True)
class SetupResult:
    step: SetupStep
    status: StepStatus
    message: str = ""


def _kind_text(column: SolutionColumn) -> str:
    if column.kind is ColumnKind.STRING:
        return f"text, max {column.max_length}"
    if column.kind is ColumnKind.LOOKUP:
        return f"lookup to {column.lookup_target}"
    return column.kind.value


def _needed_tables(requirements: Sequence[MappingRequirements]) -> set[str]:
    tables = {t.logical_name for r in requirements for t in r.crm_tables}
    tables |= {c.table for r in requirements for c in r.crm_columns}
    return tables


class _Planner:
    def __init__(self, crm: CrmFacts, solution: CrmSolution) -> None:
        self.crm = crm
        self.solution = solution
        self.steps: list[SetupStep] = []
        self.bodies: list[tuple[str, Any]] = []

    def add(self, step: SetupStep, target: str, body: Any) -> None:
        self.steps.append(step)
        self.bodies.append((target, body))

    def tables(self, needed: set[str]) -> None:
        for table in self.solution.tables:
            if table.logical_name not in needed or table.logical_name in self.crm.tables:
                continue
            plain = [c for c in self.solution.columns
                     if c.table == table.logical_name and c.kind is not ColumnKind.LOOKUP]
            detail = (f"{table.ownership.value}, primary name {table.primary_name.logical_name}"
                      f" ({_kind_text(table.primary_name)}), columns "
                      + ", ".join(f"{c.logical_name} ({_kind_text(c)})" for c in plain))
            self.add(SetupStep(StepKind.TABLE, table.logical_name, "", detail,
                               "POST EntityDefinitions"), "", table_body(table, plain))

    def columns(self, needed: set[str]) -> None:
        for column in self.solution.columns:
            if column.table not in needed or self._exists(column):
                continue
            if column.kind is ColumnKind.LOOKUP:
                target = self.crm.tables.get(column.lookup_target or "")
                key = target.primary_id if target else f"{column.lookup_target}id"
                self.add(SetupStep(StepKind.LOOKUP, column.table, column.logical_name,
                                   _kind_text(column), "POST RelationshipDefinitions"),
                         "", relationship_body(column, key))
            elif column.table in self.crm.tables:
                self.add(SetupStep(StepKind.COLUMN, column.table, column.logical_name,
                                   _kind_text(column),
                                   f"POST EntityDefinitions(LogicalName='{column.table}')/"
                                   "Attributes"), column.table, column_body(column))

    def _exists(self, column: SolutionColumn) -> bool:
        if column.table not in self.crm.tables:
            return False
        return column.logical_name in (self.crm.attributes.get(column.table) or {})

    def options(self, requirements: Sequence[MappingRequirements]) -> None:
        seen: set[tuple[str, str, int]] = set()
        for req in requirements:
            for need in req.options:
                key = (need.table, need.column, need.value)
                values = self.crm.options.get(need.table, {}).get(need.column)
                if key in seen or values is None or need.value in values:
                    continue
                seen.add(key)
                self.add(SetupStep(StepKind.OPTION, need.table, need.column,
                                   f"value {need.value} {need.label!r}",
                                   "POST InsertOptionValue"),
                         "", {"table": need.table, "column": need.column,
                              "value": need.value, "label": need.label})


def plan_setup(requirements: Sequence[MappingRequirements], crm: CrmFacts,
               solution: CrmSolution = CRM_SOLUTION) -> SetupPlan:
    """What to create so the mappings find what they need: missing solution tables (with
    their columns), missing solution columns, lookups, then missing option values."""
    planner = _Planner(crm, solution)
    needed = _needed_tables(requirements)
    planner.tables(needed)
    planner.columns(needed)
    planner.options(requirements)
    return SetupPlan(tuple(planner.steps), tuple(planner.bodies))


def _send(meta: DataverseMetadata, step: SetupStep, target: str, body: Any,
          solution: str | None) -> None:
    if step.kind is StepKind.TABLE:
        meta.create_table(body, solution)
    elif step.kind is StepKind.COLUMN:
        meta.create_column(target, body, solution)
    elif step.kind is StepKind.LOOKUP:
        meta.create_relationship(body, solution)
    else:
        meta.insert_option_value(body["table"], body["column"], body["value"], body["label"])


def apply_plan(plan: SetupPlan, meta: DataverseMetadata,
               solution: str | None = None) -> list[SetupResult]:
    """Send each step in order; stop at the first failure (later steps may depend on it).
    A step refused because the definition exists counts as done."""
    results: list[SetupResult] = []
    for step, (target, body) in zip(plan.steps, plan.bodies, strict=True):
        try:
            _send(meta, step, target, body, solution)
        except ConnectorError as error:
            if getattr(error, "code", "") == CODE_ALREADY_EXISTS:
                results.append(SetupResult(step, StepStatus.EXISTED, str(error)))
                continue
            results.append(SetupResult(step, StepStatus.FAILED, str(error)))
            break
        results.append(SetupResult(step, StepStatus.CREATED))
    return results
