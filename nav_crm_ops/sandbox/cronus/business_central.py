"""Business Central side of the CRONUS demo data (natural keys, no GUIDs).

The local currency (LCY) of CRONUS International Ltd. is **GBP**, as in the GB demo database:
customers without a foreign currency show ``currencyCode`` "GBP" and an empty ``currencyId``
(the API translates the blank LCY code), and GBP is not a row of ``currencies`` (BC keeps LCY in
General Ledger Setup, not in the Currency table).
"""

from __future__ import annotations

from typing import NamedTuple

LOCAL_CURRENCY = "GBP"
EMPTY_GUID = "00000000-0000-0000-0000-000000000000"


class Currency(NamedTuple):
    code: str
    name: str
    symbol: str


CURRENCIES: tuple[Currency, ...] = (
    Currency("EUR", "Euro", "€"),
    Currency("USD", "US dollar", "$"),
    Currency("DKK", "Danish krone", "kr"),
    Currency("CAD", "Canadian dollar", "$"),
    Currency("SEK", "Swedish krona", "kr"),
    Currency("NOK", "Norwegian krone", "kr"),
    Currency("JPY", "Japanese yen", "¥"),
    Currency("CHF", "Swiss franc", "CHF"),
    Currency("AUD", "Australian dollar", "$"),
)


class UnitOfMeasure(NamedTuple):
    code: str
    name: str
    iso_code: str


UNITS_OF_MEASURE: tuple[UnitOfMeasure, ...] = (
    UnitOfMeasure("PCS", "Piece", "EA"),
    UnitOfMeasure("BOX", "Box", "BX"),
    UnitOfMeasure("HOUR", "Hour", "HUR"),
    UnitOfMeasure("DAY", "Day", "DAY"),
    UnitOfMeasure("PACK", "Pack", "PK"),
    UnitOfMeasure("SET", "Set", "SET"),
    UnitOfMeasure("KG", "Kilogram", "KGM"),
)


class Salesperson(NamedTuple):
    code: str
    name: str
    email: str
    job_title: str
    phone: str


SALESPEOPLE: tuple[Salesperson, ...] = (
    Salesperson("AH", "Annette Hill", "annette.hill@cronus.example", "Sales Manager",
                "+44 20 7946 0101"),
    Salesperson("JR", "John Roberts", "john.roberts@cronus.example", "Account Manager",
                "+44 20 7946 0102"),
    Salesperson("PS", "Peter Saddow", "peter.saddow@cronus.example", "Account Manager",
                "+44 20 7946 0103"),
    Salesperson("BD", "Bart Duncan", "bart.duncan@cronus.example", "Export Sales",
                "+44 20 7946 0104"),
    Salesperson("HR", "Helen Ray", "helen.ray@cronus.example", "Sales Assistant",
                "+44 20 7946 0105"),
    # Dirty: Tim Doherty has no Dynamics 365 user, so customers he owns cannot get an owner.
    Salesperson("TD", "Tim Doherty", "tim.doherty@cronus.example", "Field Sales",
                "+44 20 7946 0106"),
)


class PaymentTerm(NamedTuple):
    code: str
    name: str
    due_date_formula: str
    discount_percent: float


PAYMENT_TERMS: tuple[PaymentTerm, ...] = (
    PaymentTerm("14 DAYS", "Net 14 days", "14D", 0.0),
    PaymentTerm("21 DAYS", "Net 21 days", "21D", 0.0),
    PaymentTerm("30 DAYS", "Net 30 days", "30D", 0.0),
    PaymentTerm("45 DAYS", "Net 45 days", "45D", 0.0),
    PaymentTerm("60 DAYS", "Net 60 days", "60D", 0.0),
    PaymentTerm("1M(8D)", "1 Month/2% 8 days", "1M", 2.0),
    PaymentTerm("CM", "Current month", "CM", 0.0),
    PaymentTerm("COD", "Cash on delivery", "0D", 0.0),
)


class ShipmentMethod(NamedTuple):
    code: str
    name: str


SHIPMENT_METHODS: tuple[ShipmentMethod, ...] = (
    ShipmentMethod("CIF", "Cost Insurance Freight"),
    ShipmentMethod("CFR", "Cost and Freight"),
    ShipmentMethod("EXW", "Ex Warehouse"),
    ShipmentMethod("FOB", "Free on Board"),
    ShipmentMethod("PICKUP", "Pickup at Location"),
)


class Country(NamedTuple):
    code: str
    name: str


COUNTRIES: tuple[Country, ...] = (
    Country("GB", "Great Britain"), Country("US", "USA"), Country("DE", "Germany"),
    Country("DK", "Denmark"), Country("FR", "France"), Country("NL", "Netherlands"),
    Country("BE", "Belgium"), Country("ES", "Spain"), Country("IT", "Italy"),
    Country("SE", "Sweden"), Country("NO", "Norway"), Country("CA", "Canada"),
    Country("AT", "Austria"), Country("CH", "Switzerland"), Country("AU", "Australia"),
    Country("JP", "Japan"), Country("CZ", "Czech Republic"), Country("SI", "Slovenia"),
)


class Customer(NamedTuple):
    number: str
    name: str
    address: str
    city: str
    postal_code: str
    country: str
    phone: str
    email: str
    website: str
    salesperson: str
    currency: str
    payment_terms: str
    shipment_method: str
    credit_limit: float
    blocked: str = " "
    price_group: str = ""


CUSTOMERS: tuple[Customer, ...] = (
    Customer("10000", "The Cannon Group PLC", "192 Market Square", "Birmingham", "B27 4KT",
             "GB", "+44 121 496 0192", "info@cannongroup.example", "www.cannongroup.example",
             "PS", "GBP", "1M(8D)", "EXW", 100000.0, price_group="RETAIL"),
    Customer("20000", "Selangorian Ltd.", "153 Thomas Drive", "Coventry", "CV6 1GY", "GB",
             "+44 24 7649 0153", "contact@selangorian.example", "www.selangorian.example",
             "JR", "GBP", "30 DAYS", "EXW", 50000.0, price_group="RETAIL"),
    Customer("30000", "John Haddock Insurance Co.", "10 High Tower Green", "Manchester",
             "M22 5TG", "GB", "+44 161 496 0010", "claims@haddock-insurance.example",
             "www.haddock-insurance.example", "PS", "GBP", "30 DAYS", "CIF", 75000.0),
    Customer("40000", "Deerfield Graphics Company", "10 Deerfield Road", "Cheltenham",
             "GL50 1TY", "GB", "+44 1242 496 010", "studio@deerfield-graphics.example",
             "www.deerfield-graphics.example", "AH", "GBP", "30 DAYS", "EXW", 25000.0,
             price_group="WHOLESALE"),
    Customer("50000", "Guildford Water Department", "Guildford Road 101", "Guildford",
             "GU2 7XH", "GB", "+44 1483 496 101", "procurement@guildford-water.example",
             "www.guildford-water.example", "JR", "GBP", "60 DAYS", "CIF", 150000.0),
    Customer("01121212", "Spotsmeyer's Furnishings", "612 South Sunset Drive", "Miami",
             "FL 37125", "US", "+1 305 555 0112", "orders@spotsmeyer.example",
             "www.spotsmeyer.example", "BD", "USD", "30 DAYS", "FOB", 60000.0,
             price_group="EXPORT"),
    Customer("01445544", "Progressive Home Furnishings", "3000 Roosevelt Blvd.", "Chicago",
             "IL 61236", "US", "+1 312 555 0144", "buyers@progressive-home.example",
             "www.progressive-home.example", "BD", "USD", "1M(8D)", "FOB", 45000.0,
             price_group="EXPORT"),
    Customer("01454545", "New Concepts Furniture", "705 West Peachtree Street", "Atlanta",
             "GA 31772", "US", "+1 404 555 0145", "hello@newconcepts.example",
             "www.newconcepts.example", "BD", "USD", "30 DAYS", "FOB", 30000.0,
             price_group="EXPORT"),
    Customer("31505050", "Woonboulevard Kuitenbrouwer", "Rembrandtlaan 1", "Bussum", "1400 HJ",
             "NL", "+31 35 555 0150", "info@kuitenbrouwer.example",
             "www.kuitenbrouwer.example", "HR", "EUR", "30 DAYS", "CIF", 40000.0,
             price_group="WHOLESALE"),
    Customer("31987987", "Candoxy Nederland BV", "Kanaalstraat 1", "Utrecht", "3500 AA", "NL",
             "+31 30 555 0198", "sales@candoxy.example", "www.candoxy.example", "HR", "EUR",
             "60 DAYS", "CIF", 35000.0, price_group="WHOLESALE"),
    Customer("32124578", "Nieuwe Zandpoort NV", "Lange Kievitstraat 120", "Antwerpen", "2018",
             "BE", "+32 3 555 0120", "info@zandpoort.example", "www.zandpoort.example", "HR",
             "EUR", "30 DAYS", "CIF", 20000.0),
    Customer("35122112", "Bilabankstofan", "Hvidovrevej 80", "Hvidovre", "2650", "DK",
             "+45 36 55 01 22", "bilabank@bilabankstofan.example", "",
             "AH", "DKK", "1M(8D)", "CIF", 200000.0),
    Customer("35451236", "Gagn & Gaman", "Skt. Clemens Torv 19", "Aarhus", "8000", "DK",
             "+45 86 55 01 45", "gagn@gagn-gaman.example", "", "AH", "DKK", "14 DAYS",
             "PICKUP", 15000.0),
    Customer("38128456", "MEMA Ljubljana d.o.o.", "Celovska 121", "Ljubljana", "1000", "SI",
             "+386 1 555 0128", "mema@mema-lj.example", "", "BD", "EUR", "30 DAYS", "CIF",
             10000.0),
    Customer("42147258", "BYT-KOMPLET s.r.o.", "Kozinova 8", "Praha", "110 00", "CZ",
             "+420 2 555 0147", "byt@bytkomplet.example", "", "BD", "EUR", "30 DAYS", "CIF",
             12000.0),
    Customer("43687129", "Designstudio Gmunden", "Seestrasse 47", "Gmunden", "4810", "AT",
             "+43 7612 555 012", "office@designstudio-gmunden.example",
             "www.designstudio-gmunden.example", "HR", "EUR", "30 DAYS", "CIF", 18000.0),
    Customer("44171511", "Zuni Home Crafts Ltd.", "Fjordgata 12", "Bergen", "5003", "NO",
             "+47 55 55 01 71", "post@zunihome.example", "", "AH", "NOK", "30 DAYS", "CIF",
             22000.0),
    Customer("46897889", "Englunds Kontorsmöbler AB", "Kungsgatan 18", "Stockholm", "111 35",
             "SE", "+46 8 555 018 97", "info@englunds.example", "www.englunds.example", "AH",
             "SEK", "30 DAYS", "CIF", 28000.0),
    Customer("47563218", "Klubben", "Storgata 5", "Oslo", "0155", "NO", "+47 22 55 01 32",
             "klubben@klubben.example", "", "AH", "NOK", "30 DAYS", "CIF", 9000.0),
    Customer("49633663", "Autohaus Mielberg KG", "Windmühlenweg 120", "Hamburg", "22453",
             "DE", "+49 40 555 0136", "einkauf@mielberg.example", "www.mielberg.example", "JR",
             "EUR", "30 DAYS", "EXW", 55000.0, price_group="WHOLESALE"),
    Customer("49858585", "Hotel Pferdesee", "Am Pferdesee 1", "Frankfurt am Main", "60528",
             "DE", "+49 69 555 0158", "rezeption@pferdesee.example", "www.pferdesee.example",
             "JR", "EUR", "45 DAYS", "EXW", 32000.0),
    Customer("60000", "Blanemark Hifi Shop", "28 Baker Street", "London", "W1U 8EW", "GB",
             "+44 20 7946 0600", "shop@blanemark.example", "www.blanemark.example", "AH",
             "GBP", "30 DAYS", "PICKUP", 8000.0, price_group="RETAIL"),
    Customer("61000", "Fairway Sound", "41 Shore Road", "Edinburgh", "EH6 6RG", "GB",
             "+44 131 496 0610", "sales@fairwaysound.example", "www.fairwaysound.example", "JR",
             "GBP", "14 DAYS", "PICKUP", 6000.0, price_group="RETAIL"),
    Customer("62000", "The Device Shop", "8 Station Approach", "Reading", "RG1 1LX", "GB",
             "+44 118 496 0620", "info@deviceshop.example", "www.deviceshop.example", "PS",
             "GBP", "30 DAYS", "EXW", 12000.0),
    # Dirty: payment term 21 DAYS has no CRM paymenttermscode option.
    Customer("70000", "Beef House", "Meat Street 12", "Cambridge", "CB1 2EW", "GB",
             "+44 1223 496 070", "orders@beefhouse.example", "www.beefhouse.example", "HR",
             "GBP", "21 DAYS", "PICKUP", 5000.0),
    Customer("71000", "Antarcticopy", "Trade Park 4", "Leeds", "LS11 5DW", "GB",
             "+44 113 496 0710", "copy@antarcticopy.example", "www.antarcticopy.example", "PS",
             "GBP", "30 DAYS", "EXW", 9500.0),
    # Dirty: salesperson TD has no Dynamics 365 user (owner cannot be mapped).
    Customer("72000", "Elkhorn Airport", "1 Runway Drive", "Calgary", "T2E 6W5", "CA",
             "+1 403 555 0172", "facilities@elkhorn-airport.example",
             "www.elkhorn-airport.example", "TD", "CAD", "30 DAYS", "CIF", 70000.0),
    Customer("73000", "Coolwood Technologies", "77 Canal Street", "Nottingham", "NG1 7EH",
             "GB", "+44 115 496 0730", "it@coolwood.example", "www.coolwood.example", "AH",
             "GBP", "COD", "EXW", 0.0),
    # Blocked for everything: the CUSTOMER mapping filters it out on the BC side.
    Customer("74000", "Relecloud Outlet (closed)", "5 Old Mill Lane", "Bristol", "BS1 4QA",
             "GB", "+44 117 496 0740", "accounts@relecloud-outlet.example", "", "JR", "GBP",
             "CM", "EXW", 0.0, blocked="All"),
)


class Contact(NamedTuple):
    number: str
    first_name: str
    surname: str
    job_title: str
    company_number: str
    email: str
    phone: str


# Person contacts (company_number: the customer number). Company contacts are generated one
# per customer, numbered CT<customer number>, each with a business relation to its customer
# (contactsInformation); a person's companyNumber is its company contact's number.
PERSON_CONTACTS: tuple[Contact, ...] = (
    Contact("CT200001", "Mark", "Hanson", "Purchasing Manager", "10000",
            "mark.hanson@cannongroup.example", "+44 121 496 0193"),
    Contact("CT200002", "Andy", "Teal", "Chief Financial Officer", "10000",
            "andy.teal@cannongroup.example", "+44 121 496 0194"),
    Contact("CT200003", "Mindy", "Martin", "Office Manager", "20000",
            "mindy.martin@selangorian.example", "+44 24 7649 0154"),
    Contact("CT200004", "Jesper", "Aaberg", "Facility Manager", "30000",
            "jesper.aaberg@haddock-insurance.example", "+44 161 496 0011"),
    Contact("CT200005", "Kevin", "Wright", "Creative Director", "40000",
            "kevin.wright@deerfield-graphics.example", "+44 1242 496 011"),
    Contact("CT200006", "Belinda", "Newman", "Procurement Officer", "50000",
            "belinda.newman@guildford-water.example", "+44 1483 496 102"),
    Contact("CT200007", "Robert", "Townes", "Store Manager", "60000",
            "robert.townes@blanemark.example", "+44 20 7946 0601"),
    Contact("CT200008", "Monica", "Spotsmeyer", "Owner", "01121212",
            "monica@spotsmeyer.example", "+1 305 555 0113"),
    Contact("CT200009", "Jan", "Kuitenbrouwer", "Inkoper", "31505050",
            "jan@kuitenbrouwer.example", "+31 35 555 0151"),
    Contact("CT200010", "Lars", "Englund", "VD", "46897889", "lars@englunds.example",
            "+46 8 555 018 98"),
    Contact("CT200011", "Heinz", "Mielberg", "Einkaufsleiter", "49633663",
            "heinz.mielberg@mielberg.example", "+49 40 555 0137"),
    Contact("CT200012", "Chris", "Preston", "Airport Facilities", "72000",
            "chris.preston@elkhorn-airport.example", "+1 403 555 0173"),
    Contact("CT200013", "Sarah", "Beefield", "Head Chef", "70000",
            "sarah@beefhouse.example", "+44 1223 496 071"),
    # Dirty: a person without a company; the CONTACT mapping needs a coupled company.
    Contact("CT200014", "Jim", "Bell", "Freelance Designer", "", "jim.bell@freelance.example",
            "+44 7700 900 014"),
)


class Item(NamedTuple):
    number: str
    name: str
    item_type: str
    category: str
    unit_price: float
    unit_cost: float
    inventory: float
    base_unit: str
    blocked: bool = False


ITEMS: tuple[Item, ...] = (
    Item("1000", "Bicycle", "Inventory", "BIKES", 4000.0, 350.59, 12.0, "PCS"),
    Item("1001", "Touring Bicycle", "Inventory", "BIKES", 4500.0, 402.0, 5.0, "PCS"),
    Item("1100", "Front Wheel", "Inventory", "PARTS", 120.0, 100.8, 40.0, "PCS"),
    Item("1110", "Rim", "Inventory", "PARTS", 1.5, 1.2, 300.0, "PCS"),
    Item("1120", "Spokes", "Inventory", "PARTS", 0.2, 0.15, 4000.0, "PACK"),
    Item("1150", "Front Hub", "Inventory", "PARTS", 45.0, 35.2, 55.0, "PCS"),
    Item("1200", "Back Wheel", "Inventory", "PARTS", 130.0, 110.4, 35.0, "PCS"),
    Item("1250", "Back Hub", "Inventory", "PARTS", 50.0, 39.7, 48.0, "PCS"),
    Item("1300", "Chain Assy", "Inventory", "PARTS", 30.0, 21.0, 120.0, "PCS"),
    Item("1896-S", "ATHENS Desk", "Inventory", "FURNITURE", 1000.8, 780.7, 24.0, "PCS"),
    Item("1900-S", "PARIS Guest Chair, black", "Inventory", "CHAIR", 192.8, 150.4, 60.0,
         "PCS"),
    Item("1906-S", "ATHENS Mobile Pedestal", "Inventory", "FURNITURE", 281.4, 219.5, 18.0,
         "PCS"),
    Item("1908-S", "LONDON Swivel Chair, blue", "Inventory", "CHAIR", 190.1, 148.3, 32.0,
         "PCS"),
    Item("1920-S", "ANTWERP Conference Table", "Inventory", "TABLE", 649.4, 506.6, 9.0, "PCS"),
    Item("1925-W", "Conference Bundle 1-6", "Inventory", "FURNITURE", 1702.6, 1328.0, 4.0,
         "SET"),
    Item("1928-S", "AMSTERDAM Lamp", "Inventory", "MISC", 54.9, 42.8, 75.0, "PCS"),
    Item("1929-W", "Conference Bundle 1-8", "Inventory", "FURNITURE", 2124.8, 1657.3, 2.0,
         "SET"),
    Item("1936-S", "BERLIN Guest Chair, yellow", "Inventory", "CHAIR", 192.8, 150.4, 0.0,
         "PCS", blocked=True),
    Item("1960-S", "ROME Guest Chair, green", "Inventory", "CHAIR", 192.8, 150.4, 27.0, "PCS"),
    Item("1964-S", "TOKYO Guest Chair, blue", "Inventory", "CHAIR", 192.8, 150.4, 41.0, "PCS"),
    Item("1968-S", "MEXICO Swivel Chair, black", "Inventory", "CHAIR", 190.1, 148.3, 22.0,
         "PCS"),
    Item("1972-S", "MUNICH Swivel Chair, yellow", "Inventory", "CHAIR", 190.1, 148.3, 15.0,
         "PCS"),
    Item("1980-S", "MOSCOW Swivel Chair, red", "Inventory", "CHAIR", 190.1, 148.3, 11.0, "PCS"),
    Item("1988-S", "SEOUL Guest Chair, red", "Inventory", "CHAIR", 192.8, 150.4, 30.0, "PCS"),
    Item("1996-S", "ATLANTA Whiteboard, base", "Inventory", "MISC", 1397.3, 1090.0, 6.0, "PCS"),
    Item("2000-S", "SYDNEY Swivel Chair, green", "Inventory", "CHAIR", 190.1, 148.3, 19.0,
         "PCS"),
    Item("8904-W", "Assembly service", "Service", "SERVICES", 65.0, 40.0, 0.0, "HOUR"),
    Item("8908-W", "Office paper, A4", "Non-Inventory", "MISC", 4.5, 3.1, 0.0, "BOX"),
)


class Resource(NamedTuple):
    number: str
    name: str
    resource_type: str
    base_unit: str
    unit_price: float
    unit_cost: float


RESOURCES: tuple[Resource, ...] = (
    Resource("KATHERINE", "Katherine Hull", "Person", "HOUR", 115.0, 60.0),
    Resource("LINDA", "Linda Martin", "Person", "HOUR", 90.0, 48.0),
    Resource("MARK", "Mark Hanson", "Person", "HOUR", 90.0, 48.0),
    Resource("MARTY", "Marty Horst", "Person", "HOUR", 85.0, 45.0),
    Resource("TERRY", "Terry Dodds", "Person", "HOUR", 85.0, 45.0),
    Resource("LIFT", "Lift", "Machine", "DAY", 320.0, 150.0),
)


class PriceGroup(NamedTuple):
    code: str
    description: str


PRICE_GROUPS: tuple[PriceGroup, ...] = (
    PriceGroup("RETAIL", "Retail customers"),
    PriceGroup("WHOLESALE", "Wholesale customers"),
    PriceGroup("EXPORT", "Export customers"),
)


class SalesPrice(NamedTuple):
    item: str
    sales_type: str
    sales_code: str
    currency: str
    unit_price: float
    minimum_quantity: float = 0.0
    starting_date: str = ""
    ending_date: str = ""
    unit: str = "PCS"


# WHOLESALE has prices in GBP and EUR (two CRM price lists); EXPORT prices carry dates; the
# "Customer" and "All Customers" prices are not customer-price-group prices and must be ignored.
SALES_PRICES: tuple[SalesPrice, ...] = (
    SalesPrice("1896-S", "Customer Price Group", "RETAIL", "GBP", 990.0),
    SalesPrice("1900-S", "Customer Price Group", "RETAIL", "GBP", 189.0),
    SalesPrice("1906-S", "Customer Price Group", "RETAIL", "GBP", 275.0),
    SalesPrice("1908-S", "Customer Price Group", "RETAIL", "GBP", 186.0),
    SalesPrice("1920-S", "Customer Price Group", "RETAIL", "GBP", 640.0),
    SalesPrice("1000", "Customer Price Group", "RETAIL", "GBP", 3950.0),
    SalesPrice("1896-S", "Customer Price Group", "WHOLESALE", "GBP", 870.0, 5.0),
    SalesPrice("1900-S", "Customer Price Group", "WHOLESALE", "GBP", 165.0, 10.0),
    SalesPrice("1908-S", "Customer Price Group", "WHOLESALE", "GBP", 162.0, 10.0),
    SalesPrice("1920-S", "Customer Price Group", "WHOLESALE", "GBP", 560.0, 2.0),
    SalesPrice("1896-S", "Customer Price Group", "WHOLESALE", "EUR", 1010.0, 5.0),
    SalesPrice("1900-S", "Customer Price Group", "WHOLESALE", "EUR", 192.0, 10.0),
    SalesPrice("1920-S", "Customer Price Group", "WHOLESALE", "EUR", 650.0, 2.0),
    SalesPrice("1896-S", "Customer Price Group", "EXPORT", "USD", 1180.0, 0.0, "2026-01-01",
               "2026-12-31"),
    SalesPrice("1906-S", "Customer Price Group", "EXPORT", "USD", 335.0, 0.0, "2026-01-01",
               "2026-12-31"),
    SalesPrice("1964-S", "Customer Price Group", "EXPORT", "USD", 228.0, 0.0, "2026-03-01",
               ""),
    SalesPrice("1000", "Customer Price Group", "EXPORT", "USD", 4700.0, 0.0, "", "2026-06-30"),
    SalesPrice("1896-S", "Customer", "10000", "GBP", 950.0),
    SalesPrice("1920-S", "Customer", "49633663", "EUR", 630.0),
    SalesPrice("1928-S", "All Customers", "", "GBP", 52.0),
)


class DocumentLine(NamedTuple):
    line_type: str
    number: str
    quantity: float
    unit_price: float


class SalesDocument(NamedTuple):
    number: str
    customer: str
    document_date: str
    external_document: str
    lines: tuple[DocumentLine, ...]


SALES_ORDERS: tuple[SalesDocument, ...] = (
    SalesDocument("101001", "10000", "2026-10-02", "PO-CAN-4711", (
        DocumentLine("Item", "1896-S", 4, 1000.8), DocumentLine("Item", "1900-S", 8, 192.8))),
    SalesDocument("101002", "20000", "2026-10-09", "", (
        DocumentLine("Item", "1920-S", 1, 649.4), DocumentLine("Item", "1908-S", 6, 190.1),
        DocumentLine("Resource", "LINDA", 3, 90.0))),
    SalesDocument("101003", "49633663", "2026-10-14", "BEST-2026-118", (
        DocumentLine("Item", "1925-W", 2, 1980.0),)),
    SalesDocument("101004", "01121212", "2026-10-21", "SF-88812", (
        DocumentLine("Item", "1000", 3, 4700.0), DocumentLine("Item", "1100", 6, 140.0))),
    SalesDocument("101005", "72000", "2026-11-03", "", (
        DocumentLine("Item", "1964-S", 20, 228.0),)),
)

SALES_INVOICES: tuple[SalesDocument, ...] = (
    SalesDocument("103001", "10000", "2026-06-12", "PO-CAN-4520", (
        DocumentLine("Item", "1906-S", 2, 281.4), DocumentLine("Item", "1928-S", 10, 54.9))),
    SalesDocument("103002", "30000", "2026-07-03", "HAD-0092", (
        DocumentLine("Item", "1896-S", 6, 1000.8), DocumentLine("Item", "1908-S", 6, 190.1),
        DocumentLine("Resource", "MARTY", 8, 85.0))),
    SalesDocument("103003", "40000", "2026-07-28", "", (
        DocumentLine("Item", "1996-S", 1, 1397.3),)),
    SalesDocument("103004", "50000", "2026-08-15", "GWD-PO-3321", (
        DocumentLine("Item", "1929-W", 1, 2124.8), DocumentLine("Resource", "LIFT", 2, 320.0))),
    SalesDocument("103005", "31505050", "2026-09-01", "KB-2026-77", (
        DocumentLine("Item", "1900-S", 12, 192.0),)),
    SalesDocument("103006", "60000", "2026-09-19", "", (
        DocumentLine("Item", "1968-S", 2, 190.1), DocumentLine("Item", "1972-S", 2, 190.1))),
)
