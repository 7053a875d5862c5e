"""NAV page web services: a document (a sales order) created with its lines, one request each.

Business Central's API creates a document with its lines in one request (deep insert), so the
engine hands a connector one create whose payload carries the lines under the lines' entity
set (``payload["salesOrderLines"] = [...]``, see ``engine/sync/applier.py``). NAV 2018 documents
neither deep insert nor ``$batch`` for page web services, so :class:`DocumentWriter` writes
such a create as NAV's own client would, with the same guarantees:

1. POST the header to its page (``SalesOrder``) without the lines; NAV gives it the next number
   of the number series (``No``);
2. POST each line to the lines page (``SalesOrderSalesLines``) naming its document
   (``Document_Type``, ``Document_No``) and its ``Line_No`` (10000 times its position, as NAV numbers
   lines);
3. when NAV refuses a line, or a line's fate cannot be known, DELETE the header again (with
   ``If-Match``; NAV deletes its lines with it), so no document is ever left without its lines,
   and report the document failed with the line's reason.

A reply lost after NAV committed (reset, 502/504) is never answered by sending the header
again: the connector's single-request writer settles it by the natural key the create sent
(``Your_Reference`` = the CRM order number, inside the mapping's filter), and a line by its key
(document and line number); what is missing is then sent, what is there is kept.

The table :data:`DOCUMENTS` says which entity sets are such documents, with which lines page and
key fields. :data:`FIXED_KEY_PARTS` names the key fields that hold one value on a page
(``Document_Type`` is always ``Order`` on the Sales Order pages), so a record id is what a person
calls the record (``1001``) while URLs carry the whole key (``Document_Type='Order',No='1001'``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from ..exceptions import ConnectorError, TransientError
from .models import WriteOp, WriteOutcome
from .odata import F

if TYPE_CHECKING:
    from .nav_odata import NavODataV4

__all__ = ["DOCUMENTS", "FIXED_KEY_PARTS", "DocumentPages", "DocumentWriter", "document_pages",
           "full_key", "own_key_fields"]

SERVICE = "nav"


@dataclass(frozen=True)
class DocumentPages:
    """A document entity set whose lines are written through their own page.

    ``lines`` is the lines' entity set, which is also the payload key the engine puts the lines
    under (the mapping's ``lines.nav.navigation``); ``fixed`` the key fields both pages hold one
    value in; ``number`` the header field NAV numbers the document in; ``document_no`` and
    ``line_no`` the line fields naming its document and its place."""

    header: str
    lines: str
    fixed: Mapping[str, str] = field(default_factory=dict)
    number: str = "No"
    document_no: str = "Document_No"
    line_no: str = "Line_No"
    line_step: int = 10000

    def line_key(self, number: str, line_no: int) -> dict[str, Any]:
        """The full key of one line (``Document_Type``, ``Document_No``, ``Line_No``)."""
        return {**self.fixed, self.document_no: number, self.line_no: line_no}


DOCUMENTS: dict[str, DocumentPages] = {
    "salesOrders": DocumentPages("salesOrders", "salesOrderLines", {"Document_Type": "Order"}),
}
"""The documents NAV pages publish as a header page and a lines page (page 42 Sales Order and
page 46 Sales Order Subform), keyed by the header's entity set."""

FIXED_KEY_PARTS: dict[str, dict[str, str]] = {
    name: dict(pages.fixed) for document in DOCUMENTS.values()
    for name, pages in ((document.header, document), (document.lines, document))}
"""Entity set -> key fields with one value on its page (left out of record ids)."""

_NAMED_PART = re.compile(r"(?:^|,)\s*([A-Za-z_][A-Za-z0-9_]*)\s*=")


def own_key_fields(entity_set: str, fields: tuple[str, ...]) -> tuple[str, ...]:
    """The key fields a record id names: the one field left when the page's fixed parts are
    taken out (a sales order's ``No``); otherwise the whole key (a line's id stays its full
    key segment, which no person types)."""
    fixed = FIXED_KEY_PARTS.get(entity_set, {})
    own = tuple(name for name in fields if name not in fixed)
    return own if len(own) == 1 else fields


def full_key(entity_set: str, fields: tuple[str, ...], key: str) -> dict[str, Any] | str:
    """A record id as the whole key of ``entity_set``'s page: ``1001`` becomes ``{Document_Type:
    'Order', No: '1001'}``, a key segment without the fixed parts gets them in front; any other
    key is returned as given."""
    fixed = FIXED_KEY_PARTS.get(entity_set)
    if not fixed:
        return key
    named = set(_NAMED_PART.findall(key))
    own = [name for name in fields if name not in fixed]
    if not named and len(own) == 1:
        return {name: fixed.get(name, key) for name in fields}
    missing = [name for name in fields if name in fixed and name not in named]
    if not named or not missing:
        return key
    return ",".join([*(f"{name}='{fixed[name]}'" for name in missing), key])


def document_pages(op: WriteOp) -> DocumentPages | None:
    """The document table entry of a create that carries its lines (None for any other op)."""
    pages = DOCUMENTS.get(op.entity_set)
    if op.kind != "create" or pages is None or not isinstance(op.payload.get(pages.lines), list):
        return None
    return pages


Send = Callable[[WriteOp], WriteOutcome]
"""The connector's single-request writer: one op, a lost reply settled (never sent blind)."""


@dataclass(frozen=True)
class _LineFailure:
    """Why the document cannot keep its lines: the line's position and its outcome."""

    position: int
    outcome: WriteOutcome


class DocumentWriter:
    """Creates one document with its lines through a NAV client (module docstring)."""

    def __init__(self, client: NavODataV4, pages: DocumentPages, send: Send) -> None:
        self.client = client
        self.pages = pages
        self.send = send

    def create(self, op: WriteOp) -> WriteOutcome:
        """The outcome of ``op`` (a create carrying its lines): ok with the header as NAV shows
        it once every line is there, or failed with nothing left behind (or said so)."""
        pages = self.pages
        lines = list(op.payload[pages.lines])
        header_op = replace(op, payload={k: v for k, v in op.payload.items() if k != pages.lines})
        header = self.send(header_op)
        if not header.ok:
            return header
        number = str((header.body if isinstance(header.body, dict) else {}).get(pages.number)
                     or "")
        if not number:
            return WriteOutcome(op.op_id, False, header.status, op.key, error=TransientError(
                f"{SERVICE} {op.entity_set}: NAV answered the header's POST without the record "
                f"(no {pages.number}), so its lines cannot be written; the next run matches it "
                "by its reference before it creates anything", service=SERVICE,
                entity=op.entity_set, status=header.status))
        present = self._present_lines(number) if header.already_existed else set()
        for position, line in enumerate(lines, start=1):
            line_no = int(line.get(pages.line_no) or pages.line_step * position)
            if line_no in present:
                continue
            written = self.send(self._line_op(op, number, line_no, line))
            if not written.ok:
                return self._undo(op, number, _LineFailure(position, written))
        return self._done(op, header, number)

    def _line_op(self, op: WriteOp, number: str, line_no: int,
                 line: Mapping[str, Any]) -> WriteOp:
        """The POST of one line; a lost reply is settled by the line's key."""
        key = self.pages.line_key(number, line_no)
        return WriteOp.create(self.pages.lines, {**line, **key}, natural_key=key,
                              op_id=f"{op.op_id}:{line_no}")

    def _present_lines(self, number: str) -> set[int]:
        """Line numbers a header found again (after a lost reply) already has."""
        rows = self.client.read(self.pages.lines, select=[self.pages.line_no],
                                filter=F(self.pages.document_no).eq(number))
        return {int(value) for value in rows[self.pages.line_no].to_list() if value is not None}

    def _done(self, op: WriteOp, header: WriteOutcome, number: str) -> WriteOutcome:
        """The created document as NAV shows it now (its lines changed its totals and, on some
        servers, its version)."""
        try:
            record = self.client.get(self.pages.header, number)
        except ConnectorError:
            record = dict(header.body)
        return WriteOutcome(op.op_id, True, header.status, number,
                            str(record.get("@odata.etag", header.etag)),
                            already_existed=header.already_existed, body=record)

    def _undo(self, op: WriteOp, number: str, failure: _LineFailure) -> WriteOutcome:
        """Delete the header whose line failed (its lines go with it) and report the line's
        reason; when the delete fails too, say which order to delete by hand."""
        line = failure.outcome
        cause = line.error
        reason = str(cause) if cause is not None else f"HTTP {line.status}"
        deleted = self._delete_header(op, number)
        if deleted.ok:
            told = (f"line {failure.position}: {reason} (the {self.pages.header} header "
                    f"{number} NAV had created for it was deleted again, so no document is left "
                    "without its lines)")
        else:
            told = (f"line {failure.position}: {reason}; deleting the {self.pages.header} header "
                    f"{number} again failed too ({deleted.error}): delete NAV document {number} "
                    "by hand before the next run, or it is matched with missing lines")
        return WriteOutcome(op.op_id, False, line.status, op.key,
                            error=_reworded(cause, told, op.entity_set), body=line.body)

    def _delete_header(self, op: WriteOp, number: str) -> WriteOutcome:
        """DELETE the header with ``If-Match`` of the version just read."""
        try:
            etag = str(self.client.get(self.pages.header, number).get("@odata.etag") or "*")
        except ConnectorError as error:
            return WriteOutcome(op.op_id, False, error.status, number, error=error)
        return self.send(WriteOp.delete(self.pages.header, number, if_match=etag,
                                        op_id=f"{op.op_id}:undo"))


def _reworded(cause: ConnectorError | None, message: str, entity: str) -> ConnectorError:
    """``cause`` (same class, so transient stays transient) with the document's message."""
    if cause is None:
        return TransientError(message, service=SERVICE, entity=entity)
    return type(cause)(message, service=cause.service, entity=entity,
                       record_key=cause.record_key, status=cause.status, code=cause.code,
                       service_message=cause.service_message,
                       correlation_id=cause.correlation_id, response_body=cause.response_body)
