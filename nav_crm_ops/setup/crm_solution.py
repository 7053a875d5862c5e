"""The integration solution as data: the Dataverse tables and columns (publisher prefix
``nav_``) that the default mappings read and write and that a standard Dynamics 365 Sales org
does not have.

Why as data: ``doctor`` names what is missing from it, ``setup crm`` creates exactly it, and a
test holds it equal to the sandbox's ``nav_`` schema, so the sandbox, the mappings and what a
real org receives never drift apart. This module does not import the sandbox.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum

__all__ = [
    "CRM_SOLUTION",
    "SOLUTION_PREFIX",
    "ColumnKind",
    "CrmSolution",
    "Ownership",
    "SolutionColumn",
    "SolutionTable",
]

SOLUTION_PREFIX = "nav_"


class ColumnKind(StrEnum):
    """Column types the solution uses (the metadata type each is created with)."""

    STRING = "string"
    MEMO = "memo"
    MONEY = "money"
    BOOL = "bool"
    DATETIME = "datetime"
    DATE = "date"
    CHOICE = "choice"
    INTEGER = "int"
    DECIMAL = "decimal"
    LOOKUP = "lookup"

    @property
    def attribute_type(self) -> str:
        """The ``AttributeType`` Dataverse reports for a column of this kind."""
        return _ATTRIBUTE_TYPES[self]

    @property
    def metadata_type(self) -> str:
        """The ``@odata.type`` a create body names (``Microsoft.Dynamics.CRM.<this>``)."""
        return _METADATA_TYPES[self]


_ATTRIBUTE_TYPES = {
    ColumnKind.STRING: "String", ColumnKind.MEMO: "Memo", ColumnKind.MONEY: "Money",
    ColumnKind.BOOL: "Boolean", ColumnKind.DATETIME: "DateTime", ColumnKind.DATE: "DateTime",
    ColumnKind.CHOICE: "Picklist", ColumnKind.INTEGER: "Integer",
    ColumnKind.DECIMAL: "Decimal", ColumnKind.LOOKUP: "Lookup",
}
_METADATA_TYPES = {kind: f"{name}AttributeMetadata" for kind, name in {
    ColumnKind.STRING: "String", ColumnKind.MEMO: "Memo", ColumnKind.MONEY: "Money",
    ColumnKind.BOOL: "Boolean", ColumnKind.DATETIME: "DateTime", ColumnKind.DATE: "DateTime",
    ColumnKind.CHOICE: "Picklist", ColumnKind.INTEGER: "Integer",
    ColumnKind.DECIMAL: "Decimal", ColumnKind.LOOKUP: "Lookup"}.items()}


class Ownership(StrEnum):
    USER = "UserOwned"
    ORGANIZATION = "OrganizationOwned"


@dataclass(frozen=True)
class SolutionColumn:
    """One column of the solution on ``table`` (logical name).

    ``lookup_target``: the table a lookup points to; ``navigation``: its single-valued
    navigation property (the name mappings bind with); ``options``: value → label of a choice."""

    table: str
    schema_name: str
    kind: ColumnKind
    display_name: str
    max_length: int | None = None
    lookup_target: str | None = None
    navigation: str | None = None
    options: tuple[tuple[int, str], ...] = ()

    @property
    def logical_name(self) -> str:
        return self.schema_name.lower()

    @property
    def relationship_name(self) -> str:
        """SchemaName of a lookup's one-to-many relationship (``nav_account_nav_accountid``)."""
        return f"{SOLUTION_PREFIX}{self.lookup_target}_{self.logical_name}"


@dataclass(frozen=True)
class SolutionTable:
    """A table the solution adds; ``primary_name`` is created with it (D6)."""

    schema_name: str
    display_name: str
    display_collection_name: str
    entity_set: str
    ownership: Ownership
    primary_name: SolutionColumn

    @property
    def logical_name(self) -> str:
        return self.schema_name.lower()

    @property
    def primary_id(self) -> str:
        return f"{self.logical_name}id"


@dataclass(frozen=True)
class CrmSolution:
    """The solution: its new tables and every column it adds (to them or to standard tables;
    a new table's primary name column is in ``tables``, not in ``columns``)."""

    unique_name: str
    tables: tuple[SolutionTable, ...]
    columns: tuple[SolutionColumn, ...]

    def table(self, logical_name: str) -> SolutionTable | None:
        return next((t for t in self.tables if t.logical_name == logical_name), None)

    def column(self, table: str, logical_name: str) -> SolutionColumn | None:
        return next((c for c in self.all_columns()
                     if c.table == table and c.logical_name == logical_name), None)

    def all_columns(self) -> Iterator[SolutionColumn]:
        """Primary name columns, then the others."""
        for table in self.tables:
            yield table.primary_name
        yield from self.columns

    def owns(self, table: str, column: str | None = None) -> bool:
        """True when the solution provides the table (or the column of a table)."""
        if column is None:
            return self.table(table) is not None
        return self.column(table, column) is not None


_STATS = "nav_accountstatistics"


def _money(schema: str, label: str) -> SolutionColumn:
    return SolutionColumn(_STATS, schema, ColumnKind.MONEY, label)


CRM_SOLUTION = CrmSolution(
    unique_name="navcrmops",
    tables=(
        SolutionTable(
            schema_name="nav_AccountStatistics", display_name="Account Statistics",
            display_collection_name="Account Statistics",
            entity_set="nav_accountstatisticses", ownership=Ownership.ORGANIZATION,
            primary_name=SolutionColumn(_STATS, "nav_Name", ColumnKind.STRING, "Name",
                                        max_length=100)),
    ),
    columns=(
        SolutionColumn(_STATS, "nav_CustomerNo", ColumnKind.STRING, "Customer No.",
                       max_length=20),
        SolutionColumn(_STATS, "nav_AccountId", ColumnKind.LOOKUP, "Account",
                       lookup_target="account", navigation="nav_accountid"),
        _money("nav_Balance", "Balance"),
        _money("nav_OutstandingOrders", "Outstanding Orders"),
        _money("nav_ShippedNotInvoiced", "Shipped Not Invoiced"),
        _money("nav_OutstandingInvoices", "Outstanding Invoices"),
        _money("nav_OverdueAmount", "Overdue Amount"),
        _money("nav_TotalSales", "Total Sales"),
        SolutionColumn(_STATS, "nav_LastUpdated", ColumnKind.DATETIME, "Last Updated"),
        SolutionColumn("salesorder", "nav_SubmittedToBackOffice", ColumnKind.BOOL,
                       "Submitted to Back Office", options=((1, "Yes"), (0, "No"))),
        SolutionColumn("salesorder", "nav_BCOrderNumber", ColumnKind.STRING,
                       "BC Order No.", max_length=20),
        SolutionColumn("invoice", "nav_BCInvoiceNumber", ColumnKind.STRING,
                       "BC Invoice No.", max_length=20),
    ),
)
"""The solution the default mappings need (equal to the sandbox's ``nav_`` schema)."""
