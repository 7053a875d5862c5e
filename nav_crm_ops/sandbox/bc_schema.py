"""Entity definitions of the emulated Business Central API v2.0 and the navcrm/sync custom API.

Field names, option values and text lengths follow the documented API pages (and the table
fields behind them). Every entity has a server-set ``id`` GUID and ``lastModifiedDateTime``.
Entity names equal the API entity sets (``customers``, ``salesOrders``); in the store they are
addressed as ``"business_central:<name>"`` because ``contacts`` is also a Dataverse set.

``EntityDef.extra`` keys used by :mod:`.businesscentral`:
``label`` (the table caption in error messages), ``natural_key`` + ``natural_key_caption``
(the unique "No."/"Code" field), ``api`` (``"v2.0"`` or ``"custom"``), ``lines`` (entity set of
the document lines), ``hidden`` (stored columns the API does not show), ``computed`` (read-only
entities computed on read, no rows), ``country_fields`` (validated against countriesRegions),
``read_only`` (stored rows the API only reads; BC maintains them as a side effect of other
writes), ``parents`` (entity set that may address this one as ``<parent>(<id>)/<name>`` → the
column holding the parent's id), ``default_order`` (list order when the entity has no
natural key), ``page_read_only`` (an API page with ``Editable = false``: clients only read it;
the sandbox's admin helper :meth:`~nav_crm_ops.sandbox.Sandbox.bc_admin` still writes it).
"""

from __future__ import annotations

from typing import Any, Final, Literal

from .schema import Column, EntityDef

__all__ = ["BC_ENTITIES", "BC_SERVICE", "COMPUTED_ENTITIES", "bc_entity"]

BC_SERVICE: Final[Literal["business_central"]] = "business_central"

CUSTOMER_BLOCKED = (" ", "Ship", "Invoice", "All")
CONTACT_TYPES = ("Company", "Person")
ITEM_TYPES = ("Inventory", "Service", "Non-Inventory")
LINE_TYPES = ("Comment", "Account", "Item", "Resource", "Fixed Asset", "Charge")
ORDER_STATUSES = ("Draft", "In Review", "Open", "Released")
INVOICE_STATUSES = ("Draft", "In Review", "Open", "Paid", "Canceled", "Corrective")
SALES_TYPES = ("Customer", "Customer Price Group", "All Customers", "Campaign")
# Contact Business Relation "Link to Table" (NAV.contactBusinessRelationLinkToTable).
RELATION_LINK_TABLES = (" ", "Customer", "Vendor", "Bank Account", "Employee")


def _s(name: str, length: int, *, required: bool = False) -> Column:
    return Column(name, "string", max_length=length, required=required)


def _d(name: str, *, read_only: bool = False) -> Column:
    return Column(name, "decimal", read_only=read_only, default=0.0)


def _g(name: str) -> Column:
    return Column(name, "guid")


def _opt(name: str, options: tuple[str, ...], default: str) -> Column:
    return Column(name, "option", options=options, default=default)


ID = Column("id", "guid", read_only=True)
MODIFIED = Column("lastModifiedDateTime", "datetime", read_only=True)


def _entity(name: str, columns: tuple[Column, ...], *, label: str, natural_key: str | None,
            caption: str = "", api: str = "v2.0", parent: str | None = None,
            **extra: Any) -> EntityDef:
    meta: dict[str, Any] = {"label": label, "natural_key": natural_key,
                            "natural_key_caption": caption, "api": api, **extra}
    return EntityDef(service=BC_SERVICE, name=name, entity_set=name, key="id",
                     columns=(ID, *columns, MODIFIED), modified_column="lastModifiedDateTime",
                     parent=parent, extra=meta)


def _address() -> tuple[Column, ...]:
    return (_s("addressLine1", 100), _s("addressLine2", 50), _s("city", 30), _s("state", 30),
            _s("country", 10), _s("postalCode", 20))


COMPANIES = _entity("companies", (
    Column("systemVersion", "string", read_only=True), Column("timestamp", "bigint"),
    _s("name", 30), _s("displayName", 250), _s("businessProfileId", 250),
), label="Company", natural_key="name", caption="Name")

CUSTOMERS = _entity("customers", (
    _s("number", 20), _s("displayName", 100), _opt("type", CONTACT_TYPES, "Company"),
    *_address(), _s("phoneNumber", 30), _s("email", 80), _s("website", 80),
    _s("salespersonCode", 20), _d("balanceDue", read_only=True), _d("creditLimit"),
    Column("taxLiable", "bool", default=False), _g("taxAreaId"), _s("taxAreaDisplayName", 100),
    _s("taxRegistrationNumber", 20), _g("currencyId"), _s("currencyCode", 10),
    _g("paymentTermsId"), _g("shipmentMethodId"), _g("paymentMethodId"),
    _opt("blocked", CUSTOMER_BLOCKED, " "),
), label="Customer", natural_key="number", caption="No.", country_fields=("country",))

CONTACTS = _entity("contacts", (
    _s("number", 20), _opt("type", CONTACT_TYPES, "Company"), _s("displayName", 100),
    _s("firstName", 30), _s("middleName", 30), _s("surname", 30), _s("jobTitle", 30),
    _s("companyNumber", 20), _s("companyName", 100), _s("businessRelation", 50), *_address(),
    _s("phoneNumber", 30), _s("mobilePhoneNumber", 30), _s("email", 80), _s("website", 80),
    _s("searchName", 100), Column("privacyBlocked", "bool", default=False),
    _s("taxRegistrationNumber", 20), Column("lastInteractionDate", "date"),
), label="Contact", natural_key="number", caption="No.", country_fields=("country",))

ITEMS = _entity("items", (
    _s("number", 20), _s("displayName", 100), _s("displayName2", 50),
    _opt("type", ITEM_TYPES, "Inventory"), _g("itemCategoryId"), _s("itemCategoryCode", 20),
    Column("blocked", "bool", default=False), _s("gtin", 14), _d("inventory", read_only=True),
    _d("unitPrice"), Column("priceIncludesTax", "bool", default=False), _d("unitCost"),
    _g("taxGroupId"), _s("taxGroupCode", 20), _g("baseUnitOfMeasureId"),
    _s("baseUnitOfMeasureCode", 10), _s("generalProductPostingGroupCode", 20),
    _s("inventoryPostingGroupCode", 20),
), label="Item", natural_key="number", caption="No.")

CURRENCIES = _entity("currencies", (
    _s("code", 10), _s("displayName", 30), _s("symbol", 10), _s("amountDecimalPlaces", 5),
    Column("amountRoundingPrecision", "decimal", default=0.01),
), label="Currency", natural_key="code", caption="Code")

UNITS_OF_MEASURE = _entity("unitsOfMeasure", (
    _s("code", 10), _s("displayName", 50), _s("internationalStandardCode", 10),
    _s("symbol", 10),
), label="Unit of Measure", natural_key="code", caption="Code")

SALESPEOPLE = _entity("salespeoplePurchasers", (
    _s("code", 20), _s("displayName", 50), _s("email", 80), _s("email2", 80),
    _s("phoneNo", 30), _s("jobTitle", 30), _d("commisionPercent"),
    Column("privacyBlocked", "bool", default=False), Column("blocked", "bool", default=False),
), label="Salesperson/Purchaser", natural_key="code", caption="Code")

PAYMENT_TERMS = _entity("paymentTerms", (
    _s("code", 10), _s("displayName", 100), _s("dueDateCalculation", 32),
    _s("discountDateCalculation", 32), _d("discountPercent"),
    Column("calculateDiscountOnCreditMemos", "bool", default=False),
), label="Payment Terms", natural_key="code", caption="Code")

SHIPMENT_METHODS = _entity("shipmentMethods", (
    _s("code", 10), _s("displayName", 100),
), label="Shipment Method", natural_key="code", caption="Code")

COUNTRIES = _entity("countriesRegions", (
    _s("code", 10), _s("displayName", 50), _s("addressFormat", 30),
), label="Country/Region", natural_key="code", caption="Code")

_DOCUMENT_HEADER = (
    _s("number", 20), _s("externalDocumentNumber", 35), _s("yourReference", 35),
    _g("customerId"), _s("customerNumber", 20), _s("customerName", 100),
    _g("billToCustomerId"), _s("billToCustomerNumber", 20), _s("billToName", 100),
    _s("sellToAddressLine1", 100), _s("sellToAddressLine2", 50), _s("sellToCity", 30),
    _s("sellToCountry", 10), _s("sellToState", 30), _s("sellToPostCode", 20),
    _g("currencyId"), _s("currencyCode", 10), Column("pricesIncludeTax", "bool", default=False),
    _g("paymentTermsId"), _g("shipmentMethodId"), _s("salesperson", 20),
    _d("discountAmount"), _d("totalAmountExcludingTax", read_only=True),
    _d("totalTaxAmount", read_only=True), _d("totalAmountIncludingTax", read_only=True),
    _s("phoneNumber", 30), _s("email", 80),
)

SALES_ORDERS = _entity("salesOrders", (
    *_DOCUMENT_HEADER, Column("orderDate", "date"), Column("postingDate", "date"),
    Column("requestedDeliveryDate", "date"),
    Column("fullyShipped", "bool", default=False, read_only=True),
    _opt("status", ORDER_STATUSES, "Draft"),
), label="Sales Header", natural_key="number", caption="No.", lines="salesOrderLines",
    document_type="Order")

SALES_INVOICES = _entity("salesInvoices", (
    *_DOCUMENT_HEADER, Column("invoiceDate", "date"), Column("postingDate", "date"),
    Column("dueDate", "date"), _g("orderId"), _s("orderNumber", 20),
    _d("remainingAmount", read_only=True), _opt("status", INVOICE_STATUSES, "Draft"),
), label="Sales Header", natural_key="number", caption="No.", lines="salesInvoiceLines",
    document_type="Invoice")

_LINE = (
    _g("documentId"), Column("sequence", "int"), _g("itemId"), _g("accountId"),
    _opt("lineType", LINE_TYPES, "Item"), _s("lineObjectNumber", 20), _s("description", 100),
    _s("description2", 50), _g("unitOfMeasureId"), _s("unitOfMeasureCode", 10),
    _d("quantity"), _d("unitPrice"), _d("discountAmount"), _d("discountPercent"),
    _d("amountExcludingTax", read_only=True), _s("taxCode", 20), _d("taxPercent"),
    _d("totalTaxAmount", read_only=True), _d("amountIncludingTax", read_only=True),
    _d("netAmount", read_only=True), Column("shipmentDate", "date"),
    _d("shippedQuantity", read_only=True), _d("invoicedQuantity", read_only=True),
)

SALES_ORDER_LINES = _entity("salesOrderLines", _LINE, label="Sales Line", natural_key=None,
                            parent="salesOrders", hidden=("lastModifiedDateTime",))
SALES_INVOICE_LINES = _entity("salesInvoiceLines", _LINE, label="Sales Line",
                              natural_key=None, parent="salesInvoices",
                              hidden=("lastModifiedDateTime",))

# One row per contact business relation (table 5054), as the API page contactInformation shows
# it. Contact number, name and type are copies kept current by the contact writes, so the rows
# can be filtered and paged like any stored entity; ``id`` is the sandbox's row key only.
CONTACTS_INFORMATION = _entity("contactsInformation", (
    _g("contactId"), _s("contactNumber", 20), _s("contactName", 100),
    _opt("contactType", CONTACT_TYPES, "Company"), _g("relatedId"),
    _opt("relatedType", RELATION_LINK_TABLES, " "),
), label="Contact Business Relation", natural_key=None, hidden=("id", "lastModifiedDateTime"),
    read_only=True, parents={"customers": "relatedId"},
    default_order=(("contactNumber", False), ("relatedType", False)),
    indexed=("contactNumber", "contactId", "relatedId"))

RESOURCES = _entity("resources", (
    _s("number", 20), _s("name", 100), _opt("type", ("Person", "Machine"), "Person"),
    _s("baseUnitOfMeasureCode", 10), _d("unitPrice"), _d("unitCost"),
    Column("blocked", "bool", default=False),
), label="Resource", natural_key="number", caption="No.", api="custom")

PRICE_GROUPS = _entity("customerPriceGroups", (
    _s("code", 10), _s("description", 100),
    Column("priceIncludesVat", "bool", default=False),
    Column("allowInvoiceDisc", "bool", default=True),
), label="Customer Price Group", natural_key="code", caption="Code", api="custom")

SALES_PRICES = _entity("salesPrices", (
    _s("itemNumber", 20), _opt("salesType", SALES_TYPES, "Customer"), _s("salesCode", 20),
    _s("currencyCode", 10), Column("startingDate", "date"), Column("endingDate", "date"),
    _s("unitOfMeasureCode", 10), _d("minimumQuantity"), _d("unitPrice"),
    Column("priceListCode", "string", max_length=21, read_only=True),
), label="Sales Price", natural_key=None, api="custom", indexed=("priceListCode",),
    page_read_only=True)

BC_ENTITIES: tuple[EntityDef, ...] = (
    COMPANIES, CUSTOMERS, CONTACTS, ITEMS, CURRENCIES, UNITS_OF_MEASURE, SALESPEOPLE,
    PAYMENT_TERMS, SHIPMENT_METHODS, COUNTRIES, SALES_ORDERS, SALES_ORDER_LINES, SALES_INVOICES,
    SALES_INVOICE_LINES, CONTACTS_INFORMATION, RESOURCES, PRICE_GROUPS, SALES_PRICES,
)

# Read-only entities computed on every read (no table): from customers and invoices, and
# customerPriceLists from price groups and sales prices (see price_lists.py).
COMPUTED_ENTITIES: dict[str, str] = {
    "customerFinancialDetails": "v2.0",
    "customerStatistics": "custom",
    "customerPriceLists": "custom",
}

_BY_NAME = {ent.name: ent for ent in BC_ENTITIES}


def bc_entity(name: str) -> EntityDef | None:
    """The stored entity whose entity set is ``name`` (None when unknown)."""
    return _BY_NAME.get(name)
