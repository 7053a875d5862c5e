"""The integration solution's tables, columns and lookups as Dataverse Web API definition
bodies, in the documented shapes:

- a table (``POST EntityDefinitions``): *Create and update table definitions using the Web
  API* — ``EntityMetadata`` with ``OwnershipType`` and the primary name
  ``StringAttributeMetadata`` (``IsPrimaryName: true``) in ``Attributes``;
- a column (``POST EntityDefinitions(LogicalName='x')/Attributes``): *Create and update column
  definitions using the Web API* — ``StringAttributeMetadata`` (``MaxLength``,
  ``FormatName``), ``MoneyAttributeMetadata``, ``BooleanAttributeMetadata`` (``OptionSet`` with
  ``TrueOption`` / ``FalseOption``), ``DateTimeAttributeMetadata``,
  ``PicklistAttributeMetadata`` (``OptionSet.Options``) ...;
- a lookup (``POST RelationshipDefinitions``): *Create and update table relationships using
  the Web API* — ``OneToManyRelationshipMetadata`` with its ``Lookup``.
"""

from __future__ import annotations

from typing import Any

from .crm_solution import ColumnKind, SolutionColumn, SolutionTable

__all__ = ["column_body", "label", "relationship_body", "table_body"]

NS = "Microsoft.Dynamics.CRM."
LANGUAGE = 1033


def label(text: str) -> dict[str, Any]:
    """A ``Label`` with one English localized label."""
    return {"@odata.type": f"{NS}Label", "LocalizedLabels": [
        {"@odata.type": f"{NS}LocalizedLabel", "Label": text, "LanguageCode": LANGUAGE}]}


def _required_level(required: bool = False) -> dict[str, Any]:
    return {"Value": "ApplicationRequired" if required else "None", "CanBeChanged": True,
            "ManagedPropertyLogicalName": "canmodifyrequirementlevelsettings"}


def _option(value: int, text: str) -> dict[str, Any]:
    return {"Value": value, "Label": label(text)}


def _typed(column: SolutionColumn) -> dict[str, Any]:
    """The properties particular to the column's metadata type."""
    kind = column.kind
    if kind is ColumnKind.STRING:
        return {"MaxLength": column.max_length or 100, "FormatName": {"Value": "Text"}}
    if kind is ColumnKind.MEMO:
        return {"MaxLength": column.max_length or 2000, "Format": "TextArea"}
    if kind is ColumnKind.MONEY:
        return {"PrecisionSource": 2, "ImeMode": "Disabled"}
    if kind in (ColumnKind.DATETIME, ColumnKind.DATE):
        return {"Format": "DateOnly" if kind is ColumnKind.DATE else "DateAndTime",
                "DateTimeBehavior": {"Value": "UserLocal"}, "ImeMode": "Disabled"}
    if kind is ColumnKind.BOOL:
        labels = dict(column.options) or {1: "Yes", 0: "No"}
        return {"DefaultValue": False, "OptionSet": {
            "@odata.type": f"{NS}BooleanOptionSetMetadata", "OptionSetType": "Boolean",
            "TrueOption": _option(1, labels.get(1, "Yes")),
            "FalseOption": _option(0, labels.get(0, "No"))}}
    if kind is ColumnKind.CHOICE:
        return {"OptionSet": {"@odata.type": f"{NS}OptionSetMetadata", "IsGlobal": False,
                              "OptionSetType": "Picklist",
                              "Options": [_option(v, t) for v, t in column.options]}}
    return {}


def column_body(column: SolutionColumn, *, primary_name: bool = False) -> dict[str, Any]:
    """The definition of a non-lookup column (D7, or an item of a new table's Attributes)."""
    if column.kind is ColumnKind.LOOKUP:
        raise ValueError(f"{column.schema_name} is a lookup: it is created with its "
                         "relationship (relationship_body)")
    body: dict[str, Any] = {
        "@odata.type": f"{NS}{column.kind.metadata_type}",
        "AttributeType": column.kind.attribute_type,
        "AttributeTypeName": {"Value": f"{column.kind.attribute_type}Type"},
        "SchemaName": column.schema_name,
        "DisplayName": label(column.display_name),
        "Description": label(column.display_name),
        "RequiredLevel": _required_level(primary_name),
        **_typed(column),
    }
    if primary_name:
        body["IsPrimaryName"] = True
    return body


def table_body(table: SolutionTable, columns: list[SolutionColumn]) -> dict[str, Any]:
    """A new table (D6) with its primary name and the given non-lookup columns."""
    return {
        "@odata.type": f"{NS}EntityMetadata",
        "SchemaName": table.schema_name,
        "DisplayName": label(table.display_name),
        "DisplayCollectionName": label(table.display_collection_name),
        "Description": label(f"{table.display_name} (nav-crm-ops integration)"),
        "OwnershipType": table.ownership.value,
        "IsActivity": False,
        "HasActivities": False,
        "HasNotes": False,
        "Attributes": [column_body(table.primary_name, primary_name=True),
                       *(column_body(c) for c in columns)],
    }


def relationship_body(column: SolutionColumn, referenced_key: str) -> dict[str, Any]:
    """A lookup column with its one-to-many relationship (D8)."""
    if column.kind is not ColumnKind.LOOKUP or not column.lookup_target:
        raise ValueError(f"{column.schema_name} is no lookup")
    return {
        "@odata.type": f"{NS}OneToManyRelationshipMetadata",
        "SchemaName": column.relationship_name,
        "ReferencedEntity": column.lookup_target,
        "ReferencedAttribute": referenced_key,
        "ReferencingEntity": column.table,
        "ReferencingEntityNavigationPropertyName": column.navigation or column.logical_name,
        "AssociatedMenuConfiguration": {"Behavior": "UseCollectionName", "Group": "Details",
                                        "Order": 10000},
        "CascadeConfiguration": {"Assign": "NoCascade", "Delete": "RemoveLink",
                                 "Merge": "NoCascade", "Reparent": "NoCascade",
                                 "Share": "NoCascade", "Unshare": "NoCascade"},
        "Lookup": {
            "@odata.type": f"{NS}LookupAttributeMetadata",
            "AttributeType": "Lookup",
            "AttributeTypeName": {"Value": "LookupType"},
            "SchemaName": column.schema_name,
            "DisplayName": label(column.display_name),
            "Description": label(column.display_name),
            "RequiredLevel": _required_level(),
        },
    }
