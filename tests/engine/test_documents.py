"""Document mappings (POSTEDSALESINV-INV): a posted BC invoice reaches CRM with its lines and
totals in one request; the preview shows the lines; a line whose product is not coupled fails
the whole invoice with the reason."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

from nav_crm_ops import open_workspace
from nav_crm_ops.engine.workspace import Workspace

MASTER_DATA = ["CURRENCY", "SALESPEOPLE", "UNIT OF MEASURE", "CUSTOMER", "RESOURCE-PRODUCT",
               "ITEM-PRODUCT"]


def _post_invoice(ws: Workspace, customer: str, lines: list[dict[str, Any]]) -> dict[str, Any]:
    bc = ws.connections.business_central
    invoice = bc.http.request("POST", bc.entity_path("salesInvoices"),
                              json={"customerNumber": customer,
                                    "salesInvoiceLines": lines}).json()
    bc.post_action("salesInvoices", invoice["id"], "Microsoft.NAV.post")
    return dict(bc.read_by_ids("salesInvoices", "id", [invoice["id"]]).row(0, named=True))


def test_posted_invoices_appear_in_crm_with_lines_and_totals(workspace_dir: Path) -> None:
    with open_workspace(workspace_dir) as ws:
        report = ws.sync_all([*MASTER_DATA, "POSTEDSALESINV-INV"])
        result = report.result("POSTEDSALESINV-INV")
        assert result.status == "finished", \
            ws.errors("POSTEDSALESINV-INV")["message"].to_list()
        bc = ws.connections.business_central
        dataverse = ws.connections.dataverse
        posted = bc.read("salesInvoices", filter="status ne 'Draft'")
        assert result.count("inserted") == posted.height > 0
        invoices = dataverse.read("invoices")
        assert invoices.height == posted.height
        accounts = dict(ws.store.couplings_frame("CUSTOMER", columns=["nav_key", "crm_id"])
                        .iter_rows())
        details = dataverse.read("invoicedetails")
        lines = bc.read("salesInvoiceLines", filter=" or ".join(
            f"documentId eq {i}" for i in posted["id"].to_list()[:20]))
        for row in posted.head(20).iter_rows(named=True):
            crm = invoices.filter(pl.col("nav_bcinvoicenumber") == row["number"])
            assert crm["_customerid_value"].item() == accounts[row["customerNumber"]]
            assert round(crm["totalamount"].item(), 2) == round(row["totalAmountIncludingTax"], 2)
            mine = details.filter(pl.col("_invoiceid_value") == crm["invoiceid"].item())
            theirs = lines.filter(pl.col("documentId") == row["id"])
            assert mine.height == theirs.height
            assert sorted(mine["quantity"].to_list()) == sorted(theirs["quantity"].to_list())
            assert round(sum(mine["priceperunit"] * mine["quantity"]), 2) == round(
                sum(theirs["unitPrice"] * theirs["quantity"]), 2)

        new = _post_invoice(ws, "10000", [
            {"lineType": "Item", "lineObjectNumber": "1896-S", "quantity": 4},
            {"lineType": "Item", "lineObjectNumber": "1900-S", "quantity": 1}])
        plan = ws.preview("POSTEDSALESINV-INV")
        record = plan.records.filter(pl.col("nav_id") == new["id"].lower())
        assert record["action"].cast(pl.Utf8).item() == "insert_crm"
        assert "2 line(s)" in record["message"].item()
        shown = plan.field_changes.filter(pl.col("record_id") == record["record_id"].item())
        assert dict(shown.select("field", "new_value").iter_rows())["lines[2].productid"] \
            == "1900-S"
        assert ws.apply(plan).result("POSTEDSALESINV-INV").count("inserted") == 1
        crm = dataverse.read("invoices", filter=f"nav_bcinvoicenumber eq '{new['number']}'")
        assert crm.height == 1
        assert round(crm["totalamount"].item(), 2) == round(new["totalAmountIncludingTax"], 2)
        mine = dataverse.read("invoicedetails",
                              filter=f"_invoiceid_value eq {crm['invoiceid'].item()}")
        assert sorted(mine["quantity"].to_list()) == [1.0, 4.0]


def test_an_invoice_with_an_uncoupled_item_fails_whole_and_names_the_item(
        workspace_dir: Path) -> None:
    with open_workspace(workspace_dir) as ws:
        ws.sync_all([*MASTER_DATA, "POSTEDSALESINV-INV"])
        product = ws.store.couplings_frame("ITEM-PRODUCT").filter(pl.col("nav_key") == "1900-S")
        ws.uncouple("ITEM-PRODUCT", nav_id=product["nav_id"].item())
        new = _post_invoice(ws, "10000", [
            {"lineType": "Item", "lineObjectNumber": "1896-S", "quantity": 1},
            {"lineType": "Item", "lineObjectNumber": "1900-S", "quantity": 2}])
        result = ws.sync("POSTEDSALESINV-INV").result("POSTEDSALESINV-INV")
        assert result.count("failed") == 1 and result.count("inserted") == 0
        error = ws.errors("POSTEDSALESINV-INV").filter(pl.col("source_id") == new["id"].lower())
        message = error["message"].item(0)
        assert "line 2" in message and "'1900-S'" in message and "ITEM-PRODUCT" in message
        crm = ws.connections.dataverse.read(
            "invoices", filter=f"nav_bcinvoicenumber eq '{new['number']}'")
        assert crm.height == 0, "no invoice without its lines"
