"""Attribute (column) metadata of the emulated Dataverse: what ``EntityDefinitions(...)/
Attributes`` answers for each column, and the columns a ``POST .../Attributes`` body describes.

Types follow *AttributeMetadata EntityType* and its derived types in the Web API reference
(``#Microsoft.Dynamics.CRM.StringAttributeMetadata`` ...) and the create bodies of *Create and
update column definitions using the Web API*
(https://learn.microsoft.com/power-apps/developer/data-platform/webapi/create-update-column-definitions-using-web-api).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ..dataverse_schema import TYPE_COLUMN_SUFFIX, is_polymorphic
from ..schema import Column, EntityDef
from .common import CODE_INVALID_ARGUMENT, CODE_ODATA, DataverseError

NAMESPACE = "Microsoft.Dynamics.CRM."

# Column type → (AttributeType, metadata type without the "AttributeMetadata" suffix).
_KINDS: dict[str, tuple[str, str]] = {
    "string": ("String", "String"), "memo": ("Memo", "Memo"), "int": ("Integer", "Integer"),
    "bigint": ("BigInt", "BigInt"), "decimal": ("Decimal", "Decimal"),
    "money": ("Money", "Money"), "bool": ("Boolean", "Boolean"),
    "datetime": ("DateTime", "DateTime"), "date": ("DateTime", "DateTime"),
    "choice": ("Picklist", "Picklist"), "guid": ("Uniqueidentifier", "UniqueIdentifier"),
    "lookup": ("Lookup", "Lookup"), "json": ("String", "String"),
    "option": ("String", "String"),
}

# Metadata type of a create body → (column type, default MaxLength, largest MaxLength).
CREATABLE: dict[str, tuple[str, int | None, int | None]] = {
    "StringAttributeMetadata": ("string", 100, 4000),
    "MemoAttributeMetadata": ("memo", 2000, 1048576),
    "MoneyAttributeMetadata": ("money", None, None),
    "BooleanAttributeMetadata": ("bool", None, None),
    "DateTimeAttributeMetadata": ("datetime", None, None),
    "PicklistAttributeMetadata": ("choice", None, None),
    "IntegerAttributeMetadata": ("int", None, None),
    "DecimalAttributeMetadata": ("decimal", None, None),
    "BigIntAttributeMetadata": ("bigint", None, None),
}

BASE_PROPERTIES = ("LogicalName", "SchemaName", "AttributeType", "AttributeTypeName",
                   "MetadataId", "EntityLogicalName", "IsPrimaryId", "IsPrimaryName",
                   "IsCustomAttribute", "IsValidForCreate", "IsValidForUpdate",
                   "IsValidForRead", "RequiredLevel", "AttributeOf")
"""The AttributeMetadata properties the sandbox serves (``$select`` may name these)."""

SCHEMA_NAME = re.compile(r"[A-Za-z][A-Za-z0-9]{1,7}_[A-Za-z0-9_]+")
"""A custom SchemaName: the publisher's customization prefix (2-8 letters or digits, starting
with a letter), an underscore, then the name."""


def kind(entity: EntityDef, column: Column) -> tuple[str, str]:
    """(AttributeType, ``@odata.type`` name) of one column."""
    if column.name == "statecode":
        return "State", "State"
    if column.name == "statuscode":
        return "Status", "Status"
    if column.type == "lookup":
        if column.name == "ownerid":
            return "Owner", "Lookup"
        if is_polymorphic(column):
            customer = set(column.lookup_targets) == {"account", "contact"}
            return ("Customer" if customer else "Lookup"), "Lookup"
    if column.name.endswith(TYPE_COLUMN_SUFFIX):
        owner = entity.column(column.name[:-len(TYPE_COLUMN_SUFFIX)])
        if owner is not None and owner.type == "lookup":
            return "EntityName", "EntityName"
    return _KINDS[column.type]


def attribute(entity: EntityDef, column: Column, schema_name: str,
              metadata_id: str) -> dict[str, Any]:
    """The full AttributeMetadata of one column (before ``$select``)."""
    attribute_type, odata = kind(entity, column)
    owner = None
    if attribute_type == "EntityName":
        owner = column.name[:-len(TYPE_COLUMN_SUFFIX)]
    required = "SystemRequired" if column.name == entity.key else (
        "ApplicationRequired" if column.required else "None")
    item: dict[str, Any] = {
        "@odata.type": f"#{NAMESPACE}{odata}AttributeMetadata",
        "LogicalName": column.name, "SchemaName": schema_name,
        "AttributeType": attribute_type,
        "AttributeTypeName": {"Value": f"{attribute_type}Type"},
        "MetadataId": metadata_id, "EntityLogicalName": entity.name,
        "IsPrimaryId": column.name == entity.key,
        "IsPrimaryName": column.name == entity.extra.get("primary_name"),
        "IsCustomAttribute": column.name.startswith("nav_") or bool(
            (entity.extra.get("column_schemas") or {}).get(column.name)),
        "IsValidForCreate": not column.read_only and owner is None,
        "IsValidForUpdate": not column.read_only and owner is None
                            and column.name != entity.key,
        "IsValidForRead": True,
        "RequiredLevel": {"Value": required, "CanBeChanged": column.name != entity.key,
                          "ManagedPropertyLogicalName": "canmodifyrequirementlevelsettings"},
        "AttributeOf": owner,
    }
    if odata in ("String", "Memo"):
        item["MaxLength"] = column.max_length
    if odata == "Lookup":
        item["Targets"] = list(column.lookup_targets)
    if column.type == "date":
        item["Format"] = "DateOnly"
    return item


def select(item: Mapping[str, Any], wanted: list[str] | None) -> dict[str, Any]:
    """``$select`` over attribute metadata: the chosen properties plus ``@odata.type`` and
    ``MetadataId`` (which the real service always returns)."""
    if wanted is None:
        return dict(item)
    keep = {"@odata.type", "MetadataId", *wanted}
    return {k: v for k, v in item.items() if k in keep}


def select_list(text: str | None, allowed: tuple[str, ...], type_name: str) -> list[str] | None:
    """``$select=A,B`` over metadata properties; an unknown one answers as the real service."""
    if not text:
        return None
    names = [n.strip() for n in text.split(",") if n.strip()]
    for name in names:
        if name not in allowed:
            raise DataverseError(400, CODE_ODATA, f"Could not find a property named '{name}' "
                                                  f"on type '{NAMESPACE}{type_name}'.")
    return names


def logical_names_filter(text: str | None) -> list[str] | None:
    """``LogicalName eq 'a' or LogicalName eq 'b'`` → ["a", "b"]; None without a filter."""
    if text is None:
        return None
    term = r"\s*LogicalName\s+eq\s+'(\w+)'\s*"
    if not re.fullmatch(rf"{term}(?:or{term})*", text):
        raise DataverseError(501, CODE_ODATA, "The sandbox only emulates $filter=LogicalName "
                                              "eq 'a' or LogicalName eq 'b' ... on metadata, "
                                              f"not '{text}'.")
    return re.findall(r"'(\w+)'", text)


def label_text(value: Any) -> str | None:
    """The first localized label of a ``Label`` (``DisplayName``...), None when absent."""
    if not isinstance(value, Mapping):
        return None
    labels = value.get("LocalizedLabels") or []
    first = labels[0] if labels and isinstance(labels[0], Mapping) else {}
    text = first.get("Label")
    return str(text) if text else None


def check_schema_name(value: Any, what: str) -> str:
    """A SchemaName sent in a create body: present and with a customization prefix."""
    if not isinstance(value, str) or not value:
        raise DataverseError(400, CODE_INVALID_ARGUMENT, f"SchemaName is required for the "
                                                         f"{what}.")
    if not SCHEMA_NAME.fullmatch(value):
        raise DataverseError(400, CODE_INVALID_ARGUMENT,
                             f"The SchemaName '{value}' of the {what} must start with a valid "
                             "customization prefix followed by an underscore (e.g. "
                             "nav_Name); prefixes are 2-8 letters or digits.")
    return value


def column_from_body(data: Mapping[str, Any]) -> tuple[Column, str]:
    """A ``POST .../Attributes`` body (or an item of a new table's ``Attributes``) → (column,
    SchemaName); refuses what the real service refuses."""
    odata = str(data.get("@odata.type") or "").lstrip("#").removeprefix(NAMESPACE)
    if odata == "LookupAttributeMetadata":
        raise DataverseError(400, CODE_INVALID_ARGUMENT,
                             "Lookup columns are created with their relationship: POST "
                             "RelationshipDefinitions with a OneToManyRelationshipMetadata.")
    if odata not in CREATABLE:
        raise DataverseError(400, CODE_ODATA, f"The @odata.type '{odata or '(missing)'}' is not "
                                              "a column type the sandbox creates; use one of "
                                              f"{', '.join(sorted(CREATABLE))}.")
    schema = check_schema_name(data.get("SchemaName"), "column")
    if label_text(data.get("DisplayName")) is None:
        raise DataverseError(400, CODE_INVALID_ARGUMENT, f"DisplayName is required for the "
                                                         f"column {schema}.")
    column_type, default_length, longest = CREATABLE[odata]
    length = _max_length(data, schema, default_length, longest)
    required = (data.get("RequiredLevel") or {}).get("Value") in ("ApplicationRequired",
                                                                  "SystemRequired")
    choices = _choices(data, schema, column_type)
    if column_type == "datetime" and str(data.get("Format") or "") == "DateOnly":
        column_type = "date"
    column = Column(schema.lower(), column_type, max_length=length,  # type: ignore[arg-type]
                    required=required, choices=choices,
                    default=False if column_type == "bool" else None)
    return column, schema


def _max_length(data: Mapping[str, Any], schema: str, default: int | None,
                longest: int | None) -> int | None:
    if longest is None:
        return None
    value = data.get("MaxLength", default)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= longest:
        raise DataverseError(400, CODE_INVALID_ARGUMENT, f"MaxLength of {schema} must be a "
                                                         f"whole number from 1 to {longest}.")
    return value


def _choices(data: Mapping[str, Any], schema: str, column_type: str) -> dict[int, str] | None:
    """The options of a new Picklist (``OptionSet.Options``) or Boolean (``TrueOption`` /
    ``FalseOption``) column."""
    if column_type not in ("choice", "bool"):
        return None
    option_set = data.get("OptionSet")
    if not isinstance(option_set, Mapping):
        raise DataverseError(400, CODE_INVALID_ARGUMENT, f"OptionSet is required for the "
                                                         f"column {schema}.")
    if column_type == "bool":
        for side in ("TrueOption", "FalseOption"):
            if label_text((option_set.get(side) or {}).get("Label")) is None:
                raise DataverseError(400, CODE_INVALID_ARGUMENT,
                                     f"OptionSet.{side} with a Label is required for the "
                                     f"Boolean column {schema}.")
        return None
    choices: dict[int, str] = {}
    for option in option_set.get("Options") or []:
        value, text = _option(option, schema)
        if value in choices:
            raise DataverseError(400, CODE_INVALID_ARGUMENT, f"The option value {value} is "
                                                             f"used twice in {schema}.")
        choices[value] = text
    return choices or None


def _option(option: Any, schema: str) -> tuple[int, str]:
    """(Value, label) of one option of a new Picklist column."""
    value = option.get("Value") if isinstance(option, Mapping) else None
    text = label_text(option.get("Label")) if isinstance(option, Mapping) else None
    if isinstance(value, bool) or not isinstance(value, int) or text is None:
        raise DataverseError(400, CODE_INVALID_ARGUMENT, f"Each option of {schema} needs an "
                                                         "integer Value and a Label.")
    return value, text
