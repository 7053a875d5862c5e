"""The emulated Business Central API v2.0 and the navcrm/sync/v1.0 custom API.

Mounted at ``/bc``: ``/bc/v2.0/{tenant}/{environment}/api/v2.0/companies({id})/customers`` etc.
Requests are handled synchronously (in a worker thread) by :class:`BusinessCentralService`, so
a JSON ``$batch`` can run its operations through the same code inside one store transaction.

Behaviour follows the documented API: server-set ``id``; ``@odata.etag`` on every record;
``If-Match`` required on PATCH/DELETE (400 ``BadRequest_InvalidToken`` without, 409
``Request_EntityChanged`` when stale); validation errors with BC's codes and messages, each
ending in ``  CorrelationId:  <guid>.``; ``or`` across fields rejected in ``$filter``; paging
with ``Prefer: odata.maxpagesize`` (≤ 20000) and ``@odata.nextLink``; documents with lines,
deep insert and the ``Microsoft.NAV.shipAndInvoice`` / ``Microsoft.NAV.post`` bound actions.

Side effects BC has and the sandbox keeps: creating a customer creates its company contact and
the contact business relation (read-only ``contactsInformation``), as BC does when Marketing
Setup names a business relation code for customers (CRONUS does); changing the customer copies
name, address and communication to that contact; deleting the customer removes the relation
and keeps the contact. Contact writes keep the relations' contact number, name and type current.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .bc_schema import BC_SERVICE, COMPUTED_ENTITIES, bc_entity
from .computed_rows import ComputedTable
from .odata_filter import BC_DIALECT, FilterColumn, FilterDialect, FilterError, compile_filter
from .odata_filter import parse_orderby as parse_orderby_text
from .price_lists import CUSTOMER_PRICE_GROUP, PRICE_LIST_COLUMNS, price_list_code, price_lists
from .schema import Column, EntityDef
from .store import KeyExistsError

if TYPE_CHECKING:
    from .context import SandboxContext

__all__ = ["BCError", "BusinessCentralService", "Reply", "build_bc_app"]

log = logging.getLogger(__name__)

EMPTY_GUID = "00000000-0000-0000-0000-000000000000"
MAX_PAGE_SIZE = 20000
MAX_BATCH_OPERATIONS = 100
LOCAL_CURRENCY = "GBP"
CUSTOM_API = "navcrm/sync/v1.0"
STANDARD_API = "v2.0"
TAX_PERCENT = 20.0

TYPE_NAMES = {
    "companies": "company", "customers": "customer", "contacts": "contact", "items": "item",
    "currencies": "currency", "unitsOfMeasure": "unitOfMeasure",
    "salespeoplePurchasers": "salespersonPurchaser", "paymentTerms": "paymentTerm",
    "shipmentMethods": "shipmentMethod", "countriesRegions": "countryRegion",
    "salesOrders": "salesOrder", "salesOrderLines": "salesOrderLine",
    "salesInvoices": "salesInvoice", "salesInvoiceLines": "salesInvoiceLine",
    "resources": "resource", "customerPriceGroups": "customerPriceGroup",
    "salesPrices": "salesPrice", "customerFinancialDetails": "customerFinancialDetail",
    "customerStatistics": "customerStatistic", "customerPriceLists": "customerPriceList",
    "contactsInformation": "contactInformation",
}
# Fields checked against another table when not blank: field → (entity, code column).
TABLE_RELATIONS = {
    "country": ("countriesRegions", "code", "Country/Region Code", "Country/Region"),
    "salespersonCode": ("salespeoplePurchasers", "code", "Salesperson Code",
                        "Salesperson/Purchaser"),
    "currencyCode": ("currencies", "code", "Currency Code", "Currency"),
}
NUMBER_PREFIXES = {"customers": "C", "contacts": "CT", "items": "ITEM", "salesOrders": "S-ORD",
                   "salesInvoices": "S-INV", "resources": "R"}
# Customer fields BC copies to its company contact (on create and on every change).
CUSTOMER_TO_CONTACT = ("addressLine1", "addressLine2", "city", "state", "country", "postalCode",
                       "phoneNumber", "email", "website")
_SEGMENT = re.compile(r"^(?P<name>[A-Za-z][\w.]*)(?:\((?P<key>[^()]*)\))?$")
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
                   r"[0-9a-fA-F]{12}$")


@dataclass
class Reply:
    """One HTTP answer (also one item of a JSON $batch)."""

    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)

    def encoded(self) -> bytes:
        if self.body is None:
            return b""
        if isinstance(self.body, bytes):
            return self.body
        return json.dumps(self.body, ensure_ascii=False).encode("utf-8")


class BCError(Exception):
    """An error answered in BC's shape: ``{"error":{"code","message"}}``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.correlation_id = str(uuid.uuid4())

    def reply(self) -> Reply:
        return Reply(self.status, {"error": {
            "code": self.code,
            "message": f"{self.message}  CorrelationId:  {self.correlation_id}."}},
            {"content-type": "application/json; charset=utf-8"})


class _Rollback(Exception):
    def __init__(self, failed: Reply) -> None:
        super().__init__("batch item failed")
        self.failed = failed


def _not_found_uri(segment: str) -> BCError:
    return BCError(404, "BadRequest_NotFound",
                   f"The request URI is not valid. The segment '{segment}' is not a resource "
                   "of this API.")


def _read_only(method: str, entity_set: str) -> BCError:
    return BCError(405, "BadRequest_MethodNotAllowed",
                   f"'{method}' requests for '{entity_set}' are not allowed: the entity is "
                   "read-only.")


def etag_for(version: int | str) -> str:
    """BC-style weak etag: ``W/"JzQ0O…"`` (base64 of ``'<n>;<digits>;00;'``)."""
    digits = f"{version}1"
    inner = f"'{len(digits)};{digits};00;'"
    return 'W/"' + base64.b64encode(inner.encode()).decode() + '"'


def _type_name(entity_set: str) -> str:
    return f"Microsoft.NAV.{TYPE_NAMES.get(entity_set, entity_set)}"


def _today() -> str:
    return datetime.now(UTC).date().isoformat()


@dataclass(frozen=True)
class _Target:
    """A parsed request path."""

    api: str                      # "v2.0" or the custom API path
    api_root: str                 # public URL of the API root, ending with "/"
    entity_set: str | None = None  # None: the companies collection / company itself
    key: str | None = None
    parent_set: str | None = None
    parent_key: str | None = None
    action: str | None = None
    count: bool = False
    batch: bool = False
    company: str | None = None


class BusinessCentralService:
    """Synchronous request handling over the sandbox store."""

    def __init__(self, ctx: SandboxContext) -> None:
        self.ctx = ctx

    @property
    def store(self) -> Any:
        return self.ctx.store

    # ----------------------------------------------------------------- entry
    def handle(self, method: str, path: str, query: str, headers: Mapping[str, str],
               body: bytes) -> Reply:
        """Answer one request; ``path`` is relative to the ``/bc`` mount."""
        try:
            target = self._route(path)
            if target.batch:
                if method != "POST":
                    raise BCError(405, "BadRequest_MethodNotAllowed",
                                  "'$batch' only supports POST.")
                return self._batch(target, headers, body)
            return self._dispatch(method, target, query, headers, body)
        except BCError as error:
            return error.reply()
        except Exception:
            log.exception("unexpected error in the Business Central sandbox (%s %s)",
                          method, path)
            return BCError(500, "Unknown", "An unexpected error occurred in the sandbox; "
                                           "see its log.").reply()

    def _dispatch(self, method: str, target: _Target, query: str,
                  headers: Mapping[str, str], body: bytes) -> Reply:
        params = dict(parse_qsl(query, keep_blank_values=True))
        if target.entity_set is None:
            if method != "GET":
                raise BCError(405, "BadRequest_MethodNotAllowed",
                              f"'{method}' requests for 'companies' are not allowed.")
            return self._companies(target, params, headers)
        if target.entity_set in COMPUTED_ENTITIES:
            if method != "GET":
                raise _read_only(method, target.entity_set)
            return self._computed(target, params, headers)
        entity = self._entity(target.entity_set)
        if entity.extra.get("read_only"):
            if method != "GET":
                raise _read_only(method, entity.name)
            if target.key is not None:
                example = next(c.name for c in entity.columns
                               if c.type == "guid" and c.name != entity.key)
                raise BCError(400, "BadRequest",
                              f"The sandbox does not address one '{entity.name}' record by "
                              f"key; read the collection with $filter={example} eq <id> "
                              "instead.")
        if target.action is not None:
            if method != "POST":
                raise BCError(405, "BadRequest_MethodNotAllowed",
                              f"'{method}' is not allowed for the action '{target.action}'.")
            return self._action(entity, target)
        if method == "GET":
            if target.key is None:
                return self._list(entity, target, params, headers)
            return self._get_one(entity, target, params)
        payload = self._json_body(body) if method in ("POST", "PATCH") else {}
        if method == "POST":
            if target.key is not None:
                raise BCError(405, "BadRequest_MethodNotAllowed",
                              "'POST' requests for a single entity are not allowed; post to "
                              "the collection.")
            return self._create(entity, target, payload)
        if target.key is None:
            raise BCError(405, "BadRequest_MethodNotAllowed",
                          f"'{method}' requests for a collection are not allowed; address one "
                          "record by its id.")
        if method == "PATCH":
            return self._update(entity, target, payload, headers)
        if method == "DELETE":
            return self._delete(entity, target, headers)
        raise BCError(405, "BadRequest_MethodNotAllowed", f"'{method}' is not supported.")

    # ----------------------------------------------------------------- routing
    def _route(self, path: str) -> _Target:
        info = self.ctx.info
        parts = [unquote(p) for p in path.strip("/").split("/")]
        if len(parts) < 4 or parts[0] != "v2.0" or parts[3] != "api":
            raise BCError(404, "BadRequest_NotFound",
                          f"No HTTP resource was found that matches the request URI "
                          f"'/{'/'.join(parts)}'.")
        tenant, environment = parts[1], parts[2]
        if tenant.lower() != info.tenant.lower():
            raise BCError(404, "NotFound", f"Tenant '{tenant}' was not found; use "
                                           f"'{info.tenant}'.")
        if environment != info.environment:
            raise BCError(404, "NoEnvironment",
                          f"The environment '{environment}' does not exist for tenant "
                          f"'{info.tenant}'; use '{info.environment}'.")
        rest = parts[4:]
        base = f"{info.base_url}/bc/v2.0/{info.tenant}/{info.environment}/api/"
        if rest[:1] == [STANDARD_API]:
            api, rest = STANDARD_API, rest[1:]
        elif rest[:3] == CUSTOM_API.split("/"):
            api, rest = CUSTOM_API, rest[3:]
        else:
            raise BCError(404, "BadRequest_NotFound",
                          f"The API '{'/'.join(rest[:3])}' is not published; use "
                          f"'{STANDARD_API}' or '{CUSTOM_API}'.")
        root = f"{base}{api}/"
        if rest == ["$batch"]:
            return _Target(api, root, batch=True)
        if not rest or not rest[0]:
            raise _not_found_uri("")
        first = _SEGMENT.match(rest[0])
        if first is None or first.group("name") != "companies":
            raise _not_found_uri(rest[0])
        company = first.group("key")
        if company is not None:
            company = self._check_company(company)
        if len(rest) == 1:
            return _Target(api, root, company=company, key=company)
        if company is None:
            raise BCError(400, "BadRequest",
                          "A company must be specified: companies(<id>)/<entity>.")
        segments = rest[1:]
        parsed: list[tuple[str, str | None]] = []
        for text in segments:
            if text == "$count":
                parsed.append(("$count", None))
                continue
            match = _SEGMENT.match(text)
            if match is None:
                raise _not_found_uri(text)
            key = match.group("key")
            parsed.append((match.group("name"), _clean_key(key) if key is not None else None))
        return self._target_from_segments(api, root, company, parsed)

    def _target_from_segments(self, api: str, root: str, company: str,
                              parsed: list[tuple[str, str | None]]) -> _Target:
        count = bool(parsed) and parsed[-1][0] == "$count"
        if count:
            parsed = parsed[:-1]
        action = None
        if parsed and parsed[-1][0].startswith("Microsoft.NAV."):
            action = parsed[-1][0][len("Microsoft.NAV."):]
            parsed = parsed[:-1]
        if not parsed or len(parsed) > 2:
            raise _not_found_uri("/".join(n for n, _ in parsed))
        for name, _ in parsed:
            self._check_api(api, name)
        (name, key), parent = parsed[-1], None
        if len(parsed) == 2:
            parent = parsed[0]
            parent_entity = bc_entity(parent[0])
            child = bc_entity(name)
            nested = parent_entity is not None and (
                parent_entity.extra.get("lines") == name
                or (child is not None and parent[0] in child.extra.get("parents", {})))
            if not nested or parent[1] is None:
                raise _not_found_uri(name)
        if action is not None and (key is None or count):
            raise _not_found_uri(f"Microsoft.NAV.{action}")
        return _Target(api, root, entity_set=name, key=key,
                       parent_set=parent[0] if parent else None,
                       parent_key=parent[1] if parent else None, action=action, count=count,
                       company=company)

    def _check_api(self, api: str, name: str) -> None:
        entity = bc_entity(name)
        if entity is not None:
            wanted = "custom" if api == CUSTOM_API else "v2.0"
            if entity.extra.get("api", "v2.0") != wanted:
                raise _not_found_uri(name)
            return
        computed = COMPUTED_ENTITIES.get(name)
        if computed is None or computed != ("custom" if api == CUSTOM_API else "v2.0"):
            raise _not_found_uri(name)

    def _check_company(self, key: str) -> str:
        company = _clean_key(key).lower()
        if not _GUID.match(company) or self.store.get(f"{BC_SERVICE}:companies",
                                                       company) is None:
            raise BCError(404, "Internal_CompanyNotFound",
                          f"The company '{company}' does not exist or you do not have access "
                          "to it.")
        return company

    def _entity(self, name: str) -> EntityDef:
        entity = bc_entity(name)
        if entity is None:
            raise _not_found_uri(name)
        return entity

    @staticmethod
    def _json_body(body: bytes) -> dict[str, Any]:
        if not body.strip():
            return {}
        try:
            value = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise BCError(400, "BadRequest",
                          f"The request body is not valid JSON: {exc.args[0]}.") from None
        if not isinstance(value, dict):
            raise BCError(400, "BadRequest", "The request body must be a JSON object.")
        return value

    # ----------------------------------------------------------------- reads
    def _companies(self, target: _Target, params: Mapping[str, str],
                   headers: Mapping[str, str]) -> Reply:
        entity = self._entity("companies")
        if target.key is not None:
            return self._get_one(entity, target, params)
        return self._list(entity, target, params, headers)

    def _qualified(self, entity: EntityDef) -> str:
        return f"{BC_SERVICE}:{entity.name}"

    def _fetch(self, entity: EntityDef, key: str) -> dict[str, Any]:
        clean = key.lower()
        row = self.store.get(self._qualified(entity), clean) if _GUID.match(clean) else None
        if row is None:
            raise BCError(404, "Internal_RecordNotFound",
                          f"The {entity.extra.get('label', entity.name)} does not exist. "
                          f"Identification fields and values: Id='{key}'")
        return row

    def _scope_where(self, target: _Target, entity: EntityDef) -> tuple[str, list[Any]]:
        if target.parent_set and target.parent_key:
            parent = self._entity(target.parent_set)
            self._fetch(parent, target.parent_key)
            column = entity.extra.get("parents", {}).get(target.parent_set, "documentId")
            return f'"{column}" = ?', [target.parent_key.lower()]
        return "", []

    def _get_one(self, entity: EntityDef, target: _Target, params: Mapping[str, str]) -> Reply:
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
        return Reply(200, body, {"content-type": "application/json; charset=utf-8",
                                 "etag": body.get("@odata.etag", "")})

    def _dialect(self, params: Mapping[str, str]) -> FilterDialect:
        if params.get("$schemaversion") == "2.1":
            return FilterDialect(reject_or_across_fields=True, allow_in=True)
        return BC_DIALECT

    def _resolver(self, entity: EntityDef) -> Any:
        hidden = set(entity.extra.get("hidden", ()))

        def resolve(name: str) -> FilterColumn:
            column = entity.column(name)
            if column is None or name in hidden:
                raise FilterError(f"Could not find a property named '{name}' on type "
                                  f"'{_type_name(entity.name)}'.")
            return FilterColumn(f'"{name}"', column.type)
        return resolve

    def _where(self, entity: EntityDef, params: Mapping[str, str],
               target: _Target) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        args: list[Any] = []
        scope_sql, scope_args = self._scope_where(target, entity)
        if scope_sql:
            clauses.append(scope_sql)
            args.extend(scope_args)
        text = params.get("$filter")
        if text:
            try:
                sql, values = compile_filter(text, self._resolver(entity),
                                             self._dialect(params))
            except FilterError as exc:
                raise BCError(400, "BadRequest", str(exc).rstrip(".") + ".") from None
            clauses.append(sql)
            args.extend(values)
        return " AND ".join(f"({c})" for c in clauses), args

    def _order(self, entity: EntityDef, text: str | None) -> list[tuple[str, bool]]:
        if not text:
            return []
        try:
            order = parse_orderby_text(text)
        except FilterError as exc:
            raise BCError(400, "BadRequest", str(exc)) from None
        hidden = set(entity.extra.get("hidden", ()))
        for name, _ in order:
            if entity.column(name) is None or name in hidden:
                raise BCError(400, "BadRequest_NotFound",
                              f"Could not find a property named '{name}' on type "
                              f"'{_type_name(entity.name)}'.")
        return order

    def _page_size(self, headers: Mapping[str, str]) -> int:
        prefer = headers.get("prefer", "")
        match = re.search(r"odata\.maxpagesize\s*=\s*\"?(\d+)", prefer)
        if match is None:
            return MAX_PAGE_SIZE
        size = int(match.group(1))
        if size > MAX_PAGE_SIZE:
            raise BCError(413, "RequestEntityTooLarge",
                          f"The requested page size {size} exceeds the maximum page size of "
                          f"{MAX_PAGE_SIZE}.")
        return max(1, size)

    def _list(self, entity: EntityDef, target: _Target, params: Mapping[str, str],
              headers: Mapping[str, str]) -> Reply:
        where, args = self._where(entity, params, target)
        qualified = self._qualified(entity)
        if target.count:
            return Reply(200, str(self.store.count(qualified, where, args)).encode(),
                         {"content-type": "text/plain"})
        select = self._select(entity, params.get("$select"))
        expand = self._expand(entity, params.get("$expand"))
        order = self._order(entity, params.get("$orderby")) or _default_order(entity)
        page_size = self._page_size(headers)
        top = _int_option(params, "$top")
        skip = _int_option(params, "$skip") or 0
        after: tuple[Any, ...] | None = None
        token = params.get("$skiptoken")
        if token:
            state = _decode_token(token)
            after = tuple(state["after"])
            top = state.get("left")
            skip = 0
        limit = page_size if top is None else min(page_size, top)
        rows = self.store.query(qualified, where, args, order_by=order, after=after,
                                limit=limit + 1, offset=skip)
        more = len(rows) > limit
        rows = rows[:limit]
        left = None if top is None else top - len(rows)
        if left is not None and left <= 0:
            more = False
        context = (f"{target.api_root}$metadata#companies({target.company})/{entity.name}"
                   if target.company else f"{target.api_root}$metadata#companies")
        body: dict[str, Any] = {"@odata.context": context}
        if params.get("$count", "").lower() == "true":
            body["@odata.count"] = self.store.count(qualified, where, args)
        body["value"] = [self._wire(entity, row, select, expand) for row in rows]
        if more and rows:
            last = rows[-1]
            cursor = [last[name] for name, _ in order if name != entity.key]
            cursor.append(last[entity.key])
            next_params = {k: v for k, v in params.items()
                           if k not in ("$skip", "$skiptoken", "$top")}
            next_params["$skiptoken"] = _encode_token({"after": cursor, "left": left})
            path = self._path_of(target, entity)
            body["@odata.nextLink"] = (f"{target.api_root}{path}?"
                                      f"{urlencode(next_params, quote_via=quote, safe='$')}")
        return Reply(200, body, {"content-type": "application/json; charset=utf-8"})

    @staticmethod
    def _path_of(target: _Target, entity: EntityDef) -> str:
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
        hidden = set(entity.extra.get("hidden", ()))
        for name in names:
            if entity.column(name) is None or name in hidden:
                raise BCError(400, "BadRequest_NotFound",
                              f"Could not find a property named '{name}' on type "
                              f"'{_type_name(entity.name)}'.")
        return names

    def _expand(self, entity: EntityDef, text: str | None) -> dict[str, set[str] | None]:
        """``lines`` or ``lines($select=a,b)`` → {lines: selected columns or None}."""
        if not text:
            return {}
        expanded: dict[str, set[str] | None] = {}
        position = 0
        for match in re.finditer(r"\s*([A-Za-z]\w*)\s*(?:\(([^()]*)\))?\s*(?:,|$)", text):
            name, options = match.group(1), match.group(2)
            if match.start() != position:
                break
            position = match.end()
            if name != entity.extra.get("lines"):
                raise BCError(400, "BadRequest_NotFound",
                              f"Could not find a property named '{name}' on type "
                              f"'{_type_name(entity.name)}'.")
            nested = dict(parse_qsl(options.replace(";", "&"))) if options else {}
            expanded[name] = self._select(self._entity(name), nested.get("$select"))
        if position != len(text):
            raise BCError(400, "BadRequest",
                          f"The query option $expand='{text}' is not valid; use e.g. "
                          f"$expand={entity.extra.get('lines') or 'lines'}($select=a,b).")
        return expanded

    def _wire(self, entity: EntityDef, row: Mapping[str, Any], select: set[str] | None = None,
              expand: Mapping[str, set[str] | None] | None = None) -> dict[str, Any]:
        hidden = set(entity.extra.get("hidden", ()))
        out: dict[str, Any] = {"@odata.etag": etag_for(row["_version"])}
        for column in entity.columns:
            name = column.name
            if name in hidden or (select is not None and name not in select and name != "id"):
                continue
            out[name] = _wire_value(column, row.get(name))
        for name, line_select in (expand or {}).items():
            lines = self._entity(name)
            rows = self.store.query(self._qualified(lines), '"documentId" = ?', [row["id"]],
                                    order_by=[("sequence", False)])
            out[name] = [self._wire(lines, line, line_select) for line in rows]
        return out

    # ----------------------------------------------------------------- computed
    def _computed(self, target: _Target, params: Mapping[str, str],
                  headers: Mapping[str, str]) -> Reply:
        name = target.entity_set or ""
        if name == "customerPriceLists":
            return self._price_lists(target, params, headers)
        customers = self._entity("customers")
        number_field = "number" if name == "customerFinancialDetails" else "customerNumber"

        def resolve(prop: str) -> FilterColumn:
            if prop == "id":
                return FilterColumn('"id"', "guid")
            if prop == number_field:
                return FilterColumn('"number"', "string")
            raise FilterError(f"Filtering on '{prop}' is not supported for '{name}'; filter "
                              f"on id or {number_field}.")

        where: str = ""
        args: list[Any] = []
        if params.get("$filter"):
            try:
                where, args = compile_filter(params["$filter"], resolve, self._dialect(params))
            except FilterError as exc:
                raise BCError(400, "BadRequest", str(exc)) from None
        if target.key is not None:
            key_sql, key_args = '"id" = ?', [target.key.lower()]
            where = f"({where}) AND {key_sql}" if where else key_sql
            args = [*args, *key_args]
        rows = self.store.query(self._qualified(customers), where, args,
                                order_by=[("number", False)])
        if target.key is not None and not rows:
            raise BCError(404, "Internal_RecordNotFound",
                          "The Customer does not exist. Identification fields and values: "
                          f"Id='{target.key}'")
        documents = _Documents.load(self.store, with_orders=name == "customerStatistics")
        records = [self._statistics(name, row, documents) for row in rows]
        top = _int_option(params, "$top")
        skip = _int_option(params, "$skip") or 0
        records = records[skip:] if top is None else records[skip:skip + top]
        select = {n.strip() for n in params.get("$select", "").split(",") if n.strip()}
        if select:
            unknown = select - set(records[0] if records else select)
            if unknown:
                raise BCError(400, "BadRequest_NotFound",
                              f"Could not find a property named '{sorted(unknown)[0]}' on type "
                              f"'{_type_name(name)}'.")
            records = [{k: v for k, v in r.items()
                        if k in select or k in ("id", "@odata.etag")} for r in records]
        context = f"{target.api_root}$metadata#companies({target.company})/{name}"
        if target.key is not None:
            return Reply(200, {"@odata.context": context + "/$entity", **records[0]},
                         {"content-type": "application/json; charset=utf-8"})
        return Reply(200, {"@odata.context": context, "value": records},
                     {"content-type": "application/json; charset=utf-8"})

    def _price_lists(self, target: _Target, params: Mapping[str, str],
                     headers: Mapping[str, str]) -> Reply:
        """``customerPriceLists``: computed per read, queried like a stored entity."""
        name = "customerPriceLists"
        groups = self.store.query(f"{BC_SERVICE}:customerPriceGroups", order_by=[("code", False)])
        prices = self.store.query(f"{BC_SERVICE}:salesPrices", '"salesType" = ?',
                                  [CUSTOMER_PRICE_GROUP])
        table = ComputedTable(PRICE_LIST_COLUMNS, price_lists(groups, prices, LOCAL_CURRENCY))
        try:
            return self._computed_reply(target, params, headers, name, table,
                                        key_column="code", label="Customer Price List")
        finally:
            table.close()

    def _computed_reply(self, target: _Target, params: Mapping[str, str],
                        headers: Mapping[str, str], name: str, table: ComputedTable, *,
                        key_column: str, label: str) -> Reply:
        """Serve computed rows with the reads stored entities have ($filter, $select,
        $orderby, $top/$skip, $count, paging, by id); ``key_column`` is the unique sort key."""
        columns = table.columns

        def unknown(prop: str) -> BCError:
            return BCError(400, "BadRequest_NotFound", f"Could not find a property named "
                                                       f"'{prop}' on type '{_type_name(name)}'.")

        def resolve(prop: str) -> FilterColumn:
            if prop not in columns:
                raise FilterError(unknown(prop).message)
            return FilterColumn(f'"{prop}"', columns[prop])

        clauses: list[str] = []
        args: list[Any] = []
        if params.get("$filter"):
            try:
                sql, values = compile_filter(params["$filter"], resolve, self._dialect(params))
            except FilterError as exc:
                raise BCError(400, "BadRequest", str(exc).rstrip(".") + ".") from None
            clauses.append(f"({sql})")
            args.extend(values)
        if target.key is not None:
            clauses.append('"id" = ?')
            args.append(target.key.lower())
        where = " AND ".join(clauses)
        if target.count:
            return Reply(200, str(table.count(where, args)).encode(),
                         {"content-type": "text/plain"})
        order = [(key_column, False)]
        if params.get("$orderby"):
            try:
                order = parse_orderby_text(params["$orderby"])
            except FilterError as exc:
                raise BCError(400, "BadRequest", str(exc)) from None
            for prop, _ in order:
                if prop not in columns:
                    raise unknown(prop)
            order = [*order, (key_column, False)]
        select = {n.strip() for n in params.get("$select", "").split(",") if n.strip()}
        for prop in select:
            if prop not in columns:
                raise unknown(prop)
        page_size = self._page_size(headers)
        top = _int_option(params, "$top")
        offset = _int_option(params, "$skip") or 0
        if params.get("$skiptoken"):
            state = _decode_token(params["$skiptoken"])
            offset, top = int(state.get("offset", 0)), state.get("left")
        limit = page_size if top is None else min(page_size, top)
        rows = table.select(where, args, order, limit + 1, offset)
        more = len(rows) > limit
        rows = rows[:limit]
        left = None if top is None else top - len(rows)
        if left is not None and left <= 0:
            more = False
        records = [{"@odata.etag": etag_for(row["_version"]),
                    **{k: row[k] for k in columns if not select or k in select or k == "id"}}
                   for row in rows]
        context = f"{target.api_root}$metadata#companies({target.company})/{name}"
        json_type = {"content-type": "application/json; charset=utf-8"}
        if target.key is not None:
            if not records:
                raise BCError(404, "Internal_RecordNotFound",
                              f"The {label} does not exist. Identification fields and "
                              f"values: Id='{target.key}'")
            return Reply(200, {"@odata.context": context + "/$entity", **records[0]},
                         {**json_type, "etag": records[0]["@odata.etag"]})
        body: dict[str, Any] = {"@odata.context": context}
        if params.get("$count", "").lower() == "true":
            body["@odata.count"] = table.count(where, args)
        body["value"] = records
        if more:
            next_params = {k: v for k, v in params.items()
                           if k not in ("$skip", "$skiptoken", "$top")}
            next_params["$skiptoken"] = _encode_token({"after": [], "offset": offset + limit,
                                                       "left": left})
            body["@odata.nextLink"] = (f"{target.api_root}companies({target.company})/{name}?"
                                      f"{urlencode(next_params, quote_via=quote, safe='$')}")
        return Reply(200, body, json_type)

    @staticmethod
    def _statistics(name: str, customer: Mapping[str, Any],
                    documents: _Documents) -> dict[str, Any]:
        invoices = documents.invoices.get(customer["id"], [])
        today = _today()
        posted = [i for i in invoices if i["status"] not in ("Draft", "In Review")]
        balance = round(sum((i["remainingAmount"] or 0.0) for i in posted
                            if i["status"] == "Open"), 2)
        overdue = round(sum((i["remainingAmount"] or 0.0) for i in posted
                            if i["status"] == "Open" and (i["dueDate"] or today) < today), 2)
        total_sales = round(sum((i["totalAmountExcludingTax"] or 0.0) for i in posted), 2)
        newest = max([customer["_version"], *(i["_version"] for i in invoices)])
        etag = etag_for(f"{newest}{len(invoices)}")
        if name == "customerFinancialDetails":
            return {"@odata.etag": etag, "id": customer["id"], "number": customer["number"],
                    "balance": balance, "totalSalesExcludingTax": total_sales,
                    "overdueAmount": overdue}
        orders = documents.orders.get(customer["id"], [])
        outstanding_orders = round(sum((o["totalAmountIncludingTax"] or 0.0)
                                       for o in orders), 2)
        shipped = 0.0
        for order in orders:
            for line in documents.order_lines.get(order["id"], []):
                pending = (line["shippedQuantity"] or 0.0) - (line["invoicedQuantity"] or 0.0)
                shipped += pending * (line["unitPrice"] or 0.0)
        drafts = round(sum((i["totalAmountIncludingTax"] or 0.0) for i in invoices
                           if i["status"] in ("Draft", "In Review")), 2)
        return {"@odata.etag": etag, "id": customer["id"], "customerNumber": customer["number"],
                "customerName": customer["displayName"] or "", "balance": balance,
                "outstandingOrders": outstanding_orders, "shippedNotInvoiced": round(shipped, 2),
                "outstandingInvoices": drafts, "overdueAmount": overdue,
                "totalSales": total_sales}

    # ----------------------------------------------------------------- writes
    def _validate(self, entity: EntityDef, payload: Mapping[str, Any],
                  creating: bool) -> dict[str, Any]:
        """Payload → store changes, raising BC's errors for bad properties and values."""
        changes: dict[str, Any] = {}
        hidden = set(entity.extra.get("hidden", ()))
        for name, value in payload.items():
            if "@" in name:
                continue
            column = entity.column(name)
            if column is None or name in hidden:
                if name == entity.extra.get("lines") and creating:
                    continue
                raise BCError(400, "BadRequest_NotFound",
                              f"The property '{name}' does not exist on type "
                              f"'{_type_name(entity.name)}'. Make sure to only use property "
                              "names that are defined by the type.")
            if column.read_only:
                continue
            changes[name] = _coerce(entity, column, value)
        for name, (target, code_column, caption, table) in TABLE_RELATIONS.items():
            value = changes.get(name)
            if not value or entity.column(name) is None or entity.name == target:
                continue
            if name == "currencyCode" and value == LOCAL_CURRENCY and entity.name != "salesPrices":
                # The API shows LCY as its code on customers and documents; a sales price
                # keeps LCY blank and its Currency Code relation refuses the LCY code.
                continue
            found = self.store.query(f"{BC_SERVICE}:{target}", f'"{code_column}" = ?',
                                     [value], limit=1)
            if not found:
                raise BCError(400, "Internal_InvalidTableRelation",
                              f"The field {caption} of table "
                              f"{entity.extra.get('label')} contains a value ({value}) that "
                              f"cannot be found in the related table ({table}).")
            if name == "currencyCode" and entity.column("currencyId") is not None:
                changes["currencyId"] = found[0]["id"]
        if changes.get("currencyCode") == LOCAL_CURRENCY and entity.column("currencyId"):
            changes["currencyId"] = EMPTY_GUID
        return changes

    def _check_unique(self, entity: EntityDef, changes: Mapping[str, Any],
                      own_id: str | None = None) -> None:
        natural = entity.extra.get("natural_key")
        if not natural or not changes.get(natural):
            return
        rows = self.store.query(self._qualified(entity), f'"{natural}" = ?',
                                [changes[natural]], limit=2)
        if any(r["id"] != own_id for r in rows):
            raise BCError(400, "Internal_EntityWithSameKeyExists",
                          f"The record in table {entity.extra.get('label')} already exists. "
                          "Identification fields and values: "
                          f"{entity.extra.get('natural_key_caption')}='{changes[natural]}'")

    def _next_number(self, entity: EntityDef) -> str:
        prefix = NUMBER_PREFIXES.get(entity.name, "N")
        count = self.store.count(self._qualified(entity))
        while True:
            count += 1
            candidate = f"{prefix}{count:05d}"
            if not self.store.query(self._qualified(entity), '"number" = ?', [candidate],
                                    limit=1):
                return candidate

    @contextmanager
    def _atomic(self) -> Iterator[None]:
        try:
            with self.store.transaction():
                yield
        except KeyExistsError as exc:
            raise BCError(400, "Internal_EntityWithSameKeyExists", str(exc)) from None

    def _create(self, entity: EntityDef, target: _Target, payload: dict[str, Any]) -> Reply:
        if entity.name == "companies":
            raise BCError(405, "BadRequest_MethodNotAllowed",
                          "'POST' requests for 'companies' are not allowed.")
        with self._atomic():
            if target.parent_key:
                payload = {**payload, "documentId": target.parent_key.lower()}
                row = self._create_line(entity, payload)
            elif entity.parent:
                if not payload.get("documentId"):
                    raise BCError(400, "BadRequest_RequiredParamNotProvided",
                                  "documentId must be specified, or post the line to "
                                  f"{entity.parent}(<id>)/{entity.name}.")
                row = self._create_line(entity, payload)
            elif entity.extra.get("lines"):
                row = self._create_document(entity, payload)
            else:
                changes = self._validate(entity, payload, creating=True)
                if entity.extra.get("natural_key") == "number" and not changes.get("number"):
                    changes["number"] = self._next_number(entity)
                self._check_unique(entity, changes)
                self._derive(entity, changes)
                self._derive_sales_price(entity, changes, None)
                row = self.store.insert(self._qualified(entity), changes)
                if entity.name == "customers":
                    self._create_company_contact(row)
        body = {"@odata.context": f"{target.api_root}$metadata#companies({target.company})/"
                                  f"{entity.name}/$entity"}
        lines_name = entity.extra.get("lines")
        expand: dict[str, set[str] | None] = (
            {lines_name: None} if lines_name and lines_name in payload else {})
        body.update(self._wire(entity, row, None, expand))
        location = f"{target.api_root}{self._path_of(target, entity)}({row['id']})"
        return Reply(201, body, {"content-type": "application/json; charset=utf-8",
                                 "location": location, "etag": body["@odata.etag"]})

    def _create_company_contact(self, customer: Mapping[str, Any]) -> None:
        """The company contact and business relation BC creates with a customer.

        BC does this when Marketing Setup has "Bus. Rel. Code for Customers" (CRONUS has). The
        contact is numbered ``CT<customer number>`` like the seed's company contacts, or gets
        the next free number of the contact series when that is taken or too long.
        """
        contacts = self._entity("contacts")
        number = f"CT{customer['number']}"
        number_column = contacts.column("number")
        assert number_column is not None and number_column.max_length is not None
        if len(number) > number_column.max_length or self.store.query(self._qualified(contacts), '"number" = ?',
                                                   [number], limit=1):
            number = self._next_number(contacts)
        name = customer["displayName"] or ""
        values: dict[str, Any] = {
            "number": number, "type": "Company", "displayName": name,
            "searchName": name.upper()[:100], "businessRelation": "Customer",
            **{field_name: customer[field_name] for field_name in CUSTOMER_TO_CONTACT},
        }
        contact = self.store.insert(self._qualified(contacts), values)
        self.store.insert(f"{BC_SERVICE}:contactsInformation", {
            "contactId": contact["id"], "contactNumber": number, "contactName": name,
            "contactType": "Company", "relatedId": customer["id"], "relatedType": "Customer"})

    def _refresh_relations(self, contact: Mapping[str, Any]) -> None:
        """Keep the contact's number, name and type on its business relations current."""
        copies = {"contactNumber": contact["number"], "contactName": contact["displayName"],
                  "contactType": contact["type"]}
        for relation in self.store.query(f"{BC_SERVICE}:contactsInformation",
                                         '"contactId" = ?', [contact["id"]]):
            if any(relation[name] != value for name, value in copies.items()):
                self.store.update(f"{BC_SERVICE}:contactsInformation", relation["id"], copies)

    def _update_company_contacts(self, customer: Mapping[str, Any],
                                 changes: Mapping[str, Any]) -> None:
        """BC copies a customer's name, address and communication to its related contact."""
        copied = {name: customer[name] for name in ("displayName", *CUSTOMER_TO_CONTACT)
                  if name in changes}
        if not copied:
            return
        if "displayName" in copied:
            copied["searchName"] = str(copied["displayName"] or "").upper()[:100]
        for relation in self.store.query(f"{BC_SERVICE}:contactsInformation",
                                         '"relatedId" = ? AND "relatedType" = ?',
                                         [customer["id"], "Customer"]):
            contact = self.store.get(f"{BC_SERVICE}:contacts", relation["contactId"])
            if contact is not None and any(contact[k] != v for k, v in copied.items()):
                self._refresh_relations(
                    self.store.update(f"{BC_SERVICE}:contacts", contact["id"], copied))

    def _drop_relations(self, entity: EntityDef, key: str) -> None:
        """A deleted customer or contact takes its business relations with it."""
        column = {"customers": "relatedId", "contacts": "contactId"}.get(entity.name)
        if column is None:
            return
        for relation in self.store.query(f"{BC_SERVICE}:contactsInformation",
                                         f'"{column}" = ?', [key]):
            self.store.delete(f"{BC_SERVICE}:contactsInformation", relation["id"])

    def _derive(self, entity: EntityDef, changes: dict[str, Any]) -> None:
        """Fields BC fills from others (contact company name, search name)."""
        if entity.name == "contacts":
            if changes.get("companyNumber"):
                company = self.store.query(f"{BC_SERVICE}:contacts", '"number" = ?',
                                           [changes["companyNumber"]], limit=1)
                if not company:
                    raise BCError(400, "Internal_InvalidTableRelation",
                                  "The field Company No. of table Contact contains a value "
                                  f"({changes['companyNumber']}) that cannot be found in the "
                                  "related table (Contact).")
                changes["companyName"] = company[0]["displayName"]
            if "displayName" in changes:
                changes["searchName"] = str(changes["displayName"] or "").upper()[:100]

    def _derive_sales_price(self, entity: EntityDef, changes: dict[str, Any],
                            row: Mapping[str, Any] | None) -> None:
        """Check a sales price's table relations and keep its ``priceListCode`` current."""
        if entity.name != "salesPrices":
            return
        merged = {**(row or {}), **changes}
        sales_type = merged.get("salesType") or "Customer"
        relations = [("itemNumber", "items", "number", "Item No.", "Item"),
                     ("unitOfMeasureCode", "unitsOfMeasure", "code", "Unit of Measure Code",
                      "Unit of Measure")]
        if sales_type == CUSTOMER_PRICE_GROUP:
            relations.append(("salesCode", "customerPriceGroups", "code", "Sales Code",
                              "Customer Price Group"))
        elif sales_type == "Customer":
            relations.append(("salesCode", "customers", "number", "Sales Code", "Customer"))
        for name, target, column, caption, table in relations:
            value = merged.get(name)
            if name not in changes and row is not None and sales_type == row.get("salesType"):
                continue
            if value and not self.store.query(f"{BC_SERVICE}:{target}", f'"{column}" = ?',
                                              [value], limit=1):
                raise BCError(400, "Internal_InvalidTableRelation",
                              f"The field {caption} of table Sales Price contains a value "
                              f"({value}) that cannot be found in the related table "
                              f"({table}).")
        changes["priceListCode"] = price_list_code(sales_type, merged.get("salesCode"),
                                                   merged.get("currencyCode"))

    def _customer_for(self, changes: Mapping[str, Any]) -> dict[str, Any] | None:
        if changes.get("customerId") and changes["customerId"] != EMPTY_GUID:
            row = self.store.get(f"{BC_SERVICE}:customers", changes["customerId"])
            if row is None:
                raise BCError(404, "Internal_RecordNotFound",
                              "The Customer does not exist. Identification fields and values: "
                              f"Id='{changes['customerId']}'")
            return dict(row)
        if changes.get("customerNumber"):
            rows = self.store.query(f"{BC_SERVICE}:customers", '"number" = ?',
                                    [changes["customerNumber"]], limit=1)
            if not rows:
                raise BCError(404, "Internal_RecordNotFound",
                              "The Customer does not exist. Identification fields and values: "
                              f"No.='{changes['customerNumber']}'")
            return dict(rows[0])
        return None

    def _apply_customer(self, entity: EntityDef, changes: dict[str, Any],
                        customer: Mapping[str, Any]) -> None:
        if customer["blocked"] == "All":
            raise BCError(400, "Application_DialogException",
                          f"You cannot create this type of document when Customer "
                          f"{customer['number']} is blocked with type All")
        changes.update({
            "customerId": customer["id"], "customerNumber": customer["number"],
            "customerName": customer["displayName"], "billToCustomerId": customer["id"],
            "billToCustomerNumber": customer["number"],
            "billToName": customer["displayName"],
            "sellToAddressLine1": customer["addressLine1"],
            "sellToAddressLine2": customer["addressLine2"], "sellToCity": customer["city"],
            "sellToCountry": customer["country"], "sellToState": customer["state"],
            "sellToPostCode": customer["postalCode"],
            "paymentTermsId": customer["paymentTermsId"],
            "shipmentMethodId": customer["shipmentMethodId"],
            "salesperson": customer["salespersonCode"],
            "phoneNumber": customer["phoneNumber"], "email": customer["email"],
        })
        changes.setdefault("currencyCode", customer["currencyCode"] or LOCAL_CURRENCY)
        changes.setdefault("currencyId", customer["currencyId"] or EMPTY_GUID)

    def _create_document(self, entity: EntityDef, payload: dict[str, Any]) -> dict[str, Any]:
        lines_name = entity.extra["lines"]
        lines = payload.get(lines_name) or []
        if not isinstance(lines, list):
            raise BCError(400, "BadRequest", f"'{lines_name}' must be an array of lines.")
        changes = self._validate(entity, payload, creating=True)
        customer = self._customer_for(changes)
        if customer is None:
            raise BCError(400, "BadRequest_RequiredParamNotProvided",
                          "customerId or customerNumber must be specified.")
        self._apply_customer(entity, changes, customer)
        if not changes.get("number"):
            changes["number"] = self._next_number(entity)
        self._check_unique(entity, changes)
        date_field = "orderDate" if entity.name == "salesOrders" else "invoiceDate"
        changes.setdefault(date_field, _today())
        changes.setdefault("postingDate", changes[date_field])
        if entity.name == "salesInvoices":
            changes.setdefault("dueDate", self._due_date(customer, changes[date_field]))
        changes["status"] = "Draft"
        row = self.store.insert(self._qualified(entity), changes)
        for line in lines:
            if not isinstance(line, dict):
                raise BCError(400, "BadRequest", f"Each item of '{lines_name}' must be an "
                                                 "object.")
            self._create_line(self._entity(lines_name), {**line, "documentId": row["id"]},
                              recompute=False)
        return self._recompute_totals(entity, row["id"])

    def _due_date(self, customer: Mapping[str, Any], start: str) -> str:
        days = 30
        if customer.get("paymentTermsId"):
            terms = self.store.get(f"{BC_SERVICE}:paymentTerms", customer["paymentTermsId"])
            match = re.fullmatch(r"(\d+)D", (terms or {}).get("dueDateCalculation") or "")
            if match:
                days = int(match.group(1))
        return (date.fromisoformat(start) + timedelta(days=days)).isoformat()

    def _create_line(self, entity: EntityDef, payload: dict[str, Any], *,
                     recompute: bool = True) -> dict[str, Any]:
        document_id = str(payload.pop("documentId")).lower()
        parent = self._entity(entity.parent or "")
        header = self._fetch(parent, document_id)
        self._ensure_editable(parent, header)
        changes = self._validate(entity, payload, creating=True)
        changes["documentId"] = document_id
        self._resolve_line(changes, header)
        if not changes.get("sequence"):
            existing = self.store.query(self._qualified(entity), '"documentId" = ?',
                                        [document_id], order_by=[("sequence", True)], limit=1)
            changes["sequence"] = (existing[0]["sequence"] + 10000) if existing else 10000
        _line_amounts(changes)
        row = self.store.insert(self._qualified(entity), changes)
        if recompute:
            self._recompute_totals(parent, document_id)
        return dict(row)

    def _resolve_line(self, changes: dict[str, Any], header: Mapping[str, Any]) -> None:
        line_type = changes.setdefault("lineType", "Item")
        if line_type == "Item":
            item = None
            if changes.get("itemId") and changes["itemId"] != EMPTY_GUID:
                item = self.store.get(f"{BC_SERVICE}:items", changes["itemId"])
            elif changes.get("lineObjectNumber"):
                found = self.store.query(f"{BC_SERVICE}:items", '"number" = ?',
                                         [changes["lineObjectNumber"]], limit=1)
                item = found[0] if found else None
            if item is None:
                wanted = changes.get("itemId") or changes.get("lineObjectNumber") or ""
                raise BCError(404, "Internal_RecordNotFound",
                              "The Item does not exist. Identification fields and values: "
                              f"No.='{wanted}'")
            if item["blocked"]:
                raise BCError(400, "Application_DialogException",
                              f"Blocked must be equal to 'No'  in Item: No.={item['number']}. "
                              "Current value is 'Yes'.")
            changes.update({"itemId": item["id"], "lineObjectNumber": item["number"]})
            changes.setdefault("description", item["displayName"])
            changes.setdefault("unitOfMeasureCode", item["baseUnitOfMeasureCode"])
            changes.setdefault("unitOfMeasureId", item["baseUnitOfMeasureId"])
            changes.setdefault("unitPrice", item["unitPrice"])
        elif line_type == "Resource":
            found = self.store.query(f"{BC_SERVICE}:resources", '"number" = ?',
                                     [changes.get("lineObjectNumber") or ""], limit=1)
            if not found:
                raise BCError(404, "Internal_RecordNotFound",
                              "The Resource does not exist. Identification fields and values: "
                              f"No.='{changes.get('lineObjectNumber') or ''}'")
            changes.setdefault("description", found[0]["name"])
            changes.setdefault("unitOfMeasureCode", found[0]["baseUnitOfMeasureCode"])
            changes.setdefault("unitPrice", found[0]["unitPrice"])
        customer = self.store.get(f"{BC_SERVICE}:customers", header["customerId"])
        taxable = bool(customer and customer["taxLiable"])
        changes.setdefault("taxPercent", TAX_PERCENT if taxable else 0.0)
        if header.get("postingDate"):
            changes.setdefault("shipmentDate", header["postingDate"])

    def _recompute_totals(self, entity: EntityDef, document_id: str) -> dict[str, Any]:
        lines = self.store.query(f"{BC_SERVICE}:{entity.extra['lines']}", '"documentId" = ?',
                                 [document_id])
        net = round(sum(line["amountExcludingTax"] or 0.0 for line in lines), 2)
        tax = round(sum(line["totalTaxAmount"] or 0.0 for line in lines), 2)
        return dict(self.store.update(self._qualified(entity), document_id, {
            "totalAmountExcludingTax": net, "totalTaxAmount": tax,
            "totalAmountIncludingTax": round(net + tax, 2)}))

    def _ensure_editable(self, entity: EntityDef, header: Mapping[str, Any]) -> None:
        if entity.name == "salesInvoices" and header.get("status") not in ("Draft", None):
            raise BCError(400, "Application_DialogException",
                          f"You cannot change the posted sales invoice {header['number']}.")

    def _check_etag(self, row: Mapping[str, Any], headers: Mapping[str, str]) -> None:
        given = headers.get("if-match")
        if not given:
            raise BCError(400, "BadRequest_InvalidToken",
                          "Could not validate the client concurrency token required by the "
                          "service. Please provide a valid token in the client request.")
        if given.strip() == "*":
            return
        if not re.fullmatch(r'(W/)?"[A-Za-z0-9+/=]+"', given.strip()):
            raise BCError(400, "BadRequest_InvalidToken",
                          "Could not validate the client concurrency token required by the "
                          "service. Please provide a valid token in the client request.")
        if given.strip() != etag_for(row["_version"]):
            raise BCError(409, "Request_EntityChanged",
                          "Another user has already changed the record.")

    def _update(self, entity: EntityDef, target: _Target, payload: dict[str, Any],
                headers: Mapping[str, str]) -> Reply:
        assert target.key is not None
        if entity.name == "companies":
            raise BCError(405, "BadRequest_MethodNotAllowed",
                          "'PATCH' requests for 'companies' are not allowed.")
        with self._atomic():
            row = self._fetch(entity, target.key)
            self._check_etag(row, headers)
            if entity.extra.get("lines") and entity.extra["lines"] in payload:
                raise BCError(400, "BadRequest",
                              "Deep update is not supported; patch the lines one by one.")
            if entity.parent:
                parent = self._entity(entity.parent)
                self._ensure_editable(parent, self._fetch(parent, row["documentId"]))
            else:
                self._ensure_editable(entity, row)
            changes = self._validate(entity, payload, creating=False)
            self._check_unique(entity, changes, own_id=row["id"])
            self._derive(entity, changes)
            self._derive_sales_price(entity, changes, row)
            if entity.extra.get("lines") and ({"customerId", "customerNumber"} & set(changes)):
                customer = self._customer_for(changes)
                if customer is not None:
                    self._apply_customer(entity, changes, customer)
            if entity.parent:
                merged = {**row, **changes}
                if {"itemId", "lineObjectNumber", "lineType"} & set(changes):
                    if "itemId" not in changes:
                        merged.pop("itemId", None)
                    for derived in ("description", "unitPrice", "unitOfMeasureCode",
                                    "unitOfMeasureId"):
                        if derived not in changes:
                            merged.pop(derived, None)
                    header = self._fetch(self._entity(entity.parent), row["documentId"])
                    self._resolve_line(merged, header)
                _line_amounts(merged)
                changes = {k: merged[k] for k in merged
                           if k in changes or k in _LINE_COMPUTED or k in _LINE_RESOLVED}
                changes.pop("id", None)
            updated = self.store.update(self._qualified(entity), row["id"], changes)
            if entity.name == "contacts":
                self._refresh_relations(updated)
            elif entity.name == "customers":
                self._update_company_contacts(updated, changes)
            if entity.parent:
                self._recompute_totals(self._entity(entity.parent), row["documentId"])
                updated = self.store.get(self._qualified(entity), row["id"])
        body = {"@odata.context": f"{target.api_root}$metadata#companies({target.company})/"
                                  f"{entity.name}/$entity"}
        body.update(self._wire(entity, updated))
        return Reply(200, body, {"content-type": "application/json; charset=utf-8",
                                 "etag": body["@odata.etag"]})

    def _delete(self, entity: EntityDef, target: _Target, headers: Mapping[str, str]) -> Reply:
        assert target.key is not None
        with self._atomic():
            row = self._fetch(entity, target.key)
            self._check_etag(row, headers)
            if entity.name == "companies":
                raise BCError(405, "BadRequest_MethodNotAllowed",
                              "'DELETE' requests for 'companies' are not allowed.")
            if entity.parent:
                parent = self._entity(entity.parent)
                self._ensure_editable(parent, self._fetch(parent, row["documentId"]))
            else:
                self._ensure_editable(entity, row)
            self._delete_row(entity, row["id"])
            if entity.parent:
                self._recompute_totals(self._entity(entity.parent), row["documentId"])
        return Reply(204)

    def _delete_row(self, entity: EntityDef, key: str) -> None:
        lines = entity.extra.get("lines")
        if lines:
            for line in self.store.query(f"{BC_SERVICE}:{lines}", '"documentId" = ?', [key]):
                self.store.delete(f"{BC_SERVICE}:{lines}", line["id"])
        self._drop_relations(entity, key)
        self.store.delete(self._qualified(entity), key)

    # ----------------------------------------------------------------- actions
    def _action(self, entity: EntityDef, target: _Target) -> Reply:
        assert target.key is not None
        actions = {("salesOrders", "shipAndInvoice"): self._ship_and_invoice,
                   ("salesInvoices", "post"): self._post_invoice}
        handler = actions.get((entity.name, target.action or ""))
        if handler is None:
            raise BCError(400, "BadRequest_NotFound",
                          f"The action 'Microsoft.NAV.{target.action}' is not bound to "
                          f"'{_type_name(entity.name)}'.")
        with self._atomic():
            handler(self._fetch(entity, target.key))
        return Reply(204)

    def _post_lines(self, line_entity: str, lines: list[dict[str, Any]]) -> None:
        for line in lines:
            if line["lineType"] == "Item" and line["itemId"]:
                item = self.store.get(f"{BC_SERVICE}:items", line["itemId"])
                if item is not None:
                    self.store.update(f"{BC_SERVICE}:items", item["id"], {
                        "inventory": round((item["inventory"] or 0.0) - line["quantity"], 5)})

    def _ship_and_invoice(self, order: dict[str, Any]) -> None:
        lines = self.store.query(f"{BC_SERVICE}:salesOrderLines", '"documentId" = ?',
                                 [order["id"]], order_by=[("sequence", False)])
        if not any((line["quantity"] or 0) > 0 for line in lines):
            raise BCError(400, "Application_DialogException", "There is nothing to post.")
        customer = self.store.get(f"{BC_SERVICE}:customers", order["customerId"]) or {}
        today = _today()
        header = {name: order[name] for name in (
            "externalDocumentNumber", "yourReference", "customerId", "customerNumber",
            "customerName", "billToCustomerId", "billToCustomerNumber", "billToName",
            "sellToAddressLine1", "sellToAddressLine2", "sellToCity", "sellToCountry",
            "sellToState", "sellToPostCode", "currencyId", "currencyCode", "pricesIncludeTax",
            "paymentTermsId", "shipmentMethodId", "salesperson", "discountAmount",
            "totalAmountExcludingTax", "totalTaxAmount", "totalAmountIncludingTax",
            "phoneNumber", "email")}
        header.update({"number": self._next_posted_number(), "invoiceDate": today,
                       "postingDate": today, "dueDate": self._due_date(customer, today),
                       "orderId": order["id"], "orderNumber": order["number"],
                       "status": "Open",
                       "remainingAmount": order["totalAmountIncludingTax"]})
        invoice = self.store.insert(f"{BC_SERVICE}:salesInvoices", header)
        copy = [c.name for c in self._entity("salesInvoiceLines").columns
                if c.name not in ("id", "lastModifiedDateTime", "documentId")]
        for line in lines:
            values = {name: line[name] for name in copy}
            values.update({"documentId": invoice["id"], "shippedQuantity": line["quantity"],
                           "invoicedQuantity": line["quantity"]})
            self.store.insert(f"{BC_SERVICE}:salesInvoiceLines", values)
        self._post_lines("salesOrderLines", lines)
        self._add_balance(order["customerId"], order["totalAmountIncludingTax"] or 0.0)
        self._delete_row(self._entity("salesOrders"), order["id"])

    def _post_invoice(self, invoice: dict[str, Any]) -> None:
        if invoice["status"] != "Draft":
            raise BCError(400, "Application_DialogException",
                          f"The sales invoice {invoice['number']} is already posted.")
        lines = self.store.query(f"{BC_SERVICE}:salesInvoiceLines", '"documentId" = ?',
                                 [invoice["id"]])
        if not any((line["quantity"] or 0) > 0 for line in lines):
            raise BCError(400, "Application_DialogException", "There is nothing to post.")
        for line in lines:
            self.store.update(f"{BC_SERVICE}:salesInvoiceLines", line["id"], {
                "shippedQuantity": line["quantity"], "invoicedQuantity": line["quantity"]})
        self._post_lines("salesInvoiceLines", lines)
        self.store.update(f"{BC_SERVICE}:salesInvoices", invoice["id"], {
            "status": "Open", "number": self._next_posted_number(),
            "remainingAmount": invoice["totalAmountIncludingTax"]})
        self._add_balance(invoice["customerId"], invoice["totalAmountIncludingTax"] or 0.0)

    def _next_posted_number(self) -> str:
        rows = self.store.query(f"{BC_SERVICE}:salesInvoices", '"status" <> ?', ["Draft"])
        numbers = [int(r["number"]) for r in rows if (r["number"] or "").isdigit()]
        return str(max(numbers, default=103000) + 1)

    def _add_balance(self, customer_id: str, amount: float) -> None:
        customer = self.store.get(f"{BC_SERVICE}:customers", customer_id)
        if customer is not None:
            self.store.update(f"{BC_SERVICE}:customers", customer_id, {
                "balanceDue": round((customer["balanceDue"] or 0.0) + amount, 2)})

    # ----------------------------------------------------------------- $batch
    def _batch(self, target: _Target, headers: Mapping[str, str], body: bytes) -> Reply:
        payload = self._json_body(body)
        requests = payload.get("requests")
        if not isinstance(requests, list):
            raise BCError(400, "BadRequest", "The batch body must be {\"requests\": [...]}.")
        if len(requests) > MAX_BATCH_OPERATIONS:
            raise BCError(400, "BadRequest",
                          f"The batch contains {len(requests)} operations; the maximum is "
                          f"{MAX_BATCH_OPERATIONS}.")
        snapshot = headers.get("isolation", "").strip().lower() == "snapshot"
        if not snapshot:
            responses = [self._batch_item(target, item) for item in requests]
            return Reply(200, {"responses": responses},
                         {"content-type": "application/json; charset=utf-8"})
        responses = []
        try:
            with self.store.transaction():
                for item in requests:
                    response = self._batch_item(target, item)
                    if response["status"] >= 400:
                        raise _Rollback(Reply(response["status"], response["body"]))
                    responses.append(response)
        except _Rollback as rollback:
            failed = rollback.failed
            responses = [{"id": str(item.get("id", index)) if isinstance(item, dict)
                          else str(index), "status": failed.status,
                          "headers": {"content-type": "application/json; charset=utf-8"},
                          "body": failed.body}
                         for index, item in enumerate(requests)]
        return Reply(200, {"responses": responses},
                     {"content-type": "application/json; charset=utf-8"})

    def _batch_item(self, target: _Target, item: Any) -> dict[str, Any]:
        if not isinstance(item, dict):
            reply = BCError(400, "BadRequest", "Each batch request must be an object.").reply()
            return {"id": "", "status": reply.status, "headers": reply.headers,
                    "body": reply.body}
        item_id = str(item.get("id", ""))
        method = str(item.get("method", "GET")).upper()
        url = str(item.get("url", ""))
        item_headers = {str(k).lower(): str(v) for k, v in (item.get("headers") or {}).items()}
        body = item.get("body")
        raw = json.dumps(body).encode() if body is not None else b""
        parts = urlsplit(url)
        if parts.scheme:
            root = urlsplit(target.api_root).path
            path = parts.path
            if not path.startswith(root):
                reply = _not_found_uri(path).reply()
                return {"id": item_id, "status": reply.status, "headers": reply.headers,
                        "body": reply.body}
            relative = path[len(root):]
        else:
            relative = parts.path.lstrip("/")
        if relative.startswith("$batch"):
            reply = BCError(400, "BadRequest", "Nested $batch requests are not allowed.").reply()
        else:
            api_path = urlsplit(target.api_root).path
            full = api_path[len("/bc"):] + relative
            reply = self.handle(method, full, parts.query, item_headers, raw)
        headers = {k: v for k, v in reply.headers.items() if k != "content-length"}
        body_out: Any = reply.body
        if isinstance(body_out, bytes):
            body_out = body_out.decode("utf-8", errors="replace") or None
        result: dict[str, Any] = {"id": item_id, "status": reply.status, "headers": headers}
        if body_out is not None:
            result["body"] = body_out
        return result


@dataclass
class _Documents:
    """Invoices, orders and order lines grouped by customer/document, read once per request."""

    invoices: dict[str, list[dict[str, Any]]]
    orders: dict[str, list[dict[str, Any]]]
    order_lines: dict[str, list[dict[str, Any]]]

    @classmethod
    def load(cls, store: Any, *, with_orders: bool) -> _Documents:
        def group(entity: str, column: str) -> dict[str, list[dict[str, Any]]]:
            grouped: dict[str, list[dict[str, Any]]] = {}
            for row in store.query(f"{BC_SERVICE}:{entity}"):
                grouped.setdefault(row[column], []).append(row)
            return grouped

        if not with_orders:
            return cls(group("salesInvoices", "customerId"), {}, {})
        return cls(group("salesInvoices", "customerId"), group("salesOrders", "customerId"),
                   group("salesOrderLines", "documentId"))


_LINE_COMPUTED = ("discountAmount", "amountExcludingTax", "totalTaxAmount", "amountIncludingTax", "netAmount")
_LINE_RESOLVED = ("itemId", "lineObjectNumber", "description", "unitOfMeasureCode",
                  "unitOfMeasureId", "unitPrice", "taxPercent")


def _default_order(entity: EntityDef) -> list[tuple[str, bool]]:
    """BC lists records in primary-key order (No., Code, document lines by line number)."""
    if entity.parent:
        return [("documentId", False), ("sequence", False)]
    natural = entity.extra.get("natural_key")
    if natural:
        return [(natural, False)]
    if entity.extra.get("default_order"):
        return list(entity.extra["default_order"])
    if entity.name == "salesPrices":
        return [("itemNumber", False), ("salesType", False), ("salesCode", False)]
    return []


def _line_amounts(values: dict[str, Any]) -> None:
    quantity = float(values.get("quantity") or 0.0)
    price = float(values.get("unitPrice") or 0.0)
    percent = float(values.get("discountPercent") or 0.0)
    gross = round(quantity * price, 2)
    discount = round(gross * percent / 100, 2)
    net = round(gross - discount, 2)
    tax = round(net * float(values.get("taxPercent") or 0.0) / 100, 2)
    values.update({"discountAmount": discount, "amountExcludingTax": net, "netAmount": net,
                   "totalTaxAmount": tax, "amountIncludingTax": round(net + tax, 2)})


def _clean_key(key: str) -> str:
    text = key.strip()
    if text.lower().startswith("id="):
        text = text[3:]
    return text.strip("'")


def _int_option(params: Mapping[str, str], name: str) -> int | None:
    text = params.get(name)
    if text is None or text == "":
        return None
    if not text.isdigit():
        raise BCError(400, "BadRequest", f"Invalid value '{text}' for {name}: use a "
                                         "non-negative integer.")
    return int(text)


def _encode_token(state: Mapping[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(state).encode()).decode().rstrip("=")


def _decode_token(token: str) -> dict[str, Any]:
    try:
        padded = token + "=" * (-len(token) % 4)
        state = json.loads(base64.urlsafe_b64decode(padded))
        if not isinstance(state, dict) or not isinstance(state.get("after"), list):
            raise ValueError(token)
        return state
    except (ValueError, binascii.Error, json.JSONDecodeError):
        raise BCError(400, "BadRequest", "The $skiptoken is not valid; follow "
                                         "@odata.nextLink exactly as returned.") from None


def _wire_value(column: Column, value: Any) -> Any:
    """BC never answers null for these types: blank strings, empty GUIDs, zero, 0001-01-01."""
    if value is not None:
        return value
    kind = column.type
    if kind in ("string", "memo", "option"):
        return ""
    if kind in ("guid", "lookup"):
        return EMPTY_GUID
    if kind in ("decimal", "money", "int", "bigint"):
        return 0
    if kind == "bool":
        return False
    if kind == "date":
        return "0001-01-01"
    if kind == "datetime":
        return "0001-01-01T00:00:00Z"
    return None


def _coerce(entity: EntityDef, column: Column, value: Any) -> Any:
    """Validate one written value the way BC does; returns the value to store."""
    kind = column.type
    edm = {"string": "Edm.String", "option": "Edm.String", "decimal": "Edm.Decimal",
           "int": "Edm.Int32", "bool": "Edm.Boolean", "date": "Edm.Date",
           "guid": "Edm.Guid"}.get(kind, "Edm.String")
    if value is None:
        if kind in ("string", "option"):
            return ""
        raise BCError(400, "BadRequest", f"Cannot convert a null value for property "
                                         f"'{column.name}' to the expected type '{edm}'.")
    if kind in ("string", "memo"):
        if not isinstance(value, str):
            raise BCError(400, "BadRequest", f"Cannot convert the literal '{value}' to the "
                                             f"expected type '{edm}'.")
        if column.max_length is not None and len(value) > column.max_length:
            raise BCError(400, "Application_StringExceededLength",
                          f"The length of the string is {len(value)}, but it must be less than "
                          f"or equal to {column.max_length} characters. Value: {value}")
        return value
    if kind == "option":
        options = column.options or ()
        text = str(value)
        for option in options:
            if option.lower() == text.lower() or (option == " " and text == ""):
                return option
        raise BCError(400, "Application_EvaluateException",
                      f"'{text}' is not an option. The existing options are: "
                      f"{','.join(options)}")
    if kind == "bool":
        if not isinstance(value, bool):
            raise BCError(400, "BadRequest", f"Cannot convert the literal '{value}' to the "
                                             f"expected type '{edm}'.")
        return value
    if kind in ("decimal", "money", "int", "bigint"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise BCError(400, "BadRequest", f"Cannot convert the literal '{value}' to the "
                                             f"expected type '{edm}'.")
        if kind in ("int", "bigint") and not float(value).is_integer():
            raise BCError(400, "BadRequest", f"Cannot convert the literal '{value}' to the "
                                             f"expected type '{edm}'.")
        return int(value) if kind in ("int", "bigint") else float(value)
    if kind == "date":
        text = str(value)
        if text in ("", "0001-01-01"):
            return None
        try:
            return date.fromisoformat(text[:10]).isoformat()
        except ValueError:
            raise BCError(400, "BadRequest", f"Cannot convert the literal '{text}' to the "
                                             f"expected type '{edm}'.") from None
    if kind == "guid":
        text = str(value)
        if not _GUID.match(text):
            raise BCError(400, "Application_InvalidGUID",
                          f"Invalid GUID string format: '{text}' for field '{column.name}'.")
        return text.lower()
    return value


def build_bc_app(ctx: SandboxContext) -> Starlette:
    """The Business Central APIs as an ASGI app, mounted at ``/bc``."""
    service = BusinessCentralService(ctx)

    async def endpoint(request: Request) -> Response:
        body = await request.body()
        headers = {name: value for name, value in request.headers.items()}
        reply = await run_in_threadpool(service.handle, request.method,
                                        "/" + request.path_params.get("path", ""),
                                        request.url.query, headers, body)
        out_headers = {"odata-version": "4.0", **reply.headers}
        return Response(reply.encoded(), status_code=reply.status, headers=out_headers)

    methods = ["GET", "POST", "PATCH", "DELETE", "PUT"]
    return Starlette(routes=[Route("/{path:path}", endpoint, methods=methods)])
