"""Read-only sets and columns a NAV 2018 connection computes from the pages it reads.

Why: NAV 2018 has no price-list table and no custom API, yet the default mappings of prices
(CUSTPRCGRP-PRICE, SALESPRC-PRODUCTPRICE) need what Business Central's custom API serves:

* ``customerPriceLists`` — a *derived set*: one row per customer price group and currency of
  the group's sales prices (a group without any: one list in the local currency), from the
  published pages SalesPrices (``Sales_Type`` = Customer Price Group) and CustomerPriceGroups,
  by the reference integration's rule (the sandbox's BC custom API applies the same rule, see
  ``sandbox/price_lists.py``): code ``WHOLESALE`` for the local currency, ``WHOLESALE-EUR``
  otherwise, ``Currency_Code`` the LCY code for local-currency lists, ``Description``
  "Wholesale customers (EUR)". Unless ``[nav.pages]`` names a published page for that set.
* two *computed columns* of ``salesPrices``: ``Price_List_Code`` (the list a price belongs to,
  blank unless it is a customer price group's price) and ``Sales_Price_Id``, the record id of
  the 8-field primary key of table 7002 in one readable, reversible text, because the engine
  knows one key column per side: ``1896-S/Customer Price Group:WHOLESALE/EUR/PCS/min 5``
  (item / sales type:code / currency, ``LCY`` when blank / unit, then ``from <starting date>``,
  ``min <minimum quantity>`` and ``variant <code>`` when not blank; ``/`` and ``%`` inside a
  value written ``%2F`` and ``%25``, a currency named ``LCY`` ``%4CCY``).

Computed names never reach the server: they are taken out of ``$select`` (the key fields they
are computed from are read instead) and a ``$filter`` naming them is refused; reads by id of
a computed key become narrow filters on page fields (sales type, sales code, item numbers) and
the exact ids are kept on this side. Writes to a derived set, or of a computed column, are
refused with :class:`~nav_crm_ops.exceptions.ValidationError`.

What it costs: a derived set has no modification date and is read in full (its mapping says
``incremental: false``): one read of the group prices (two fields) and of the groups per run.

The local currency (LCY) code is not on these pages: NAV keeps it in General Ledger Setup. It
is :attr:`NavViews.local_currency` when set, else ``LCY_Code`` of page 118 General Ledger Setup
published as ``GeneralLedgerSetup`` (or the name ``[nav.pages] generalLedgerSetup`` gives).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Any, Final, Protocol
from urllib.parse import unquote

import polars as pl

from ..exceptions import ConnectorError, NotFoundError, ValidationError
from .frames import records_to_frame
from .models import WriteOp
from .odata import (
    BoolFilter,
    Comparison,
    F,
    Filter,
    NotFilter,
    RawFilter,
    all_of,
    as_filter,
)
from .reader import ETAG, id_filters

__all__ = [
    "CUSTOMER_PRICE_GROUP",
    "PRICE_LISTS",
    "SALES_PRICES",
    "NavViews",
    "PageSource",
    "PriceList",
    "SalesPriceColumn",
    "SalesPriceKey",
    "enum_member",
    "option_caption",
]

SERVICE: Final = "nav"
PRICE_LISTS: Final = "customerPriceLists"
SALES_PRICES: Final = "salesPrices"
PRICE_GROUPS: Final = "customerPriceGroups"
GL_SETUP: Final = "generalLedgerSetup"
GL_SETUP_SERVICE: Final = "GeneralLedgerSetup"
CUSTOMER_PRICE_GROUP: Final = "Customer Price Group"
LCY: Final = "LCY"
"""How a blank (local) currency shows in a sales price's record id."""
BLANK_DATE: Final = "0001-01-01"
_MEMBER_ESCAPE = re.compile(r"_x([0-9A-Fa-f]{4})_")
_QUOTED = re.compile(r"'(?:[^']|'')*'")


def enum_member(caption: str | None) -> str:
    """An option caption as NAV's OData v4 enum member name (``Customer Price Group`` ->
    ``Customer_x0020_Price_x0020_Group``; blank -> ``_x0020_``)."""
    if caption in (None, "", " "):
        return "_x0020_"
    return re.sub(r"[^0-9A-Za-z]", lambda m: f"_x{ord(m.group()):04X}_", str(caption))


def option_caption(member: str | None) -> str:
    """An enum member name as its caption (the inverse of :func:`enum_member`)."""
    return _MEMBER_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), member or "").strip()


class PriceList(StrEnum):
    """The columns of the derived ``customerPriceLists`` set (NAV-style names)."""

    CODE = "Code"
    GROUP = "Customer_Price_Group"
    CURRENCY = "Currency_Code"
    DESCRIPTION = "Description"
    PRICE_COUNT = "Price_Count"


class SalesPriceColumn(StrEnum):
    """The computed columns of ``salesPrices``."""

    PRICE_LIST_CODE = "Price_List_Code"
    RECORD_ID = "Sales_Price_Id"


KEY_FIELDS: Final = ("Item_No", "Sales_Type", "Sales_Code", "Starting_Date", "Currency_Code",
                     "Variant_Code", "Unit_of_Measure_Code", "Minimum_Quantity")
"""The primary key of table 7002 Sales Price, as page 7002 names its fields."""


def _escaped(value: str) -> str:
    """A value inside a record id: ``%`` and ``/`` written ``%25`` and ``%2F`` (undone by
    :func:`urllib.parse.unquote`), everything else as it is."""
    return value.replace("%", "%25").replace("/", "%2F")


def _number(value: Any) -> str:
    number = float(value or 0)
    return str(int(number)) if number.is_integer() else repr(number)


@dataclass(frozen=True)
class SalesPriceKey:
    """One sales price's primary key (captions and texts as a person reads them)."""

    item: str
    sales_type: str
    sales_code: str = ""
    currency: str = ""
    unit: str = ""
    starting_date: str = ""
    minimum_quantity: str = "0"
    variant: str = ""

    @classmethod
    def of(cls, row: Mapping[str, Any]) -> SalesPriceKey:
        """The key of a row as the page sends it (enum member names, ``0001-01-01``)."""
        start = str(row.get("Starting_Date") or "")[:10]
        return cls(str(row.get("Item_No") or ""), option_caption(row.get("Sales_Type")),
                   str(row.get("Sales_Code") or ""), str(row.get("Currency_Code") or ""),
                   str(row.get("Unit_of_Measure_Code") or ""),
                   "" if start == BLANK_DATE else start, _number(row.get("Minimum_Quantity")),
                   str(row.get("Variant_Code") or ""))

    @property
    def price_list_code(self) -> str:
        """The customer price list the price belongs to ("" unless a group's price)."""
        if self.sales_type != CUSTOMER_PRICE_GROUP or not self.sales_code:
            return ""
        return f"{self.sales_code}-{self.currency}" if self.currency else self.sales_code

    @property
    def text(self) -> str:
        """The record id (module docstring)."""
        sales = _escaped(self.sales_type).replace(":", "%3A")
        if self.sales_code:
            sales += ":" + _escaped(self.sales_code)
        currency = ("%4CCY" if self.currency == LCY else _escaped(self.currency)) or LCY
        parts = [_escaped(self.item), sales, currency, _escaped(self.unit)]
        if self.starting_date:
            parts.append(f"from {self.starting_date}")
        if self.minimum_quantity != "0":
            parts.append(f"min {self.minimum_quantity}")
        if self.variant:
            parts.append(f"variant {_escaped(self.variant)}")
        return "/".join(parts)

    @classmethod
    def parse(cls, text: str) -> SalesPriceKey:
        """The key a record id names; ValidationError when it is no sales price id."""
        parts = text.split("/")
        if len(parts) < 4 or not parts[0]:
            raise _bad_id(text)
        sales_type, _, sales_code = parts[1].partition(":")
        currency = "" if parts[2] == LCY else unquote(parts[2])
        extras = {"from": "", "min": "0", "variant": ""}
        for part in parts[4:]:
            label, _, value = part.partition(" ")
            if label not in extras or not value:
                raise _bad_id(text)
            extras[label] = unquote(value)
        return cls(unquote(parts[0]), unquote(sales_type), unquote(sales_code), currency,
                   unquote(parts[3]), extras["from"], extras["min"], extras["variant"])

    def page_key(self) -> dict[str, Any]:
        """The key fields as a record URL names them (a date bare, numbers as numbers)."""
        quantity = float(self.minimum_quantity)
        return {"Item_No": self.item, "Sales_Type": enum_member(self.sales_type),
                "Sales_Code": self.sales_code,
                "Starting_Date": date.fromisoformat(self.starting_date or BLANK_DATE),
                "Currency_Code": self.currency, "Variant_Code": self.variant,
                "Unit_of_Measure_Code": self.unit,
                "Minimum_Quantity": int(quantity) if quantity.is_integer() else quantity}


def _bad_id(text: str) -> ValidationError:
    return ValidationError(
        f"{SERVICE} {SALES_PRICES}: {text!r} is no sales price id; one reads "
        "item/sales type:code/currency/unit[/from date][/min quantity][/variant code], e.g. "
        "1896-S/Customer Price Group:WHOLESALE/EUR/PCS/min 5",
        service=SERVICE, entity=SALES_PRICES, record_key=text)


class PageSource(Protocol):
    """What the views need of the connection: its service names and plain page reads."""

    services: dict[str, str]

    def read_server_pages(self, entity_set: str, *, select: Sequence[str] = (),
                          filter: Filter | str | None = None, orderby: Sequence[str] = (),
                          changed_since: datetime | None = None,
                          modified_field: str | None = None,
                          schema: dict[str, Any] | None = None, etag: bool = False,
                          top: int | None = None) -> Iterator[pl.DataFrame]: ...


_COMPUTED: Final[dict[str, tuple[str, ...]]] = {
    SALES_PRICES: tuple(c.value for c in SalesPriceColumn)}
_DERIVED: Final[dict[str, tuple[str, ...]]] = {PRICE_LISTS: tuple(c.value for c in PriceList)}


class NavViews:
    """The derived sets and computed columns of one NAV connection (module docstring)."""

    def __init__(self, source: PageSource, *, local_currency: str = "") -> None:
        self.source = source
        self.local_currency = local_currency
        """The company's LCY code; empty: read from General Ledger Setup when first needed."""

    # what is computed here ---------------------------------------------------------------------
    def derives(self, entity_set: str) -> bool:
        """Whether the set is computed here (not when ``[nav.pages]`` publishes it)."""
        return entity_set in _DERIVED and entity_set not in self.source.services

    def computed(self, entity_set: str) -> tuple[str, ...]:
        return _COMPUTED.get(entity_set, ())

    def sources(self, entity_set: str) -> tuple[str, ...]:
        """The entity sets of the published pages a derived set is computed from (what must
        be published for it: ``nav-crm-ops doctor`` checks them); () for other sets."""
        if not self.derives(entity_set):
            return ()
        return (SALES_PRICES, PRICE_GROUPS, *(() if self.local_currency else (GL_SETUP,)))

    def handles(self, entity_set: str, names: Sequence[str],
                filter: Filter | str | None = None) -> bool:
        """Whether a read needs this module: a derived set, or computed columns asked for
        (no ``select`` asks for every column) or named in the filter."""
        computed = self.computed(entity_set)
        if self.derives(entity_set):
            return True
        if not computed:
            return False
        return not names or bool(set(names) & set(computed)) or bool(
            _named(filter, computed))

    # reads -------------------------------------------------------------------------------------
    def read_pages(self, entity_set: str, *, select: Sequence[str] = (),
                   filter: Filter | str | None = None, schema: dict[str, Any] | None = None,
                   etag: bool = False, top: int | None = None,
                   **server: Any) -> Iterator[pl.DataFrame]:
        """Frames as :meth:`PagedReader.read_pages` gives them. ``server`` (orderby, the
        watermark) applies to the pages a computed column is added to; a derived set has no
        order or modification date of its own."""
        if self.derives(entity_set):
            rows = _filtered(entity_set, self._price_lists(), filter)
            yield records_to_frame(rows[:top] if top is not None else rows,
                                   _columns(entity_set, select, etag), schema)
            return
        if named := _named(filter, self.computed(entity_set)):
            raise ValidationError(
                f"{SERVICE} {entity_set}: {', '.join(named)} is computed by the connector "
                "and cannot be filtered on by the server; read such records by id "
                "(read_by_ids) or filter on the page's own fields",
                service=SERVICE, entity=entity_set)
        for frame in self.source.read_server_pages(
                entity_set, select=self._server_select(entity_set, select), filter=filter,
                schema=schema, etag=etag, top=top, **server):
            yield self._with_computed(entity_set, frame, select, etag)

    def read_by_ids(self, entity_set: str, key: str, ids: Sequence[Any],
                    select: Sequence[str] = (), schema: dict[str, Any] | None = None,
                    etag: bool = False, filter: Filter | str | None = None) -> pl.DataFrame:
        """Rows whose ``key`` is one of ``ids``: a derived set computed and picked, a
        computed key read through narrow filters on page fields and picked here."""
        wanted = [str(i) for i in dict.fromkeys(ids) if i is not None]
        columns = _columns(entity_set, select, etag)
        if self.derives(entity_set):
            rows = [r for r in _filtered(entity_set, self._price_lists(), filter)
                    if str(r.get(key)) in wanted]
            return records_to_frame(rows, columns, schema)
        reads = self._narrowing(key, wanted) if wanted else []
        picked_select = list(dict.fromkeys([*select, key])) if select else []
        frames = [frame.filter(pl.col(key).is_in(wanted))
                  for part in reads
                  for frame in self.read_pages(entity_set, select=picked_select, etag=etag,
                                               schema=schema,
                                               filter=all_of([as_filter(filter), part]))]
        found = [f for f in frames if f.height]
        if not found:
            return records_to_frame([], columns, schema)
        frame = pl.concat(found, how="diagonal_relaxed")
        return frame.select(columns) if columns else frame

    def get(self, entity_set: str, key: Any) -> dict[str, Any]:
        """One row of a derived set by its code (NotFoundError when absent)."""
        for row in self._price_lists():
            if row[PriceList.CODE] == str(key):
                return dict(row)
        raise NotFoundError(f"{SERVICE} {entity_set}: no price list {key!r} (a customer price "
                            "group's code, with -<currency> for a foreign currency)",
                            service=SERVICE, entity=entity_set, record_key=str(key), status=404)

    def page_key(self, entity_set: str, key: Any) -> Any:
        """A record key as the page's URL takes it: a sales price id becomes its key fields."""
        if entity_set == SALES_PRICES and isinstance(key, str) and not key.startswith(
                f"{KEY_FIELDS[0]}="):
            return SalesPriceKey.parse(key).page_key()
        return key

    def with_computed_record(self, entity_set: str, record: dict[str, Any]) -> dict[str, Any]:
        """A record read from a page with its computed columns."""
        if entity_set != SALES_PRICES:
            return record
        price = SalesPriceKey.of(record)
        return {**record, SalesPriceColumn.PRICE_LIST_CODE.value: price.price_list_code,
                SalesPriceColumn.RECORD_ID.value: price.text}

    # writes ------------------------------------------------------------------------------------
    def refuse_writes(self, ops: Sequence[WriteOp]) -> None:
        """ValidationError for a write to a derived set or of a computed column."""
        for op in ops:
            if self.derives(op.entity_set):
                raise ValidationError(
                    f"{SERVICE} {op.entity_set} is computed by the connector from the "
                    "SalesPrices and CustomerPriceGroups pages and cannot be written; change "
                    "the customer price group or its sales prices in NAV instead",
                    service=SERVICE, entity=op.entity_set, record_key=op.key)
            if written := sorted(set(op.payload) & set(self.computed(op.entity_set))):
                raise ValidationError(
                    f"{SERVICE} {op.entity_set}: {', '.join(written)} is computed by the "
                    "connector and cannot be written; write the page's own fields",
                    service=SERVICE, entity=op.entity_set, record_key=op.key)

    # computed columns --------------------------------------------------------------------------
    def _server_select(self, entity_set: str, select: Sequence[str]) -> list[str]:
        """``select`` without computed columns, with the key fields they are computed from."""
        if not select:
            return []
        computed = self.computed(entity_set)
        plain = [name for name in select if name not in computed]
        return list(dict.fromkeys([*plain, *KEY_FIELDS]))

    def _with_computed(self, entity_set: str, frame: pl.DataFrame, select: Sequence[str],
                       etag: bool) -> pl.DataFrame:
        """``frame`` with the computed columns, in the columns and order asked for."""
        keys = [SalesPriceKey.of(row) for row in frame.select(
            [c for c in KEY_FIELDS if c in frame.columns]).iter_rows(named=True)]
        frame = frame.with_columns(
            pl.Series(SalesPriceColumn.PRICE_LIST_CODE.value,
                      [k.price_list_code for k in keys], dtype=pl.Utf8),
            pl.Series(SalesPriceColumn.RECORD_ID.value, [k.text for k in keys], dtype=pl.Utf8))
        columns = _columns(entity_set, select, etag)
        return frame.select(columns) if columns else frame

    def _narrowing(self, key: str, ids: list[str]) -> list[Filter]:
        """Page-field filters that find at least the rows whose computed ``key`` is one of
        ``ids`` (the exact ids are picked afterwards)."""
        if key == SalesPriceColumn.RECORD_ID:
            by_seller: dict[tuple[str, str], list[str]] = {}
            for text in ids:
                price = SalesPriceKey.parse(text)
                by_seller.setdefault((price.sales_type, price.sales_code), []).append(price.item)
            return [F("Sales_Type").eq(enum_member(kind)) & F("Sales_Code").eq(code) & items
                    for (kind, code), numbers in by_seller.items()
                    for items in id_filters("Item_No", numbers, 1200)]
        if key == SalesPriceColumn.PRICE_LIST_CODE:
            # WHOLESALE-EUR is group WHOLESALE in EUR, or group WHOLESALE-EUR in LCY.
            codes = sorted({code[:i] for code in ids for i in range(len(code) + 1)
                            if i == len(code) or code[i] == "-"} - {""})
            group = F("Sales_Type").eq(enum_member(CUSTOMER_PRICE_GROUP))
            return [group & part for part in id_filters("Sales_Code", codes, 1200)]
        return [F(key).is_in(chunk) for chunk in _chunks(ids, 20)]

    # the derived price lists -------------------------------------------------------------------
    def _price_lists(self) -> list[dict[str, Any]]:
        """One row per customer price group and currency of its prices (module docstring)."""
        prices = self._server_rows(SALES_PRICES, ["Sales_Code", "Currency_Code"],
                                   F("Sales_Type").eq(enum_member(CUSTOMER_PRICE_GROUP)))
        groups = self._server_rows(PRICE_GROUPS, ["Code", "Description"], None)
        members: dict[tuple[str, str], list[str]] = {}
        for price in prices:
            if price["Sales_Code"]:
                members.setdefault((str(price["Sales_Code"]), str(price["Currency_Code"] or "")),
                                   []).append(str(price[ETAG] or ""))
        rows: list[dict[str, Any]] = []
        for group in sorted(groups, key=lambda g: str(g["Code"])):
            code = str(group["Code"])
            currencies = sorted(currency for owner, currency in members if owner == code)
            for currency in currencies or [""]:
                rows.append(self._price_list(group, currency, members.get((code, currency), [])))
        return rows

    def _price_list(self, group: Mapping[str, Any], currency: str,
                    etags: list[str]) -> dict[str, Any]:
        code = str(group["Code"])
        shown = currency or self.lcy_code()
        version = hashlib.sha1("|".join([str(group[ETAG] or ""), currency, *sorted(etags)])
                               .encode(), usedforsecurity=False).hexdigest()[:20]
        return {ETAG: f'W/"{version}"',
                PriceList.CODE.value: f"{code}-{currency}" if currency else code,
                PriceList.GROUP.value: code, PriceList.CURRENCY.value: shown,
                PriceList.DESCRIPTION.value: f"{group['Description'] or code} ({shown})",
                PriceList.PRICE_COUNT.value: len(etags)}

    def _server_rows(self, entity_set: str, select: list[str],
                     filter: Filter | None) -> list[dict[str, Any]]:
        return [row for frame in self.source.read_server_pages(entity_set, select=select,
                                                               filter=filter, etag=True)
                for row in frame.iter_rows(named=True)]

    def lcy_code(self) -> str:
        """The local currency code: :attr:`local_currency`, else General Ledger Setup's."""
        if self.local_currency:
            return self.local_currency
        service = self.source.services.get(GL_SETUP, GL_SETUP_SERVICE)
        try:
            frames = list(self.source.read_server_pages(service, select=["LCY_Code"], top=1))
        except ConnectorError as error:
            if error.status not in (400, 404):
                raise
            frames = []
        found = [str(v) for f in frames if "LCY_Code" in f.columns for v in f["LCY_Code"] if v]
        if not found:
            raise ValidationError(
                f"{SERVICE} {PRICE_LISTS}: the local currency (LCY) code names the price lists "
                f"of local-currency prices, and NAV keeps it in General Ledger Setup: publish "
                f"page 118 General Ledger Setup as web service {service!r} (or name its "
                f"service in [nav.pages] {GL_SETUP} = \"...\"), or give the connection's "
                "views.local_currency", service=SERVICE, entity=PRICE_LISTS)
        self.local_currency = found[0]
        return self.local_currency


def _columns(entity_set: str, select: Sequence[str], etag: bool) -> list[str]:
    """The columns a read returns: ``select`` (+ the etag), every column of a derived set
    without one; unknown names of a derived set refused as the server refuses them."""
    known = _DERIVED.get(entity_set)
    if known is not None:
        unknown = [name for name in select if name not in known]
        if unknown:
            raise ValidationError(
                f"{SERVICE} {entity_set}: no column {', '.join(unknown)}; it has "
                f"{', '.join(known)}", service=SERVICE, entity=entity_set, status=400)
        names = list(select) or list(known)
        return [*names, ETAG] if etag else names
    return [*select, ETAG] if etag and select else list(select)


def _named(filter: Filter | str | None, names: Sequence[str]) -> list[str]:
    """The ``names`` a filter mentions (outside its string literals)."""
    flt = as_filter(filter)
    if flt is None or not names:
        return []
    text = _QUOTED.sub("''", flt.render())
    return [name for name in names if re.search(rf"\b{re.escape(name)}\b", text)]


def _chunks(values: list[str], size: int) -> list[list[str]]:
    return [values[i:i + size] for i in range(0, len(values), size)]


_OPS: Final = {"eq": "__eq__", "ne": "__ne__", "gt": "__gt__", "ge": "__ge__", "lt": "__lt__",
               "le": "__le__"}


def _filtered(entity_set: str, rows: list[dict[str, Any]],
              filter: Filter | str | None) -> list[dict[str, Any]]:
    """The rows of a derived set a filter keeps, evaluated here (comparisons joined by
    and/or/not; anything else is refused, as no server sees it)."""
    flt = as_filter(filter)
    if flt is None:
        return rows
    frame = pl.DataFrame(rows, schema={name: pl.Utf8 for name in _DERIVED[entity_set]}
                         | {PriceList.PRICE_COUNT.value: pl.Int64, ETAG: pl.Utf8})
    kept = frame.with_row_index("__row").filter(_expr(entity_set, flt))["__row"].to_list()
    return [rows[i] for i in kept]


def _expr(entity_set: str, flt: Filter) -> pl.Expr:
    if isinstance(flt, Comparison) and flt.op in _OPS and flt.name in _DERIVED[entity_set]:
        column = pl.col(flt.name)
        return getattr(column, _OPS[flt.op])(pl.lit(flt.value)).fill_null(False)
    if isinstance(flt, BoolFilter):
        parts = [_expr(entity_set, part) for part in flt.parts]
        expr = parts[0]
        for part in parts[1:]:
            expr = expr & part if flt.op == "and" else expr | part
        return expr
    if isinstance(flt, NotFilter):
        return ~_expr(entity_set, flt.inner)
    shown = flt.render() if not isinstance(flt, RawFilter) else flt.text
    raise ValidationError(
        f"{SERVICE} {entity_set} is computed by the connector, which filters it itself on "
        f"comparisons of its columns ({', '.join(_DERIVED[entity_set])}) joined by and, or, "
        f"not; {shown!r} is not one", service=SERVICE, entity=entity_set)
