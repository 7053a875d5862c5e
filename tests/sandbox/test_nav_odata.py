"""NAV 2018 OData v4 page web services (``/nav/ODataV4/``) over real loopback HTTP.

The behaviours follow Microsoft's NAV 2018 documentation: "OData Web Services", "Walkthrough:
Creating and Interacting with a Page Web Service (OData)" (page 21 published as ``Customer``,
``Company('CRONUS International Ltd.')`` paths), "Using Filter Expressions in OData URIs"
(``or`` across fields is supported), "How to: Publish a Web Service" and "Web Service Access
Key" (HTTP Basic with the user's access key) — learn.microsoft.com/previous-versions/
dynamicsnav-2018-developer/. The pages are a view over the Business Central rows, so every
write is checked from the other API too.
"""

from __future__ import annotations

import re
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from nav_crm_ops.sandbox import Sandbox
from nav_crm_ops.sandbox.nav import PAGES, nav_credentials

COMPANY = "Company('CRONUS International Ltd.')"
EDM = "{http://docs.oasis-open.org/odata/ns/edm}"


@pytest.fixture
def nav(fresh_sandbox: Sandbox) -> Iterator[httpx.Client]:
    """A client on the NAV OData v4 root with the NAV user's Basic credentials."""
    credentials = nav_credentials(fresh_sandbox.info)
    with httpx.Client(base_url=fresh_sandbox.info.nav_url, timeout=30,
                      headers={"Authorization": credentials.basic_header()}) as client:
        yield client


def nav_error(response: httpx.Response, status: int) -> dict[str, Any]:
    """NAV's error body: ``{"error":{"code","message"}}``, no BC correlation id."""
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"code", "message"}
    assert "CorrelationId" not in error["message"]
    return dict(error)


def bc_customer(bc: httpx.Client, number: str) -> list[dict[str, Any]]:
    return list(bc.get("customers", params={"$filter": f"number eq '{number}'"}).json()["value"])


def test_companies_and_company_paths(nav: httpx.Client) -> None:
    listed = nav.get("Company").json()
    assert [c["Name"] for c in listed["value"]] == ["CRONUS International Ltd."]
    assert listed["@odata.context"].endswith("/nav/ODataV4/$metadata#Company")
    one = nav.get(COMPANY).json()
    assert one["Name"] == "CRONUS International Ltd."
    # The company may also be named by the ``company`` query option.
    by_option = nav.get("Customer('10000')", params={"company": "CRONUS International Ltd."})
    assert by_option.status_code == 200 and by_option.json()["No"] == "10000"
    nav_error(nav.get("Company('Nobody Ltd.')/Customer"), 400)


def test_metadata_describes_the_published_pages(nav: httpx.Client) -> None:
    response = nav.get("$metadata")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/xml")
    schema = ET.fromstring(response.content).find(f".//{EDM}Schema")
    assert schema is not None and schema.get("Namespace") == "NAV"
    types = {t.get("Name"): t for t in schema.findall(f"{EDM}EntityType")}
    sets = {s.get("Name") for s in schema.iter(f"{EDM}EntitySet")}
    assert sets == {"Company", *(page.service for page in PAGES)}

    def keys(name: str) -> list[str | None]:
        return [ref.get("Name") for ref in types[name].iter(f"{EDM}PropertyRef")]

    assert keys("Customer") == ["No"]
    assert keys("SalesOrderSalesLines") == ["Document_Type", "Document_No", "Line_No"]
    customer = {p.get("Name"): p.get("Type") for p in types["Customer"].iter(f"{EDM}Property")}
    assert customer["Last_Date_Modified"] == "Edm.Date"
    assert customer["Phone_No"] == "Edm.String" and customer["Balance_LCY"] == "Edm.Decimal"
    assert customer["Blocked"] == "NAV.Customer_Blocked"


def test_read_a_page_with_nav_field_names(nav: httpx.Client, bc: httpx.Client) -> None:
    response = nav.get(f"{COMPANY}/Customer('10000')")
    assert response.status_code == 200
    record = response.json()
    assert record["@odata.context"].endswith(f"$metadata#{COMPANY}/Customer/$entity")
    assert response.headers["etag"] == record["@odata.etag"]
    assert record["@odata.etag"].startswith('W/"')
    same = bc_customer(bc, "10000")[0]
    assert (record["No"], record["Name"], record["Phone_No"], record["E_Mail"],
            record["Salesperson_Code"]) == (same["number"], same["displayName"],
                                            same["phoneNumber"], same["email"],
                                            same["salespersonCode"])
    assert record["Last_Date_Modified"] == same["lastModifiedDateTime"][:10]
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", record["Last_Date_Modified"])
    assert record["Blocked"] == "_x0020_"  # the blank option's enum member name
    listed = nav.get(f"{COMPANY}/Customer", params={"$select": "No,Name", "$top": "3"}).json()
    assert len(listed["value"]) == 3 and "@odata.nextLink" not in listed
    assert set(listed["value"][0]) == {"@odata.etag", "No", "Name"}
    numbers = [row["No"] for row in nav.get(f"{COMPANY}/Customer").json()["value"]]
    assert numbers == sorted(numbers)  # primary-key order
    nav_error(nav.get(f"{COMPANY}/Customer", params={"$select": "displayName"}), 400)


def test_keys_single_and_several(nav: httpx.Client) -> None:
    line = nav.get(f"{COMPANY}/SalesOrderSalesLines", params={"$top": "1"}).json()["value"][0]
    url = (f"{COMPANY}/SalesOrderSalesLines(Document_Type='Order',"
           f"Document_No='{line['Document_No']}',Line_No={line['Line_No']})")
    found = nav.get(url)
    assert found.status_code == 200 and found.json()["No"] == line["No"]
    nav_error(nav.get(f"{COMPANY}/SalesOrderSalesLines('{line['Document_No']}')"), 400)
    nav_error(nav.get(f"{COMPANY}/Customer('NOPE')"), 404)
    assert nav.get(f"{COMPANY}/Customer(No='10000')").json()["No"] == "10000"
    price = nav.get(f"{COMPANY}/SalesPrices", params={"$top": "1"}).json()["value"][0]
    key = ",".join(f"{name}={value if name == 'Minimum_Quantity' else repr(value)}"
                   for name, value in price.items()
                   if name in ("Item_No", "Sales_Type", "Sales_Code", "Starting_Date",
                               "Currency_Code", "Variant_Code", "Unit_of_Measure_Code",
                               "Minimum_Quantity"))
    assert nav.get(f"{COMPANY}/SalesPrices({key})").json()["Unit_Price"] == price["Unit_Price"]


def test_filter_on_last_date_modified_as_a_date(nav: httpx.Client, bc: httpx.Client) -> None:
    today = datetime.now(UTC).date().isoformat()
    customer = bc_customer(bc, "20000")[0]
    assert bc.patch(f"customers({customer['id']})", json={"website": "www.example.com"},
                    headers={"If-Match": customer["@odata.etag"]}).status_code == 200
    changed = nav.get(f"{COMPANY}/Customer", params={
        "$filter": f"Last_Date_Modified ge {today}", "$select": "No,Last_Date_Modified"})
    rows = changed.json()["value"]
    assert "20000" in [r["No"] for r in rows] and {r["Last_Date_Modified"] for r in rows} == {
        today}
    none = nav.get(f"{COMPANY}/Customer", params={"$filter": "Last_Date_Modified lt 2000-01-01"})
    assert none.json()["value"] == []
    # NAV supports ``or`` between different fields (BC's API v2.0 refuses it).
    either = nav.get(f"{COMPANY}/Customer", params={
        "$filter": "No eq '10000' or Name eq 'Nobody'"}).json()["value"]
    assert [r["No"] for r in either] == ["10000"]
    nav_error(nav.get(f"{COMPANY}/Customer", params={"$filter": "number eq '10000'"}), 400)
    prices = nav.get(f"{COMPANY}/SalesPrices", params={
        "$filter": "Sales_Type eq 'Customer_x0020_Price_x0020_Group'"}).json()["value"]
    assert prices and {p["Sales_Type"] for p in prices} == {"Customer_x0020_Price_x0020_Group"}


def test_server_paging_at_1000_with_skiptoken(fresh_sandbox: Sandbox,
                                              nav: httpx.Client) -> None:
    fresh_sandbox.reset("scale:1005")
    first = nav.get(f"{COMPANY}/Customer", params={"$select": "No"}).json()
    assert len(first["value"]) == 1000
    next_link = first["@odata.nextLink"]
    assert "$skiptoken=" in next_link and next_link.startswith(fresh_sandbox.info.nav_url)
    second = nav.get(next_link).json()
    numbers = [r["No"] for r in first["value"] + second["value"]]
    assert "@odata.nextLink" not in second
    assert len(numbers) == len(set(numbers)) > 1000
    assert numbers == sorted(numbers)
    limited = nav.get(f"{COMPANY}/Customer", params={"$top": "1002", "$select": "No"}).json()
    rest = nav.get(limited["@odata.nextLink"]).json()
    assert len(limited["value"]) + len(rest["value"]) == 1002 and "@odata.nextLink" not in rest
    nav_error(nav.get(f"{COMPANY}/Customer", params={"$skiptoken": "garbage!"}), 400)


def test_etag_and_if_match(nav: httpx.Client) -> None:
    url = f"{COMPANY}/Customer('10000')"
    etag = nav.get(url).json()["@odata.etag"]
    missing = nav_error(nav.patch(url, json={"Phone_No": "0123"}), 400)
    assert missing["message"].startswith("Could not validate the client concurrency token")
    changed = nav.patch(url, json={"Phone_No": "0123"}, headers={"If-Match": etag})
    assert changed.status_code == 200 and changed.json()["Phone_No"] == "0123"
    new_etag = changed.json()["@odata.etag"]
    assert new_etag != etag and changed.headers["etag"] == new_etag
    stale = nav_error(nav.patch(url, json={"Phone_No": "4567"}, headers={"If-Match": etag}),
                      412)
    assert stale["message"] == "Another user has already changed the record."
    nav_error(nav.delete(url, headers={"If-Match": etag}), 412)


def test_basic_authentication(fresh_sandbox: Sandbox) -> None:
    url = f"{fresh_sandbox.info.nav_url}{COMPANY}/Customer"
    credentials = nav_credentials(fresh_sandbox.info)
    key = credentials.access_key.reveal()
    for auth in (None, (credentials.user, "wrong-key"), ("SOMEONE", key)):
        response = httpx.get(url, auth=auth)
        assert response.status_code == 401
        assert response.headers["www-authenticate"].startswith('Basic realm="')
    bearer = httpx.get(url, headers={"Authorization": "Bearer sbx.anything"})
    assert bearer.status_code == 401
    user = credentials.user.lower()  # NAV user names are not case-sensitive
    assert httpx.get(url, auth=(user, credentials.access_key.reveal()),
                     params={"$top": "1"}).status_code == 200


def test_writes_are_seen_by_the_bc_api_and_back(nav: httpx.Client, bc: httpx.Client) -> None:
    created = nav.post(f"{COMPANY}/Customer", json={
        "Name": "NAV Written Ltd.", "Phone_No": "+44 1", "Salesperson_Code": "JR"})
    assert created.status_code == 201, created.text
    record = created.json()
    number = record["No"]
    assert number and created.headers["location"].endswith(f"/Customer('{number}')")
    seen = bc_customer(bc, number)
    assert seen and seen[0]["displayName"] == "NAV Written Ltd." and seen[0]["phoneNumber"] == \
        "+44 1"
    assert seen[0]["@odata.etag"] == record["@odata.etag"]  # one version, both APIs
    # BC's side effect (the company contact) happens for NAV writes too.
    contacts = nav.get(f"{COMPANY}/Contact", params={"$filter": "Name eq 'NAV Written Ltd.'"})
    assert len(contacts.json()["value"]) == 1
    bc.patch(f"customers({seen[0]['id']})", json={"email": "bc@example.com"},
             headers={"If-Match": seen[0]["@odata.etag"]}).raise_for_status()
    after = nav.get(f"{COMPANY}/Customer('{number}')").json()
    assert after["E_Mail"] == "bc@example.com" and after["@odata.etag"] != record["@odata.etag"]
    deleted = nav.delete(f"{COMPANY}/Customer('{number}')",
                         headers={"If-Match": after["@odata.etag"]})
    assert deleted.status_code == 204
    assert bc_customer(bc, number) == []
    nav_error(nav.get(f"{COMPANY}/Customer('{number}')"), 404)


def test_writes_use_the_bc_rules(nav: httpx.Client) -> None:
    bad = nav_error(nav.post(f"{COMPANY}/Customer", json={"Name": "X",
                                                          "Salesperson_Code": "NOPE"}), 400)
    assert bad["code"] == "Internal_InvalidTableRelation"
    assert "Salesperson Code" in bad["message"]
    nav_error(nav.post(f"{COMPANY}/Customer", json={"displayName": "X"}), 400)
    nav_error(nav.post(f"{COMPANY}/Customer", json={"No": "10000", "Name": "Dup"}), 400)
    # Posted documents and statistics are read-only pages.
    nav_error(nav.post(f"{COMPANY}/PostedSalesInvoice", json={"No": "1"}), 405)
    statistics = nav.get(f"{COMPANY}/CustomerStatistics('10000')").json()
    assert statistics["No"] == "10000" and "Balance_LCY" in statistics
    owing = nav.get(f"{COMPANY}/CustomerStatistics", params={
        "$filter": "Balance_LCY gt 0", "$select": "No,Balance_LCY"}).json()["value"]
    assert owing and all(set(row) == {"@odata.etag", "No", "Balance_LCY"} and
                         row["Balance_LCY"] > 0 for row in owing)


def test_sales_order_lines_by_document_number(nav: httpx.Client, bc: httpx.Client) -> None:
    order = nav.get(f"{COMPANY}/SalesOrder", params={"$top": "1"}).json()["value"][0]
    item = nav.get(f"{COMPANY}/Item", params={"$filter": "Blocked eq false", "$top": "1"}
                   ).json()["value"][0]
    created = nav.post(f"{COMPANY}/SalesOrderSalesLines", json={
        "Document_No": order["No"], "Type": "Item", "No": item["No"], "Quantity": 2})
    assert created.status_code == 201, created.text
    line = created.json()
    assert line["Document_No"] == order["No"] and line["Line_No"] > 0
    assert f"Document_No='{order['No']}',Line_No={line['Line_No']}" in \
        created.headers["location"]
    header = bc.get("salesOrders", params={"$filter": f"number eq '{order['No']}'",
                                           "$expand": "salesOrderLines"}).json()["value"][0]
    assert any(bc_line["sequence"] == line["Line_No"] for bc_line in
               header["salesOrderLines"])
    reread = nav.get(f"{COMPANY}/SalesOrder('Order','{order['No']}')")
    nav_error(reread, 400)  # several key fields must be named
    named = nav.get(f"{COMPANY}/SalesOrder(Document_Type='Order',No='{order['No']}')").json()
    assert named["Amount"] == header["totalAmountExcludingTax"]


def test_no_batch_and_no_api_v2(nav: httpx.Client, fresh_sandbox: Sandbox) -> None:
    batch = nav.post("$batch", json={"requests": []})
    assert nav_error(batch, 404)["message"] == "Resource not found for the segment '$batch'."
    nav_error(nav.post(f"{COMPANY}/$batch", json={"requests": []}), 404)
    base = fresh_sandbox.info.base_url
    api = httpx.get(f"{base}/nav/api/v2.0/companies",
                    headers={"Authorization": nav.headers["Authorization"]})
    nav_error(api, 404)
    nav_error(nav.get(f"{COMPANY}/NotPublished"), 404)
    nav_error(nav.get(f"{COMPANY}/Customer", params={"$expand": "x"}), 400)
    unknown = nav.get(f"{COMPANY}/Customer('{uuid.uuid4()}')")
    nav_error(unknown, 404)


def test_sales_prices_keep_their_composite_key(fresh_sandbox: Sandbox, nav: httpx.Client,
                                               bc: httpx.Client) -> None:
    price = {"Item_No": "1000", "Sales_Type": "Customer_x0020_Price_x0020_Group", "Sales_Code": "RETAIL",
             "Unit_Price": 12}
    created = nav.post(f"{COMPANY}/SalesPrices", json=price)
    assert created.status_code == 201, created.text
    assert created.json()["Sales_Type"] == "Customer_x0020_Price_x0020_Group"
    # The custom API page is read-only for clients, NAV's page 7002 is editable: same row.
    info = fresh_sandbox.info
    seen = bc.get(f"{info.bc_custom_api_url}companies({info.company_id})/salesPrices", params={
        "$filter": "salesCode eq 'RETAIL' and itemNumber eq '1000' and unitPrice eq 12"})
    assert len(seen.json()["value"]) == 1
    again = nav_error(nav.post(f"{COMPANY}/SalesPrices", json=price), 400)
    assert again["code"] == "Internal_EntityWithSameKeyExists"


def test_lines_filtered_and_changed_by_document_number(nav: httpx.Client) -> None:
    lines = nav.get(f"{COMPANY}/SalesOrderSalesLines", params={"$top": "1"}).json()["value"]
    number = lines[0]["Document_No"]
    same = nav.get(f"{COMPANY}/SalesOrderSalesLines",
                   params={"$filter": f"Document_No eq '{number}'"}).json()["value"]
    assert same and {line["Document_No"] for line in same} == {number}
    line = same[0]
    url = (f"{COMPANY}/SalesOrderSalesLines(Document_Type='Order',Document_No='{number}',"
           f"Line_No={line['Line_No']})")
    changed = nav.patch(url, json={"Quantity": line["Quantity"] + 1},
                        headers={"If-Match": line["@odata.etag"]})
    assert changed.status_code == 200, changed.text
    assert changed.json()["Line_Amount"] > line["Line_Amount"]


def test_option_members_are_written_as_nav_writes_them() -> None:
    """NAV's OData v4 serializer writes each character of an option caption that cannot be in
    an identifier as ``_xHHHH_`` (as Business Central does on the wire: a sales line's type
    "G/L Account" arrives as ``G_x002F_L_x0020_Account``), and decodes them on writes."""
    from nav_crm_ops.sandbox.nav.common import decode_option, encode_option

    assert encode_option("G/L Account") == "G_x002F_L_x0020_Account"
    assert encode_option("Customer Price Group") == "Customer_x0020_Price_x0020_Group"
    assert encode_option("Charge (Item)") == "Charge_x0020__x0028_Item_x0029_"
    assert encode_option(" ") == encode_option(None) == "_x0020_"
    options = ("", "G/L Account", "Item")
    assert decode_option("G_x002F_L_x0020_Account", options) == "G/L Account"
    assert decode_option("G_L_Account", options) == "G_L_Account"  # not a member: BC words it


def test_contact_business_relations_name_the_customer(nav: httpx.Client,
                                                      bc: httpx.Client) -> None:
    """Page 5061 Contact Business Relations (table 5054): a company contact's relation ``CUST``
    links it to the customer by number; the table's key fields (Contact No., Business Relation
    Code) are published although the page has no control for Contact No. The sandbox
    publishes it read-only."""
    service = f"{COMPANY}/ContactBusinessRelations"
    rows = nav.get(service, params={"$filter": "No eq '10000'"}).json()["value"]
    assert len(rows) == 1
    relation = rows[0]
    assert (relation["Business_Relation_Code"], relation["Business_Relation_Description"],
            relation["Link_to_Table"]) == ("CUST", "Customer", "Customer")
    company = nav.get(f"{COMPANY}/Contact('{relation['Contact_No']}')").json()
    assert company["Type"] == "Company" and company["Name"] == relation["Contact_Name"]
    url = f"{service}(Contact_No='{relation['Contact_No']}',Business_Relation_Code='CUST')"
    one = nav.get(url)
    assert one.status_code == 200 and one.json()["No"] == "10000"
    assert one.headers["etag"] == one.json()["@odata.etag"]
    nav_error(nav.get(f"{service}('{relation['Contact_No']}')"), 400)
    nav_error(nav.get(f"{service}(Contact_No='{relation['Contact_No']}',"
                      "Business_Relation_Code='VEND')"), 404)
    # Link to Table is an option: its enum member names in $filter; the key as NAV orders it.
    customers = nav.get(service, params={"$filter": "Link_to_Table eq 'Customer'",
                                         "$select": "Contact_No,No"}).json()["value"]
    assert len(customers) == len(bc.get("customers").json()["value"])
    assert all(set(row) == {"@odata.etag", "Contact_No", "No"} for row in customers)
    contacts = [row["Contact_No"] for row in customers]
    assert contacts == sorted(contacts)
    # A customer created in Business Central gets its company contact and relation.
    created = bc.post("customers", json={"displayName": "Relation Test Ltd."}).json()
    made = nav.get(service, params={"$filter": f"No eq '{created['number']}'"}).json()["value"]
    assert [row["Contact_Name"] for row in made] == ["Relation Test Ltd."]
    nav_error(nav.post(service, json={"Contact_No": "CT1", "Business_Relation_Code": "CUST"}),
              405)
    nav_error(nav.delete(url, headers={"If-Match": "*"}), 405)
    schema = ET.fromstring(nav.get("$metadata").content).find(f".//{EDM}Schema")
    assert schema is not None
    page = next(t for t in schema.findall(f"{EDM}EntityType")
                if t.get("Name") == "ContactBusinessRelations")
    assert [ref.get("Name") for ref in page.iter(f"{EDM}PropertyRef")] == [
        "Contact_No", "Business_Relation_Code"]
    types = {p.get("Name"): p.get("Type") for p in page.iter(f"{EDM}Property")}
    assert types["No"] == types["Business_Relation_Code"] == "Edm.String"
    assert types["Link_to_Table"] == "NAV.ContactBusinessRelations_Link_to_Table"


def test_line_types_are_nav_options(nav: httpx.Client, bc: httpx.Client) -> None:
    """A sales line's Type has NAV 2018's options (" ,G/L Account,Item,Resource,Fixed
    Asset,Charge (Item)"), not the API's (Comment, Account, ...), in rows, $filter, writes
    and $metadata."""
    order = nav.get(f"{COMPANY}/SalesOrder", params={"$top": "1"}).json()["value"][0]
    lines = f"{COMPANY}/SalesOrderSalesLines"
    account = nav.post(lines, json={"Document_No": order["No"], "Type": "G_x002F_L_x0020_Account",
                                    "No": "6610", "Description": "Freight", "Quantity": 1,
                                    "Unit_Price": 25})
    assert account.status_code == 201, account.text
    comment = nav.post(lines, json={"Document_No": order["No"], "Type": "_x0020_",
                                    "Description": "Deliver before noon"})
    assert comment.status_code == 201, comment.text
    assert (account.json()["Type"], comment.json()["Type"]) == ("G_x002F_L_x0020_Account",
                                                                "_x0020_")
    header = bc.get("salesOrders", params={"$filter": f"number eq '{order['No']}'",
                                           "$expand": "salesOrderLines"}).json()["value"][0]
    stored = {line["sequence"]: line["lineType"] for line in header["salesOrderLines"]}
    assert (stored[account.json()["Line_No"]], stored[comment.json()["Line_No"]]) == (
        "Account", "Comment")
    found = nav.get(lines, params={"$filter": f"Document_No eq '{order['No']}' and "
                                              "Type eq 'G_x002F_L_x0020_Account'"}).json()
    assert [line["No"] for line in found["value"]] == ["6610"]
    schema = ET.fromstring(nav.get("$metadata").content).find(f".//{EDM}Schema")
    assert schema is not None
    enum = next(e for e in schema.findall(f"{EDM}EnumType")
                if e.get("Name") == "SalesOrderSalesLines_Type")
    assert {m.get("Name") for m in enum.findall(f"{EDM}Member")} == {
        "_x0020_", "G_x002F_L_x0020_Account", "Item", "Resource", "Fixed_x0020_Asset",
        "Charge_x0020__x0028_Item_x0029_"}
