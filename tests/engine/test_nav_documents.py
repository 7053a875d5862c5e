"""NAV 2018 end to end, documents and figures: POSTEDSALESINV-INV (pages 132/133),
CUSTOMER STATISTICS (page 151) and a contact's parent account through Contact Business
Relations (page 5061), on a ``profile = "nav2018"`` workspace against the sandbox's OData v4
page web services over real loopback HTTP.

NAV 2018 posts documents in its client (page web services have no posting action), so the
tests post the way a NAV user would through the sandbox's own Business Central API over the
same store (:meth:`Sandbox.bc_admin`); the sync only ever reads the NAV pages."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl

from nav_crm_ops import open_workspace
from nav_crm_ops.connectors.dataverse import Dataverse
from nav_crm_ops.engine.workspace import Workspace
from nav_crm_ops.sandbox import Sandbox

MASTER_DATA = ["CURRENCY", "SALESPEOPLE", "UNIT OF MEASURE", "CUSTOMER", "ITEM-PRODUCT",
               "RESOURCE-PRODUCT"]
FIGURES = {"Balance_LCY": "nav_balance", "Balance_Due_LCY": "nav_overdueamount",
           "Sales_LCY": "nav_totalsales", "Outstanding_Orders_LCY": "nav_outstandingorders",
           "Outstanding_Invoices_LCY": "nav_outstandinginvoices"}


def _writes(ws: Workspace) -> int:
    return sum(client.http.stats.writes for client in (ws.connections.dataverse,
                                                       ws.connections.business_central))


def _assert_quiet(ws: Workspace, mappings: list[str]) -> None:
    """A run without changes creates, changes and writes nothing (the invoices are read in
    full every run: their page has no Last_Date_Modified)."""
    before = _writes(ws)
    quiet = ws.sync_all(mappings)
    assert quiet.counts["inserted"] == quiet.counts["modified"] == 0
    assert _writes(ws) == before


def _post_invoice(sandbox: Sandbox, customer: str, lines: list[dict[str, Any]]) -> str:
    """Create and post a sales invoice in the ERP, as a NAV user does in the client; its
    posted number."""
    info = sandbox.info
    company = f"{info.bc_api_url}companies({info.company_id})/"
    created = sandbox.bc_admin("POST", company + "salesInvoices", {
        "customerNumber": customer, "salesInvoiceLines": lines})
    assert created.status_code == 201, created.text
    invoice = created.json()
    posted = sandbox.bc_admin("POST", company + f"salesInvoices({invoice['id']})/"
                              "Microsoft.NAV.post")
    assert posted.status_code == 204, posted.text
    # posting gives the invoice its number from the posted invoices' series
    return str(sandbox.bc_admin("GET", company + f"salesInvoices({invoice['id']})")
               .json()["number"])


def _coupled(ws: Workspace, mapping: str) -> dict[str, str]:
    """NAV key -> CRM id of a mapping's couplings."""
    return dict(ws.store.couplings_frame(mapping, columns=["nav_key", "crm_id"]).iter_rows())


def _check_invoice(ws: Workspace, header: dict[str, Any], lines: pl.DataFrame) -> None:
    """The CRM invoice of one posted NAV invoice: customer, total, and each line in order
    (product lines with their product, other lines written in with their description)."""
    dataverse = ws.connections.dataverse
    crm = dataverse.read("invoices", filter=f"nav_bcinvoicenumber eq '{header['No']}'")
    assert crm.height == 1, header["No"]
    assert crm["_customerid_value"].item() == _coupled(ws, "CUSTOMER")[
        header["Sell_to_Customer_No"]]
    assert round(crm["totalamount"].item(), 2) == round(header["Amount_Including_VAT"], 2)
    details = dataverse.read("invoicedetails",
                             filter=f"_invoiceid_value eq {crm['invoiceid'].item()}"
                             ).sort("lineitemnumber")
    theirs = lines.filter(pl.col("Document_No") == header["No"]).sort("Line_No")
    assert details.height == theirs.height > 0
    products = {**_coupled(ws, "ITEM-PRODUCT"), **_coupled(ws, "RESOURCE-PRODUCT")}
    for mine, line in zip(details.iter_rows(named=True), theirs.iter_rows(named=True),
                          strict=True):
        assert (mine["quantity"], round(mine["priceperunit"], 2)) == (
            line["Quantity"], round(line["Unit_Price"], 2))
        if line["Type"] in ("Item", "Resource"):
            assert mine["_productid_value"] == products[line["No"]]
            assert mine["isproductoverridden"] is False
        else:
            assert mine["_productid_value"] is None and mine["isproductoverridden"] is True
            assert mine["productdescription"] == line["Description"]


def test_posted_invoices_reach_crm_with_their_lines_from_nav_pages(
        nav_workspace: Path, fresh_sandbox: Sandbox) -> None:
    with open_workspace(nav_workspace) as ws:
        report = ws.sync_all([*MASTER_DATA, "POSTEDSALESINV-INV"])
        result = report.result("POSTEDSALESINV-INV")
        assert result.status == "finished" and ws.errors("POSTEDSALESINV-INV").height == 0
        nav = ws.connections.business_central
        headers = nav.read("salesInvoices")
        assert result.count("inserted") == headers.height > 0
        assert ws.connections.dataverse.read("invoices").height == headers.height
        lines = nav.read("salesInvoiceLines")
        for header in headers.iter_rows(named=True):
            _check_invoice(ws, header, lines)
        _assert_quiet(ws, ["POSTEDSALESINV-INV"])

        # An invoice posted in NAV later, with an item, a resource and a G/L account line.
        number = _post_invoice(fresh_sandbox, "20000", [
            {"lineType": "Item", "lineObjectNumber": "1896-S", "quantity": 2},
            {"lineType": "Resource", "lineObjectNumber": "LINDA", "quantity": 3},
            {"lineType": "Account", "lineObjectNumber": "6610", "description": "Freight",
             "quantity": 1, "unitPrice": 25}])
        lines = nav.read("salesInvoiceLines", filter=f"Document_No eq '{number}'")
        assert lines["Type"].to_list() == ["Item", "Resource", "G_x002F_L_x0020_Account"]
        added = ws.sync("POSTEDSALESINV-INV").result("POSTEDSALESINV-INV")
        assert added.count("inserted") == 1 and ws.errors("POSTEDSALESINV-INV").height == 0
        header = nav.read("salesInvoices", filter=f"No eq '{number}'").row(0, named=True)
        _check_invoice(ws, header, lines)

        _assert_quiet(ws, ["POSTEDSALESINV-INV"])
        assert ws.connections.dataverse.read("invoices").height == headers.height + 1


def test_customer_statistics_follow_nav_figures(nav_workspace: Path,
                                                fresh_sandbox: Sandbox) -> None:
    with open_workspace(nav_workspace) as ws:
        report = ws.sync_all(["CURRENCY", "SALESPEOPLE", "CUSTOMER", "CUSTOMER STATISTICS"])
        assert report.result("CUSTOMER STATISTICS").status == "finished"
        dataverse = ws.connections.dataverse
        nav = ws.connections.business_central
        coupled = _coupled(ws, "CUSTOMER")
        stats = dataverse.read("nav_accountstatisticses")
        # coupled customers only, each pointing at its account
        assert sorted(stats["nav_customerno"].to_list()) == sorted(coupled)
        assert dict(stats.select("nav_customerno", "_nav_accountid_value").iter_rows()) \
            == coupled
        figures = nav.read("customerStatistics", filter="No eq '10000'").row(0, named=True)
        crm = stats.filter(pl.col("nav_customerno") == "10000").row(0, named=True)
        for nav_name, crm_name in FIGURES.items():
            assert round(crm[crm_name], 2) == round(figures[nav_name], 2), nav_name
        assert ws.compare("CUSTOMER STATISTICS").height == 0

        before = _writes(ws)
        quiet = ws.sync("CUSTOMER STATISTICS").result("CUSTOMER STATISTICS")
        assert quiet.count("modified") == quiet.count("inserted") == 0
        assert _writes(ws) == before

        _post_invoice(fresh_sandbox, "10000", [
            {"lineType": "Item", "lineObjectNumber": "1000", "quantity": 2}])
        after = nav.read("customerStatistics", filter="No eq '10000'").row(0, named=True)
        assert after["Sales_LCY"] > figures["Sales_LCY"]
        assert after["Balance_LCY"] > figures["Balance_LCY"]
        refreshed = ws.sync("CUSTOMER STATISTICS").result("CUSTOMER STATISTICS")
        assert refreshed.count("modified") == 1 and refreshed.count("inserted") == 0
        row = dataverse.read("nav_accountstatisticses", filter="nav_customerno eq '10000'")
        assert round(row["nav_totalsales"].item(), 2) == round(after["Sales_LCY"], 2)
        assert round(row["nav_balance"].item(), 2) == round(after["Balance_LCY"], 2)


def _company_contact(ws: Workspace, customer: str) -> str:
    """The company contact whose business relation (page 5061) names the customer."""
    relations = ws.connections.business_central.read(
        "contactsInformation", filter=f"Link_to_Table eq 'Customer' and No eq '{customer}'")
    return str(relations["Contact_No"].item())


def test_contacts_take_their_account_from_nav_business_relations(
        nav_workspace: Path, crm_person: Callable[[Workspace], Dataverse]) -> None:
    with open_workspace(nav_workspace) as ws:
        ws.sync_all(["CURRENCY", "SALESPEOPLE", "CUSTOMER", "CONTACT"])
        nav = ws.connections.business_central
        dataverse = ws.connections.dataverse
        accounts = _coupled(ws, "CUSTOMER")
        contacts = dict(ws.store.couplings_frame("CONTACT", columns=["nav_id", "crm_id"])
                        .iter_rows())
        company = _company_contact(ws, "10000")
        people = nav.read("contacts", filter=f"Type eq 'Person' and Company_No eq '{company}'")
        coupled = [number for number in people["No"].to_list() if number in contacts]
        assert coupled  # (the seed's people with a shared e-mail stay to couple by hand)
        for number in coupled:
            crm = dataverse.read("contacts", filter=f"contactid eq {contacts[number]}")
            assert crm["_parentcustomerid_value"].item() == accounts["10000"], number

        # A person contact moved to another company in NAV follows in CRM.
        moved = coupled[0]
        record = nav.get("contacts", moved)
        nav.http.request("PATCH", nav.record_path("contacts", moved),
                         json={"Company_No": _company_contact(ws, "20000")},
                         headers={"If-Match": record["@odata.etag"]})
        assert ws.sync("CONTACT").result("CONTACT").count("modified") == 1
        crm = dataverse.read("contacts", filter=f"contactid eq {contacts[moved]}")
        assert crm["_parentcustomerid_value"].item() == accounts["20000"]

        # A CRM contact under a coupled account becomes a NAV person of that company.
        person = crm_person(ws).http.request("POST", "contacts", json={
            "firstname": "Nadia", "lastname": "Navarro", "emailaddress1": "nadia@cannon.example",
            "parentcustomerid_account@odata.bind": f"/accounts({accounts['10000']})"},
            headers={"Prefer": "return=representation"}).json()
        # CONTACT synchronizes coupled records; new ones are created by `match --create`.
        created = ws.match_couple("CONTACT", create=True)
        mine = created.frame.filter(pl.col("source_id") == person["contactid"])
        assert mine["status"].to_list() == ["created"], created.frame.rows()
        made = nav.read("contacts", filter="E_Mail eq 'nadia@cannon.example'")
        assert made.height == 1
        assert (made["Type"].item(), made["Company_No"].item(), made["Surname"].item()) == (
            "Person", company, "Navarro")
        assert ws.store.couplings_frame("CONTACT").filter(
            pl.col("crm_id") == person["contactid"])["nav_id"].to_list() == made["No"].to_list()
        before = _writes(ws)
        again = ws.sync("CONTACT").result("CONTACT")
        assert again.count("inserted") == again.count("modified") == 0
        assert _writes(ws) == before
        assert ws.match_couple("CONTACT", create=True).counts.get("created", 0) == 0
        assert nav.read("contacts", filter="E_Mail eq 'nadia@cannon.example'").height == 1

        # ... and moving it to another account in CRM moves it to that company in NAV.
        crm_person(ws).http.request("PATCH", f"contacts({person['contactid']})", json={
            "parentcustomerid_account@odata.bind": f"/accounts({accounts['20000']})"})
        assert ws.sync("CONTACT").result("CONTACT").count("modified") == 1
        assert nav.get("contacts", str(made["No"].item()))["Company_No"] == _company_contact(
            ws, "20000")
