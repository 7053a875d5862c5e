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

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, NamedTuple, Protocol

from ..exceptions import SandboxError
from .cronus import business_central as bc
from .cronus import dataverse as dv
from .seed_rows import (
    BASE_TIME,
    BUSINESS_CENTRAL,
    DATAVERSE,
    SEED_NAMESPACE,
    Ids,
    Loader,
    Row,
    account_row,
    bc_id,
    business_relation_row,
    company_contact_number,
    contact_row,
    customer_row,
    document_rows,
    dv_id,
    load_items_and_prices,
    owned,
    seed_id,
)
from .seed_scale import load_scale
from .store import KeyExistsError, SandboxStore

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

VALID_FORMS = "'cronus', 'scale:N' or 'scale:N,seed=S' (N, S non-negative integers, N ≥ 1)"
_SCALE_RE = re.compile(r"^scale:(\d+)(?:,seed=(\d+))?$")


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
    loader = Loader(store)
    try:
        with store.transaction():
            ids = _load_reference(loader, info)
            if parsed.kind == "cronus":
                _load_cronus(loader, ids)
            else:
                load_scale(loader, ids, parsed.size, parsed.seed)
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


def _load_reference(loader: Loader, info: SeedTarget) -> Ids:
    """Company, currencies, units, salespeople, terms, users: shared by every seed."""
    bc_currencies, bc_units, terms, methods = _load_bc_reference(loader, info)
    users, crm_currencies, unit_group, units = _load_crm_reference(loader, info)
    return Ids(
        users=users, crm_currencies=crm_currencies, unit_group=unit_group, units=units,
        bc_currencies=bc_currencies, bc_units=bc_units, payment_terms=terms,
        shipment_methods=methods,
    )


def _load_bc_reference(loader: Loader, info: SeedTarget) -> tuple[dict[str, str], ...]:
    """BC's company and setup tables: → ids of (currencies, units, payment terms,
    shipment methods) by code."""
    company = info.company_id
    bc_currencies = {c.code: bc_id("currencies", c.code) for c in bc.CURRENCIES}
    bc_units = {u.code: bc_id("unitsOfMeasure", u.code) for u in bc.UNITS_OF_MEASURE}
    terms = {t.code: bc_id("paymentTerms", t.code) for t in bc.PAYMENT_TERMS}
    methods = {m.code: bc_id("shipmentMethods", m.code) for m in bc.SHIPMENT_METHODS}
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
        {"id": bc_id("salespeoplePurchasers", s.code), "code": s.code,
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
        {"id": bc_id("countriesRegions", c.code), "code": c.code,
         "displayName": c.name, "addressFormat": "City+Post Code"}
        for c in bc.COUNTRIES])
    return bc_currencies, bc_units, terms, methods


def _load_crm_reference(loader: Loader, info: SeedTarget,
                        ) -> tuple[dict[str, str], dict[str, str], str, dict[str, str]]:
    """CRM's business unit, team, users, currencies and unit groups: → (user ids by code,
    currency ids by code, the products' unit group, its base unit by group name)."""
    business_unit = dv_id("businessunit", dv.BUSINESS_UNIT)
    client_id = info.client_id.lower()
    integration_user = dv_id("systemuser", f"application:{client_id}")
    users = {u.code: dv_id("systemuser", u.code) for u in dv.USERS}
    loader.add(DATAVERSE, "businessunit", [{"businessunitid": business_unit,
                                            "name": dv.BUSINESS_UNIT}])
    loader.add(DATAVERSE, "team", [{"teamid": dv_id("team", dv.BUSINESS_UNIT),
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
    crm_currencies = {c.code: dv_id("transactioncurrency", c.code) for c in dv.CURRENCIES}
    loader.add(DATAVERSE, "transactioncurrency", [
        {"transactioncurrencyid": crm_currencies[c.code], "isocurrencycode": c.code,
         "currencyname": c.name, "currencysymbol": c.symbol, "exchangerate": c.exchange_rate,
         "currencyprecision": 2, "statecode": 0, "statuscode": 1}
        for c in dv.CURRENCIES])
    groups = {g.name: dv_id("uomschedule", g.name) for g in dv.UNIT_GROUPS}
    base_units = {g.name: dv_id("uom", f"{g.name}/{g.base_unit}") for g in dv.UNIT_GROUPS}
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
    return users, crm_currencies, unit_group, units


# --------------------------------------------------------------------------- BC rows


# --------------------------------------------------------------------------- cronus


def _load_cronus(loader: Loader, ids: Ids) -> None:
    customers = {c.number: c for c in bc.CUSTOMERS}
    customer_ids = {c.number: bc_id("customers", c.number) for c in bc.CUSTOMERS}
    sellables = load_items_and_prices(loader, ids, bc.ITEMS, bc.SALES_PRICES)

    headers: dict[str, list[Row]] = {"order": [], "invoice": []}
    lines: dict[str, list[Row]] = {"order": [], "invoice": []}
    balance: dict[str, float] = {}
    for kind, documents in (("order", bc.SALES_ORDERS), ("invoice", bc.SALES_INVOICES)):
        for document in documents:
            customer = customers[document.customer]
            header, document_lines = document_rows(ids, kind, document, customer,
                                                    customer_ids[customer.number], sellables)
            headers[kind].append(header)
            lines[kind].extend(document_lines)
            if kind == "invoice":
                balance[customer.number] = round(
                    balance.get(customer.number, 0.0) + header["remainingAmount"], 2)

    loader.add(BUSINESS_CENTRAL, "customers", [
        customer_row(ids, c, customer_ids[c.number], balance.get(c.number, 0.0))
        for c in bc.CUSTOMERS])
    contact_rows = [contact_row(company_contact_number(c), c.name, c, c.email, c.phone)
                    for c in bc.CUSTOMERS]
    relation_rows = [business_relation_row(contact, customer_ids[c.number])
                     for contact, c in zip(contact_rows, bc.CUSTOMERS, strict=True)]
    contact_rows.extend(
        contact_row(p.number, f"{p.first_name} {p.surname}", customers.get(p.company_number),
                     p.email, p.phone, person=(p.first_name, p.surname), job_title=p.job_title)
        for p in bc.PERSON_CONTACTS)
    loader.add(BUSINESS_CENTRAL, "contacts", contact_rows)
    loader.add(BUSINESS_CENTRAL, "contactsInformation", relation_rows)
    loader.add(BUSINESS_CENTRAL, "salesOrders", headers["order"])
    loader.add(BUSINESS_CENTRAL, "salesOrderLines", lines["order"])
    loader.add(BUSINESS_CENTRAL, "salesInvoices", headers["invoice"])
    loader.add(BUSINESS_CENTRAL, "salesInvoiceLines", lines["invoice"])
    _load_cronus_crm(loader, ids)


def _load_cronus_crm(loader: Loader, ids: Ids) -> None:
    account_ids, owners = _load_crm_accounts(loader, ids)
    products = _load_crm_products(loader, ids)
    _load_crm_orders(loader, products, account_ids, owners)
    _load_crm_activities(loader, products, account_ids, owners)


class _CrmProducts(NamedTuple):
    """The CRM price list, its currency and unit, and the product ids by number."""

    gbp: str
    price_list: str
    piece: str
    product_ids: dict[str, str]


def _load_crm_accounts(loader: Loader, ids: Ids,
                       ) -> tuple[dict[str, str], dict[str, str]]:
    """Accounts and contacts: → (account ids by name, account owners by name)."""
    account_ids = {a.name: dv_id("account", a.name) for a in dv.ACCOUNTS}
    owners = {a.name: ids.users[a.owner] for a in dv.ACCOUNTS}
    loader.add(DATAVERSE, "account", [account_row(ids, a, account_ids[a.name])
                                      for a in dv.ACCOUNTS])
    contact_rows: list[Row] = []
    for index, c in enumerate(dv.CONTACTS):
        owner = owners.get(c.account, ids.users["AH"])
        contact_rows.append({
            "contactid": dv_id("contact", f"{index}/{c.first_name} {c.last_name}"),
            "firstname": c.first_name, "lastname": c.last_name,
            "fullname": f"{c.first_name} {c.last_name}", "emailaddress1": c.email,
            "telephone1": c.phone or None, "jobtitle": c.job_title or None,
            "parentcustomerid": account_ids[c.account] if c.account else None,
            "parentcustomeridtype": "account" if c.account else None,
            "statecode": 0, "statuscode": 1, **owned(owner),
        })
    loader.add(DATAVERSE, "contact", contact_rows)
    return account_ids, owners


def _load_crm_products(loader: Loader, ids: Ids) -> _CrmProducts:
    """The price list, products and their price list items."""
    gbp = ids.crm_currencies[dv.BASE_CURRENCY]
    price_list = dv_id("pricelevel", dv.PRICE_LIST)
    piece = ids.units["PCS"]
    product_ids = {p.number: dv_id("product", p.number) for p in dv.PRODUCTS}
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
        {"productpricelevelid": dv_id("productpricelevel", f"{dv.PRICE_LIST}/{p.number}"),
         "pricelevelid": price_list, "productid": product_ids[p.number], "uomid": piece,
         "amount": p.price, "pricingmethodcode": 1, "transactioncurrencyid": gbp}
        for p in dv.PRODUCTS])
    return _CrmProducts(gbp, price_list, piece, product_ids)


def _load_crm_orders(loader: Loader, products: _CrmProducts, account_ids: Mapping[str, str],
                     owners: Mapping[str, str]) -> None:
    """Sales orders with their details (totals as system pricing computes them)."""
    gbp, price_list, piece, product_ids = products
    prices = {p.number: p for p in dv.PRODUCTS}
    order_rows: list[Row] = []
    detail_rows: list[Row] = []
    for order in dv.ORDERS:
        order_id = dv_id("salesorder", order.number)
        total = 0.0
        for number, line in enumerate(order.lines, start=1):
            amount = round(line.quantity * line.price, 2)
            total += amount
            detail_rows.append({
                "salesorderdetailid": dv_id("salesorderdetail", f"{order.number}/{number}"),
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
            **owned(owners[order.account]),
        })
    loader.add(DATAVERSE, "salesorder", order_rows)
    loader.add(DATAVERSE, "salesorderdetail", detail_rows)


def _load_crm_activities(loader: Loader, products: _CrmProducts,
                         account_ids: Mapping[str, str], owners: Mapping[str, str]) -> None:
    """Opportunities, cases and quotes of the accounts."""
    gbp, price_list = products.gbp, products.price_list
    loader.add(DATAVERSE, "opportunity", [
        {"opportunityid": dv_id("opportunity", o.name), "name": o.name,
         "customerid": account_ids[o.account], "customeridtype": "account",
         "parentaccountid": account_ids[o.account], "estimatedvalue": o.value,
         "estimatedclosedate": o.close_date, "closeprobability": o.probability,
         "transactioncurrencyid": gbp, "statecode": 0, "statuscode": 1,
         **owned(owners[o.account])}
        for o in dv.OPPORTUNITIES])
    loader.add(DATAVERSE, "incident", [
        {"incidentid": dv_id("incident", c.ticket), "ticketnumber": c.ticket, "title": c.title,
         "customerid": account_ids[c.account], "customeridtype": "account",
         "prioritycode": c.priority, "caseorigincode": 1, "statecode": 0, "statuscode": 1,
         **owned(owners[c.account])}
        for c in dv.CASES])
    loader.add(DATAVERSE, "quote", [
        {"quoteid": dv_id("quote", q.number), "quotenumber": q.number, "name": q.name,
         "customerid": account_ids[q.account], "customeridtype": "account",
         "pricelevelid": price_list, "transactioncurrencyid": gbp, "totalamount": q.amount,
         "effectivefrom": "2026-11-01", "effectiveto": "2026-12-31", "statecode": 0,
         "statuscode": 1, **owned(owners[q.account])}
        for q in dv.QUOTES])
