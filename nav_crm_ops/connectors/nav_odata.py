"""NAV 2013 R2-2018 / Business Central on-premises: OData v4 *page* web services.

A NAV administrator publishes pages on the Web Services page; each is served as
``…/ODataV4/Company('CRONUS International Ltd.')/<ServiceName>`` with the page's field names
(``No``, ``Phone_No``, ``Last_Date_Modified``), the page's key fields in record URLs
(``Customer('10000')``, ``SalesLines(Document_Type='Order',Document_No='1001',Line_No=10000)``),
``@odata.etag`` versions and server-driven paging (``@odata.nextLink`` with ``$skiptoken``,
1,000 rows a page by default).

Where the entity-set translation lives: mappings name a table by its Business Central API entity
set (``customers``); this connector maps it to the service name the administrator published
(``[nav.pages]`` in the workspace, e.g. ``customers = "Customer"``) in :meth:`entity_path`, so
everything above the connectors, outcomes and errors included, keeps speaking entity sets.

Writes are one request per record with ``If-Match``, sent ``max_parallel`` at a time (NAV 2018
documents no ``$batch`` for page services); with ``batch=True`` (BC on-premises) they go through
the JSON ``$batch`` code of :class:`~.business_central.BusinessCentral`, which this class extends
for exactly that reason: the batch, the settling of lost creates by their key and the check of
re-sent updates are written once.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from functools import cached_property
from typing import Any
from urllib.parse import quote

import httpx
import polars as pl

from ..exceptions import (
    AuthError,
    ConcurrencyError,
    ConnectorError,
    NotFoundError,
    TransientError,
    ValidationError,
)
from .auth import Auth
from .business_central import MAX_BATCH, BusinessCentral, _never_ran
from .errors import error_from_response
from .http import AdaptivePool, RetryPolicy, ServiceClient, _Call
from .models import WriteOp, WriteOutcome
from .nav_documents import DocumentWriter, document_pages, full_key, own_key_fields
from .nav_views import NavViews
from .odata import F, Filter, all_of, as_filter, field_name, literal

__all__ = ["DEFAULT_KEY", "DEFAULT_KEYS", "NavODataV4", "day_before", "key_segment"]

SERVICE = "nav"
DEFAULT_KEY: tuple[str, ...] = ("No",)
"""The key field of most pages (customers, items, contacts, ...)."""
DEFAULT_KEYS: dict[str, tuple[str, ...]] = {
    "salespeoplePurchasers": ("Code",), "currencies": ("Code",), "unitsOfMeasure": ("Code",),
    "customerPriceGroups": ("Code",),
    "salesPrices": ("Item_No", "Sales_Type", "Sales_Code", "Starting_Date", "Currency_Code",
                    "Variant_Code", "Unit_of_Measure_Code", "Minimum_Quantity"),
    "salesInvoiceLines": ("Document_No", "Line_No"),
    "salesOrders": ("Document_Type", "No"),
    "salesOrderLines": ("Document_Type", "Document_No", "Line_No"),
    "contactsInformation": ("Contact_No", "Business_Relation_Code"),
    "generalLedgerSetup": ("Primary_Key",),
}
"""Key fields of the standard pages behind the default mappings' tables whose key is not
``No`` (NAV 2018: the primary key of the page's source table), keyed by entity set."""
SERVER_PAGE_SIZE = 1000
"""NAV's default ``ODataServicesMaxPageSize``; the server decides, the client follows nextLinks."""
_PAIR = r"[A-Za-z_][A-Za-z0-9_]*=(?:'(?:[^']|'')*'|[^,'()]+)"
_SEGMENT = re.compile(rf"^{_PAIR}(?:,{_PAIR})*$")
Key = str | Mapping[str, Any]
"""A record key: the value of a single key field, or field -> value for a composite key."""


def key_segment(key: Mapping[str, Any]) -> str:
    """``Document_Type='Order',Document_No='1001',Line_No=10000`` for a composite key (values
    as OData literals: text quoted with quotes doubled, numbers bare)."""
    if not key:
        raise ValueError("a composite key needs at least one field")
    return ",".join(f"{field_name(name)}={literal(value)}" for name, value in key.items())



def day_before(moment: datetime) -> date:
    """The UTC date before ``moment``'s: the first day a NAV date field (``Last_Date_Modified``,
    the server's local date of the change, no time) may show for a change made at or after
    ``moment`` in any server time zone. Every reader of a date watermark uses this one rule."""
    return (moment.astimezone(UTC) - timedelta(days=1)).date()

class _NavServiceClient(ServiceClient):
    """The HTTP client of a NAV server: a 401 says what to check for the configured auth kind
    (user name and access key, or Windows account) instead of the OAuth hint of the cloud."""

    def _failed_reply(self, response: httpx.Response,
                      call: _Call) -> tuple[ConnectorError, float]:
        if response.status_code != 401:
            return super()._failed_reply(response, call)
        offered = response.headers.get("WWW-Authenticate", "")
        explain = getattr(self.auth, "rejection", None)
        what = explain(offered) if callable(explain) else "check the NAV user and its secret"
        error = error_from_response(401, response.content, response.headers,
                                    service=self.service, entity=call.entity,
                                    record_key=call.record_key)
        raise AuthError(f"{self.service} {call.entity}: HTTP 401: the NAV server at "
                        f"{self.base_url} refused the credentials: {what}",
                        service=self.service, entity=call.entity, record_key=call.record_key,
                        status=401, code=error.code, service_message=error.service_message)


class NavODataV4(BusinessCentral):
    """A client of one NAV company's page web services under ``odata_url`` (``…/ODataV4/``).

    ``pages`` maps entity sets to published service names (unlisted ones are used as given;
    kept as :attr:`services`, since ``pages`` is the reader's paging method);
    ``keys`` maps entity sets to their page's key fields (over :data:`DEFAULT_KEYS`, else
    ``No``; a composite key's record id is its :func:`key_segment`). ``modified_field`` is a
    *date* (NAV 2018's ``Last_Date_Modified``) unless ``date_watermark=False``.
    """

    def __init__(self, odata_url: str, company_name: str, auth: Auth, *,
                 pages: Mapping[str, str] | None = None,
                 keys: Mapping[str, Sequence[str]] | None = None,
                 page_size: int = SERVER_PAGE_SIZE, modified_field: str = "Last_Date_Modified",
                 date_watermark: bool = True, batch: bool = False, batch_size: int = MAX_BATCH,
                 max_parallel: int = 4, retry: RetryPolicy | None = None,
                 transport: httpx.BaseTransport | None = None,
                 max_filter_chars: int = 1800) -> None:
        # BusinessCentral.__init__ is not called: it builds a company-id API client.
        if not company_name.strip():
            raise ValueError("company_name: the company as NAV names it")
        if not 1 <= batch_size <= MAX_BATCH:
            raise ValueError(f"batch_size must be 1..{MAX_BATCH}")
        self.company_name = company_name
        self.company_id = company_name
        self.services = {name: field_name(service) for name, service in (pages or {}).items()}
        self.keys = {name: tuple(field_name(f) for f in fields)
                     for name, fields in {**DEFAULT_KEYS, **(keys or {})}.items()}
        self.page_size = page_size
        self.batch = batch
        self.batch_size = batch_size
        self.max_filter_chars = max_filter_chars
        self.modified_field = modified_field
        self.date_watermark = date_watermark
        self.extra_read_headers = {}
        self.pool = AdaptivePool(max_parallel)
        self.http = _NavServiceClient(odata_url, auth, service=SERVICE, retry=retry,
                                      transport=transport,
                                      default_headers={"Accept": "application/json"})
        self.http.on_throttle = self.pool.throttled

    def __repr__(self) -> str:
        return (f"NavODataV4({self.http.base_url!r}, company={self.company_name!r}, "
                f"auth={self.http.auth!r})")

    # paths -------------------------------------------------------------------------------------
    def service_name(self, entity_set: str) -> str:
        """The published service name of an entity set (``customers`` -> ``Customer``)."""
        return self.services.get(entity_set) or field_name(entity_set)

    def entity_path(self, entity_set: str) -> str:
        """``Company('CRONUS%20International%20Ltd.')/Customer`` (quotes in the name doubled)."""
        company = quote(literal(self.company_name), safe="'")
        return f"Company({company})/{self.service_name(entity_set)}"

    def key_fields(self, entity_set: str) -> tuple[str, ...]:
        return self.keys.get(entity_set, DEFAULT_KEY)

    def record_path(self, entity_set: str, key: Key) -> str:
        """``Customer('10000')``; a composite key as a mapping or as its :func:`key_segment`."""
        if isinstance(key, str):  # a fixed key part (Document_Type='Order') is implied
            key = full_key(entity_set, self.key_fields(entity_set), key)
        if isinstance(key, Mapping):
            segment = key_segment(key)
        elif len(self.key_fields(entity_set)) > 1:
            if not _SEGMENT.match(key):
                raise ValidationError(
                    f"{SERVICE} {entity_set}: key {key!r} is not a composite key such as "
                    f"{','.join(f'{f}=...' for f in self.key_fields(entity_set))}",
                    service=SERVICE, entity=entity_set, record_key=key)
            segment = key
        else:
            segment = literal(str(key))
        return f"{self.entity_path(entity_set)}({quote(segment, safe=chr(39) + '=,')})"

    def record_id(self, entity_set: str, record: Mapping[str, Any]) -> str:
        """The id outcomes and couplings carry: the key field's value, or the key segment
        (fixed key parts such as ``Document_Type='Order'`` left out: a sales order is ``1001``)."""
        fields = own_key_fields(entity_set, self.key_fields(entity_set))
        if any(record.get(f) is None for f in fields):
            return ""
        if len(fields) == 1:
            return str(record[fields[0]])
        return key_segment({f: record[f] for f in fields})

    # reads -------------------------------------------------------------------------------------
    @cached_property
    def views(self) -> NavViews:
        """The sets and columns computed here from published pages (:mod:`.nav_views`)."""
        return NavViews(self)

    # Dispatch: a derived set (customerPriceLists) or a computed column (salesPrices
    # Sales_Price_Id, Price_List_Code) is served by self.views, which reads the published
    # pages through read_server_pages; computed names never reach the server.
    def read_pages(self, entity_set: str, *, select: Sequence[str] = (),
                   filter: Filter | str | None = None, orderby: Sequence[str] = (),
                   changed_since: datetime | None = None, modified_field: str | None = None,
                   schema: dict[str, Any] | None = None, etag: bool = False,
                   top: int | None = None) -> Iterator[pl.DataFrame]:
        """As :meth:`PagedReader.read_pages`, derived sets and computed columns included."""
        reader = (self.views.read_pages if self.views.handles(entity_set, select, filter)
                  else self.read_server_pages)
        return reader(entity_set, select=select, filter=filter, orderby=orderby,
                      changed_since=changed_since, modified_field=modified_field,
                      schema=schema, etag=etag, top=top)

    def read_by_ids(self, entity_set: str, key: str, ids: Sequence[Any],
                    select: Sequence[str] = (), schema: dict[str, Any] | None = None,
                    etag: bool = False, filter: Filter | str | None = None) -> pl.DataFrame:
        """As :meth:`PagedReader.read_by_ids`; by a computed key (a sales price's
        ``Sales_Price_Id``) or in a derived set, through :attr:`views`."""
        if self.views.derives(entity_set) or key in self.views.computed(entity_set):
            return self.views.read_by_ids(entity_set, key, ids, select, schema, etag, filter)
        return super().read_by_ids(entity_set, key, ids, select, schema, etag, filter)

    def read_server_pages(self, entity_set: str, *, select: Sequence[str] = (),
                          filter: Filter | str | None = None, orderby: Sequence[str] = (),
                          changed_since: datetime | None = None,
                          modified_field: str | None = None,
                          schema: dict[str, Any] | None = None, etag: bool = False,
                          top: int | None = None) -> Iterator[pl.DataFrame]:
        """A published page's rows as the server sends them; a watermark on a date field is
        written as an ``Edm.Date`` literal from the day before the watermark (``Last_Date_Modified ge
        2024-04-30``): the field holds the server's local date of the change, which may be a
        day behind the UTC watermark, and has no time, so the same day is read again. Rows read
        again are found unchanged by the three-way diff (the cost: up to two days of changes
        read twice)."""
        if changed_since is not None and self.date_watermark:
            watermark = F(modified_field or self.modified_field).ge(day_before(changed_since))
            filter, changed_since = all_of([as_filter(filter), watermark]), None
        return super().read_pages(entity_set, select=select, filter=filter, orderby=orderby,
                                  changed_since=changed_since, modified_field=modified_field,
                                  schema=schema, etag=etag, top=top)

    def get(self, entity_set: str, key: Key) -> dict[str, Any]:
        """One record by its key (raises NotFoundError); a derived set's row, or a sales
        price by its ``Sales_Price_Id``, through :attr:`views`."""
        if self.views.derives(entity_set):
            return self.views.get(entity_set, key)
        record_key = key if isinstance(key, str) else key_segment(key)
        record = dict(self.http.request("GET", self.record_path(
            entity_set, self.views.page_key(entity_set, key)), entity=entity_set,
            record_key=record_key).json())
        return self.views.with_computed_record(entity_set, record)

    # writes ------------------------------------------------------------------------------------
    def write(self, ops: Sequence[WriteOp]) -> list[WriteOutcome]:
        """Apply ``ops``; outcomes in input order, created records carrying their key as id.

        Without ``batch`` each op is its own request, ``max_parallel`` at a time."""
        self.views.refuse_writes(ops)  # derived sets and computed columns are read-only
        for op in ops:
            if op.kind != "create" and not op.key:
                raise ValidationError(f"{SERVICE} {op.entity_set}: {op.kind} needs the record "
                                      "key", service=SERVICE, entity=op.entity_set)
        batched = self.batch and not any(document_pages(op) for op in ops)
        outcomes = (super().write(ops) if batched
                    else self.pool.map(self._write_one, list(ops)))
        return [self._keyed(op, outcome) for op, outcome in zip(ops, outcomes, strict=True)]

    def _keyed(self, op: WriteOp, outcome: WriteOutcome) -> WriteOutcome:
        """A created (or settled) record's outcome with its key as id (pages have no ``id``)."""
        if op.kind != "create" or not outcome.ok or not isinstance(outcome.body, dict):
            return outcome
        return replace(outcome, id=self.record_id(op.entity_set, outcome.body) or outcome.id)

    def _send_one(self, op: WriteOp) -> httpx.Response:
        """One request, never re-sent by the HTTP layer when it may have run (the caller
        settles a lost reply); updates and deletes carry ``If-Match``."""
        if op.kind == "create":
            return self.http.request("POST", self.entity_path(op.entity_set), json=op.payload,
                                     entity=op.entity_set, retry_unsafe=False)
        method = "PATCH" if op.kind == "update" else "DELETE"
        return self.http.request(method, self.record_path(op.entity_set, op.key),
                                 headers={"If-Match": op.if_match or "*"},
                                 json=op.payload if op.kind == "update" else None,
                                 entity=op.entity_set, record_key=op.key, retry_unsafe=False)

    def _write_one(self, op: WriteOp) -> WriteOutcome:
        """One op to its outcome. A reply lost after sending (502/504, reset, timeout) means it
        may have run: a create is settled by the key it sent (never re-sent blind), an update
        or delete is re-sent and a conflict on the re-sent update is checked against the
        values sent; a request refused before it ran has been retried by the HTTP layer. A
        document created with its lines is written header and lines (:mod:`.nav_documents`)."""
        if (pages := document_pages(op)) is not None:
            return DocumentWriter(self, pages, self._write_one).create(op)
        maybe_ran = False
        attempt = 0
        while True:
            try:
                response = self._send_one(op)
            except TransientError as error:
                lost = not _never_ran(error)
                if not lost or attempt >= self.http.retry.max_retries:
                    return self._settled_or_failed(op, error, lost)
                maybe_ran = True
                if op.kind == "create" and (settled := self._settle_lost_create(op, error)):
                    return settled
                attempt += 1
                self._back_off(attempt)
                continue
            except ConnectorError as error:
                return self._refused(op, error, maybe_ran)
            return _written(op, response)

    def _settled_or_failed(self, op: WriteOp, error: TransientError,
                           lost: bool) -> WriteOutcome:
        """The outcome once retrying is over: a lost create is still settled by its key."""
        if lost and op.kind == "create" and (settled := self._settle_lost_create(op, error)):
            return settled
        return WriteOutcome(op.op_id, False, error.status, op.key, error=error)

    def _settle_lost_create(self, op: WriteOp, error: ConnectorError) -> WriteOutcome | None:
        """The outcome of a create whose reply was lost, when it can be known (None: the key
        it sent is free, so it did not happen and may be sent again)."""
        outcomes: dict[int, WriteOutcome] = {}
        if self._settle_unknown_creates([op], [0], outcomes, error):
            return None
        return outcomes[0]

    def _refused(self, op: WriteOp, error: ConnectorError, maybe_ran: bool) -> WriteOutcome:
        """The outcome of a refused request; a delete of a missing record is done, and a
        conflict after a lost update reply may be that update itself."""
        if op.kind == "delete" and isinstance(error, NotFoundError):
            return WriteOutcome(op.op_id, True, error.status, op.key)
        outcome = WriteOutcome(op.op_id, False, error.status, op.key, error=error,
                               body=error.response_body)
        if maybe_ran and isinstance(error, ConcurrencyError):
            return self._confirm_update(op, outcome)
        return outcome

    def _back_off(self, attempt: int) -> None:
        self.http.stats.add(retries=1)
        time.sleep(self.http.retry.backoff(attempt))


def _written(op: WriteOp, response: httpx.Response) -> WriteOutcome:
    """The outcome of an answered write (the body, when any, is the record as stored)."""
    body = response.json() if response.content else None
    record = body if isinstance(body, dict) else {}
    return WriteOutcome(op.op_id, True, response.status_code, op.key,
                        str(record.get("@odata.etag", "")), body=body)

