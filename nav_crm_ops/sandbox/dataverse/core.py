"""What every Dataverse request needs: entity sets, keys, query options, callers."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from ..dataverse_catalog import DataverseCatalog
from ..odata.coercion import BRACED_GUID
from ..odata.paging import split_expand
from ..odata.replies import json_object
from ..odata.service import ServiceBase, ServiceContext
from ..odata_filter import (
    FilterColumn,
    FilterError,
    RangeIndex,
)
from ..schema import Column, EntityDef
from ..store import narrow_from
from .common import (
    API_PATH,
    CODE_INVALID_ARGUMENT,
    CODE_NOT_FOUND,
    CODE_ODATA,
    CODE_PAYLOAD,
    CODE_SEGMENT,
    IMPERSONATED,
    KEY_FORBIDDEN_CHARACTERS,
    Annotations,
    DataverseError,
    Query,
    parse_prefer,
)

QUERIES_KEPT = 512
"""Parsed query options kept (see :meth:`DataverseCore._query_options`; forgotten all at
once past this)."""
_ALTERNATE_KEY = re.compile(r"\s*(\w+)\s*=\s*(?:'((?:[^']|'')*)'|([^'\s,]+))\s*")


class DataverseCore(ServiceBase):
    """The service's tables, keys, query options and callers."""

    def __init__(self, ctx: ServiceContext) -> None:
        super().__init__(ctx)
        found = getattr(ctx, "catalog", None)
        self.catalog: DataverseCatalog = (found if isinstance(found, DataverseCatalog)
                                          else DataverseCatalog(ctx.store))
        self._csdl: tuple[int, bytes] | None = None
        self._navigation: tuple[int, dict[str, dict[str, tuple[Column, str | None]]]] | None \
            = None
        self._callers: dict[str | None, tuple[int, str | None]] = {}
        self._outputs: dict[tuple[str, int, tuple[str, ...] | None], list[Column]] = {}
        self._queries: dict[tuple[str, int, str | None, str | None, str, str], Query] = {}

    @property
    def entities(self) -> dict[str, EntityDef]:
        """The tables on the Web API by entity set."""
        return self.catalog.by_set

    @property
    def by_name(self) -> dict[str, EntityDef]:
        """Every table by logical name (internal ones included)."""
        return self.catalog.by_name

    @property
    def navigation(self) -> dict[str, dict[str, tuple[Column, str | None]]]:
        """Table → ``<navigation>@odata.bind`` name → (lookup column, fixed target)."""
        revision = self.catalog.revision
        if self._navigation is None or self._navigation[0] != revision:
            self._navigation = (revision, {e.name: self.catalog.navigation(e)
                                           for e in self.catalog.entities})
        return self._navigation[1]

    @property
    def root(self) -> str:
        return self.ctx.info.dataverse_url

    @staticmethod
    def qualified(entity: EntityDef) -> str:
        return f"dataverse:{entity.name}"

    def entity_url(self, entity: EntityDef, key: str) -> str:
        return f"{self.root}{entity.entity_set}({key})"

    @staticmethod
    def _require(method: str, allowed: str) -> None:
        if method != allowed:
            raise DataverseError(405, CODE_ODATA, f"Use {allowed} for this resource, not "
                                                  f"{method}.")

    def _parse_key(self, entity: EntityDef, text: str) -> tuple[str, str]:
        """``(<guid>)`` → (key column, guid); ``(accountnumber='A1')`` → (column, value)."""
        guid = BRACED_GUID.match(text.strip())
        if guid:
            return entity.key, guid.group(1).lower()
        match = _ALTERNATE_KEY.fullmatch(text)
        if match is None:
            raise DataverseError(400, CODE_ODATA, f"Bad Request - Error in query syntax: "
                                                  f"'{text}' is not a GUID or an alternate key "
                                                  f"such as name='value'.")
        column, quoted, bare = match.groups()
        value = quoted.replace("''", "'") if quoted is not None else bare
        if column == entity.key:
            guid = BRACED_GUID.match(value)
            if guid is None:
                raise DataverseError(400, CODE_ODATA, f"'{value}' is not a valid GUID.")
            return entity.key, guid.group(1).lower()
        if column not in entity.extra.get("alternate_keys", ()):
            keys = ", ".join(entity.extra.get("alternate_keys", ())) or "none"
            raise DataverseError(400, CODE_ODATA, f"The key '{column}' is not an alternate key "
                                                  f"of {entity.name} (alternate keys: {keys}).")
        bad = sorted(KEY_FORBIDDEN_CHARACTERS & set(value))
        if bad:
            raise DataverseError(400, CODE_INVALID_ARGUMENT,
                                 f"Invalid character(s) {' '.join(bad)} in the alternate key "
                                 f"value '{value}'; the characters / < > * % & : \\ ? + are "
                                 "not allowed in key values.")
        return column, value

    def _find(self, entity: EntityDef, key: tuple[str, str]) -> dict[str, Any] | None:
        column, value = key
        if column == entity.key:
            return self.store.get(self.qualified(entity), value)
        rows = self.store.query(self.qualified(entity), f'"{column}" = ? COLLATE NOCASE',
                                [value], limit=1)
        return rows[0] if rows else None

    @staticmethod
    def _describe_key(key: tuple[str, str]) -> str:
        return key[1]

    def _query_options(self, entity: EntityDef, params: Mapping[str, str],
                       headers: Mapping[str, str]) -> Query:
        """The request's query options, parsed once per table, options and headers that
        shape them (until a table or column is created): every part of a ``$batch`` of
        updates sends the same ones. A :class:`Query` is never changed once made."""
        key = (entity.name, self.catalog.revision, params.get("$select"),
               params.get("$expand"), headers.get("prefer", ""),
               headers.get("mscrm.suppressduplicatedetection", ""))
        found = self._queries.get(key)
        if found is None:
            if len(self._queries) >= QUERIES_KEPT:
                self._queries.clear()
            found = self._queries[key] = self._parse_query_options(entity, params, headers)
        return found

    def _parse_query_options(self, entity: EntityDef, params: Mapping[str, str],
                             headers: Mapping[str, str]) -> Query:
        prefer = parse_prefer(headers.get("prefer", ""))
        annotations = Annotations(tuple(
            p.strip() for p in prefer.get("odata.include-annotations", "").split(",")
            if p.strip()))
        select = self._select_list(entity, params.get("$select"))
        expand: dict[str, Query] = {}
        if params.get("$expand"):
            expand = self._expand_options(entity, params["$expand"], annotations, prefer)
        detect = headers.get("mscrm.suppressduplicatedetection", "").strip().lower() == "false"
        return Query(select, annotations, prefer, expand, detect)

    def _expand_options(self, entity: EntityDef, text: str, annotations: Annotations,
                        prefer: dict[str, str]) -> dict[str, Query]:
        """``invoice_details`` or ``invoice_details($select=a,b)``: document lines only."""
        collections: Mapping[str, tuple[str, str]] = entity.extra.get("collections") or {}
        items, complete = split_expand(text)
        expand: dict[str, Query] = {}
        for name, nested in items:
            if name not in collections:
                lines = ", ".join(collections) or f"none on {entity.entity_set}"
                raise DataverseError(501, CODE_ODATA, f"The query option '$expand' is only "
                                                      f"emulated for document lines ({lines}), "
                                                      f"not '{name}'; read related rows with a "
                                                      "$filter on their lookup "
                                                      "(_x_value eq <id>).")
            unknown = set(nested) - {"$select"}
            if unknown:
                raise DataverseError(501, CODE_ODATA, f"Only $select is emulated inside "
                                                      f"$expand, not {sorted(unknown)[0]}.")
            child = self.by_name[collections[name][0]]
            expand[name] = Query(self._select_list(child, nested.get("$select")), annotations,
                                 prefer)
        if not complete:
            raise DataverseError(400, CODE_ODATA, f"The query option $expand='{text}' is not "
                                                  "valid; use e.g. $expand=invoice_details("
                                                  "$select=quantity).")
        return expand

    def _select_list(self, entity: EntityDef, text: str | None) -> list[Column] | None:
        """``$select`` → its columns (None: all)."""
        if not text:
            return None
        return [self._select_column(entity, name.strip())
                for name in text.split(",") if name.strip()]

    def _select_column(self, entity: EntityDef, name: str) -> Column:
        target = name
        if name.startswith("_") and name.endswith("_value"):
            target = name[1:-6]
        column = entity.column(target)
        visible = column is not None and not self._hidden(entity, column)
        if (column is None or not visible or (column.type == "lookup") != (target != name)):
            raise DataverseError(400, CODE_ODATA, f"Could not find a property named '{name}' "
                                                  f"on type 'Microsoft.Dynamics.CRM."
                                                  f"{entity.name}'.")
        assert column is not None
        return column

    @staticmethod
    def _hidden(entity: EntityDef, column: Column) -> bool:
        """Companion type columns of polymorphic lookups are storage details."""
        if column.name.endswith("type"):
            owner = entity.column(column.name[:-4])
            return owner is not None and owner.type == "lookup"
        return False

    def _resolver(self, entity: EntityDef) -> Callable[[str], FilterColumn]:
        def resolve(name: str) -> FilterColumn:
            column = self._filter_column(entity, name)
            if column.type == "datetime":
                # Dataverse keeps whole seconds: compare what the client sees, not the
                # store's milliseconds (else `modifiedon gt <a value read>` finds that row).
                return FilterColumn(f"(substr(\"{column.name}\", 1, 19) || '.000Z')",
                                    column.type, self._range_index(entity, column.name),
                                    whole_seconds=f'"{column.name}"')
            return FilterColumn(f'"{column.name}"', column.type)
        return resolve

    def _range_index(self, entity: EntityDef, name: str) -> RangeIndex | None:
        """The modified-on column is indexed: incremental reads bound it from below."""
        if name != entity.modified_column:
            return None
        table = self.qualified(entity)
        return RangeIndex(f'"{name}"', lambda value, where, params: narrow_from(
            self.store, table, name, value, where, params))

    def _filter_column(self, entity: EntityDef, name: str) -> Column:
        try:
            return self._select_column(entity, name)
        except DataverseError as exc:
            raise FilterError(exc.message) from None

    def _context(self, entity: EntityDef, q: Query, suffix: str = "") -> str:
        select = ""
        if q.select is not None:
            select = "(" + ",".join(
                f"_{c.name}_value" if c.type == "lookup" else c.name for c in q.select) + ")"
        return f"{self.root}$metadata#{entity.entity_set}{select}{suffix}"

    def _applied(self, q: Query, *extra: str) -> dict[str, str]:
        applied = list(extra)
        if q.annotations.patterns:
            applied.append(f'odata.include-annotations="{",".join(q.annotations.patterns)}"')
        return {"Preference-Applied": ",".join(applied)} if applied else {}

    def _acting_caller(self, headers: Mapping[str, str], client_id: str | None) -> str | None:
        """Impersonation (``MSCRMCallerID: <systemuserid>``, as the real Web API): the request
        acts as that user, so ``createdby`` / ``modifiedby`` name the person, not the app."""
        wanted = headers.get("mscrmcallerid")
        if not wanted or (client_id or "").startswith(IMPERSONATED):
            return client_id
        rows = self.store.query("dataverse:systemuser", '"systemuserid" = ?',
                                [wanted.strip().lower()], limit=1)
        if not rows or rows[0].get("isdisabled"):
            raise DataverseError(400, CODE_NOT_FOUND, f"systemuser With Id = {wanted} Does Not "
                                                      "Exist or is disabled; MSCRMCallerID must "
                                                      "name an enabled user.")
        return f"{IMPERSONATED}{rows[0]['systemuserid']}"

    def _caller(self, client_id: str | None) -> str | None:
        """The systemuser that stands for the calling application (echo suppression), or the
        user it impersonates. Kept until the users' table is written (or a transaction
        rolls back): every write of a ``$batch`` asked the table again."""
        if client_id and client_id.startswith(IMPERSONATED):
            return client_id[len(IMPERSONATED):]
        written = self.store.written("dataverse:systemuser")
        known = self._callers.get(client_id)
        if known is not None and known[0] == written:
            return known[1]
        user = self._application_user(client_id)
        self._callers[client_id] = (written, user)
        return user

    def _application_user(self, client_id: str | None) -> str | None:
        users = "dataverse:systemuser"
        if client_id:
            rows = self.store.query(users, '"applicationid" = ?', [client_id.lower()], limit=1)
            if rows:
                return str(rows[0]["systemuserid"])
        rows = self.store.query(users, limit=1, order_by=[("accessmode", True)])
        return str(rows[0]["systemuserid"]) if rows else None

    def _body(self, body: bytes, entity: EntityDef) -> dict[str, Any]:
        return json_object(
            body or b"{}",
            lambda _exc: DataverseError(400, CODE_PAYLOAD, f"Error identified in Payload "
                                                           f"provided by the user for Entity :'"
                                                           f"{entity.entity_set}': the body is "
                                                           f"not valid JSON."),
            lambda: DataverseError(400, CODE_PAYLOAD, "The request body must be a JSON object."))

    def _parse_reference(self, text: str, content_ids: Mapping[str, str],
                         ) -> tuple[EntityDef, tuple[str, str]]:
        ref = text.strip()
        if ref.startswith("$"):
            target_url = content_ids.get(ref[1:])
            if target_url is None:
                raise DataverseError(400, CODE_ODATA, f"The Content-ID reference '{ref}' does "
                                                      "not name an earlier part of this change "
                                                      "set.")
            ref = target_url
        if "://" in ref:
            path = urlsplit(ref).path
            ref = path.split(API_PATH, 1)[1] if API_PATH in path else path.rsplit("/", 1)[-1]
        ref = ref.lstrip("/")
        if ref.startswith(API_PATH.lstrip("/")):
            ref = ref[len(API_PATH) - 1:]
        match = re.fullmatch(r"([A-Za-z_]\w*)\((.*)\)", ref)
        if match is None:
            raise DataverseError(400, CODE_ODATA, f"The @odata.bind value '{text}' is not an "
                                                  "entity reference such as "
                                                  "'/accounts(<guid>)'.")
        entity = self.entities.get(match.group(1))
        if entity is None:
            raise DataverseError(404, CODE_SEGMENT, f"Resource not found for the segment "
                                                    f"'{match.group(1)}'.")
        return entity, self._parse_key(entity, match.group(2))
