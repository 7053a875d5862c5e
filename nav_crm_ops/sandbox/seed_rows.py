"""Building blocks of the seed data shared by the ``cronus`` and ``scale:N`` seeds: deterministic
ids, the :class:`Loader` (rows written with deterministic stamps, counted per entity), and the
records built from the CRONUS tables (customers, contacts, documents, items and prices,
accounts)."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from .cronus import business_central as bc
from .cronus import dataverse as dv
from .price_lists import price_list_code
from .store import SandboxStore, format_timestamp

DATAVERSE = "dataverse"
BUSINESS_CENTRAL = "business_central"
SEED_NAMESPACE = uuid.UUID("5b0e5c8e-1f0a-4d7b-9a52-6a1f3c0d2e47")
_NAMESPACE_BYTES = SEED_NAMESPACE.bytes
BASE_TIME = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)

Row = dict[str, Any]


def seed_id(service: str, entity: str, natural_key: str) -> str:
    """Deterministic GUID of a seeded record: ``uuid5(SEED_NAMESPACE, service/entity/key)``.

    Computed directly from SHA-1 (same result as :func:`uuid.uuid5`, several times faster,
    which matters for ``scale:100000``).
    """
    digest = bytearray(hashlib.sha1(_NAMESPACE_BYTES + f"{service}/{entity}/{natural_key}"
                                    .encode(), usedforsecurity=False).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50
    digest[8] = (digest[8] & 0x3F) | 0x80
    text = digest.hex()
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


@dataclass
class Ids:
    """GUIDs of the reference records that master data points to."""

    users: dict[str, str]
    crm_currencies: dict[str, str]
    unit_group: str  # the products' unit group and its units by name
    units: dict[str, str]
    bc_currencies: dict[str, str]
    bc_units: dict[str, str]
    payment_terms: dict[str, str]
    shipment_methods: dict[str, str]


def dv_id(entity: str, key: str) -> str:
    return seed_id(DATAVERSE, entity, key)


BC_ID_SCOPE: ContextVar[str] = ContextVar("bc_id_scope", default="")
"""Which BC company the seed is loading (``""``: the sandbox's first). Business Central's
SystemIds are random, so two companies never share one; a further company's seeded records
get ids of their own too (:func:`bc_ids_of_company`)."""


def bc_id(entity: str, key: str) -> str:
    scope = BC_ID_SCOPE.get()
    return seed_id(BUSINESS_CENTRAL, entity, f"{key}@{scope}" if scope else key)


@contextmanager
def bc_ids_of_company(scope: str) -> Iterator[None]:
    """Seed BC records of the company ``scope`` (see :data:`BC_ID_SCOPE`)."""
    token = BC_ID_SCOPE.set(scope)
    try:
        yield
    finally:
        BC_ID_SCOPE.reset(token)


def owned(owner: str) -> Row:
    """Owner + audit lookups of a record a person created in CRM."""
    return {"ownerid": owner, "owneridtype": "systemuser", "createdby": owner,
            "modifiedby": owner}


def customer_row(ids: Ids, customer: bc.Customer, customer_id: str,
                  balance_due: float) -> Row:
    foreign = customer.currency != bc.LOCAL_CURRENCY
    return {
        "id": customer_id, "number": customer.number,
        "displayName": customer.name, "type": "Company", "addressLine1": customer.address,
        "addressLine2": "", "city": customer.city, "state": "", "country": customer.country,
        "postalCode": customer.postal_code, "phoneNumber": customer.phone,
        "email": customer.email, "website": customer.website,
        "salespersonCode": customer.salesperson, "balanceDue": balance_due,
        "creditLimit": customer.credit_limit, "taxLiable": customer.country == "GB",
        "currencyId": ids.bc_currencies[customer.currency] if foreign else bc.EMPTY_GUID,
        "currencyCode": customer.currency,
        "paymentTermsId": ids.payment_terms[customer.payment_terms],
        "shipmentMethodId": ids.shipment_methods[customer.shipment_method],
        "blocked": customer.blocked,
    }


def contact_row(number: str, name: str, company: bc.Customer | None, email: str,
                 phone: str, *, person: tuple[str, str] | None = None, job_title: str = "",
                 key_prefix: str = "") -> Row:
    """A BC contact: a company (``person`` None) or a person (first name, surname)."""
    first_name, surname = person or ("", "")
    return {
        "id": bc_id("contacts", f"{key_prefix}{number}"), "number": number,
        "type": "Person" if person else "Company", "displayName": name,
        "firstName": first_name, "middleName": "", "surname": surname, "jobTitle": job_title,
        "companyNumber": company_contact_number(company) if company else "",
        "companyName": company.name if company else "",
        "businessRelation": "Customer" if company else "",
        "addressLine1": company.address if company else "", "addressLine2": "",
        "city": company.city if company else "", "state": "",
        "country": company.country if company else "",
        "postalCode": company.postal_code if company else "", "phoneNumber": phone,
        "mobilePhoneNumber": "", "email": email,
        "website": company.website if company and not person else "",
        "searchName": name.upper(), "privacyBlocked": False,
    }


def company_contact_number(customer: bc.Customer) -> str:
    return f"CT{customer.number}"


def business_relation_row(contact: Row, customer_id: str) -> Row:
    """The contact business relation (``contactsInformation``) of a company contact and its
    customer, as BC keeps it for every customer created with a customer relation code."""
    return {
        "id": bc_id("contactsInformation", contact["id"]), "contactId": contact["id"],
        "contactNumber": contact["number"], "contactName": contact["displayName"],
        "contactType": contact["type"], "relatedId": customer_id, "relatedType": "Customer",
    }


def tax_percent(customer: bc.Customer) -> float:
    return 20.0 if customer.country == "GB" else 0.0


class Sellable(NamedTuple):
    """An item or resource as a document line refers to it."""

    id: str
    unit: str
    description: str


def document_rows(ids: Ids, kind: str, document: bc.SalesDocument, customer: bc.Customer,
                   customer_id: str, sellables: Mapping[str, Sellable],
                   key_prefix: str = "") -> tuple[Row, list[Row]]:
    """A sales order or posted invoice header and its lines (amounts computed from lines)."""
    entity = "salesOrders" if kind == "order" else "salesInvoices"
    line_entity = "salesOrderLines" if kind == "order" else "salesInvoiceLines"
    document_id = bc_id(entity, f"{key_prefix}{document.number}")
    tax = tax_percent(customer)
    lines: list[Row] = []
    for sequence, line in enumerate(document.lines, start=1):
        sellable = sellables[line.number]
        net = round(line.quantity * line.unit_price, 2)
        tax_amount = round(net * tax / 100, 2)
        shipped = line.quantity if kind == "invoice" else 0.0
        lines.append({
            "id": bc_id(line_entity, f"{key_prefix}{document.number}/{sequence}"),
            "documentId": document_id, "sequence": sequence * 10000,
            "itemId": sellable.id if line.line_type == "Item" else bc.EMPTY_GUID,
            "lineType": line.line_type, "lineObjectNumber": line.number,
            "description": sellable.description,
            "unitOfMeasureId": ids.bc_units.get(sellable.unit, bc.EMPTY_GUID),
            "unitOfMeasureCode": sellable.unit,
            "quantity": line.quantity, "unitPrice": line.unit_price, "discountAmount": 0.0,
            "discountPercent": 0.0, "amountExcludingTax": net, "taxPercent": tax,
            "totalTaxAmount": tax_amount, "amountIncludingTax": round(net + tax_amount, 2),
            "netAmount": net, "shipmentDate": document.document_date,
            "shippedQuantity": shipped, "invoicedQuantity": shipped,
        })
    net_total = round(sum(r["amountExcludingTax"] for r in lines), 2)
    tax_total = round(sum(r["totalTaxAmount"] for r in lines), 2)
    foreign = customer.currency != bc.LOCAL_CURRENCY
    header: Row = {
        "id": document_id, "number": document.number,
        "externalDocumentNumber": document.external_document,
        "customerId": customer_id, "customerNumber": customer.number,
        "customerName": customer.name,
        "currencyId": ids.bc_currencies[customer.currency] if foreign else bc.EMPTY_GUID,
        "currencyCode": customer.currency, "pricesIncludeTax": False,
        "paymentTermsId": ids.payment_terms[customer.payment_terms],
        "shipmentMethodId": ids.shipment_methods[customer.shipment_method],
        "salesperson": customer.salesperson, "discountAmount": 0.0,
        "totalAmountExcludingTax": net_total, "totalTaxAmount": tax_total,
        "totalAmountIncludingTax": round(net_total + tax_total, 2),
        "sellToAddressLine1": customer.address, "sellToCity": customer.city,
        "sellToCountry": customer.country, "sellToPostCode": customer.postal_code,
        "phoneNumber": customer.phone, "email": customer.email,
    }
    if kind == "order":
        header.update({"orderDate": document.document_date,
                       "postingDate": document.document_date,
                       "requestedDeliveryDate": add_days(document.document_date, 14),
                       "fullyShipped": False, "status": "Open"})
    else:
        header.update({"invoiceDate": document.document_date,
                       "postingDate": document.document_date,
                       "dueDate": add_days(document.document_date, 30),
                       "status": "Open", "remainingAmount": round(net_total + tax_total, 2)})
    return header, lines


def add_days(day: str, days: int) -> str:
    return (datetime.fromisoformat(day) + timedelta(days=days)).date().isoformat()


def account_row(ids: Ids, account: dv.Account, account_id: str) -> Row:
    currency = ids.crm_currencies[account.currency]
    return {
        "accountid": account_id, "name": account.name,
        "accountnumber": account.account_number or None,
        "customertypecode": account.customer_type, "telephone1": account.phone,
        "emailaddress1": account.email, "websiteurl": account.website or None,
        "address1_line1": account.address or None, "address1_city": account.city,
        "address1_postalcode": account.postal_code or None,
        "address1_country": account.country, "paymenttermscode": account.payment_terms,
        "creditlimit": account.credit_limit, "transactioncurrencyid": currency,
        "statecode": 1 if account.inactive else 0, "statuscode": 2 if account.inactive else 1,
        **owned(ids.users[account.owner]),
    }


class Loader:
    """Writes rows through ``insert_many`` with deterministic timestamps; counts per entity."""

    def __init__(self, store: SandboxStore) -> None:
        self.store = store
        self.tick = 0
        self.counts: dict[str, int] = {}
        self.skipped: dict[str, set[str]] = {}
        self.missing: list[str] = []

    def add(self, service: str, entity: str, rows: Sequence[Row]) -> None:
        qualified = f"{service}:{entity}"
        try:
            ent = self.store.entity(qualified)
        except KeyError:
            if qualified not in self.missing:
                self.missing.append(qualified)
            return
        if not rows:
            return
        known = set(ent.column_names)
        present: set[str] = set()
        for row in rows:
            present.update(row)
        unknown = present - known
        if unknown:
            self.skipped.setdefault(qualified, set()).update(unknown)
            rows = [{k: v for k, v in row.items() if k in known} for row in rows]
        start = BASE_TIME + timedelta(seconds=self.tick)
        self.tick += len(rows)
        stamp_columns = [c for c in (ent.created_column, ent.modified_column) if c]
        for offset, row in enumerate(rows):
            stamp = format_timestamp(start + timedelta(seconds=offset))
            for column in stamp_columns:
                row.setdefault(column, stamp)
        name = f"{ent.service}:{ent.name}"
        self.counts[name] = self.counts.get(name, 0) + self.store.insert_many(qualified, rows)


def load_items_and_prices(loader: Loader, ids: Ids, items: Sequence[bc.Item],
                           prices: Sequence[bc.SalesPrice]) -> dict[str, Sellable]:
    """Items, resources, price groups and sales prices; returns what lines may sell."""
    sellables: dict[str, Sellable] = {}
    item_rows: list[Row] = []
    for item in items:
        item_id = bc_id("items", item.number)
        sellables[item.number] = Sellable(item_id, item.base_unit, item.name)
        item_rows.append({
            "id": item_id, "number": item.number,
            "displayName": item.name, "displayName2": "", "type": item.item_type,
            "itemCategoryCode": item.category, "blocked": item.blocked, "gtin": "",
            "inventory": item.inventory, "unitPrice": item.unit_price,
            "priceIncludesTax": False, "unitCost": item.unit_cost, "taxGroupCode": "",
            "baseUnitOfMeasureId": ids.bc_units[item.base_unit],
            "baseUnitOfMeasureCode": item.base_unit,
        })
    loader.add(BUSINESS_CENTRAL, "items", item_rows)
    resource_rows: list[Row] = []
    for res in bc.RESOURCES:
        res_id = bc_id("resources", res.number)
        sellables[res.number] = Sellable(res_id, res.base_unit, res.name)
        resource_rows.append({
            "id": res_id, "number": res.number, "name": res.name,
            "type": res.resource_type, "baseUnitOfMeasureCode": res.base_unit,
            "unitPrice": res.unit_price, "unitCost": res.unit_cost, "blocked": False,
        })
    loader.add(BUSINESS_CENTRAL, "resources", resource_rows)
    loader.add(BUSINESS_CENTRAL, "customerPriceGroups", [
        {"id": bc_id("customerPriceGroups", g.code), "code": g.code,
         "description": g.description, "priceIncludesVat": False, "allowInvoiceDisc": True}
        for g in bc.PRICE_GROUPS])
    loader.add(BUSINESS_CENTRAL, "salesPrices", [
        {"id": bc_id("salesPrices", "/".join((p.item, p.sales_type, p.sales_code, p.currency,
                                            p.starting_date, str(p.minimum_quantity)))),
         "itemNumber": p.item, "salesType": p.sales_type,
         "salesCode": p.sales_code,
         "currencyCode": "" if p.currency == bc.LOCAL_CURRENCY else p.currency,
         "startingDate": p.starting_date or None, "endingDate": p.ending_date or None,
         "unitPrice": p.unit_price, "minimumQuantity": p.minimum_quantity,
         "unitOfMeasureCode": p.unit,
         "priceListCode": price_list_code(
             p.sales_type, p.sales_code, "" if p.currency == bc.LOCAL_CURRENCY else p.currency)}
        for p in prices])
    return sellables
