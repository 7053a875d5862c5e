"""The emulated Dataverse Web API (v9.2): entity sets, writes, $batch, change tracking, metadata.

Every request goes through :meth:`DataverseService.handle`, a synchronous function of
(method, path, query, headers, body) → :class:`Reply`; the Starlette app runs it in a worker
thread and ``$batch`` calls it once per part, so a batch part behaves exactly like the same
request sent alone. Status codes, headers, error codes and messages follow
the wire-protocols reference (Dataverse section); where it is silent the choice is noted.
"""

from __future__ import annotations

import base64
import fnmatch
import json
import logging
import re
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .dataverse_schema import (
    DATAVERSE_ENTITIES,
    DETAIL_HEADERS,
    OPTION_VALUE_ENTITY,
    derive_columns,
    is_polymorphic,
    line_amounts,
    type_column,
)
from .info import SandboxInfo
from .multipart import (
    BatchFormatError,
    BatchRequest,
    BatchResponse,
    ChangeSet,
    ChangeSetResponse,
    format_batch_response,
    parse_batch,
)
from .odata_filter import (
    DATAVERSE_DIALECT,
    FilterColumn,
    FilterError,
    compile_filter,
    parse_orderby,
)
from .schema import Column, EntityDef
from .store import KeyExistsError, SandboxStore, normalize_datetime

__all__ = ["DATAVERSE_ENTITIES", "DataverseError", "DataverseService", "Reply",
           "build_dataverse_app"]

log = logging.getLogger(__name__)

API_PATH = "/api/data/v9.2/"
MAX_PAGE_SIZE = 5000
MAX_COUNT = 5000
MAX_BATCH_REQUESTS = 1000
DELTA_TOKEN_LIFETIME = timedelta(days=7)
FORMATTED = "OData.Community.Display.V1.FormattedValue"
LOOKUP_LOGICAL_NAME = "Microsoft.Dynamics.CRM.lookuplogicalname"
ASSOCIATED_NAVIGATION = "Microsoft.Dynamics.CRM.associatednavigationproperty"
JSON_TYPE = "application/json; odata.metadata=minimal; odata.streaming=true; IEEE754Compatible=false"
CODE_NOT_FOUND = "0x80040217"
CODE_LENGTH = "0x80044331"
CODE_BAD_OPTION = "0x8004431A"
CODE_INVALID_ARGUMENT = "0x80040203"
CODE_ODATA = "0x80060888"
CODE_PAYLOAD = "0x80048d19"
CODE_DUPLICATE = "0x80040237"
CODE_DUPLICATE_FOUND = "0x80040333"
CODE_SEGMENT = "0x8006088a"
DUPLICATE_RULES: Mapping[str, tuple[str, ...]] = {"account": ("name",),
                                                  "contact": ("emailaddress1",)}
"""Stand-ins for Dataverse's default duplicate detection rules (the docs name the tables —
accounts, contacts, leads — not the columns; same name / same e-mail, case-insensitive).
They apply only to a request sending ``MSCRM.SuppressDuplicateDetection: false`` (*Detect
duplicate data using the Web API*)."""
IMPERSONATED = "impersonating:"
"""Marks a caller that acts as another systemuser (``MSCRMCallerID``)."""
OWNER_COLUMN = "ownerid"
UNSUPPORTED_OPTIONS = ("$apply", "$search", "fetchXml")
KEY_FORBIDDEN_CHARACTERS = set("/<>*%&:\\?+")
_GUID = re.compile(r"^\{?([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
                   r"[0-9a-fA-F]{12})\}?$")
_EDM_TYPES = {"string": "String", "memo": "String", "int": "Int32", "bigint": "Int64",
              "decimal": "Decimal", "money": "Decimal", "bool": "Boolean",
              "datetime": "DateTimeOffset", "date": "Date", "choice": "Int32", "guid": "Guid",
              "json": "String", "option": "String", "lookup": "Guid"}


class SandboxContextLike(Protocol):
    """What the app needs from infra's SandboxContext."""

    @property
    def store(self) -> SandboxStore: ...

    @property
    def info(self) -> SandboxInfo: ...


class DataverseError(Exception):
    """An error answered in Dataverse's shape ``{"error":{"code","message"}}``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


@dataclass
class Reply:
    """One HTTP answer (also used for each part of a $batch)."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    entity_url: str = ""
    """The written record's URL, for ``$n`` references inside a change set (not sent: a
    create answered with ``return=representation`` has no ``OData-EntityId`` header)."""


class _Rollback(Exception):
    """Internal: a change-set part failed; undo the change set."""


def _dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _json_reply(status: int, payload: Any, headers: dict[str, str] | None = None) -> Reply:
    merged = {"Content-Type": JSON_TYPE, "OData-Version": "4.0"}
    merged.update(headers or {})
    return Reply(status, merged, _dumps(payload))


def _error_reply(error: DataverseError) -> Reply:
    return _json_reply(error.status, {"error": {"code": error.code, "message": error.message}})


def _not_found(entity: EntityDef, key: str) -> DataverseError:
    return DataverseError(404, CODE_NOT_FOUND, f"{entity.name} With Id = {key} Does Not Exist")


def _etag(row: Mapping[str, Any]) -> str:
    return f'W/"{row["versionnumber"]}"'


def _wire_datetime(value: str) -> str:
    return value[:19] + "Z"


def _parse_prefer(header: str) -> dict[str, str]:
    """``Prefer`` header → {preference: value} (value "" when the preference has none)."""
    prefs: dict[str, str] = {}
    for item in re.findall(r'(?:[^,"]|"[^"]*")+', header):
        name, _, value = item.strip().partition("=")
        if name:
            prefs[name.strip().lower()] = value.strip().strip('"')
    return prefs


@dataclass
class _Annotations:
    """Which instance annotations the caller asked for with ``odata.include-annotations``."""

    patterns: tuple[str, ...] = ()

    def wants(self, term: str) -> bool:
        return any(fnmatch.fnmatchcase(term, p) for p in self.patterns)

    @property
    def formatted(self) -> bool:
        return self.wants(FORMATTED)

    @property
    def lookups(self) -> bool:
        return self.wants(LOOKUP_LOGICAL_NAME)


@dataclass
class _Query:
    """The parsed query options of one request."""

    select: list[Column] | None
    annotations: _Annotations
    prefer: dict[str, str]
    # Expanded collection-valued navigation property → its own query options.
    expand: dict[str, _Query] = field(default_factory=dict)
    # ``MSCRM.SuppressDuplicateDetection: false`` was sent (off by default for the Web API).
    detect_duplicates: bool = False


class DataverseService:
    """The Web API's behaviour, independent of the HTTP server."""

    def __init__(self, ctx: SandboxContextLike) -> None:
        self.ctx = ctx
        self.entities = {e.entity_set: e for e in DATAVERSE_ENTITIES if not e.extra.get("internal")}
        self.by_name = {e.name: e for e in DATAVERSE_ENTITIES}
        self.navigation = {e.name: self._navigation_map(e) for e in DATAVERSE_ENTITIES}
        self._csdl: bytes | None = None

    # ---------------------------------------------------------------- plumbing
    @property
    def store(self) -> SandboxStore:
        return self.ctx.store

    @property
    def root(self) -> str:
        return self.ctx.info.dataverse_url

    @staticmethod
    def qualified(entity: EntityDef) -> str:
        return f"dataverse:{entity.name}"

    @staticmethod
    def _navigation_map(entity: EntityDef) -> dict[str, tuple[Column, str | None]]:
        """``<navigation>@odata.bind`` name → (lookup column, fixed target or None)."""
        mapping: dict[str, tuple[Column, str | None]] = {}
        for col in entity.columns:
            if col.type != "lookup" or col.read_only:
                continue
            nav = col.navigation or col.name
            if is_polymorphic(col):
                for target in col.lookup_targets:
                    mapping[f"{nav}_{target}"] = (col, target)
                if col.name == OWNER_COLUMN:
                    mapping[nav] = (col, None)
            else:
                mapping[nav] = (col, col.lookup_targets[0])
        return mapping

    def entity_url(self, entity: EntityDef, key: str) -> str:
        return f"{self.root}{entity.entity_set}({key})"

    def handle(self, method: str, path: str, query: str, headers: Mapping[str, str],
               body: bytes, client_id: str | None,
               content_ids: Mapping[str, str] | None = None) -> Reply:
        """Answer one request; ``headers`` have lower-case names."""
        try:
            client_id = self._acting_caller(headers, client_id)
            return self._dispatch(method.upper(), path.strip("/"), query, headers, body,
                                  client_id, content_ids or {})
        except DataverseError as exc:
            return _error_reply(exc)
        except Exception:
            log.exception("Dataverse sandbox failed on %s %s", method, path)
            return _error_reply(DataverseError(500, "0x80040216",
                                               "An unexpected error occurred."))

    def _dispatch(self, method: str, path: str, query: str, headers: Mapping[str, str],
                  body: bytes, client_id: str | None, content_ids: Mapping[str, str]) -> Reply:
        params = dict(parse_qsl(query, keep_blank_values=True))
        special = self._service_path(method, path, params, headers, body, client_id)
        if special is not None:
            return special
        match = re.fullmatch(r"([A-Za-z_]\w*)(?:\((.*)\))?(/.*)?", path)
        if match is None:
            raise DataverseError(404, CODE_SEGMENT, f"Resource not found for the segment "
                                                    f"'{path.split('/')[0]}'.")
        entity_set, key_text, rest = match.groups()
        entity = self.entities.get(entity_set)
        if entity is None:
            raise DataverseError(404, CODE_SEGMENT,
                                 f"Resource not found for the segment '{entity_set}'.")
        if rest:
            raise DataverseError(501, CODE_ODATA, f"The sandbox does not implement the path "
                                                  f"'{path}'; address records as "
                                                  f"{entity_set}(<id>).")
        tracking = "odata.track-changes" in headers.get("prefer", "")
        for option in UNSUPPORTED_OPTIONS:
            if option in params and not tracking:
                raise DataverseError(501, CODE_ODATA, f"The query option '{option}' is not "
                                                      "emulated by the sandbox; read related "
                                                      "rows with a $filter on their lookup "
                                                      "(_x_value eq <id>).")
        q = self._query_options(entity, params, headers)
        if key_text is None:
            if method == "GET":
                return self._list(entity, params, headers, q)
            if method == "POST":
                return self._create(entity, body, q, client_id, content_ids)
            raise DataverseError(405, CODE_ODATA, f"The HTTP method '{method}' is not allowed "
                                                  f"on the entity set '{entity_set}'.")
        key = self._parse_key(entity, key_text)
        if method == "GET":
            return self._get(entity, key, headers, q)
        if method == "PATCH":
            return self._upsert(entity, key, body, headers, q, client_id, content_ids)
        if method == "DELETE":
            return self._delete(entity, key, headers)
        raise DataverseError(405, CODE_ODATA, f"The HTTP method '{method}' is not allowed on "
                                              f"a single {entity.name} record.")

    def _service_path(self, method: str, path: str, params: Mapping[str, str],
                      headers: Mapping[str, str], body: bytes, client_id: str | None,
                      ) -> Reply | None:
        """The answer for the service document, ``$metadata``, ``$batch``, functions and
        metadata; None for an entity set path."""
        if path == "":
            return self._service_document()
        if path == "$metadata":
            self._require(method, "GET")
            return Reply(200, {"Content-Type": "application/xml", "OData-Version": "4.0"},
                         self._metadata_document())
        if path == "$batch":
            self._require(method, "POST")
            return self._batch(headers, body, client_id)
        if path in ("WhoAmI", "WhoAmI()"):
            self._require(method, "GET")
            return self._who_am_i(client_id)
        if path == "InsertOptionValue":
            self._require(method, "POST")
            return self._insert_option_value(body)
        if path.startswith("EntityDefinitions"):
            self._require(method, "GET")
            return self._entity_definitions(path, params)
        return None

    @staticmethod
    def _require(method: str, allowed: str) -> None:
        if method != allowed:
            raise DataverseError(405, CODE_ODATA, f"Use {allowed} for this resource, not "
                                                  f"{method}.")

    # ---------------------------------------------------------------- keys
    def _parse_key(self, entity: EntityDef, text: str) -> tuple[str, str]:
        """``(<guid>)`` → (key column, guid); ``(accountnumber='A1')`` → (column, value)."""
        guid = _GUID.match(text.strip())
        if guid:
            return entity.key, guid.group(1).lower()
        match = re.fullmatch(r"\s*(\w+)\s*=\s*(?:'((?:[^']|'')*)'|([^'\s,]+))\s*", text)
        if match is None:
            raise DataverseError(400, CODE_ODATA, f"Bad Request - Error in query syntax: "
                                                  f"'{text}' is not a GUID or an alternate key "
                                                  f"such as name='value'.")
        column, quoted, bare = match.groups()
        value = quoted.replace("''", "'") if quoted is not None else bare
        if column == entity.key:
            guid = _GUID.match(value)
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

    # ---------------------------------------------------------------- query options
    def _query_options(self, entity: EntityDef, params: Mapping[str, str],
                       headers: Mapping[str, str]) -> _Query:
        prefer = _parse_prefer(headers.get("prefer", ""))
        annotations = _Annotations(tuple(
            p.strip() for p in prefer.get("odata.include-annotations", "").split(",")
            if p.strip()))
        select = None
        if params.get("$select"):
            select = [self._select_column(entity, name.strip())
                      for name in params["$select"].split(",") if name.strip()]
        expand: dict[str, _Query] = {}
        if params.get("$expand"):
            expand = self._expand_options(entity, params["$expand"], annotations, prefer)
        detect = headers.get("mscrm.suppressduplicatedetection", "").strip().lower() == "false"
        return _Query(select, annotations, prefer, expand, detect)

    def _expand_options(self, entity: EntityDef, text: str, annotations: _Annotations,
                        prefer: dict[str, str]) -> dict[str, _Query]:
        """``invoice_details`` or ``invoice_details($select=a,b)``: document lines only."""
        collections: Mapping[str, tuple[str, str]] = entity.extra.get("collections") or {}
        expand: dict[str, _Query] = {}
        position = 0
        for match in re.finditer(r"\s*(\w+)\s*(?:\(([^()]*)\))?\s*(?:,|$)", text):
            if match.start() != position or match.end() == position:
                break
            position = match.end()
            name, options = match.group(1), match.group(2)
            if name not in collections:
                lines = ", ".join(collections) or f"none on {entity.entity_set}"
                raise DataverseError(501, CODE_ODATA, f"The query option '$expand' is only "
                                                      f"emulated for document lines ({lines}), "
                                                      f"not '{name}'; read related rows with a "
                                                      "$filter on their lookup "
                                                      "(_x_value eq <id>).")
            nested = dict(parse_qsl((options or "").replace(";", "&")))
            unknown = set(nested) - {"$select"}
            if unknown:
                raise DataverseError(501, CODE_ODATA, f"Only $select is emulated inside "
                                                      f"$expand, not {sorted(unknown)[0]}.")
            child = self.by_name[collections[name][0]]
            select = None
            if nested.get("$select"):
                select = [self._select_column(child, column.strip())
                          for column in nested["$select"].split(",") if column.strip()]
            expand[name] = _Query(select, annotations, prefer)
        if position != len(text):
            raise DataverseError(400, CODE_ODATA, f"The query option $expand='{text}' is not "
                                                  "valid; use e.g. $expand=invoice_details("
                                                  "$select=quantity).")
        return expand

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
                                    column.type)
            return FilterColumn(f'"{column.name}"', column.type)
        return resolve

    def _filter_column(self, entity: EntityDef, name: str) -> Column:
        try:
            return self._select_column(entity, name)
        except DataverseError as exc:
            raise FilterError(exc.message) from None

    # ---------------------------------------------------------------- serialization
    def _wire_rows(self, entity: EntityDef, rows: list[dict[str, Any]], q: _Query,
                   ) -> list[dict[str, Any]]:
        columns = self._output_columns(entity, q.select)
        formatted = q.annotations.formatted
        lookups = q.annotations.lookups
        names = self._lookup_names(entity, rows, columns) if formatted else {}
        currencies = self._currency_symbols() if formatted else {}
        options = self._added_options(entity) if formatted else {}
        key = entity.key
        out: list[dict[str, Any]] = []
        for row in rows:
            item: dict[str, Any] = {"@odata.etag": _etag(row)}
            for col in columns:
                value = row.get(col.name)
                if col.type == "lookup":
                    wire = f"_{col.name}_value"
                    if value is not None:
                        target = (row.get(type_column(col)) if is_polymorphic(col) else None) \
                            or col.lookup_targets[0]
                        if formatted:
                            label = names.get((target, value))
                            if label is not None:
                                item[f"{wire}@{FORMATTED}"] = label
                        if lookups:
                            nav = col.navigation or col.name
                            if is_polymorphic(col) and col.name != OWNER_COLUMN:
                                nav = f"{nav}_{target}"
                            item[f"{wire}@{ASSOCIATED_NAVIGATION}"] = nav
                            item[f"{wire}@{LOOKUP_LOGICAL_NAME}"] = target
                    item[wire] = value
                    continue
                if value is not None:
                    if col.type == "datetime":
                        value = _wire_datetime(value)
                    if formatted:
                        label = self._format_value(col, value, row, currencies, options)
                        if label is not None:
                            item[f"{col.name}@{FORMATTED}"] = label
                item[col.name] = value
            item[key] = row[key]
            for nav, child_q in q.expand.items():
                child_name, lookup = entity.extra["collections"][nav]
                child = self.by_name[child_name]
                children = self.store.query(self.qualified(child), f'"{lookup}" = ?', [row[key]],
                                            order_by=[("lineitemnumber", False),
                                                      ("createdon", False)])
                item[nav] = self._wire_rows(child, children, child_q)
            out.append(item)
        return out

    def _output_columns(self, entity: EntityDef, select: list[Column] | None) -> list[Column]:
        if select is None:
            return [c for c in entity.columns if not self._hidden(entity, c)]
        # Only what was selected (the key and @odata.etag are added by the caller), as the
        # documented answers show: the real service adds no versionnumber.
        chosen = {c.name for c in select}
        if any(c.type == "money" for c in select) and entity.column("transactioncurrencyid"):
            chosen.add("transactioncurrencyid")
        return [c for c in entity.columns if c.name in chosen and c.name != entity.key]

    @staticmethod
    def _format_value(col: Column, value: Any, row: Mapping[str, Any],
                      currencies: Mapping[str, str],
                      options: Mapping[tuple[str, int], str]) -> str | None:
        if col.type == "choice":
            if col.choices and value in col.choices:
                return col.choices[value]
            return options.get((col.name, value))
        if col.type == "money":
            symbol = currencies.get(row.get("transactioncurrencyid") or "", "$")
            sign = "-" if value < 0 else ""
            return f"{sign}{symbol}{abs(value):,.2f}"
        if col.type == "bool":
            return "Yes" if value else "No"
        if col.type == "datetime":
            moment = datetime.fromisoformat(value)
            return f"{moment.month}/{moment.day}/{moment.year} {moment:%I:%M %p}".replace(
                " 0", " ", 1)
        if col.type == "date":
            day = date.fromisoformat(value)
            return f"{day.month}/{day.day}/{day.year}"
        if col.type in ("decimal", "int"):
            return f"{value:,}" if col.type != "decimal" else f"{value:,.2f}"
        return None

    def _lookup_names(self, entity: EntityDef, rows: list[dict[str, Any]],
                      columns: list[Column]) -> dict[tuple[str, str], str]:
        wanted: dict[str, set[str]] = {}
        for col in columns:
            if col.type != "lookup":
                continue
            for row in rows:
                value = row.get(col.name)
                if value is None:
                    continue
                target = (row.get(type_column(col)) if is_polymorphic(col) else None) \
                    or col.lookup_targets[0]
                wanted.setdefault(target, set()).add(value)
        names: dict[tuple[str, str], str] = {}
        for target, keys in wanted.items():
            target_entity = self.by_name.get(target)
            if target_entity is None:
                continue
            name_column = target_entity.extra.get("primary_name")
            if not name_column:
                continue
            key_list = sorted(keys)
            for start in range(0, len(key_list), 500):
                chunk = key_list[start:start + 500]
                found = self.store.query(
                    self.qualified(target_entity),
                    f'"{target_entity.key}" IN ({", ".join("?" for _ in chunk)})', chunk)
                for row in found:
                    if row.get(name_column) is not None:
                        names[(target, row[target_entity.key])] = str(row[name_column])
        return names

    def _currency_symbols(self) -> dict[str, str]:
        return {row["transactioncurrencyid"]: row.get("currencysymbol") or
                row.get("isocurrencycode") or "$"
                for row in self.store.query("dataverse:transactioncurrency")}

    def _added_options(self, entity: EntityDef) -> dict[tuple[str, int], str]:
        rows = self.store.query(f"dataverse:{OPTION_VALUE_ENTITY}", '"entitylogicalname" = ?',
                                [entity.name])
        return {(r["attributelogicalname"], r["value"]): r["label"] for r in rows}

    def _context(self, entity: EntityDef, q: _Query, suffix: str = "") -> str:
        select = ""
        if q.select is not None:
            select = "(" + ",".join(
                f"_{c.name}_value" if c.type == "lookup" else c.name for c in q.select) + ")"
        return f"{self.root}$metadata#{entity.entity_set}{select}{suffix}"

    def _applied(self, q: _Query, *extra: str) -> dict[str, str]:
        applied = list(extra)
        if q.annotations.patterns:
            applied.append(f'odata.include-annotations="{",".join(q.annotations.patterns)}"')
        return {"Preference-Applied": ",".join(applied)} if applied else {}

    # ---------------------------------------------------------------- reads
    def _list(self, entity: EntityDef, params: Mapping[str, str], headers: Mapping[str, str],
              q: _Query) -> Reply:
        if "$skip" in params:
            raise DataverseError(400, CODE_ODATA, "The query parameter $skip is not supported. "
                                                  "Page with Prefer: odata.maxpagesize and "
                                                  "follow @odata.nextLink.")
        if "odata.track-changes" in q.prefer or "$deltatoken" in params:
            return self._track_changes(entity, params, q)
        where: str = ""
        args: list[Any] = []
        if params.get("$filter"):
            try:
                where, args = compile_filter(params["$filter"], self._resolver(entity),
                                             DATAVERSE_DIALECT)
            except FilterError as exc:
                raise DataverseError(400, CODE_ODATA, str(exc)) from None
        order: list[tuple[str, bool]] = []
        if params.get("$orderby"):
            try:
                for name, desc in parse_orderby(params["$orderby"]):
                    column = self._filter_column(entity, name).name
                    if column != entity.key:
                        order.append((column, desc))
            except FilterError as exc:
                raise DataverseError(400, CODE_ODATA, str(exc)) from None
        top = self._int_option(params, "$top")
        page_size = MAX_PAGE_SIZE
        applied: list[str] = []
        max_page = q.prefer.get("odata.maxpagesize")
        if max_page is not None:
            if not max_page.isdigit() or int(max_page) < 1:
                raise DataverseError(400, CODE_ODATA, f"Invalid odata.maxpagesize "
                                                      f"'{max_page}': use a positive integer.")
            page_size = min(int(max_page), MAX_PAGE_SIZE)
            applied.append(f"odata.maxpagesize={page_size}")
            top = None
        limit = min(top, MAX_PAGE_SIZE) if top is not None else page_size
        after: tuple[Any, ...] | None = None
        page_number = 1
        if params.get("$skiptoken"):
            after, page_number = self._read_skiptoken(params["$skiptoken"], len(order) + 1)
        rows = self.store.query(self.qualified(entity), where, args, order, after, limit + 1)
        more = len(rows) > limit and top is None
        rows = rows[:limit]
        payload: dict[str, Any] = {"@odata.context": self._context(entity, q)}
        if params.get("$count", "").lower() == "true":
            payload["@odata.count"] = min(self.store.count(self.qualified(entity), where, args),
                                          MAX_COUNT)
        payload["value"] = self._wire_rows(entity, rows, q)
        if more:
            last = rows[-1]
            position = (*(last[name] for name, _ in order), last[entity.key])
            token = self._skiptoken(entity, rows[0][entity.key], last[entity.key], position,
                                    page_number + 1)
            link_params = [(k, v) for k, v in params.items()
                           if k not in ("$skiptoken", "$top")]
            link_params.append(("$skiptoken", token))
            payload["@odata.nextLink"] = (f"{self.root}{entity.entity_set}?"
                                          f"{urlencode(link_params, quote_via=quote, safe='$,')}")
        return _json_reply(200, payload, self._applied(q, *applied))

    @staticmethod
    def _int_option(params: Mapping[str, str], name: str) -> int | None:
        text = params.get(name)
        if text is None:
            return None
        if not text.isdigit():
            raise DataverseError(400, CODE_ODATA, f"Invalid value '{text}' for {name}: use a "
                                                  "non-negative integer.")
        return int(text)

    @staticmethod
    def _skiptoken(entity: EntityDef, first: str, last: str, position: tuple[Any, ...],
                   page: int) -> str:
        state = base64.urlsafe_b64encode(_dumps(list(position))).decode()
        inner = (f'<cookie page="{page - 1}" sandbox="{state}"><{entity.key} '
                 f'last="{{{last.upper()}}}" first="{{{first.upper()}}}" /></cookie>')
        cookie = quote(quote(inner, safe=""), safe="")
        return f'<cookie pagenumber="{page}" pagingcookie="{cookie}" istracking="False" />'

    @staticmethod
    def _read_skiptoken(token: str, size: int) -> tuple[tuple[Any, ...], int]:
        bad = DataverseError(400, CODE_ODATA, "The $skiptoken is invalid; pass the "
                                              "@odata.nextLink unchanged.")
        page = re.search(r'pagenumber="(\d+)"', token)
        cookie = re.search(r'pagingcookie="([^"]*)"', token)
        if page is None or cookie is None:
            raise bad
        state = re.search(r'sandbox="([^"]*)"', unquote(unquote(cookie.group(1))))
        if state is None:
            raise bad
        try:
            position = json.loads(base64.urlsafe_b64decode(state.group(1)))
        except ValueError:
            raise bad from None
        if not isinstance(position, list) or len(position) != size:
            raise bad
        return tuple(position), int(page.group(1))

    def _get(self, entity: EntityDef, key: tuple[str, str], headers: Mapping[str, str],
             q: _Query) -> Reply:
        row = self._find(entity, key)
        if row is None:
            raise _not_found(entity, self._describe_key(key))
        if headers.get("if-none-match") == _etag(row):
            return Reply(304, {"OData-Version": "4.0", "ETag": _etag(row)})
        payload = {"@odata.context": self._context(entity, q, "/$entity")}
        payload.update(self._wire_rows(entity, [row], q)[0])
        return _json_reply(200, payload, {"ETag": _etag(row), **self._applied(q)})

    def _track_changes(self, entity: EntityDef, params: Mapping[str, str], q: _Query) -> Reply:
        for option in ("$filter", "$orderby", "$top", "$expand", "$skiptoken", "$count"):
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
            since = self._read_delta_token(params["$deltatoken"])
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
        issued = datetime.now(UTC).strftime("%m/%d/%Y %H:%M:%S")
        link_params = [(k, v) for k, v in params.items() if k == "$select"]
        link_params.append(("$deltatoken", f"{version}!{issued}"))
        payload = {"@odata.context": context, "value": values,
                   "@odata.deltaLink": f"{self.root}{entity.entity_set}?"
                                       f"{urlencode(link_params, quote_via=quote, safe='$,')}"}
        return _json_reply(200, payload, self._applied(q, "odata.track-changes"))

    @staticmethod
    def _read_delta_token(token: str) -> int:
        match = re.fullmatch(r"(\d+)!(\d\d/\d\d/\d{4} \d\d:\d\d:\d\d)", token)
        if match is None:
            raise DataverseError(400, CODE_ODATA, f"The $deltatoken '{token}' is invalid; "
                                                  "use the @odata.deltaLink unchanged.")
        issued = datetime.strptime(match.group(2), "%m/%d/%Y %H:%M:%S").replace(tzinfo=UTC)
        if datetime.now(UTC) - issued > DELTA_TOKEN_LIFETIME:
            raise DataverseError(400, CODE_ODATA, "The $deltatoken has expired (older than 7 "
                                                  "days); read all rows again with Prefer: "
                                                  "odata.track-changes.")
        return int(match.group(1))

    # ---------------------------------------------------------------- writes
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
        user it impersonates."""
        users = "dataverse:systemuser"
        if client_id and client_id.startswith(IMPERSONATED):
            return client_id[len(IMPERSONATED):]
        if client_id:
            rows = self.store.query(users, '"applicationid" = ?', [client_id.lower()], limit=1)
            if rows:
                return str(rows[0]["systemuserid"])
        rows = self.store.query(users, limit=1, order_by=[("accessmode", True)])
        return str(rows[0]["systemuserid"]) if rows else None

    def _body(self, body: bytes, entity: EntityDef) -> dict[str, Any]:
        try:
            data = json.loads(body or b"{}")
        except ValueError:
            raise DataverseError(400, CODE_PAYLOAD, f"Error identified in Payload provided by "
                                                    f"the user for Entity :'"
                                                    f"{entity.entity_set}': the body is not "
                                                    f"valid JSON.") from None
        if not isinstance(data, dict):
            raise DataverseError(400, CODE_PAYLOAD, "The request body must be a JSON object.")
        return data

    def _type_error(self, entity: EntityDef, value: Any, column: Column) -> DataverseError:
        return DataverseError(
            400, CODE_PAYLOAD,
            f"Error identified in Payload provided by the user for Entity :"
            f"'{entity.entity_set}', For more information on this error please follow this "
            f"help link https://go.microsoft.com/fwlink/?linkid=2195293  ----> "
            f"InnerException : Microsoft.OData.ODataException: Cannot convert the literal "
            f"'{value}' to the expected type 'Edm.{_EDM_TYPES[column.type]}'.")

    def _coerce(self, entity: EntityDef, column: Column, value: Any) -> Any:
        if value is None:
            return None
        kind = column.type
        if kind in ("string", "memo"):
            if not isinstance(value, str):
                raise self._type_error(entity, value, column)
            if column.max_length is not None and len(value) > column.max_length:
                raise DataverseError(
                    400, CODE_LENGTH,
                    f"A validation error occurred.  The length of the '{column.name}' "
                    f"attribute of the '{entity.name}' entity exceeded the maximum allowed "
                    f"length of '{column.max_length}'.")
            return value
        if kind in ("int", "bigint", "choice"):
            if isinstance(value, bool) or not isinstance(value, int):
                raise self._type_error(entity, value, column)
            if kind == "choice":
                self._check_choice(entity, column, value)
            return value
        if kind in ("decimal", "money"):
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise self._type_error(entity, value, column)
            return value
        if kind == "bool":
            if not isinstance(value, bool):
                raise self._type_error(entity, value, column)
            return value
        if kind in ("datetime", "date", "guid"):
            return self._coerce_text(entity, column, value)
        return value

    def _coerce_text(self, entity: EntityDef, column: Column, value: Any) -> str | None:
        """A datetime, date or GUID column's value, sent as a string."""
        if not isinstance(value, str):
            raise self._type_error(entity, value, column)
        try:
            if column.type == "datetime":
                return normalize_datetime(value)
            if column.type == "date":
                return date.fromisoformat(value[:10]).isoformat()
            guid = _GUID.match(value)
            if guid is None:
                raise ValueError(value)
            return guid.group(1).lower()
        except ValueError:
            raise self._type_error(entity, value, column) from None

    def _valid_options(self, entity: EntityDef, column: Column) -> list[int]:
        values = list(column.choices or {})
        if column.name not in ("statecode", "statuscode"):
            added = self.store.query(f"dataverse:{OPTION_VALUE_ENTITY}",
                                     '"entitylogicalname" = ? AND "attributelogicalname" = ?',
                                     [entity.name, column.name])
            values.extend(r["value"] for r in added)
        return values

    def _check_choice(self, entity: EntityDef, column: Column, value: int) -> None:
        if column.choices and value in column.choices:
            return
        valid = self._valid_options(entity, column)
        if value not in valid:
            raise DataverseError(
                400, CODE_BAD_OPTION,
                f"A validation error occurred.  The value {value} of '{column.name}' on record "
                f"of type '{entity.name}' is outside the valid range. Accepted Values: "
                f"{','.join(str(v) for v in valid)}")

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

    def _changes(self, entity: EntityDef, data: Mapping[str, Any], existing: Mapping[str, Any]
                 | None, content_ids: Mapping[str, str]) -> dict[str, Any]:
        """Validate a request body and turn it into store column changes."""
        changes: dict[str, Any] = {}
        navigation = self.navigation[entity.name]
        for name, value in data.items():
            if "@" in name:
                if not name.endswith("@odata.bind"):
                    continue
                nav = name[:-len("@odata.bind")]
                if nav not in navigation:
                    raise DataverseError(
                        400, CODE_ODATA,
                        f"An undeclared property '{nav}' which only has property annotations "
                        f"in the payload but no property value was found in the payload. In "
                        f"OData, only declared navigation properties and declared named "
                        f"streams can be represented as properties without values.")
                column, fixed_target = navigation[nav]
                if value is None:
                    changes[column.name] = None
                    if is_polymorphic(column):
                        changes[type_column(column)] = None
                    continue
                if not isinstance(value, str):
                    raise DataverseError(400, CODE_ODATA, f"The value of '{name}' must be an "
                                                          "entity reference string.")
                target, target_key = self._parse_reference(value, content_ids)
                allowed = (fixed_target,) if fixed_target else column.lookup_targets
                if target.name not in allowed:
                    raise DataverseError(400, CODE_ODATA,
                                         f"'{name}' must refer to a record of type "
                                         f"{' or '.join(allowed)}, not {target.name}.")
                found = self._find(target, target_key)
                if found is None:
                    raise _not_found(target, self._describe_key(target_key))
                changes[column.name] = found[target.key]
                if is_polymorphic(column):
                    changes[type_column(column)] = target.name
                continue
            if name.startswith("_") and name.endswith("_value"):
                raise DataverseError(400, CODE_ODATA, "CRM do not support direct update of "
                                                      "Entity Reference properties, Use "
                                                      "Navigation properties instead.")
            found_column = entity.column(name)
            if found_column is None or self._hidden(entity, found_column):
                raise DataverseError(
                    400, CODE_ODATA,
                    f"The property '{name}' does not exist on type 'Microsoft.Dynamics.CRM."
                    f"{entity.name}'. Make sure to only use property names that are defined "
                    f"by the type.")
            column = found_column
            if column.type == "lookup":
                raise DataverseError(
                    400, CODE_ODATA,
                    f"A 'PrimitiveValue' node with non-null value was found when trying to "
                    f"read the value of the navigation property '{name}'; however, a "
                    f"'StartArray' node, a 'StartObject' node, or a 'PrimitiveValue' node with "
                    f"null value was expected. Write lookups as '{name}@odata.bind'.")
            if column.read_only or (column.name == entity.key and existing is not None):
                continue
            changes[name] = self._coerce(entity, column, value)
        self._apply_state(entity, changes, existing)
        return changes

    def _apply_state(self, entity: EntityDef, changes: dict[str, Any],
                     existing: Mapping[str, Any] | None) -> None:
        states: Mapping[int, tuple[int, ...]] = entity.extra.get("states") or {}
        if not states or ("statecode" not in changes and "statuscode" not in changes):
            return
        self._resolve_state(entity, states, changes, existing)
        transitions = entity.extra.get("transitions")
        if existing is None or transitions is None:
            return
        before, after = existing.get("statecode") or 0, changes["statecode"]
        if (before, after) not in transitions:
            allowed = ", ".join(f"{_state_label(entity, a)} -> {_state_label(entity, b)}"
                                for a, b in sorted(transitions) if a != b)
            raise DataverseError(400, CODE_INVALID_ARGUMENT,
                                 f"The {entity.name} with Id {existing[entity.key]} cannot move "
                                 f"from state {_state_label(entity, before)} to "
                                 f"{_state_label(entity, after)} with an update; the service "
                                 f"changes that state with its own messages. Updates may "
                                 f"move {allowed}.")

    def _resolve_state(self, entity: EntityDef, states: Mapping[int, tuple[int, ...]],
                       changes: dict[str, Any], existing: Mapping[str, Any] | None) -> None:
        """Fill the missing half of a statecode/statuscode pair and check the pair."""
        state = changes.get("statecode")
        status = changes.get("statuscode")
        if (state is None and "statecode" in changes) or (
                status is None and "statuscode" in changes):
            raise DataverseError(400, CODE_INVALID_ARGUMENT, "statecode and statuscode cannot "
                                                             "be null.")
        if state is None:
            state = next((s for s, allowed in states.items() if status in allowed), None)
            if state is None:
                raise DataverseError(400, CODE_BAD_OPTION,
                                     f"A validation error occurred.  The value {status} of "
                                     f"'statuscode' on record of type '{entity.name}' is "
                                     f"outside the valid range.")
            current = existing.get("statecode") if existing else 0
            if state != current and existing is not None:
                state_label = _state_label(entity, current)
                raise DataverseError(400, CODE_INVALID_ARGUMENT,
                                     f"{status} is not a valid status code for state code "
                                     f"{entity.name.capitalize()}State.{state_label} on "
                                     f"{entity.name} with Id {existing[entity.key]}.")
            changes["statecode"] = state
            return
        if status is None:
            changes["statuscode"] = states[state][0]
            return
        if status not in states[state]:
            state_label = _state_label(entity, state)
            record = existing[entity.key] if existing else "(new record)"
            raise DataverseError(400, CODE_INVALID_ARGUMENT,
                                 f"{status} is not a valid status code for state code "
                                 f"{entity.name.capitalize()}State.{state_label} on "
                                 f"{entity.name} with Id {record}.")

    def _check_required(self, entity: EntityDef, merged: Mapping[str, Any],
                        only: Iterable[str] | None = None) -> None:
        """Required columns must have a value (on update: only those being changed)."""
        names = set(only) if only is not None else None
        for column in entity.columns:
            if names is not None and column.name not in names:
                continue
            if column.required and not column.read_only and merged.get(column.name) in (None,
                                                                                       ""):
                label = column.name
                if column.type == "lookup":
                    label = f"{column.navigation or column.name} (write it as "\
                            f"'{column.navigation or column.name}@odata.bind')"
                raise DataverseError(
                    400, CODE_INVALID_ARGUMENT,
                    f"A validation error occurred.  The '{label}' attribute of the "
                    f"'{entity.name}' entity is required; provide a value.")

    def _check_alternate_keys(self, entity: EntityDef, merged: Mapping[str, Any]) -> None:
        for column in entity.extra.get("alternate_keys", ()):
            value = merged.get(column)
            if self._taken(entity, column, merged):
                raise DataverseError(
                    412, CODE_DUPLICATE,
                    f"A record that has the attribute values {value} already exists. The "
                    f"entity key {column} requires that this set of attributes contains "
                    f"unique values. Select unique values and try again.")

    def _taken(self, entity: EntityDef, column: str, merged: Mapping[str, Any]) -> bool:
        """Whether another row of ``entity`` holds ``merged``'s value of ``column`` (no case)."""
        value = merged.get(column)
        if value in (None, ""):
            return False
        return bool(self.store.query(self.qualified(entity),
                                     f'"{column}" = ? COLLATE NOCASE AND "{entity.key}" <> ?',
                                     [value, merged.get(entity.key) or ""], limit=1))

    def _check_duplicate_rules(self, entity: EntityDef, q: _Query,
                               merged: Mapping[str, Any]) -> None:
        """Duplicate detection, only when asked for: the documented ``500`` / ``0x80040333``
        (*Detect duplicate data using the Web API*)."""
        if not q.detect_duplicates:
            return
        for column in DUPLICATE_RULES.get(entity.name, ()):
            if self._taken(entity, column, merged):
                raise DataverseError(500, CODE_DUPLICATE_FOUND,
                                     "A record was not created or updated because a duplicate "
                                     "of the current record already exists.")

    def _write_reply(self, entity: EntityDef, row: dict[str, Any], q: _Query,
                     created: bool) -> Reply:
        """As the real service: ``204`` with ``OData-EntityId`` and no ``ETag`` (the version
        is not returned); with ``Prefer: return=representation`` ``201``/``200`` with the
        record (its ``@odata.etag``) and no ``OData-EntityId`` (*Create table rows using the
        Web API*, *Update and delete table rows using the Web API*)."""
        url = self.entity_url(entity, row[entity.key])
        if q.prefer.get("return") == "representation":
            payload = {"@odata.context": self._context(entity, q, "/$entity")}
            payload.update(self._wire_rows(entity, [row], q)[0])
            reply = _json_reply(201 if created else 200, payload,
                                self._applied(q, "return=representation"))
            reply.entity_url = url
            return reply
        return Reply(204, {"OData-Version": "4.0", "OData-EntityId": url, "Location": url},
                     entity_url=url)

    def _autonumber(self, entity: EntityDef, merged: dict[str, Any]) -> None:
        spec = entity.extra.get("autonumber")
        if spec and not merged.get(spec[0]):
            sequence = self.store.count(self.qualified(entity)) + 1001
            merged[spec[0]] = f"{spec[1]}{sequence:05d}-{uuid.uuid4().hex[:6].upper()}"

    def _insert(self, entity: EntityDef, changes: dict[str, Any], client_id: str | None,
                *, roll_up: bool = True) -> dict[str, Any]:
        merged = dict(changes)
        if merged.get(entity.key) is None:
            merged[entity.key] = str(uuid.uuid4())
        for column in entity.columns:
            if column.default is not None and merged.get(column.name) is None:
                merged[column.name] = column.default
        states = entity.extra.get("states") or {}
        if states and "statecode" not in changes:
            merged["statuscode"] = states[merged.get("statecode", 0)][0]
        merged.update(derive_columns(entity, merged))
        self._autonumber(entity, merged)
        self._check_required(entity, merged)
        self._check_alternate_keys(entity, merged)
        user = self._caller(client_id)
        if entity.extra.get("owned") and merged.get(OWNER_COLUMN) is None and user:
            merged[OWNER_COLUMN] = user
            merged[f"{OWNER_COLUMN}type"] = "systemuser"
        if entity.extra.get("owned") and merged.get(OWNER_COLUMN) \
                and not merged.get(f"{OWNER_COLUMN}type"):
            merged[f"{OWNER_COLUMN}type"] = "systemuser"
        merged["createdby"] = user
        merged["modifiedby"] = user
        if entity.name in DETAIL_HEADERS:
            self._inherit_currency(entity.name, merged)
            merged.update(line_amounts(merged))
        try:
            row = self.store.insert(self.qualified(entity), merged)
        except KeyExistsError:
            raise DataverseError(412, CODE_DUPLICATE,
                                 "A record with matching key values already exists.") from None
        if entity.name in DETAIL_HEADERS and roll_up:
            self._roll_up(entity.name, row)
        if entity.name == "uomschedule":
            self._create_base_unit(row, user)
        return row

    def _inherit_currency(self, detail: str, merged: dict[str, Any]) -> None:
        """A new line takes its header's currency when it names none."""
        header_name, lookup = DETAIL_HEADERS[detail]
        if merged.get("transactioncurrencyid") is None and merged.get(lookup):
            header = self.store.get(f"dataverse:{header_name}", merged[lookup])
            if header is not None:
                merged["transactioncurrencyid"] = header.get("transactioncurrencyid")

    def _roll_up(self, detail: str, row: Mapping[str, Any]) -> None:
        """A header's line total follows its details (system pricing recalculates it)."""
        header_name, lookup = DETAIL_HEADERS[detail]
        header_key = row.get(lookup)
        if header_key is None:
            return
        header = self.store.get(f"dataverse:{header_name}", header_key)
        if header is None:
            return
        lines = self.store.query(f"dataverse:{detail}", f'"{lookup}" = ?', [header_key])
        total = round(sum(float(line["extendedamount"] or 0.0) for line in lines), 2)
        if header.get("totallineitemamount") != total:
            self.store.update(f"dataverse:{header_name}", header_key,
                              {"totallineitemamount": total})

    def _create_base_unit(self, group: Mapping[str, Any], user: str | None) -> None:
        """Creating a unit group creates its base unit, named after ``baseuomname``."""
        unit_id = str(uuid.uuid4())
        self.store.insert("dataverse:uom", {
            "uomid": unit_id, "name": group["baseuomname"], "uomscheduleid":
            group["uomscheduleid"], "quantity": 1.0, "baseuom": unit_id,
            "isschedulebaseuom": True, "createdby": user, "modifiedby": user})

    def _update(self, entity: EntityDef, existing: dict[str, Any], changes: dict[str, Any],
                client_id: str | None) -> dict[str, Any]:
        merged = {**existing, **changes}
        changes.update(derive_columns(entity, merged) if
                       {"firstname", "lastname"} & set(changes) else {})
        merged.update(changes)
        self._check_required(entity, merged, only=changes)
        if set(entity.extra.get("alternate_keys", ())) & set(changes):
            self._check_alternate_keys(entity, merged)
        changes["modifiedby"] = self._caller(client_id)
        if entity.name in DETAIL_HEADERS:
            changes.update(line_amounts(merged))
        row = self.store.update(self.qualified(entity), existing[entity.key], changes)
        if entity.name in DETAIL_HEADERS:
            lookup = DETAIL_HEADERS[entity.name][1]
            self._roll_up(entity.name, row)
            if existing.get(lookup) != row.get(lookup):
                self._roll_up(entity.name, existing)
            row = self.store.get(self.qualified(entity), row[entity.key]) or row
        return row

    def _create(self, entity: EntityDef, body: bytes, q: _Query, client_id: str | None,
                content_ids: Mapping[str, str]) -> Reply:
        data = self._body(body, entity)
        collections: Mapping[str, tuple[str, str]] = entity.extra.get("collections") or {}
        nested = {name: data.pop(name) for name in list(data) if name in collections}
        with self.store.transaction():
            changes = self._changes(entity, data, None, content_ids)
            self._check_duplicate_rules(entity, q, changes)
            row = self._insert(entity, changes, client_id)
            if nested:
                self._deep_insert(entity, row, nested, client_id, content_ids)
                row = self.store.get(self.qualified(entity), row[entity.key]) or row
        if nested and q.prefer.get("return") == "representation":
            # The answer is expanded to the level of the request, as OData requires.
            extra = {name: _Query(None, q.annotations, q.prefer) for name in nested}
            q = _Query(q.select, q.annotations, q.prefer, {**extra, **q.expand})
        return self._write_reply(entity, row, q, created=True)

    def _deep_insert(self, entity: EntityDef, row: Mapping[str, Any],
                     nested: Mapping[str, Any], client_id: str | None,
                     content_ids: Mapping[str, str]) -> None:
        """Create the new child rows of collection-valued navigation properties."""
        for name, items in nested.items():
            child_name, lookup = entity.extra["collections"][name]
            child = self.by_name[child_name]
            if not isinstance(items, list):
                raise DataverseError(400, CODE_ODATA, f"The value of the navigation property "
                                                      f"'{name}' must be an array of "
                                                      f"{child_name} records.")
            for item in items:
                if not isinstance(item, dict):
                    raise DataverseError(400, CODE_ODATA, f"Each item of '{name}' must be a "
                                                          f"{child_name} record (a JSON "
                                                          "object).")
                changes = self._changes(child, item, None, content_ids)
                changes[lookup] = row[entity.key]
                self._insert(child, changes, client_id, roll_up=False)
            if child_name in DETAIL_HEADERS:
                self._roll_up(child_name, {lookup: row[entity.key]})

    def _upsert(self, entity: EntityDef, key: tuple[str, str], body: bytes,
                headers: Mapping[str, str], q: _Query, client_id: str | None,
                content_ids: Mapping[str, str]) -> Reply:
        data = self._body(body, entity)
        deep = sorted(set(data) & set(entity.extra.get("collections") or {}))
        if deep:
            raise DataverseError(400, CODE_ODATA, f"Deep update is not supported: '{deep[0]}' "
                                                  "cannot be written with PATCH; create or "
                                                  f"update the {deep[0]} rows one by one.")
        if_match = headers.get("if-match")
        if_none_match = headers.get("if-none-match")
        with self.store.transaction():
            existing = self._find(entity, key)
            if existing is None:
                if if_match is not None:
                    raise _not_found(entity, self._describe_key(key))
                changes = self._changes(entity, data, None, content_ids)
                body_key = changes.get(entity.key)
                column, value = key
                if column == entity.key:
                    if body_key is not None and body_key != value:
                        raise DataverseError(400, CODE_INVALID_ARGUMENT,
                                             f"The key {value} in the URL does not match the "
                                             f"{entity.key} {body_key} in the body.")
                    changes[entity.key] = value
                else:
                    changes[column] = value
                self._check_duplicate_rules(entity, q, changes)
                row = self._insert(entity, changes, client_id)
                return self._write_reply(entity, row, q, created=True)
            if if_none_match == "*":
                # Documented with an empty code (*Perform conditional operations*); an
                # alternate-key clash answers the same status with CODE_DUPLICATE.
                raise DataverseError(412, "", "A record with matching key values already "
                                              "exists.")
            self._check_if_match(existing, if_match)
            changes = self._changes(entity, data, existing, content_ids)
            self._check_duplicate_rules(entity, q, {**existing, **changes})
            row = self._update(entity, existing, changes, client_id)
        return self._write_reply(entity, row, q, created=False)

    @staticmethod
    def _check_if_match(row: Mapping[str, Any], if_match: str | None) -> None:
        if if_match is None or if_match.strip() == "*":
            return
        tags = {t.strip() for t in if_match.split(",")}
        if _etag(row) not in tags and str(row["versionnumber"]) not in tags:
            raise DataverseError(412, "", "The version of the existing record doesn't match the "
                                          "RowVersion property provided.")

    def _delete(self, entity: EntityDef, key: tuple[str, str],
                headers: Mapping[str, str]) -> Reply:
        with self.store.transaction():
            existing = self._find(entity, key)
            if existing is None:
                raise _not_found(entity, self._describe_key(key))
            self._check_if_match(existing, headers.get("if-match"))
            self._delete_cascade(entity, existing[entity.key])
        return Reply(204, {"OData-Version": "4.0"})

    def _delete_cascade(self, entity: EntityDef, key: str) -> None:
        """Delete a record: child lines go with it, other lookups to it are cleared."""
        deleted = self.store.delete(self.qualified(entity), key)
        if deleted is not None and entity.name in DETAIL_HEADERS:
            self._roll_up(entity.name, deleted)
        for other in DATAVERSE_ENTITIES:
            for column in other.columns:
                if column.type != "lookup" or entity.name not in column.lookup_targets:
                    continue
                if column.name in ("createdby", "modifiedby"):
                    continue
                name = self.qualified(other)
                for row in self.store.query(name, f'"{column.name}" = ?', [key]):
                    if other.parent == entity.name or column.name in other.extra.get(
                            "cascade", ()):
                        self.store.delete(name, row[other.key])
                    else:
                        clear = {column.name: None}
                        if is_polymorphic(column):
                            clear[type_column(column)] = None
                        self.store.update(name, row[other.key], clear)

    # ---------------------------------------------------------------- $batch
    def _batch(self, headers: Mapping[str, str], body: bytes, client_id: str | None) -> Reply:
        try:
            items = parse_batch(body, headers.get("content-type", ""))
        except BatchFormatError as exc:
            raise DataverseError(400, CODE_PAYLOAD, str(exc)) from None
        total = sum(len(i.requests) if isinstance(i, ChangeSet) else 1 for i in items)
        if total > MAX_BATCH_REQUESTS:
            raise DataverseError(400, CODE_ODATA,
                                 f"The $batch contains {total} requests; the maximum is "
                                 f"{MAX_BATCH_REQUESTS}. Split it into smaller batches.")
        continue_on_error = "odata.continue-on-error" in _parse_prefer(headers.get("prefer",
                                                                                   ""))
        results: list[BatchResponse | ChangeSetResponse] = []
        content_ids: dict[str, str] = {}
        status = 200
        with self.store.transaction():
            # One commit per batch (each part still succeeds or fails on its own savepoint):
            # per-part commits made large batches crawl.
            for item in items:
                if isinstance(item, ChangeSet):
                    failure = self._run_change_set(item, content_ids, client_id, results)
                else:
                    reply = self._run_part(item, content_ids, client_id)
                    results.append(BatchResponse(reply.status, reply.headers, reply.body))
                    failure = reply.status >= 400
                if failure and not continue_on_error:
                    # "The batch fails on the first request ... The batch error represents
                    # the error of the first failing request" (Execute batch operations).
                    last = results[-1]
                    status = last.status if isinstance(last, BatchResponse) else 400
                    break
        payload, content_type = format_batch_response(results)
        reply_headers = {"Content-Type": content_type, "OData-Version": "4.0"}
        if continue_on_error:
            reply_headers["Preference-Applied"] = "odata.continue-on-error"
        return Reply(status, reply_headers, payload)

    def _run_change_set(self, change_set: ChangeSet, content_ids: dict[str, str],
                        client_id: str | None,
                        results: list[BatchResponse | ChangeSetResponse]) -> bool:
        responses: list[BatchResponse] = []
        failed: BatchResponse | None = None
        local_ids: dict[str, str] = {}
        try:
            with self.store.transaction():
                for request in change_set.requests:
                    if request.method.upper() == "GET":
                        reply = _error_reply(DataverseError(
                            400, CODE_ODATA, "GET requests are not allowed inside a change "
                                             "set; send them as separate batch parts."))
                    else:
                        reply = self._run_part(request, {**content_ids, **local_ids},
                                               client_id)
                    response = BatchResponse(reply.status, reply.headers, reply.body,
                                             request.content_id)
                    if reply.status >= 400:
                        failed = response
                        raise _Rollback
                    responses.append(response)
                    if request.content_id and reply.entity_url:
                        local_ids[request.content_id] = reply.entity_url
        except _Rollback:
            assert failed is not None
            results.append(failed)
            return True
        content_ids.update(local_ids)
        results.append(ChangeSetResponse(responses))
        return False

    def _run_part(self, request: BatchRequest, content_ids: Mapping[str, str],
                  client_id: str | None) -> Reply:
        url = request.url
        if url.startswith("$"):
            match = re.match(r"\$([^/?(]+)(.*)", url)
            target = content_ids.get(match.group(1)) if match else None
            if match is None or target is None:
                return _error_reply(DataverseError(400, CODE_ODATA,
                                                   f"The Content-ID reference in '{url}' does "
                                                   "not name an earlier part of this change "
                                                   "set."))
            url = target + match.group(2)
        parts = urlsplit(url)
        path = parts.path
        if API_PATH in path:
            path = path.split(API_PATH, 1)[1]
        elif path.startswith("/"):
            return _error_reply(DataverseError(404, CODE_SEGMENT, f"Resource not found for "
                                                                  f"the segment '{path}'."))
        return self.handle(request.method, path, parts.query, request.headers, request.body,
                           client_id, content_ids)

    # ---------------------------------------------------------------- functions and actions
    def _service_document(self) -> Reply:
        return _json_reply(200, {
            "@odata.context": f"{self.root}$metadata",
            "value": [{"name": s, "kind": "EntitySet", "url": s} for s in sorted(self.entities)],
        })

    def _metadata_document(self) -> bytes:
        """A CSDL document listing the emulated entity types, properties and sets."""
        if self._csdl is None:
            types: list[str] = []
            for entity in self.entities.values():
                members = [f'<Key><PropertyRef Name="{entity.key}"/></Key>']
                for col in entity.columns:
                    if self._hidden(entity, col):
                        continue
                    name = f"_{col.name}_value" if col.type == "lookup" else col.name
                    length = f' MaxLength="{col.max_length}"' if col.max_length else ""
                    members.append(f'<Property Name="{name}" Type="Edm.{_EDM_TYPES[col.type]}"'
                                   f"{length}/>")
                for nav, (_column, target) in self.navigation[entity.name].items():
                    members.append(f'<NavigationProperty Name="{nav}" '
                                   f'Type="mscrm.{target or "principal"}"/>')
                for nav, (child, _lookup) in (entity.extra.get("collections") or {}).items():
                    members.append(f'<NavigationProperty Name="{nav}" '
                                   f'Type="Collection(mscrm.{child})"/>')
                types.append(f'<EntityType Name="{entity.name}">{"".join(members)}'
                             "</EntityType>")
            sets = "".join(f'<EntitySet Name="{s}" EntityType="Microsoft.Dynamics.CRM.'
                           f'{e.name}"/>' for s, e in self.entities.items())
            self._csdl = (
                '<?xml version="1.0" encoding="utf-8"?><edmx:Edmx Version="4.0" '
                'xmlns:edmx="http://docs.oasis-open.org/odata/ns/edmx"><edmx:DataServices>'
                '<Schema Namespace="Microsoft.Dynamics.CRM" Alias="mscrm" '
                'xmlns="http://docs.oasis-open.org/odata/ns/edm">' + "".join(types) +
                f'<EntityContainer Name="System">{sets}</EntityContainer></Schema>'
                "</edmx:DataServices></edmx:Edmx>").encode()
        return self._csdl

    def _who_am_i(self, client_id: str | None) -> Reply:
        user = self._caller(client_id)
        if user is None:
            raise DataverseError(403, "0x80072560", "The user is not a member of the "
                                                    "organization: no application user exists "
                                                    "for this client id (reset the sandbox "
                                                    "seed).")
        row = self.store.get("dataverse:systemuser", user) or {}
        return _json_reply(200, {
            "@odata.context": f"{self.root}$metadata#Microsoft.Dynamics.CRM.WhoAmIResponse",
            "BusinessUnitId": row.get("businessunitid"),
            "UserId": user,
            "OrganizationId": str(uuid.uuid5(uuid.NAMESPACE_URL, self.ctx.info.base_url)),
        })

    def _definition(self, logical_name: str) -> EntityDef:
        entity = self.by_name.get(logical_name)
        if entity is None or entity.extra.get("internal"):
            raise DataverseError(404, CODE_NOT_FOUND, f"Could not find an entity with "
                                                      f"LogicalName = '{logical_name}'.")
        return entity

    @staticmethod
    def _metadata_id(*parts: object) -> str:
        return str(uuid.uuid5(uuid.NAMESPACE_OID, "/".join(str(p) for p in parts)))

    def _label(self, text: str, language: int = 1033, *parts: object) -> dict[str, Any]:
        localized = {"Label": text, "LanguageCode": language, "IsManaged": True,
                     "MetadataId": self._metadata_id("label", *parts), "HasChanged": None}
        return {"LocalizedLabels": [localized], "UserLocalizedLabel": localized}

    def _picklist(self, entity: EntityDef, column: Column) -> dict[str, Any]:
        added = self.store.query(f"dataverse:{OPTION_VALUE_ENTITY}",
                                 '"entitylogicalname" = ? AND "attributelogicalname" = ?',
                                 [entity.name, column.name], order_by=[("value", False)])
        options = [(value, label, 1033) for value, label in (column.choices or {}).items()]
        options += [(r["value"], r["label"], r["languagecode"] or 1033) for r in added]
        return {
            "LogicalName": column.name,
            "MetadataId": self._metadata_id(entity.name, column.name),
            "OptionSet": {
                "MetadataId": self._metadata_id(entity.name, column.name, "optionset"),
                "Name": f"{entity.name}_{column.name}", "IsGlobal": False,
                "OptionSetType": "Picklist", "IsCustomOptionSet": False,
                "Options": [{
                    "Value": value, "Color": None, "IsManaged": value < 100000000,
                    "ExternalValue": "", "ParentValues": [], "Tag": None,
                    "MetadataId": None, "HasChanged": None,
                    "Label": self._label(label, language, entity.name, column.name, value),
                    "Description": {"LocalizedLabels": [], "UserLocalizedLabel": None},
                } for value, label, language in options],
            },
            "GlobalOptionSet": None,
        }

    @staticmethod
    def _picklist_columns(entity: EntityDef) -> list[Column]:
        return [c for c in entity.columns
                if c.type == "choice" and c.name not in ("statecode", "statuscode")]

    def _entity_definitions(self, path: str, params: Mapping[str, str]) -> Reply:
        match = re.fullmatch(
            r"EntityDefinitions\(LogicalName='(\w+)'\)"
            r"(?:/Attributes(?:\(LogicalName='(\w+)'\))?"
            r"(/Microsoft\.Dynamics\.CRM\.PicklistAttributeMetadata)?)?", path)
        if match is None:
            raise DataverseError(501, CODE_ODATA, f"The sandbox only serves EntityDefinitions("
                                                  f"LogicalName='x') and its picklist "
                                                  f"attributes, not '{path}'.")
        logical, attribute, picklist = match.groups()
        entity = self._definition(logical)
        base = f"{self.root}$metadata#EntityDefinitions('{logical}')"
        if "/Attributes" not in path:
            return _json_reply(200, {
                "@odata.context": f"{self.root}$metadata#EntityDefinitions/$entity",
                "MetadataId": self._metadata_id(entity.name), "LogicalName": entity.name,
                "EntitySetName": entity.entity_set, "PrimaryIdAttribute": entity.key,
                "PrimaryNameAttribute": entity.extra.get("primary_name"),
                "ChangeTrackingEnabled": entity.change_tracking,
                "ObjectTypeCode": None,
            })
        if not picklist:
            raise DataverseError(501, CODE_ODATA, "Cast the attributes to "
                                                  "Microsoft.Dynamics.CRM.PicklistAttributeMetadata"
                                                  "; other attribute metadata is not emulated.")
        columns = self._picklist_columns(entity)
        if attribute is not None:
            found = [c for c in columns if c.name == attribute]
            if not found:
                raise DataverseError(404, CODE_NOT_FOUND, f"Could not find a picklist attribute "
                                                          f"'{attribute}' on '{logical}'.")
            item = self._picklist(entity, found[0])
            payload = {"@odata.context": f"{base}/Attributes/Microsoft.Dynamics.CRM."
                                         f"PicklistAttributeMetadata/$entity", **item}
            return _json_reply(200, payload)
        flt = params.get("$filter", "")
        wanted = re.findall(r"LogicalName\s+eq\s+'(\w+)'", flt)
        if wanted:
            columns = [c for c in columns if c.name in wanted]
        return _json_reply(200, {
            "@odata.context": f"{base}/Attributes/Microsoft.Dynamics.CRM."
                              f"PicklistAttributeMetadata(LogicalName,OptionSet(),"
                              f"GlobalOptionSet())",
            "value": [self._picklist(entity, c) for c in columns],
        })

    def _insert_option_value(self, body: bytes) -> Reply:
        try:
            data = json.loads(body or b"{}")
        except ValueError:
            raise DataverseError(400, CODE_PAYLOAD, "InsertOptionValue needs a JSON body.") \
                from None
        entity = self._definition(str(data.get("EntityLogicalName") or ""))
        attribute = str(data.get("AttributeLogicalName") or "")
        column = next((c for c in self._picklist_columns(entity) if c.name == attribute), None)
        if column is None:
            raise DataverseError(400, CODE_INVALID_ARGUMENT,
                                 f"'{attribute}' is not a choice (picklist) attribute of "
                                 f"'{entity.name}'; set AttributeLogicalName to one of "
                                 f"{', '.join(c.name for c in self._picklist_columns(entity))}.")
        labels = (data.get("Label") or {}).get("LocalizedLabels") or []
        if not labels or not isinstance(labels[0], dict) or not labels[0].get("Label"):
            raise DataverseError(400, CODE_INVALID_ARGUMENT,
                                 "InsertOptionValue needs Label.LocalizedLabels[0].Label (and "
                                 "LanguageCode, e.g. 1033).")
        existing = self._valid_options(entity, column)
        value = data.get("Value")
        if value is None:
            value = max([100000000 - 1, *existing]) + 1
        elif isinstance(value, bool) or not isinstance(value, int):
            raise DataverseError(400, CODE_INVALID_ARGUMENT, "Value must be an integer.")
        elif value in existing:
            raise DataverseError(400, CODE_INVALID_ARGUMENT,
                                 f"The option value {value} already exists in the option set "
                                 f"{entity.name}_{attribute}; omit Value to get a new one.")
        self.store.insert(f"dataverse:{OPTION_VALUE_ENTITY}", {
            "entitylogicalname": entity.name, "attributelogicalname": attribute,
            "value": value, "label": str(labels[0]["Label"]),
            "languagecode": int(labels[0].get("LanguageCode") or 1033)})
        return _json_reply(200, {
            "@odata.context": f"{self.root}$metadata#Microsoft.Dynamics.CRM."
                              f"InsertOptionValueResponse",
            "NewOptionValue": value,
        })


def _state_label(entity: EntityDef, state: Any) -> str:
    column = entity.column("statecode")
    choices = (column.choices if column is not None else None) or {}
    return str(choices.get(state, state))


def _request_headers(request: Request) -> dict[str, str]:
    headers: dict[str, str] = {}
    for name, value in request.headers.items():
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return headers


def _client_id(request: Request) -> str | None:
    state: Any = request.scope.get("state") or {}
    value = state.get("client_id") if isinstance(state, dict) else None
    if value is None:
        value = getattr(request.state, "client_id", None)
    return str(value) if value else None


def build_dataverse_app(ctx: SandboxContextLike) -> Starlette:
    """The Dataverse Web API as an ASGI app, to be mounted at ``/crm/api/data/v9.2``."""
    service = DataverseService(ctx)

    async def endpoint(request: Request) -> Response:
        body = await request.body()
        reply = await run_in_threadpool(
            service.handle, request.method, request.path_params.get("path", ""),
            request.url.query, _request_headers(request), body, _client_id(request))
        return Response(reply.body, status_code=reply.status, headers=reply.headers)

    methods = ["GET", "POST", "PATCH", "PUT", "DELETE"]
    return Starlette(routes=[Route("/{path:path}", endpoint, methods=methods)])

