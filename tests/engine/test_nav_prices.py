"""NAV 2018 end to end: CUSTPRCGRP-PRICE and SALESPRC-PRODUCTPRICE on a ``profile =
"nav2018"`` workspace, over real loopback HTTP. NAV has no price-list table: the connection
derives the price lists from the SalesPrices and CustomerPriceGroups pages
(``connectors/nav_views.py``), and they must come out in CRM as Business Central online makes
them (the BC custom API of the same sandbox is the reference); the price list items carry the
NAV prices with product, unit and list through the couplings. A second run writes nothing, a
price changed on NAV reaches CRM, and a price in a new currency makes a new list."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

from nav_crm_ops import open_workspace
from nav_crm_ops.connectors.nav_views import SalesPriceKey
from nav_crm_ops.engine.workspace import Workspace

PRICES = ["CURRENCY", "UNIT OF MEASURE", "ITEM-PRODUCT", "CUSTPRCGRP-PRICE",
          "SALESPRC-PRODUCTPRICE"]
GROUP_PRICES = "Sales_Type eq 'Customer_x0020_Price_x0020_Group'"
WHOLESALE_EUR = "1896-S/Customer Price Group:WHOLESALE/EUR/PCS/min 5"


def _open(nav_workspace: Path) -> Workspace:
    """The NAV workspace (its LCY code read from page 118 General Ledger Setup)."""
    return open_workspace(nav_workspace)


def _writes(ws: Workspace) -> int:
    return sum(c.http.stats.writes for c in (ws.connections.dataverse,
                                             ws.connections.business_central))


def _crm_lists(ws: Workspace) -> dict[str, tuple[str, str, str]]:
    """CRM price list id -> (name, description, currency ISO code) of the coupled lists."""
    dataverse = ws.connections.dataverse
    iso = dict(dataverse.read("transactioncurrencies", select=[
        "transactioncurrencyid", "isocurrencycode"]).iter_rows())
    levels = dataverse.read("pricelevels", select=["pricelevelid", "name", "description",
                                                   "_transactioncurrencyid_value"])
    coupled = set(ws.store.couplings_frame("CUSTPRCGRP-PRICE")["crm_id"].to_list())
    return {i: (n, d, iso[c]) for i, n, d, c in levels.iter_rows() if i in coupled}


def _crm_items(ws: Workspace) -> set[tuple[str, str, str, float]]:
    """(list name, product number, unit name, amount) of the items of the coupled lists."""
    dataverse = ws.connections.dataverse
    lists = {i: name for i, (name, _, _) in _crm_lists(ws).items()}
    products = dict(dataverse.read("products", select=["productid", "productnumber"]).iter_rows())
    units = dict(dataverse.read("uoms", select=["uomid", "name"]).iter_rows())
    items = dataverse.read("productpricelevels", select=[
        "_pricelevelid_value", "_productid_value", "_uomid_value", "amount"]).filter(
        pl.col("_pricelevelid_value").is_in(list(lists)))
    return {(lists[lvl], products[prod], units[uom], round(amount, 2))
            for lvl, prod, uom, amount in items.iter_rows()}


def _nav_prices(ws: Workspace) -> set[tuple[str, str, str, float]]:
    prices = ws.connections.business_central.read("salesPrices", filter=GROUP_PRICES, select=[
        "Price_List_Code", "Item_No", "Unit_of_Measure_Code", "Unit_Price"])
    return {(code, item, unit, round(float(price), 2)) for code, item, unit, price in
            prices.iter_rows()}


def _bc_online_lists(workspace_dir: Path) -> set[tuple[str, str, str]]:
    """(code, display name, currency) of the lists BC online serves for the same data."""
    with open_workspace(workspace_dir) as bc_ws:
        served = bc_ws.connections.business_central_custom.read("customerPriceLists")
    return {(r["code"], r["displayName"], r["currencyCode"]) for r in served.iter_rows(named=True)}


def _assert_finished(ws: Workspace, report: Any) -> None:
    for name in PRICES:
        result = report.result(name)
        assert result.status == "finished", (name, result.message, ws.errors(name))
    assert ws.errors().filter(pl.col("mapping").is_in(PRICES[3:])).height == 0


def _change_price(ws: Workspace, record_id: str, unit_price: float) -> None:
    """A person changes a price on NAV: PATCH of the page record with its etag."""
    nav = ws.connections.business_central
    key = SalesPriceKey.parse(record_id).page_key()
    path = nav.record_path("salesPrices", key)
    etag = nav.http.request("GET", path).json()["@odata.etag"]
    nav.http.request("PATCH", path, json={"Unit_Price": unit_price}, headers={"If-Match": etag})


def test_price_lists_and_prices_sync_from_nav_pages(nav_workspace: Path,
                                                    workspace_dir: Path) -> None:
    expected_lists = _bc_online_lists(workspace_dir)
    with _open(nav_workspace) as ws:
        assert {"CUSTPRCGRP-PRICE", "SALESPRC-PRODUCTPRICE"} <= set(ws.mappings.names)
        report = ws.sync_all(PRICES)
        _assert_finished(ws, report)
        assert report.result("CUSTPRCGRP-PRICE").count("inserted") == len(expected_lists) == 4
        assert {(n, d, c) for n, d, c in _crm_lists(ws).values()} == expected_lists
        assert ("WHOLESALE-EUR", "Wholesale customers (EUR)", "EUR") in expected_lists
        nav_prices = _nav_prices(ws)
        assert len(nav_prices) == 17 and _crm_items(ws) == nav_prices
        coupled = ws.store.couplings_frame("SALESPRC-PRODUCTPRICE")["nav_id"].to_list()
        assert WHOLESALE_EUR in coupled and len(set(coupled)) == len(coupled) == 17

        before = _writes(ws)
        again = ws.sync_all(PRICES)
        assert again.counts["inserted"] == again.counts["modified"] == 0
        assert again.failed == 0 and _writes(ws) == before
        assert ws.store.couplings_frame("SALESPRC-PRODUCTPRICE").height == 17


def test_a_price_changed_on_nav_reaches_crm_and_reads_well_in_the_preview(
        nav_workspace: Path) -> None:
    with _open(nav_workspace) as ws:
        _assert_finished(ws, ws.sync_all(PRICES))
        _change_price(ws, WHOLESALE_EUR, 1025.5)

        plan = ws.preview("SALESPRC-PRODUCTPRICE")
        row = plan.records.filter(pl.col("nav_id") == WHOLESALE_EUR)
        assert row["action"].cast(pl.Utf8).item() == "update_crm"
        assert "minimum quantity is not synchronized" in row["message"].item()
        assert "(Minimum_Quantity 5)" in row["message"].item()
        assert plan.records.filter(pl.col("action").cast(pl.Utf8) != "unchanged").height == 1
        result = ws.apply(plan).result("SALESPRC-PRODUCTPRICE")
        assert result.count("modified") == 1 and result.count("failed") == 0
        assert ("WHOLESALE-EUR", "1896-S", "PCS", 1025.5) in _crm_items(ws)
        assert _crm_items(ws) == _nav_prices(ws)


def test_a_price_in_a_new_currency_makes_its_price_list(nav_workspace: Path) -> None:
    with _open(nav_workspace) as ws:
        _assert_finished(ws, ws.sync_all(PRICES))
        nav = ws.connections.business_central
        nav.http.request("POST", nav.entity_path("salesPrices"), json={
            "Item_No": "1906-S", "Sales_Type": "Customer_x0020_Price_x0020_Group",
            "Sales_Code": "RETAIL", "Currency_Code": "USD", "Unit_of_Measure_Code": "PCS",
            "Unit_Price": 300})
        report = ws.sync_all(PRICES)
        _assert_finished(ws, report)
        assert report.result("CUSTPRCGRP-PRICE").count("inserted") == 1
        assert report.result("SALESPRC-PRODUCTPRICE").count("inserted") == 1
        assert ("RETAIL-USD", "Retail customers (USD)", "USD") in _crm_lists(ws).values()
        assert ("RETAIL-USD", "1906-S", "PCS", 300.0) in _crm_items(ws)
        assert "1906-S/Customer Price Group:RETAIL/USD/PCS" in ws.store.couplings_frame(
            "SALESPRC-PRODUCTPRICE")["nav_id"].to_list()
