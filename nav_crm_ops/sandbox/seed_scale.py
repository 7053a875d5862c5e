"""The ``scale:N`` seed: N generated customers (with contacts, items, prices and orders) in
Business Central and matching or CRM-only accounts in Dataverse, all from one seeded RNG."""

from __future__ import annotations

import random
import re
from collections.abc import Mapping, Sequence

from .cronus import business_central as bc
from .cronus import dataverse as dv
from .seed_rows import (
    BUSINESS_CENTRAL,
    DATAVERSE,
    Ids,
    Loader,
    Row,
    Sellable,
    add_days,
    bc_id,
    business_relation_row,
    company_contact_number,
    contact_row,
    customer_row,
    document_rows,
    dv_id,
    load_items_and_prices,
    owned,
)

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


def load_scale(loader: Loader, ids: Ids, size: int, seed: int) -> None:
    """``size`` customers with ~2 contacts each, size/10 items, prices, size/20 orders."""
    rng = random.Random(seed)
    first = list(_NAME_FIRST)
    second = list(_NAME_SECOND)
    rng.shuffle(first)
    rng.shuffle(second)
    tag = f"scale{seed}"
    items, prices = _scale_items(rng, size)
    sellables = load_items_and_prices(loader, ids, items, prices)
    customers = _scale_customers(rng, size, first, second)
    customer_ids = [bc_id("customers", f"{tag}/{c.number}") for c in customers]
    loader.add(BUSINESS_CENTRAL, "customers", [
        customer_row(ids, c, customer_ids[i], 0.0) for i, c in enumerate(customers)])
    _load_scale_contacts(loader, rng, customers, customer_ids, tag)
    _load_scale_orders(loader, ids, rng, (customers, customer_ids), items, sellables, tag)
    _load_scale_crm(loader, ids, customers, (first, second), tag)


def _scale_items(rng: random.Random, size: int,
                 ) -> tuple[list[bc.Item], list[bc.SalesPrice]]:
    """size/10 items (about 1% blocked) and their group prices."""
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
    return items, prices


def _scale_customers(rng: random.Random, size: int, first: Sequence[str],
                     second: Sequence[str]) -> list[bc.Customer]:
    """``size`` customers with random addresses, terms and salespeople (some blocked)."""
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
    return customers


def _load_scale_contacts(loader: Loader, rng: random.Random, customers: list[bc.Customer],
                         customer_ids: list[str], tag: str) -> None:
    """Each customer's company contact (with its business relation) and one person."""
    contact_rows: list[Row] = []
    relation_rows: list[Row] = []
    for i, customer in enumerate(customers):
        company_contact = contact_row(company_contact_number(customer), customer.name,
                                       customer, customer.email, customer.phone,
                                       key_prefix=f"{tag}/")
        contact_rows.append(company_contact)
        relation_rows.append(business_relation_row(company_contact, customer_ids[i]))
        first_name = _FIRST_NAMES[rng.randrange(len(_FIRST_NAMES))]
        last_name = _LAST_NAMES[rng.randrange(len(_LAST_NAMES))]
        contact_rows.append(contact_row(
            f"CP{i + 1:07d}", f"{first_name} {last_name}",
            None if i % 50 == 49 else customer,
            f"{first_name}.{last_name}{i}@{customer.email.split('@')[1]}".lower(),
            customer.phone, person=(first_name, last_name), job_title="Buyer",
            key_prefix=f"{tag}/"))
    loader.add(BUSINESS_CENTRAL, "contacts", contact_rows)
    loader.add(BUSINESS_CENTRAL, "contactsInformation", relation_rows)


def _load_scale_orders(loader: Loader, ids: Ids, rng: random.Random,
                       customers_and_ids: tuple[list[bc.Customer], list[str]],
                       items: list[bc.Item], sellables: Mapping[str, Sellable],
                       tag: str) -> None:
    """size/20 open sales orders of 1 to 3 item lines."""
    customers, customer_ids = customers_and_ids
    size = len(customers)
    order_headers: list[Row] = []
    order_lines: list[Row] = []
    for n in range(size // 20):
        customer_index = (n * 20 + rng.randrange(20)) % size
        customer = customers[customer_index]
        picked = [items[rng.randrange(len(items))] for _ in range(rng.randrange(1, 4))]
        document = bc.SalesDocument(
            number=f"SO{n + 1:07d}", customer=customer.number,
            document_date=add_days("2026-09-01", n % 60), external_document="",
            lines=tuple(bc.DocumentLine("Item", item.number, float(rng.randrange(1, 20)),
                                        item.unit_price) for item in picked))
        header, lines = document_rows(ids, "order", document, customer,
                                       customer_ids[customer_index], sellables, f"{tag}/")
        order_headers.append(header)
        order_lines.extend(lines)
    loader.add(BUSINESS_CENTRAL, "salesOrders", order_headers)
    loader.add(BUSINESS_CENTRAL, "salesOrderLines", order_lines)


def _load_scale_crm(loader: Loader, ids: Ids, customers: list[bc.Customer],
                    names: tuple[Sequence[str], Sequence[str]], tag: str) -> None:
    # Every third customer already exists as an account with the same name (match on
    # name), plus size/20 CRM-only customer accounts; one contact per account.
    size = len(customers)
    first, second = names
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
        account_id = dv_id("account", f"{tag}/{k}")
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
            "statecode": 0, "statuscode": 1, **owned(owner),
        })
        first_name = _FIRST_NAMES[k % len(_FIRST_NAMES)]
        last_name = _LAST_NAMES[(k // len(_FIRST_NAMES)) % len(_LAST_NAMES)]
        crm_contacts.append({
            "contactid": dv_id("contact", f"{tag}/{k}"), "firstname": first_name,
            "lastname": last_name, "fullname": f"{first_name} {last_name}",
            "emailaddress1": f"{first_name}.{last_name}.{k}@crm.example".lower(),
            "telephone1": customer.phone, "jobtitle": "Buyer", "parentcustomerid": account_id,
            "parentcustomeridtype": "account", "statecode": 0, "statuscode": 1,
            **owned(owner),
        })
    loader.add(DATAVERSE, "account", account_rows)
    loader.add(DATAVERSE, "contact", crm_contacts)
