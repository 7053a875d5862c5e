"""The tables and columns one running Dataverse sandbox serves: its metadata catalog.

The built-in definitions come from :mod:`.dataverse_schema`. The *integration solution* is every
table and column whose logical name starts with :data:`SOLUTION_PREFIX`; a sandbox started with
``crm_solution=False`` serves Dataverse without them. Tables and columns created through the
metadata Web API (``POST EntityDefinitions``, ``.../Attributes``, ``RelationshipDefinitions``)
are added here, kept in the sandbox's SQLite file (table ``_definitions`` of the store) and
loaded again when a sandbox opens the same data directory; :meth:`DataverseCatalog.reset`
returns to the flavour the sandbox started with.

A definition is stored as JSON: ``{"kind": "table", "name", "entity_set", "schema",
"primary_name", "owned", "columns": [<column>...]}`` or ``{"kind": "column", "entity",
"column": <column>}`` where ``<column>`` is ``{"name", "schema", "type", "max_length",
"required", "choices": [[value, label]...], "targets": [...], "navigation"}``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

from .dataverse_schema import (
    DATAVERSE_ENTITIES,
    entity_definition,
    is_polymorphic,
)
from .schema import Column, EntityDef
from .store import SandboxStore

__all__ = ["SOLUTION_PREFIX", "DataverseCatalog", "base_entities", "column_schema_name",
           "table_schema_name"]

SOLUTION_PREFIX = "nav_"
SERVICE = "dataverse"

TABLE_SCHEMA_NAMES = {
    "systemuser": "SystemUser", "team": "Team", "businessunit": "BusinessUnit",
    "transactioncurrency": "TransactionCurrency", "uomschedule": "UoMSchedule", "uom": "UoM",
    "account": "Account", "contact": "Contact", "product": "Product",
    "pricelevel": "PriceLevel", "productpricelevel": "ProductPriceLevel",
    "salesorder": "SalesOrder", "salesorderdetail": "SalesOrderDetail", "invoice": "Invoice",
    "invoicedetail": "InvoiceDetail", "opportunity": "Opportunity", "incident": "Incident",
    "quote": "Quote", "post": "Post", "nav_accountstatistics": "nav_AccountStatistics",
}
"""SchemaName of the built-in tables (privilege names use it: ``prvReadAccount``)."""

SOLUTION_COLUMN_SCHEMA_NAMES = {
    "nav_submittedtobackoffice": "nav_SubmittedToBackOffice",
    "nav_bcordernumber": "nav_BCOrderNumber", "nav_bcinvoicenumber": "nav_BCInvoiceNumber",
    "nav_accountstatisticsid": "nav_AccountStatisticsId", "nav_name": "nav_Name",
    "nav_customerno": "nav_CustomerNo", "nav_accountid": "nav_AccountId",
    "nav_balance": "nav_Balance", "nav_outstandingorders": "nav_OutstandingOrders",
    "nav_shippednotinvoiced": "nav_ShippedNotInvoiced",
    "nav_outstandinginvoices": "nav_OutstandingInvoices",
    "nav_overdueamount": "nav_OverdueAmount", "nav_totalsales": "nav_TotalSales",
    "nav_lastupdated": "nav_LastUpdated",
}


def _in_solution(name: str) -> bool:
    return name.startswith(SOLUTION_PREFIX)


def base_entities(crm_solution: bool = True) -> tuple[EntityDef, ...]:
    """The built-in Dataverse tables of a flavour (without the ``nav_`` ones unless asked)."""
    if crm_solution:
        return DATAVERSE_ENTITIES
    return tuple(
        dataclasses.replace(e, columns=tuple(c for c in e.columns if not _in_solution(c.name)))
        for e in DATAVERSE_ENTITIES if not _in_solution(e.name))


def table_schema_name(entity: EntityDef) -> str:
    return str(entity.extra.get("schema_name") or TABLE_SCHEMA_NAMES.get(entity.name)
               or entity.name)


def column_schema_name(entity: EntityDef, column: Column) -> str:
    """The SchemaName of a column: as created, or the solution's, or (built-in columns) the
    logical name with a capital first letter (the real names are not all reproduced)."""
    created = (entity.extra.get("column_schemas") or {}).get(column.name)
    if created:
        return str(created)
    known = SOLUTION_COLUMN_SCHEMA_NAMES.get(column.name)
    if known is None and column.name == entity.key:
        known = f"{table_schema_name(entity)}Id"
    return known or column.name[:1].upper() + column.name[1:]


def column_to_json(column: Column, schema: str) -> dict[str, Any]:
    return {"name": column.name, "schema": schema, "type": column.type,
            "max_length": column.max_length, "required": column.required,
            "choices": [[v, label] for v, label in (column.choices or {}).items()],
            "targets": list(column.lookup_targets), "navigation": column.navigation}


def column_from_json(data: Mapping[str, Any]) -> Column:
    choices = {int(v): str(label) for v, label in data.get("choices") or []}
    return Column(str(data["name"]), data["type"], max_length=data.get("max_length"),
                  required=bool(data.get("required")), choices=choices or None,
                  lookup_targets=tuple(data.get("targets") or ()),
                  navigation=data.get("navigation"),
                  default=False if data["type"] == "bool" else None)


def table_from_json(data: Mapping[str, Any]) -> EntityDef:
    columns = tuple(column_from_json(c) for c in data["columns"])
    entity = entity_definition(str(data["name"]), str(data["entity_set"]), columns,
                               primary_name=str(data["primary_name"]),
                               states={0: (1,), 1: (2,)}, owned=bool(data.get("owned")))
    schemas = {str(c["name"]): str(c["schema"]) for c in data["columns"]}
    schemas[entity.key] = f"{data['schema']}Id"
    return _with_extra(entity, schema_name=str(data["schema"]), column_schemas=schemas,
                       custom=True)


def _with_extra(entity: EntityDef, **extra: Any) -> EntityDef:
    return dataclasses.replace(entity, extra={**entity.extra, **extra})


def with_column(entity: EntityDef, column: Column, schema: str) -> EntityDef:
    """``entity`` with one more column (a money column brings the currency lookup)."""
    columns = [*entity.columns, column]
    if column.type == "money" and entity.column("transactioncurrencyid") is None:
        columns.append(Column("transactioncurrencyid", "lookup",
                              lookup_targets=("transactioncurrency",),
                              navigation="transactioncurrencyid"))
    indexed = tuple(entity.extra.get("indexed", ()))
    if column.type == "lookup":
        indexed = (*indexed, column.name)
    schemas = {**(entity.extra.get("column_schemas") or {}), column.name: schema}
    return dataclasses.replace(entity, columns=tuple(columns),
                               extra={**entity.extra, "indexed": indexed,
                                      "column_schemas": schemas})


class DataverseCatalog:
    """The served tables (by logical name and entity set) and their navigation properties.

    ``revision`` grows with every change, so callers can cache what they derive."""

    def __init__(self, store: SandboxStore, *, crm_solution: bool = True) -> None:
        self.store = store
        self.crm_solution = crm_solution
        self.revision = 0
        self.by_name: dict[str, EntityDef] = {}
        self._by_set: tuple[int, dict[str, EntityDef]] = (-1, {})
        self._rebuild(base_entities(crm_solution))
        for definition in store.definitions():
            self._apply(definition, fresh=False)

    # ----------------------------------------------------------------- views
    @property
    def entities(self) -> tuple[EntityDef, ...]:
        """Every table, internal ones included."""
        return tuple(self.by_name.values())

    @property
    def by_set(self) -> dict[str, EntityDef]:
        """The tables addressable on the Web API by entity set (kept until the next change:
        every request looks its table up here)."""
        if self._by_set[0] != self.revision:
            self._by_set = (self.revision, {e.entity_set: e for e in self.by_name.values()
                                            if not e.extra.get("internal")})
        return self._by_set[1]

    def navigation(self, entity: EntityDef) -> dict[str, tuple[Column, str | None]]:
        """``<navigation>@odata.bind`` name → (lookup column, fixed target or None)."""
        mapping: dict[str, tuple[Column, str | None]] = {}
        for col in entity.columns:
            if col.type != "lookup" or col.read_only:
                continue
            nav = col.navigation or col.name
            if is_polymorphic(col):
                for target in col.lookup_targets:
                    mapping[f"{nav}_{target}"] = (col, target)
                if col.name == "ownerid":
                    mapping[nav] = (col, None)
            else:
                mapping[nav] = (col, col.lookup_targets[0])
        return mapping

    # ----------------------------------------------------------------- changes
    def add(self, definition: dict[str, Any]) -> EntityDef:
        """Apply and persist one created table or column (see the module docstring)."""
        with self.store.transaction():
            entity = self._apply(definition, fresh=True)
            self.store.add_definition(definition)
        if entity is None:
            raise KeyError(f"no table {definition.get('entity')!r} to add a column to")
        return entity

    def _apply(self, definition: Mapping[str, Any], *, fresh: bool) -> EntityDef | None:
        if definition["kind"] == "table":
            entity = table_from_json(definition)
            if entity.name in self.by_name:  # built in since (flavour changed): keep that
                return self.by_name[entity.name]
            self.store.define(entity, fresh=fresh)
        else:
            current = self.by_name.get(str(definition["entity"]))
            column = column_from_json(definition["column"])
            if current is None or current.column(column.name) is not None:
                # Built in since (the flavour changed), or its table is no longer served.
                return current
            entity = with_column(current, column, str(definition["column"]["schema"]))
            self.store.define(entity, cleared=(column.name,) if fresh else ())
        self.by_name[entity.name] = entity
        self.revision += 1
        return entity

    def reset(self) -> None:
        """Forget the created tables and columns: back to the flavour the sandbox started
        with (call inside the store transaction that clears the rows)."""
        base = {e.name: e for e in base_entities(self.crm_solution)}
        for name, entity in list(self.by_name.items()):
            if name not in base:
                self.store.drop(f"{SERVICE}:{name}")
            elif entity is not base[name]:
                self.store.define(base[name])
        self.store.clear_definitions()
        self._rebuild(base.values())

    def _rebuild(self, entities: Iterable[EntityDef]) -> None:
        self.by_name = {e.name: e for e in entities}
        self.revision += 1
