"""The sets and columns a NAV 2018 connection computes from published pages
(``connectors/nav_views.py``), over real loopback HTTP against the sandbox's NAV pages.

``customerPriceLists`` is derived from the SalesPrices and CustomerPriceGroups pages and must
equal what Business Central's custom API serves for the same data (the sandbox serves both
views of one store); ``salesPrices`` gains ``Price_List_Code`` and ``Sales_Price_Id``, which
the server does not know and must never see."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from nav_crm_ops import open_workspace
from nav_crm_ops.config import DEFAULT_NAV_PAGES
from nav_crm_ops.connectors.auth import BasicAuth
from nav_crm_ops.connectors.models import WriteOp
from nav_crm_ops.connectors.nav_odata import NavODataV4
from nav_crm_ops.connectors.nav_views import SalesPriceKey, enum_member, option_caption
from nav_crm_ops.connectors.odata import F, RawFilter
from nav_crm_ops.exceptions import NotFoundError, ValidationError
from nav_crm_ops.sandbox import Sandbox
from nav_crm_ops.sandbox.nav import nav_credentials

GROUP_PRICES = "Sales_Type eq 'Customer_x0020_Price_x0020_Group'"
WHOLESALE_EUR = "1896-S/Customer Price Group:WHOLESALE/EUR/PCS/min 5"


class Recording(httpx.BaseTransport):
    """The real HTTP transport, keeping the URL of every request sent."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.urls: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.urls.append(str(request.url))
        return self.inner.handle_request(request)


@pytest.fixture
def wire() -> Recording:
    return Recording()


@pytest.fixture
def nav(fresh_sandbox: Sandbox, wire: Recording) -> Iterator[NavODataV4]:
    """A NAV connection on the sandbox's pages (LCY read from page 118 General Ledger
    Setup, published as GeneralLedgerSetup)."""
    info = fresh_sandbox.info
    credentials = nav_credentials(info)
    client = NavODataV4(info.nav_url, info.company_name,
                        BasicAuth(credentials.user, credentials.access_key),
                        pages=DEFAULT_NAV_PAGES, transport=wire)
    with client:
        yield client


def test_price_lists_are_those_the_bc_custom_api_serves(nav: NavODataV4,
                                                        workspace_dir: Path) -> None:
    derived = nav.read("customerPriceLists", etag=True)
    with open_workspace(workspace_dir) as bc_ws:
        served = bc_ws.connections.business_central_custom.read("customerPriceLists")
    as_bc = {(r["code"], r["priceGroupCode"], r["currencyCode"], r["displayName"],
              r["priceCount"]) for r in served.iter_rows(named=True)}
    as_nav = {(r["Code"], r["Customer_Price_Group"], r["Currency_Code"], r["Description"],
               r["Price_Count"]) for r in derived.iter_rows(named=True)}
    assert as_nav == as_bc
    assert ("WHOLESALE-EUR", "WHOLESALE", "EUR", "Wholesale customers (EUR)", 3) in as_nav
    assert ("WHOLESALE", "WHOLESALE", "GBP", "Wholesale customers (GBP)", 4) in as_nav
    assert derived["@odata.etag"].n_unique() == derived.height
    # Filters are evaluated here; a single list is read by its code.
    eur = nav.read("customerPriceLists", select=["Code"], filter=F("Currency_Code").eq("EUR"))
    assert eur["Code"].to_list() == ["WHOLESALE-EUR"]
    picked = nav.read_by_ids("customerPriceLists", "Code", ["RETAIL", "NOPE"],
                             select=["Code", "Description"])
    assert picked.rows() == [("RETAIL", "Retail customers (GBP)")]
    assert nav.get("customerPriceLists", "EXPORT-USD")["Description"] == "Export customers (USD)"
    with pytest.raises(NotFoundError):
        nav.get("customerPriceLists", "EXPORT")
    with pytest.raises(ValidationError, match="comparisons of its columns"):
        nav.read("customerPriceLists", filter=RawFilter("Currency_Code eq 'EUR'"))
    with pytest.raises(ValidationError, match="no column Name"):
        nav.read("customerPriceLists", select=["Name"])


def test_a_price_list_follows_its_prices(nav: NavODataV4) -> None:
    """A price in a new currency adds a list; a changed price changes the list's version."""
    before = {r["Code"]: r["@odata.etag"] for r in nav.read(
        "customerPriceLists", etag=True).iter_rows(named=True)}
    nav.http.request("POST", nav.entity_path("salesPrices"), json={
        "Item_No": "1906-S", "Sales_Type": "Customer_x0020_Price_x0020_Group",
        "Sales_Code": "RETAIL", "Currency_Code": "USD", "Unit_of_Measure_Code": "PCS",
        "Unit_Price": 300})
    after = {r["Code"]: r for r in nav.read("customerPriceLists", etag=True).iter_rows(named=True)}
    assert set(after) - set(before) == {"RETAIL-USD"}
    assert after["RETAIL-USD"]["Description"] == "Retail customers (USD)"
    assert after["RETAIL-USD"]["Price_Count"] == 1
    assert all(after[c]["@odata.etag"] == before[c] for c in before)


def test_sales_price_ids_read_well_are_stable_and_read_back(nav: NavODataV4) -> None:
    columns = ["Sales_Price_Id", "Price_List_Code", "Unit_Price"]
    first = nav.read("salesPrices", select=columns, etag=True)
    again = nav.read("salesPrices", select=columns)
    assert first.columns == [*columns, "@odata.etag"]
    ids = first["Sales_Price_Id"].to_list()
    assert len(set(ids)) == len(ids) == nav.read("salesPrices", select=["Item_No"]).height
    assert again["Sales_Price_Id"].to_list() == ids
    rows = {r["Sales_Price_Id"]: r for r in first.iter_rows(named=True)}
    assert rows[WHOLESALE_EUR]["Price_List_Code"] == "WHOLESALE-EUR"
    assert rows["1896-S/Customer Price Group:WHOLESALE/LCY/PCS/min 5"]["Price_List_Code"] == \
        "WHOLESALE"
    assert rows["1896-S/Customer Price Group:EXPORT/USD/PCS/from 2026-01-01"][
        "Price_List_Code"] == "EXPORT-USD"
    assert rows["1896-S/Customer:10000/LCY/PCS"]["Price_List_Code"] == ""
    assert rows["1928-S/All Customers/LCY/PCS"]["Unit_Price"] == 52

    wanted = [WHOLESALE_EUR, "1928-S/All Customers/LCY/PCS", "1000/Customer Price Group:X/LCY/PCS"]
    found = nav.read_by_ids("salesPrices", "Sales_Price_Id", wanted,
                            select=["Sales_Price_Id", "Unit_Price"], etag=True)
    assert sorted(found["Sales_Price_Id"].to_list()) == sorted(wanted[:2])
    by_list = nav.read_by_ids("salesPrices", "Price_List_Code", ["WHOLESALE-EUR"],
                              select=["Item_No"], filter=GROUP_PRICES)
    assert sorted(by_list["Item_No"].to_list()) == ["1896-S", "1900-S", "1920-S"]
    record = nav.get("salesPrices", WHOLESALE_EUR)
    assert (record["Unit_Price"], record["Sales_Price_Id"]) == (1010, WHOLESALE_EUR)


def test_computed_columns_never_reach_the_server(nav: NavODataV4, wire: Recording) -> None:
    with pytest.raises(ValidationError, match="Sales_Price_Id"):
        nav.http.request("GET", nav.entity_path("salesPrices") + "?$select=Sales_Price_Id")
    wire.urls.clear()
    nav.read("salesPrices", select=["Sales_Price_Id", "Price_List_Code"], filter=GROUP_PRICES)
    nav.read_by_ids("salesPrices", "Sales_Price_Id", [WHOLESALE_EUR])
    nav.read("customerPriceLists")
    assert wire.urls and not [u for u in wire.urls if "Sales_Price_Id" in u
                              or "Price_List_Code" in u or "customerPriceLists" in u]
    sent = len(wire.urls)
    with pytest.raises(ValidationError, match="computed by the connector"):
        nav.read("salesPrices", filter="Price_List_Code eq 'RETAIL'")
    assert len(wire.urls) == sent


def test_derived_sets_and_computed_columns_are_not_written(nav: NavODataV4,
                                                           wire: Recording) -> None:
    with pytest.raises(ValidationError, match="cannot be written"):
        nav.write([WriteOp.create("customerPriceLists", {"Code": "NEW"})])
    key = SalesPriceKey.parse(WHOLESALE_EUR).page_key()
    with pytest.raises(ValidationError, match="Price_List_Code is computed"):
        nav.write([WriteOp.update("salesPrices", str(key), {"Price_List_Code": "RETAIL"})])
    assert wire.urls == [] and nav.stats.writes == 0


def test_the_local_currency_comes_from_general_ledger_setup(fresh_sandbox: Sandbox) -> None:
    """LCY is read once from page 118; when that page is not published the error says what
    to publish."""
    info = fresh_sandbox.info
    credentials = nav_credentials(info)
    auth = BasicAuth(credentials.user, credentials.access_key)
    with NavODataV4(info.nav_url, info.company_name, auth, pages=DEFAULT_NAV_PAGES) as nav:
        lists = nav.read("customerPriceLists").rows(named=True)
        assert nav.views.local_currency == "GBP"
        assert {"Code": "WHOLESALE", "Currency_Code": "GBP"}.items() <= next(
            r for r in lists if r["Code"] == "WHOLESALE").items()
    unpublished = {**DEFAULT_NAV_PAGES, "generalLedgerSetup": "GLSetup"}
    with (NavODataV4(info.nav_url, info.company_name, auth, pages=unpublished) as nav,
          pytest.raises(ValidationError, match="publish page 118 General Ledger Setup")):
        nav.read("customerPriceLists")


def test_sales_price_ids_round_trip() -> None:
    odd = SalesPriceKey("A/B%", "Customer Price Group", "G:1", "LCY", "", "2026-01-31", "2.5",
                        "V")
    assert odd.text == "A%2FB%25/Customer Price Group:G:1/%4CCY//from 2026-01-31/min 2.5/variant V"
    assert SalesPriceKey.parse(odd.text) == odd
    readable = SalesPriceKey("ÆBLE 1", "Customer", "10000", "EUR", "KASSE")
    assert readable.text == "ÆBLE 1/Customer:10000/EUR/KASSE"
    assert SalesPriceKey.parse(readable.text) == readable
    blank = SalesPriceKey("1000", "All Customers")
    assert SalesPriceKey.parse(blank.text) == blank and blank.price_list_code == ""
    assert SalesPriceKey.parse(WHOLESALE_EUR).page_key()["Minimum_Quantity"] == 5
    with pytest.raises(ValidationError, match="no sales price id"):
        SalesPriceKey.parse("1000/RETAIL")
    assert enum_member("Customer Price Group") == "Customer_x0020_Price_x0020_Group"
    assert option_caption(enum_member("G/L Account")) == "G/L Account"
    assert enum_member("") == "_x0020_" and option_caption("_x0020_") == ""
