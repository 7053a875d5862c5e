"""How a NAV page views its Business Central rows: field SQL for ``$filter`` and keys, a stored
row as NAV's JSON, a NAV payload as a Business Central payload.

The translation runs both ways over the one field table in :mod:`.pages`, so the pages stay a
view: nothing is copied, and the Business Central rules validate what NAV clients write.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ..bc_schema import bc_entity
from ..business_central import etag_for
from ..business_central.values import wire_value
from ..odata_filter import FilterColumn, FilterError
from ..schema import Column, EntityDef
from .common import NavError, decode_option, encode_option, unknown_property
from .pages import Field, Page, Source

__all__ = ["PageView"]

_NUMERIC = {"decimal", "money"}
_TEXT_SOURCES = (Source.CONSTANT, Source.DOCUMENT_NUMBER, Source.CODE, Source.RELATED_NUMBER)
"""Fields whose value is text whatever the column behind them holds."""


def _option_sql(column: Column, captions: Mapping[str, str]) -> str:
    """SQL giving a stored option value as NAV's enum member name of its caption (so
    ``$filter`` compares member names, as NAV's OData endpoint does)."""
    name = f'"{column.name}"'
    cases = "".join(f" WHEN '{option}' THEN '{encode_option(captions.get(option, option))}'"
                    for option in column.options or () if option.strip())
    return (f"CASE WHEN {name} IS NULL OR {name} IN ('', ' ') THEN '{encode_option(None)}' "
            f"ELSE CASE {name}{cases} ELSE {name} END END")


class PageView:
    """One published page over its BC entity in the store."""

    def __init__(self, page: Page, table_of: Callable[[str], str]) -> None:
        self.page = page
        entity = bc_entity(page.entity)
        assert entity is not None, page.entity
        self.entity: EntityDef = entity
        self._table_of = table_of

    # ---------------------------------------------------------------- SQL
    def column(self, item: Field) -> Column | None:
        return self.entity.column(item.column) if item.column else None

    def field_type(self, item: Field) -> str:
        """The schema type of a field (``date`` for Last_Date_Modified)."""
        if item.source is Source.MODIFIED_DATE:
            return "date"
        if item.source in _TEXT_SOURCES:
            return "string"
        column = self.column(item)
        return column.type if column is not None else "string"

    def field_sql(self, item: Field) -> str:
        """The SQL expression of a field over the entity's table."""
        if item.source is Source.MODIFIED_DATE:
            return 'substr("lastModifiedDateTime", 1, 10)'
        if item.source is Source.CONSTANT:
            return "'" + (item.constant or "").replace("'", "''") + "'"
        numbered = self.numbered(item)
        if numbered is not None:
            table = self._table_of(numbered)
            return (f'COALESCE((SELECT r."number" FROM "{table}" AS r '
                    f'WHERE r."id" = "{item.column}"), \'\')')
        if item.source is Source.CODE:
            cases = "".join(f" WHEN '{value}' THEN '{code}'" for value, code in item.codes)
            return f'CASE "{item.column}"{cases} ELSE \'\' END'
        column = self.column(item)
        if column is not None and column.type == "option":
            return _option_sql(column, dict(item.captions))
        blank = wire_value(column, None) if column is not None else None
        if blank is None:
            return f'"{item.column}"'
        # NAV has no nulls: a blank field is '' / 0 / 0001-01-01, in filters and keys too.
        literal = ("'" + blank + "'") if isinstance(blank, str) else str(int(blank))
        return f'COALESCE("{item.column}", {literal})'

    def numbered(self, item: Field) -> str | None:
        """The BC entity whose ``number`` the field shows in place of the id its column holds
        (a line's document, a business relation's customer); None for other fields."""
        if item.source is Source.DOCUMENT_NUMBER:
            return self.page.parent or ""
        if item.source is Source.RELATED_NUMBER:
            return item.refers_to or ""
        return None

    def numbered_columns(self) -> dict[str, str]:
        """Id column → the BC entity whose ``number`` the page shows for it."""
        return {item.column or "": entity for item in self.page.fields
                if (entity := self.numbered(item)) is not None}

    def resolver(self) -> Callable[[str], FilterColumn]:
        """``$filter`` property → SQL, in NAV field names only."""
        def resolve(name: str) -> FilterColumn:
            item = self.page.field(name)
            if item is None:
                raise FilterError(unknown_property(name, self.page.service).message)
            kind = self.field_type(item)
            return FilterColumn(self.field_sql(item), "string" if kind == "option" else kind)
        return resolve

    def within_page(self, clauses: list[str], args: list[Any]) -> tuple[str, list[Any]]:
        """``clauses`` (SQL conditions) and the page's own condition on its rows (posted
        invoices only), joined with AND."""
        sql, scoped = self.page.scope
        if sql:
            header = self._table_of(self.page.parent) if self.page.parent else ""
            clauses = [*clauses, "(" + sql.replace("{parent}", f'"{header}"') + ")"]
            args = [*args, *scoped]
        return " AND ".join(clauses), args

    def key_where(self, values: Mapping[str, Any]) -> tuple[str, list[Any]]:
        """SQL selecting the row a URL key names."""
        clauses = [f"({self.field_sql(self.field(name))} = ?)" for name in values]
        return self.within_page(clauses, list(values.values()))

    # --------------------------------------------------------------- rows
    def wire(self, row: Mapping[str, Any], select: set[str] | None,
             numbers: Mapping[str, str]) -> dict[str, Any]:
        """A stored row as NAV's JSON (``@odata.etag`` first); ``numbers`` maps the ids of
        :meth:`numbered_columns` to the numbers shown for them."""
        out: dict[str, Any] = {"@odata.etag": etag_for(row["_version"])}
        for item in self.page.fields:
            if select is None or item.name in select:
                out[item.name] = self._value(item, row, numbers)
        return out

    def _value(self, item: Field, row: Mapping[str, Any], numbers: Mapping[str, str]) -> Any:
        if item.source is Source.MODIFIED_DATE:
            return str(row.get("lastModifiedDateTime") or "0001-01-01")[:10]
        if item.source is Source.CONSTANT:
            return item.constant
        if item.source in (Source.DOCUMENT_NUMBER, Source.RELATED_NUMBER):
            return numbers.get(str(row.get(item.column or "") or ""), "")
        if item.source is Source.CODE:
            return dict(item.codes).get(str(row.get(item.column or "") or ""), "")
        column = self.column(item)
        assert column is not None
        value = wire_value(column, row.get(column.name))
        if column.type == "option":
            return encode_option(dict(item.captions).get(value, value))
        if column.type in _NUMERIC and isinstance(value, float) and value.is_integer():
            return int(value)
        return value

    def key_values(self, row: Mapping[str, Any], numbers: Mapping[str, str]) -> dict[str, Any]:
        return {name: self._value(self.field(name), row, numbers) for name in self.page.keys}

    def shown(self, item: Field, written: Mapping[str, Any]) -> Any:
        """What the field will show for a record written as ``written`` (NAV page fields):
        the written value as the page sends it back, else the column's default or blank."""
        column = self.column(item)
        if column is None:
            return self._value(item, {}, {})
        value = self._written(item, written[item.name]) if item.name in written \
            else column.default
        return self._value(item, {column.name: value}, {})

    def field(self, name: str) -> Field:
        item = self.page.field(name)
        assert item is not None
        return item

    # ------------------------------------------------------------ writes
    def payload(self, body: Mapping[str, Any], *, creating: bool) -> dict[str, Any]:
        """A NAV payload → the BC payload (document number resolved by the caller)."""
        changes: dict[str, Any] = {}
        for name, value in body.items():
            if name.startswith("@odata."):
                continue
            item = self.page.field(name)
            if item is None:
                raise NavError(400, "BadRequest_NotFound",
                               f"The property '{name}' does not exist on type "
                               f"'NAV.{self.page.service}'. Make sure to only use property "
                               "names that are defined by the type.")
            if item.source is Source.CONSTANT:
                if value != item.constant:
                    raise NavError(400, "BadRequest",
                                   f"{name} must be '{item.constant}' on this page.")
                continue
            if item.source is Source.DOCUMENT_NUMBER:
                if creating:
                    changes["documentId"] = value
                continue
            if not item.editable:
                continue
            changes[item.column or ""] = self._written(item, value)
        return changes

    def _written(self, item: Field, value: Any) -> Any:
        column = self.column(item)
        if column is not None and column.type == "option" and isinstance(value, str):
            shown = dict(item.captions)
            stored = {shown.get(option, option): option for option in column.options or ()}
            caption = decode_option(value, stored)
            return stored.get(caption, caption)
        return value

    def bc_names(self) -> dict[str, str]:
        """BC property → NAV field (to word BC's messages in the page's names)."""
        return {item.column: item.name for item in self.page.fields
                if item.column and item.source is Source.COLUMN}
