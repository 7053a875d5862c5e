"""Sales orders: a CRM order submitted in the sandbox becomes a BC order with the right lines;
posting it in BC makes the CRM order Invoiced, creates the CRM invoice and adds a post to the
account's wall; deleting it returns the CRM order to Active; an order for an uncoupled
customer fails with a message that names the customer to couple."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import polars as pl

from nav_crm_ops import open_workspace
from nav_crm_ops.connectors.dataverse import Dataverse
from nav_crm_ops.engine.workspace import Workspace
from tests.engine.crm_orders import SUBMITTED, base_unit, crm_id, crm_order, submit_order

Person = Callable[[Workspace], Dataverse]











def test_submitted_order_goes_to_bc_once_and_comes_back_invoiced(
        workspace_dir: Path, crm_person: Person) -> None:
    with open_workspace(workspace_dir) as ws:
        assert ws.sync_all().result("SALES ORDERS").status == "finished"
        order = submit_order(ws, crm_person(ws), crm_id(ws, "CUSTOMER", "10000"),
                              "Web shop order 4711",
                              [("1896-S", "PCS", 3, 120.5), ("1900-S", "PCS", 1, 99)])
        plan = ws.preview("SALES ORDERS")
        row = plan.records.filter(pl.col("crm_id") == order["salesorderid"])
        assert row["action"].cast(pl.Utf8).item() == "insert_nav"
        shown = dict(plan.field_changes.filter(pl.col("record_id") == row["record_id"].item())
                     .select("field", "new_value").iter_rows())
        assert shown["lines[1].productid"] == "1896-S"
        assert shown["customerid"] == "10000"

        result = ws.sync("SALES ORDERS").result("SALES ORDERS")
        assert result.count("inserted") == 1, ws.errors("SALES ORDERS")["message"].to_list()
        bc = ws.connections.business_central
        created = bc.read("salesOrders", filter=f"yourReference eq '{order['ordernumber']}'")
        assert created.height == 1
        header = created.row(0, named=True)
        assert header["externalDocumentNumber"] == "Web shop order 4711"
        assert header["customerNumber"] == "10000"
        lines = bc.read("salesOrderLines", filter=f"documentId eq {header['id']}")
        got = sorted((r["lineObjectNumber"], r["quantity"], r["unitPrice"], r["lineType"])
                     for r in lines.iter_rows(named=True))
        assert got == [("1896-S", 3, 120.5, "Item"), ("1900-S", 1, 99, "Item")]
        crm = crm_order(ws, order["salesorderid"])
        assert crm["nav_submittedtobackoffice"] is True
        assert crm["nav_bcordernumber"] == header["number"]

        crm_person(ws).http.request(
            "PATCH", f"salesorders({order['salesorderid']})", headers={"If-Match": "*"},
            json={"name": "Web shop order 4711 (rush)"})
        edited = ws.preview("SALES ORDERS").records.filter(
            pl.col("crm_id") == order["salesorderid"])
        assert edited["action"].cast(pl.Utf8).item() == "skip"
        assert edited["skip_reason"].cast(pl.Utf8).item() == "create_only"
        assert "not synchronized" in edited["message"].item()

        bc.post_action("salesOrders", header["id"], "Microsoft.NAV.shipAndInvoice")
        report = ws.sync_all(["POSTEDSALESINV-INV", "SALES ORDERS"])
        assert report.result("SALES ORDERS").status == "finished", \
            ws.errors("SALES ORDERS")["message"].to_list()
        crm = crm_order(ws, order["salesorderid"])
        assert (crm["statecode"], crm["statuscode"]) == (4, 100003)
        invoice = bc.read("salesInvoices", filter=f"orderNumber eq '{header['number']}'")
        crm_invoice = ws.connections.dataverse.read(
            "invoices", filter=f"nav_bcinvoicenumber eq '{invoice['number'].item()}'")
        assert crm_invoice.height == 1
        assert crm_invoice["_salesorderid_value"].item() == order["salesorderid"]
        posts = ws.connections.dataverse.read(
            "posts", filter=f"_regardingobjectid_value eq {crm_id(ws, 'CUSTOMER', '10000')}")
        assert posts.filter(pl.col("text").str.contains(header["number"])).height == 1
        assert ws.store.couplings_frame("SALES ORDERS").filter(
            pl.col("crm_id") == order["salesorderid"]).height == 0

        quiet = ws.sync("SALES ORDERS").result("SALES ORDERS")
        assert quiet.count("inserted") == quiet.count("modified") == 0
        posts_after = ws.connections.dataverse.read(
            "posts", filter=f"_regardingobjectid_value eq {crm_id(ws, 'CUSTOMER', '10000')}")
        assert posts_after.height == posts.height, "no second post for the same invoice"


def test_deleted_bc_order_returns_the_crm_order_to_active(
        workspace_dir: Path, crm_person: Person) -> None:
    with open_workspace(workspace_dir) as ws:
        ws.sync_all()
        order = submit_order(ws, crm_person(ws), crm_id(ws, "CUSTOMER", "20000"),
                              "Phone order", [("1896-S", "PCS", 2, 100)])
        assert ws.sync("SALES ORDERS").result("SALES ORDERS").count("inserted") == 1
        bc = ws.connections.business_central
        header = bc.read("salesOrders", filter=f"yourReference eq '{order['ordernumber']}'")
        bc.http.request("DELETE", bc.record_path("salesOrders", header["id"].item()),
                        headers={"If-Match": "*"})
        result = ws.sync("SALES ORDERS").result("SALES ORDERS")
        assert result.count("uncoupled") == 1
        crm = crm_order(ws, order["salesorderid"])
        assert (crm["statecode"], crm["statuscode"]) == (0, 1)
        assert crm["nav_submittedtobackoffice"] is False
        assert ws.store.couplings_frame("SALES ORDERS").filter(
            pl.col("crm_id") == order["salesorderid"]).height == 0


def test_order_for_an_uncoupled_customer_fails_naming_the_customer(
        workspace_dir: Path, crm_person: Person) -> None:
    with open_workspace(workspace_dir) as ws:
        ws.sync_all()
        dataverse = ws.connections.dataverse
        prospect = dataverse.http.request(
            "POST", "accounts", headers={"Prefer": "return=representation"},
            json={"name": "Northwind Prospects", "accountnumber": "P-991",
                  "customertypecode": 8}).json()
        order = submit_order(ws, crm_person(ws), prospect["accountid"], "Trial order",
                              [("1896-S", "PCS", 1, 100)])
        result = ws.sync("SALES ORDERS").result("SALES ORDERS")
        assert result.count("failed") == 1 and result.count("inserted") == 0
        message = ws.errors("SALES ORDERS").filter(
            pl.col("source_id") == order["salesorderid"])["message"].item(0)
        assert "Northwind Prospects" in message and "couple" in message
        assert "CUSTOMER" in message
        assert crm_order(ws, order["salesorderid"])["nav_submittedtobackoffice"] is False
        assert ws.connections.business_central.read(
            "salesOrders", filter=f"yourReference eq '{order['ordernumber']}'").height == 0


def test_order_with_an_uncoupled_product_fails_naming_the_product(
        workspace_dir: Path, crm_person: Person) -> None:
    with open_workspace(workspace_dir) as ws:
        ws.sync_all()
        http = crm_person(ws).http
        unit = base_unit(ws, "PCS")
        gift = http.request("POST", "products", headers={"Prefer": "return=representation"},
                            json={"name": "Gift card", "productnumber": "GC-50",
                                  "defaultuomscheduleid@odata.bind":
                                  f"/uomschedules({crm_id(ws, 'UNIT OF MEASURE', 'PCS')})",
                                  "defaultuomid@odata.bind": f"/uoms({unit})"}).json()
        account = crm_id(ws, "CUSTOMER", "10000")
        reply = http.request("POST", "salesorders", headers={"Prefer": "return=representation"},
                             json={"name": "Gift order", "customerid_account@odata.bind":
                                   f"/accounts({account})", "order_details": [
                                       {"productid@odata.bind": f"/products({gift['productid']})",
                                        "uomid@odata.bind": f"/uoms({unit})", "quantity": 1,
                                        "priceperunit": 50, "lineitemnumber": 1}]})
        order = reply.json()
        http.request("PATCH", f"salesorders({order['salesorderid']})", json=SUBMITTED,
                     headers={"If-Match": "*"})
        result = ws.sync("SALES ORDERS").result("SALES ORDERS")
        assert result.count("failed") == 1 and result.count("inserted") == 0
        message = ws.errors("SALES ORDERS").filter(
            pl.col("source_id") == order["salesorderid"])["message"].item(0)
        assert message.startswith("line 1: ")
        assert "'Gift card'" in message and "GC-50" in message and "ITEM-PRODUCT" in message
