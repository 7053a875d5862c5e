"""Customer price lists of the navcrm/sync custom API: one per price group and currency.

The reference integration turns a customer price group into one CRM price list per currency
of the group's customer-price-group sales prices, so a list's natural key is the group code
for local-currency prices and ``<GROUP>-<CURRENCY>`` otherwise. ``salesPrices.priceListCode``
names the list a price belongs to with the same rule; both are computed, never written. A
list's ``currencyCode`` shows the LCY code for local-currency prices (a sales price keeps LCY
blank), as the v2.0 API shows it on customers and documents, so a client resolves every list's
currency by its ISO code.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from typing import Any, Final

__all__ = [
    "CUSTOMER_PRICE_GROUP",
    "PRICE_LIST_COLUMNS",
    "price_list_code",
    "price_list_id",
    "price_lists",
]

CUSTOMER_PRICE_GROUP: Final = "Customer Price Group"
# Wire name → column type, in the order the API shows them.
PRICE_LIST_COLUMNS: Final[dict[str, str]] = {
    "id": "guid", "code": "string", "priceGroupCode": "string", "currencyCode": "string",
    "displayName": "string", "priceCount": "int", "lastModifiedDateTime": "datetime",
}
_ID_NAMESPACE: Final = uuid.UUID("6f1d2c8e-3b4a-5e6f-9a0b-1c2d3e4f5a6b")


def price_list_code(sales_type: str | None, sales_code: str | None,
                    currency_code: str | None) -> str:
    """The price list a sales price belongs to; empty unless it is a price group's price."""
    if sales_type != CUSTOMER_PRICE_GROUP or not sales_code:
        return ""
    return f"{sales_code}-{currency_code}" if currency_code else sales_code


def price_list_id(code: str) -> str:
    """A stable id for a computed list, so clients can couple it like a stored record."""
    return str(uuid.uuid5(_ID_NAMESPACE, f"customerPriceLists/{code.upper()}"))


def price_lists(groups: Iterable[Mapping[str, Any]], prices: Iterable[Mapping[str, Any]],
                local_currency: str) -> list[dict[str, Any]]:
    """One row per group and currency of its group prices (a group without any: LCY).

    ``local_currency`` is the company's LCY code, shown for the local-currency lists.

    ``lastModifiedDateTime`` is the latest of the group's and its prices' stamps, so a price
    change shows up in an incremental read of the lists; ``_version`` feeds the etag.
    """
    by_list: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for price in prices:
        if price.get("salesType") == CUSTOMER_PRICE_GROUP and price.get("salesCode"):
            key = (str(price["salesCode"]), str(price.get("currencyCode") or ""))
            by_list.setdefault(key, []).append(price)
    rows: list[dict[str, Any]] = []
    for group in groups:
        group_code = str(group["code"])
        currencies = sorted(currency for code, currency in by_list if code == group_code)
        for currency in currencies or [""]:
            members = by_list.get((group_code, currency), [])
            rows.append(_price_list_row(group, currency, members, local_currency))
    return rows


def _price_list_row(group: Mapping[str, Any], currency: str,
                    members: list[Mapping[str, Any]], local_currency: str) -> dict[str, Any]:
    """The list of ``group``'s prices in ``currency`` ("" for LCY)."""
    group_code = str(group["code"])
    code = price_list_code(CUSTOMER_PRICE_GROUP, group_code, currency)
    stamps = [str(group["lastModifiedDateTime"] or "")]
    stamps += [str(p["lastModifiedDateTime"] or "") for p in members]
    versions = [int(group["_version"]), *(int(p["_version"]) for p in members)]
    label = group.get("description") or group_code
    return {
        "id": price_list_id(code), "code": code, "priceGroupCode": group_code,
        "currencyCode": currency or local_currency,
        "displayName": f"{label} ({currency or local_currency})",
        "priceCount": len(members), "lastModifiedDateTime": max(stamps),
        "_version": max(versions) * 1000 + len(members),
    }
