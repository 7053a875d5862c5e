"""Dataverse service and metadata documents, WhoAmI, EntityDefinitions and InsertOptionValue."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping
from typing import Any

from ..dataverse_catalog import column_schema_name, table_schema_name
from ..dataverse_schema import (
    OPTION_VALUE_ENTITY,
)
from ..odata.coercion import is_integer
from ..odata.replies import Reply
from ..schema import Column, EntityDef
from . import attributes
from .common import (
    CODE_INVALID_ARGUMENT,
    CODE_NOT_FOUND,
    CODE_ODATA,
    CODE_PAYLOAD,
    EDM_TYPES,
    DataverseError,
    json_reply,
)
from .writes import DataverseWrites

ENTITY_PROPERTIES = ("MetadataId", "LogicalName", "SchemaName", "EntitySetName",
                     "LogicalCollectionName", "PrimaryIdAttribute", "PrimaryNameAttribute",
                     "ChangeTrackingEnabled", "OwnershipType", "IsCustomEntity",
                     "ObjectTypeCode")
"""The EntityMetadata properties the sandbox serves (``$select`` may name these)."""


class DataverseMetadata(DataverseWrites):
    """The service document, CSDL, functions and metadata actions."""

    def _service_document(self) -> Reply:
        return json_reply(200, {
            "@odata.context": f"{self.root}$metadata",
            "value": [{"name": s, "kind": "EntitySet", "url": s} for s in sorted(self.entities)],
        })

    def _metadata_document(self) -> bytes:
        """A CSDL document listing the emulated entity types, properties and sets."""
        if self._csdl is None or self._csdl[0] != self.catalog.revision:
            types: list[str] = []
            for entity in self.entities.values():
                members = [f'<Key><PropertyRef Name="{entity.key}"/></Key>']
                for col in entity.columns:
                    if self._hidden(entity, col):
                        continue
                    name = f"_{col.name}_value" if col.type == "lookup" else col.name
                    length = f' MaxLength="{col.max_length}"' if col.max_length else ""
                    members.append(f'<Property Name="{name}" Type="Edm.{EDM_TYPES[col.type]}"'
                                   f"{length}/>")
                for nav, (_column, target) in self.navigation[entity.name].items():
                    members.append(f'<NavigationProperty Name="{nav}" '
                                   f'Type="mscrm.{target or "principal"}"/>')
                for nav, (child, _lookup) in (entity.extra.get("collections") or {}).items():
                    members.append(f'<NavigationProperty Name="{nav}" '
                                   f'Type="Collection(mscrm.{child})"/>')
                types.append(f'<EntityType Name="{entity.name}">{"".join(members)}'
                             "</EntityType>")
            sets = "".join(f'<EntitySet Name="{s}" EntityType="Microsoft.Dynamics.CRM.'
                           f'{e.name}"/>' for s, e in self.entities.items())
            self._csdl = (self.catalog.revision, (
                '<?xml version="1.0" encoding="utf-8"?><edmx:Edmx Version="4.0" '
                'xmlns:edmx="http://docs.oasis-open.org/odata/ns/edmx"><edmx:DataServices>'
                '<Schema Namespace="Microsoft.Dynamics.CRM" Alias="mscrm" '
                'xmlns="http://docs.oasis-open.org/odata/ns/edm">' + "".join(types) +
                f'<EntityContainer Name="System">{sets}</EntityContainer></Schema>'
                "</edmx:DataServices></edmx:Edmx>").encode())
        return self._csdl[1]

    def _who_am_i(self, client_id: str | None) -> Reply:
        user = self._caller(client_id)
        if user is None:
            raise DataverseError(403, "0x80072560", "The user is not a member of the "
                                                    "organization: no application user exists "
                                                    "for this client id (reset the sandbox "
                                                    "seed).")
        row = self.store.get("dataverse:systemuser", user) or {}
        return json_reply(200, {
            "@odata.context": f"{self.root}$metadata#Microsoft.Dynamics.CRM.WhoAmIResponse",
            "BusinessUnitId": row.get("businessunitid"),
            "UserId": user,
            "OrganizationId": str(uuid.uuid5(uuid.NAMESPACE_URL, self.ctx.info.base_url)),
        })

    def _definition(self, logical_name: str) -> EntityDef:
        """A table by logical name; an unknown one answers 404 ``0x80040217``
        (ObjectDoesNotExist in *Web service error codes*,
        https://learn.microsoft.com/power-apps/developer/data-platform/reference/web-service-error-codes)
        with the MetadataCache message real tenants answer."""
        entity = self.by_name.get(logical_name)
        if entity is None or entity.extra.get("internal"):
            raise DataverseError(404, CODE_NOT_FOUND, f"The entity with a name = "
                                                      f"'{logical_name}' with namemapping = "
                                                      "'Logical' was not found in the "
                                                      "MetadataCache.")
        return entity

    @staticmethod
    def _metadata_id(*parts: object) -> str:
        return str(uuid.uuid5(uuid.NAMESPACE_OID, "/".join(str(p) for p in parts)))

    def _label(self, text: str, language: int = 1033, *parts: object) -> dict[str, Any]:
        localized = {"Label": text, "LanguageCode": language, "IsManaged": True,
                     "MetadataId": self._metadata_id("label", *parts), "HasChanged": None}
        return {"LocalizedLabels": [localized], "UserLocalizedLabel": localized}

    def _picklist(self, entity: EntityDef, column: Column) -> dict[str, Any]:
        added = self.store.query(f"dataverse:{OPTION_VALUE_ENTITY}",
                                 '"entitylogicalname" = ? AND "attributelogicalname" = ?',
                                 [entity.name, column.name], order_by=[("value", False)])
        options = [(value, label, 1033) for value, label in (column.choices or {}).items()]
        options += [(r["value"], r["label"], r["languagecode"] or 1033) for r in added]
        return {
            "LogicalName": column.name,
            "MetadataId": self._metadata_id(entity.name, column.name),
            "OptionSet": {
                "MetadataId": self._metadata_id(entity.name, column.name, "optionset"),
                "Name": f"{entity.name}_{column.name}", "IsGlobal": False,
                "OptionSetType": "Picklist", "IsCustomOptionSet": False,
                "Options": [{
                    "Value": value, "Color": None, "IsManaged": value < 100000000,
                    "ExternalValue": "", "ParentValues": [], "Tag": None,
                    "MetadataId": None, "HasChanged": None,
                    "Label": self._label(label, language, entity.name, column.name, value),
                    "Description": {"LocalizedLabels": [], "UserLocalizedLabel": None},
                } for value, label, language in options],
            },
            "GlobalOptionSet": None,
        }

    @staticmethod
    def _picklist_columns(entity: EntityDef) -> list[Column]:
        return [c for c in entity.columns
                if c.type == "choice" and c.name not in ("statecode", "statuscode")]

    def _entity_definitions(self, path: str, params: Mapping[str, str]) -> Reply:
        """``EntityDefinitions`` (D1), ``EntityDefinitions(LogicalName='x')`` or ``(<id>)``,
        its ``/Attributes`` (D2) and the picklist cast (D3)."""
        if path == "EntityDefinitions":
            return self._entity_list(params)
        match = re.fullmatch(
            r"EntityDefinitions\((?:LogicalName='(\w+)'|([0-9a-fA-F-]{36}))\)"
            r"(?:/Attributes(?:\(LogicalName='(\w+)'\))?"
            r"(/Microsoft\.Dynamics\.CRM\.PicklistAttributeMetadata)?)?", path)
        if match is None:
            raise DataverseError(501, CODE_ODATA, f"The sandbox only serves EntityDefinitions, "
                                                  f"EntityDefinitions(LogicalName='x'), its "
                                                  f"Attributes and picklist attributes, not "
                                                  f"'{path}'.")
        logical, metadata_id, attribute, picklist = match.groups()
        entity = self._definition(logical or self._name_of(metadata_id))
        if "/Attributes" not in path:
            wanted = attributes.select_list(params.get("$select"), ENTITY_PROPERTIES,
                                            "EntityMetadata")
            return json_reply(200, {
                "@odata.context": f"{self.root}$metadata#EntityDefinitions/$entity",
                **attributes.select(self._entity_metadata(entity), wanted)})
        if picklist:
            return self._picklist_attributes(entity, attribute, params)
        return self._attributes(entity, attribute, params)

    def _name_of(self, metadata_id: str) -> str:
        for entity in self.catalog.entities:
            if self._metadata_id(entity.name) == metadata_id.lower():
                return entity.name
        raise DataverseError(404, CODE_NOT_FOUND, f"Could not find an entity with MetadataId "
                                                  f"= {metadata_id}.")

    def _entity_metadata(self, entity: EntityDef) -> dict[str, Any]:
        return {
            "MetadataId": self._metadata_id(entity.name), "LogicalName": entity.name,
            "SchemaName": table_schema_name(entity), "EntitySetName": entity.entity_set,
            "LogicalCollectionName": entity.entity_set,
            "PrimaryIdAttribute": entity.key,
            "PrimaryNameAttribute": entity.extra.get("primary_name"),
            "ChangeTrackingEnabled": entity.change_tracking,
            "OwnershipType": "UserOwned" if entity.extra.get("owned") else "OrganizationOwned",
            "IsCustomEntity": entity.name.startswith("nav_") or bool(
                entity.extra.get("custom")),
            "ObjectTypeCode": None,
        }

    def _entity_list(self, params: Mapping[str, str]) -> Reply:
        """D1: ``EntityDefinitions?$select=...&$filter=LogicalName eq 'a' or ...``."""
        unknown = sorted(set(params) - {"$select", "$filter"})
        if unknown:
            raise DataverseError(501, CODE_ODATA, f"The query option '{unknown[0]}' is not "
                                                  "emulated on EntityDefinitions.")
        wanted = attributes.select_list(params.get("$select"), ENTITY_PROPERTIES,
                                        "EntityMetadata")
        names = attributes.logical_names_filter(params.get("$filter"))
        tables = [e for e in self.entities.values() if names is None or e.name in names]
        selection = f"({','.join(wanted)})" if wanted else ""
        return json_reply(200, {
            "@odata.context": f"{self.root}$metadata#EntityDefinitions{selection}",
            "value": [attributes.select(self._entity_metadata(e), wanted) for e in tables]})

    def _attributes(self, entity: EntityDef, attribute: str | None,
                    params: Mapping[str, str]) -> Reply:
        """D2: ``EntityDefinitions(LogicalName='a')/Attributes?$select=...`` (every column,
        typed by ``@odata.type``)."""
        unknown = sorted(set(params) - {"$select", "$filter"})
        if unknown:
            raise DataverseError(501, CODE_ODATA, f"The query option '{unknown[0]}' is not "
                                                  "emulated on Attributes.")
        wanted = attributes.select_list(params.get("$select"), attributes.BASE_PROPERTIES,
                                        "AttributeMetadata")
        names = attributes.logical_names_filter(params.get("$filter"))
        items = [attributes.select(self._attribute(entity, c), wanted) for c in entity.columns
                 if names is None or c.name in names]
        base = f"{self.root}$metadata#EntityDefinitions('{entity.name}')/Attributes"
        if attribute is not None:
            found = [i for i in items if i["LogicalName"] == attribute]
            if not found:
                raise DataverseError(404, CODE_NOT_FOUND, f"Could not find attribute "
                                                          f"'{attribute}' on entity "
                                                          f"'{entity.name}'.")
            return json_reply(200, {"@odata.context": f"{base}/$entity", **found[0]})
        selection = f"({','.join(wanted)})" if wanted else ""
        return json_reply(200, {"@odata.context": f"{base}{selection}", "value": items})

    def _attribute(self, entity: EntityDef, column: Column) -> dict[str, Any]:
        return attributes.attribute(entity, column, column_schema_name(entity, column),
                                    self._metadata_id(entity.name, column.name))

    def _picklist_attributes(self, entity: EntityDef, attribute: str | None,
                             params: Mapping[str, str]) -> Reply:
        """D3: the picklist cast with its ``OptionSet`` options."""
        logical = entity.name
        base = f"{self.root}$metadata#EntityDefinitions('{logical}')"
        columns = self._picklist_columns(entity)
        if attribute is not None:
            found = [c for c in columns if c.name == attribute]
            if not found:
                raise DataverseError(404, CODE_NOT_FOUND, f"Could not find a picklist attribute "
                                                          f"'{attribute}' on '{logical}'.")
            item = self._picklist(entity, found[0])
            payload = {"@odata.context": f"{base}/Attributes/Microsoft.Dynamics.CRM."
                                         f"PicklistAttributeMetadata/$entity", **item}
            return json_reply(200, payload)
        flt = params.get("$filter", "")
        wanted = re.findall(r"LogicalName\s+eq\s+'(\w+)'", flt)
        if wanted:
            columns = [c for c in columns if c.name in wanted]
        return json_reply(200, {
            "@odata.context": f"{base}/Attributes/Microsoft.Dynamics.CRM."
                              f"PicklistAttributeMetadata(LogicalName,OptionSet(),"
                              f"GlobalOptionSet())",
            "value": [self._picklist(entity, c) for c in columns],
        })

    def _insert_option_value(self, body: bytes) -> Reply:
        try:
            data = json.loads(body or b"{}")
        except ValueError:
            raise DataverseError(400, CODE_PAYLOAD, "InsertOptionValue needs a JSON body.") \
                from None
        entity = self._definition(str(data.get("EntityLogicalName") or ""))
        column = self._picklist_column(entity, str(data.get("AttributeLogicalName") or ""))
        label = _first_label(data)
        value = _new_option_value(entity, column, data.get("Value"),
                                  self._valid_options(entity, column))
        self.store.insert(f"dataverse:{OPTION_VALUE_ENTITY}", {
            "entitylogicalname": entity.name, "attributelogicalname": column.name,
            "value": value, "label": str(label["Label"]),
            "languagecode": int(label.get("LanguageCode") or 1033)})
        return json_reply(200, {
            "@odata.context": f"{self.root}$metadata#Microsoft.Dynamics.CRM."
                              f"InsertOptionValueResponse",
            "NewOptionValue": value,
        })

    def _picklist_column(self, entity: EntityDef, attribute: str) -> Column:
        columns = self._picklist_columns(entity)
        column = next((c for c in columns if c.name == attribute), None)
        if column is None:
            raise DataverseError(400, CODE_INVALID_ARGUMENT,
                                 f"'{attribute}' is not a choice (picklist) attribute of "
                                 f"'{entity.name}'; set AttributeLogicalName to one of "
                                 f"{', '.join(c.name for c in columns)}.")
        return column


def _first_label(data: Mapping[str, Any]) -> dict[str, Any]:
    """``Label.LocalizedLabels[0]`` of an ``InsertOptionValue`` body."""
    labels = (data.get("Label") or {}).get("LocalizedLabels") or []
    if not labels or not isinstance(labels[0], dict) or not labels[0].get("Label"):
        raise DataverseError(400, CODE_INVALID_ARGUMENT,
                             "InsertOptionValue needs Label.LocalizedLabels[0].Label (and "
                             "LanguageCode, e.g. 1033).")
    return labels[0]


def _new_option_value(entity: EntityDef, column: Column, value: Any,
                      existing: list[int]) -> int:
    """The value asked for (not taken yet), or the next free one from 100000000."""
    if value is None:
        return max([100000000 - 1, *existing]) + 1
    if not is_integer(value):
        raise DataverseError(400, CODE_INVALID_ARGUMENT, "Value must be an integer.")
    if value in existing:
        raise DataverseError(400, CODE_INVALID_ARGUMENT,
                             f"The option value {value} already exists in the option set "
                             f"{entity.name}_{column.name}; omit Value to get a new one.")
    return int(value)
