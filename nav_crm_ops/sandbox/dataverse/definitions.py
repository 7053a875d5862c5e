"""Dataverse metadata writes (new tables, columns, lookups) and the caller's privileges.

- ``POST EntityDefinitions`` — *Create and update table definitions using the Web API*
  (https://learn.microsoft.com/power-apps/developer/data-platform/webapi/create-update-entity-definitions-using-web-api);
- ``POST EntityDefinitions(LogicalName='x')/Attributes`` — *Create and update column
  definitions using the Web API*;
- ``POST RelationshipDefinitions`` — *Create and update table relationships using the Web API*
  (a ``OneToManyRelationshipMetadata`` with its ``Lookup``);
- ``GET systemusers(<id>)/Microsoft.Dynamics.CRM.RetrieveUserPrivileges`` — *RetrieveUserPrivileges
  Function*: the application user holds every privilege of every table (System
  Administrator) except those revoked through ``/_sandbox/privileges``.

Each create answers ``204 No Content`` with ``OData-EntityId`` naming the new definition.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from ..dataverse_catalog import column_to_json, table_schema_name
from ..odata.replies import Reply
from ..schema import Column, EntityDef
from .attributes import NAMESPACE, check_schema_name, column_from_body, label_text
from .common import CODE_INVALID_ARGUMENT, CODE_ODATA, CODE_PAYLOAD, DataverseError, json_reply
from .metadata import DataverseMetadata

CODE_DUPLICATE_NAME = "0x80044363"
"""Refusal of a table, column or relationship whose name is taken: 400 ``0x80044363`` ("... is
not unique" / "... with the specified name already exists"), the reply public Dataverse setup
scripts handle for creates that collide. Not on a Microsoft Learn page found so far: check it
against a real tenant."""
CODE_PRIVILEGE = "0x80040220"
"""PrivilegeDenied (*Web service error codes*): the caller lacks the privilege."""
PRIVILEGE_ACCESS = ("Create", "Read", "Write", "Delete", "Append", "AppendTo")
METHOD_ACCESS = {"GET": "Read", "POST": "Create", "PATCH": "Write", "DELETE": "Delete"}
OWNERSHIP = ("UserOwned", "OrganizationOwned")
_USER_PRIVILEGES = re.compile(r"systemusers\((.+)\)/Microsoft\.Dynamics\.CRM\."
                              r"RetrieveUserPrivileges(?:\(\))?")


def entity_set_name(logical: str) -> str:
    """The plural Dataverse gives a new table's entity set (``nav_accountstatisticses``)."""
    if re.search(r"[^aeiou]y$", logical):
        return logical[:-1] + "ies"
    if re.search(r"(s|x|z|ch|sh)$", logical):
        return logical + "es"
    return logical + "s"


def _duplicate(what: str, name: str) -> DataverseError:
    return DataverseError(400, CODE_DUPLICATE_NAME, f"An {what} with the specified name "
                                                    f"already exists: '{name}'.")


def _odata_type(data: Mapping[str, Any]) -> str:
    return str(data.get("@odata.type") or "").lstrip("#").removeprefix(NAMESPACE)


class DataverseDefinitions(DataverseMetadata):
    """Creating table, column and relationship definitions; privileges."""

    def _metadata_body(self, body: bytes) -> dict[str, Any]:
        try:
            data = json.loads(body or b"{}")
        except ValueError:
            raise DataverseError(400, CODE_PAYLOAD, "The metadata definition must be a JSON "
                                                    "object.") from None
        if not isinstance(data, dict):
            raise DataverseError(400, CODE_PAYLOAD, "The metadata definition must be a JSON "
                                                    "object.")
        return data

    def _defined(self, entity: EntityDef, column: str | None = None) -> Reply:
        url = f"{self.root}EntityDefinitions({self._metadata_id(entity.name)})"
        if column is not None:
            url += f"/Attributes({self._metadata_id(entity.name, column)})"
        return Reply(204, headers={"OData-Version": "4.0", "OData-EntityId": url},
                     entity_url=url)

    # ----------------------------------------------------------------- D6: tables
    def _create_table(self, body: bytes) -> Reply:
        data = self._metadata_body(body)
        if _odata_type(data) not in ("", "EntityMetadata"):
            raise DataverseError(400, CODE_ODATA, "POST EntityDefinitions takes a "
                                                  "Microsoft.Dynamics.CRM.EntityMetadata.")
        schema = check_schema_name(data.get("SchemaName"), "table")
        name = schema.lower()
        if name in self.by_name:
            raise _duplicate("entity", name)
        for label in ("DisplayName", "DisplayCollectionName"):
            if label_text(data.get(label)) is None:
                raise DataverseError(400, CODE_INVALID_ARGUMENT, f"{label} is required for "
                                                                 f"the table {schema}.")
        if data.get("OwnershipType") not in OWNERSHIP:
            raise DataverseError(400, CODE_INVALID_ARGUMENT, f"OwnershipType of {schema} must "
                                                             "be UserOwned or "
                                                             "OrganizationOwned.")
        entity_set = str(data.get("EntitySetName") or entity_set_name(name))
        if entity_set in self.entities:
            raise _duplicate("entity set", entity_set)
        columns, primary = self._table_columns(schema, data.get("Attributes"))
        entity = self.catalog.add({
            "kind": "table", "name": name, "entity_set": entity_set, "schema": schema,
            "primary_name": primary, "owned": data["OwnershipType"] == "UserOwned",
            "columns": columns})
        return self._defined(entity)

    @staticmethod
    def _table_columns(schema: str, items: Any) -> tuple[list[dict[str, Any]], str]:
        """The columns of a new table's ``Attributes`` and its primary name column."""
        if not isinstance(items, list):
            items = []
        primary = [i for i in items if isinstance(i, Mapping) and i.get("IsPrimaryName")]
        if len(primary) != 1 or _odata_type(primary[0]) != "StringAttributeMetadata":
            raise DataverseError(400, CODE_INVALID_ARGUMENT,
                                 f"The table {schema} needs exactly one primary name column: a "
                                 "StringAttributeMetadata with IsPrimaryName true in "
                                 "Attributes.")
        columns: list[dict[str, Any]] = []
        names = {f"{schema.lower()}id"}
        for item in items:
            if not isinstance(item, Mapping):
                raise DataverseError(400, CODE_PAYLOAD, "Each item of Attributes must be an "
                                                        "attribute definition object.")
            column, column_schema = column_from_body(item)
            if column.name in names:
                raise _duplicate("attribute", column.name)
            names.add(column.name)
            columns.append(column_to_json(column, column_schema))
        return columns, str(primary[0]["SchemaName"]).lower()

    # ----------------------------------------------------------------- D7: columns
    def _create_column(self, logical: str, body: bytes) -> Reply:
        entity = self._definition(logical)
        column, schema = column_from_body(self._metadata_body(body))
        return self._add_column(entity, column, schema)

    def _add_column(self, entity: EntityDef, column: Column, schema: str,
                    relationship: str | None = None) -> Reply:
        if entity.column(column.name) is not None:
            raise _duplicate("attribute", column.name)
        definition = {"kind": "column", "entity": entity.name,
                      "column": column_to_json(column, schema)}
        if relationship:
            definition["relationship"] = relationship
        updated = self.catalog.add(definition)
        if relationship:
            url = f"{self.root}RelationshipDefinitions({self._metadata_id('rel', relationship)})"
            return Reply(204, headers={"OData-Version": "4.0", "OData-EntityId": url},
                         entity_url=url)
        return self._defined(updated, column.name)

    # ----------------------------------------------------------------- D8: lookups
    def _create_relationship(self, body: bytes) -> Reply:
        data = self._metadata_body(body)
        if _odata_type(data) != "OneToManyRelationshipMetadata":
            raise DataverseError(400, CODE_ODATA, "The sandbox creates one-to-many "
                                                  "relationships: send \"@odata.type\": "
                                                  "\"Microsoft.Dynamics.CRM."
                                                  "OneToManyRelationshipMetadata\".")
        schema = check_schema_name(data.get("SchemaName"), "relationship")
        taken = {d.get("relationship") for d in self.store.definitions()}
        if schema in taken:
            raise _duplicate("relationship", schema)
        referenced = self._definition(str(data.get("ReferencedEntity") or ""))
        referencing = self._definition(str(data.get("ReferencingEntity") or ""))
        attribute = data.get("ReferencedAttribute")
        if attribute not in (None, referenced.key):
            raise DataverseError(400, CODE_INVALID_ARGUMENT,
                                 f"ReferencedAttribute must be the primary key of "
                                 f"{referenced.name} ({referenced.key}).")
        lookup = data.get("Lookup")
        if not isinstance(lookup, Mapping) or _odata_type(lookup) != "LookupAttributeMetadata":
            raise DataverseError(400, CODE_INVALID_ARGUMENT,
                                 "Lookup is required: a Microsoft.Dynamics.CRM."
                                 "LookupAttributeMetadata with SchemaName and DisplayName.")
        lookup_schema = check_schema_name(lookup.get("SchemaName"), "lookup column")
        if label_text(lookup.get("DisplayName")) is None:
            raise DataverseError(400, CODE_INVALID_ARGUMENT, f"DisplayName is required for "
                                                             f"the column {lookup_schema}.")
        required = (lookup.get("RequiredLevel") or {}).get("Value") in (
            "ApplicationRequired", "SystemRequired")
        navigation = str(data.get("ReferencingEntityNavigationPropertyName") or lookup_schema)
        column = Column(lookup_schema.lower(), "lookup", lookup_targets=(referenced.name,),
                        navigation=navigation, required=required)
        return self._add_column(referencing, column, lookup_schema, relationship=schema)

    # ----------------------------------------------------------------- D5: privileges
    def _privileges(self) -> list[str]:
        revoked: frozenset[str] = getattr(self.ctx, "revoked_privileges", frozenset())
        names = [f"prv{access}{table_schema_name(entity)}"
                 for entity in self.entities.values() for access in PRIVILEGE_ACCESS]
        return [name for name in names if name not in revoked]

    def _user_privileges(self, user_key: str) -> Reply:
        key = self._parse_key(self.by_name["systemuser"], user_key)
        user = self._find(self.by_name["systemuser"], key)
        if user is None:
            raise DataverseError(404, "0x80040217", f"systemuser With Id = {key[1]} Does Not "
                                                    "Exist")
        return json_reply(200, {
            "@odata.context": f"{self.root}$metadata#Microsoft.Dynamics.CRM."
                              "RetrieveUserPrivilegesResponse",
            "RolePrivileges": [{
                "Depth": "Global", "PrivilegeId": self._metadata_id("privilege", name),
                "BusinessUnitId": user.get("businessunitid"), "PrivilegeName": name,
            } for name in self._privileges()],
        })

    def _privilege_revoked(self, method: str, entity: EntityDef) -> bool:
        """Whether the application user lacks the table's privilege for ``method``."""
        revoked: frozenset[str] = getattr(self.ctx, "revoked_privileges", frozenset())
        access = METHOD_ACCESS.get(method)
        if not revoked or access is None:
            return False
        return f"prv{access}{table_schema_name(entity)}" in revoked

    def _check_privilege(self, method: str, entity: EntityDef, client_id: str | None) -> None:
        """A data request needs the table's privilege (``prvReadAccount`` for a GET...)."""
        if self._privilege_revoked(method, entity):
            name = f"prv{METHOD_ACCESS[method]}{table_schema_name(entity)}"
            user = self._caller(client_id)
            raise DataverseError(403, CODE_PRIVILEGE, f"Principal user (Id={user}, type=8) is "
                                                      f"missing {name} privilege "
                                                      f"(Id={self._metadata_id('privilege', name)})"
                                                      f" on OTC=0 for entity '{entity.name}'.")

    def _definitions_path(self, method: str, path: str, params: Mapping[str, str],
                          body: bytes) -> Reply | None:
        """Route the metadata and privilege paths (None: not one of them)."""
        user = _USER_PRIVILEGES.fullmatch(path)
        if user:
            self._require(method, "GET")
            return self._user_privileges(user.group(1))
        if path == "RelationshipDefinitions":
            self._require(method, "POST")
            return self._create_relationship(body)
        if not path.startswith("EntityDefinitions"):
            return None
        if method == "GET":
            return self._entity_definitions(path, params)
        self._require(method, "POST")
        if path == "EntityDefinitions":
            return self._create_table(body)
        column = re.fullmatch(r"EntityDefinitions\(LogicalName='(\w+)'\)/Attributes", path)
        if column is None:
            raise DataverseError(405, CODE_ODATA, f"POST is not allowed on '{path}'.")
        return self._create_column(column.group(1), body)

