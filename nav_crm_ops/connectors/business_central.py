"""Business Central API v2.0 (and custom APIs) client (NAV page web services: :mod:`.nav_odata`)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from typing import Any

import httpx

from .. import jsontext
from ..exceptions import ConcurrencyError, ConnectorError, TransientError, ValidationError
from .auth import Auth
from .errors import error_from_response
from .http import AdaptivePool, RetryPolicy, RetryRound, ServiceClient
from .models import WriteOp, WriteOutcome, unknown_outcomes
from .odata import F, Filter, RawFilter, all_of, encode_query, field_name
from .reader import PagedReader

__all__ = ["CUSTOM_API_PATH", "BusinessCentral"]

SERVICE = "business_central"
MAX_PAGE = 20000
MAX_BATCH = 100
CUSTOM_API_PATH = "api/navcrm/sync/v1.0"


class BusinessCentral(PagedReader):
    """Company-scoped entity sets under ``api_url`` (``…/api/v2.0/`` or a custom API root).

    Reads page by ``@odata.nextLink``; writes go through JSON ``$batch`` (≤ 100 independent
    items, one outcome each). PATCH/DELETE always carry ``If-Match`` (etag or ``*``).
    """

    def __init__(self, api_url: str, company_id: str, auth: Auth, *,
                 page_size: int = MAX_PAGE, batch_size: int = MAX_BATCH, max_workers: int = 4,
                 retry: RetryPolicy | None = None, transport: httpx.BaseTransport | None = None,
                 max_filter_chars: int = 1800, read_replica: bool = False) -> None:
        if not 1 <= page_size <= MAX_PAGE:
            raise ValueError(f"page_size must be 1..{MAX_PAGE} (Business Central maximum)")
        if not 1 <= batch_size <= MAX_BATCH:
            raise ValueError(f"batch_size must be 1..{MAX_BATCH} (Business Central $batch)")
        self.company_id = str(uuid.UUID(company_id))
        self.page_size = page_size
        self.batch_size = batch_size
        self.max_filter_chars = max_filter_chars
        self.modified_field = "lastModifiedDateTime"
        self.extra_read_headers = {"Data-Access-Intent": "ReadOnly"} if read_replica else {}
        self.pool = AdaptivePool(max_workers)
        self.http = ServiceClient(api_url, auth, service=SERVICE, retry=retry,
                                  transport=transport,
                                  default_headers={"Accept": "application/json"})
        self.http.on_throttle = self.pool.throttled

    @classmethod
    def custom_api(cls, bc_api_url: str, company_id: str, auth: Auth,
                   **kwargs: Any) -> BusinessCentral:
        """Client for the partner API ``api/navcrm/sync/v1.0`` next to ``…/api/v2.0/``."""
        root = bc_api_url.rstrip("/")
        if root.endswith("/api/v2.0"):
            root = root[: -len("api/v2.0")] + CUSTOM_API_PATH
        return cls(root + "/", company_id, auth, **kwargs)

    def entity_path(self, entity_set: str) -> str:
        return f"companies({self.company_id})/{field_name(entity_set)}"

    def record_path(self, entity_set: str, key: str) -> str:
        return f"{self.entity_path(entity_set)}({uuid.UUID(key)})"

    def post_action(self, entity_set: str, key: str, action: str) -> None:
        """Bound action, e.g. ``post_action("salesOrders", id, "Microsoft.NAV.shipAndInvoice")``."""
        if not action.startswith("Microsoft.NAV."):
            raise ValidationError(f"action {action!r} must be Microsoft.NAV.<name>",
                                  service=SERVICE, entity=entity_set)
        self.http.request("POST", f"{self.record_path(entity_set, key)}/{action}",
                          entity=entity_set, record_key=key, retry_unsafe=False)

    # writes ----------------------------------------------------------------------------------
    def write(self, ops: Sequence[WriteOp]) -> list[WriteOutcome]:
        """Apply ``ops`` through JSON ``$batch`` (parallel batches); outcomes in input order."""
        for op in ops:
            if op.kind != "create" and not op.key:
                raise ValidationError(f"business_central {op.entity_set}: {op.kind} needs the "
                                      "record id", service=SERVICE, entity=op.entity_set)
        chunks = [list(ops[i:i + self.batch_size]) for i in range(0, len(ops), self.batch_size)]
        return [o for chunk in self.pool.map(self._write_batch, chunks) for o in chunk]

    def _item(self, index: int, op: WriteOp) -> dict[str, Any]:
        item: dict[str, Any] = {"id": str(index), "headers": {"Content-Type": "application/json"}}
        if op.kind == "create":
            item.update(method="POST", url=self.entity_path(op.entity_set), body=op.payload)
        elif op.kind == "update":
            item.update(method="PATCH", url=self.record_path(op.entity_set, op.key),
                        body=op.payload)
            item["headers"]["If-Match"] = op.if_match or "*"
        else:
            item.update(method="DELETE", url=self.record_path(op.entity_set, op.key))
            item["headers"]["If-Match"] = op.if_match or "*"
        return item

    def _write_batch(self, ops: list[WriteOp]) -> list[WriteOutcome]:
        """One chunk through ``$batch``, never re-sent by the HTTP layer.

        Without ``Isolation: snapshot`` BC commits the operations one by one, so a batch whose
        reply is lost (network error, 502, 504: "the request ran and was cut off") may have
        committed any of them. Parts answering 429/5xx inside a reply are re-sent; after a lost
        reply creates are settled by the key they sent (:meth:`_settle_unknown_creates`),
        updates and deletes are re-sent, and a conflict on a re-sent update is checked against
        what was sent (:meth:`_confirm_update`).
        """
        outcomes: dict[int, WriteOutcome] = {}
        pending = list(range(len(ops)))
        maybe_committed: set[int] = set()
        attempt = 0
        while pending:
            body = {"requests": [self._item(i, ops[i]) for i in pending]}
            try:
                response = self.http.request("POST", "$batch", json=body, entity="$batch",
                                             retry_unsafe=False)
            except TransientError as error:
                lost = not _never_ran(error)
                if lost:
                    maybe_committed.update(pending)
                if not lost or attempt >= self.http.retry.max_retries:
                    if lost:
                        pending = self._settle_unknown_creates(ops, pending, outcomes, error)
                    return unknown_outcomes(ops, pending, error, outcomes)
                attempt += 1
                self.http.stats.add(retries=1)
                time.sleep(self.http.retry.backoff(attempt))
                pending = self._settle_unknown_creates(ops, pending, outcomes, error)
                continue
            pending = self._read_replies(ops, pending, response, attempt, outcomes, maybe_committed)
            if pending:
                attempt += 1
        return [outcomes[i] for i in range(len(ops))]

    def _read_replies(self, ops: list[WriteOp], pending: list[int], response: httpx.Response,
                      attempt: int, outcomes: dict[int, WriteOutcome],
                      maybe_committed: set[int]) -> list[int]:
        """Outcomes of one answered batch; returns the parts to send again (after waiting)."""
        replies = {str(r.get("id")): r
                   for r in jsontext.loads(response.content).get("responses", [])}
        retry: list[int] = []
        round_ = RetryRound(self.http, attempt)
        for index in pending:
            reply = replies.get(str(index))
            status = int(reply.get("status", 0)) if reply else 0
            headers = (reply or {}).get("headers") or {}
            retry_after = headers.get("Retry-After") or headers.get("retry-after")
            if round_.should_retry(status, retry_after, missing=reply is None) or reply is None:
                retry.append(index)
                continue
            outcome = _outcome(ops[index], status, reply)
            if index in maybe_committed and isinstance(outcome.error, ConcurrencyError):
                outcome = self._confirm_update(ops[index], outcome)
            outcomes[index] = outcome
        round_.wait()
        return retry

    def _confirm_update(self, op: WriteOp, conflict: WriteOutcome) -> WriteOutcome:
        """A re-sent update refused as changed (409 ``Request_EntityChanged``): the first send,
        whose reply was lost, may have committed and changed the etag. Read the record back:
        when it holds the values sent, the update is done; otherwise the conflict stands."""
        if op.kind != "update":
            return conflict
        try:
            record = self.http.request("GET", self.record_path(op.entity_set, op.key),
                                       entity=op.entity_set, record_key=op.key).json()
        except ConnectorError:
            return conflict
        if not isinstance(record, dict) or not holds_values(record, op.payload):
            return conflict
        return WriteOutcome(op.op_id, True, 200, str(record.get("id") or op.key),
                            str(record.get("@odata.etag", "")), body=record)

    def _settle_unknown_creates(self, ops: list[WriteOp], pending: list[int],
                                outcomes: dict[int, WriteOutcome],
                                cause: ConnectorError) -> list[int]:
        """After a lost batch reply, settle each create in ``pending`` by the key it sent; returns
        the ops still to send (updates, deletes, and creates known not to have happened).

        A create is "already done" only when a record inside the mapping's table
        (``op.settle_filter``) carries the key the create sent and holds the values sent. A
        create without such a key (BC numbers it from its number series), or whose key is
        taken by a record holding other values, or that cannot be looked up, is never sent
        again and never coupled by guess: its outcome is unknown (a transient failure), and
        the engine's next run matches the record before it creates anything.
        """
        still: list[int] = []
        for index in pending:
            op = ops[index]
            if op.kind != "create":
                still.append(index)
                continue
            found: dict[str, Any] | None = None
            checked = False
            if op.natural_key:
                try:
                    found = self.find_by_natural_key(op.entity_set, op.natural_key,
                                                     table_filter=op.settle_filter)
                    checked = True
                except ConnectorError:
                    checked = False
            if checked and found is None:
                still.append(index)  # the key the create sent is free: it did not happen
            elif found is not None and holds_values(found, op.payload):
                outcomes[index] = WriteOutcome(op.op_id, True, 200, str(found.get("id", "")),
                                               str(found.get("@odata.etag", "")),
                                               already_existed=True, body=found)
            else:
                outcomes[index] = _unknown_create(op, cause, found)
        return still

    def find_by_natural_key(self, entity_set: str, natural_key: dict[str, Any], *,
                            table_filter: str = "") -> dict[str, Any] | None:
        """The record whose fields equal ``natural_key`` among those matching ``table_filter``
        (None when absent)."""
        parts: list[Filter | None] = [F(name).eq(value) for name, value in natural_key.items()]
        if table_filter.strip():
            parts.append(RawFilter(table_filter))
        flt = all_of(parts)
        params = encode_query({"$filter": flt.render() if flt else "", "$top": "2"})
        rows = self.http.request("GET", f"{self.entity_path(entity_set)}?{params}",
                                 entity=entity_set).json().get("value", [])
        return dict(rows[0]) if rows else None


def _never_ran(error: TransientError) -> bool:
    """The batch was refused before it ran: throttled (429), queued too long (503) or the
    connection was refused (the HTTP layer has already retried these)."""
    return error.status in (429, 503) or isinstance(
        error.__context__, httpx.ConnectError | httpx.ConnectTimeout)


def _unknown_create(op: WriteOp, cause: ConnectorError,
                    found: dict[str, Any] | None) -> WriteOutcome:
    """The outcome of a create whose reply was lost and that cannot be settled safely."""
    if found is not None:
        why = (f"a record with {_describe_key(op.natural_key)} exists (id {found.get('id')}) "
               "but holds other values, so it is not taken for this one")
    elif op.natural_key:
        why = f"looking it up by {_describe_key(op.natural_key)} failed too"
    else:
        why = "it sent no key to look it up by (BC numbers it)"
    error = TransientError(
        f"business_central {op.entity_set}: the reply to the create was lost ({cause}); "
        f"whether BC created the record is unknown: {why}. It was not sent again and not "
        "coupled; the next run matches it before it creates anything",
        service=SERVICE, entity=op.entity_set, status=cause.status)
    return WriteOutcome(op.op_id, False, cause.status, op.key, error=error)


def _describe_key(natural_key: dict[str, Any] | None) -> str:
    return " and ".join(f"{k} {v!r}" for k, v in (natural_key or {}).items())


def _comparable(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return float(value)
    text = str(value).strip()
    try:
        return float(text) if text and text[0] in "-+.0123456789" else text.casefold()
    except ValueError:
        return text.casefold()


def holds_values(record: dict[str, Any], payload: dict[str, Any]) -> bool:
    """Whether ``record`` (as read back) holds every scalar value of ``payload`` (text compared
    without case and surrounding blanks, numbers as numbers; nested lines and fields the record
    does not return are not compared)."""
    for name, sent in payload.items():
        if "@" in name or isinstance(sent, dict | list) or name not in record:
            continue
        if _comparable(sent) != _comparable(record[name]):
            return False
    return True


def _outcome(op: WriteOp, status: int, reply: dict[str, Any]) -> WriteOutcome:
    body = reply.get("body")
    record = body if isinstance(body, dict) else {}
    if status < 400:
        return WriteOutcome(op.op_id, True, status, str(record.get("id") or op.key),
                            str(record.get("@odata.etag", "")), body=body)
    if op.kind == "delete" and status == 404:
        return WriteOutcome(op.op_id, True, status, op.key, body=body)
    error: ConnectorError = error_from_response(status, body, reply.get("headers") or {},
                                                service=SERVICE, entity=op.entity_set,
                                                record_key=op.key)
    return WriteOutcome(op.op_id, False, status, op.key, error=error, body=body)

