"""The NAV 2018 pages the sandbox publishes as OData v4 web services, in one table.

Each :class:`Page` is a standard NAV 2018 page an administrator publishes on the *Web
Services* page (object type Page, a service name; "How to: Publish a Web Service",
https://learn.microsoft.com/previous-versions/dynamicsnav-2018-developer/how-to--publish-a-web-service).
Its fields carry the names NAV gives them on the wire: the page control's caption with every
non-alphanumeric character turned into ``_`` (``Phone No.`` → ``Phone_No``, ``E-Mail`` →
``E_Mail``) — see "Walkthrough: Creating and Interacting with a Page Web Service (OData)",
which publishes page 21 Customer Card as ``Customer``.

A page is a *view* over the Business Central entity the sandbox already stores (same rows, same
store): every :class:`Field` names the BC store column it shows, or how it is derived:

==========================  ====  ===========================  ==============================
service name                page  NAV page                     BC entity (store)
==========================  ====  ===========================  ==============================
Customer                    21    Customer Card                customers
Contact                     5050  Contact Card                 contacts
SalespersonPurchaser        5116  Salesperson/Purchaser Card   salespeoplePurchasers
Currencies                  5     Currencies                   currencies
UnitsOfMeasure              209   Units of Measure             unitsOfMeasure
Item                        30    Item Card                    items
Resource                    76    Resource Card                resources
CustomerPriceGroups         7     Customer Price Groups        customerPriceGroups
SalesPrices                 7002  Sales Prices                 salesPrices
PostedSalesInvoice          132   Posted Sales Invoice         salesInvoices (posted only)
PostedSalesInvoiceLines     133   Posted Sales Invoice Subform salesInvoiceLines (posted)
SalesOrder                  42    Sales Order                  salesOrders
SalesOrderSalesLines        46    Sales Order Subform          salesOrderLines
CustomerStatistics          151   Customer Statistics          customers (computed figures)
ContactBusinessRelations    5061  Contact Business Relations   contactsInformation
GeneralLedgerSetup          118   General Ledger Setup         companies (one setup record)
==========================  ====  ===========================  ==============================

``Last_Date_Modified`` is the *date* part of the row's ``lastModifiedDateTime``: NAV 2018
tables carry "Last Date Modified" (a Date) and no time of day. Document tables (Sales Header,
Sales Invoice Header, lines) have no such field in NAV 2018, so their pages do not show one.

Contact Business Relations (table 5054) is how NAV knows a contact's customer: a company
contact's relation ``CUST`` links it to table Customer, record ``No``. Page 5061 shows the
relation code and description, the contact name, Link to Table and No.; NAV adds the table's
primary key fields to a page web service even when the page has no control for them ("How to:
Use OData to Return/Obtain a Service Metadata (EDMX) Document", NAV 2018), so ``Contact_No`` is
published too. The sandbox publishes the page read-only: Business Central keeps these rows as a
side effect of creating customers, and no mapping writes them.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from ..business_central.common import LOCAL_CURRENCY

__all__ = ["PAGES", "Field", "Page", "Source", "page_by_service"]


class Source(StrEnum):
    """Where a page field's value comes from."""

    COLUMN = "column"
    """A column of the page's BC entity."""
    MODIFIED_DATE = "modified_date"
    """The date part of the row's ``lastModifiedDateTime`` (NAV's Last Date Modified)."""
    CONSTANT = "constant"
    """A fixed value (``Document_Type`` is always ``Order`` on the Sales Order page)."""
    DOCUMENT_NUMBER = "document_number"
    """A line's document number: the ``number`` of the header its ``documentId`` names."""
    COMPUTED = "computed"
    """A figure of a computed page (customer statistics), named by ``column``."""
    CODE = "code"
    """A code NAV's setup assigns to each value of ``column`` (:attr:`Field.codes`): the
    business relation code Marketing Setup gives relations to customers, vendors, banks."""
    RELATED_NUMBER = "related_number"
    """The ``number`` of the :attr:`Field.refers_to` record whose id ``column`` holds (a
    business relation's ``No``: the customer number)."""


@dataclass(frozen=True)
class Field:
    """One page field: its NAV name and where its value comes from."""

    name: str
    column: str | None = None
    source: Source = Source.COLUMN
    editable: bool = True
    constant: str | None = None
    codes: tuple[tuple[str, str], ...] = ()
    """For :attr:`Source.CODE`: (column value, code) pairs; other values show blank."""
    refers_to: str | None = None
    """For :attr:`Source.RELATED_NUMBER`: the BC entity whose record ``column`` names."""
    captions: tuple[tuple[str, str], ...] = ()
    """For option columns: (stored value, NAV caption) where NAV's option caption differs
    from the Business Central API's value (a sales line's ``Account`` is NAV's ``G/L
    Account``); other values keep their caption."""


@dataclass(frozen=True)
class Page:
    """One published page: service name, page id and name, the BC entity it views, its key
    fields (the page's table primary key, as NAV puts it in the URL) and fields."""

    service: str
    page_id: int
    page_name: str
    entity: str
    keys: tuple[str, ...]
    fields: tuple[Field, ...]
    editable: bool = True
    scope: tuple[str, tuple[str, ...]] = ("", ())
    """Extra SQL condition on the BC rows the page shows (posted invoices only)."""
    parent: str | None = None
    """For line pages: the BC entity of the document header."""
    computed: bool = False
    stands_for: str | None = None
    """The Business Central entity set a workspace's ``[nav.pages]`` names this page for,
    when not :attr:`entity` (a computed page, a setup record over the company row)."""

    @property
    def entity_set(self) -> str:
        return self.stands_for or self.entity

    def field(self, name: str) -> Field | None:
        return next((f for f in self.fields if f.name == name), None)


def _c(name: str, column: str) -> Field:
    return Field(name, column)


def _ro(name: str, column: str) -> Field:
    return Field(name, column, editable=False)


def _stat(name: str, column: str) -> Field:
    return Field(name, column, Source.COMPUTED, editable=False)


LAST_DATE_MODIFIED = Field("Last_Date_Modified", "lastModifiedDateTime", Source.MODIFIED_DATE,
                           editable=False)
ORDER_TYPE = Field("Document_Type", None, Source.CONSTANT, editable=False, constant="Order")
DOCUMENT_NO = Field("Document_No", "documentId", Source.DOCUMENT_NUMBER)

_ADDRESS = (_c("Address", "addressLine1"), _c("Address_2", "addressLine2"), _c("City", "city"),
            _c("County", "state"), _c("Post_Code", "postalCode"),
            _c("Country_Region_Code", "country"))

CUSTOMER = Page("Customer", 21, "Customer Card", "customers", ("No",), (
    _c("No", "number"), _c("Name", "displayName"), *_ADDRESS, _c("Phone_No", "phoneNumber"),
    _c("E_Mail", "email"), _c("Home_Page", "website"), _c("Salesperson_Code", "salespersonCode"),
    _c("Credit_Limit_LCY", "creditLimit"), _ro("Balance_LCY", "balanceDue"),
    _c("Currency_Code", "currencyCode"), _c("VAT_Registration_No", "taxRegistrationNumber"),
    _c("Blocked", "blocked"), LAST_DATE_MODIFIED))

CONTACT = Page("Contact", 5050, "Contact Card", "contacts", ("No",), (
    _c("No", "number"), _c("Type", "type"), _c("Name", "displayName"),
    _c("First_Name", "firstName"), _c("Middle_Name", "middleName"), _c("Surname", "surname"),
    _c("Job_Title", "jobTitle"), _c("Company_No", "companyNumber"),
    _ro("Company_Name", "companyName"), *_ADDRESS, _c("Phone_No", "phoneNumber"),
    _c("Mobile_Phone_No", "mobilePhoneNumber"), _c("E_Mail", "email"),
    _c("Home_Page", "website"), _ro("Search_Name", "searchName"),
    _c("Privacy_Blocked", "privacyBlocked"), LAST_DATE_MODIFIED))

SALESPERSON = Page("SalespersonPurchaser", 5116, "Salesperson/Purchaser Card",
                   "salespeoplePurchasers", ("Code",), (
                       _c("Code", "code"), _c("Name", "displayName"), _c("E_Mail", "email"),
                       _c("Phone_No", "phoneNo"), _c("Job_Title", "jobTitle"),
                       _c("Commission_Percent", "commisionPercent"),
                       _c("Privacy_Blocked", "privacyBlocked")))

CURRENCIES = Page("Currencies", 5, "Currencies", "currencies", ("Code",), (
    _c("Code", "code"), _c("Description", "displayName"), _c("Symbol", "symbol"),
    _c("Amount_Decimal_Places", "amountDecimalPlaces"),
    _c("Amount_Rounding_Precision", "amountRoundingPrecision"), LAST_DATE_MODIFIED))

UNITS_OF_MEASURE = Page("UnitsOfMeasure", 209, "Units of Measure", "unitsOfMeasure", ("Code",), (
    _c("Code", "code"), _c("Description", "displayName"),
    _c("International_Standard_Code", "internationalStandardCode")))

ITEM = Page("Item", 30, "Item Card", "items", ("No",), (
    _c("No", "number"), _c("Description", "displayName"), _c("Description_2", "displayName2"),
    _c("Type", "type"), _c("Item_Category_Code", "itemCategoryCode"), _c("Blocked", "blocked"),
    _c("GTIN", "gtin"), _ro("Inventory", "inventory"), _c("Unit_Price", "unitPrice"),
    _c("Price_Includes_VAT", "priceIncludesTax"), _c("Unit_Cost", "unitCost"),
    _c("Base_Unit_of_Measure", "baseUnitOfMeasureCode"),
    _c("Gen_Prod_Posting_Group", "generalProductPostingGroupCode"),
    _c("Inventory_Posting_Group", "inventoryPostingGroupCode"), LAST_DATE_MODIFIED))

RESOURCE = Page("Resource", 76, "Resource Card", "resources", ("No",), (
    _c("No", "number"), _c("Name", "name"), _c("Type", "type"),
    _c("Base_Unit_of_Measure", "baseUnitOfMeasureCode"), _c("Unit_Price", "unitPrice"),
    _c("Unit_Cost", "unitCost"), _c("Blocked", "blocked"), LAST_DATE_MODIFIED))

PRICE_GROUPS = Page("CustomerPriceGroups", 7, "Customer Price Groups", "customerPriceGroups",
                    ("Code",), (
                        _c("Code", "code"), _c("Description", "description"),
                        _c("Price_Includes_VAT", "priceIncludesVat"),
                        _c("Allow_Invoice_Disc", "allowInvoiceDisc")))

# Table 7002 Sales Price's primary key, in its order; Variant_Code is always blank here.
SALES_PRICES = Page("SalesPrices", 7002, "Sales Prices", "salesPrices", (
    "Item_No", "Sales_Type", "Sales_Code", "Starting_Date", "Currency_Code", "Variant_Code",
    "Unit_of_Measure_Code", "Minimum_Quantity"), (
    _c("Item_No", "itemNumber"), _c("Sales_Type", "salesType"), _c("Sales_Code", "salesCode"),
    _c("Starting_Date", "startingDate"), _c("Currency_Code", "currencyCode"),
    Field("Variant_Code", None, Source.CONSTANT, editable=False, constant=""),
    _c("Unit_of_Measure_Code", "unitOfMeasureCode"), _c("Minimum_Quantity", "minimumQuantity"),
    _c("Unit_Price", "unitPrice"), _c("Ending_Date", "endingDate")))

_POSTED = ('"status" <> ?', ("Draft",))

# Sales Header and Sales Invoice Header share these fields (the invoice copies the order's).
_SELL_TO = (_c("No", "number"), _c("Sell_to_Customer_No", "customerNumber"),
            _ro("Sell_to_Customer_Name", "customerName"))
_HEADER_TOTALS = (_c("External_Document_No", "externalDocumentNumber"),
                  _c("Currency_Code", "currencyCode"), _ro("Salesperson_Code", "salesperson"),
                  _ro("Amount", "totalAmountExcludingTax"),
                  _ro("Amount_Including_VAT", "totalAmountIncludingTax"))

POSTED_INVOICE = Page("PostedSalesInvoice", 132, "Posted Sales Invoice", "salesInvoices",
                      ("No",), (
                          *_SELL_TO, _c("Bill_to_Customer_No", "billToCustomerNumber"),
                          _c("Bill_to_Name", "billToName"), _c("Posting_Date", "postingDate"),
                          _c("Document_Date", "invoiceDate"), _c("Due_Date", "dueDate"),
                          _c("Order_No", "orderNumber"), *_HEADER_TOTALS,
                          _ro("Remaining_Amount", "remainingAmount")),
                      editable=False, scope=_POSTED)

# NAV 2018's Sales Line and Sales Invoice Line Type: " ,G/L Account,Item,Resource,Fixed
# Asset,Charge (Item)" (the blank option is a comment line).
_LINE_TYPE_CAPTIONS = (("Comment", " "), ("Account", "G/L Account"), ("Charge", "Charge (Item)"))

_LINE_FIELDS = (
    DOCUMENT_NO, _c("Line_No", "sequence"), Field("Type", "lineType", captions=_LINE_TYPE_CAPTIONS),
    _c("No", "lineObjectNumber"), _c("Description", "description"),
    _c("Unit_of_Measure_Code", "unitOfMeasureCode"), _c("Quantity", "quantity"),
    _c("Unit_Price", "unitPrice"), _c("Line_Discount_Percent", "discountPercent"),
    _c("Line_Discount_Amount", "discountAmount"), _ro("Line_Amount", "amountExcludingTax"),
    _c("VAT_Percent", "taxPercent"), _ro("Amount_Including_VAT", "amountIncludingTax"),
    _c("Shipment_Date", "shipmentDate"))

POSTED_INVOICE_LINES = Page("PostedSalesInvoiceLines", 133, "Posted Sales Invoice Subform",
                            "salesInvoiceLines", ("Document_No", "Line_No"), _LINE_FIELDS,
                            editable=False, parent="salesInvoices",
                            scope=('(SELECT h."status" FROM {parent} AS h WHERE h."id" = '
                                   '"documentId") <> ?', ("Draft",)))

SALES_ORDER = Page("SalesOrder", 42, "Sales Order", "salesOrders", ("Document_Type", "No"), (
    ORDER_TYPE, *_SELL_TO, _c("Your_Reference", "yourReference"),
    _c("Order_Date", "orderDate"), _c("Posting_Date", "postingDate"),
    _c("Requested_Delivery_Date", "requestedDeliveryDate"), _ro("Status", "status"),
    *_HEADER_TOTALS))

SALES_ORDER_LINES = Page("SalesOrderSalesLines", 46, "Sales Order Subform", "salesOrderLines",
                         ("Document_Type", "Document_No", "Line_No"),
                         (ORDER_TYPE, *_LINE_FIELDS), parent="salesOrders")

CUSTOMER_STATISTICS = Page("CustomerStatistics", 151, "Customer Statistics", "customers",
                           ("No",), (
                               _stat("No", "customerNumber"), _stat("Name", "customerName"),
                               _stat("Balance_LCY", "balance"),
                               _stat("Outstanding_Orders_LCY", "outstandingOrders"),
                               _stat("Shipped_Not_Invoiced_LCY", "shippedNotInvoiced"),
                               _stat("Outstanding_Invoices_LCY", "outstandingInvoices"),
                               _stat("Balance_Due_LCY", "overdueAmount"),
                               _stat("Sales_LCY", "totalSales")),
                           editable=False, computed=True, stands_for="customerStatistics")

# CRONUS's Marketing Setup: "Bus. Rel. Code for Customers" CUST, Vendors VEND, Bank Accounts
# BANK (table 5053 Business Relation holds the descriptions).
_RELATION_CODES = (("Customer", "CUST"), ("Vendor", "VEND"), ("Bank Account", "BANK"),
                   ("Employee", "EMP"))
_RELATION_NAMES = (("Customer", "Customer"), ("Vendor", "Vendor"), ("Bank Account", "Bank"),
                   ("Employee", "Employee"))

# The sandbox's business relations all link to customers (the BC rules create them with the
# customer), so the relation's No. is the number of the customer its relatedId names.
CONTACT_RELATIONS = Page("ContactBusinessRelations", 5061, "Contact Business Relations",
                         "contactsInformation", ("Contact_No", "Business_Relation_Code"), (
                             _ro("Contact_No", "contactNumber"),
                             Field("Business_Relation_Code", "relatedType", Source.CODE,
                                   editable=False, codes=_RELATION_CODES),
                             Field("Business_Relation_Description", "relatedType", Source.CODE,
                                   editable=False, codes=_RELATION_NAMES),
                             _ro("Contact_Name", "contactName"),
                             _ro("Link_to_Table", "relatedType"),
                             Field("No", "relatedId", Source.RELATED_NUMBER, editable=False,
                                   refers_to="customers")),
                         editable=False)

# Table 98 General Ledger Setup has one record (Primary Key blank) per company: the sandbox
# shows it over the company row, with CRONUS's local currency (LCY) code.
GL_SETUP = Page("GeneralLedgerSetup", 118, "General Ledger Setup", "companies",
                ("Primary_Key",), (
                    Field("Primary_Key", None, Source.CONSTANT, editable=False, constant=""),
                    Field("LCY_Code", None, Source.CONSTANT, editable=False,
                          constant=LOCAL_CURRENCY),
                    Field("Additional_Reporting_Currency", None, Source.CONSTANT,
                          editable=False, constant="")),
                editable=False, stands_for="generalLedgerSetup")

PAGES: tuple[Page, ...] = (
    CUSTOMER, CONTACT, SALESPERSON, CURRENCIES, UNITS_OF_MEASURE, ITEM, RESOURCE, PRICE_GROUPS,
    SALES_PRICES, POSTED_INVOICE, POSTED_INVOICE_LINES, SALES_ORDER, SALES_ORDER_LINES,
    CUSTOMER_STATISTICS, CONTACT_RELATIONS, GL_SETUP,
)

_BY_SERVICE = {page.service: page for page in PAGES}


def page_by_service(name: str) -> Page | None:
    """The published page whose service name is ``name`` (service names are
    case-sensitive, as NAV's are)."""
    return _BY_SERVICE.get(name)
