"""Business Central entities computed per read: customer statistics, financial details and
price lists."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ..bc_schema import BC_SERVICE
from ..computed_rows import ComputedTable
from ..odata.replies import JSON_UTF8, Reply
from ..odata_filter import FilterColumn, FilterError
from ..price_lists import CUSTOMER_PRICE_GROUP, PRICE_LIST_COLUMNS, price_lists
from .common import (
    LOCAL_CURRENCY,
    BCError,
    Target,
    bc_int_option,
    count_reply,
    etag_for,
    unknown_property,
)
from .paging import next_page_link, page_window, wants_count
from .reads import BusinessCentralReads
from .statistics import Documents, customer_statistics

Record = dict[str, Any]


def _not_found(label: str, key: str) -> BCError:
    return BCError(404, "Internal_RecordNotFound",
                   f"The {label} does not exist. Identification fields and values: "
                   f"Id='{key}'")


def _select_records(records: list[Record], params: Mapping[str, str],
                    name: str) -> list[Record]:
    """``$select`` over computed records (their keys are the properties)."""
    select = {n.strip() for n in params.get("$select", "").split(",") if n.strip()}
    if not select:
        return records
    unknown = select - set(records[0] if records else select)
    if unknown:
        raise unknown_property(sorted(unknown)[0], name)
    return [{k: v for k, v in r.items() if k in select or k in ("id", "@odata.etag")}
            for r in records]


def _computed_select(params: Mapping[str, str], name: str,
                     columns: Mapping[str, str]) -> set[str]:
    select = {n.strip() for n in params.get("$select", "").split(",") if n.strip()}
    for prop in select:
        if prop not in columns:
            raise unknown_property(prop, name)
    return select


class BusinessCentralComputed(BusinessCentralReads):
    """Reading the computed (read-only) entities."""

    def _computed(self, target: Target, params: Mapping[str, str],
                  headers: Mapping[str, str]) -> Reply:
        name = target.entity_set or ""
        if name == "customerPriceLists":
            return self._price_lists(target, params, headers)
        rows = self._statistics_customers(target, params, name)
        documents = Documents.load(self.store, with_orders=name == "customerStatistics")
        records = [customer_statistics(name, row, documents) for row in rows]
        top = bc_int_option(params, "$top")
        skip = bc_int_option(params, "$skip") or 0
        records = records[skip:] if top is None else records[skip:skip + top]
        records = _select_records(records, params, name)
        context = f"{target.api_root}$metadata#companies({target.company})/{name}"
        if target.key is not None:
            return Reply(200, {"@odata.context": context + "/$entity", **records[0]},
                         {"content-type": JSON_UTF8})
        return Reply(200, {"@odata.context": context, "value": records},
                     {"content-type": JSON_UTF8})

    def _statistics_customers(self, target: Target, params: Mapping[str, str],
                              name: str) -> list[Record]:
        """The customers a statistics read covers (``$filter`` on id or number, or by id)."""
        number_field = "number" if name == "customerFinancialDetails" else "customerNumber"

        def resolve(prop: str) -> FilterColumn:
            if prop == "id":
                return FilterColumn('"id"', "guid")
            if prop == number_field:
                return FilterColumn('"number"', "string")
            raise FilterError(f"Filtering on '{prop}' is not supported for '{name}'; filter "
                              f"on id or {number_field}.")

        where, args = self._filter_sql(params, resolve, full_stop=False)
        if target.key is not None:
            key_sql, key_args = '"id" = ?', [target.key.lower()]
            where = f"({where}) AND {key_sql}" if where else key_sql
            args = [*args, *key_args]
        rows: list[Record] = self.store.query(self._qualified(self._entity("customers")),
                                              where, args, order_by=[("number", False)])
        if target.key is not None and not rows:
            raise _not_found("Customer", target.key)
        return rows

    def _price_lists(self, target: Target, params: Mapping[str, str],
                     headers: Mapping[str, str]) -> Reply:
        """``customerPriceLists``: computed per read, queried like a stored entity."""
        groups = self.store.query(f"{BC_SERVICE}:customerPriceGroups", order_by=[("code", False)])
        prices = self.store.query(f"{BC_SERVICE}:salesPrices", '"salesType" = ?',
                                  [CUSTOMER_PRICE_GROUP])
        table = ComputedTable(PRICE_LIST_COLUMNS, price_lists(groups, prices, LOCAL_CURRENCY))
        try:
            return self._computed_reply(target, params, headers, "customerPriceLists", table,
                                        key_column="code", label="Customer Price List")
        finally:
            table.close()

    def _computed_where(self, target: Target, params: Mapping[str, str],
                        resolve: Callable[[str], FilterColumn]) -> tuple[str, list[Any]]:
        where, args = self._filter_sql(params, resolve)
        clauses = [f"({where})"] if where else []
        if target.key is not None:
            clauses.append('"id" = ?')
            args = [*args, target.key.lower()]
        return " AND ".join(clauses), args

    def _computed_reply(self, target: Target, params: Mapping[str, str],
                        headers: Mapping[str, str], name: str, table: ComputedTable, *,
                        key_column: str, label: str) -> Reply:
        """Serve computed rows with the reads stored entities have ($filter, $select,
        $orderby, $top/$skip, $count, paging, by id); ``key_column`` is the unique sort key."""
        columns = table.columns

        def resolve(prop: str) -> FilterColumn:
            if prop not in columns:
                raise FilterError(unknown_property(prop, name).message)
            return FilterColumn(f'"{prop}"', columns[prop])

        where, args = self._computed_where(target, params, resolve)
        if target.count:
            return count_reply(table.count(where, args))
        order = self._checked_order(params.get("$orderby"), lambda prop: prop in columns,
                                    name)
        order = [*order, (key_column, False)] if order else [(key_column, False)]
        select = _computed_select(params, name, columns)
        window = page_window(params, headers, keyset=False)
        rows, more, left = window.finish(
            table.select(where, args, order, window.limit + 1, window.offset))
        records = [{"@odata.etag": etag_for(row["_version"]),
                    **{k: row[k] for k in columns if not select or k in select or k == "id"}}
                   for row in rows]
        context = f"{target.api_root}$metadata#companies({target.company})/{name}"
        if target.key is not None:
            if not records:
                raise _not_found(label, target.key)
            return Reply(200, {"@odata.context": context + "/$entity", **records[0]},
                         {"content-type": JSON_UTF8, "etag": records[0]["@odata.etag"]})
        body: dict[str, Any] = {"@odata.context": context}
        if wants_count(params):
            body["@odata.count"] = table.count(where, args)
        body["value"] = records
        if more:
            body["@odata.nextLink"] = next_page_link(
                f"{target.api_root}companies({target.company})/{name}", params,
                {"after": [], "offset": window.offset + window.limit, "left": left})
        return Reply(200, body, {"content-type": JSON_UTF8})
