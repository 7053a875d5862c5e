"""Dataverse metadata (issue #16) over real loopback HTTP: table and column definitions (D1,
D2, D3), privileges (D5), created tables, columns and lookups (D6, D7, D8, D10), the sandbox
without the integration solution, and Business Central ``$metadata`` (B1).

Error replies follow *Web service error codes*
(https://learn.microsoft.com/power-apps/developer/data-platform/reference/web-service-error-codes):
an unknown table is 404 ``0x80040217`` (ObjectDoesNotExist) with the MetadataCache message
real tenants answer; a missing privilege is 403 ``0x80040220`` (PrivilegeDenied).
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import httpx
import pytest

from nav_crm_ops.sandbox import Sandbox

D1 = ("EntityDefinitions?$select=LogicalName,SchemaName,EntitySetName,PrimaryIdAttribute,"
      "PrimaryNameAttribute&$filter=LogicalName eq 'account' or LogicalName eq "
      "'nav_accountstatistics' or LogicalName eq 'nosuchtable'")
D2 = "EntityDefinitions(LogicalName='{}')/Attributes?$select=LogicalName,AttributeType,SchemaName"
D3 = ("EntityDefinitions(LogicalName='account')/Attributes/Microsoft.Dynamics.CRM."
      "PicklistAttributeMetadata?$select=LogicalName&$expand=OptionSet($select=Options),"
      "GlobalOptionSet($select=Options)")
EDM = "{http://docs.oasis-open.org/odata/ns/edm}"


def _token(sb: Sandbox, scope: str) -> str:
    info = sb.info
    return str(httpx.post(info.token_url, data={
        "grant_type": "client_credentials", "client_id": info.client_id,
        "client_secret": info.client_secret.reveal(), "scope": scope,
    }, timeout=30).json()["access_token"])


def dataverse(sb: Sandbox) -> httpx.Client:
    headers = {"Authorization": f"Bearer {_token(sb, sb.info.dataverse_scope)}",
               "Accept": "application/json", "OData-MaxVersion": "4.0", "OData-Version": "4.0"}
    return httpx.Client(base_url=sb.info.dataverse_url, headers=headers, timeout=60)


@pytest.fixture
def dv(fresh_sandbox: Sandbox) -> Iterator[httpx.Client]:
    with dataverse(fresh_sandbox) as client:
        yield client


def label(text: str) -> dict[str, Any]:
    return {"@odata.type": "Microsoft.Dynamics.CRM.Label", "LocalizedLabels": [
        {"@odata.type": "Microsoft.Dynamics.CRM.LocalizedLabel", "Label": text,
         "LanguageCode": 1033}]}


def string_column(schema: str, length: int = 100, **extra: Any) -> dict[str, Any]:
    return {"@odata.type": "Microsoft.Dynamics.CRM.StringAttributeMetadata",
            "SchemaName": schema, "MaxLength": length, "DisplayName": label(schema),
            "RequiredLevel": {"Value": "None"}, "FormatName": {"Value": "Text"}, **extra}


def table_body(schema: str = "nav_Visit") -> dict[str, Any]:
    return {"@odata.type": "Microsoft.Dynamics.CRM.EntityMetadata", "SchemaName": schema,
            "DisplayName": label("Visit"), "DisplayCollectionName": label("Visits"),
            "OwnershipType": "OrganizationOwned", "HasActivities": False, "HasNotes": False,
            "IsActivity": False,
            "Attributes": [
                string_column("nav_Name", 100, IsPrimaryName=True),
                {"@odata.type": "Microsoft.Dynamics.CRM.MoneyAttributeMetadata",
                 "SchemaName": "nav_Amount", "DisplayName": label("Amount"),
                 "PrecisionSource": 2},
                {"@odata.type": "Microsoft.Dynamics.CRM.PicklistAttributeMetadata",
                 "SchemaName": "nav_Kind", "DisplayName": label("Kind"),
                 "OptionSet": {"IsGlobal": False, "OptionSetType": "Picklist", "Options": [
                     {"Value": 100000000, "Label": label("Call")},
                     {"Value": 100000001, "Label": label("Meeting")}]}},
            ]}


def error_of(response: httpx.Response) -> dict[str, str]:
    body = response.json()
    assert set(body) == {"error"}
    return dict(body["error"])


def attributes_of(dv: httpx.Client, table: str) -> dict[str, dict[str, Any]]:
    reply = dv.get(D2.format(table))
    assert reply.status_code == 200, reply.text
    return {a["LogicalName"]: a for a in reply.json()["value"]}


# --------------------------------------------------------------------------- reads


def test_entity_definitions_list_the_tables_asked_for(dv: httpx.Client) -> None:
    reply = dv.get(D1)
    assert reply.status_code == 200 and "date" in reply.headers
    tables = {t["LogicalName"]: t for t in reply.json()["value"]}
    assert set(tables) == {"account", "nav_accountstatistics"}
    assert tables["account"] == {
        "MetadataId": tables["account"]["MetadataId"], "LogicalName": "account",
        "SchemaName": "Account", "EntitySetName": "accounts",
        "PrimaryIdAttribute": "accountid", "PrimaryNameAttribute": "name"}
    assert tables["nav_accountstatistics"]["EntitySetName"] == "nav_accountstatisticses"
    bad = dv.get("EntityDefinitions?$select=LogicalName,Nonsense")
    assert bad.status_code == 400 and error_of(bad)["code"] == "0x80060888"


def test_attributes_are_typed_per_kind(dv: httpx.Client) -> None:
    account = attributes_of(dv, "account")
    expected = {"accountid": ("Uniqueidentifier", "UniqueIdentifier"),
                "name": ("String", "String"), "description": ("Memo", "Memo"),
                "creditlimit": ("Money", "Money"), "statecode": ("State", "State"),
                "statuscode": ("Status", "Status"), "customertypecode": ("Picklist", "Picklist"),
                "primarycontactid": ("Lookup", "Lookup"), "ownerid": ("Owner", "Lookup"),
                "owneridtype": ("EntityName", "EntityName"), "createdon": ("DateTime", "DateTime"),
                "versionnumber": ("BigInt", "BigInt")}
    for name, (kind, odata) in expected.items():
        assert account[name]["AttributeType"] == kind, name
        assert account[name]["@odata.type"] == f"#Microsoft.Dynamics.CRM.{odata}AttributeMetadata"
        assert set(account[name]) == {"@odata.type", "LogicalName", "AttributeType",
                                      "SchemaName", "MetadataId"}
    contact = attributes_of(dv, "contact")
    assert contact["parentcustomerid"]["AttributeType"] == "Customer"
    order = attributes_of(dv, "salesorder")
    assert order["nav_submittedtobackoffice"]["AttributeType"] == "Boolean"
    assert order["nav_submittedtobackoffice"]["SchemaName"] == "nav_SubmittedToBackOffice"
    stats = attributes_of(dv, "nav_accountstatistics")
    assert stats["nav_lastupdated"]["AttributeType"] == "DateTime"
    full = dv.get("EntityDefinitions(LogicalName='account')/Attributes(LogicalName='name')")
    assert full.json()["MaxLength"] == 160 and full.json()["IsPrimaryName"] is True


def test_unknown_tables_and_attributes_answer_404(dv: httpx.Client) -> None:
    for path in ("EntityDefinitions(LogicalName='nosuch')",
                 D2.format("nosuch"), D3.replace("'account'", "'nosuch'")):
        reply = dv.get(path)
        assert reply.status_code == 404, path
        error = error_of(reply)
        assert error["code"] == "0x80040217"
        assert "'nosuch'" in error["message"] and "MetadataCache" in error["message"]
    missing = dv.get("EntityDefinitions(LogicalName='account')/Attributes(LogicalName='nope')")
    assert missing.status_code == 404 and error_of(missing)["code"] == "0x80040217"
    unknown = dv.get(D2.format("account").replace("SchemaName", "MaxLength"))
    assert unknown.status_code == 400
    assert "MaxLength" in error_of(unknown)["message"]


def test_picklist_attributes_still_served(dv: httpx.Client) -> None:
    reply = dv.get(D3)
    assert reply.status_code == 200
    options = {a["LogicalName"]: [o["Value"] for o in a["OptionSet"]["Options"]]
               for a in reply.json()["value"]}
    assert 3 in options["customertypecode"]


def test_retrieve_user_privileges_and_revoking(fresh_sandbox: Sandbox, dv: httpx.Client) -> None:
    me = dv.get("WhoAmI").json()["UserId"]
    path = f"systemusers({me})/Microsoft.Dynamics.CRM.RetrieveUserPrivileges"
    privileges = dv.get(path).json()["RolePrivileges"]
    names = {p["PrivilegeName"] for p in privileges}
    assert {"prvReadAccount", "prvWriteContact", "prvCreatenav_AccountStatistics",
            "prvAppendToAccount"} <= names
    assert all(p["Depth"] == "Global" and p["BusinessUnitId"] for p in privileges)
    admin = httpx.post(f"{fresh_sandbox.info.base_url}/_sandbox/privileges",
                       json={"revoke": ["prvWriteAccount", "prvReadContact"]})
    assert admin.json() == {"revoke": ["prvReadContact", "prvWriteAccount"]}
    names = {p["PrivilegeName"] for p in dv.get(path).json()["RolePrivileges"]}
    assert "prvWriteAccount" not in names and "prvReadAccount" in names
    denied = dv.get("contacts?$top=1")
    assert denied.status_code == 403 and error_of(denied)["code"] == "0x80040220"
    assert "prvReadContact" in error_of(denied)["message"]
    assert dv.get("accounts?$top=1").status_code == 200
    fresh_sandbox.set_privileges([])
    assert dv.get("contacts?$top=1").status_code == 200
    unknown = dv.get(f"systemusers({'0' * 8}-0000-0000-0000-{'0' * 12})/Microsoft.Dynamics.CRM."
                     "RetrieveUserPrivileges")
    assert unknown.status_code == 404


# --------------------------------------------------------------------------- writes


def test_create_table_then_use_it(dv: httpx.Client) -> None:
    reply = dv.post("EntityDefinitions", json=table_body(),
                    headers={"MSCRM.SolutionUniqueName": "navcrm"})
    assert reply.status_code == 204, reply.text
    assert re.search(r"/EntityDefinitions\([0-9a-f-]{36}\)$", reply.headers["OData-EntityId"])
    table = dv.get(reply.headers["OData-EntityId"]).json()
    assert table["LogicalName"] == "nav_visit" and table["EntitySetName"] == "nav_visits"
    assert table["PrimaryIdAttribute"] == "nav_visitid"
    assert table["PrimaryNameAttribute"] == "nav_name"
    columns = attributes_of(dv, "nav_visit")
    assert columns["nav_amount"]["AttributeType"] == "Money"
    assert columns["nav_kind"]["SchemaName"] == "nav_Kind"
    assert "transactioncurrencyid" in columns and "statecode" in columns
    created = dv.post("nav_visits", json={"nav_name": "First", "nav_amount": 12.5,
                                          "nav_kind": 100000001})
    assert created.status_code == 204, created.text
    rows = dv.get("nav_visits?$select=nav_name,nav_kind").json()["value"]
    assert [(r["nav_name"], r["nav_kind"]) for r in rows] == [("First", 100000001)]
    bad = dv.post("nav_visits", json={"nav_name": "x", "nav_kind": 5})
    assert bad.status_code == 400
    assert b"nav_visit" in dv.get("$metadata").content
    again = dv.post("EntityDefinitions", json=table_body())
    assert again.status_code == 400 and error_of(again)["code"] == "0x80044363"


@pytest.mark.parametrize(("change", "words"), [
    ({"SchemaName": None}, "SchemaName is required"),
    ({"SchemaName": "Visit"}, "customization prefix"),
    ({"DisplayName": None}, "DisplayName"),
    ({"OwnershipType": "Nobody"}, "OwnershipType"),
    ({"Attributes": []}, "primary name"),
])
def test_create_table_refuses_incomplete_definitions(dv: httpx.Client, change: dict[str, Any],
                                                     words: str) -> None:
    body = {**table_body(), **change}
    reply = dv.post("EntityDefinitions", json=body)
    assert reply.status_code == 400
    assert words in error_of(reply)["message"]


def test_create_columns_with_their_checks(dv: httpx.Client) -> None:
    path = "EntityDefinitions(LogicalName='account')/Attributes"
    reply = dv.post(path, json=string_column("nav_Region", 40))
    assert reply.status_code == 204, reply.text
    assert "/Attributes(" in reply.headers["OData-EntityId"]
    flag = {"@odata.type": "Microsoft.Dynamics.CRM.BooleanAttributeMetadata",
            "SchemaName": "nav_Blocked", "DisplayName": label("Blocked"),
            "OptionSet": {"TrueOption": {"Value": 1, "Label": label("Yes")},
                          "FalseOption": {"Value": 0, "Label": label("No")}}}
    assert dv.post(path, json=flag).status_code == 204
    columns = attributes_of(dv, "account")
    assert columns["nav_region"]["AttributeType"] == "String"
    assert columns["nav_blocked"]["AttributeType"] == "Boolean"
    duplicate = dv.post(path, json=string_column("nav_Region", 40))
    assert duplicate.status_code == 400 and error_of(duplicate)["code"] == "0x80044363"
    for body, words in ((string_column("nav_Long", 5000), "MaxLength"),
                        ({**flag, "SchemaName": "nav_Other", "OptionSet": {}}, "TrueOption"),
                        (string_column("Region2"), "customization prefix"),
                        ({**string_column("nav_X"), "@odata.type":
                          "Microsoft.Dynamics.CRM.LookupAttributeMetadata"},
                         "RelationshipDefinitions")):
        refused = dv.post(path, json=body)
        assert refused.status_code == 400 and words in error_of(refused)["message"], body
    missing = dv.post("EntityDefinitions(LogicalName='nosuch')/Attributes",
                      json=string_column("nav_Y"))
    assert missing.status_code == 404


def test_create_lookup_through_a_relationship(dv: httpx.Client) -> None:
    assert dv.post("EntityDefinitions", json=table_body()).status_code == 204
    relationship = {
        "@odata.type": "Microsoft.Dynamics.CRM.OneToManyRelationshipMetadata",
        "SchemaName": "nav_account_nav_visit", "ReferencedEntity": "account",
        "ReferencedAttribute": "accountid", "ReferencingEntity": "nav_visit",
        "ReferencingEntityNavigationPropertyName": "nav_accountid",
        "Lookup": {"@odata.type": "Microsoft.Dynamics.CRM.LookupAttributeMetadata",
                   "AttributeType": "Lookup", "SchemaName": "nav_AccountId",
                   "DisplayName": label("Account"), "RequiredLevel": {"Value": "None"}}}
    reply = dv.post("RelationshipDefinitions", json=relationship)
    assert reply.status_code == 204, reply.text
    assert "/RelationshipDefinitions(" in reply.headers["OData-EntityId"]
    lookup = attributes_of(dv, "nav_visit")["nav_accountid"]
    assert lookup["AttributeType"] == "Lookup"
    account = dv.get("accounts?$top=1&$select=name").json()["value"][0]["accountid"]
    created = dv.post("nav_visits", json={"nav_name": "V",
                                          "nav_accountid@odata.bind": f"/accounts({account})"})
    assert created.status_code == 204, created.text
    rows = dv.get("nav_visits?$select=_nav_accountid_value").json()["value"]
    assert rows[0]["_nav_accountid_value"] == account
    again = dv.post("RelationshipDefinitions", json=relationship)
    assert again.status_code == 400 and error_of(again)["code"] == "0x80044363"
    other = {**relationship, "SchemaName": "nav_x", "ReferencedEntity": "nosuch"}
    assert dv.post("RelationshipDefinitions", json=other).status_code == 404


# --------------------------------------------------------------------------- flavour


def test_without_the_solution_nav_columns_are_unknown_until_created(
        no_solution_sandbox: Sandbox) -> None:
    with dataverse(no_solution_sandbox) as dv:
        assert dv.get(D1).json()["value"][0]["LogicalName"] == "account"
        assert dv.get(D2.format("nav_accountstatistics")).status_code == 404
        assert "nav_submittedtobackoffice" not in attributes_of(dv, "salesorder")
        read = dv.get("salesorders?$select=nav_submittedtobackoffice&$top=1")
        assert read.status_code == 400 and "nav_submittedtobackoffice" in read.text
        order = dv.get("salesorders?$select=name&$top=1").json()["value"][0]["salesorderid"]
        write = dv.patch(f"salesorders({order})", json={"nav_submittedtobackoffice": True})
        assert write.status_code == 400 and "nav_submittedtobackoffice" in write.text
        assert dv.get("nav_accountstatisticses").status_code == 404
        names = {p["PrivilegeName"] for p in dv.get(
            f"systemusers({dv.get('WhoAmI').json()['UserId']})/Microsoft.Dynamics.CRM."
            "RetrieveUserPrivileges").json()["RolePrivileges"]}
        assert "prvReadnav_AccountStatistics" not in names
        flag = {"@odata.type": "Microsoft.Dynamics.CRM.BooleanAttributeMetadata",
                "SchemaName": "nav_SubmittedToBackOffice", "DisplayName": label("Submitted"),
                "OptionSet": {"TrueOption": {"Value": 1, "Label": label("Yes")},
                              "FalseOption": {"Value": 0, "Label": label("No")}}}
        created = dv.post("EntityDefinitions(LogicalName='salesorder')/Attributes", json=flag)
        assert created.status_code == 204, created.text
        assert dv.post("EntityDefinitions", json=table_body()).status_code == 204
        assert dv.patch(f"salesorders({order})",
                        json={"nav_submittedtobackoffice": True}).status_code == 204
    data_dir = no_solution_sandbox.context.options.data_dir
    no_solution_sandbox.stop()
    with Sandbox(data_dir=data_dir, port=0, crm_solution=False) as again, \
            dataverse(again) as dv:
        row = dv.get(f"salesorders({order})?$select=nav_submittedtobackoffice").json()
        assert row["nav_submittedtobackoffice"] is True
        assert "nav_name" in attributes_of(dv, "nav_visit")
        assert b'Name="nav_submittedtobackoffice"' in dv.get("$metadata").content
        again.reset()
        assert dv.get(D2.format("nav_visit")).status_code == 404
        assert "nav_submittedtobackoffice" not in attributes_of(dv, "salesorder")
        assert again.context.status()["crm_solution"] is False


def test_reset_forgets_created_definitions(fresh_sandbox: Sandbox, dv: httpx.Client) -> None:
    assert dv.post("EntityDefinitions", json=table_body("nav_Note")).status_code == 204
    fresh_sandbox.reset()
    assert dv.get(D2.format("nav_note")).status_code == 404
    assert dv.get(D2.format("nav_accountstatistics")).status_code == 200


# --------------------------------------------------------------------------- Business Central


def test_bc_metadata_documents(fresh_sandbox: Sandbox) -> None:
    info = fresh_sandbox.info
    headers = {"Authorization": f"Bearer {_token(fresh_sandbox, info.bc_scope)}"}
    standard = httpx.get(info.bc_api_url + "$metadata", headers=headers, timeout=30)
    assert standard.status_code == 200 and "date" in standard.headers
    assert standard.headers["content-type"].startswith("application/xml")
    schema = ElementTree.fromstring(standard.content).find(f".//{EDM}Schema")
    assert schema is not None and schema.get("Namespace") == "Microsoft.NAV"
    types = {t.get("Name"): t for t in schema.iter(f"{EDM}EntityType")}
    number = types["customer"].find(f"{EDM}Property[@Name='number']")
    assert number is not None and number.attrib == {"Name": "number", "Type": "Edm.String",
                                                   "MaxLength": "20"}
    key = types["customer"].find(f"{EDM}Key/{EDM}PropertyRef")
    assert key is not None and key.get("Name") == "id"
    lines = types["salesOrder"].find(f"{EDM}NavigationProperty[@Name='salesOrderLines']")
    assert lines is not None
    assert lines.get("Type") == "Collection(Microsoft.NAV.salesOrderLine)"
    sets = {s.get("Name"): s.get("EntityType") for s in schema.iter(f"{EDM}EntitySet")}
    assert sets["customers"] == "Microsoft.NAV.customer" and "salesPrices" not in sets
    custom = httpx.get(info.bc_custom_api_url + "$metadata", headers=headers, timeout=30)
    assert custom.status_code == 200
    custom_schema = ElementTree.fromstring(custom.content).find(f".//{EDM}Schema")
    assert custom_schema is not None
    custom_sets = {s.get("Name") for s in custom_schema.iter(f"{EDM}EntitySet")}
    assert {"salesPrices", "customerStatistics", "resources"} <= custom_sets
    assert "customers" not in custom_sets
    absent = httpx.get(info.bc_custom_api_url.replace("navcrm/sync", "other/group") + "$metadata",
                       headers=headers, timeout=30)
    assert absent.status_code == 404
    assert absent.json()["error"]["code"] == "BadRequest_NotFound"
    assert "No HTTP resource was found" in absent.json()["error"]["message"]


# --------------------------------------------------------------------------- the solution


def _solution_columns(dv: httpx.Client) -> dict[tuple[str, str], tuple[Any, ...]]:
    """(table, column) → (AttributeType, SchemaName, MaxLength, Targets) of every nav_ column."""
    found: dict[tuple[str, str], tuple[Any, ...]] = {}
    for table in ("salesorder", "invoice", "nav_accountstatistics"):
        for name in attributes_of(dv, table):
            if name.startswith("nav_"):
                full = dv.get(f"EntityDefinitions(LogicalName='{table}')/Attributes("
                              f"LogicalName='{name}')").json()
                found[(table, name)] = (full["AttributeType"], full["SchemaName"],
                                        full.get("MaxLength"), tuple(full.get("Targets") or ()))
    return found


def test_setup_requests_rebuild_the_built_in_solution(fresh_sandbox: Sandbox,
                                                      no_solution_sandbox: Sandbox) -> None:
    """The client's description of the solution, sent as `setup crm` sends it to a sandbox
    without it, gives the same nav_ tables and columns as the default sandbox."""
    from nav_crm_ops.setup.crm_solution import CRM_SOLUTION, ColumnKind
    from nav_crm_ops.setup.definitions import column_body, relationship_body, table_body

    with dataverse(no_solution_sandbox) as bare:
        for table in CRM_SOLUTION.tables:
            plain = [c for c in CRM_SOLUTION.columns if c.table == table.logical_name
                     and c.kind is not ColumnKind.LOOKUP]
            reply = bare.post("EntityDefinitions", json=table_body(table, plain))
            assert reply.status_code == 204, reply.text
        for column in CRM_SOLUTION.columns:
            if column.kind is ColumnKind.LOOKUP:
                body = relationship_body(column, f"{column.lookup_target}id")
                reply = bare.post("RelationshipDefinitions", json=body)
            elif CRM_SOLUTION.table(column.table) is None:
                reply = bare.post(f"EntityDefinitions(LogicalName='{column.table}')/Attributes",
                                  json=column_body(column))
            else:
                continue
            assert reply.status_code == 204, reply.text
        rebuilt = _solution_columns(bare)
    with dataverse(fresh_sandbox) as built_in:
        expected = _solution_columns(built_in)
    assert rebuilt == expected


def test_cli_flag_starts_without_the_solution(tmp_path: Path) -> None:
    ready = tmp_path / "ready.json"
    process = subprocess.Popen(
        [sys.executable, "-m", "nav_crm_ops.cli", "sandbox", "--port", "0", "--no-crm-solution",
         "--data", str(tmp_path / "data"), "--ready-file", str(ready)],
        cwd=Path(__file__).resolve().parents[2], stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not ready.exists():
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "sandbox did not become ready"
            time.sleep(0.1)
        urls = json.loads(ready.read_text())
        status = httpx.get(urls["base_url"] + "/_sandbox/status").json()
        assert status["crm_solution"] is False
        assert "dataverse:nav_accountstatistics" not in status["counts"]
        assert status["counts"]["dataverse:account"] > 0
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=30)
    assert process.returncode == 0
