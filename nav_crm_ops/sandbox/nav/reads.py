"""NAV page reads: ``Company``, lists with ``$filter``/``$select``/``$top`` and server paging
(``$skiptoken`` in ``@odata.nextLink``, 1,000 rows a page), single records by their page key.

Filters follow "Using Filter Expressions in OData URIs" (NAV 2018): comparisons, ``and``,
``or`` — also across different fields, which NAV supports and Business Central's API v2.0
refuses — ``not``, ``startswith``/``endswith``/``contains``; dates as ``2018-05-01`` literals.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..bc_schema import BC_SERVICE
from ..business_central.statistics import Documents, customer_statistics
from ..computed_rows import ComputedTable
from ..odata.paging import cut_page, decode_state, encode_state, int_option, next_link, without
from ..odata.replies import JSON_UTF8, Reply
from ..odata.service import ServiceBase
from ..odata_filter import FilterColumn, FilterDialect, FilterError, compile_filter
from .common import PAGE_SIZE, NavError, Target, key_literal, unknown_property
from .pages import Page, Source
from .view import PageView

NAV_DIALECT = FilterDialect(reject_or_across_fields=False, allow_in=False)
"""NAV 2018: ``or`` between different fields is supported; OData v4.01's ``in`` is not."""
_QUERY_OPTIONS = {"$filter", "$select", "$top", "$skiptoken", "$format", "company",
                  "tenant"}


@dataclass(frozen=True)
class Window:
    """One page of a list: after a keyset cursor (or an offset for computed pages), at most
    ``limit`` rows, ``left`` rows of ``$top`` still to send."""

    limit: int
    left: int | None
    after: tuple[Any, ...] | None = None
    offset: int = 0


def _window(params: Mapping[str, str]) -> Window:
    top = int_option(params, "$top", lambda text: NavError(
        400, "BadRequest", f"Invalid value '{text}' for $top: use a non-negative integer."))
    token = params.get("$skiptoken")
    if not token:
        return Window(PAGE_SIZE if top is None else min(PAGE_SIZE, top), top)
    try:
        state = decode_state(token)
    except ValueError:
        state = None
    if not isinstance(state, dict):
        raise NavError(400, "BadRequest", "The $skiptoken is not valid; follow "
                                          "@odata.nextLink exactly as returned.")
    left = state.get("left")
    after = state.get("after")
    return Window(PAGE_SIZE if left is None else min(PAGE_SIZE, left), left,
                  tuple(after) if isinstance(after, list) else None,
                  int(state.get("offset") or 0))


class NavReads(ServiceBase):
    """Reading pages over the sandbox store."""

    def _view(self, page: Page) -> PageView:
        return PageView(page, lambda name: self.store.table_name(f"{BC_SERVICE}:{name}"))

    def _company_row(self) -> dict[str, Any]:
        info = self.ctx.info
        return {"Name": info.company_name, "Evaluation_Company": False,
                "Display_Name": info.company_name, "Id": info.company_id,
                "Business_Profile_Id": ""}

    def _companies(self, root: str, one: bool) -> Reply:
        if one:
            return Reply(200, {"@odata.context": f"{root}$metadata#Company/$entity",
                               **self._company_row()}, {"content-type": JSON_UTF8})
        return Reply(200, {"@odata.context": f"{root}$metadata#Company",
                           "value": [self._company_row()]}, {"content-type": JSON_UTF8})

    @staticmethod
    def _select(page: Page, params: Mapping[str, str]) -> set[str] | None:
        text = params.get("$select")
        if not text:
            return None
        names = {name.strip() for name in text.split(",") if name.strip()}
        for name in names:
            if page.field(name) is None:
                raise unknown_property(name, page.service)
        return names

    @staticmethod
    def _check_options(params: Mapping[str, str]) -> None:
        for name in params:
            if name.startswith("$") and name not in _QUERY_OPTIONS:
                raise NavError(400, "BadRequest",
                               f"The query option '{name}' is not supported by the sandbox's "
                               "NAV pages; use $filter, $select, $top and follow "
                               "@odata.nextLink.")

    @staticmethod
    def _compiled(params: Mapping[str, str],
                  resolve: Callable[[str], FilterColumn]) -> tuple[list[str], list[Any]]:
        """``$filter`` → ([SQL condition] or [], arguments); NAV's 400 when it is bad."""
        text = params.get("$filter")
        if not text:
            return [], []
        try:
            sql, values = compile_filter(text, resolve, NAV_DIALECT)
        except FilterError as exc:
            raise NavError(400, "BadRequest", str(exc)) from None
        return [f"({sql})"], values

    def _order(self, view: PageView) -> list[tuple[str, bool]]:
        """Primary-key order over the BC columns (lines: by document, then line number)."""
        if view.page.parent:
            return [("documentId", False), ("sequence", False)]
        return [(view.field(name).column or "", False) for name in view.page.keys
                if view.field(name).source in (Source.COLUMN, Source.CODE)]

    def _numbers(self, view: PageView, rows: list[dict[str, Any]]) -> dict[str, str]:
        """Id → number of the records one page of rows names by id (a line's document, a
        business relation's customer), read once per page of rows."""
        numbers: dict[str, str] = {}
        for column, entity in view.numbered_columns().items():
            ids = sorted({row[column] for row in rows if row.get(column)})
            if ids:
                found = self.store.query(f"{BC_SERVICE}:{entity}",
                                         f'"id" IN ({", ".join("?" for _ in ids)})', ids)
                numbers.update((row["id"], row["number"]) for row in found)
        return numbers

    def _list(self, target: Target, params: Mapping[str, str]) -> Reply:
        self._check_options(params)
        page, url = target.page, target.url
        assert page is not None
        if page.computed:
            return self._computed_list(target, params)
        view = self._view(page)
        where, args = view.within_page(*self._compiled(params, view.resolver()))
        select = self._select(page, params)
        window = _window(params)
        order = self._order(view)
        rows, more = cut_page(self.store.query(
            f"{BC_SERVICE}:{page.entity}", where, args, order_by=order, after=window.after,
            limit=window.limit + 1), window.limit)
        numbers = self._numbers(view, rows)
        body: dict[str, Any] = {"@odata.context": target.context,
                                "value": [view.wire(row, select, numbers) for row in rows]}
        left = None if window.left is None else window.left - len(rows)
        if more and rows and (left is None or left > 0):
            last = rows[-1]
            state = {"after": [*(last[name] for name, _ in order), last["id"]], "left": left}
            body["@odata.nextLink"] = self._next(url, params, state)
        return Reply(200, body, {"content-type": JSON_UTF8})


    @staticmethod
    def _next(url: str, params: Mapping[str, str], state: Mapping[str, Any]) -> str:
        query = without(params, ("$skiptoken", "$top"))
        query["$skiptoken"] = encode_state(state, pad=False)
        return next_link(url, query, "$'(),=")

    def _find(self, page: Page, key: Mapping[str, Any]) -> dict[str, Any]:
        """The stored row a page key names, or NAV's 404."""
        view = self._view(page)
        where, args = view.key_where(key)
        rows = self.store.query(f"{BC_SERVICE}:{page.entity}", where, args, limit=1)
        if not rows:
            shown = ",".join(f"{name}={key_literal(value)}" for name, value in key.items())
            raise NavError(404, "Internal_RecordNotFound",
                           f"The {page.page_name} does not exist. Identification fields and "
                           f"values: {shown}")
        return rows[0]

    def _get_one(self, target: Target, params: Mapping[str, str]) -> Reply:
        self._check_options(params)
        page, key = target.page, target.key
        assert page is not None and key is not None
        select = self._select(page, params)
        if page.computed:
            record = self._statistics_one(page, key, select)
        else:
            view = self._view(page)
            row = self._find(page, key)
            record = view.wire(row, select, self._numbers(view, [row]))
        return Reply(200, {"@odata.context": target.context + "/$entity", **record},
                     {"content-type": JSON_UTF8, "etag": record["@odata.etag"]})

    # ---------------------------------------------------------- computed
    def _statistics_table(self, page: Page) -> ComputedTable:
        customers = self.store.query(f"{BC_SERVICE}:customers", order_by=[("number", False)])
        documents = Documents.load(self.store, with_orders=True)
        records = []
        for customer in customers:
            figures = customer_statistics("customerStatistics", customer, documents)
            records.append({"@odata.etag": figures["@odata.etag"],
                            **{item.name: figures[item.column or ""] for item in page.fields}})
        columns = {"@odata.etag": "string",
                   **{item.name: "string" if item.name in ("No", "Name") else "decimal"
                      for item in page.fields}}
        return ComputedTable(columns, records)

    def _computed_rows(self, page: Page, where: str, args: list[Any], limit: int,
                       offset: int) -> list[dict[str, Any]]:
        table = self._statistics_table(page)
        try:
            rows = table.select(where, args, [("No", False)], limit, offset)
        finally:
            table.close()
        return [{k: v for k, v in row.items() if k != "_version"} for row in rows]

    def _computed_list(self, target: Target, params: Mapping[str, str]) -> Reply:
        page, url = target.page, target.url
        assert page is not None
        columns = {item.name: ("string" if item.name in ("No", "Name") else "decimal")
                   for item in page.fields}

        def resolve(name: str) -> FilterColumn:
            if name not in columns:
                raise FilterError(unknown_property(name, page.service).message)
            return FilterColumn(f'"{name}"', columns[name])

        clauses, args = self._compiled(params, resolve)
        where = " AND ".join(clauses)
        select = self._select(page, params)
        window = _window(params)
        rows, more = cut_page(self._computed_rows(page, where, args, window.limit + 1,
                                                  window.offset), window.limit)
        values = [{k: v for k, v in row.items()
                   if k == "@odata.etag" or select is None or k in select} for row in rows]
        body: dict[str, Any] = {"@odata.context": target.context, "value": values}
        left = None if window.left is None else window.left - len(rows)
        if more and (left is None or left > 0):
            body["@odata.nextLink"] = self._next(url, params, {
                "offset": window.offset + len(rows), "left": left})
        return Reply(200, body, {"content-type": JSON_UTF8})

    def _statistics_one(self, page: Page, key: Mapping[str, Any],
                        select: set[str] | None) -> dict[str, Any]:
        rows = self._computed_rows(page, '"No" = ?', [key["No"]], 1, 0)
        if not rows:
            raise NavError(404, "Internal_RecordNotFound",
                           f"The Customer does not exist. Identification fields and values: "
                           f"No='{key['No']}'")
        return {k: v for k, v in rows[0].items()
                if k == "@odata.etag" or select is None or k in select}
