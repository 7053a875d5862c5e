"""Entity definitions of the emulated Dataverse (Dynamics 365 Sales) environment.

Logical names, entity sets, column names, types and maximum lengths follow the real Dataverse
tables (plus the BC integration solution's ``nav_`` columns and ``nav_accountstatistics``).

Store conventions for the seed and the API:
- A lookup is stored under its logical name (``primarycontactid``) as a GUID; the API shows it as
  ``_primarycontactid_value``. Polymorphic lookups also store the target logical name in the
  read-only companion column of :data:`TYPE_COLUMN_SUFFIX` (``customeridtype`` = ``"account"``).
- ``contact.fullname`` is derived; writers outside the API call :func:`derive_columns`.
- ``EntityDef.extra`` keys: ``primary_name`` (column shown as a lookup's formatted value),
  ``alternate_keys`` (columns usable as ``set(col='v')``), ``states`` (statecode → allowed
  statuscodes, first is the default), ``owned`` (has ownerid), ``internal`` (not exposed),
  ``autonumber`` (column, prefix) filled on create when empty, ``indexed`` (lookups the store
  indexes because the API filters or cascades on them), ``collections`` (collection-valued
  navigation property → (child logical name, child lookup to this row)) for deep insert and
  ``$expand``; ``transitions`` (allowed (from, to) statecode changes on update; None: any);
  ``cascade`` (lookups whose target's deletion deletes the row, besides ``parent``).
- Document lines (``salesorderdetail``, ``invoicedetail``) keep their amounts the way system
  pricing does; see :func:`line_amounts`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .schema import Column, EntityDef

__all__ = [
    "ACCESS_MODES",
    "DATAVERSE_ENTITIES",
    "DETAIL_HEADERS",
    "OPTION_VALUE_ENTITY",
    "TYPE_COLUMN_SUFFIX",
    "derive_columns",
    "entity_definition",
    "is_polymorphic",
    "line_amounts",
    "type_column",
]

TYPE_COLUMN_SUFFIX = "type"
OPTION_VALUE_ENTITY = "sandbox_optionvalue"

ACCESS_MODES = {0: "Read-Write", 1: "Administrative", 2: "Read", 3: "Support User",
                4: "Non-interactive", 5: "Delegated Admin"}
CUSTOMER_TYPES = {1: "Competitor", 2: "Consultant", 3: "Customer", 4: "Investor", 5: "Partner",
                  6: "Influencer", 7: "Press", 8: "Prospect", 9: "Reseller", 10: "Supplier",
                  11: "Vendor", 12: "Other"}
PAYMENT_TERMS = {1: "Net 30", 2: "2% 10, Net 30", 3: "Net 45", 4: "Net 60"}
FREIGHT_TERMS = {1: "FOB", 2: "No Charge"}
SHIPPING_METHODS = {1: "Airborne", 2: "DHL", 3: "FedEx", 4: "UPS", 5: "Postal Mail",
                    6: "Full Load", 7: "Will Call"}
INDEXED_LOOKUPS = frozenset({
    "parentcustomerid", "customerid", "parentaccountid", "primarycontactid", "salesorderid",
    "invoiceid", "regardingobjectid", "nav_accountid", "pricelevelid", "productid",
    "uomscheduleid",
})
ACTIVE_INACTIVE = {0: "Active", 1: "Inactive"}
ACTIVE_INACTIVE_STATUS = {1: "Active", 2: "Inactive"}


def is_polymorphic(column: Column) -> bool:
    return column.type == "lookup" and len(column.lookup_targets) > 1


def type_column(column: Column) -> str:
    """Name of the column that stores a polymorphic lookup's target logical name."""
    return f"{column.name}{TYPE_COLUMN_SUFFIX}"


def _s(name: str, length: int, *, required: bool = False) -> Column:
    return Column(name, "string", max_length=length, required=required)


def _lookup(name: str, *targets: str, required: bool = False, read_only: bool = False,
            navigation: str | None = None) -> Column:
    return Column(name, "lookup", lookup_targets=targets, navigation=navigation or name,
                  required=required, read_only=read_only)


def _choice(name: str, choices: Mapping[int, str], default: int | None = None) -> Column:
    return Column(name, "choice", choices=dict(choices), default=default)


def _address(prefix: str = "address1") -> tuple[Column, ...]:
    return (
        _s(f"{prefix}_line1", 250), _s(f"{prefix}_line2", 250), _s(f"{prefix}_line3", 250),
        _s(f"{prefix}_city", 80), _s(f"{prefix}_postalcode", 20),
        _s(f"{prefix}_country", 80), _s(f"{prefix}_stateorprovince", 50),
        _s(f"{prefix}_telephone1", 50),
    )


def _entity(
    name: str,
    entity_set: str,
    columns: tuple[Column, ...],
    *,
    primary_name: str | None = "name",
    states: Mapping[int, tuple[int, ...]] | None = None,
    status_labels: Mapping[int, str] | None = None,
    state_labels: Mapping[int, str] | None = None,
    owned: bool = True,
    tracked: bool = False,
    alternate_keys: tuple[str, ...] = (),
    parent: str | None = None,
    autonumber: tuple[str, str] | None = None,
    internal: bool = False,
    collections: Mapping[str, tuple[str, str]] | None = None,
    transitions: frozenset[tuple[int, int]] | None = None,
    cascade: tuple[str, ...] = (),
) -> EntityDef:
    """Add the system columns every Dataverse table has (id, audit, version, state, owner)."""
    key = f"{name}id"
    cols: list[Column] = [Column(key, "guid"), *columns]
    cols.extend(Column(type_column(col), "string", max_length=64, read_only=True)
                for col in columns if is_polymorphic(col))
    if states is not None:
        cols.extend(_state_columns(states, state_labels, status_labels))
    if owned:
        cols.append(_lookup("ownerid", "systemuser", "team"))
        cols.append(Column(f"ownerid{TYPE_COLUMN_SUFFIX}", "string", max_length=64,
                           read_only=True))
    cols.extend(_audit_columns())
    if _needs_currency(columns):
        cols.append(_lookup("transactioncurrencyid", "transactioncurrency"))
    indexed = tuple(c.name for c in columns if c.type == "lookup" and c.name in INDEXED_LOOKUPS)
    extra: dict[str, Any] = {"primary_name": primary_name, "alternate_keys": alternate_keys,
                             "indexed": indexed,
                             "states": dict(states or {}), "owned": owned,
                             "internal": internal, "autonumber": autonumber,
                             "collections": dict(collections or {}),
                             "transitions": transitions, "cascade": cascade}
    return EntityDef(
        service="dataverse", name=name, entity_set=entity_set, key=key, columns=tuple(cols),
        modified_column="modifiedon", created_column="createdon",
        version_column="versionnumber", change_tracking=tracked, parent=parent, extra=extra,
    )


entity_definition = _entity
"""A table with the system columns every Dataverse table has (tables created at run time)."""


def _state_columns(states: Mapping[int, tuple[int, ...]], state_labels: Mapping[int, str] | None,
                   status_labels: Mapping[int, str] | None) -> tuple[Column, Column]:
    return (_choice("statecode", state_labels or ACTIVE_INACTIVE, default=0),
            _choice("statuscode", status_labels or ACTIVE_INACTIVE_STATUS,
                    default=states[0][0]))


def _audit_columns() -> tuple[Column, ...]:
    return (Column("createdon", "datetime", read_only=True),
            Column("modifiedon", "datetime", read_only=True),
            _lookup("createdby", "systemuser", read_only=True),
            _lookup("modifiedby", "systemuser", read_only=True),
            Column("versionnumber", "bigint", read_only=True))


def _needs_currency(columns: tuple[Column, ...]) -> bool:
    """Money columns need a currency lookup (added unless the table declares one)."""
    return any(c.type == "money" for c in columns) and not any(
        c.name == "transactioncurrencyid" for c in columns)


def _header_totals() -> tuple[Column, ...]:
    """Order/invoice totals: the line total is computed, the others come from the client."""
    return (Column("totalamount", "money"), Column("totaltax", "money"),
            Column("discountamount", "money"),
            Column("totallineitemamount", "money", read_only=True))


def _line_amount_columns() -> tuple[Column, ...]:
    """Detail amounts: base and extended amounts are computed from the others.

    ``ispriceoverridden`` tells the real service's system pricing to keep ``priceperunit``
    instead of taking the price list's; the sandbox always uses ``priceperunit``.
    """
    return (Column("quantity", "decimal"), Column("priceperunit", "money"),
            Column("ispriceoverridden", "bool", default=False),
            Column("manualdiscountamount", "money"), Column("tax", "money"),
            Column("baseamount", "money", read_only=True),
            Column("extendedamount", "money", read_only=True))


_ACTIVE = {0: (1,), 1: (2,)}

SYSTEMUSER = _entity("systemuser", "systemusers", (
    _s("fullname", 200), _s("firstname", 64), _s("lastname", 64), _s("domainname", 1024),
    _s("internalemailaddress", 100), _s("title", 128), _s("mobilephone", 64),
    _s("address1_telephone1", 64),
    Column("isdisabled", "bool", default=False), Column("islicensed", "bool", default=True),
    _choice("accessmode", ACCESS_MODES, default=0), Column("applicationid", "guid"),
    _lookup("businessunitid", "businessunit"),
), primary_name="fullname", owned=False, tracked=True, alternate_keys=("domainname",))

TEAM = _entity("team", "teams", (
    _s("name", 160, required=True), _lookup("businessunitid", "businessunit"),
    _choice("teamtype", {0: "Owner", 1: "Access"}, default=0), Column("description", "memo",
                                                                      max_length=2000),
), owned=False)

BUSINESSUNIT = _entity("businessunit", "businessunits", (
    _s("name", 160, required=True), _lookup("parentbusinessunitid", "businessunit"),
), owned=False)

TRANSACTIONCURRENCY = _entity("transactioncurrency", "transactioncurrencies", (
    _s("isocurrencycode", 5, required=True), _s("currencyname", 100, required=True),
    _s("currencysymbol", 13), Column("exchangerate", "decimal", default=1.0),
    Column("currencyprecision", "int", default=2),
), primary_name="currencyname", states=_ACTIVE, owned=False, tracked=True,
    alternate_keys=("isocurrencycode",))

UOMSCHEDULE = _entity("uomschedule", "uomschedules", (
    _s("name", 200, required=True), _s("baseuomname", 100, required=True),
    Column("description", "memo", max_length=2000),
), states=_ACTIVE, owned=False, tracked=True)

UOM = _entity("uom", "uoms", (
    _s("name", 100, required=True), _lookup("uomscheduleid", "uomschedule", required=True),
    Column("quantity", "decimal", default=1.0), _lookup("baseuom", "uom"),
    Column("isschedulebaseuom", "bool", default=False),
), owned=False)

ACCOUNT = _entity("account", "accounts", (
    _s("name", 160, required=True), _s("accountnumber", 20), _s("telephone1", 50),
    _s("telephone2", 50), _s("fax", 50), _s("emailaddress1", 100), _s("websiteurl", 200),
    *_address(), _s("address1_primarycontactname", 150),
    _choice("customertypecode", CUSTOMER_TYPES), Column("creditlimit", "money"),
    _choice("paymenttermscode", PAYMENT_TERMS),
    _choice("address1_freighttermscode", FREIGHT_TERMS),
    _choice("address1_shippingmethodcode", SHIPPING_METHODS),
    _lookup("transactioncurrencyid", "transactioncurrency"),
    _lookup("primarycontactid", "contact"), _lookup("parentaccountid", "account"),
    Column("description", "memo", max_length=2000),
), states=_ACTIVE, tracked=True, alternate_keys=("accountnumber",))

CONTACT = _entity("contact", "contacts", (
    _s("firstname", 50), _s("middlename", 50), _s("lastname", 50, required=True),
    Column("fullname", "string", max_length=160, read_only=True), _s("salutation", 100),
    _s("emailaddress1", 100), _s("telephone1", 50), _s("telephone2", 50), _s("mobilephone", 50),
    _s("fax", 50), _s("jobtitle", 100), *_address(),
    _lookup("parentcustomerid", "account", "contact"),
    _lookup("transactioncurrencyid", "transactioncurrency"),
    Column("description", "memo", max_length=2000),
), primary_name="fullname", states=_ACTIVE, tracked=True)

PRODUCT = _entity("product", "products", (
    _s("productnumber", 100, required=True), _s("name", 100, required=True),
    Column("price", "money"), Column("standardcost", "money"), Column("currentcost", "money"),
    Column("quantityonhand", "decimal"), Column("quantitydecimal", "int", default=2),
    _lookup("defaultuomscheduleid", "uomschedule"), _lookup("defaultuomid", "uom"),
    _lookup("pricelevelid", "pricelevel"),
    _choice("producttypecode", {1: "Sales Inventory", 2: "Miscellaneous Charges",
                                3: "Services", 4: "Flat Fees"}, default=1),
    _choice("productstructure", {1: "Product", 2: "Product Family", 3: "Product Bundle"},
            default=1),
    _s("vendorname", 100), _s("vendorpartnumber", 100),
    _lookup("transactioncurrencyid", "transactioncurrency"),
    Column("description", "memo", max_length=2000),
), states={0: (1,), 1: (2,), 2: (0,), 3: (3,)},
    state_labels={0: "Active", 1: "Inactive", 2: "Draft", 3: "Under Revision"},
    status_labels={0: "Draft", 1: "Active", 2: "Retired", 3: "Under Revision"},
    owned=False, tracked=True, alternate_keys=("productnumber",))

PRICELEVEL = _entity("pricelevel", "pricelevels", (
    _s("name", 100, required=True),
    _lookup("transactioncurrencyid", "transactioncurrency", required=True),
    Column("begindate", "date"), Column("enddate", "date"),
    Column("description", "memo", max_length=2000),
), states={0: (100001,), 1: (100002,)}, status_labels={100001: "Active", 100002: "Inactive"},
    owned=False)

PRODUCTPRICELEVEL = _entity("productpricelevel", "productpricelevels", (
    _lookup("pricelevelid", "pricelevel", required=True),
    _lookup("productid", "product", required=True), _lookup("uomid", "uom", required=True),
    Column("amount", "money"),
    _choice("pricingmethodcode", {1: "Currency Amount", 2: "Percent of List",
                                  3: "Percent Markup - Current Cost",
                                  4: "Percent Margin - Current Cost",
                                  5: "Percent Markup - Standard Cost",
                                  6: "Percent Margin - Standard Cost"}, default=1),
    _lookup("transactioncurrencyid", "transactioncurrency"),
), primary_name=None, owned=False)

_ORDER_STATES = {0: (1, 2), 1: (3,), 2: (4,), 3: (100001, 100002), 4: (100003,)}
# The order state changes an update may make (from, to): Active <-> Submitted and Submitted ->
# Invoiced. The real service moves orders with SetState-style messages (FulfillSalesOrder,
# CancelSalesOrder, ConvertSalesOrderToInvoice); the BC integration writes exactly these.
_ORDER_TRANSITIONS = frozenset({(0, 0), (0, 1), (1, 0), (1, 1), (1, 4), (4, 4)})
SALESORDER = _entity("salesorder", "salesorders", (
    _s("ordernumber", 100), _s("name", 300, required=True),
    _lookup("customerid", "account", "contact", required=True),
    _lookup("pricelevelid", "pricelevel"),
    _lookup("transactioncurrencyid", "transactioncurrency"),
    _lookup("opportunityid", "opportunity"), _lookup("quoteid", "quote"),
    *_header_totals(),
    Column("submitdate", "date"), Column("datefulfilled", "date"),
    Column("requestdeliveryby", "date"), Column("lastbackofficesubmit", "date"),
    Column("nav_submittedtobackoffice", "bool", default=False), _s("nav_bcordernumber", 20),
    Column("description", "memo", max_length=2000),
), states=_ORDER_STATES,
    state_labels={0: "Active", 1: "Submitted", 2: "Canceled", 3: "Fulfilled", 4: "Invoiced"},
    status_labels={1: "New", 2: "Pending", 3: "In Progress", 4: "No Money",
                   100001: "Complete", 100002: "Partial", 100003: "Invoiced"},
    tracked=True, autonumber=("ordernumber", "ORD-"), transitions=_ORDER_TRANSITIONS,
    collections={"order_details": ("salesorderdetail", "salesorderid")})

SALESORDERDETAIL = _entity("salesorderdetail", "salesorderdetails", (
    _lookup("salesorderid", "salesorder", required=True), _lookup("productid", "product"),
    _lookup("uomid", "uom"), _s("productdescription", 500),
    Column("isproductoverridden", "bool", default=False),
    *_line_amount_columns(),
    Column("lineitemnumber", "int"),
    _lookup("transactioncurrencyid", "transactioncurrency"),
), primary_name="productdescription", owned=False, parent="salesorder")

INVOICE = _entity("invoice", "invoices", (
    _s("invoicenumber", 100), _s("name", 300, required=True),
    _lookup("customerid", "account", "contact", required=True),
    _lookup("pricelevelid", "pricelevel"),
    _lookup("transactioncurrencyid", "transactioncurrency"),
    _lookup("salesorderid", "salesorder"),
    *_header_totals(),
    Column("datedelivered", "date"), Column("duedate", "date"),
    _s("nav_bcinvoicenumber", 20), Column("description", "memo", max_length=2000),
), states={0: (1, 4), 2: (100001, 100002), 3: (100003,)},
    state_labels={0: "Active", 2: "Paid", 3: "Canceled"},
    status_labels={1: "New", 4: "Billed", 100001: "Complete", 100002: "Partial",
                   100003: "Canceled"},
    autonumber=("invoicenumber", "INV-"),
    collections={"invoice_details": ("invoicedetail", "invoiceid")})

INVOICEDETAIL = _entity("invoicedetail", "invoicedetails", (
    _lookup("invoiceid", "invoice", required=True), _lookup("productid", "product"),
    _lookup("uomid", "uom"), _s("productdescription", 500),
    Column("isproductoverridden", "bool", default=False),
    *_line_amount_columns(),
    Column("lineitemnumber", "int"),
    _lookup("transactioncurrencyid", "transactioncurrency"),
), primary_name="productdescription", owned=False, parent="invoice")

OPPORTUNITY = _entity("opportunity", "opportunities", (
    _s("name", 300, required=True), _lookup("customerid", "account", "contact"),
    _lookup("parentaccountid", "account"), _lookup("parentcontactid", "contact"),
    Column("estimatedvalue", "money"), Column("estimatedclosedate", "date"),
    Column("closeprobability", "int"), _lookup("pricelevelid", "pricelevel"),
    _lookup("transactioncurrencyid", "transactioncurrency"),
    Column("description", "memo", max_length=2000),
), states={0: (1, 2), 1: (3,), 2: (4, 5)}, state_labels={0: "Open", 1: "Won", 2: "Lost"},
    status_labels={1: "In Progress", 2: "On Hold", 3: "Won", 4: "Canceled", 5: "Out-Sold"})

INCIDENT = _entity("incident", "incidents", (
    _s("title", 200, required=True), _s("ticketnumber", 100),
    _lookup("customerid", "account", "contact", required=True),
    _choice("prioritycode", {1: "High", 2: "Normal", 3: "Low"}, default=2),
    _choice("caseorigincode", {1: "Phone", 2: "Email", 3: "Web"}),
    Column("description", "memo", max_length=2000),
), primary_name="title", states={0: (1, 2, 3, 4), 1: (5, 1000), 2: (6, 2000)},
    state_labels={0: "Active", 1: "Resolved", 2: "Canceled"},
    status_labels={1: "In Progress", 2: "On Hold", 3: "Waiting for Details", 4: "Researching",
                   5: "Problem Solved", 1000: "Information Provided", 6: "Canceled",
                   2000: "Merged"},
    autonumber=("ticketnumber", "CAS-"))

QUOTE = _entity("quote", "quotes", (
    _s("quotenumber", 100), _s("name", 300, required=True),
    _lookup("customerid", "account", "contact"), _lookup("pricelevelid", "pricelevel"),
    _lookup("transactioncurrencyid", "transactioncurrency"),
    _lookup("opportunityid", "opportunity"),
    Column("totalamount", "money"), Column("effectivefrom", "date"),
    Column("effectiveto", "date"), Column("description", "memo", max_length=2000),
), states={0: (1,), 1: (2, 3), 2: (4,), 3: (5, 6, 7)},
    state_labels={0: "Draft", 1: "Active", 2: "Won", 3: "Closed"},
    status_labels={1: "In Progress", 2: "In Progress", 3: "Open", 4: "Won", 5: "Lost",
                   6: "Canceled", 7: "Revised"},
    autonumber=("quotenumber", "QUO-"))

POST = _entity("post", "posts", (
    Column("text", "memo", max_length=1000, required=True),
    _lookup("regardingobjectid", "account", "contact", "opportunity", "incident",
            required=True),
    _choice("source", {1: "Auto Post", 2: "Manual Post"}, default=2),
    _choice("type", {1: "Check-in", 2: "Idea", 3: "News", 4: "Private Message",
                     5: "Question", 6: "Re-post", 7: "Status"}, default=7),
), primary_name="text", owned=False, cascade=("regardingobjectid",))

ACCOUNTSTATISTICS = _entity("nav_accountstatistics", "nav_accountstatisticses", (
    _s("nav_name", 100), _s("nav_customerno", 20), _lookup("nav_accountid", "account"),
    Column("nav_balance", "money"), Column("nav_outstandingorders", "money"),
    Column("nav_shippednotinvoiced", "money"), Column("nav_outstandinginvoices", "money"),
    Column("nav_overdueamount", "money"), Column("nav_totalsales", "money"),
    Column("nav_lastupdated", "datetime"),
    _lookup("transactioncurrencyid", "transactioncurrency"),
), primary_name="nav_name", states=_ACTIVE, owned=False)

OPTION_VALUES = EntityDef(
    service="dataverse", name=OPTION_VALUE_ENTITY, entity_set="sandbox_optionvalues",
    key="sandbox_optionvalueid",
    columns=(Column("sandbox_optionvalueid", "guid"), _s("entitylogicalname", 64),
             _s("attributelogicalname", 64), Column("value", "int"), _s("label", 250),
             Column("languagecode", "int"), Column("createdon", "datetime"),
             Column("modifiedon", "datetime")),
    modified_column="modifiedon", created_column="createdon",
    extra={"internal": True, "states": {}, "alternate_keys": (), "owned": False},
)

DATAVERSE_ENTITIES: tuple[EntityDef, ...] = (
    SYSTEMUSER, TEAM, BUSINESSUNIT, TRANSACTIONCURRENCY, UOMSCHEDULE, UOM, ACCOUNT, CONTACT,
    PRODUCT, PRICELEVEL, PRODUCTPRICELEVEL, SALESORDER, SALESORDERDETAIL, INVOICE,
    INVOICEDETAIL, OPPORTUNITY, INCIDENT, QUOTE, POST, ACCOUNTSTATISTICS, OPTION_VALUES,
)


def derive_columns(entity: EntityDef, row: dict[str, Any]) -> dict[str, Any]:
    """Fill computed columns (``contact.fullname``) from a full row; returns the changes."""
    if entity.name == "contact" and ("firstname" in row or "lastname" in row):
        parts = [row.get("firstname"), row.get("lastname")]
        return {"fullname": " ".join(str(p) for p in parts if p) or None}
    return {}


# Detail entity → (header entity, the detail's lookup to it): the lines whose amounts roll up.
DETAIL_HEADERS: dict[str, tuple[str, str]] = {
    "salesorderdetail": ("salesorder", "salesorderid"),
    "invoicedetail": ("invoice", "invoiceid"),
}


def line_amounts(row: Mapping[str, Any]) -> dict[str, float]:
    """A detail's computed amounts, as system pricing keeps them (rounded to cents).

    ``baseamount = quantity * priceperunit`` and ``extendedamount = baseamount -
    manualdiscountamount + tax``; the client supplies price, discount and tax.
    """
    base = round(float(row.get("quantity") or 0.0) * float(row.get("priceperunit") or 0.0), 2)
    extended = base - float(row.get("manualdiscountamount") or 0.0) + float(row.get("tax") or 0.0)
    return {"baseamount": base, "extendedamount": round(extended, 2)}
