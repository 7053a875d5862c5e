"""Business Central reads: lists with ``$filter``/``$orderby``/``$select``/``$expand`` and
paging, single records."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ..odata.paging import split_expand
from ..odata.replies import JSON_UTF8, Reply
from ..odata_filter import (
    BC_DIALECT,
    FilterColumn,
    FilterDialect,
    FilterError,
    RangeIndex,
    compile_filter,
)
from ..odata_filter import parse_orderby as parse_orderby_text
from ..schema import Column, EntityDef
from ..store import narrow_from
from .common import (
    BCError,
    Target,
    count_reply,
    default_order,
    etag_for,
    unknown_property,
)
from .paging import next_page_link, page_window, wants_count
from .routes import BusinessCentralRoutes
from .values import wire_value


class BusinessCentralReads(BusinessCentralRoutes):
    """Reading stored entities."""

    def _companies(self, target: Target, params: Mapping[str, str],
                   headers: Mapping[str, str]) -> Reply:
        entity = self._entity("companies")
        if target.key is not None:
            return self._get_one(entity, target, params)
        return self._list(entity, target, params, headers)

    def _scope_where(self, target: Target, entity: EntityDef) -> tuple[str, list[Any]]:
        if target.parent_set and target.parent_key:
            parent = self._entity(target.parent_set)
            self._fetch(parent, target.parent_key)
            column = entity.extra.get("parents", {}).get(target.parent_set, "documentId")
            return f'"{column}" = ?', [target.parent_key.lower()]
        return "", []

    def _get_one(self, entity: EntityDef, target: Target, params: Mapping[str, str]) -> Reply:
        assert target.key is not None
        row = self._fetch(entity, target.key)
        if target.parent_key and row.get("documentId") != target.parent_key.lower():
            raise BCError(404, "Internal_RecordNotFound",
                          f"The {entity.extra.get('label')} does not exist. Identification "
                          f"fields and values: Id='{target.key}'")
        select = self._select(entity, params.get("$select"))
        expand = self._expand(entity, params.get("$expand"))
        if entity.name == "companies":
            context = f"{target.api_root}$metadata#companies/$entity"
        else:
            context = (f"{target.api_root}$metadata#companies({target.company})/"
                       f"{entity.name}/$entity")
        body: dict[str, Any] = {"@odata.context": context}
        body.update(self._wire(entity, row, select, expand))
        return Reply(200, body, {"content-type": JSON_UTF8,
                                 "etag": body.get("@odata.etag", "")})

    def _dialect(self, params: Mapping[str, str]) -> FilterDialect:
        if params.get("$schemaversion") == "2.1":
            return FilterDialect(reject_or_across_fields=True, allow_in=True)
        return BC_DIALECT

    @staticmethod
    def _visible(entity: EntityDef) -> Callable[[str], bool]:
        """Whether a property name is one of the entity's (hidden columns aside)."""
        hidden = set(entity.extra.get("hidden", ()))
        return lambda name: entity.column(name) is not None and name not in hidden

    def _resolver(self, entity: EntityDef) -> Callable[[str], FilterColumn]:
        visible = self._visible(entity)

        table = self._qualified(entity)

        def resolve(name: str) -> FilterColumn:
            column = entity.column(name)
            if column is None or not visible(name):
                raise FilterError(unknown_property(name, entity.name).message)
            sql = f'"{name}"'
            if name != entity.modified_column:
                return FilterColumn(sql, column.type)
            # Indexed: an incremental read's ``lastModifiedDateTime gt <watermark>`` reads the
            # index instead of every row in number order (odata_filter.RangeIndex).
            return FilterColumn(sql, column.type, RangeIndex(
                sql, lambda value, where, params: narrow_from(
                    self.store, table, name, value, where, params)))
        return resolve

    def _filter_sql(self, params: Mapping[str, str], resolve: Callable[[str], FilterColumn],
                    *, full_stop: bool = True) -> tuple[str, list[Any]]:
        """``$filter`` → SQL and arguments ("" when absent); BC's 400 when it is bad."""
        text = params.get("$filter")
        if not text:
            return "", []
        try:
            return compile_filter(text, resolve, self._dialect(params))
        except FilterError as exc:
            message = str(exc).rstrip(".") + "." if full_stop else str(exc)
            raise BCError(400, "BadRequest", message) from None

    def _where(self, entity: EntityDef, params: Mapping[str, str],
               target: Target) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        args: list[Any] = []
        for sql, values in (self._scope_where(target, entity),
                            self._filter_sql(params, self._resolver(entity))):
            if sql:
                clauses.append(sql)
                args.extend(values)
        return " AND ".join(f"({c})" for c in clauses), args

    @staticmethod
    def _checked_order(text: str | None, known: Callable[[str], bool],
                       entity_set: str) -> list[tuple[str, bool]]:
        """``$orderby`` → [(property, descending)], each a ``known`` property."""
        if not text:
            return []
        try:
            order = parse_orderby_text(text)
        except FilterError as exc:
            raise BCError(400, "BadRequest", str(exc)) from None
        for name, _ in order:
            if not known(name):
                raise unknown_property(name, entity_set)
        return order

    def _order(self, entity: EntityDef, text: str | None) -> list[tuple[str, bool]]:
        return self._checked_order(text, self._visible(entity), entity.name)

    def _list(self, entity: EntityDef, target: Target, params: Mapping[str, str],
              headers: Mapping[str, str]) -> Reply:
        where, args = self._where(entity, params, target)
        qualified = self._qualified(entity)
        if target.count:
            return count_reply(self.store.count(qualified, where, args))
        select = self._select(entity, params.get("$select"))
        expand = self._expand(entity, params.get("$expand"))
        order = self._order(entity, params.get("$orderby")) or default_order(entity)
        window = page_window(params, headers, keyset=True)
        rows, more, left = window.finish(self.store.query(
            qualified, where, args, order_by=order, after=window.after,
            limit=window.limit + 1, offset=window.offset))
        context = (f"{target.api_root}$metadata#companies({target.company})/{entity.name}"
                   if target.company else f"{target.api_root}$metadata#companies")
        body: dict[str, Any] = {"@odata.context": context}
        if wants_count(params):
            body["@odata.count"] = self.store.count(qualified, where, args)
        shown = self._shown(entity, select)
        body["value"] = [self._wire(entity, row, select, expand, shown) for row in rows]
        if more and rows:
            last = rows[-1]
            cursor = [last[name] for name, _ in order if name != entity.key]
            cursor.append(last[entity.key])
            body["@odata.nextLink"] = next_page_link(
                f"{target.api_root}{self._path_of(target, entity)}", params,
                {"after": cursor, "left": left})
        return Reply(200, body, {"content-type": JSON_UTF8})

    @staticmethod
    def _path_of(target: Target, entity: EntityDef) -> str:
        if target.company is None:
            return "companies"
        path = f"companies({target.company})/"
        if target.parent_set:
            path += f"{target.parent_set}({target.parent_key})/"
        return path + entity.name

    def _select(self, entity: EntityDef, text: str | None) -> set[str] | None:
        if not text:
            return None
        names = {n.strip() for n in text.split(",") if n.strip()}
        visible = self._visible(entity)
        for name in names:
            if not visible(name):
                raise unknown_property(name, entity.name)
        return names

    def _expand(self, entity: EntityDef, text: str | None) -> dict[str, set[str] | None]:
        """``lines`` or ``lines($select=a,b)`` → {lines: selected columns or None}."""
        if not text:
            return {}
        items, complete = split_expand(text, r"[A-Za-z]\w*")
        expanded: dict[str, set[str] | None] = {}
        for name, nested in items:
            if name != entity.extra.get("lines"):
                raise unknown_property(name, entity.name)
            expanded[name] = self._select(self._entity(name), nested.get("$select"))
        if not complete:
            raise BCError(400, "BadRequest",
                          f"The query option $expand='{text}' is not valid; use e.g. "
                          f"$expand={entity.extra.get('lines') or 'lines'}($select=a,b).")
        return expanded

    @staticmethod
    def _shown(entity: EntityDef, select: set[str] | None) -> list[tuple[str, Column]]:
        """The columns an answer shows (hidden ones left out; ``id`` always), in order."""
        hidden = set(entity.extra.get("hidden", ()))
        return [(column.name, column) for column in entity.columns
                if column.name not in hidden
                and (select is None or column.name in select or column.name == "id")]

    def _wire(self, entity: EntityDef, row: Mapping[str, Any], select: set[str] | None = None,
              expand: Mapping[str, set[str] | None] | None = None,
              shown: list[tuple[str, Column]] | None = None) -> dict[str, Any]:
        """One row on the wire; ``shown``: :meth:`_shown` of ``entity`` and ``select``, found
        once for a page of rows rather than once a row."""
        out: dict[str, Any] = {"@odata.etag": etag_for(row["_version"])}
        for name, column in self._shown(entity, select) if shown is None else shown:
            out[name] = wire_value(column, row.get(name))
        for name, line_select in (expand or {}).items():
            lines = self._entity(name)
            rows = self.store.query(self._qualified(lines), '"documentId" = ?', [row["id"]],
                                    order_by=[("sequence", False)])
            out[name] = [self._wire(lines, line, line_select) for line in rows]
        return out
