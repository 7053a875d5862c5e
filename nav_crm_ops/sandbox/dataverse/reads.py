"""Dataverse reads: lists with ``$filter``/``$orderby``/``$count`` and paging, single
records, change tracking."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..odata.paging import cut_page, next_link, without
from ..odata.replies import Reply
from ..odata_filter import DATAVERSE_DIALECT, FilterError, compile_filter, parse_orderby
from ..schema import EntityDef
from .common import (
    CODE_INVALID_ARGUMENT,
    CODE_ODATA,
    MAX_COUNT,
    DataverseError,
    Query,
    etag,
    json_reply,
    not_found,
)
from .paging import delta_token, page_request, read_delta_token, skiptoken
from .wire import DataverseWire, Row

TRACKING_REFUSES = ("$filter", "$orderby", "$top", "$expand", "$skiptoken", "$count")
"""Query options change tracking does not take (only ``$select``)."""


class DataverseReads(DataverseWire):
    """Reading records."""

    def _list(self, entity: EntityDef, params: Mapping[str, str], headers: Mapping[str, str],
              q: Query) -> Reply:
        if "$skip" in params:
            raise DataverseError(400, CODE_ODATA, "The query parameter $skip is not supported. "
                                                  "Page with Prefer: odata.maxpagesize and "
                                                  "follow @odata.nextLink.")
        if "odata.track-changes" in q.prefer or "$deltatoken" in params:
            return self._track_changes(entity, params, q)
        where, args = self._where(entity, params)
        order = self._order(entity, params)
        page = page_request(params, q.prefer, len(order) + 1)
        rows, more = cut_page(self.store.query(self.qualified(entity), where, args, order,
                                               page.after, page.limit + 1), page.limit)
        payload: dict[str, Any] = {"@odata.context": self._context(entity, q)}
        if params.get("$count", "").lower() == "true":
            payload["@odata.count"] = min(self.store.count(self.qualified(entity), where, args),
                                          MAX_COUNT)
        payload["value"] = self._wire_rows(entity, rows, q)
        if more and page.top is None:
            payload["@odata.nextLink"] = self._next_link(entity, params, rows, order,
                                                         page.number + 1)
        return json_reply(200, payload, self._applied(q, *page.applied))

    def _where(self, entity: EntityDef, params: Mapping[str, str]) -> tuple[str, list[Any]]:
        if not params.get("$filter"):
            return "", []
        try:
            return compile_filter(params["$filter"], self._resolver(entity), DATAVERSE_DIALECT)
        except FilterError as exc:
            raise DataverseError(400, CODE_ODATA, str(exc)) from None

    def _order(self, entity: EntityDef, params: Mapping[str, str]) -> list[tuple[str, bool]]:
        """``$orderby`` → [(column, descending)]; the key (always last) is left out."""
        order: list[tuple[str, bool]] = []
        if not params.get("$orderby"):
            return order
        try:
            for name, desc in parse_orderby(params["$orderby"]):
                column = self._filter_column(entity, name).name
                if column != entity.key:
                    order.append((column, desc))
        except FilterError as exc:
            raise DataverseError(400, CODE_ODATA, str(exc)) from None
        return order

    def _next_link(self, entity: EntityDef, params: Mapping[str, str], rows: list[Row],
                   order: list[tuple[str, bool]], page: int) -> str:
        last = rows[-1]
        position = (*(last[name] for name, _ in order), last[entity.key])
        link_params = without(params, ("$skiptoken", "$top"))
        link_params["$skiptoken"] = skiptoken(entity.key, rows[0][entity.key],
                                              last[entity.key], position, page)
        return next_link(f"{self.root}{entity.entity_set}", link_params, "$,")

    def _get(self, entity: EntityDef, key: tuple[str, str], headers: Mapping[str, str],
             q: Query) -> Reply:
        row = self._find(entity, key)
        if row is None:
            raise not_found(entity, self._describe_key(key))
        if headers.get("if-none-match") == etag(row):
            return Reply(304, headers={"OData-Version": "4.0", "ETag": etag(row)})
        payload = {"@odata.context": self._context(entity, q, "/$entity")}
        payload.update(self._wire_rows(entity, [row], q)[0])
        return json_reply(200, payload, {"ETag": etag(row), **self._applied(q)})

    def _track_changes(self, entity: EntityDef, params: Mapping[str, str], q: Query) -> Reply:
        for option in TRACKING_REFUSES:
            if option in params:
                raise DataverseError(400, CODE_ODATA,
                                     f"The query option '{option}' is not supported with "
                                     "change tracking (Prefer: odata.track-changes); only "
                                     "$select is allowed.")
        if not entity.change_tracking:
            raise DataverseError(400, CODE_INVALID_ARGUMENT,
                                 f"Change tracking is not enabled for the entity "
                                 f"'{entity.name}'; enable it or poll modifiedon instead.")
        name = self.qualified(entity)
        deleted: list[str] = []
        if "$deltatoken" in params:
            since = read_delta_token(params["$deltatoken"])
            rows, deleted, version = self.store.changes(name, since)
            context = self._context(entity, q, "/$delta")
        else:
            version = self.store.version
            rows = self.store.query(name)
            context = self._context(entity, q)
        values = self._wire_rows(entity, rows, q)
        values.extend({"@odata.context": f"{self.root}$metadata#{entity.entity_set}"
                                         "/$deletedEntity",
                       "id": key, "reason": "deleted"} for key in deleted)
        link_params = [(k, v) for k, v in params.items() if k == "$select"]
        link_params.append(("$deltatoken", delta_token(version)))
        payload = {"@odata.context": context, "value": values,
                   "@odata.deltaLink": next_link(f"{self.root}{entity.entity_set}",
                                                 link_params, "$,")}
        return json_reply(200, payload, self._applied(q, "odata.track-changes"))
