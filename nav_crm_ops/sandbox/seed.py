"""Demo data for the sandbox: the CRONUS company (``cronus``) and a generated load (``scale:N``).

Everything is deterministic: keys are ``uuid5`` of a fixed namespace and a natural key, and
created/modified timestamps count up one second per row from :data:`BASE_TIME` (January 2026,
in the past), so two loads of the same spec produce identical rows.

The local currency (LCY) of CRONUS International Ltd. is GBP, as in the GB demo database; CRM's
base currency is GBP too and CRM starts with GBP, USD and EUR only (the CURRENCY mapping creates
the other BC currencies). ``scale:N`` adds generated customers, contacts, items, prices, orders
and name-matching CRM accounts to the same reference data. Both give every customer a company
contact ``CT<customer number>`` and the business relation between them (``contactsInformation``).

Deliberate dirty records of ``cronus`` (each makes a sync step fail or skip in a known way):

===========================================  =========================================  ==============================================
Record                                       What happens                               How to fix it
===========================================  =========================================  ==============================================
CRM account "Consolidated Messenger ...",    CUSTOMER (CRM → BC) create fails with      Shorten the account name to ≤ 100 characters
customer type Customer, name of 114 chars    BC ``Application_StringExceededLength``    (or map it through a truncating transform)
                                             (displayName max 100)
BC customer 70000 Beef House, payment        CUSTOMER (BC → CRM): CRM has no such       Nothing: the mapping creates the option
terms "21 DAYS"                              ``paymenttermscode`` option                (``on_missing: create``); with ``record`` it
                                                                                        fails until the option is added
BC customers of salesperson BD (Bart         CUSTOMER (BC → CRM) cannot set the owner   Enable the CRM user, or give the customers
Duncan), whose CRM user is disabled          (the SALESPEOPLE filter leaves BD          another salesperson
                                             uncoupled)
CRM account "Poseidon Marine Supplies",      CUSTOMER (CRM → BC) create fails: BC has   Correct the country in CRM (or add the
``address1_country`` "Atlantis"              no country/region "Atlantis"               country/region in BC)
BC customer 72000 Elkhorn Airport,           CUSTOMER (BC → CRM) cannot set the owner   Create/couple a CRM user for TD, or map the
salesperson TD Tim Doherty                   (TD has no CRM user / no coupling)         owner to a default user
BC contact CT200014 Jim Bell, person         CONTACT (BC → CRM) leaves it out: the      Link the contact to a company in BC
without a company                            mapping takes persons with a company only
CRM contacts "Mark Hanson" and "M. Hanson"   Match-based coupling on e-mail finds two   Merge the duplicates in CRM or couple one
share mark.hanson@cannongroup.example        CRM hits → ambiguous: both fail, neither   by hand
                                             is copied to BC
CRM accounts "The Cannon Group PLC",         No account number: full sync would         Run match-based coupling on name
"Selangorian Ltd.", "deerfield graphics      create duplicates; they must be coupled    (case-insensitive) before the first sync
company", "Autohaus Mielberg KG"             by name (one differs only in case)
CRM orders ORD-1001/1002/1003 in state       Picked up by the sales-order transfer;     ORD-1002: couple/create the customer
Submitted; ORD-1002's account "Fabrikam      ORD-1002 fails "couple the customer        (CUSTOMER CRM → BC) first, then retry
Residences" is not a NAV customer            first"
===========================================  =========================================  ==============================================

Also present to exercise filters: a blocked BC customer (74000) and item (1936-S), CRM
prospects/competitor/partner accounts and an inactive account (Wingtip Toys), a disabled CRM
user (Bart Duncan), sales prices of sales type Customer / All Customers (ignored by the
price-list mapping) and a price group (WHOLESALE) with prices in two currencies.
"""

from __future__ import annotations

import hashlib
import random
import re
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, NamedTuple, Protocol

from ..exceptions import SandboxError
from .cronus import business_central as bc
from .cronus import dataverse as dv
from .price_lists import price_list_code
from .store import KeyExistsError, SandboxStore, format_timestamp

__all__ = [
    "BASE_TIME",
    "SEED_NAMESPACE",
    "SeedSpec",
    "SeedSummary",
    "SeedTarget",
    "load_seed",
    "parse_seed_spec",
    "seed_id",
]

DATAVERSE = "dataverse"
BUSINESS_CENTRAL = "business_central"
SEED_NAMESPACE = uuid.UUID("5b0e5c8e-1f0a-4d7b-9a52-6a1f3c0d2e47")
_NAMESPACE_BYTES = SEED_NAMESPACE.bytes
BASE_TIME = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
VALID_FORMS = "'cronus', 'scale:N' or 'scale:N,seed=S' (N, S non-negative integers, N ≥ 1)"
_SCALE_RE = re.compile(r"^scale:(\d+)(?:,seed=(\d+))?$")

Row = dict[str, Any]


class SeedTarget(Protocol):
    """What the seed needs to know about the sandbox (``SandboxInfo`` satisfies it)."""

    @property
    def company_id(self) -> str: ...

    @property
    def company_name(self) -> str: ...

    @property
    def client_id(self) -> str: ...


@dataclass(frozen=True)
class SeedSpec:
    """A parsed seed spec: ``kind`` "cronus" or "scale", ``size`` customers, generator ``seed``."""

    kind: Literal["cronus", "scale"]
    size: int = 0
    seed: int = 0

    def __str__(self) -> str:
        if self.kind == "cronus":
            return "cronus"
        return f"scale:{self.size},seed={self.seed}"


@dataclass(frozen=True)
class SeedSummary:
    """What a seed loaded: rows per entity (``service:name``), and what the schema lacked.

    ``skipped_columns`` lists seed columns the entity definitions do not have (not loaded);
    ``missing_entities`` lists entities the store does not define. Both should be empty.
    """

    spec: str
    counts: Mapping[str, int]
    seconds: float
    skipped_columns: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    missing_entities: tuple[str, ...] = ()

    def count(self, entity: str) -> int:
        """Rows loaded into ``entity`` (``service:name``; 0 when none)."""
        return self.counts.get(entity, 0)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


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


def parse_seed_spec(spec: str) -> SeedSpec:
    """Parse ``cronus`` / ``scale:N`` / ``scale:N,seed=S``; anything else is a SandboxError."""
    text = (spec or "").strip().lower().replace(" ", "")
    if text == "cronus":
        return SeedSpec("cronus")
    match = _SCALE_RE.match(text)
    if match is None or int(match.group(1)) < 1:
        raise SandboxError(f"unknown sandbox seed {spec!r}: use {VALID_FORMS}")
    return SeedSpec("scale", int(match.group(1)), int(match.group(2) or 0))


def load_seed(store: SandboxStore, spec: str, info: SeedTarget) -> SeedSummary:
    """Load the data of ``spec`` into an empty ``store`` in one transaction; returns counts.

    Raises SandboxError for an unknown spec or when the store already holds seeded rows
    (nothing is loaded then).
    """
    parsed = parse_seed_spec(spec)
    started = time.perf_counter()
    loader = _Loader(store)
    try:
        with store.transaction():
            ids = _load_reference(loader, info)
            if parsed.kind == "cronus":
                _load_cronus(loader, ids)
            else:
                _load_scale(loader, ids, parsed.size, parsed.seed)
    except KeyExistsError as exc:
        raise SandboxError(f"cannot load seed {spec!r}: the sandbox already holds seeded rows "
                           f"({exc}); reset the sandbox (store.reset()) before seeding") from exc
    return SeedSummary(
        spec=str(parsed), counts=dict(loader.counts),
        seconds=round(time.perf_counter() - started, 3),
        skipped_columns={name: tuple(sorted(cols))
                         for name, cols in sorted(loader.skipped.items())},
        missing_entities=tuple(loader.missing),
    )


# --------------------------------------------------------------------------- loading


class _Loader:
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


@dataclass
class _Ids:
    """GUIDs of the reference records that master data points to."""

    users: dict[str, str]
    crm_currencies: dict[str, str]
    unit_group: str  # the products' unit group and its units by name
    units: dict[str, str]
    bc_currencies: dict[str, str]
    bc_units: dict[str, str]
    payment_terms: dict[str, str]
    shipment_methods: dict[str, str]


def _dv(entity: str, key: str) -> str:
    return seed_id(DATAVERSE, entity, key)


def _bc(entity: str, key: str) -> str:
    return seed_id(BUSINESS_CENTRAL, entity, key)


def _owned(owner: str) -> Row:
    """Owner + audit lookups of a record a person created in CRM."""
    return {"ownerid": owner, "owneridtype": "systemuser", "createdby": owner,
            "modifiedby": owner}


def _load_reference(loader: _Loader, info: SeedTarget) -> _Ids:
    """Company, currencies, units, salespeople, terms, users: shared by every seed."""
    company = info.company_id
    bc_currencies = {c.code: _bc("currencies", c.code) for c in bc.CURRENCIES}
    bc_units = {u.code: _bc("unitsOfMeasure", u.code) for u in bc.UNITS_OF_MEASURE}
    terms = {t.code: _bc("paymentTerms", t.code) for t in bc.PAYMENT_TERMS}
    methods = {m.code: _bc("shipmentMethods", m.code) for m in bc.SHIPMENT_METHODS}
    loader.add(BUSINESS_CENTRAL, "companies", [{
        "id": company, "name": info.company_name, "displayName": info.company_name,
        "businessProfileId": "", "systemVersion": "24.0.16410.18040",
    }])
    loader.add(BUSINESS_CENTRAL, "currencies", [
        {"id": bc_currencies[c.code], "code": c.code,
         "displayName": c.name, "symbol": c.symbol, "amountDecimalPlaces": "2:2",
         "amountRoundingPrecision": 0.01}
        for c in bc.CURRENCIES])
    loader.add(BUSINESS_CENTRAL, "unitsOfMeasure", [
        {"id": bc_units[u.code], "code": u.code, "displayName": u.name,
         "internationalStandardCode": u.iso_code, "symbol": ""}
        for u in bc.UNITS_OF_MEASURE])
    loader.add(BUSINESS_CENTRAL, "salespeoplePurchasers", [
        {"id": _bc("salespeoplePurchasers", s.code), "code": s.code,
         "displayName": s.name, "email": s.email, "email2": "", "phoneNo": s.phone,
         "jobTitle": s.job_title, "commisionPercent": 0.0, "privacyBlocked": False,
         "blocked": False}
        for s in bc.SALESPEOPLE])
    loader.add(BUSINESS_CENTRAL, "paymentTerms", [
        {"id": terms[t.code], "code": t.code, "displayName": t.name,
         "dueDateCalculation": t.due_date_formula,
         "discountDateCalculation": "8D" if t.discount_percent else "",
         "discountPercent": t.discount_percent, "calculateDiscountOnCreditMemos": False}
        for t in bc.PAYMENT_TERMS])
    loader.add(BUSINESS_CENTRAL, "shipmentMethods", [
        {"id": methods[m.code], "code": m.code, "displayName": m.name}
        for m in bc.SHIPMENT_METHODS])
    loader.add(BUSINESS_CENTRAL, "countriesRegions", [
        {"id": _bc("countriesRegions", c.code), "code": c.code,
         "displayName": c.name, "addressFormat": "City+Post Code"}
        for c in bc.COUNTRIES])

    business_unit = _dv("businessunit", dv.BUSINESS_UNIT)
    client_id = info.client_id.lower()
    integration_user = _dv("systemuser", f"application:{client_id}")
    users = {u.code: _dv("systemuser", u.code) for u in dv.USERS}
    loader.add(DATAVERSE, "businessunit", [{"businessunitid": business_unit,
                                            "name": dv.BUSINESS_UNIT}])
    loader.add(DATAVERSE, "team", [{"teamid": _dv("team", dv.BUSINESS_UNIT),
                                    "name": dv.BUSINESS_UNIT, "businessunitid": business_unit,
                                    "teamtype": 0,
                                    "description": "Default team of the business unit"}])
    user_rows: list[Row] = [{
        "systemuserid": integration_user, "fullname": dv.INTEGRATION_USER_NAME,
        "firstname": "#", "lastname": "NAV CRM Ops Integration",
        "domainname": f"{client_id}@{dv.EMAIL_DOMAIN}", "internalemailaddress": None,
        "title": None, "mobilephone": None, "applicationid": client_id,
        "accessmode": 4, "isdisabled": False, "islicensed": False,
        "businessunitid": business_unit,
    }]
    for user in dv.USERS:
        email = f"{user.first_name}.{user.last_name}@{dv.EMAIL_DOMAIN}".lower()
        user_rows.append({
            "systemuserid": users[user.code], "fullname": f"{user.first_name} {user.last_name}",
            "firstname": user.first_name, "lastname": user.last_name, "domainname": email,
            "internalemailaddress": email, "title": user.title,
            "mobilephone": f"+44 7700 900 {100 + len(user_rows):03d}", "applicationid": None,
            "accessmode": 0, "isdisabled": user.disabled, "islicensed": not user.disabled,
            "businessunitid": business_unit,
        })
    loader.add(DATAVERSE, "systemuser", user_rows)
    crm_currencies = {c.code: _dv("transactioncurrency", c.code) for c in dv.CURRENCIES}
    loader.add(DATAVERSE, "transactioncurrency", [
        {"transactioncurrencyid": crm_currencies[c.code], "isocurrencycode": c.code,
         "currencyname": c.name, "currencysymbol": c.symbol, "exchangerate": c.exchange_rate,
         "currencyprecision": 2, "statecode": 0, "statuscode": 1}
        for c in dv.CURRENCIES])
    groups = {g.name: _dv("uomschedule", g.name) for g in dv.UNIT_GROUPS}
    base_units = {g.name: _dv("uom", f"{g.name}/{g.base_unit}") for g in dv.UNIT_GROUPS}
    loader.add(DATAVERSE, "uomschedule", [{
        "uomscheduleid": groups[g.name], "name": g.name, "baseuomname": g.base_unit,
        "description": g.description, "statecode": 0, "statuscode": 1}
        for g in dv.UNIT_GROUPS])
    # Each group's base unit, as the service creates it with the group.
    loader.add(DATAVERSE, "uom", [
        {"uomid": base_units[g.name], "name": g.base_unit, "uomscheduleid": groups[g.name],
         "quantity": 1.0, "baseuom": base_units[g.name], "isschedulebaseuom": True}
        for g in dv.UNIT_GROUPS])
    unit_group = groups[dv.PRODUCT_UNIT_GROUP]
    units = {dv.PRODUCT_UNIT_GROUP: base_units[dv.PRODUCT_UNIT_GROUP]}
    return _Ids(
        users=users, crm_currencies=crm_currencies, unit_group=unit_group, units=units,
        bc_currencies=bc_currencies, bc_units=bc_units, payment_terms=terms,
        shipment_methods=methods,
    )


# --------------------------------------------------------------------------- BC rows


def _customer_row(ids: _Ids, customer: bc.Customer, customer_id: str,
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


def _contact_row(number: str, name: str, company: bc.Customer | None, email: str,
                 phone: str, *, person: tuple[str, str] | None = None, job_title: str = "",
                 key_prefix: str = "") -> Row:
    """A BC contact: a company (``person`` None) or a person (first name, surname)."""
    first_name, surname = person or ("", "")
    return {
        "id": _bc("contacts", f"{key_prefix}{number}"), "number": number,
        "type": "Person" if person else "Company", "displayName": name,
        "firstName": first_name, "middleName": "", "surname": surname, "jobTitle": job_title,
        "companyNumber": _company_contact_number(company) if company else "",
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


def _company_contact_number(customer: bc.Customer) -> str:
    return f"CT{customer.number}"


def _business_relation_row(contact: Row, customer_id: str) -> Row:
    """The contact business relation (``contactsInformation``) of a company contact and its
    customer, as BC keeps it for every customer created with a customer relation code."""
    return {
        "id": _bc("contactsInformation", contact["id"]), "contactId": contact["id"],
        "contactNumber": contact["number"], "contactName": contact["displayName"],
        "contactType": contact["type"], "relatedId": customer_id, "relatedType": "Customer",
    }


def _tax_percent(customer: bc.Customer) -> float:
    return 20.0 if customer.country == "GB" else 0.0


class _Sellable(NamedTuple):
    """An item or resource as a document line refers to it."""

    id: str
    unit: str
    description: str


def _document_rows(ids: _Ids, kind: str, document: bc.SalesDocument, customer: bc.Customer,
                   customer_id: str, sellables: Mapping[str, _Sellable],
                   key_prefix: str = "") -> tuple[Row, list[Row]]:
    """A sales order or posted invoice header and its lines (amounts computed from lines)."""
    entity = "salesOrders" if kind == "order" else "salesInvoices"
    line_entity = "salesOrderLines" if kind == "order" else "salesInvoiceLines"
    document_id = _bc(entity, f"{key_prefix}{document.number}")
    tax = _tax_percent(customer)
    lines: list[Row] = []
    for sequence, line in enumerate(document.lines, start=1):
        sellable = sellables[line.number]
        net = round(line.quantity * line.unit_price, 2)
        tax_amount = round(net * tax / 100, 2)
        shipped = line.quantity if kind == "invoice" else 0.0
        lines.append({
            "id": _bc(line_entity, f"{key_prefix}{document.number}/{sequence}"),
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
                       "requestedDeliveryDate": _add_days(document.document_date, 14),
                       "fullyShipped": False, "status": "Open"})
    else:
        header.update({"invoiceDate": document.document_date,
                       "postingDate": document.document_date,
                       "dueDate": _add_days(document.document_date, 30),
                       "status": "Open", "remainingAmount": round(net_total + tax_total, 2)})
    return header, lines


def _add_days(day: str, days: int) -> str:
    return (datetime.fromisoformat(day) + timedelta(days=days)).date().isoformat()


def _load_items_and_prices(loader: _Loader, ids: _Ids, items: Sequence[bc.Item],
                           prices: Sequence[bc.SalesPrice]) -> dict[str, _Sellable]:
    """Items, resources, price groups and sales prices; returns what lines may sell."""
    sellables: dict[str, _Sellable] = {}
    item_rows: list[Row] = []
    for item in items:
        item_id = _bc("items", item.number)
        sellables[item.number] = _Sellable(item_id, item.base_unit, item.name)
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
        res_id = _bc("resources", res.number)
        sellables[res.number] = _Sellable(res_id, res.base_unit, res.name)
        resource_rows.append({
            "id": res_id, "number": res.number, "name": res.name,
            "type": res.resource_type, "baseUnitOfMeasureCode": res.base_unit,
            "unitPrice": res.unit_price, "unitCost": res.unit_cost, "blocked": False,
        })
    loader.add(BUSINESS_CENTRAL, "resources", resource_rows)
    loader.add(BUSINESS_CENTRAL, "customerPriceGroups", [
        {"id": _bc("customerPriceGroups", g.code), "code": g.code,
         "description": g.description, "priceIncludesVat": False, "allowInvoiceDisc": True}
        for g in bc.PRICE_GROUPS])
    loader.add(BUSINESS_CENTRAL, "salesPrices", [
        {"id": _bc("salesPrices", "/".join((p.item, p.sales_type, p.sales_code, p.currency,
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


# --------------------------------------------------------------------------- cronus


def _load_cronus(loader: _Loader, ids: _Ids) -> None:
    customers = {c.number: c for c in bc.CUSTOMERS}
    customer_ids = {c.number: _bc("customers", c.number) for c in bc.CUSTOMERS}
    sellables = _load_items_and_prices(loader, ids, bc.ITEMS, bc.SALES_PRICES)

    headers: dict[str, list[Row]] = {"order": [], "invoice": []}
    lines: dict[str, list[Row]] = {"order": [], "invoice": []}
    balance: dict[str, float] = {}
    for kind, documents in (("order", bc.SALES_ORDERS), ("invoice", bc.SALES_INVOICES)):
        for document in documents:
            customer = customers[document.customer]
            header, document_lines = _document_rows(ids, kind, document, customer,
                                                    customer_ids[customer.number], sellables)
            headers[kind].append(header)
            lines[kind].extend(document_lines)
            if kind == "invoice":
                balance[customer.number] = round(
                    balance.get(customer.number, 0.0) + header["remainingAmount"], 2)

    loader.add(BUSINESS_CENTRAL, "customers", [
        _customer_row(ids, c, customer_ids[c.number], balance.get(c.number, 0.0))
        for c in bc.CUSTOMERS])
    contact_rows = [_contact_row(_company_contact_number(c), c.name, c, c.email, c.phone)
                    for c in bc.CUSTOMERS]
    relation_rows = [_business_relation_row(contact, customer_ids[c.number])
                     for contact, c in zip(contact_rows, bc.CUSTOMERS, strict=True)]
    contact_rows.extend(
        _contact_row(p.number, f"{p.first_name} {p.surname}", customers.get(p.company_number),
                     p.email, p.phone, person=(p.first_name, p.surname), job_title=p.job_title)
        for p in bc.PERSON_CONTACTS)
    loader.add(BUSINESS_CENTRAL, "contacts", contact_rows)
    loader.add(BUSINESS_CENTRAL, "contactsInformation", relation_rows)
    loader.add(BUSINESS_CENTRAL, "salesOrders", headers["order"])
    loader.add(BUSINESS_CENTRAL, "salesOrderLines", lines["order"])
    loader.add(BUSINESS_CENTRAL, "salesInvoices", headers["invoice"])
    loader.add(BUSINESS_CENTRAL, "salesInvoiceLines", lines["invoice"])
    _load_cronus_crm(loader, ids)


def _account_row(ids: _Ids, account: dv.Account, account_id: str) -> Row:
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
        **_owned(ids.users[account.owner]),
    }


def _load_cronus_crm(loader: _Loader, ids: _Ids) -> None:
    account_ids = {a.name: _dv("account", a.name) for a in dv.ACCOUNTS}
    owners = {a.name: ids.users[a.owner] for a in dv.ACCOUNTS}
    loader.add(DATAVERSE, "account", [_account_row(ids, a, account_ids[a.name])
                                      for a in dv.ACCOUNTS])
    contact_rows: list[Row] = []
    for index, c in enumerate(dv.CONTACTS):
        owner = owners.get(c.account, ids.users["AH"])
        contact_rows.append({
            "contactid": _dv("contact", f"{index}/{c.first_name} {c.last_name}"),
            "firstname": c.first_name, "lastname": c.last_name,
            "fullname": f"{c.first_name} {c.last_name}", "emailaddress1": c.email,
            "telephone1": c.phone or None, "jobtitle": c.job_title or None,
            "parentcustomerid": account_ids[c.account] if c.account else None,
            "parentcustomeridtype": "account" if c.account else None,
            "statecode": 0, "statuscode": 1, **_owned(owner),
        })
    loader.add(DATAVERSE, "contact", contact_rows)

    gbp = ids.crm_currencies[dv.BASE_CURRENCY]
    price_list = _dv("pricelevel", dv.PRICE_LIST)
    piece = ids.units["PCS"]
    product_ids = {p.number: _dv("product", p.number) for p in dv.PRODUCTS}
    loader.add(DATAVERSE, "pricelevel", [{
        "pricelevelid": price_list, "name": dv.PRICE_LIST, "transactioncurrencyid": gbp,
        "begindate": "2026-01-01", "enddate": None, "statecode": 0, "statuscode": 100001}])
    loader.add(DATAVERSE, "product", [
        {"productid": product_ids[p.number], "productnumber": p.number, "name": p.name,
         "price": p.price, "standardcost": p.cost, "currentcost": p.cost,
         "quantityonhand": 0.0, "defaultuomscheduleid": ids.unit_group,
         "defaultuomid": piece, "pricelevelid": price_list,
         "producttypecode": 3 if p.number.startswith("CRM-") else 1,
         "transactioncurrencyid": gbp, "statecode": 0, "statuscode": 1}
        for p in dv.PRODUCTS])
    loader.add(DATAVERSE, "productpricelevel", [
        {"productpricelevelid": _dv("productpricelevel", f"{dv.PRICE_LIST}/{p.number}"),
         "pricelevelid": price_list, "productid": product_ids[p.number], "uomid": piece,
         "amount": p.price, "pricingmethodcode": 1, "transactioncurrencyid": gbp}
        for p in dv.PRODUCTS])

    prices = {p.number: p for p in dv.PRODUCTS}
    order_rows: list[Row] = []
    detail_rows: list[Row] = []
    for order in dv.ORDERS:
        order_id = _dv("salesorder", order.number)
        total = 0.0
        for number, line in enumerate(order.lines, start=1):
            amount = round(line.quantity * line.price, 2)
            total += amount
            detail_rows.append({
                "salesorderdetailid": _dv("salesorderdetail", f"{order.number}/{number}"),
                "salesorderid": order_id, "productid": product_ids[line.product],
                "uomid": piece, "productdescription": prices[line.product].name,
                "isproductoverridden": False, "quantity": line.quantity,
                "priceperunit": line.price, "manualdiscountamount": 0.0, "tax": 0.0,
                "baseamount": amount, "extendedamount": amount,
                "lineitemnumber": number, "transactioncurrencyid": gbp,
            })
        submitted = order.state == dv.ORDER_SUBMITTED
        order_rows.append({
            "salesorderid": order_id, "ordernumber": order.number, "name": order.name,
            "customerid": account_ids[order.account], "customeridtype": "account",
            "pricelevelid": price_list, "transactioncurrencyid": gbp,
            "totalamount": round(total, 2), "totallineitemamount": round(total, 2),
            "totaltax": 0.0, "discountamount": 0.0,
            "submitdate": "2026-11-16" if submitted else None,
            "requestdeliveryby": "2026-12-15", "nav_submittedtobackoffice": False,
            "statecode": order.state, "statuscode": order.status,
            **_owned(owners[order.account]),
        })
    loader.add(DATAVERSE, "salesorder", order_rows)
    loader.add(DATAVERSE, "salesorderdetail", detail_rows)

    loader.add(DATAVERSE, "opportunity", [
        {"opportunityid": _dv("opportunity", o.name), "name": o.name,
         "customerid": account_ids[o.account], "customeridtype": "account",
         "parentaccountid": account_ids[o.account], "estimatedvalue": o.value,
         "estimatedclosedate": o.close_date, "closeprobability": o.probability,
         "transactioncurrencyid": gbp, "statecode": 0, "statuscode": 1,
         **_owned(owners[o.account])}
        for o in dv.OPPORTUNITIES])
    loader.add(DATAVERSE, "incident", [
        {"incidentid": _dv("incident", c.ticket), "ticketnumber": c.ticket, "title": c.title,
         "customerid": account_ids[c.account], "customeridtype": "account",
         "prioritycode": c.priority, "caseorigincode": 1, "statecode": 0, "statuscode": 1,
         **_owned(owners[c.account])}
        for c in dv.CASES])
    loader.add(DATAVERSE, "quote", [
        {"quoteid": _dv("quote", q.number), "quotenumber": q.number, "name": q.name,
         "customerid": account_ids[q.account], "customeridtype": "account",
         "pricelevelid": price_list, "transactioncurrencyid": gbp, "totalamount": q.amount,
         "effectivefrom": "2026-11-01", "effectiveto": "2026-12-31", "statecode": 0,
         "statuscode": 1, **_owned(owners[q.account])}
        for q in dv.QUOTES])


# --------------------------------------------------------------------------- scale:N

_NAME_FIRST = (
    "Northwind", "Blue Yonder", "Fourth Coffee", "Lucerne", "Margie's", "Trey", "Wide World",
    "Graphic", "Humongous", "Southridge", "Woodgrove", "City Power", "Bellows", "Datum",
    "Lamna", "Tailwind", "Best For You", "VanArsdel", "Fincher", "Parnell", "Kingsley",
    "Ashdown", "Harbour", "Oakfield", "Riverside", "Highgate", "Westbury", "Elmstead",
    "Copperfield", "Brightwater", "Stonebridge", "Foxley", "Marlow", "Greystone", "Hawthorn",
    "Redwood", "Silverline", "Thornbury", "Whitcombe", "Ambleside",
)
_NAME_SECOND = (
    "Traders", "Airlines", "Furniture", "Interiors", "Offices", "Design", "Logistics",
    "Hotels", "Systems", "Partners", "Supplies", "Workspace", "Studios", "Engineering",
    "Consulting", "Retail", "Outfitters", "Builders", "Print", "Foods", "Health", "Labs",
    "Media", "Solutions", "Estates",
)
_NAME_SUFFIX = ("Ltd.", "PLC", "Group", "& Co.", "Inc.", "GmbH", "BV", "AB", "A/S", "Limited")
_FIRST_NAMES = ("Alex", "Sam", "Jordan", "Taylor", "Morgan", "Casey", "Jamie", "Robin",
                "Chris", "Pat", "Lee", "Drew", "Kim", "Avery", "Quinn", "Reese")
_LAST_NAMES = ("Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Johnson", "Davies",
               "Patel", "Wright", "Walker", "Evans", "Thomas", "Roberts", "Green", "Hall",
               "Wood", "Clarke", "Hughes", "Lewis")
_CITIES = (("London", "GB", "EC1A 1BB"), ("Manchester", "GB", "M1 1AE"),
           ("Birmingham", "GB", "B1 1AA"), ("Leeds", "GB", "LS1 1UR"),
           ("Glasgow", "GB", "G1 1XQ"), ("Bristol", "GB", "BS1 4DJ"),
           ("Hamburg", "DE", "20095"), ("München", "DE", "80331"),
           ("Amsterdam", "NL", "1012 JS"), ("Antwerpen", "BE", "2000"),
           ("København", "DK", "1050"), ("Stockholm", "SE", "111 20"),
           ("Oslo", "NO", "0150"), ("Chicago", "US", "IL 60601"),
           ("Toronto", "CA", "M5H 2N2"), ("Paris", "FR", "75001"))
_COUNTRY_CURRENCY = {"GB": "GBP", "DE": "EUR", "NL": "EUR", "BE": "EUR", "FR": "EUR",
                     "DK": "DKK", "SE": "SEK", "NO": "NOK", "US": "USD", "CA": "CAD"}
_PAYMENT_CODES = ("30 DAYS", "30 DAYS", "30 DAYS", "1M(8D)", "60 DAYS", "14 DAYS", "45 DAYS")
_SHIPMENT_CODES = ("EXW", "CIF", "FOB", "PICKUP")
_SALESPEOPLE = ("AH", "JR", "PS", "HR")  # salespeople with an active CRM user
_ITEM_WORDS = ("Desk", "Chair", "Table", "Cabinet", "Lamp", "Shelf", "Pedestal",
               "Whiteboard", "Bicycle", "Wheel", "Saddle", "Locker")
_ITEM_STYLES = ("ATHENS", "PARIS", "LONDON", "ANTWERP", "ROME", "TOKYO", "MEXICO", "MUNICH",
                "SEOUL", "SYDNEY", "OSLO", "LISBON", "DUBLIN", "VIENNA")
_COLOURS = ("black", "blue", "red", "green", "yellow", "grey", "white", "oak")


def _company_name(index: int, first: Sequence[str], second: Sequence[str]) -> str:
    """A unique company name for each index (mixed radix over the word lists)."""
    combos = len(first) * len(second) * len(_NAME_SUFFIX)
    rest, round_no = index % combos, index // combos
    a, rest = divmod(rest, len(second) * len(_NAME_SUFFIX))
    b, c = divmod(rest, len(_NAME_SUFFIX))
    name = f"{first[a]} {second[b]} {_NAME_SUFFIX[c]}"
    return f"{name} {round_no + 1}" if round_no else name


def _load_scale(loader: _Loader, ids: _Ids, size: int, seed: int) -> None:
    """``size`` customers with ~2 contacts each, size/10 items, prices, size/20 orders."""
    rng = random.Random(seed)
    first = list(_NAME_FIRST)
    second = list(_NAME_SECOND)
    rng.shuffle(first)
    rng.shuffle(second)
    tag = f"scale{seed}"

    items = [bc.Item(
        number=f"S{i + 1:06d}",
        name=f"{_ITEM_STYLES[i % len(_ITEM_STYLES)]} "
             f"{_ITEM_WORDS[(i // len(_ITEM_STYLES)) % len(_ITEM_WORDS)]}, "
             f"{_COLOURS[(i // 7) % len(_COLOURS)]} {i // 1000 + 1}",
        item_type="Inventory", category="FURNITURE",
        unit_price=round(rng.uniform(5, 2500), 2), unit_cost=0.0,
        inventory=float(rng.randrange(0, 500)), base_unit="PCS",
        blocked=i % 97 == 96,
    ) for i in range(max(1, size // 10))]
    items = [it._replace(unit_cost=round(it.unit_price * 0.72, 2)) for it in items]
    prices: list[bc.SalesPrice] = []
    for index, item in enumerate(items):
        prices.append(bc.SalesPrice(item.number, "Customer Price Group", "RETAIL", "GBP",
                                    round(item.unit_price * 0.98, 2)))
        if index % 2 == 0:
            prices.append(bc.SalesPrice(item.number, "Customer Price Group", "WHOLESALE",
                                        "EUR", round(item.unit_price * 1.05, 2), 5.0))
    sellables = _load_items_and_prices(loader, ids, items, prices)

    customers: list[bc.Customer] = []
    for i in range(size):
        city, country, postal = _CITIES[rng.randrange(len(_CITIES))]
        name = _company_name(i, first, second)
        slug = re.sub(r"[^a-z0-9]+", "", name.lower())[:24]
        customers.append(bc.Customer(
            number=f"C{i + 1:07d}", name=name, address=f"{rng.randrange(1, 400)} High Street",
            city=city, postal_code=postal, country=country,
            phone=f"+44 20 7{rng.randrange(1000000):06d}", email=f"info@{slug}.example",
            website=f"www.{slug}.example",
            salesperson=_SALESPEOPLE[rng.randrange(len(_SALESPEOPLE))],
            currency=_COUNTRY_CURRENCY.get(country, "EUR"),
            payment_terms=_PAYMENT_CODES[rng.randrange(len(_PAYMENT_CODES))],
            shipment_method=_SHIPMENT_CODES[rng.randrange(len(_SHIPMENT_CODES))],
            credit_limit=float(rng.randrange(0, 200) * 500),
            blocked="All" if i % 211 == 210 else " ",
        ))
    customer_ids = [_bc("customers", f"{tag}/{c.number}") for c in customers]
    loader.add(BUSINESS_CENTRAL, "customers", [
        _customer_row(ids, c, customer_ids[i], 0.0) for i, c in enumerate(customers)])

    contact_rows: list[Row] = []
    relation_rows: list[Row] = []
    for i, customer in enumerate(customers):
        company_contact = _contact_row(_company_contact_number(customer), customer.name,
                                       customer, customer.email, customer.phone,
                                       key_prefix=f"{tag}/")
        contact_rows.append(company_contact)
        relation_rows.append(_business_relation_row(company_contact, customer_ids[i]))
        first_name = _FIRST_NAMES[rng.randrange(len(_FIRST_NAMES))]
        last_name = _LAST_NAMES[rng.randrange(len(_LAST_NAMES))]
        contact_rows.append(_contact_row(
            f"CP{i + 1:07d}", f"{first_name} {last_name}",
            None if i % 50 == 49 else customer,
            f"{first_name}.{last_name}{i}@{customer.email.split('@')[1]}".lower(),
            customer.phone, person=(first_name, last_name), job_title="Buyer",
            key_prefix=f"{tag}/"))
    loader.add(BUSINESS_CENTRAL, "contacts", contact_rows)
    loader.add(BUSINESS_CENTRAL, "contactsInformation", relation_rows)

    order_headers: list[Row] = []
    order_lines: list[Row] = []
    for n in range(size // 20):
        customer_index = (n * 20 + rng.randrange(20)) % size
        customer = customers[customer_index]
        picked = [items[rng.randrange(len(items))] for _ in range(rng.randrange(1, 4))]
        document = bc.SalesDocument(
            number=f"SO{n + 1:07d}", customer=customer.number,
            document_date=_add_days("2026-09-01", n % 60), external_document="",
            lines=tuple(bc.DocumentLine("Item", item.number, float(rng.randrange(1, 20)),
                                        item.unit_price) for item in picked))
        header, lines = _document_rows(ids, "order", document, customer,
                                       customer_ids[customer_index], sellables, f"{tag}/")
        order_headers.append(header)
        order_lines.extend(lines)
    loader.add(BUSINESS_CENTRAL, "salesOrders", order_headers)
    loader.add(BUSINESS_CENTRAL, "salesOrderLines", order_lines)

    # CRM: every third customer already exists as an account with the same name (match on
    # name), plus size/20 CRM-only customer accounts; one contact per account.
    users = [ids.users[code] for code in ("AH", "JR", "PS", "HR")]
    account_rows: list[Row] = []
    crm_contacts: list[Row] = []
    matched = [customers[i] for i in range(0, size, 3)]
    crm_only = [bc.Customer(
        number="", name=_company_name(size + k, first, second), address="1 New Road",
        city="London", postal_code="EC1A 1BB", country="GB", phone="+44 20 7946 0000",
        email=f"crm{k}@prospect.example", website="", salesperson="AH", currency="GBP",
        payment_terms="30 DAYS", shipment_method="EXW", credit_limit=0.0)
        for k in range(max(1, size // 20))]
    for k, customer in enumerate([*matched, *crm_only]):
        account_id = _dv("account", f"{tag}/{k}")
        owner = users[k % len(users)]
        currency = ids.crm_currencies.get(customer.currency, ids.crm_currencies["GBP"])
        account_rows.append({
            "accountid": account_id, "name": customer.name, "accountnumber": None,
            "customertypecode": dv.ACCOUNT_CUSTOMER if k % 10 else dv.ACCOUNT_PROSPECT,
            "telephone1": customer.phone, "emailaddress1": customer.email,
            "websiteurl": customer.website or None, "address1_line1": customer.address,
            "address1_city": customer.city, "address1_postalcode": customer.postal_code,
            "address1_country": customer.country,
            "paymenttermscode": dv.PAYMENT_TERMS_BY_BC_CODE.get(customer.payment_terms),
            "creditlimit": customer.credit_limit, "transactioncurrencyid": currency,
            "statecode": 0, "statuscode": 1, **_owned(owner),
        })
        first_name = _FIRST_NAMES[k % len(_FIRST_NAMES)]
        last_name = _LAST_NAMES[(k // len(_FIRST_NAMES)) % len(_LAST_NAMES)]
        crm_contacts.append({
            "contactid": _dv("contact", f"{tag}/{k}"), "firstname": first_name,
            "lastname": last_name, "fullname": f"{first_name} {last_name}",
            "emailaddress1": f"{first_name}.{last_name}.{k}@crm.example".lower(),
            "telephone1": customer.phone, "jobtitle": "Buyer", "parentcustomerid": account_id,
            "parentcustomeridtype": "account", "statecode": 0, "statuscode": 1,
            **_owned(owner),
        })
    loader.add(DATAVERSE, "account", account_rows)
    loader.add(DATAVERSE, "contact", crm_contacts)
