"""Business Central API v2.0 + custom API over real HTTP (raw httpx, no connector)."""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any

import httpx

from nav_crm_ops.sandbox import Sandbox

CORRELATION = re.compile(r"  CorrelationId:  [0-9a-f-]{36}\.$")


def error_of(response: httpx.Response, status: int, code: str) -> str:
    """Assert BC's error shape and return the message without the correlation suffix."""
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code, error
    assert CORRELATION.search(error["message"]), error["message"]
    return CORRELATION.sub("", error["message"])


def one(client: httpx.Client, entity: str, filter_text: str) -> dict[str, Any]:
    values = client.get(entity, params={"$filter": filter_text}).json()["value"]
    assert len(values) == 1, values
    return values[0]


def test_paging_follows_next_links_over_all_records(bc: httpx.Client) -> None:
    total = int(bc.get("contacts/$count").text)
    numbers: list[str] = []
    url: str | None = "contacts?$select=number"
    pages = 0
    while url:
        page = bc.get(url, headers={"Prefer": "odata.maxpagesize=7"}).json()
        assert len(page["value"]) <= 7
        numbers += [row["number"] for row in page["value"]]
        url = page.get("@odata.nextLink")
        pages += 1
    assert len(numbers) == total == len(set(numbers)) and total > 7
    assert pages == -(-total // 7)
    assert numbers == sorted(numbers)  # primary-key order, like BC


def test_top_skip_count_and_page_size_limit(bc: httpx.Client) -> None:
    everything = [r["number"] for r in bc.get("items?$select=number").json()["value"]]
    page = bc.get("items", params={"$top": "3", "$skip": "2", "$count": "true",
                                   "$select": "number"}).json()
    assert [r["number"] for r in page["value"]] == everything[2:5]
    assert page["@odata.count"] == len(everything)
    too_big = bc.get("items", headers={"Prefer": "odata.maxpagesize=20001"})
    assert too_big.status_code == 413


def test_or_across_fields_is_rejected_but_same_field_works(bc: httpx.Client) -> None:
    rejected = bc.get("customers", params={
        "$filter": "number eq '10000' or displayName eq 'Selangorian Ltd.'"})
    assert error_of(rejected, 400, "BadRequest") == (
        "The 'OR' operator is not supported on distinct fields on an OData filter.")
    same = bc.get("customers", params={"$filter": "number eq '10000' or number eq '20000'"})
    assert sorted(r["number"] for r in same.json()["value"]) == ["10000", "20000"]
    no_in = bc.get("customers", params={"$filter": "number in ('10000','20000')"})
    assert no_in.status_code == 400
    with_in = bc.get("customers", params={"$filter": "number in ('10000','20000')",
                                          "$schemaversion": "2.1"})
    assert len(with_in.json()["value"]) == 2


def test_filter_on_last_modified_and_select(bc: httpx.Client) -> None:
    customer = one(bc, "customers", "number eq '10000'")
    watermark = bc.get("customers", params={"$orderby": "lastModifiedDateTime desc",
                                            "$top": "1"}).json()["value"][0]
    changed = bc.patch(f"customers({customer['id']})", json={"phoneNumber": "+44 1"},
                       headers={"If-Match": customer["@odata.etag"]}).json()
    newer = bc.get("customers", params={
        "$filter": f"lastModifiedDateTime gt {watermark['lastModifiedDateTime']}",
        "$select": "number,phoneNumber"}).json()["value"]
    assert newer == [{"@odata.etag": changed["@odata.etag"], "id": customer["id"],
                      "number": "10000", "phoneNumber": "+44 1"}]
    unknown = bc.get("customers", params={"$select": "nope"})
    error_of(unknown, 400, "BadRequest_NotFound")


def test_create_sets_id_and_refuses_duplicate_numbers(bc: httpx.Client) -> None:
    client_id = "11111111-2222-3333-4444-555555555555"
    created = bc.post("customers", json={"id": client_id, "number": "C-NEW-1",
                                         "displayName": "New Customer Ltd.", "country": "GB"})
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["id"] != client_id and re.fullmatch(r"[0-9a-f-]{36}", body["id"])
    assert body["@odata.etag"].startswith('W/"')
    assert body["lastModifiedDateTime"].endswith("Z") and body["blocked"] == " "
    assert bc.get(f"customers({body['id']})").json()["displayName"] == "New Customer Ltd."
    duplicate = bc.post("customers", json={"number": "C-NEW-1", "displayName": "Again"})
    message = error_of(duplicate, 400, "Internal_EntityWithSameKeyExists")
    assert "No.='C-NEW-1'" in message
    numbered = bc.post("customers", json={"displayName": "Auto Numbered"}).json()
    assert numbered["number"]


def test_patch_and_delete_need_a_current_etag(bc: httpx.Client) -> None:
    item = one(bc, "items", "number eq '1900-S'")
    missing = bc.patch(f"items({item['id']})", json={"unitPrice": 200.0})
    assert error_of(missing, 400, "BadRequest_InvalidToken") == (
        "Could not validate the client concurrency token required by the service. Please "
        "provide a valid token in the client request.")
    updated = bc.patch(f"items({item['id']})", json={"unitPrice": 200.0},
                       headers={"If-Match": item["@odata.etag"]})
    assert updated.status_code == 200 and updated.json()["unitPrice"] == 200.0
    assert updated.json()["@odata.etag"] != item["@odata.etag"]
    stale = bc.patch(f"items({item['id']})", json={"unitPrice": 300.0},
                     headers={"If-Match": item["@odata.etag"]})
    assert error_of(stale, 409, "Request_EntityChanged") == (
        "Another user has already changed the record.")
    assert error_of(bc.delete(f"items({item['id']})"), 400, "BadRequest_InvalidToken")
    assert bc.delete(f"items({item['id']})", headers={"If-Match": "*"}).status_code == 204
    gone = bc.get(f"items({item['id']})")
    assert error_of(gone, 404, "Internal_RecordNotFound").startswith("The Item does not exist.")


def test_validation_errors_use_bc_codes_and_messages(bc: httpx.Client) -> None:
    long_name = "x" * 120
    too_long = bc.post("customers", json={"displayName": long_name})
    assert error_of(too_long, 400, "Application_StringExceededLength") == (
        "The length of the string is 120, but it must be less than or equal to 100 "
        f"characters. Value: {long_name}")
    bad_option = bc.post("items", json={"number": "X-1", "type": "Invalid Type"})
    assert error_of(bad_option, 400, "Application_EvaluateException") == (
        "'Invalid Type' is not an option. The existing options are: "
        "Inventory,Service,Non-Inventory")
    unknown = bc.post("customers", json={"displayName": "A", "colour": "red"})
    assert "'colour'" in error_of(unknown, 400, "BadRequest_NotFound")
    atlantis = bc.post("customers", json={"displayName": "Poseidon", "country": "Atlantis"})
    message = error_of(atlantis, 400, "Internal_InvalidTableRelation")
    assert "Country/Region Code" in message and "(Atlantis)" in message
    assert bc.get("customers", params={"$filter": "displayName eq 'Poseidon'"}
                  ).json()["value"] == []


def test_wrong_tenant_environment_and_company(fresh_sandbox: Sandbox, bc: httpx.Client) -> None:
    info = fresh_sandbox.info
    headers = {"Authorization": bc.headers["Authorization"]}
    wrong_env = httpx.get(info.bc_api_url.replace("/sandbox/", "/production/") + "companies",
                          headers=headers)
    assert wrong_env.status_code == 404
    wrong_tenant = httpx.get(info.bc_api_url.replace(info.tenant, "contoso") + "companies",
                             headers=headers)
    assert wrong_tenant.status_code == 404
    unknown = httpx.get(info.bc_api_url
                        + "companies(00000000-0000-0000-0000-000000000009)/customers",
                        headers=headers)
    error_of(unknown, 404, "Internal_CompanyNotFound")
    custom_only = bc.get(f"{info.bc_api_url}companies({info.company_id})/resources")
    assert custom_only.status_code == 404


def test_order_deep_insert_expand_and_ship_and_invoice(fresh_sandbox: Sandbox,
                                                       bc: httpx.Client) -> None:
    info = fresh_sandbox.info
    before = bc.get("customerFinancialDetails", params={
        "$filter": "number eq '20000'"}).json()["value"][0]
    order = bc.post("salesOrders", json={
        "customerNumber": "20000", "externalDocumentNumber": "PO-TEST-1",
        "salesOrderLines": [
            {"lineType": "Item", "lineObjectNumber": "1900-S", "quantity": 2},
            {"lineType": "Item", "lineObjectNumber": "1908-S", "quantity": 1,
             "unitPrice": 100.0}]})
    assert order.status_code == 201, order.text
    body = order.json()
    assert body["customerName"] == "Selangorian Ltd." and body["status"] == "Draft"
    lines = body["salesOrderLines"]
    assert [line["sequence"] for line in lines] == [10000, 20000]
    assert lines[0]["unitPrice"] == 192.8 and lines[0]["description"] == "PARIS Guest Chair, black"
    assert body["totalAmountExcludingTax"] == round(2 * 192.8 + 100.0, 2)
    expanded = bc.get(f"salesOrders({body['id']})", params={"$expand": "salesOrderLines"})
    assert [line["lineObjectNumber"] for line in expanded.json()["salesOrderLines"]] == [
        "1900-S", "1908-S"]
    narrow = bc.get(f"salesOrders({body['id']})", params={
        "$select": "number", "$expand": "salesOrderLines($select=lineObjectNumber,quantity)"})
    assert narrow.json()["salesOrderLines"][1] == {
        "@odata.etag": lines[1]["@odata.etag"], "id": lines[1]["id"],
        "lineObjectNumber": "1908-S", "quantity": 1}
    assert bc.get("salesOrders", params={"$expand": "customer"}).status_code == 400
    extra = bc.post(f"salesOrders({body['id']})/salesOrderLines",
                    json={"lineObjectNumber": "1928-S", "quantity": 1})
    assert extra.status_code == 201 and extra.json()["sequence"] == 30000
    total = bc.get(f"salesOrders({body['id']})").json()["totalAmountIncludingTax"]

    posted = bc.post(f"salesOrders({body['id']})/Microsoft.NAV.shipAndInvoice")
    assert posted.status_code == 204, posted.text
    error_of(bc.get(f"salesOrders({body['id']})"), 404, "Internal_RecordNotFound")
    invoice = bc.get("salesInvoices", params={
        "$filter": "externalDocumentNumber eq 'PO-TEST-1'",
        "$expand": "salesInvoiceLines"}).json()["value"][0]
    assert invoice["status"] == "Open" and invoice["totalAmountIncludingTax"] == total
    assert [line["invoicedQuantity"] for line in invoice["salesInvoiceLines"]] == [2, 1, 1]
    after = bc.get("customerFinancialDetails", params={
        "$filter": "number eq '20000'"}).json()["value"][0]
    assert after["balance"] == round(before["balance"] + total, 2)
    stats = bc.get(f"{info.bc_custom_api_url}companies({info.company_id})/customerStatistics",
                   params={"$filter": "customerNumber eq '20000'"}).json()["value"][0]
    assert stats["balance"] == after["balance"]


def test_json_batch_items_are_independent_without_isolation(bc: httpx.Client) -> None:
    company = _company(bc)
    response = bc.post(_batch_url(bc), json={"requests": [
        {"id": "1", "method": "POST", "url": f"companies({company})/items",
         "headers": {"Content-Type": "application/json"},
         "body": {"number": "B-1", "displayName": "Batch item"}},
        {"id": "2", "method": "POST", "url": f"companies({company})/items",
         "body": {"number": "B-2", "type": "Invalid Type"}},
        {"id": "3", "method": "GET",
         "url": f"companies({company})/items?$filter=number eq 'B-1'"}]})
    assert response.status_code == 200
    results = {r["id"]: r for r in response.json()["responses"]}
    assert results["1"]["status"] == 201 and results["1"]["body"]["number"] == "B-1"
    assert results["2"]["status"] == 400
    assert results["2"]["body"]["error"]["code"] == "Application_EvaluateException"
    assert results["3"]["status"] == 200 and len(results["3"]["body"]["value"]) == 1


def test_json_batch_with_snapshot_isolation_rolls_back(bc: httpx.Client) -> None:
    company = _company(bc)
    batch_url = _batch_url(bc)
    item = one(bc, "items", "number eq '1000'")
    response = bc.post(batch_url, headers={"Isolation": "snapshot"}, json={"requests": [
        {"id": "a", "method": "PATCH", "url": f"companies({company})/items({item['id']})",
         "headers": {"If-Match": "*"}, "body": {"displayName": "Renamed in batch"}},
        {"id": "b", "method": "POST", "url": f"companies({company})/items",
         "body": {"number": "B-3", "displayName": "y" * 101}}]})
    assert response.status_code == 200
    statuses = [r["status"] for r in response.json()["responses"]]
    assert statuses == [400, 400]
    assert bc.get(f"items({item['id']})").json()["displayName"] == "Bicycle"
    assert bc.get("items", params={"$filter": "number eq 'B-3'"}).json()["value"] == []
    too_many = bc.post(batch_url, json={"requests": [
        {"id": str(n), "method": "GET", "url": f"companies({company})/items"}
        for n in range(101)]})
    assert too_many.status_code == 400


def test_custom_api_serves_resources_prices_and_statistics(fresh_sandbox: Sandbox,
                                                          bc: httpx.Client) -> None:
    info = fresh_sandbox.info
    custom = f"{info.bc_custom_api_url}companies({info.company_id})/"
    resources = bc.get(custom + "resources").json()["value"]
    assert {"number", "name", "type", "unitPrice"} <= set(resources[0])
    prices = bc.get(custom + "salesPrices", params={
        "$filter": "salesType eq 'Customer Price Group' and salesCode eq 'WHOLESALE'"})
    assert prices.status_code == 200 and prices.json()["value"]
    groups = bc.get(custom + "customerPriceGroups").json()["value"]
    assert {g["code"] for g in groups} >= {"RETAIL", "WHOLESALE"}
    assert bc.get(custom + "customers").status_code == 404


def _company(client: httpx.Client) -> str:
    match = re.search(r"companies\(([0-9a-f-]{36})\)", str(client.base_url))
    assert match
    return match.group(1)


def _batch_url(client: httpx.Client) -> str:
    return str(client.base_url).replace(f"companies({_company(client)})/", "") + "$batch"


def test_draft_invoice_lines_totals_and_posting(bc: httpx.Client) -> None:
    invoice = bc.post("salesInvoices", json={"customerNumber": "10000"}).json()
    assert invoice["status"] == "Draft" and invoice["totalAmountExcludingTax"] == 0
    line = bc.post(f"salesInvoices({invoice['id']})/salesInvoiceLines",
                   json={"lineObjectNumber": "1920-S", "quantity": 2}).json()
    assert line["amountExcludingTax"] == round(2 * 649.4, 2)
    patched = bc.patch(f"salesInvoices({invoice['id']})/salesInvoiceLines({line['id']})",
                       json={"quantity": 3}, headers={"If-Match": line["@odata.etag"]})
    assert patched.status_code == 200 and patched.json()["amountExcludingTax"] == round(
        3 * 649.4, 2)
    swapped = bc.patch(f"salesInvoices({invoice['id']})/salesInvoiceLines({line['id']})",
                       json={"lineObjectNumber": "1900-S"},
                       headers={"If-Match": patched.json()["@odata.etag"]}).json()
    assert (swapped["description"], swapped["unitPrice"]) == ("PARIS Guest Chair, black", 192.8)
    bc.patch(f"salesInvoices({invoice['id']})/salesInvoiceLines({line['id']})",
             json={"lineObjectNumber": "1920-S"}, headers={"If-Match": "*"})
    orphan = bc.post("salesInvoiceLines", json={"lineObjectNumber": "1900-S", "quantity": 1})
    error_of(orphan, 400, "BadRequest_RequiredParamNotProvided")
    header = bc.get(f"salesInvoices({invoice['id']})").json()
    assert header["totalAmountExcludingTax"] == round(3 * 649.4, 2)
    assert header["totalAmountIncludingTax"] > header["totalAmountExcludingTax"]  # GB VAT
    assert bc.post(f"salesInvoices({invoice['id']})/Microsoft.NAV.post").status_code == 204
    posted = bc.get(f"salesInvoices({invoice['id']})").json()
    assert posted["status"] == "Open"
    assert posted["remainingAmount"] == header["totalAmountIncludingTax"]
    locked = bc.patch(f"salesInvoices({invoice['id']})", json={"externalDocumentNumber": "X"},
                      headers={"If-Match": "*"})
    error_of(locked, 400, "Application_DialogException")
    again = bc.post(f"salesInvoices({invoice['id']})/Microsoft.NAV.post")
    error_of(again, 400, "Application_DialogException")


def test_blocked_items_and_customers_are_refused_on_documents(bc: httpx.Client) -> None:
    blocked_customer = bc.post("salesOrders", json={"customerNumber": "74000"})
    assert "blocked" in error_of(blocked_customer, 400, "Application_DialogException")
    order = bc.post("salesOrders", json={"customerNumber": "10000"}).json()
    blocked_item = bc.post(f"salesOrders({order['id']})/salesOrderLines",
                           json={"lineObjectNumber": "1936-S", "quantity": 1})
    assert "1936-S" in error_of(blocked_item, 400, "Application_DialogException")
    nothing = bc.post(f"salesOrders({order['id']})/Microsoft.NAV.shipAndInvoice")
    assert error_of(nothing, 400, "Application_DialogException") == "There is nothing to post."


def test_computed_financial_details_match_open_invoices(bc: httpx.Client) -> None:
    customer = one(bc, "customers", "number eq '10000'")
    details = bc.get(f"customerFinancialDetails({customer['id']})")
    assert details.status_code == 200
    invoices = bc.get("salesInvoices", params={
        "$filter": f"customerId eq {customer['id']} and status eq 'Open'"}).json()["value"]
    expected = round(sum(i["remainingAmount"] for i in invoices), 2)
    assert details.json()["number"] == "10000" and details.json()["balance"] == expected > 0
    unsupported = bc.get("customerFinancialDetails", params={"$filter": "balance gt 0"})
    error_of(unsupported, 400, "BadRequest")
    assert bc.post("customerFinancialDetails", json={}).status_code == 405


# ----------------------------------------------------------------------------- contactsInformation

INFORMATION_FIELDS = {"@odata.etag", "contactId", "contactNumber", "contactName", "contactType",
                      "relatedId", "relatedType"}


def _token_client(sandbox: Sandbox) -> httpx.Client:
    info = sandbox.info
    token = httpx.post(info.token_url, data={
        "grant_type": "client_credentials", "client_id": info.client_id,
        "client_secret": info.client_secret.reveal(), "scope": info.bc_scope,
    }).json()["access_token"]
    return httpx.Client(base_url=f"{info.bc_api_url}companies({info.company_id})/",
                        headers={"Authorization": f"Bearer {token}"}, timeout=30)


def _all(client: httpx.Client, entity: str, **params: str) -> list[dict[str, Any]]:
    response = client.get(entity, params=params)
    assert response.status_code == 200, response.text
    assert "@odata.nextLink" not in response.json()
    return list(response.json()["value"])


def _assert_relates_company_contacts(client: httpx.Client) -> list[dict[str, Any]]:
    """Every customer has one relation to its company contact CT<number>, and nothing else."""
    customers = {c["id"]: c for c in _all(client, "customers", **{
        "$select": "number,displayName"})}
    contacts = {c["number"]: c for c in _all(client, "contacts", **{
        "$select": "number,type,displayName"})}
    relations = _all(client, "contactsInformation")
    assert relations and all(set(r) == INFORMATION_FIELDS for r in relations)
    assert sorted(r["relatedId"] for r in relations) == sorted(customers)
    for relation in relations:
        customer = customers[relation["relatedId"]]
        contact = contacts[relation["contactNumber"]]
        assert relation["contactNumber"] == f"CT{customer['number']}"
        assert relation["contactId"] == contact["id"]
        assert relation["contactName"] == contact["displayName"] == customer["displayName"]
        assert (relation["contactType"], relation["relatedType"]) == ("Company", "Customer")
    return relations


def test_contacts_information_relates_each_company_contact_to_its_customer(
        bc: httpx.Client) -> None:
    relations = _assert_relates_company_contacts(bc)
    assert [r["contactNumber"] for r in relations] == sorted(r["contactNumber"]
                                                            for r in relations)
    cannon = one(bc, "customers", "number eq '10000'")
    # The CONTACT mapping's question: which customer is a person's company contact related to?
    person = one(bc, "contacts", "number eq 'CT200001'")
    assert person["companyNumber"] == "CT10000"
    related = one(bc, "contactsInformation", f"contactNumber eq '{person['companyNumber']}'")
    assert related["relatedId"] == cannon["id"]
    assert related["contactId"] == one(bc, "contacts", "number eq 'CT10000'")["id"]
    persons = bc.get("contactsInformation", params={"$filter": "contactType eq 'Person'"})
    assert persons.json()["value"] == []


def test_contacts_information_filters_select_and_or_rule(bc: httpx.Client) -> None:
    cannon = one(bc, "contactsInformation", "contactNumber eq 'CT10000'")
    assert one(bc, "contactsInformation", f"contactId eq {cannon['contactId']}") == cannon
    assert one(bc, "contactsInformation", f"relatedId eq {cannon['relatedId']}") == cannon
    everything = _all(bc, "contactsInformation")
    customers = _all(bc, "contactsInformation", **{"$filter": "relatedType eq 'Customer'"})
    assert customers == everything
    assert _all(bc, "contactsInformation", **{"$filter": "relatedType eq 'Vendor'"}) == []
    both = _all(bc, "contactsInformation", **{
        "$filter": "contactNumber eq 'CT10000' or contactNumber eq 'CT20000'"})
    assert [r["contactNumber"] for r in both] == ["CT10000", "CT20000"]
    across = bc.get("contactsInformation", params={
        "$filter": "contactNumber eq 'CT10000' or relatedType eq 'Customer'"})
    assert error_of(across, 400, "BadRequest") == (
        "The 'OR' operator is not supported on distinct fields on an OData filter.")
    narrow = _all(bc, "contactsInformation", **{
        "$filter": "contactNumber eq 'CT10000'", "$select": "contactNumber,relatedId"})
    assert narrow == [{"@odata.etag": cannon["@odata.etag"], "contactNumber": "CT10000",
                       "relatedId": cannon["relatedId"]}]
    for bad in ({"$select": "id"}, {"$select": "number"}, {"$filter": "number eq 'CT10000'"}):
        message = error_of(bc.get("contactsInformation", params=bad), 400,
                           "BadRequest_NotFound" if "$select" in bad else "BadRequest")
        assert "Microsoft.NAV.contactInformation" in message


def test_contacts_information_pages_by_next_link_and_counts(bc: httpx.Client) -> None:
    everything = _all(bc, "contactsInformation")
    total = int(bc.get("contactsInformation/$count").text)
    assert total == len(everything) > 4
    rows: list[dict[str, Any]] = []
    url: str | None = "contactsInformation"
    pages = 0
    while url:
        page = bc.get(url, headers={"Prefer": "odata.maxpagesize=4"}).json()
        assert len(page["value"]) <= 4
        rows += page["value"]
        url = page.get("@odata.nextLink")
        pages += 1
    assert rows == everything and pages == -(-total // 4)
    top = bc.get("contactsInformation", params={"$top": "3", "$skip": "1", "$count": "true"})
    assert top.json()["value"] == everything[1:4] and top.json()["@odata.count"] == total
    newest_first = _all(bc, "contactsInformation", **{"$orderby": "contactNumber desc"})
    assert newest_first == everything[::-1]


def test_contacts_information_is_read_only(bc: httpx.Client) -> None:
    cannon = one(bc, "contactsInformation", "contactNumber eq 'CT10000'")
    attempts = [
        bc.post("contactsInformation", json={"contactNumber": "CT20000",
                                             "relatedId": cannon["relatedId"]}),
        bc.patch("contactsInformation", json={"contactName": "X"}, headers={"If-Match": "*"}),
        bc.patch(f"contactsInformation({cannon['contactId']})", json={"contactName": "X"},
                 headers={"If-Match": "*"}),
        bc.delete(f"contactsInformation({cannon['contactId']})", headers={"If-Match": "*"}),
    ]
    for attempt, method in zip(attempts, ("POST", "PATCH", "PATCH", "DELETE"), strict=True):
        assert error_of(attempt, 405, "BadRequest_MethodNotAllowed") == (
            f"'{method}' requests for 'contactsInformation' are not allowed: the entity is "
            "read-only.")
    assert one(bc, "contactsInformation", "contactNumber eq 'CT10000'") == cannon
    by_key = bc.get(f"contactsInformation({cannon['contactId']})")
    assert "$filter=contactId eq <id>" in error_of(by_key, 400, "BadRequest")


def test_created_customer_gets_a_company_contact_and_relation(bc: httpx.Client) -> None:
    created = bc.post("customers", json={
        "number": "C-REL-1", "displayName": "Relation Test Ltd.", "addressLine1": "1 Way",
        "city": "Leeds", "country": "GB", "phoneNumber": "+44 113 496 0000",
        "email": "info@relation.example"})
    assert created.status_code == 201, created.text
    customer = created.json()
    contact = one(bc, "contacts", "number eq 'CTC-REL-1'")
    assert (contact["type"], contact["displayName"], contact["city"], contact["email"]) == (
        "Company", "Relation Test Ltd.", "Leeds", "info@relation.example")
    relation = one(bc, "contactsInformation", f"relatedId eq {customer['id']}")
    assert (relation["contactId"], relation["contactNumber"], relation["contactName"]) == (
        contact["id"], "CTC-REL-1", "Relation Test Ltd.")
    scoped = _all(bc, f"customers({customer['id']})/contactsInformation")
    assert scoped == [relation]
    # A person contact can now name the company contact, as the CONTACT mapping writes it.
    person = bc.post("contacts", json={"type": "Person", "displayName": "Pat Person",
                                       "companyNumber": "CTC-REL-1"})
    assert person.status_code == 201 and person.json()["companyName"] == "Relation Test Ltd."

    deleted = bc.delete(f"customers({customer['id']})", headers={"If-Match": "*"})
    assert deleted.status_code == 204
    assert _all(bc, "contactsInformation", **{
        "$filter": f"contactId eq {contact['id']}"}) == []
    assert one(bc, "contacts", "number eq 'CTC-REL-1'")["id"] == contact["id"]
    gone = bc.get(f"customers({customer['id']})/contactsInformation")
    error_of(gone, 404, "Internal_RecordNotFound")


def test_company_contact_number_falls_back_to_the_series(bc: httpx.Client) -> None:
    taken = bc.post("contacts", json={"number": "CTX-1", "displayName": "Someone else"})
    assert taken.status_code == 201
    numbers_before = {c["number"] for c in _all(bc, "contacts", **{"$select": "number"})}
    clash = bc.post("customers", json={"number": "X-1", "displayName": "Clash Ltd."}).json()
    long_number = "L" * 20
    long = bc.post("customers", json={"number": long_number, "displayName": "Long Ltd."}).json()
    for customer in (clash, long):
        relation = one(bc, "contactsInformation", f"relatedId eq {customer['id']}")
        number = relation["contactNumber"]
        assert number.startswith("CT") and len(number) <= 20
        assert number not in numbers_before
        assert one(bc, "contacts", f"number eq '{number}'")["displayName"] == \
            customer["displayName"]
    assert one(bc, "contacts", "number eq 'CTX-1'")["displayName"] == "Someone else"


def test_contact_changes_reach_their_relations(bc: httpx.Client) -> None:
    relation = one(bc, "contactsInformation", "contactNumber eq 'CT20000'")
    contact = one(bc, "contacts", "number eq 'CT20000'")
    renamed = bc.patch(f"contacts({contact['id']})", json={"displayName": "Selangorian Group"},
                       headers={"If-Match": contact["@odata.etag"]})
    assert renamed.status_code == 200
    after = one(bc, "contactsInformation", "contactNumber eq 'CT20000'")
    assert after["contactName"] == "Selangorian Group"
    assert after["@odata.etag"] != relation["@odata.etag"]
    unchanged = one(bc, "contactsInformation", "contactNumber eq 'CT10000'")
    phone_only = one(bc, "contacts", "number eq 'CT10000'")
    bc.patch(f"contacts({phone_only['id']})", json={"phoneNumber": "+44 2"},
             headers={"If-Match": "*"})
    assert one(bc, "contactsInformation", "contactNumber eq 'CT10000'") == unchanged
    assert bc.delete(f"contacts({contact['id']})", headers={"If-Match": "*"}).status_code == 204
    assert _all(bc, "contactsInformation", **{
        "$filter": "contactNumber eq 'CT20000'"}) == []


def test_customer_created_in_a_failed_batch_leaves_no_contact(bc: httpx.Client) -> None:
    company = _company(bc)
    count = int(bc.get("contacts/$count").text)
    response = bc.post(_batch_url(bc), headers={"Isolation": "snapshot"}, json={"requests": [
        {"id": "a", "method": "POST", "url": f"companies({company})/customers",
         "body": {"number": "B-REL", "displayName": "Batch Relation"}},
        {"id": "b", "method": "POST", "url": f"companies({company})/items",
         "body": {"number": "B-REL", "type": "Invalid Type"}}]})
    assert [r["status"] for r in response.json()["responses"]] == [400, 400]
    assert int(bc.get("contacts/$count").text) == count
    assert _all(bc, "contactsInformation", **{
        "$filter": "contactNumber eq 'CTB-REL'"}) == []


def test_contacts_information_only_under_customers(bc: httpx.Client) -> None:
    item = one(bc, "items", "number eq '1000'")
    nested = bc.get(f"items({item['id']})/contactsInformation")
    error_of(nested, 404, "BadRequest_NotFound")
    custom = bc.get(str(bc.base_url).replace("/api/v2.0/", "/api/navcrm/sync/v1.0/")
                    + "contactsInformation")
    error_of(custom, 404, "BadRequest_NotFound")


def test_scale_seed_relates_every_generated_customer(tmp_path: Path) -> None:
    with Sandbox(data_dir=tmp_path, seed="scale:12", port=0) as scaled, \
            _token_client(scaled) as client:
        relations = _assert_relates_company_contacts(client)
        assert len(relations) == 12


def test_customer_changes_reach_its_company_contact(bc: httpx.Client) -> None:
    customer = one(bc, "customers", "number eq '30000'")
    relation = one(bc, "contactsInformation", f"relatedId eq {customer['id']}")
    patched = bc.patch(f"customers({customer['id']})", json={
        "displayName": "Haddock Insurance Group", "city": "Salford"},
        headers={"If-Match": customer["@odata.etag"]})
    assert patched.status_code == 200, patched.text
    contact = one(bc, "contacts", f"number eq '{relation['contactNumber']}'")
    assert (contact["displayName"], contact["searchName"], contact["city"]) == (
        "Haddock Insurance Group", "HADDOCK INSURANCE GROUP", "Salford")
    after = one(bc, "contactsInformation", f"relatedId eq {customer['id']}")
    assert after["contactName"] == "Haddock Insurance Group"
    credit_only = bc.patch(f"customers({customer['id']})", json={"creditLimit": 5.0},
                           headers={"If-Match": "*"})
    assert credit_only.status_code == 200
    assert one(bc, "contacts", f"number eq '{relation['contactNumber']}'") == contact


# ------------------------------------------------------------------ price lists (issue 5)
def _custom(sandbox: Sandbox) -> str:
    return f"{sandbox.info.bc_custom_api_url}companies({sandbox.info.company_id})/"


def _custom_all(client: httpx.Client, url: str, **params: str) -> list[dict[str, Any]]:
    response = client.get(url, params=params)
    assert response.status_code == 200, response.text
    return list(response.json()["value"])


def test_customer_price_lists_are_one_per_group_and_currency(fresh_sandbox: Sandbox,
                                                             bc: httpx.Client) -> None:
    custom = _custom(fresh_sandbox)
    groups = {g["code"]: g for g in _custom_all(bc, custom + "customerPriceGroups")}
    prices = _custom_all(bc, custom + "salesPrices")
    assert {p["salesType"] for p in prices} >= {"Customer", "All Customers",
                                                 "Customer Price Group"}
    assert all(p["id"] and p["lastModifiedDateTime"] for p in prices)
    group_prices = [p for p in prices if p["salesType"] == "Customer Price Group"]
    expected: dict[str, list[dict[str, Any]]] = {}
    for price in group_prices:
        code = price["salesCode"] + (f"-{price['currencyCode']}" if price["currencyCode"]
                                     else "")
        expected.setdefault(code, []).append(price)
        assert price["priceListCode"] == code
    for code in groups:
        if not any(p["salesCode"] == code for p in group_prices):
            expected[code] = []
    assert all(p["priceListCode"] == "" for p in prices if p not in group_prices)
    lists = _custom_all(bc, custom + "customerPriceLists")
    assert [row["code"] for row in lists] == sorted(expected)
    assert {"WHOLESALE", "WHOLESALE-EUR"} <= set(expected)
    for row in lists:
        members = expected[row["code"]]
        group = groups[row["priceGroupCode"]]
        foreign = {m["currencyCode"] for m in members} - {""}
        currency = foreign.pop() if foreign else "GBP"
        assert row["currencyCode"] == currency, "LCY lists show the LCY code, like the API"
        assert row["displayName"] == f"{group['description']} ({currency})"
        assert row["priceCount"] == len(members)
        assert row["lastModifiedDateTime"] == max(
            [group["lastModifiedDateTime"], *(m["lastModifiedDateTime"] for m in members)])
        assert set(row) == {"@odata.etag", "id", "code", "priceGroupCode", "currencyCode",
                            "displayName", "priceCount", "lastModifiedDateTime"}
    again = _custom_all(bc, custom + "customerPriceLists")
    assert [(r["id"], r["@odata.etag"]) for r in again] == [
        (r["id"], r["@odata.etag"]) for r in lists]
    assert len({r["id"] for r in lists}) == len(lists)
    one = bc.get(custom + f"customerPriceLists({lists[0]['id']})")
    assert one.status_code == 200 and one.json()["code"] == lists[0]["code"]
    error_of(bc.get(custom + f"customerPriceLists({uuid.uuid4()})"), 404,
             "Internal_RecordNotFound")
    error_of(bc.post(custom + "customerPriceLists", json={"code": "X"}), 405,
             "BadRequest_MethodNotAllowed")
    assert bc.get("customerPriceLists").status_code == 404


def test_customer_price_lists_filter_select_and_page(fresh_sandbox: Sandbox,
                                                     bc: httpx.Client) -> None:
    url = _custom(fresh_sandbox) + "customerPriceLists"
    lists = _custom_all(bc, url)
    assert len(lists) >= 3
    by_code = _custom_all(bc, url, **{"$filter": "code eq 'WHOLESALE-EUR'"})
    assert [(r["priceGroupCode"], r["currencyCode"]) for r in by_code] == [("WHOLESALE", "EUR")]
    codes = [lists[0]["code"], lists[2]["code"]]
    both = _custom_all(bc, url, **{"$filter": f"code in ('{codes[0]}','{codes[1]}')",
                                   "$schemaversion": "2.1"})
    assert [r["code"] for r in both] == codes
    by_id = _custom_all(bc, url, **{"$filter": f"id eq {lists[1]['id']}"})
    assert [r["code"] for r in by_id] == [lists[1]["code"]]
    ordered = _custom_all(bc, url, **{"$orderby": "priceCount desc", "$skip": "1"})
    assert [r["priceCount"] for r in ordered] == sorted(
        (r["priceCount"] for r in lists), reverse=True)[1:]
    newest = max(r["lastModifiedDateTime"] for r in lists)
    recent = _custom_all(bc, url, **{"$filter": f"lastModifiedDateTime ge {newest}"})
    assert recent and all(r["lastModifiedDateTime"] == newest for r in recent)
    narrow = _custom_all(bc, url, **{"$select": "code,priceCount", "$top": "2"})
    assert [set(r) for r in narrow] == [{"@odata.etag", "id", "code", "priceCount"}] * 2
    error_of(bc.get(url, params={"$select": "nope"}), 400, "BadRequest_NotFound")
    error_of(bc.get(url, params={"$filter": "nope eq 1"}), 400, "BadRequest")
    seen: list[str] = []
    next_url: str | None = url
    while next_url:
        page = bc.get(next_url, headers={"Prefer": "odata.maxpagesize=1"}).json()
        assert len(page["value"]) <= 1
        seen += [r["code"] for r in page["value"]]
        next_url = page.get("@odata.nextLink")
    assert seen == [r["code"] for r in lists]
    counted = bc.get(url, params={"$count": "true", "$top": "1"}).json()
    assert counted["@odata.count"] == len(lists) and len(counted["value"]) == 1
    assert bc.get(url + "/$count").text == str(len(lists))


def test_price_writes_move_their_price_list(fresh_sandbox: Sandbox, bc: httpx.Client) -> None:
    """Prices BC maintains (put in through the sandbox's admin helper: the API page is
    read-only) move their price list as the extension computes it."""
    custom = _custom(fresh_sandbox)
    group = bc.post(custom + "customerPriceGroups",
                    json={"code": "NEWGRP", "description": "New group"})
    assert group.status_code == 201, group.text
    lists = _custom_all(bc, custom + "customerPriceLists", **{"$filter":
                                                             "priceGroupCode eq 'NEWGRP'"})
    assert [(r["code"], r["currencyCode"], r["displayName"], r["priceCount"]) for r in lists] == [
        ("NEWGRP", "GBP", "New group (GBP)", 0)]
    assert lists[0]["lastModifiedDateTime"] == group.json()["lastModifiedDateTime"]
    price = fresh_sandbox.bc_admin("POST", custom + "salesPrices", {
        "itemNumber": "1896-S", "salesType": "Customer Price Group", "salesCode": "NEWGRP",
        "currencyCode": "EUR", "unitOfMeasureCode": "PCS", "unitPrice": 900.0,
        "startingDate": "2026-01-01", "priceListCode": "IGNORED"})
    assert price.status_code == 201, price.text
    created = price.json()
    assert created["priceListCode"] == "NEWGRP-EUR" and created["id"]
    lists = _custom_all(bc, custom + "customerPriceLists", **{"$filter":
                                                             "priceGroupCode eq 'NEWGRP'"})
    assert [(r["code"], r["priceCount"]) for r in lists] == [("NEWGRP-EUR", 1)]
    assert lists[0]["lastModifiedDateTime"] == created["lastModifiedDateTime"]
    patched = fresh_sandbox.bc_admin("PATCH", custom + f"salesPrices({created['id']})",
                                     {"unitPrice": 950.0},
                                     headers={"If-Match": created["@odata.etag"]})
    assert patched.status_code == 200, patched.text
    assert patched.json()["lastModifiedDateTime"] > created["lastModifiedDateTime"]
    after = _custom_all(bc, custom + "customerPriceLists", **{"$filter":
                                                             "code eq 'NEWGRP-EUR'"})
    assert after[0]["lastModifiedDateTime"] == patched.json()["lastModifiedDateTime"]
    assert after[0]["@odata.etag"] != lists[0]["@odata.etag"]
    moved = fresh_sandbox.bc_admin("PATCH", custom + f"salesPrices({created['id']})",
                                   {"currencyCode": ""},
                                   headers={"If-Match": patched.json()["@odata.etag"]}).json()
    assert moved["priceListCode"] == "NEWGRP"
    by_code = _custom_all(bc, custom + "salesPrices", **{"$filter": "priceListCode eq 'NEWGRP'"})
    assert [p["id"] for p in by_code] == [created["id"]]
    lcy = error_of(fresh_sandbox.bc_admin("POST", custom + "salesPrices", {
        "itemNumber": "1896-S", "salesType": "Customer Price Group", "salesCode": "NEWGRP",
        "currencyCode": "GBP", "unitPrice": 1.0}), 400, "Internal_InvalidTableRelation")
    assert "Currency Code" in lcy and "(GBP)" in lcy
    no_group = error_of(fresh_sandbox.bc_admin("POST", custom + "salesPrices", {
        "itemNumber": "1896-S", "salesType": "Customer Price Group", "salesCode": "NOPE",
        "unitPrice": 1.0}), 400, "Internal_InvalidTableRelation")
    assert "Customer Price Group" in no_group
    error_of(fresh_sandbox.bc_admin("POST", custom + "salesPrices", {
        "itemNumber": "NO-SUCH-ITEM", "salesType": "All Customers", "unitPrice": 1.0}), 400,
        "Internal_InvalidTableRelation")


def test_sales_prices_are_read_only_for_clients(fresh_sandbox: Sandbox,
                                               bc: httpx.Client) -> None:
    """The extension's salesPrices page has Editable = false: BC refuses every write."""
    custom = _custom(fresh_sandbox)
    price = _custom_all(bc, custom + "salesPrices")[0]
    attempts = [bc.post(custom + "salesPrices", json={"itemNumber": "1896-S", "unitPrice": 1.0}),
                bc.patch(custom + f"salesPrices({price['id']})", json={"unitPrice": 1.0},
                         headers={"If-Match": "*"}),
                bc.delete(custom + f"salesPrices({price['id']})", headers={"If-Match": "*"})]
    for method, reply in zip(("POST", "PATCH", "DELETE"), attempts, strict=True):
        message = error_of(reply, 405, "BadRequest_MethodNotAllowed")
        assert message.startswith(f"'{method}' requests for 'salesPrices' of EdmType 'Entity' "
                                  "are not allowed")
    assert _custom_all(bc, custom + "salesPrices")[0] == price


def test_every_seeded_price_names_an_existing_item_and_unit(fresh_sandbox: Sandbox,
                                                            bc: httpx.Client) -> None:
    prices = _custom_all(bc, _custom(fresh_sandbox) + "salesPrices")
    items = {i["number"]: i for i in _all(bc, "items")}
    units = {u["code"] for u in _all(bc, "unitsOfMeasure")}
    for price in prices:
        assert price["itemNumber"] in items
        assert (price["unitOfMeasureCode"] or items[price["itemNumber"]][
            "baseUnitOfMeasureCode"]) in units
    dated = [p for p in prices if p["salesType"] == "Customer Price Group"
             and (p["startingDate"] != "0001-01-01" or p["endingDate"] != "0001-01-01")]
    assert dated


# ------------------------------------------------------------------ sales orders (issue 5)
def test_sales_order_from_crm_round_trips_and_posts(bc: httpx.Client) -> None:
    order = bc.post("salesOrders", json={
        "customerNumber": "10000", "yourReference": "ORD-01001-ABC",
        "externalDocumentNumber": "Cannon boardroom refit",
        "salesOrderLines": [
            {"lineType": "Item", "lineObjectNumber": "1896-S", "quantity": 2,
             "unitPrice": 990.0, "unitOfMeasureCode": "PCS", "description": "ATHENS Desk (CRM)"},
            {"lineType": "Item", "lineObjectNumber": "1900-S", "quantity": 12,
             "unitPrice": 189.0, "unitOfMeasureCode": "PCS", "description": "Chair"}]})
    assert order.status_code == 201, order.text
    body = order.json()
    assert (body["yourReference"], body["externalDocumentNumber"]) == (
        "ORD-01001-ABC", "Cannon boardroom refit")
    lines = body["salesOrderLines"]
    assert [(line["lineObjectNumber"], line["quantity"], line["unitPrice"],
             line["unitOfMeasureCode"], line["description"]) for line in lines] == [
        ("1896-S", 2, 990.0, "PCS", "ATHENS Desk (CRM)"), ("1900-S", 12, 189.0, "PCS", "Chair")]
    read = bc.get(f"salesOrders({body['id']})").json()
    assert (read["yourReference"], read["externalDocumentNumber"]) == (
        "ORD-01001-ABC", "Cannon boardroom refit")
    posted = bc.post(f"salesOrders({body['id']})/Microsoft.NAV.shipAndInvoice")
    assert posted.status_code == 204, posted.text
    error_of(bc.get(f"salesOrders({body['id']})"), 404, "Internal_RecordNotFound")
    invoices = bc.get("salesInvoices", params={"$filter": f"orderId eq {body['id']}",
                                               "$expand": "salesInvoiceLines"}).json()["value"]
    assert len(invoices) == 1
    invoice = invoices[0]
    assert (invoice["orderNumber"], invoice["status"]) == (body["number"], "Open")
    assert invoice["yourReference"] == "ORD-01001-ABC"
    assert [(line["lineObjectNumber"], line["quantity"], line["unitPrice"])
            for line in invoice["salesInvoiceLines"]] == [("1896-S", 2, 990.0),
                                                          ("1900-S", 12, 189.0)]
    assert invoice["totalAmountExcludingTax"] == round(2 * 990.0 + 12 * 189.0, 2)
    left = bc.get("salesOrderLines", params={"$filter": f"documentId eq {body['id']}"})
    assert left.json()["value"] == []


def test_deleting_a_sales_order_takes_its_lines(bc: httpx.Client) -> None:
    order = bc.post("salesOrders", json={"customerNumber": "20000", "salesOrderLines": [
        {"lineType": "Item", "lineObjectNumber": "1920-S", "quantity": 1}]}).json()
    error_of(bc.delete(f"salesOrders({order['id']})"), 400, "BadRequest_InvalidToken")
    deleted = bc.delete(f"salesOrders({order['id']})",
                        headers={"If-Match": order["@odata.etag"]})
    assert deleted.status_code == 204, deleted.text
    error_of(bc.get(f"salesOrders({order['id']})"), 404, "Internal_RecordNotFound")
    lines = bc.get("salesOrderLines", params={"$filter": f"documentId eq {order['id']}"})
    assert lines.status_code == 200 and lines.json()["value"] == []
