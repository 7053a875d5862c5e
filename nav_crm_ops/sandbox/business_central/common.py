"""Constants, errors, the parsed request path and small helpers of the emulated Business
Central API."""

from __future__ import annotations

import base64
import logging
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ..odata.errors import ODataError
from ..odata.paging import decode_state, encode_state, int_option
from ..odata.replies import JSON_UTF8, Reply
from ..schema import EntityDef

log = logging.getLogger("nav_crm_ops.sandbox.businesscentral")
"""The logger the service has always used (its former module name)."""

EMPTY_GUID = "00000000-0000-0000-0000-000000000000"
MAX_PAGE_SIZE = 20000
MAX_BATCH_OPERATIONS = 100
LOCAL_CURRENCY = "GBP"
CUSTOM_API = "navcrm/sync/v1.0"
STANDARD_API = "v2.0"
TAX_PERCENT = 20.0

TYPE_NAMES = {
    "companies": "company", "customers": "customer", "contacts": "contact", "items": "item",
    "currencies": "currency", "unitsOfMeasure": "unitOfMeasure",
    "salespeoplePurchasers": "salespersonPurchaser", "paymentTerms": "paymentTerm",
    "shipmentMethods": "shipmentMethod", "countriesRegions": "countryRegion",
    "salesOrders": "salesOrder", "salesOrderLines": "salesOrderLine",
    "salesInvoices": "salesInvoice", "salesInvoiceLines": "salesInvoiceLine",
    "resources": "resource", "customerPriceGroups": "customerPriceGroup",
    "salesPrices": "salesPrice", "customerFinancialDetails": "customerFinancialDetail",
    "customerStatistics": "customerStatistic", "customerPriceLists": "customerPriceList",
    "contactsInformation": "contactInformation",
}
# Fields checked against another table when not blank: field → (entity, code column).
TABLE_RELATIONS = {
    "country": ("countriesRegions", "code", "Country/Region Code", "Country/Region"),
    "salespersonCode": ("salespeoplePurchasers", "code", "Salesperson Code",
                        "Salesperson/Purchaser"),
    "currencyCode": ("currencies", "code", "Currency Code", "Currency"),
}
NUMBER_PREFIXES = {"customers": "C", "contacts": "CT", "items": "ITEM", "salesOrders": "S-ORD",
                   "salesInvoices": "S-INV", "resources": "R"}
# Customer fields BC copies to its company contact (on create and on every change).
CUSTOMER_TO_CONTACT = ("addressLine1", "addressLine2", "city", "state", "country", "postalCode",
                       "phoneNumber", "email", "website")
SEGMENT = re.compile(r"^(?P<name>[A-Za-z][\w.]*)(?:\((?P<key>[^()]*)\))?$")

class BCError(ODataError):
    """An error answered in BC's shape: ``{"error":{"code","message"}}``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(status, code, message)
        self.correlation_id = str(uuid.uuid4())

    def reply(self) -> Reply:
        return Reply(self.status, {"error": {
            "code": self.code,
            "message": f"{self.message}  CorrelationId:  {self.correlation_id}."}},
            {"content-type": JSON_UTF8})


def not_found_uri(segment: str) -> BCError:
    return BCError(404, "BadRequest_NotFound",
                   f"The request URI is not valid. The segment '{segment}' is not a resource "
                   "of this API.")


def unknown_property(name: str, entity_set: str) -> BCError:
    return BCError(400, "BadRequest_NotFound",
                   f"Could not find a property named '{name}' on type "
                   f"'{type_name(entity_set)}'.")


def count_reply(count: int) -> Reply:
    """The answer to ``…/$count``."""
    return Reply(200, str(count).encode(), {"content-type": "text/plain"})


def read_only(method: str, entity_set: str) -> BCError:
    return BCError(405, "BadRequest_MethodNotAllowed",
                   f"'{method}' requests for '{entity_set}' are not allowed: the entity is "
                   "read-only.")


def etag_for(version: int | str) -> str:
    """BC-style weak etag: ``W/"JzQ0O…"`` (base64 of ``'<n>;<digits>;00;'``)."""
    digits = f"{version}1"
    inner = f"'{len(digits)};{digits};00;'"
    return 'W/"' + base64.b64encode(inner.encode()).decode() + '"'


def type_name(entity_set: str) -> str:
    return f"Microsoft.NAV.{TYPE_NAMES.get(entity_set, entity_set)}"


def today_iso() -> str:
    return datetime.now(UTC).date().isoformat()


@dataclass(frozen=True)
class Target:
    """A parsed request path."""

    api: str                      # "v2.0" or the custom API path
    api_root: str                 # public URL of the API root, ending with "/"
    entity_set: str | None = None  # None: the companies collection / company itself
    key: str | None = None
    parent_set: str | None = None
    parent_key: str | None = None
    action: str | None = None
    count: bool = False
    batch: bool = False
    company: str | None = None


LINE_COMPUTED = ("discountAmount", "amountExcludingTax", "totalTaxAmount", "amountIncludingTax",
                 "netAmount")
LINE_RESOLVED = ("itemId", "lineObjectNumber", "description", "unitOfMeasureCode",
                 "unitOfMeasureId", "unitPrice", "taxPercent")


def default_order(entity: EntityDef) -> list[tuple[str, bool]]:
    """BC lists records in primary-key order (No., Code, document lines by line number)."""
    if entity.parent:
        return [("documentId", False), ("sequence", False)]
    natural = entity.extra.get("natural_key")
    if natural:
        return [(natural, False)]
    if entity.extra.get("default_order"):
        return list(entity.extra["default_order"])
    if entity.name == "salesPrices":
        return [("itemNumber", False), ("salesType", False), ("salesCode", False)]
    return []


def line_amounts(values: dict[str, Any]) -> None:
    quantity = float(values.get("quantity") or 0.0)
    price = float(values.get("unitPrice") or 0.0)
    percent = float(values.get("discountPercent") or 0.0)
    gross = round(quantity * price, 2)
    discount = round(gross * percent / 100, 2)
    net = round(gross - discount, 2)
    tax = round(net * float(values.get("taxPercent") or 0.0) / 100, 2)
    values.update({"discountAmount": discount, "amountExcludingTax": net, "netAmount": net,
                   "totalTaxAmount": tax, "amountIncludingTax": round(net + tax, 2)})


def clean_key(key: str) -> str:
    text = key.strip()
    if text.lower().startswith("id="):
        text = text[3:]
    return text.strip("'")


def bc_int_option(params: Mapping[str, str], name: str) -> int | None:
    """``$top`` / ``$skip``: None when absent or blank."""
    return int_option(params, name, lambda text: BCError(
        400, "BadRequest", f"Invalid value '{text}' for {name}: use a non-negative integer."),
        blank_is_none=True)


def encode_token(state: Mapping[str, Any]) -> str:
    return encode_state(state, pad=False)


def decode_token(token: str) -> dict[str, Any]:
    try:
        state = decode_state(token)
    except ValueError:
        state = None
    if not isinstance(state, dict) or not isinstance(state.get("after"), list):
        raise BCError(400, "BadRequest", "The $skiptoken is not valid; follow "
                                         "@odata.nextLink exactly as returned.")
    return state
