"""Dynamics 365 Sales side of the CRONUS demo data (natural keys, no GUIDs).

Accounts are keyed by name, users by salesperson-like code, products by product number. The
CRM side starts "half set up": some accounts already exist for NAV customers (matched by name
only), some accounts exist only in CRM, and only three of BC's currencies exist.
"""

from __future__ import annotations

from typing import NamedTuple

BUSINESS_UNIT = "CRONUS International Ltd."
BASE_CURRENCY = "GBP"
EMAIL_DOMAIN = "cronus.example"

ACCOUNT_CUSTOMER = 3
ACCOUNT_COMPETITOR = 1
ACCOUNT_PROSPECT = 8
ACCOUNT_PARTNER = 5

# The account option set ``paymenttermscode`` (1 Net 30, 2 "2% 10, Net 30", 3 Net 45, 4 Net 60)
# lined up with BC payment terms codes; BC codes missing here (14 DAYS, 21 DAYS, CM, COD) have
# no CRM option.
PAYMENT_TERMS_BY_BC_CODE: dict[str, int] = {"30 DAYS": 1, "1M(8D)": 2, "45 DAYS": 3,
                                            "60 DAYS": 4}


class User(NamedTuple):
    code: str
    first_name: str
    last_name: str
    title: str
    disabled: bool = False


# Licensed interactive users; Bart Duncan's user is disabled (SALESPEOPLE filters it out) and
# Tim Doherty (TD) has no user at all.
USERS: tuple[User, ...] = (
    User("AH", "Annette", "Hill", "Sales Manager"),
    User("JR", "John", "Roberts", "Account Manager"),
    User("PS", "Peter", "Saddow", "Account Manager"),
    User("HR", "Helen", "Ray", "Sales Assistant"),
    User("BD", "Bart", "Duncan", "Export Sales", disabled=True),
)

INTEGRATION_USER_NAME = "# NAV CRM Ops Integration"


class CrmCurrency(NamedTuple):
    code: str
    name: str
    symbol: str
    exchange_rate: float


# Only some of BC's currencies: the CURRENCY mapping creates the rest.
CURRENCIES: tuple[CrmCurrency, ...] = (
    CrmCurrency("GBP", "Pound Sterling", "£", 1.0),
    CrmCurrency("USD", "US Dollar", "$", 1.27),
    CrmCurrency("EUR", "Euro", "€", 1.16),
)


class UnitGroup(NamedTuple):
    name: str
    base_unit: str
    description: str


# Every Dataverse organization has "Default Unit" (base unit "Primary Unit"). The CRONUS products
# are sold by the piece in a "PCS" group named like the BC unit of measure, the way the
# integration keeps one unit group per BC unit, so UNIT OF MEASURE couples it by name and the
# seeded order lines' units resolve to BC's PCS.
UNIT_GROUPS: tuple[UnitGroup, ...] = (
    UnitGroup("Default Unit", "Primary Unit", "Default unit group"),
    UnitGroup("PCS", "PCS", "Piece"),
)
PRODUCT_UNIT_GROUP = "PCS"


class Account(NamedTuple):
    name: str
    customer_type: int
    city: str
    country: str
    phone: str
    email: str
    owner: str
    currency: str = "GBP"
    account_number: str = ""
    inactive: bool = False
    address: str = ""
    postal_code: str = ""
    payment_terms: int | None = None
    credit_limit: float | None = None
    website: str = ""


# Longer than BC's customer displayName (100 characters): creating it in BC fails with
# Application_StringExceededLength.
LONG_ACCOUNT_NAME = (
    "Consolidated Messenger Regional Logistics, Warehousing and Last-Mile Delivery Services "
    "for Greater Manchester Ltd."
)

ACCOUNTS: tuple[Account, ...] = (
    # Already in BC: same names as NAV customers, no account number (match-based coupling).
    Account("The Cannon Group PLC", ACCOUNT_CUSTOMER, "Birmingham", "GB", "+44 121 496 0192",
            "info@cannongroup.example", "PS", address="192 Market Square",
            postal_code="B27 4KT", payment_terms=2, credit_limit=100000.0),
    Account("Selangorian Ltd.", ACCOUNT_CUSTOMER, "Coventry", "GB", "+44 24 7649 0153",
            "contact@selangorian.example", "JR", address="153 Thomas Drive",
            postal_code="CV6 1GY", payment_terms=1, credit_limit=45000.0),
    Account("deerfield graphics company", ACCOUNT_CUSTOMER, "Cheltenham", "GB",
            "+44 1242 496 010", "studio@deerfield-graphics.example", "AH",
            address="10 Deerfield Road", postal_code="GL50 1TY"),
    Account("Autohaus Mielberg KG", ACCOUNT_CUSTOMER, "Hamburg", "DE", "+49 40 555 0136",
            "einkauf@mielberg.example", "JR", currency="EUR", address="Windmühlenweg 120",
            postal_code="22453"),
    # CRM-only customers: the CUSTOMER mapping creates them in BC.
    Account("Fabrikam Residences", ACCOUNT_CUSTOMER, "York", "GB", "+44 1904 496 020",
            "purchasing@fabrikam-residences.example", "AH", address="3 Minster Yard",
            postal_code="YO1 7HH", payment_terms=1, credit_limit=20000.0,
            website="www.fabrikam-residences.example"),
    Account("Contoso Pharmaceuticals", ACCOUNT_CUSTOMER, "Oxford", "GB", "+44 1865 496 030",
            "facilities@contoso-pharma.example", "JR", address="Science Park 12",
            postal_code="OX4 4GA", payment_terms=4, credit_limit=80000.0),
    Account("Alpine Ski House", ACCOUNT_CUSTOMER, "Innsbruck", "AT", "+43 512 555 040",
            "office@alpineskihouse.example", "HR", currency="EUR", address="Maria-Theresien-Str. 4",
            postal_code="6020", payment_terms=1),
    Account("Coho Winery", ACCOUNT_CUSTOMER, "Napa", "US", "+1 707 555 0150",
            "orders@cohowinery.example", "PS", currency="USD", address="1 Vineyard Way",
            postal_code="CA 94558", payment_terms=3),
    Account(LONG_ACCOUNT_NAME, ACCOUNT_CUSTOMER, "Manchester", "GB", "+44 161 496 0060",
            "dispatch@consolidated-messenger.example", "PS", address="Trafford Park 9",
            postal_code="M17 1AB"),
    # A country BC does not know: creating it in BC fails on the country code.
    Account("Poseidon Marine Supplies", ACCOUNT_CUSTOMER, "Poseidonis", "Atlantis",
            "+30 210 555 0170", "trident@poseidon-marine.example", "HR",
            address="1 Coral Reef Avenue", postal_code="00001"),
    # Filtered out by the CUSTOMER mapping (type is not Customer, or the account is inactive).
    Account("Litware, Inc.", ACCOUNT_PROSPECT, "Seattle", "US", "+1 206 555 0180",
            "info@litware.example", "AH", currency="USD"),
    Account("Adventure Works Cycles", ACCOUNT_PROSPECT, "Bothell", "US", "+1 425 555 0181",
            "sales@adventure-works.example", "PS", currency="USD"),
    Account("Tailspin Toys", ACCOUNT_COMPETITOR, "Leicester", "GB", "+44 116 496 0190",
            "hello@tailspintoys.example", "JR"),
    Account("Proseware Office Partners", ACCOUNT_PARTNER, "Bath", "GB", "+44 1225 496 0200",
            "partners@proseware.example", "AH"),
    Account("Wingtip Toys", ACCOUNT_CUSTOMER, "Derby", "GB", "+44 1332 496 0210",
            "accounts@wingtiptoys.example", "HR", inactive=True),
)


class CrmContact(NamedTuple):
    first_name: str
    last_name: str
    email: str
    account: str
    job_title: str = ""
    phone: str = ""


# Two contacts share one e-mail address (Mark Hanson appears twice); Paul Orphan has no parent.
CONTACTS: tuple[CrmContact, ...] = (
    CrmContact("Mark", "Hanson", "mark.hanson@cannongroup.example", "The Cannon Group PLC",
               "Purchasing Manager", "+44 121 496 0193"),
    CrmContact("M.", "Hanson", "mark.hanson@cannongroup.example", "The Cannon Group PLC",
               "Purchasing", "+44 121 496 0199"),
    CrmContact("Mindy", "Martin", "mindy.martin@selangorian.example", "Selangorian Ltd.",
               "Office Manager"),
    CrmContact("Nancy", "Anderson", "nancy.anderson@fabrikam-residences.example",
               "Fabrikam Residences", "Property Manager", "+44 1904 496 021"),
    CrmContact("Rene", "Valdes", "rene.valdes@contoso-pharma.example",
               "Contoso Pharmaceuticals", "Facilities Lead"),
    CrmContact("Anna", "Huber", "anna.huber@alpineskihouse.example", "Alpine Ski House",
               "Geschäftsführerin"),
    CrmContact("Tomas", "Lind", "tomas.lind@cohowinery.example", "Coho Winery", "Buyer"),
    CrmContact("Karen", "Berg", "karen.berg@litware.example", "Litware, Inc.", "CTO"),
    CrmContact("Paul", "Orphan", "paul.orphan@mail.example", "", "Consultant"),
)


class Product(NamedTuple):
    number: str
    name: str
    price: float
    cost: float


# Products already in CRM with BC item numbers (match on productnumber) plus one CRM-only one.
PRODUCTS: tuple[Product, ...] = (
    Product("1896-S", "ATHENS Desk", 1000.8, 780.7),
    Product("1900-S", "PARIS Guest Chair, black", 192.8, 150.4),
    Product("1920-S", "ANTWERP Conference Table", 649.4, 506.6),
    Product("CRM-INSTALL", "On-site installation (CRM only)", 250.0, 120.0),
)
PRICE_LIST = "CRM Standard GBP"


class OrderLine(NamedTuple):
    product: str
    quantity: float
    price: float


class Order(NamedTuple):
    number: str
    name: str
    account: str
    state: int
    status: int
    lines: tuple[OrderLine, ...]


ORDER_ACTIVE, ORDER_SUBMITTED = 0, 1
STATUS_NEW, STATUS_IN_PROGRESS = 1, 3

# Submitted orders go to BC; ORD-1002's customer is not a NAV customer yet, so it fails with
# "couple the customer first". ORD-1004 is still a draft and is not picked up.
ORDERS: tuple[Order, ...] = (
    Order("ORD-1001", "Cannon boardroom refit", "The Cannon Group PLC", ORDER_SUBMITTED,
          STATUS_IN_PROGRESS, (OrderLine("1896-S", 2, 1000.8), OrderLine("1900-S", 12, 192.8))),
    Order("ORD-1002", "Fabrikam show flats", "Fabrikam Residences", ORDER_SUBMITTED,
          STATUS_IN_PROGRESS, (OrderLine("1920-S", 1, 649.4),)),
    Order("ORD-1003", "Selangorian meeting room", "Selangorian Ltd.", ORDER_SUBMITTED,
          STATUS_IN_PROGRESS, (OrderLine("1920-S", 1, 649.4), OrderLine("1900-S", 6, 192.8))),
    Order("ORD-1004", "Contoso lab desks (draft)", "Contoso Pharmaceuticals", ORDER_ACTIVE,
          STATUS_NEW, (OrderLine("1896-S", 10, 1000.8),)),
)


class Opportunity(NamedTuple):
    name: str
    account: str
    value: float
    close_date: str
    probability: int


OPPORTUNITIES: tuple[Opportunity, ...] = (
    Opportunity("Cannon Group new HQ furniture", "The Cannon Group PLC", 120000.0,
                "2027-02-28", 60),
    Opportunity("Fabrikam residences phase 2", "Fabrikam Residences", 45000.0, "2027-01-15",
                40),
    Opportunity("Litware office move", "Litware, Inc.", 30000.0, "2027-03-31", 20),
    Opportunity("Coho Winery tasting room", "Coho Winery", 12000.0, "2026-12-20", 70),
)


class Case(NamedTuple):
    ticket: str
    title: str
    account: str
    priority: int


CASES: tuple[Case, ...] = (
    Case("CAS-01001", "Wobbly ANTWERP table leg", "The Cannon Group PLC", 1),
    Case("CAS-01002", "Invoice address wrong", "Selangorian Ltd.", 2),
    Case("CAS-01003", "Missing chair in delivery", "Fabrikam Residences", 2),
)


class Quote(NamedTuple):
    number: str
    name: str
    account: str
    amount: float


QUOTES: tuple[Quote, ...] = (
    Quote("QUO-01001", "HQ furniture proposal", "The Cannon Group PLC", 118500.0),
    Quote("QUO-01002", "Ski lodge lounge chairs", "Alpine Ski House", 8600.0),
)
