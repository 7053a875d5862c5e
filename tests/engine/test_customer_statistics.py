"""CUSTOMER STATISTICS: BC figures of coupled customers reach the CRM statistics table and are
refreshed when a new invoice is posted in BC."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from nav_crm_ops import open_workspace

FIGURES = {"balance": "nav_balance", "overdueAmount": "nav_overdueamount",
           "totalSales": "nav_totalsales", "outstandingOrders": "nav_outstandingorders"}


def test_statistics_of_coupled_customers_match_bc_and_follow_a_new_invoice(
        workspace_dir: Path) -> None:
    with open_workspace(workspace_dir) as ws:
        ws.sync_all(["CURRENCY", "SALESPEOPLE", "CUSTOMER", "CUSTOMER STATISTICS"])
        custom = ws.connections.business_central_custom
        dataverse = ws.connections.dataverse
        coupled = ws.store.couplings_frame("CUSTOMER")
        stats = dataverse.read("nav_accountstatisticses")
        assert stats.height == coupled.height
        nav_10000 = custom.read("customerStatistics", filter="customerNumber eq '10000'")
        crm_10000 = stats.filter(pl.col("nav_customerno") == "10000")
        for nav_name, crm_name in FIGURES.items():
            assert round(crm_10000[crm_name].item(), 2) == round(nav_10000[nav_name].item(), 2)
        account = coupled.filter(pl.col("nav_key") == "10000")["crm_id"].item()
        assert crm_10000["_nav_accountid_value"].item() == account
        assert ws.compare("CUSTOMER STATISTICS").height == 0

        quiet = ws.sync("CUSTOMER STATISTICS").result("CUSTOMER STATISTICS")
        assert quiet.count("modified") == quiet.count("inserted") == 0

        bc = ws.connections.business_central
        invoice = bc.http.request("POST", bc.entity_path("salesInvoices"),
                                  json={"customerNumber": "10000"}).json()
        bc.http.request("POST", f"{bc.record_path('salesInvoices', invoice['id'])}"
                        "/salesInvoiceLines",
                        json={"lineType": "Item", "lineObjectNumber": "1000", "quantity": 2})
        bc.post_action("salesInvoices", invoice["id"], "Microsoft.NAV.post")
        after = custom.read("customerStatistics", filter="customerNumber eq '10000'")
        assert after["totalSales"].item() > nav_10000["totalSales"].item()

        refreshed = ws.sync("CUSTOMER STATISTICS").result("CUSTOMER STATISTICS")
        assert refreshed.count("modified") == 1
        row = dataverse.read("nav_accountstatisticses", filter="nav_customerno eq '10000'")
        assert round(row["nav_totalsales"].item(), 2) == round(after["totalSales"].item(), 2)
        assert round(row["nav_balance"].item(), 2) == round(after["balance"].item(), 2)
