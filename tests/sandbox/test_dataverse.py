"""The emulated Dataverse Web API over real loopback HTTP, with raw httpx (not the connector)."""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from nav_crm_ops.sandbox import Sandbox

FORMATTED = "OData.Community.Display.V1.FormattedValue"
BATCH_PATH = "/crm/api/data/v9.2/"


@pytest.fixture
def dv(fresh_sandbox: Sandbox) -> Iterator[httpx.Client]:
    """An httpx client on the Dataverse root, with a client-credentials token."""
    info = fresh_sandbox.info
    token = httpx.post(info.token_url, data={
        "grant_type": "client_credentials", "client_id": info.client_id,
        "client_secret": info.client_secret.reveal(), "scope": info.dataverse_scope,
    }, timeout=30).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json",
               "OData-MaxVersion": "4.0", "OData-Version": "4.0"}
    with httpx.Client(base_url=info.dataverse_url, headers=headers, timeout=60) as client:
        yield client


def create(dv: httpx.Client, entity_set: str, body: dict[str, Any]) -> str:
    response = dv.post(entity_set, json=body)
    assert response.status_code == 204, response.text
    match = re.search(r"\(([0-9a-f-]{36})\)$", response.headers["OData-EntityId"])
    assert match is not None
    return match.group(1)


def error_of(response: httpx.Response) -> dict[str, str]:
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) >= {"code", "message"}
    return dict(body["error"])


def batch_body(boundary: str, parts: list[str | list[tuple[str, str, dict[str, Any] | None]]],
               ) -> str:
    """A multipart $batch: a str part is a GET url; a list is a change set of (method, url, body)."""
    lines: list[str] = []
    for part in parts:
        lines.append(f"--{boundary}")
        if isinstance(part, str):
            lines += ["Content-Type: application/http", "Content-Transfer-Encoding: binary", "",
                      f"GET {BATCH_PATH}{quote(part, safe='/?=&$(),')} HTTP/1.1", "Accept: application/json", ""]
            continue
        change_set = f"changeset_{uuid.uuid4().hex}"
        lines += [f"Content-Type: multipart/mixed; boundary={change_set}", ""]
        for index, (method, url, body) in enumerate(part, start=1):
            target = url if url.startswith("$") else f"{BATCH_PATH}{url}"
            lines += [f"--{change_set}", "Content-Type: application/http",
                      "Content-Transfer-Encoding: binary", f"Content-ID: {index}", "",
                      f"{method} {target} HTTP/1.1", "Content-Type: application/json", "",
                      json.dumps(body) if body is not None else ""]
        lines.append(f"--{change_set}--")
    lines += [f"--{boundary}--", ""]
    return "\r\n".join(lines)


def post_batch(dv: httpx.Client, parts: list[Any], prefer: str | None = None,
               ) -> tuple[httpx.Response, list[tuple[int, str]]]:
    boundary = f"batch_{uuid.uuid4().hex}"
    headers = {"Content-Type": f'multipart/mixed; boundary="{boundary}"'}
    if prefer:
        headers["Prefer"] = prefer
    response = dv.post("$batch", content=batch_body(boundary, parts), headers=headers)
    assert response.status_code == 200, response.text
    statuses = [(int(code), text) for code, text in
                re.findall(r"HTTP/1\.1 (\d{3}) ([^\r\n]*)", response.text)]
    return response, statuses


def names(dv: httpx.Client, flt: str) -> list[str]:
    response = dv.get("accounts", params={"$select": "name", "$filter": flt,
                                          "$orderby": "name"})
    assert response.status_code == 200, response.text
    return [row["name"] for row in response.json()["value"]]


# ------------------------------------------------------------------------------------- reads
def test_paging_walks_every_row_once_with_skiptoken(dv: httpx.Client) -> None:
    prefix = f"Paging {uuid.uuid4().hex[:6]}"
    for index in range(7):
        create(dv, "accounts", {"name": f"{prefix} {index:02d}"})
    params = {"$select": "name", "$filter": f"startswith(name,'{prefix}')", "$orderby": "name"}
    response = dv.get("accounts", params=params, headers={"Prefer": "odata.maxpagesize=2"})
    seen: list[str] = []
    pages = 0
    while True:
        assert response.status_code == 200, response.text
        assert response.headers["Preference-Applied"] == "odata.maxpagesize=2"
        body = response.json()
        pages += 1
        seen += [row["name"] for row in body["value"]]
        assert len(body["value"]) <= 2
        if pages == 2:
            create(dv, "accounts", {"name": f"{prefix} 00a"})   # sorts before the cursor
            create(dv, "accounts", {"name": f"{prefix} 99"})    # sorts after it
        link = body.get("@odata.nextLink")
        if not link:
            break
        assert "$skiptoken=%3Ccookie%20pagenumber%3D%22" in link
        response = dv.get(link, headers={"Prefer": "odata.maxpagesize=2"})
    assert seen == sorted(seen) and len(seen) == len(set(seen))
    assert seen == [f"{prefix} {i:02d}" for i in range(7)] + [f"{prefix} 99"]
    assert pages == 4


def test_descending_order_pages_through_ties(dv: httpx.Client) -> None:
    tag = uuid.uuid4().hex[:6]
    for index in range(5):
        create(dv, "accounts", {"name": f"Desc {tag}", "creditlimit": float(index % 2)})
    params = {"$select": "name,creditlimit", "$filter": f"name eq 'Desc {tag}'",
              "$orderby": "creditlimit desc,accountid"}
    link: str | None = "accounts"
    seen: list[tuple[float, str]] = []
    while link:
        body = dv.get(link, params=params if link == "accounts" else None,
                      headers={"Prefer": "odata.maxpagesize=2"}).json()
        seen += [(row["creditlimit"], row["accountid"]) for row in body["value"]]
        link = body.get("@odata.nextLink")
    assert len(seen) == 5 and len({key for _, key in seen}) == 5
    assert seen == sorted(seen, key=lambda item: (-item[0], item[1]))


def test_unemulated_options_are_refused_not_ignored(dv: httpx.Client) -> None:
    response = dv.get("accounts", params={"$expand": "primarycontactid"})
    assert response.status_code == 501 and "$expand" in error_of(response)["message"]


def test_top_count_and_skip(dv: httpx.Client) -> None:
    prefix = f"Top {uuid.uuid4().hex[:6]}"
    for index in range(3):
        create(dv, "accounts", {"name": f"{prefix} {index}"})
    flt = f"startswith(name,'{prefix}')"
    body = dv.get("accounts", params={"$filter": flt, "$top": "2", "$count": "true"}).json()
    assert len(body["value"]) == 2 and body["@odata.count"] == 3
    assert "@odata.nextLink" not in body
    ignored = dv.get("accounts", params={"$filter": flt, "$top": "1"},
                     headers={"Prefer": "odata.maxpagesize=5"}).json()
    assert len(ignored["value"]) == 3
    response = dv.get("accounts", params={"$skip": "1"})
    assert response.status_code == 400 and "$skip" in error_of(response)["message"]


def test_select_single_get_etag_and_not_found(dv: httpx.Client) -> None:
    key = create(dv, "accounts", {"name": "Select Me", "telephone1": "555"})
    response = dv.get(f"accounts({key})", params={"$select": "name"})
    body = response.json()
    assert body["@odata.context"].endswith("$metadata#accounts(name)/$entity")
    assert body["accountid"] == key and body["name"] == "Select Me"
    assert "telephone1" not in body
    assert body["@odata.etag"] == f'W/"{body["versionnumber"]}"'
    assert dv.get(f"accounts({key})", headers={"If-None-Match": body["@odata.etag"]}
                  ).status_code == 304
    assert dv.get(f"accounts({key})", headers={"If-None-Match": 'W/"1"'}).status_code == 200
    bad = dv.get("accounts", params={"$select": "name,nosuch"})
    assert bad.status_code == 400
    assert error_of(bad)["message"] == ("Could not find a property named 'nosuch' on type "
                                        "'Microsoft.Dynamics.CRM.account'.")
    missing = str(uuid.uuid4())
    gone = dv.get(f"accounts({missing})")
    assert gone.status_code == 404
    assert error_of(gone) == {"code": "0x80040217",
                              "message": f"account With Id = {missing} Does Not Exist"}
    unknown = dv.get("foos")
    assert unknown.status_code == 404
    assert error_of(unknown)["message"] == "Resource not found for the segment 'foos'."


def test_filters_quotes_case_lookups_and_datetimes(dv: httpx.Client) -> None:
    tag = uuid.uuid4().hex[:6]
    parent = create(dv, "accounts", {"name": f"O'Bryan {tag}", "address1_city": "Dublin"})
    create(dv, "accounts", {"name": f"OBRYAN {tag} Two", "parentaccountid@odata.bind":
                            f"/accounts({parent})"})
    assert names(dv, f"name eq 'o''bryan {tag}'") == [f"O'Bryan {tag}"]
    assert names(dv, f"contains(name,'bryan {tag}')") == [f"O'Bryan {tag}", f"OBRYAN {tag} Two"]
    assert names(dv, f"_parentaccountid_value eq {parent}") == [f"OBRYAN {tag} Two"]
    assert names(dv, f"contains(name,'{tag}') and address1_city eq null") == [
        f"OBRYAN {tag} Two"]
    row = dv.get(f"accounts({parent})").json()
    stamp = row["modifiedon"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", stamp)
    later = names(dv, f"contains(name,'{tag}') and modifiedon ge {stamp}")
    assert later == [f"O'Bryan {tag}", f"OBRYAN {tag} Two"]
    assert names(dv, f"contains(name,'{tag}') and createdon lt 2000-01-01T00:00:00Z") == []
    bad = dv.get("accounts", params={"$filter": "nosuch eq 1"})
    assert bad.status_code == 400 and "nosuch" in error_of(bad)["message"]


def test_formatted_values_and_lookup_annotations(dv: httpx.Client) -> None:
    currency = create(dv, "transactioncurrencies", {"isocurrencycode": "XTS", "currencyname":
                                                    "Testing Currency", "currencysymbol": "¤"})
    key = create(dv, "accounts", {"name": "Formatted", "customertypecode": 3,
                                  "creditlimit": 1234.5, "paymenttermscode": 2,
                                  "transactioncurrencyid@odata.bind":
                                      f"/transactioncurrencies({currency})"})
    plain = dv.get(f"accounts({key})").json()
    assert not any("@" in name for name in plain if not name.startswith("@odata"))
    response = dv.get(f"accounts({key})", headers={
        "Prefer": f'odata.include-annotations="{FORMATTED},'
                  'Microsoft.Dynamics.CRM.lookuplogicalname"'})
    body = response.json()
    assert body[f"customertypecode@{FORMATTED}"] == "Customer"
    assert body[f"paymenttermscode@{FORMATTED}"] == "2% 10, Net 30"
    assert body[f"creditlimit@{FORMATTED}"] == "¤1,234.50"
    assert body[f"_transactioncurrencyid_value@{FORMATTED}"] == "Testing Currency"
    assert body["_transactioncurrencyid_value@Microsoft.Dynamics.CRM.lookuplogicalname"] == \
        "transactioncurrency"
    assert "odata.include-annotations" in response.headers["Preference-Applied"]


# ------------------------------------------------------------------------------------ writes
def test_create_with_representation_and_client_key(dv: httpx.Client) -> None:
    key = str(uuid.uuid4())
    response = dv.post("accounts", json={"accountid": key, "name": "Mine"},
                       headers={"Prefer": "return=representation"})
    assert response.status_code == 201 and response.json()["accountid"] == key
    assert response.headers["OData-EntityId"].endswith(f"/accounts({key})")
    again = dv.post("accounts", json={"accountid": key, "name": "Again"})
    assert again.status_code == 412
    assert error_of(again)["message"] == "A record with matching key values already exists."


def test_writes_stamp_the_application_user(dv: httpx.Client) -> None:
    me = dv.get("WhoAmI").json()
    assert set(me) >= {"UserId", "BusinessUnitId", "OrganizationId"}
    key = create(dv, "accounts", {"name": "Echo"})
    row = dv.get(f"accounts({key})").json()
    assert row["_createdby_value"] == row["_modifiedby_value"] == me["UserId"]
    user = dv.get(f"systemusers({me['UserId']})").json()
    assert user["applicationid"] is not None and user["accessmode"] == 4


def test_update_etag_and_delete(dv: httpx.Client) -> None:
    key = create(dv, "accounts", {"name": "Versioned"})
    etag = dv.get(f"accounts({key})").json()["@odata.etag"]
    assert dv.patch(f"accounts({key})", json={"name": "V2"},
                    headers={"If-Match": etag}).status_code == 204
    stale = dv.patch(f"accounts({key})", json={"name": "V3"}, headers={"If-Match": etag})
    assert stale.status_code == 412
    assert error_of(stale)["message"] == ("The version of the existing record doesn't match the "
                                          "RowVersion property provided.")
    assert dv.delete(f"accounts({key})", headers={"If-Match": etag}).status_code == 412
    assert dv.get(f"accounts({key})").json()["name"] == "V2"
    assert dv.delete(f"accounts({key})").status_code == 204
    assert dv.delete(f"accounts({key})").status_code == 404


def test_upsert_and_its_guards(dv: httpx.Client) -> None:
    key = str(uuid.uuid4())
    guarded = dv.patch(f"accounts({key})", json={"name": "Nope"}, headers={"If-Match": "*"})
    assert guarded.status_code == 404 and error_of(guarded)["code"] == "0x80040217"
    assert dv.patch(f"accounts({key})", json={"name": "Upserted"}).status_code == 204
    assert dv.get(f"accounts({key})").json()["name"] == "Upserted"
    blocked = dv.patch(f"accounts({key})", json={"name": "Changed"},
                       headers={"If-None-Match": "*"})
    assert blocked.status_code == 412
    assert error_of(blocked)["message"] == "A record with matching key values already exists."
    updated = dv.patch(f"accounts({key})", json={"name": "Changed"},
                       headers={"If-Match": "*", "Prefer": "return=representation"})
    assert updated.status_code == 200 and updated.json()["name"] == "Changed"


def test_alternate_keys(dv: httpx.Client) -> None:
    number = f"ALT{uuid.uuid4().hex[:8]}"
    assert dv.patch(f"accounts(accountnumber='{number}')",
                    json={"name": "By Number"}).status_code == 204
    row = dv.get(f"accounts(accountnumber='{number}')").json()
    assert row["name"] == "By Number" and row["accountnumber"] == number
    dv.patch(f"accounts(accountnumber='{number}')", json={"telephone1": "1"})
    again = dv.get("accounts", params={"$filter": f"accountnumber eq '{number}'"}).json()
    assert len(again["value"]) == 1 and again["value"][0]["telephone1"] == "1"
    bad = dv.get("accounts(accountnumber='a/b')")
    assert bad.status_code == 400
    assert dv.get("accounts(name='x')").status_code == 400


def test_lookup_binding(dv: httpx.Client) -> None:
    account = create(dv, "accounts", {"name": "Parent Co"})
    contact = create(dv, "contacts", {"firstname": "Ann", "lastname": "Lee",
                                      "parentcustomerid_account@odata.bind":
                                          f"{dv.base_url}accounts({account})"})
    row = dv.get(f"contacts({contact})", headers={"Prefer": 'odata.include-annotations="*"'}
                 ).json()
    assert row["_parentcustomerid_value"] == account and row["fullname"] == "Ann Lee"
    assert row["_parentcustomerid_value@Microsoft.Dynamics.CRM.associatednavigationproperty"] \
        == "parentcustomerid_account"
    assert row[f"_parentcustomerid_value@{FORMATTED}"] == "Parent Co"
    missing = str(uuid.uuid4())
    dangling = dv.post("contacts", json={"lastname": "X", "parentcustomerid_account@odata.bind":
                                         f"/accounts({missing})"})
    assert dangling.status_code == 404
    assert error_of(dangling)["message"] == f"account With Id = {missing} Does Not Exist"
    direct = dv.post("contacts", json={"lastname": "X", "_parentcustomerid_value": account})
    assert direct.status_code == 400 and "Navigation properties" in error_of(direct)["message"]


@pytest.mark.parametrize(("body", "code", "message"), [
    ({"name": "x" * 161}, "0x80044331", "A validation error occurred.  The length of the 'name' "
     "attribute of the 'account' entity exceeded the maximum allowed length of '160'."),
    ({"name": "x", "customertypecode": 42}, "0x8004431A", "The value 42 of 'customertypecode' "
     "on record of type 'account' is outside the valid range. Accepted Values: 1,2,3"),
    ({"telephone1": "1"}, "0x80040203", "'name' attribute of the 'account' entity is required"),
    ({"name": "x", "creditlimit": "lots"}, "0x80048d19", "Cannot convert the literal 'lots' to "
     "the expected type 'Edm.Decimal'"),
    ({"name": "x", "statecode": 1, "statuscode": 1}, "0x80040203",
     "1 is not a valid status code for state code AccountState.Inactive"),
    ({"name": "x", "bogus": 1}, "0x80060888", "The property 'bogus' does not exist on type "
     "'Microsoft.Dynamics.CRM.account'."),
])
def test_validation_errors_in_dataverse_shape(dv: httpx.Client, body: dict[str, Any],
                                              code: str, message: str) -> None:
    response = dv.post("accounts", json=body)
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == code and message in error["message"]


def test_state_and_status_move_together(dv: httpx.Client) -> None:
    key = create(dv, "accounts", {"name": "Stateful"})
    dv.patch(f"accounts({key})", json={"statecode": 1})
    row = dv.get(f"accounts({key})").json()
    assert (row["statecode"], row["statuscode"]) == (1, 2)


def test_delete_removes_lines_and_clears_links(dv: httpx.Client) -> None:
    account = create(dv, "accounts", {"name": "Doomed"})
    contact = create(dv, "contacts", {"lastname": "Orphan", "parentcustomerid_account@odata.bind":
                                      f"/accounts({account})"})
    order = create(dv, "salesorders", {"name": "Doomed order", "customerid_account@odata.bind":
                                       f"/accounts({account})"})
    line = create(dv, "salesorderdetails", {"quantity": 2.0, "productdescription": "Chair",
                                            "salesorderid@odata.bind": f"/salesorders({order})"})
    assert dv.get(f"salesorders({order})").json()["ordernumber"].startswith("ORD-")
    assert dv.delete(f"salesorders({order})").status_code == 204
    assert dv.get(f"salesorderdetails({line})").status_code == 404
    assert dv.delete(f"accounts({account})").status_code == 204
    assert dv.get(f"contacts({contact})").json()["_parentcustomerid_value"] is None


# ------------------------------------------------------------------------------------ $batch
def test_batch_change_set_with_content_id_references(dv: httpx.Client) -> None:
    tag = uuid.uuid4().hex[:6]
    response, statuses = post_batch(dv, [
        [("POST", "accounts", {"name": f"Batch {tag}"}),
         ("POST", "contacts", {"lastname": f"Batch {tag}",
                               "parentcustomerid_account@odata.bind": "$1"}),
         ("PATCH", "$1", {"telephone1": "123"})],
        f"accounts?$select=name&$filter=name eq 'Batch {tag}'",
    ])
    assert statuses == [(204, "No Content")] * 3 + [(200, "OK")]
    assert response.headers["Content-Type"].startswith("multipart/mixed; boundary=batchresponse_")
    assert "--changesetresponse_" in response.text and "OData-EntityId: " in response.text
    account = dv.get("accounts", params={"$filter": f"name eq 'Batch {tag}'"}).json()["value"]
    assert len(account) == 1 and account[0]["telephone1"] == "123"
    contacts = dv.get("contacts", params={
        "$filter": f"_parentcustomerid_value eq {account[0]['accountid']}"}).json()["value"]
    assert [c["lastname"] for c in contacts] == [f"Batch {tag}"]


def test_batch_failing_change_set_rolls_back_and_stops(dv: httpx.Client) -> None:
    tag = uuid.uuid4().hex[:6]
    parts: list[Any] = [
        [("POST", "accounts", {"name": f"Rolled {tag}"}),
         ("POST", "accounts", {"name": "x" * 161})],
        [("POST", "accounts", {"name": f"After {tag}"})],
    ]
    _, statuses = post_batch(dv, parts)
    assert statuses == [(400, "Bad Request")]
    assert names(dv, f"contains(name,'{tag}')") == []
    response, statuses = post_batch(dv, parts, prefer="odata.continue-on-error")
    assert statuses == [(400, "Bad Request"), (204, "No Content")]
    assert response.headers["Preference-Applied"] == "odata.continue-on-error"
    assert "0x80044331" in response.text
    assert names(dv, f"contains(name,'{tag}')") == [f"After {tag}"]


def test_batch_parts_outside_change_sets_stop_at_first_failure(dv: httpx.Client) -> None:
    missing = uuid.uuid4()
    parts: list[Any] = [f"accounts({missing})", "accounts?$top=1"]
    _, statuses = post_batch(dv, parts)
    assert statuses == [(404, "Not Found")]
    _, statuses = post_batch(dv, parts, prefer="odata.continue-on-error")
    assert statuses == [(404, "Not Found"), (200, "OK")]


def test_batch_rejects_more_than_1000_requests(dv: httpx.Client) -> None:
    boundary = "batch_big"
    body = batch_body(boundary, ["WhoAmI"] * 1001)
    response = dv.post("$batch", content=body,
                       headers={"Content-Type": f"multipart/mixed; boundary={boundary}"})
    assert response.status_code == 400 and "1000" in error_of(response)["message"]


# ----------------------------------------------------------------------------- change tracking
def test_change_tracking_reports_changes_and_deletions(dv: httpx.Client) -> None:
    keep = create(dv, "accounts", {"name": "Tracked keep"})
    drop = create(dv, "accounts", {"name": "Tracked drop"})
    first = dv.get("accounts", params={"$select": "name"},
                   headers={"Prefer": "odata.track-changes"})
    assert first.status_code == 200 and first.headers["Preference-Applied"] == \
        "odata.track-changes"
    body = first.json()
    assert {keep, drop} <= {row["accountid"] for row in body["value"]}
    delta_link = body["@odata.deltaLink"]
    assert "$deltatoken=" in delta_link
    dv.patch(f"accounts({keep})", json={"name": "Tracked kept"})
    dv.delete(f"accounts({drop})")
    added = create(dv, "accounts", {"name": "Tracked new"})
    delta = dv.get(delta_link, headers={"Prefer": "odata.track-changes"}).json()
    changed = {row["accountid"]: row["name"] for row in delta["value"] if "accountid" in row}
    assert changed == {keep: "Tracked kept", added: "Tracked new"}
    deleted = [row for row in delta["value"] if row.get("reason") == "deleted"]
    assert deleted == [{"@odata.context": f"{dv.base_url}$metadata#accounts/$deletedEntity",
                        "id": drop, "reason": "deleted"}]
    empty = dv.get(delta["@odata.deltaLink"]).json()
    assert empty["value"] == []
    refused = dv.get("accounts", params={"$filter": "name eq 'x'"},
                     headers={"Prefer": "odata.track-changes"})
    assert refused.status_code == 400 and "$filter" in error_of(refused)["message"]
    assert dv.get("incidents", headers={"Prefer": "odata.track-changes"}).status_code == 400


# ----------------------------------------------------------------------------------- metadata
def test_choice_metadata_and_insert_option_value(dv: httpx.Client) -> None:
    url = ("EntityDefinitions(LogicalName='account')/Attributes/"
           "Microsoft.Dynamics.CRM.PicklistAttributeMetadata")
    params = {"$select": "LogicalName", "$expand": "OptionSet,GlobalOptionSet"}
    body = dv.get(url, params=params).json()
    by_name = {a["LogicalName"]: a for a in body["value"]}
    options = by_name["customertypecode"]["OptionSet"]["Options"]
    assert [(o["Value"], o["Label"]["UserLocalizedLabel"]["Label"]) for o in options][:3] == [
        (1, "Competitor"), (2, "Consultant"), (3, "Customer")]
    assert "statecode" not in by_name and "paymenttermscode" in by_name
    rejected = dv.post("accounts", json={"name": "x", "paymenttermscode": 100000000})
    assert rejected.status_code == 400
    inserted = dv.post("InsertOptionValue", json={
        "EntityLogicalName": "account", "AttributeLogicalName": "paymenttermscode",
        "Label": {"LocalizedLabels": [{"Label": "21 DAYS", "LanguageCode": 1033}]}})
    assert inserted.status_code == 200
    value = inserted.json()["NewOptionValue"]
    assert value == 100000000
    key = create(dv, "accounts", {"name": "New terms", "paymenttermscode": value})
    row = dv.get(f"accounts({key})", headers={
        "Prefer": f'odata.include-annotations="{FORMATTED}"'}).json()
    assert row[f"paymenttermscode@{FORMATTED}"] == "21 DAYS"
    again = dv.get(url, params=params).json()
    labels = [o["Label"]["UserLocalizedLabel"]["Label"] for a in again["value"]
              if a["LogicalName"] == "paymenttermscode" for o in a["OptionSet"]["Options"]]
    assert labels[-1] == "21 DAYS"
    wrong = dv.post("InsertOptionValue", json={
        "EntityLogicalName": "account", "AttributeLogicalName": "name",
        "Label": {"LocalizedLabels": [{"Label": "x", "LanguageCode": 1033}]}})
    assert wrong.status_code == 400 and "paymenttermscode" in error_of(wrong)["message"]


def test_service_document_and_metadata(dv: httpx.Client) -> None:
    sets = {item["name"] for item in dv.get("").json()["value"]}
    assert {"accounts", "contacts", "nav_accountstatisticses", "salesorders"} <= sets
    assert "sandbox_optionvalues" not in sets
    csdl = dv.get("$metadata")
    assert csdl.status_code == 200 and csdl.headers["Content-Type"] == "application/xml"
    assert '<Property Name="name" Type="Edm.String" MaxLength="160"/>' in csdl.text
    assert '<NavigationProperty Name="parentcustomerid_account"' in csdl.text


# -------------------------------------------------------------------------------- performance
def test_reading_12000_accounts_in_pages_of_5000_is_quick(fresh_sandbox: Sandbox,
                                                          dv: httpx.Client) -> None:
    store = fresh_sandbox.context.store
    store.insert_many("dataverse:account", ({"name": f"Bulk {i:05d}", "statecode": 0,
                                             "statuscode": 1, "customertypecode": 3}
                                            for i in range(12_000)))
    started = time.perf_counter()
    response = dv.get("accounts", params={"$select": "name,customertypecode",
                                          "$filter": "startswith(name,'Bulk ')"})
    total, pages = 0, 0
    while True:
        body = response.json()
        total += len(body["value"])
        pages += 1
        if "@odata.nextLink" not in body:
            break
        response = dv.get(body["@odata.nextLink"])
    assert (total, pages) == (12_000, 3)
    assert time.perf_counter() - started < 10


def test_datetime_filters_compare_the_whole_seconds_the_client_sees(dv: httpx.Client) -> None:
    key = create(dv, "accounts", {"name": "Second precision Ltd"})
    seen = dv.get(f"accounts({key})", params={"$select": "modifiedon"}).json()["modifiedon"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", seen)
    after = dv.get("accounts", params={"$select": "name", "$filter": f"modifiedon gt {seen}"})
    assert "Second precision Ltd" not in [r["name"] for r in after.json()["value"]]
    at = dv.get("accounts", params={"$select": "name", "$filter": f"modifiedon ge {seen}"})
    assert "Second precision Ltd" in [r["name"] for r in at.json()["value"]]
