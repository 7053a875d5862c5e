"""Dataverse records on the wire: selected columns, lookups as ``_x_value``, the
``FormattedValue`` and lookup annotations, expanded document lines."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from ..dataverse_schema import OPTION_VALUE_ENTITY, is_polymorphic, type_column
from ..odata.replies import Reply
from ..schema import Column, EntityDef
from .common import (
    ASSOCIATED_NAVIGATION,
    FORMATTED,
    LOOKUP_LOGICAL_NAME,
    OWNER_COLUMN,
    Query,
    etag,
    json_reply,
    wire_datetime,
)
from .core import DataverseCore

Row = dict[str, Any]
OUTPUTS_KEPT = 512
"""Answer column lists kept (per table and ``$select``; forgotten all at once past this)."""


def lookup_target(col: Column, row: Mapping[str, Any]) -> str:
    """The table a lookup value of ``row`` refers to."""
    return (row.get(type_column(col)) if is_polymorphic(col) else None) \
        or col.lookup_targets[0]


@dataclass
class Labels:
    """What ``FormattedValue`` annotations need: lookup names by (table, key), currency
    symbols by currency id, added option labels by (column, value)."""

    names: dict[tuple[str, str], str]
    currencies: dict[str, str]
    options: dict[tuple[str, int], str]

    def format(self, col: Column, value: Any, row: Mapping[str, Any]) -> str | None:
        """The formatted value of a non-lookup column (None: not annotated)."""
        if col.type == "choice":
            if col.choices and value in col.choices:
                return col.choices[value]
            return self.options.get((col.name, value))
        if col.type == "money":
            symbol = self.currencies.get(row.get("transactioncurrencyid") or "", "$")
            sign = "-" if value < 0 else ""
            return f"{sign}{symbol}{abs(value):,.2f}"
        return _format_plain(col.type, value)


def _format_plain(kind: str, value: Any) -> str | None:
    if kind == "bool":
        return "Yes" if value else "No"
    if kind == "datetime":
        moment = datetime.fromisoformat(value)
        return f"{moment.month}/{moment.day}/{moment.year} {moment:%I:%M %p}".replace(
            " 0", " ", 1)
    if kind == "date":
        day = date.fromisoformat(value)
        return f"{day.month}/{day.day}/{day.year}"
    if kind in ("decimal", "int"):
        return f"{value:,}" if kind != "decimal" else f"{value:,.2f}"
    return None


def _wire_lookup(item: dict[str, Any], col: Column, row: Mapping[str, Any],
                 labels: Labels | None, lookups: bool) -> None:
    value = row.get(col.name)
    wire = f"_{col.name}_value"
    if value is not None:
        target = lookup_target(col, row)
        label = labels.names.get((target, value)) if labels is not None else None
        if label is not None:
            item[f"{wire}@{FORMATTED}"] = label
        if lookups:
            nav = col.navigation or col.name
            if is_polymorphic(col) and col.name != OWNER_COLUMN:
                nav = f"{nav}_{target}"
            item[f"{wire}@{ASSOCIATED_NAVIGATION}"] = nav
            item[f"{wire}@{LOOKUP_LOGICAL_NAME}"] = target
    item[wire] = value


def _wire_column(item: dict[str, Any], col: Column, row: Mapping[str, Any],
                 labels: Labels | None) -> None:
    value = row.get(col.name)
    if value is not None:
        if col.type == "datetime":
            value = wire_datetime(value)
        label = labels.format(col, value, row) if labels is not None else None
        if label is not None:
            item[f"{col.name}@{FORMATTED}"] = label
    item[col.name] = value


class DataverseWire(DataverseCore):
    """Writing records on the wire."""

    def _wire_rows(self, entity: EntityDef, rows: list[Row], q: Query) -> list[Row]:
        columns = self._output_columns(entity, q.select)
        labels = self._labels(entity, rows, columns) if q.annotations.formatted else None
        lookups = q.annotations.lookups
        out: list[Row] = []
        for row in rows:
            item: Row = {"@odata.etag": etag(row)}
            for col in columns:
                if col.type == "lookup":
                    _wire_lookup(item, col, row, labels, lookups)
                else:
                    _wire_column(item, col, row, labels)
            item[entity.key] = row[entity.key]
            for nav, child_q in q.expand.items():
                item[nav] = self._expanded(entity, nav, row, child_q)
            out.append(item)
        return out

    def _expanded(self, entity: EntityDef, nav: str, row: Row, q: Query) -> list[Row]:
        """The document lines of ``row`` under the collection navigation ``nav``."""
        child_name, lookup = entity.extra["collections"][nav]
        child = self.by_name[child_name]
        children = self.store.query(self.qualified(child), f'"{lookup}" = ?', [row[entity.key]],
                                    order_by=[("lineitemnumber", False), ("createdon", False)])
        return self._wire_rows(child, children, q)

    def _output_columns(self, entity: EntityDef, select: list[Column] | None) -> list[Column]:
        """The columns an answer shows, found once per table and ``$select`` (until a table
        or column is created): every part of a ``$batch`` of updates asks again."""
        key = (entity.name, self.catalog.revision,
               None if select is None else tuple(c.name for c in select))
        found = self._outputs.get(key)
        if found is None:
            if len(self._outputs) >= OUTPUTS_KEPT:
                self._outputs.clear()
            found = self._outputs[key] = self._find_output_columns(entity, select)
        return found

    def _find_output_columns(self, entity: EntityDef, select: list[Column] | None,
                             ) -> list[Column]:
        if select is None:
            return [c for c in entity.columns if not self._hidden(entity, c)]
        # Only what was selected (the key and @odata.etag are added by the caller), as the
        # documented answers show: the real service adds no versionnumber.
        chosen = {c.name for c in select}
        if any(c.type == "money" for c in select) and entity.column("transactioncurrencyid"):
            chosen.add("transactioncurrencyid")
        return [c for c in entity.columns if c.name in chosen and c.name != entity.key]

    def _labels(self, entity: EntityDef, rows: list[Row], columns: list[Column]) -> Labels:
        return Labels(self._lookup_names(rows, columns), self._currency_symbols(),
                      self._added_options(entity))

    def _lookup_names(self, rows: list[Row], columns: list[Column],
                      ) -> dict[tuple[str, str], str]:
        wanted: dict[str, set[str]] = {}
        for col in columns:
            if col.type != "lookup":
                continue
            for row in rows:
                value = row.get(col.name)
                if value is not None:
                    wanted.setdefault(lookup_target(col, row), set()).add(value)
        names: dict[tuple[str, str], str] = {}
        for target, keys in wanted.items():
            target_entity = self.by_name.get(target)
            if target_entity is not None and target_entity.extra.get("primary_name"):
                names.update(self._primary_names(target_entity, sorted(keys)))
        return names

    def _primary_names(self, entity: EntityDef, keys: list[str],
                       ) -> dict[tuple[str, str], str]:
        """(table, key) → primary name of the rows of ``entity`` with these keys."""
        name_column = entity.extra["primary_name"]
        names: dict[tuple[str, str], str] = {}
        for start in range(0, len(keys), 500):
            chunk = keys[start:start + 500]
            found = self.store.query(self.qualified(entity),
                                     f'"{entity.key}" IN ({", ".join("?" for _ in chunk)})',
                                     chunk)
            for row in found:
                if row.get(name_column) is not None:
                    names[(entity.name, row[entity.key])] = str(row[name_column])
        return names

    def _currency_symbols(self) -> dict[str, str]:
        return {row["transactioncurrencyid"]: row.get("currencysymbol") or
                row.get("isocurrencycode") or "$"
                for row in self.store.query("dataverse:transactioncurrency")}

    def _added_options(self, entity: EntityDef) -> dict[tuple[str, int], str]:
        rows = self.store.query(f"dataverse:{OPTION_VALUE_ENTITY}", '"entitylogicalname" = ?',
                                [entity.name])
        return {(r["attributelogicalname"], r["value"]): r["label"] for r in rows}

    def _write_reply(self, entity: EntityDef, row: Row, q: Query, created: bool) -> Reply:
        """As the real service: ``204`` with ``OData-EntityId`` and no ``ETag`` (the version
        is not returned); with ``Prefer: return=representation`` ``201``/``200`` with the
        record (its ``@odata.etag``) and no ``OData-EntityId`` (*Create table rows using the
        Web API*, *Update and delete table rows using the Web API*)."""
        url = self.entity_url(entity, row[entity.key])
        if q.prefer.get("return") == "representation":
            payload = {"@odata.context": self._context(entity, q, "/$entity")}
            payload.update(self._wire_rows(entity, [row], q)[0])
            reply = json_reply(201 if created else 200, payload,
                               self._applied(q, "return=representation"))
            reply.entity_url = url
            return reply
        return Reply(204, headers={"OData-Version": "4.0", "OData-EntityId": url,
                                   "Location": url}, entity_url=url)
