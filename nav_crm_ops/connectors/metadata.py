"""What the two services say about themselves: Dataverse table and column definitions, the
application user's privileges, and Business Central's CSDL ``$metadata`` and companies.

Why a module of its own: ``doctor`` and ``setup crm`` ask these questions before any data is
read or written; the record clients (:class:`~.dataverse.Dataverse`,
:class:`~.business_central.BusinessCentral`) stay about records. The requests are exactly those
of the Web API documentation (and of the sandbox, which serves the same shapes):

- D1 ``GET EntityDefinitions?$select=LogicalName,SchemaName,EntitySetName,PrimaryIdAttribute,
  PrimaryNameAttribute&$filter=LogicalName eq 'a' or ...`` (*Query table definitions using the
  Web API*)
- D2 ``GET EntityDefinitions(LogicalName='a')/Attributes?$select=LogicalName,AttributeType,
  SchemaName`` (404 when the table does not exist)
- D3 ``GET EntityDefinitions(LogicalName='a')/Attributes/Microsoft.Dynamics.CRM.
  PicklistAttributeMetadata?$select=LogicalName&$expand=OptionSet($select=Options),
  GlobalOptionSet($select=Options)``
- D4 ``GET WhoAmI``; D5 ``GET systemusers(<id>)/Microsoft.Dynamics.CRM.RetrieveUserPrivileges``
- D6 ``POST EntityDefinitions``; D7 ``POST EntityDefinitions(LogicalName='a')/Attributes``;
  D8 ``POST RelationshipDefinitions``; D9 ``POST InsertOptionValue`` — each answers ``204`` with
  ``OData-EntityId`` (D9: ``NewOptionValue``)
- B1 ``GET {api root}$metadata`` (CSDL XML, read with :mod:`xml.etree`); B2 ``GET
  companies?$select=id,name``

Every reply's ``Date`` header is kept (:attr:`ServiceClock.server_time`): the doctor compares
the services' clocks with this machine's, since watermarks depend on them.
"""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from ..exceptions import NotFoundError, TransientError
from .business_central import BusinessCentral
from .dataverse import Dataverse
from .http import ServiceClient
from .nav_odata import NavODataV4
from .nav_views import NavViews
from .odata import literal

__all__ = [
    "MAX_NAMES_PER_QUERY",
    "AttributeInfo",
    "BcEntitySet",
    "BcMetadata",
    "DataverseMetadata",
    "ServiceClock",
    "TableInfo",
    "parse_csdl",
]

MAX_NAMES_PER_QUERY = 40
"""Logical names per D1 ``$filter`` (an OR chain; keeps the URL well under the limits)."""
TABLE_SELECT = "LogicalName,SchemaName,EntitySetName,PrimaryIdAttribute,PrimaryNameAttribute"
ATTRIBUTE_SELECT = "LogicalName,AttributeType,SchemaName"
PICKLIST_CAST = "Microsoft.Dynamics.CRM.PicklistAttributeMetadata"
EDM = "{http://docs.oasis-open.org/odata/ns/edm}"
EDMX = "{http://docs.oasis-open.org/odata/ns/edmx}"


@dataclass(frozen=True)
class TableInfo:
    """One ``EntityMetadata`` as D1 answers it."""

    logical_name: str
    schema_name: str
    entity_set: str
    primary_id: str
    primary_name: str


@dataclass(frozen=True)
class AttributeInfo:
    """One column as D2 answers it (``AttributeType``: ``String``, ``Lookup``, ``Picklist``...)."""

    logical_name: str
    attribute_type: str
    schema_name: str


@dataclass(frozen=True)
class BcEntitySet:
    """An entity set of a Business Central API with its entity type's properties.

    ``properties``: name → (EDM type, MaxLength or None); ``navigation``: navigation property
    names; ``keys``: the key property names."""

    name: str
    entity_type: str
    properties: Mapping[str, tuple[str, int | None]]
    navigation: tuple[str, ...] = ()
    keys: tuple[str, ...] = ()


@dataclass
class ServiceClock:
    """The newest ``Date`` header a service sent, and this machine's clock when it arrived."""

    server_time: datetime | None = None
    local_time: datetime | None = None

    def note(self, response: httpx.Response) -> None:
        value = response.headers.get("Date")
        if not value:
            return
        try:
            moment = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return
        self.server_time = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
        self.local_time = datetime.now(UTC)

    @property
    def skew_s(self) -> float | None:
        """Seconds the service's clock is ahead of ours (negative: behind); None if unknown.
        ``Date`` has whole seconds, so ±1 s is noise."""
        if self.server_time is None or self.local_time is None:
            return None
        return (self.server_time - self.local_time).total_seconds()


def _labels(text: str, language_code: int = 1033) -> dict[str, Any]:
    return {"@odata.type": "Microsoft.Dynamics.CRM.Label", "LocalizedLabels": [
        {"@odata.type": "Microsoft.Dynamics.CRM.LocalizedLabel", "Label": text,
         "LanguageCode": language_code}]}


@dataclass
class DataverseMetadata:
    """Table/column definitions and privileges of one Dataverse org (its record client's HTTP)."""

    client: Dataverse
    clock: ServiceClock = field(default_factory=ServiceClock)

    @property
    def http(self) -> ServiceClient:
        return self.client.http

    def _get(self, path: str, entity: str, ok: Iterable[int] = ()) -> httpx.Response:
        response = self.http.request("GET", path, entity=entity, ok=ok)
        self.clock.note(response)
        return response

    def _post(self, path: str, body: Mapping[str, Any], entity: str,
              solution: str | None = None) -> httpx.Response:
        headers = {"MSCRM.SolutionUniqueName": solution} if solution else {}
        response = self.http.request("POST", path, json=dict(body), entity=entity,
                                     headers=headers, retry_unsafe=False)
        self.clock.note(response)
        return response

    # reads -----------------------------------------------------------------------------------
    def whoami(self) -> dict[str, Any]:
        """D4: ``UserId``, ``BusinessUnitId``, ``OrganizationId`` of the caller."""
        return dict(self._get("WhoAmI", "WhoAmI").json())

    def tables(self, logical_names: Sequence[str]) -> dict[str, TableInfo]:
        """D1: the tables among ``logical_names`` that exist (absent ones are left out)."""
        names = sorted(set(logical_names))
        found: dict[str, TableInfo] = {}
        for start in range(0, len(names), MAX_NAMES_PER_QUERY):
            chunk = names[start:start + MAX_NAMES_PER_QUERY]
            condition = " or ".join(f"LogicalName eq {literal(n)}" for n in chunk)
            body = self._get(f"EntityDefinitions?$select={TABLE_SELECT}&$filter={condition}",
                             "EntityDefinitions").json()
            for item in body.get("value", []):
                info = TableInfo(str(item["LogicalName"]), str(item.get("SchemaName") or ""),
                                 str(item.get("EntitySetName") or ""),
                                 str(item.get("PrimaryIdAttribute") or ""),
                                 str(item.get("PrimaryNameAttribute") or ""))
                found[info.logical_name] = info
        return found

    def attributes(self, logical_name: str) -> dict[str, AttributeInfo] | None:
        """D2: the table's columns by logical name; None when the table does not exist."""
        path = (f"EntityDefinitions(LogicalName={literal(logical_name)})/Attributes"
                f"?$select={ATTRIBUTE_SELECT}")
        response = self._get(path, f"EntityDefinitions({logical_name})", ok=(404,))
        if response.status_code == 404:
            return None
        return {str(a["LogicalName"]): AttributeInfo(str(a["LogicalName"]),
                                                     str(a.get("AttributeType") or ""),
                                                     str(a.get("SchemaName") or ""))
                for a in response.json().get("value", [])}

    def option_values(self, logical_name: str) -> dict[str, frozenset[int]]:
        """D3: each choice column of the table → its option values (local or global set)."""
        path = (f"EntityDefinitions(LogicalName={literal(logical_name)})/Attributes/"
                f"{PICKLIST_CAST}?$select=LogicalName&$expand=OptionSet($select=Options),"
                "GlobalOptionSet($select=Options)")
        body = self._get(path, f"EntityDefinitions({logical_name})").json()
        columns: dict[str, frozenset[int]] = {}
        for item in body.get("value", []):
            options = [*((item.get("OptionSet") or {}).get("Options") or []),
                       *((item.get("GlobalOptionSet") or {}).get("Options") or [])]
            columns[str(item["LogicalName"])] = frozenset(int(o["Value"]) for o in options)
        return columns

    def user_privileges(self, user_id: str) -> frozenset[str]:
        """D5: the names of the privileges the user holds (``prvReadAccount``...)."""
        path = (f"systemusers({uuid.UUID(user_id)})/Microsoft.Dynamics.CRM."
                "RetrieveUserPrivileges")
        body = self._get(path, "RetrieveUserPrivileges").json()
        return frozenset(str(p.get("PrivilegeName") or "")
                         for p in body.get("RolePrivileges", []) if p.get("PrivilegeName"))

    # creates ---------------------------------------------------------------------------------
    def create_table(self, body: Mapping[str, Any], solution: str | None = None) -> str:
        """D6: a new table (with its primary name and other columns); its ``OData-EntityId``."""
        return self._created(self._post("EntityDefinitions", body, "EntityDefinitions",
                                        solution))

    def create_column(self, table: str, body: Mapping[str, Any],
                      solution: str | None = None) -> str:
        """D7: one new column on ``table``; its ``OData-EntityId``."""
        return self._created(self._post(
            f"EntityDefinitions(LogicalName={literal(table)})/Attributes", body,
            f"EntityDefinitions({table})", solution))

    def create_relationship(self, body: Mapping[str, Any], solution: str | None = None) -> str:
        """D8: a one-to-many relationship with its lookup column; its ``OData-EntityId``."""
        return self._created(self._post("RelationshipDefinitions", body,
                                        "RelationshipDefinitions", solution))

    def insert_option_value(self, table: str, column: str, value: int, label: str,
                            language_code: int = 1033) -> int:
        """D9: add ``value`` with ``label`` to a choice column; the value the service kept."""
        body = {"EntityLogicalName": table, "AttributeLogicalName": column, "Value": value,
                "Label": _labels(label, language_code)}
        reply = self._post("InsertOptionValue", body, "InsertOptionValue")
        return int(reply.json()["NewOptionValue"])

    @staticmethod
    def _created(response: httpx.Response) -> str:
        return str(response.headers.get("OData-EntityId") or "")


def _max_length(value: str | None) -> int | None:
    if value is None or not value.isdigit():
        return None
    return int(value)


def _entity_types(schema: ET.Element) -> dict[str, ET.Element]:
    namespace = schema.get("Namespace", "")
    alias = schema.get("Alias", "")
    types: dict[str, ET.Element] = {}
    for element in schema.findall(f"{EDM}EntityType"):
        name = element.get("Name", "")
        types[f"{namespace}.{name}"] = element
        if alias:
            types[f"{alias}.{name}"] = element
    return types


def _entity_set(name: str, type_name: str, element: ET.Element | None) -> BcEntitySet:
    if element is None:
        return BcEntitySet(name, type_name, {})
    properties = {p.get("Name", ""): (p.get("Type", ""), _max_length(p.get("MaxLength")))
                  for p in element.findall(f"{EDM}Property")}
    navigation = tuple(n.get("Name", "") for n in element.findall(f"{EDM}NavigationProperty"))
    keys = tuple(k.get("Name", "") for k in element.findall(f"{EDM}Key/{EDM}PropertyRef"))
    return BcEntitySet(name, type_name, properties, navigation, keys)


def parse_csdl(text: bytes | str) -> dict[str, BcEntitySet]:
    """A CSDL (EDMX) document → its entity sets with their types' properties.

    ValueError when the text is no EDMX document."""
    try:
        root = ET.fromstring(text)
    except ET.ParseError as error:
        raise ValueError(f"not an XML document ({error})") from None
    if root.tag != f"{EDMX}Edmx":
        raise ValueError(f"not a CSDL document (root element {root.tag})")
    schemas = root.findall(f"{EDMX}DataServices/{EDM}Schema")
    types: dict[str, ET.Element] = {}
    for schema in schemas:
        types.update(_entity_types(schema))
    sets: dict[str, BcEntitySet] = {}
    for schema in schemas:
        for container in schema.findall(f"{EDM}EntityContainer"):
            for element in container.findall(f"{EDM}EntitySet"):
                name, type_name = element.get("Name", ""), element.get("EntityType", "")
                sets[name] = _entity_set(name, type_name, types.get(type_name))
    return sets


@dataclass
class BcMetadata:
    """The ``$metadata`` and companies of one Business Central API root."""

    client: BusinessCentral
    clock: ServiceClock = field(default_factory=ServiceClock)

    @property
    def api_url(self) -> str:
        return self.client.http.base_url

    @property
    def pages(self) -> Callable[[str], str] | None:
        """On NAV page web services: entity set -> the published service name (None on
        Business Central, whose entity sets are the API's own)."""
        return self.client.service_name if isinstance(self.client, NavODataV4) else None

    @property
    def views(self) -> NavViews | None:
        """On NAV: the sets and columns the connection computes (None on Business Central)."""
        return self.client.views if isinstance(self.client, NavODataV4) else None

    def entity_sets(self) -> dict[str, BcEntitySet] | None:
        """B1: the API's entity sets; None when the API does not exist here (404: for the
        custom API, the extension is not installed)."""
        response = self.client.http.request(
            "GET", "$metadata", headers={"Accept": "application/xml"}, entity="$metadata",
            ok=(404,))
        self.clock.note(response)
        if response.status_code == 404:
            return None
        try:
            return parse_csdl(response.content)
        except ValueError as error:
            raise TransientError(f"business_central $metadata at {self.api_url}: {error}",
                                 service="business_central", entity="$metadata") from None

    def companies(self) -> dict[str, str]:
        """B2: company id → name (on NAV, whose companies have no id: name → name)."""
        if isinstance(self.client, NavODataV4):
            response = self.client.http.request("GET", "Company", entity="Company")
            self.clock.note(response)
            return {str(c["Name"]): str(c["Name"]) for c in response.json().get("value", [])}
        try:
            response = self.client.http.request("GET", "companies?$select=id,name",
                                                entity="companies")
        except NotFoundError:
            return {}
        self.clock.note(response)
        return {str(c["id"]).lower(): str(c.get("name") or "")
                for c in response.json().get("value", [])}
