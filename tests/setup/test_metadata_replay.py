"""The metadata connectors against replies as Microsoft documents them (httpx.MockTransport):
each test names the page whose request and reply it replays."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from urllib.parse import unquote

import httpx
import pytest

from nav_crm_ops.connectors.business_central import BusinessCentral
from nav_crm_ops.connectors.dataverse import Dataverse
from nav_crm_ops.connectors.metadata import BcMetadata, DataverseMetadata, parse_csdl
from nav_crm_ops.setup.crm_setup import SetupPlan, SetupStep, StepKind, StepStatus, apply_plan
from nav_crm_ops.setup.crm_solution import CRM_SOLUTION
from nav_crm_ops.setup.definitions import column_body, relationship_body, table_body

ORG = "https://contoso.crm.dynamics.com/api/data/v9.2/"
BC = "https://api.businesscentral.dynamics.com/v2.0/tenant/Production/api/v2.0/"
COMPANY = "6a3b2c1d-0000-4000-8000-00000000c0de"
Handler = Callable[[httpx.Request], httpx.Response]


class StaticAuth:
    def headers(self) -> dict[str, str]:
        return {"Authorization": "Bearer test"}

    def invalidate(self) -> bool:
        return False


def dataverse(handler: Handler, seen: list[httpx.Request]) -> DataverseMetadata:
    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return handler(request)

    return DataverseMetadata(Dataverse(ORG, StaticAuth(), transport=httpx.MockTransport(record)))


def bc(handler: Handler, url: str = BC) -> BcMetadata:
    return BcMetadata(BusinessCentral(url, COMPANY, StaticAuth(),
                                      transport=httpx.MockTransport(handler)))


def target(request: httpx.Request) -> str:
    """The request as written in the documentation: path and query, decoded."""
    return unquote(str(request.url).removeprefix(ORG).removeprefix(BC))


def test_d1_table_definitions_by_logical_name() -> None:
    """D1, *Query table definitions using the Web API*
    (https://learn.microsoft.com/en-us/power-apps/developer/data-platform/webapi/query-metadata-web-api):
    ``EntityDefinitions`` with ``$select`` and a ``$filter`` on ``LogicalName``; the reply is
    a ``value`` list in which ``MetadataId`` always comes back. A table that does not exist is
    simply absent from the list."""
    seen: list[httpx.Request] = []

    def reply(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={
            "@odata.context": f"{ORG}$metadata#EntityDefinitions(LogicalName,SchemaName,"
                              "EntitySetName,PrimaryIdAttribute,PrimaryNameAttribute)",
            "value": [{"LogicalName": "account", "SchemaName": "Account",
                       "EntitySetName": "accounts", "PrimaryIdAttribute": "accountid",
                       "PrimaryNameAttribute": "name",
                       "MetadataId": "70816501-edb9-4740-a16c-6a5efbc05d84"}]})

    tables = dataverse(reply, seen).tables(["account", "nav_accountstatistics"])
    assert target(seen[0]) == (
        "EntityDefinitions?$select=LogicalName,SchemaName,EntitySetName,PrimaryIdAttribute,"
        "PrimaryNameAttribute&$filter=LogicalName eq 'account' or LogicalName eq "
        "'nav_accountstatistics'")
    assert seen[0].method == "GET" and seen[0].headers["OData-Version"] == "4.0"
    assert set(tables) == {"account"}
    assert tables["account"].schema_name == "Account"
    assert tables["account"].entity_set == "accounts"


def test_d1_splits_long_name_lists() -> None:
    """D1 keeps each ``$filter`` to at most 40 names (query-metadata-web-api, as above)."""
    seen: list[httpx.Request] = []
    meta = dataverse(lambda r: httpx.Response(200, json={"value": []}), seen)
    assert meta.tables([f"t{i}" for i in range(85)]) == {}
    assert len(seen) == 3
    assert all(target(r).count("LogicalName eq") <= 40 for r in seen)


def test_d2_columns_and_unknown_table() -> None:
    """D2, *Query table definitions using the Web API* (section on attributes,
    https://learn.microsoft.com/en-us/power-apps/developer/data-platform/webapi/query-metadata-web-api):
    ``EntityDefinitions(LogicalName='account')/Attributes?$select=LogicalName,AttributeType,
    SchemaName``, items typed with ``@odata.type``. An unknown table answers 404 with
    ``0x80040217`` (*Web service error codes*,
    https://learn.microsoft.com/en-us/power-apps/developer/data-platform/reference/web-service-error-codes)."""
    seen: list[httpx.Request] = []

    def reply(request: httpx.Request) -> httpx.Response:
        if "nav_accountstatistics" in target(request):
            return httpx.Response(404, json={"error": {
                "code": "0x80040217", "message": "The entity with a name = "
                "'nav_accountstatistics' with namemapping = 'Logical' was not found in the "
                "MetadataCache."}})
        return httpx.Response(200, json={"value": [
            {"@odata.type": "#Microsoft.Dynamics.CRM.StringAttributeMetadata",
             "LogicalName": "telephone1", "AttributeType": "String",
             "SchemaName": "Telephone1", "MetadataId": "1a8b7a8a-0d04-4d6d-9b0f-0c5c9e1f4c1a"},
            {"@odata.type": "#Microsoft.Dynamics.CRM.LookupAttributeMetadata",
             "LogicalName": "primarycontactid", "AttributeType": "Lookup",
             "SchemaName": "PrimaryContactId",
             "MetadataId": "2b9c8b9b-1e15-4e7e-8c10-1d6d0f2a5d2b"}]})

    meta = dataverse(reply, seen)
    columns = meta.attributes("account")
    assert target(seen[0]) == ("EntityDefinitions(LogicalName='account')/Attributes"
                               "?$select=LogicalName,AttributeType,SchemaName")
    assert columns is not None and columns["primarycontactid"].attribute_type == "Lookup"
    assert meta.attributes("nav_accountstatistics") is None


def test_d3_choice_values_local_and_global() -> None:
    """D3, *Query table definitions using the Web API* (casting ``Attributes`` to
    ``Microsoft.Dynamics.CRM.PicklistAttributeMetadata`` with ``$expand=OptionSet,
    GlobalOptionSet``,
    https://learn.microsoft.com/en-us/power-apps/developer/data-platform/webapi/query-metadata-web-api)."""
    seen: list[httpx.Request] = []

    def reply(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"value": [
            {"LogicalName": "paymenttermscode", "MetadataId": "a1",
             "OptionSet": {"MetadataId": "b1", "Options": [
                 {"Value": 1, "Label": {"LocalizedLabels": [{"Label": "Net 30"}]}},
                 {"Value": 2, "Label": {"LocalizedLabels": [{"Label": "2% 10, Net 30"}]}}]},
             "GlobalOptionSet": None},
            {"LogicalName": "industrycode", "MetadataId": "a2", "OptionSet": None,
             "GlobalOptionSet": {"MetadataId": "b2", "Options": [{"Value": 7}]}}]})

    values = dataverse(reply, seen).option_values("account")
    assert target(seen[0]) == (
        "EntityDefinitions(LogicalName='account')/Attributes/Microsoft.Dynamics.CRM."
        "PicklistAttributeMetadata?$select=LogicalName&$expand=OptionSet($select=Options),"
        "GlobalOptionSet($select=Options)")
    assert values == {"paymenttermscode": frozenset({1, 2}), "industrycode": frozenset({7})}


def test_d5_privileges_of_the_user() -> None:
    """D5, *RetrieveUserPrivileges Function* and *RetrieveUserPrivilegesResponse ComplexType*
    (https://learn.microsoft.com/en-us/power-apps/developer/data-platform/webapi/reference/retrieveuserprivilegesresponse):
    ``RolePrivileges`` of ``RolePrivilege`` (Depth, PrivilegeId, BusinessUnitId,
    PrivilegeName)."""
    seen: list[httpx.Request] = []
    user = "1f5f6e9b-3e2a-4c8e-9f00-5a0b9c1d2e3f"

    def reply(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={
            "@odata.context": f"{ORG}$metadata#Microsoft.Dynamics.CRM."
                              "RetrieveUserPrivilegesResponse",
            "RolePrivileges": [
                {"Depth": "Global", "PrivilegeId": "886b280c-6396-4d56-a0a3-2c1b0a50ceb0",
                 "BusinessUnitId": "0d2a1b6c-0000-4000-8000-000000000001",
                 "PrivilegeName": "prvReadAccount"},
                {"Depth": "Global", "PrivilegeId": "8ba7a8c6-d2b4-4bd4-8a4a-6b6f1e0b3c2d",
                 "BusinessUnitId": "0d2a1b6c-0000-4000-8000-000000000001",
                 "PrivilegeName": "prvWriteAccount"}]})

    held = dataverse(reply, seen).user_privileges(user)
    assert target(seen[0]) == (f"systemusers({user})/Microsoft.Dynamics.CRM."
                               "RetrieveUserPrivileges")
    assert held == frozenset({"prvReadAccount", "prvWriteAccount"})


def _created(url: str) -> httpx.Response:
    return httpx.Response(204, headers={"OData-Version": "4.0", "OData-EntityId": url})


def test_d6_create_table_with_primary_name() -> None:
    """D6, *Create and update table definitions using the Web API*
    (https://learn.microsoft.com/en-us/power-apps/developer/data-platform/webapi/create-update-entity-definitions-using-web-api):
    ``POST EntityDefinitions`` with the primary name ``StringAttributeMetadata``
    (``IsPrimaryName: true``) in ``Attributes``; ``204 No Content`` with ``OData-EntityId``."""
    seen: list[httpx.Request] = []
    url = f"{ORG}EntityDefinitions(417129e1-207c-e511-80d2-00155d2a68d2)"
    table = CRM_SOLUTION.tables[0]
    plain = [c for c in CRM_SOLUTION.columns
             if c.table == table.logical_name and c.kind.value != "lookup"]
    made = dataverse(lambda r: _created(url), seen).create_table(
        table_body(table, plain), solution="navcrmops")
    assert made == url
    body = json.loads(seen[0].content)
    assert seen[0].method == "POST" and target(seen[0]) == "EntityDefinitions"
    assert seen[0].headers["MSCRM.SolutionUniqueName"] == "navcrmops"
    assert body["@odata.type"] == "Microsoft.Dynamics.CRM.EntityMetadata"
    assert body["OwnershipType"] == "OrganizationOwned"
    primary = body["Attributes"][0]
    assert primary["IsPrimaryName"] is True and primary["SchemaName"] == "nav_Name"
    assert primary["@odata.type"] == "Microsoft.Dynamics.CRM.StringAttributeMetadata"
    assert {a["SchemaName"] for a in body["Attributes"]} >= {"nav_CustomerNo", "nav_Balance"}


def test_d7_create_column_and_d8_lookup() -> None:
    """D7, *Create and update column definitions using the Web API*
    (https://learn.microsoft.com/en-us/power-apps/developer/data-platform/webapi/create-update-column-definitions-using-web-api):
    ``POST EntityDefinitions(LogicalName='x')/Attributes`` (a Boolean column carries
    ``OptionSet.TrueOption/FalseOption``); D8, *Create and update table relationships using
    the Web API*
    (https://learn.microsoft.com/en-us/power-apps/developer/data-platform/webapi/create-update-entity-relationships-using-web-api):
    ``POST RelationshipDefinitions`` with a ``OneToManyRelationshipMetadata`` and its
    ``Lookup``. Both answer 204 + ``OData-EntityId``."""
    seen: list[httpx.Request] = []
    column_url = (f"{ORG}EntityDefinitions(417129e1-207c-e511-80d2-00155d2a68d2)/"
                  "Attributes(f01bef16-207c-e511-80d2-00155d2a68d2)")
    relation_url = f"{ORG}RelationshipDefinitions(d475020f-5fd0-e511-80df-00155d2a68d2)"
    meta = dataverse(lambda r: _created(column_url if "Attributes" in target(r)
                                        else relation_url), seen)
    flag = CRM_SOLUTION.column("salesorder", "nav_submittedtobackoffice")
    lookup = CRM_SOLUTION.column("nav_accountstatistics", "nav_accountid")
    assert flag is not None and lookup is not None
    assert meta.create_column("salesorder", column_body(flag)) == column_url
    assert meta.create_relationship(relationship_body(lookup, "accountid")) == relation_url
    assert target(seen[0]) == "EntityDefinitions(LogicalName='salesorder')/Attributes"
    bool_body = json.loads(seen[0].content)
    assert bool_body["@odata.type"] == "Microsoft.Dynamics.CRM.BooleanAttributeMetadata"
    assert {"TrueOption", "FalseOption"} <= set(bool_body["OptionSet"])
    relation = json.loads(seen[1].content)
    assert target(seen[1]) == "RelationshipDefinitions"
    assert relation["@odata.type"] == "Microsoft.Dynamics.CRM.OneToManyRelationshipMetadata"
    assert (relation["ReferencedEntity"], relation["ReferencingEntity"]) == (
        "account", "nav_accountstatistics")
    assert relation["Lookup"]["SchemaName"] == "nav_AccountId"
    assert relation["ReferencingEntityNavigationPropertyName"] == "nav_accountid"


def test_d10_a_definition_that_exists_counts_as_done() -> None:
    """D10: creating a column whose name is taken answers 400 ``0x80044363`` ("... already
    exists" / "not unique"; the code practitioners handle after
    *Create and update column definitions using the Web API*,
    https://learn.microsoft.com/en-us/power-apps/developer/data-platform/webapi/create-update-column-definitions-using-web-api);
    ``setup crm`` counts it as done and goes on."""
    seen: list[httpx.Request] = []

    def reply(request: httpx.Request) -> httpx.Response:
        if len(seen) == 1:
            return httpx.Response(400, json={"error": {
                "code": "0x80044363", "message": "An attribute with the specified name "
                "already exists: 'nav_bcordernumber'."}})
        return _created(f"{ORG}EntityDefinitions(1)/Attributes(2)")

    order = CRM_SOLUTION.column("salesorder", "nav_bcordernumber")
    invoice = CRM_SOLUTION.column("invoice", "nav_bcinvoicenumber")
    assert order is not None and invoice is not None
    plan = SetupPlan(
        steps=(SetupStep(StepKind.COLUMN, "salesorder", "nav_bcordernumber", "", "POST"),
               SetupStep(StepKind.COLUMN, "invoice", "nav_bcinvoicenumber", "", "POST")),
        bodies=(("salesorder", column_body(order)), ("invoice", column_body(invoice))))
    results = apply_plan(plan, dataverse(reply, seen))
    assert [r.status for r in results] == [StepStatus.EXISTED, StepStatus.CREATED]


BC_CSDL = """<?xml version="1.0" encoding="utf-8"?>
<edmx:Edmx Version="4.0" xmlns:edmx="http://docs.oasis-open.org/odata/ns/edmx">
 <edmx:DataServices>
  <Schema Namespace="Microsoft.NAV" xmlns="http://docs.oasis-open.org/odata/ns/edm">
   <EntityType Name="customer">
    <Key><PropertyRef Name="id"/></Key>
    <Property Name="id" Type="Edm.Guid" Nullable="false"/>
    <Property Name="number" Type="Edm.String" MaxLength="20"/>
    <Property Name="displayName" Type="Edm.String" MaxLength="100"/>
    <Property Name="creditLimit" Type="Edm.Decimal" Scale="Variable"/>
    <Property Name="lastModifiedDateTime" Type="Edm.DateTimeOffset"/>
    <NavigationProperty Name="customerFinancialDetails"
        Type="Collection(Microsoft.NAV.customerFinancialDetail)"/>
   </EntityType>
   <EntityContainer Name="NAV">
    <EntitySet Name="customers" EntityType="Microsoft.NAV.customer"/>
   </EntityContainer>
  </Schema>
 </edmx:DataServices>
</edmx:Edmx>"""


def test_b1_bc_metadata_csdl() -> None:
    """B1, Business Central API v2.0 ``$metadata`` (*Business Central API (v2.0)* /
    *customer resource type*,
    https://learn.microsoft.com/en-us/dynamics365/business-central/dev-itpro/api-reference/v2.0/resources/dynamics_customer):
    a CSDL (EDMX 4.0) document; ``EntityType customer`` with ``Property Name="number"
    Type="Edm.String" MaxLength="20"`` and ``EntitySet Name="customers"``. BC answers it
    without a company, as XML."""
    seen: list[httpx.Request] = []

    def reply(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=BC_CSDL.encode(),
                              headers={"Content-Type": "application/xml"})

    sets = bc(reply).entity_sets()
    assert target(seen[0]) == "$metadata" and "companies" not in str(seen[0].url)
    assert sets is not None and sets["customers"].properties["number"] == ("Edm.String", 20)
    assert sets["customers"].keys == ("id",)
    assert "customerFinancialDetails" in sets["customers"].navigation
    with pytest.raises(ValueError):
        parse_csdl(b"<html/>")


def test_b1_custom_api_not_installed_answers_404() -> None:
    """B1 for the extension's API root: BC answers 404 ``BadRequest_NotFound`` ("No HTTP
    resource was found that matches the request URI") when the API is not installed
    (*Troubleshooting API errors*,
    https://learn.microsoft.com/en-us/dynamics365/business-central/dev-itpro/developer/devenv-api-troubleshooting)."""
    custom = BC.replace("api/v2.0/", "api/navcrm/sync/v1.0/")

    def reply(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404, json={"error": {
            "code": "BadRequest_NotFound",
            "message": "No HTTP resource was found that matches the request URI."}})

    assert bc(reply, custom).entity_sets() is None


def test_clock_from_the_date_header() -> None:
    """Every reply carries ``Date`` (RFC 9110, an IMF-fixdate); the skew is the service's
    time minus ours (*WhoAmI Function*,
    https://learn.microsoft.com/en-us/power-apps/developer/data-platform/webapi/reference/whoami)."""
    seen: list[httpx.Request] = []
    ahead = datetime.now(UTC) + timedelta(minutes=5)

    def reply(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"Date": format_datetime(ahead, usegmt=True)},
                              json={"UserId": "1f5f6e9b-3e2a-4c8e-9f00-5a0b9c1d2e3f",
                                    "BusinessUnitId": "0d2a1b6c-0000-4000-8000-000000000001",
                                    "OrganizationId": "0d2a1b6c-0000-4000-8000-000000000002"})

    meta = dataverse(reply, seen)
    assert meta.whoami()["UserId"].startswith("1f5f")
    assert target(seen[0]) == "WhoAmI"
    assert meta.clock.skew_s is not None and 290 < meta.clock.skew_s < 310


def test_gather_facts_reports_a_missing_extension_and_reads_the_rest() -> None:
    """The facts a doctor reads from documented replies (D1, D2, D3, D4, D5, B1, B2 as in the
    tests above): the standard API's CSDL is read, the extension's root answers 404
    (*Troubleshooting API errors*,
    https://learn.microsoft.com/en-us/dynamics365/business-central/dev-itpro/developer/devenv-api-troubleshooting)
    and the probe says to install the extension."""
    from nav_crm_ops.connectors.factory import Connections
    from nav_crm_ops.setup.facts import ProbeStatus, gather_facts

    user = "1f5f6e9b-3e2a-4c8e-9f00-5a0b9c1d2e3f"

    def crm(request: httpx.Request) -> httpx.Response:
        path = target(request)
        if path == "WhoAmI":
            return httpx.Response(200, json={"UserId": user})
        if path.startswith("EntityDefinitions?"):
            return httpx.Response(200, json={"value": [{
                "LogicalName": "account", "SchemaName": "Account", "EntitySetName": "accounts",
                "PrimaryIdAttribute": "accountid", "PrimaryNameAttribute": "name"}]})
        if "PicklistAttributeMetadata" in path:
            return httpx.Response(200, json={"value": []})
        if path.endswith("/Attributes?$select=LogicalName,AttributeType,SchemaName"):
            return httpx.Response(200, json={"value": [
                {"LogicalName": "accountid", "AttributeType": "Uniqueidentifier",
                 "SchemaName": "AccountId"}]})
        return httpx.Response(200, json={"RolePrivileges": [
            {"Depth": "Global", "PrivilegeName": "prvReadAccount"}]})

    def standard(request: httpx.Request) -> httpx.Response:
        if target(request) == "$metadata":
            return httpx.Response(200, content=BC_CSDL.encode())
        return httpx.Response(200, json={"value": [{"id": COMPANY, "name": "CRONUS"}]})

    def custom(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404, json={"error": {
            "code": "BadRequest_NotFound",
            "message": "No HTTP resource was found that matches the request URI."}})

    connections = Connections(
        dataverse=Dataverse(ORG, StaticAuth(), transport=httpx.MockTransport(crm)),
        business_central=BusinessCentral(BC, COMPANY, StaticAuth(),
                                         transport=httpx.MockTransport(standard)),
        business_central_custom=BusinessCentral(
            BC.replace("api/v2.0/", "api/navcrm/sync/v1.0/"), COMPANY, StaticAuth(),
            transport=httpx.MockTransport(custom)))
    facts = gather_facts(connections, crm_tables=["account", "nav_accountstatistics"],
                         choice_tables=["account"], bc_apis=["v2.0", "navcrm/sync/v1.0"])
    assert facts.crm is not None and set(facts.crm.tables) == {"account"}
    assert facts.crm.privileges == frozenset({"prvReadAccount"})
    assert facts.bc is not None and facts.bc.companies == {COMPANY: "CRONUS"}
    assert facts.bc.apis["navcrm/sync/v1.0"] is None and "customers" in (
        facts.bc.apis["v2.0"] or {})
    missing = [p for p in facts.probes if p.status is ProbeStatus.FAILED]
    assert [p.check for p in missing] == ["API navcrm/sync/v1.0"]
    assert "bc-extension/README.md" in missing[0].fix
