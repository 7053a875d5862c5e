"""NAV page writes: POST (insert), PATCH (modify) and DELETE, each run by the Business Central
emulation on the same rows, so both services apply one set of rules (validation, table
relations, number series, customer contacts, document lines and totals).

A write is translated field by field (:class:`.view.PageView`), sent to
:class:`~..business_central.BusinessCentralService` as the matching API request, and its answer
translated back: the record as the page shows it, or the error in NAV's shape (no correlation
id; ``409 Request_EntityChanged`` becomes NAV's ``412``, as the page web services answer an
``If-Match`` that no longer matches — "OData Web Services", optimistic concurrency).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from ..bc_schema import bc_entity
from ..business_central import BusinessCentralService
from ..business_central.common import CUSTOM_API, STANDARD_API
from ..odata.replies import JSON_UTF8, Reply, json_object
from ..odata.service import ServiceContext
from .common import NavError, Target, key_literal
from .pages import Page
from .reads import NavReads
from .view import PageView

_CORRELATION = re.compile(r"\s+CorrelationId:\s+[0-9a-f-]{36}\.$")
_STATUS = {409: 412}
"""BC status → NAV status (a stale ``If-Match``)."""


class _Delegate(BusinessCentralService):
    """The BC service the NAV pages write through. NAV's Sales Prices page (7002) is
    editable, unlike the custom API's read-only ``salesPrices`` page, so it may write it."""

    admin = True


class NavWrites(NavReads):
    """Creating, modifying and deleting through a page."""

    def __init__(self, ctx: ServiceContext) -> None:
        super().__init__(ctx)
        self._bc = _Delegate(ctx)

    def _bc_path(self, page: Page, suffix: str = "") -> str:
        """The BC API path of the page's entity set (relative to the ``/bc`` mount)."""
        info = self.ctx.info
        entity = bc_entity(page.entity)
        assert entity is not None
        api = CUSTOM_API if entity.extra.get("api") == "custom" else STANDARD_API
        return (f"/v2.0/{info.tenant}/{info.environment}/api/{api}/"
                f"companies({info.company_id})/{page.entity}{suffix}")

    def _through_bc(self, method: str, path: str, headers: Mapping[str, str],
                    payload: Mapping[str, Any] | None, view: PageView) -> Reply:
        """Run one BC request; its error as NAV's."""
        body = json.dumps(payload).encode() if payload is not None else b""
        reply = self._bc.handle(method, path, "", headers, body)
        if reply.status < 400:
            return reply
        error = reply.body.get("error", {}) if isinstance(reply.body, dict) else {}
        message = _CORRELATION.sub("", str(error.get("message", "")))
        for bc_name, nav_name in view.bc_names().items():
            message = message.replace(f"'{bc_name}'", f"'{nav_name}'")
        raise NavError(_STATUS.get(reply.status, reply.status), str(error.get("code", "")),
                       message)

    @staticmethod
    def _json(body: bytes) -> dict[str, Any]:
        return json_object(
            body, lambda exc: NavError(400, "BadRequest",
                                       f"The request body is not valid JSON: {exc.args[0]}."),
            lambda: NavError(400, "BadRequest", "The request body must be a JSON object."))

    def _written(self, target: Target, view: PageView, row_id: str, status: int) -> Reply:
        """The record as the page shows it after a write."""
        row = self.store.get(f"business_central:{view.page.entity}", row_id)
        assert row is not None
        numbers = self._numbers(view, [row])
        record = view.wire(row, None, numbers)
        headers = {"content-type": JSON_UTF8, "etag": record["@odata.etag"]}
        if status == 201:
            headers["location"] = target.record_url(view.key_values(row, numbers))
        return Reply(status, {"@odata.context": target.context + "/$entity", **record},
                     headers)

    def _check_editable(self, page: Page, method: str) -> None:
        if not page.editable:
            raise NavError(405, "BadRequest_MethodNotAllowed",
                           f"'{method}' requests for '{page.service}' of EdmType 'Entity' are "
                           "not allowed within Microsoft Dynamics NAV OData web services.")

    def _insert(self, target: Target, body: bytes) -> Reply:
        page = target.page
        assert page is not None
        self._check_editable(page, "POST")
        view = self._view(page)
        sent = self._json(body)
        payload = view.payload(sent, creating=True)
        self._check_new_key(view, sent)
        path = self._bc_path(page)
        if page.parent:
            path = self._line_path(page, payload)
        reply = self._through_bc("POST", path, {}, payload, view)
        return self._written(target, view, reply.body["id"], 201)

    def _check_new_key(self, view: PageView, sent: Mapping[str, Any]) -> None:
        """A page whose table key spans several fields (Sales Price) refuses a second record
        with the same key, as the table's primary key does; single-field keys ("No.",
        "Code") are checked by the BC rules, lines get the next line number."""
        page = view.page
        if page.parent or view.entity.extra.get("natural_key"):
            return
        key = {name: view.shown(view.field(name), sent) for name in page.keys}
        where, args = view.key_where(key)
        if self.store.query(f"business_central:{page.entity}", where, args, limit=1):
            shown = ",".join(f"{name}={key_literal(value)}" for name, value in key.items())
            raise NavError(400, "Internal_EntityWithSameKeyExists",
                           f"The record in table {view.entity.extra.get('label')} already "
                           f"exists. Identification fields and values: {shown}")

    def _line_path(self, page: Page, payload: dict[str, Any]) -> str:
        """A new line goes to its document: ``Document_No`` names the header."""
        number = payload.pop("documentId", None)
        parent = bc_entity(page.parent or "")
        assert parent is not None
        headers = self.store.query(f"business_central:{parent.name}", '"number" = ?',
                                   [number], limit=1) if number else []
        if not headers:
            raise NavError(400, "BadRequest", f"Document_No must name an existing document; "
                                              f"'{number or ''}' does not.")
        self._check_new_line(page, headers[0], payload)
        info = self.ctx.info
        return (f"/v2.0/{info.tenant}/{info.environment}/api/{STANDARD_API}/"
                f"companies({info.company_id})/{parent.name}({headers[0]['id']})/"
                f"{page.entity}")

    def _check_new_line(self, page: Page, header: Mapping[str, Any],
                        payload: Mapping[str, Any]) -> None:
        """Sales Line rules of NAV that the Business Central emulation leaves out: the table's
        primary key (Document Type, Document No., Line No.) refuses a line number the document
        already has, and Unit of Measure Code must name a unit (an item line's relation is Item
        Unit of Measure, whose codes are units of measure)."""
        entity = bc_entity(page.entity)
        assert entity is not None
        label = entity.extra.get("label")
        line_no = payload.get("sequence")
        if line_no and self.store.query(f"business_central:{page.entity}",
                                        '"documentId" = ? AND "sequence" = ?',
                                        [str(header["id"]).lower(), line_no], limit=1):
            kind = page.field("Document_Type")
            raise NavError(400, "Internal_EntityWithSameKeyExists",
                           f"The record in table {label} already exists. Identification fields "
                           f"and values: Document_Type={key_literal(kind and kind.constant)},"
                           f"Document_No={key_literal(header['number'])},"
                           f"Line_No={key_literal(line_no)}")
        unit = payload.get("unitOfMeasureCode")
        if unit and not self.store.query("business_central:unitsOfMeasure", '"code" = ?',
                                         [unit], limit=1):
            table = {"Item": "Item Unit of Measure", "Resource": "Resource Unit of Measure"
                     }.get(payload.get("lineType") or "Item", "Unit of Measure")
            raise NavError(400, "Internal_InvalidTableRelation",
                           f"The field Unit of Measure Code of table {label} contains a value "
                           f"({unit}) that cannot be found in the related table ({table}).")

    def _modify(self, target: Target, headers: Mapping[str, str], body: bytes) -> Reply:
        page = target.page
        assert page is not None and target.key is not None
        self._check_editable(page, "PATCH")
        view = self._view(page)
        row = self._find(page, target.key)
        payload = view.payload(self._json(body), creating=False)
        self._through_bc("PATCH", self._bc_path(page, f"({row['id']})"),
                         _if_match(headers), payload, view)
        return self._written(target, view, row["id"], 200)

    def _remove(self, target: Target, headers: Mapping[str, str]) -> Reply:
        page = target.page
        assert page is not None and target.key is not None
        self._check_editable(page, "DELETE")
        view = self._view(page)
        row = self._find(page, target.key)
        self._through_bc("DELETE", self._bc_path(page, f"({row['id']})"), _if_match(headers),
                         None, view)
        return Reply(204)


def _if_match(headers: Mapping[str, str]) -> dict[str, str]:
    """Only the header the BC rules look at; NAV's etags are the same weak etags."""
    value = headers.get("if-match")
    return {"if-match": value} if value is not None else {}
