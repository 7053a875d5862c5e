"""The integration solution as the toolkit describes it equals the sandbox's ``nav_`` schema,
every part of it is needed by a default mapping, and the toolkit never imports the sandbox."""

from __future__ import annotations

import subprocess
import sys

from nav_crm_ops.engine.mapping import MappingSet
from nav_crm_ops.sandbox.dataverse_catalog import (
    SOLUTION_COLUMN_SCHEMA_NAMES,
    TABLE_SCHEMA_NAMES,
)
from nav_crm_ops.sandbox.dataverse_schema import DATAVERSE_ENTITIES
from nav_crm_ops.sandbox.schema import Column
from nav_crm_ops.setup.crm_solution import CRM_SOLUTION, SolutionColumn
from nav_crm_ops.setup.requirements import requirements_for

SYSTEM = {"statecode", "statuscode", "createdon", "modifiedon", "createdby", "modifiedby",
          "versionnumber", "transactioncurrencyid"}


def _spec(column: SolutionColumn) -> tuple[object, ...]:
    return (column.table, column.logical_name, column.kind.value, column.max_length,
            (column.lookup_target,) if column.lookup_target else ())


def _sandbox(table: str, column: Column) -> tuple[object, ...]:
    return (table, column.name, column.type, column.max_length, column.lookup_targets)


def test_the_solution_equals_the_sandbox_nav_schema() -> None:
    sandbox: set[tuple[object, ...]] = set()
    tables: dict[str, tuple[str, str | None, bool]] = {}
    for entity in DATAVERSE_ENTITIES:
        if entity.name.startswith("nav_"):
            tables[entity.name] = (entity.entity_set, entity.extra.get("primary_name"),
                                   bool(entity.extra.get("owned")))
            sandbox |= {_sandbox(entity.name, c) for c in entity.columns
                        if c.name != entity.key and c.name not in SYSTEM}
        else:
            sandbox |= {_sandbox(entity.name, c) for c in entity.columns
                        if c.name.startswith("nav_")}
    assert {_spec(c) for c in CRM_SOLUTION.all_columns()} == sandbox
    assert {t.logical_name: (t.entity_set, t.primary_name.logical_name,
                             t.ownership.value == "UserOwned")
            for t in CRM_SOLUTION.tables} == tables


def test_schema_names_and_choices_match_the_sandbox() -> None:
    for table in CRM_SOLUTION.tables:
        assert TABLE_SCHEMA_NAMES[table.logical_name] == table.schema_name
    for column in CRM_SOLUTION.all_columns():
        assert SOLUTION_COLUMN_SCHEMA_NAMES[column.logical_name] == column.schema_name
    by_name = {e.name: e for e in DATAVERSE_ENTITIES}
    for column in CRM_SOLUTION.all_columns():
        served = by_name[column.table].column(column.logical_name)
        assert served is not None
        if column.kind.value == "choice":
            assert dict(column.options) == dict(served.choices or {})


def test_every_solution_column_is_needed_by_a_default_mapping() -> None:
    """All but ``nav_lastupdated``, which the solution (and the sandbox) carries for reports
    and no default mapping writes."""
    mappings = MappingSet.load()
    needed = {(c.table, c.column) for m in mappings
              for c in requirements_for(m, mappings).crm_columns}
    needed |= {(t.logical_name, t.primary_name.logical_name) for t in CRM_SOLUTION.tables}
    unused = {(c.table, c.logical_name) for c in CRM_SOLUTION.all_columns()} - needed
    assert unused == {("nav_accountstatistics", "nav_lastupdated")}


def test_doctor_and_setup_do_not_load_the_sandbox() -> None:
    code = ("import sys, nav_crm_ops.setup.cli, nav_crm_ops.setup.checkup; "
            "print(sorted(m for m in sys.modules if m.startswith('nav_crm_ops.sandbox')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]"
