"""The emulated Dataverse Web API over real loopback HTTP, with raw httpx (not the connector)."""

from __future__ import annotations

import json
import re
import time
import uuid
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from nav_crm_ops.sandbox import Sandbox

FORMATTED = "OData.Community.Display.V1.FormattedValue"
BATCH_PATH = "/crm/api/data/v9.2/"


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
               status: int = 200) -> tuple[httpx.Response, list[tuple[int, str]]]:
    """``status``: without ``odata.continue-on-error`` a batch that stops at a failing part
    answers with that part's status (*Execute batch operations using the Web API*)."""
    boundary = f"batch_{uuid.uuid4().hex}"
    headers = {"Content-Type": f'multipart/mixed; boundary="{boundary}"'}
    if prefer:
        headers["Prefer"] = prefer
    response = dv.post("$batch", content=batch_body(boundary, parts), headers=headers)
    assert response.status_code == status, response.text
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
    assert set(body) == {"@odata.context", "@odata.etag", "name", "accountid"}
    assert re.fullmatch(r'W/"\d+"', body["@odata.etag"])
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
    # "When an entity is created in this way the OData-EntityId header ... is not returned"
    # (Create a table row using the Web API, Create with data returned); no ETag header either.
    assert "OData-EntityId" not in response.headers and "ETag" not in response.headers
    assert response.json()["@odata.etag"].startswith('W/"')
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


def test_impersonation_stamps_the_person(dv: httpx.Client) -> None:
    me = dv.get("WhoAmI").json()["UserId"]
    person = dv.get("systemusers", params={
        "$filter": "accessmode ne 4 and isdisabled eq false", "$top": "1"}).json()["value"][0]
    acting = {"MSCRMCallerID": person["systemuserid"]}
    key = create(dv, "accounts", {"name": "Made by a person"})
    assert dv.patch(f"accounts({key})", json={"name": "Edited by a person"},
                    headers={**acting, "If-Match": "*"}).status_code == 204
    row = dv.get(f"accounts({key})").json()
    assert row["_createdby_value"] == me
    assert row["_modifiedby_value"] == person["systemuserid"]
    assert dv.get("WhoAmI", headers=acting).json()["UserId"] == person["systemuserid"]
    nobody = dv.patch(f"accounts({key})", json={"name": "x"},
                      headers={"MSCRMCallerID": str(uuid.uuid4()), "If-Match": "*"})
    assert nobody.status_code == 400 and "MSCRMCallerID" in error_of(nobody)["message"]


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


def test_a_write_returns_its_version_only_with_representation(dv: httpx.Client) -> None:
    """*Create a table row* / *Update and delete table rows using the Web API*: ``204`` with
    ``OData-EntityId`` and no version; ``return=representation`` → 201/200 with the record as
    ``$select``-ed and its ``@odata.etag``. The sandbox used to add an ``ETag`` header."""
    created = dv.post("accounts", json={"name": "No version header"})
    assert created.status_code == 204 and "ETag" not in created.headers
    key = created.headers["OData-EntityId"].rsplit("(", 1)[1].rstrip(")")
    updated = dv.patch(f"accounts({key})", json={"telephone1": "1"}, headers={"If-Match": "*"})
    assert updated.status_code == 204 and "ETag" not in updated.headers
    upserted = dv.patch(f"accounts({uuid.uuid4()})", json={"name": "Upserted"},
                        headers={"If-None-Match": "*"})
    assert upserted.status_code == 204 and "ETag" not in upserted.headers
    returned = dv.patch(f"accounts({key})", params={"$select": "telephone1"},
                        json={"telephone1": "2"},
                        headers={"If-Match": "*", "Prefer": "return=representation"})
    assert returned.status_code == 200 and "ETag" not in returned.headers
    body = returned.json()
    assert set(body) == {"@odata.context", "@odata.etag", "telephone1", "accountid"}
    assert body["@odata.etag"] == dv.get(f"accounts({key})").json()["@odata.etag"]


def test_a_412_on_create_names_what_clashed(dv: httpx.Client) -> None:
    """``If-None-Match: *`` on an existing id: 412 with an empty code (*Perform conditional
    operations*); a new id whose alternate key value is taken: 412 ``0x80040237`` naming the
    key; duplicate detection only when asked for: ``500`` ``0x80040333`` (*Detect duplicate data
    using the Web API*)."""
    number = f"K{uuid.uuid4().hex[:8]}"
    name = f"Dup {uuid.uuid4().hex[:8]}"
    key = create(dv, "accounts", {"name": name, "accountnumber": number})
    same_id = dv.patch(f"accounts({key})", json={"name": "x"}, headers={"If-None-Match": "*"})
    assert same_id.status_code == 412 and error_of(same_id) == {
        "code": "", "message": "A record with matching key values already exists."}
    other = str(uuid.uuid4())
    clash = dv.patch(f"accounts({other})", json={"name": "y", "accountnumber": number},
                     headers={"If-None-Match": "*"})
    assert clash.status_code == 412 and error_of(clash)["code"] == "0x80040237"
    assert "accountnumber" in error_of(clash)["message"]
    assert dv.get(f"accounts({other})").status_code == 404
    assert dv.post("accounts", json={"name": name.upper()}).status_code == 204
    detected = dv.post("accounts", json={"name": name},
                       headers={"MSCRM.SuppressDuplicateDetection": "false"})
    assert detected.status_code == 500 and error_of(detected)["code"] == "0x80040333"
    allowed = dv.post("accounts", json={"name": name},
                      headers={"MSCRM.SuppressDuplicateDetection": "true"})
    assert allowed.status_code == 204


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
    _, statuses = post_batch(dv, parts, status=400)
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
    _, statuses = post_batch(dv, parts, status=404)
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
    assert ('<NavigationProperty Name="invoice_details" Type="Collection(mscrm.invoicedetail)"/>'
            in csdl.text)
    assert '<NavigationProperty Name="regardingobjectid_account"' in csdl.text


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


# ------------------------------------------------------------------------- documents (issue 5)
def _seed_id(dv: httpx.Client, entity_set: str, flt: str, key: str) -> str:
    rows = dv.get(entity_set, params={"$filter": flt, "$select": key}).json()["value"]
    assert len(rows) == 1, rows
    return str(rows[0][key])


def _invoice_body(tag: str, account: str, product: str, unit: str) -> dict[str, Any]:
    return {
        "name": f"Invoice {tag}", "totalamount": 999.99, "totaltax": 12.5,
        "discountamount": 1.0, "customerid_account@odata.bind": f"/accounts({account})",
        "invoice_details": [
            {"invoicedetailid": str(uuid.uuid4()), "productid@odata.bind":
             f"/products({product})", "uomid@odata.bind": f"/uoms({unit})",
             "quantity": 3.0, "priceperunit": 10.25, "ispriceoverridden": True,
             "manualdiscountamount": 2.0, "tax": 5.5, "lineitemnumber": 1},
            {"isproductoverridden": True, "productdescription": f"Write-in {tag}",
             "quantity": 2.0, "priceperunit": 7.5, "lineitemnumber": 2},
        ]}


def test_deep_insert_creates_an_invoice_with_its_details(dv: httpx.Client) -> None:
    tag = uuid.uuid4().hex[:6]
    account = create(dv, "accounts", {"name": f"Deep {tag}"})
    product = _seed_id(dv, "products", "productnumber eq '1896-S'", "productid")
    unit = _seed_id(dv, "uoms", "name eq 'PCS'", "uomid")
    euro = _seed_id(dv, "transactioncurrencies", "isocurrencycode eq 'EUR'",
                    "transactioncurrencyid")
    body = _invoice_body(tag, account, product, unit)
    body["transactioncurrencyid@odata.bind"] = f"/transactioncurrencies({euro})"
    invoice = create(dv, "invoices", body)
    read = dv.get(f"invoices({invoice})", params={"$expand": "invoice_details"})
    assert read.status_code == 200, read.text
    header = read.json()
    details = header["invoice_details"]
    assert [d["invoicedetailid"] for d in details][:1] == [body["invoice_details"][0][
        "invoicedetailid"]]
    assert {d["_invoiceid_value"] for d in details} == {invoice}
    assert {d["_transactioncurrencyid_value"] for d in details} == {euro}
    first, second = details
    assert (first["_productid_value"], first["_uomid_value"]) == (product, unit)
    assert (first["ispriceoverridden"], second["ispriceoverridden"]) == (True, False)
    assert first["baseamount"] == round(3.0 * 10.25, 2)
    assert first["extendedamount"] == round(3.0 * 10.25 - 2.0 + 5.5, 2)
    assert (second["productdescription"], second["extendedamount"]) == (f"Write-in {tag}", 15.0)
    assert header["totallineitemamount"] == round(first["extendedamount"] + 15.0, 2)
    assert (header["totalamount"], header["totaltax"], header["discountamount"]) == (
        999.99, 12.5, 1.0)
    narrow = dv.get(f"invoices({invoice})", params={
        "$select": "name", "$expand": "invoice_details($select=quantity)"}).json()
    assert [set(d) - {"@odata.etag"} for d in narrow["invoice_details"]] == [
        {"quantity", "invoicedetailid"}] * 2
    listed = dv.get("invoicedetails", params={"$filter": f"_invoiceid_value eq {invoice}"})
    assert len(listed.json()["value"]) == 2


def test_deep_insert_answers_with_the_children_when_asked(dv: httpx.Client) -> None:
    account = create(dv, "accounts", {"name": "Deep representation"})
    response = dv.post("salesorders", headers={"Prefer": "return=representation"}, json={
        "name": "Represented", "customerid_account@odata.bind": f"/accounts({account})",
        "order_details": [{"productdescription": "Desk", "isproductoverridden": True,
                           "quantity": 2.0, "priceperunit": 100.0}]})
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["totallineitemamount"] == 200.0
    assert [d["extendedamount"] for d in body["order_details"]] == [200.0]
    assert body["order_details"][0]["_salesorderid_value"] == body["salesorderid"]


@pytest.mark.parametrize(("child", "column"), [
    ({"nosuchcolumn": 1}, "nosuchcolumn"),
    ({"productdescription": "x" * 501}, "productdescription"),
    ({"quantity": "three"}, "Edm.Decimal"),
    ({"productid@odata.bind": f"/products({uuid.uuid4()})"}, "product With Id"),
])
def test_an_invalid_child_fails_the_whole_deep_insert(dv: httpx.Client, child: dict[str, Any],
                                                      column: str) -> None:
    tag = uuid.uuid4().hex[:6]
    account = create(dv, "accounts", {"name": f"Deep fail {tag}"})
    good = str(uuid.uuid4())
    response = dv.post("invoices", json={
        "name": f"Failing {tag}", "customerid_account@odata.bind": f"/accounts({account})",
        "invoice_details": [{"invoicedetailid": good, "productdescription": "fine"}, child]})
    assert response.status_code in (400, 404), response.text
    assert column in error_of(response)["message"]
    assert dv.get("invoices", params={"$filter": f"name eq 'Failing {tag}'"}).json()[
        "value"] == []
    assert dv.get(f"invoicedetails({good})").status_code == 404


def test_deep_insert_shapes_that_are_refused(dv: httpx.Client) -> None:
    account = create(dv, "accounts", {"name": "Deep shapes"})
    bind = {"customerid_account@odata.bind": f"/accounts({account})"}
    not_array = dv.post("invoices", json={"name": "x", **bind, "invoice_details": {}})
    assert not_array.status_code == 400 and "array" in error_of(not_array)["message"]
    wrong_nav = dv.post("invoices", json={"name": "x", **bind, "order_details": []})
    assert wrong_nav.status_code == 400 and "order_details" in error_of(wrong_nav)["message"]
    order = create(dv, "salesorders", {"name": "Deep patch", **bind})
    deep_patch = dv.patch(f"salesorders({order})", json={"order_details": []})
    assert deep_patch.status_code == 400 and "Deep update" in error_of(deep_patch)["message"]
    expand = dv.get(f"salesorders({order})", params={"$expand": "customerid_account"})
    assert expand.status_code == 501


def test_deep_insert_inside_a_batch_change_set(dv: httpx.Client) -> None:
    tag = uuid.uuid4().hex[:6]
    account = create(dv, "accounts", {"name": f"Deep batch {tag}"})
    _, statuses = post_batch(dv, [[
        ("POST", "salesorders", {
            "name": f"Batch order {tag}", "customerid_account@odata.bind": f"/accounts({account})",
            "order_details": [{"productdescription": "A", "isproductoverridden": True,
                               "quantity": 1.0, "priceperunit": 4.0},
                              {"productdescription": "B", "isproductoverridden": True,
                               "quantity": 2.0, "priceperunit": 3.0}]}),
        ("PATCH", "$1", {"description": "patched after"})]])
    assert statuses == [(204, "No Content")] * 2
    order = dv.get("salesorders", params={"$filter": f"name eq 'Batch order {tag}'",
                                          "$expand": "order_details"}).json()["value"]
    assert len(order) == 1 and order[0]["description"] == "patched after"
    assert [d["productdescription"] for d in order[0]["order_details"]] == ["A", "B"]
    assert order[0]["totallineitemamount"] == 10.0
    _, statuses = post_batch(dv, [[("POST", "salesorders", {
        "name": f"Batch broken {tag}", "customerid_account@odata.bind": f"/accounts({account})",
        "order_details": [{"productdescription": "y" * 501}]})]], status=400)
    assert statuses == [(400, "Bad Request")]
    assert dv.get("salesorders", params={"$filter": f"name eq 'Batch broken {tag}'"}).json()[
        "value"] == []


def test_detail_writes_keep_line_and_header_amounts(dv: httpx.Client) -> None:
    account = create(dv, "accounts", {"name": "Amounts"})
    order = create(dv, "salesorders", {"name": "Amounts order", "totallineitemamount": 5.0,
                                       "customerid_account@odata.bind": f"/accounts({account})"})
    assert dv.get(f"salesorders({order})").json()["totallineitemamount"] in (None, 0.0)
    line = create(dv, "salesorderdetails", {
        "salesorderid@odata.bind": f"/salesorders({order})", "isproductoverridden": True,
        "productdescription": "Chair", "quantity": 4.0, "priceperunit": 2.5,
        "baseamount": 1.0, "extendedamount": 1.0})
    row = dv.get(f"salesorderdetails({line})").json()
    assert (row["baseamount"], row["extendedamount"]) == (10.0, 10.0)
    other = create(dv, "salesorderdetails", {
        "salesorderid@odata.bind": f"/salesorders({order})", "isproductoverridden": True,
        "productdescription": "Lamp", "quantity": 1.0, "priceperunit": 3.0})
    assert dv.get(f"salesorders({order})").json()["totallineitemamount"] == 13.0
    dv.patch(f"salesorderdetails({line})", json={"quantity": 5.0, "manualdiscountamount": 0.5,
                                                 "tax": 2.0})
    row = dv.get(f"salesorderdetails({line})").json()
    assert (row["baseamount"], row["extendedamount"]) == (12.5, 14.0)
    assert dv.get(f"salesorders({order})").json()["totallineitemamount"] == 17.0
    assert dv.delete(f"salesorderdetails({other})").status_code == 204
    header = dv.get(f"salesorders({order})").json()
    assert header["totallineitemamount"] == 14.0
    dv.patch(f"salesorders({order})", json={"totalamount": 20.0, "totaltax": 2.0,
                                            "discountamount": 0.0})
    header = dv.get(f"salesorders({order})").json()
    assert (header["totalamount"], header["totaltax"], header["totallineitemamount"]) == (
        20.0, 2.0, 14.0)


def test_a_unit_group_creates_its_base_unit(dv: httpx.Client) -> None:
    tag = uuid.uuid4().hex[:6]
    group = create(dv, "uomschedules", {"name": f"Group {tag}", "baseuomname": f"Base {tag}"})
    units = dv.get("uoms", params={
        "$filter": f"_uomscheduleid_value eq {group} and isschedulebaseuom eq true"}).json()
    assert len(units["value"]) == 1
    base = units["value"][0]
    assert (base["name"], base["quantity"], base["_baseuom_value"]) == (
        f"Base {tag}", 1.0, base["uomid"])
    missing = dv.post("uomschedules", json={"name": f"No base {tag}"})
    assert missing.status_code == 400 and "baseuomname" in error_of(missing)["message"]


def test_every_seeded_unit_group_has_its_base_unit(dv: httpx.Client) -> None:
    groups = dv.get("uomschedules").json()["value"]
    assert groups
    for group in groups:
        bases = dv.get("uoms", params={"$filter": f"_uomscheduleid_value eq "
                                                  f"{group['uomscheduleid']} and "
                                                  "isschedulebaseuom eq true"}).json()["value"]
        assert [b["name"] for b in bases] == [group["baseuomname"]]
        assert bases[0]["_baseuom_value"] == bases[0]["uomid"]


def test_sales_order_state_changes_an_update_may_make(dv: httpx.Client) -> None:
    account = create(dv, "accounts", {"name": "Order states"})
    order = create(dv, "salesorders", {"name": "Stateful order",
                                       "customerid_account@odata.bind": f"/accounts({account})"})

    def move(state: int, status: int) -> httpx.Response:
        return dv.patch(f"salesorders({order})", json={"statecode": state, "statuscode": status})

    assert move(1, 3).status_code == 204
    assert move(0, 1).status_code == 204
    assert move(1, 3).status_code == 204
    assert move(4, 100003).status_code == 204
    row = dv.get(f"salesorders({order})").json()
    assert (row["statecode"], row["statuscode"]) == (4, 100003)
    refused = move(3, 100001)
    assert refused.status_code == 400
    assert "Invoiced to Fulfilled" in error_of(refused)["message"]
    other = create(dv, "salesorders", {"name": "Straight to invoiced",
                                       "customerid_account@odata.bind": f"/accounts({account})"})
    jump = dv.patch(f"salesorders({other})", json={"statecode": 4, "statuscode": 100003})
    assert jump.status_code == 400 and "Active to Invoiced" in error_of(jump)["message"]


def test_posts_on_an_account_wall(dv: httpx.Client) -> None:
    account = create(dv, "accounts", {"name": "Wall"})
    post = create(dv, "posts", {"text": "Order 101001 was posted.", "source": 1,
                                "regardingobjectid_account@odata.bind": f"/accounts({account})"})
    wall = dv.get("posts", params={"$filter": f"_regardingobjectid_value eq {account}"}).json()
    assert [(p["postid"], p["text"]) for p in wall["value"]] == [
        (post, "Order 101001 was posted.")]
    plain = dv.post("posts", json={"text": "x",
                                   "regardingobjectid@odata.bind": f"/accounts({account})"})
    assert plain.status_code == 400 and "regardingobjectid" in error_of(plain)["message"]
    assert dv.delete(f"accounts({account})").status_code == 204
    assert dv.get(f"posts({post})").status_code == 404, "an account's posts go with it"
