"""CUSTPRCGRP-PRICE and SALESPRC-PRODUCTPRICE: BC customer price group prices become CRM price
lists (one per group and currency) holding the BC prices, with products and units through
their couplings; dates that CRM price lists cannot hold are named in the preview."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from nav_crm_ops import open_workspace
from nav_crm_ops.sandbox import Sandbox

GROUP_PRICES = "salesType eq 'Customer Price Group'"


def test_price_lists_per_group_and_currency_hold_the_bc_prices(workspace_dir: Path) -> None:
    with open_workspace(workspace_dir) as ws:
        report = ws.sync_all()
        for name in ("CUSTPRCGRP-PRICE", "SALESPRC-PRODUCTPRICE"):
            result = report.result(name)
            assert result.status == "finished", (name, result.message,
                                                 ws.errors(name)["message"].to_list())
        custom = ws.connections.business_central_custom
        dataverse = ws.connections.dataverse
        lists = custom.read("customerPriceLists")
        levels = dataverse.read("pricelevels", select=["pricelevelid", "name",
                                                       "_transactioncurrencyid_value"])
        currencies = dataverse.read("transactioncurrencies",
                                    select=["transactioncurrencyid", "isocurrencycode"])
        iso = dict(currencies.select("transactioncurrencyid", "isocurrencycode").iter_rows())
        level_by_name = {name: (lid, iso[cur]) for lid, name, cur in levels.iter_rows()}
        coupled = ws.store.couplings_frame("CUSTPRCGRP-PRICE")
        assert coupled.height == lists.height
        assert set(coupled["crm_key"].to_list()) == set(lists["code"].to_list())
        for code, currency in lists.select("code", "currencyCode").iter_rows():
            assert level_by_name[code][1] == currency
        per_group = lists.group_by("priceGroupCode").len()
        assert per_group["len"].max() >= 2, "CRONUS has a group priced in two currencies"

        prices = custom.read("salesPrices", filter=GROUP_PRICES)
        assert prices.height > 0
        ours = coupled["crm_id"].to_list()
        items = dataverse.read("productpricelevels", select=[
            "_pricelevelid_value", "_productid_value", "_uomid_value", "amount"]).filter(
            pl.col("_pricelevelid_value").is_in(ours))
        assert items.height == prices.height
        products = dict(dataverse.read("products", select=["productid", "productnumber"])
                        .iter_rows())
        units = dataverse.read("uoms", select=["uomid", "name", "isschedulebaseuom"])
        unit_names = dict(units.select("uomid", "name").iter_rows())
        level_names = {lid: name for name, (lid, _) in level_by_name.items()}
        in_crm = {(level_names[lvl], products[prod], unit_names[uom], round(amount, 2))
                  for lvl, prod, uom, amount in items.iter_rows()}
        in_bc = {(code, item, unit, round(price, 2)) for code, item, unit, price in prices.select(
            "priceListCode", "itemNumber", "unitOfMeasureCode", "unitPrice").iter_rows()}
        assert in_crm == in_bc
        others = custom.read("salesPrices", filter="salesType ne 'Customer Price Group'")
        assert others.height > 0, "prices of other sales types exist and stay out of CRM"

        again = ws.sync_all(["CUSTPRCGRP-PRICE", "SALESPRC-PRODUCTPRICE"])
        assert again.counts["inserted"] == again.counts["modified"] == 0


def test_a_changed_price_is_written_and_its_dates_are_named_in_the_preview(
        workspace_dir: Path, fresh_sandbox: Sandbox) -> None:
    with open_workspace(workspace_dir) as ws:
        ws.sync_all()
        custom = ws.connections.business_central_custom
        price = custom.read("salesPrices", filter=GROUP_PRICES).row(0, named=True)
        # salesPrices is read-only for clients (BC maintains price list lines): the change
        # is put in as BC would make it, through the sandbox's admin helper.
        info = fresh_sandbox.info
        changed = fresh_sandbox.bc_admin(
            "PATCH", f"{info.bc_custom_api_url}companies({info.company_id})/salesPrices("
                     f"{price['id']})", {"unitPrice": round(price["unitPrice"] + 10, 2),
                                         "startingDate": "2027-01-01"},
            headers={"If-Match": "*"})
        assert changed.status_code == 200, changed.text
        plan = ws.preview("SALESPRC-PRODUCTPRICE")
        row = plan.records.filter(pl.col("nav_id") == price["id"].lower())
        assert row["action"].cast(pl.Utf8).item() == "update_crm"
        assert "starting and ending dates are not synchronized" in row["message"].item()
        assert "2027-01-01" in row["message"].item()
        change = plan.field_changes.filter((pl.col("record_id") == row["record_id"].item())
                                           & (pl.col("field") == "amount"))
        assert float(change["new_value"].item()) == round(price["unitPrice"] + 10, 2)
        result = ws.apply(plan).result("SALESPRC-PRODUCTPRICE")
        assert result.count("modified") == 1
        crm_id = ws.store.couplings_frame("SALESPRC-PRODUCTPRICE", nav_ids=[price["id"].lower()])
        amount = ws.connections.dataverse.read_by_ids(
            "productpricelevels", "productpricelevelid", [crm_id["crm_id"].item()],
            select=["amount"])["amount"].item()
        assert round(amount, 2) == round(price["unitPrice"] + 10, 2)
