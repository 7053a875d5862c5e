"""Business Central writes: create (documents with lines), update, delete and the bound
posting actions."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from ..bc_schema import BC_SERVICE
from ..odata.replies import JSON_UTF8, Reply
from ..schema import EntityDef
from ..store import KeyExistsError
from .common import (
    BCError,
    Target,
    line_amounts,
    today_iso,
    type_name,
)
from .rules import BusinessCentralRules


class BusinessCentralWrites(BusinessCentralRules):
    """Creating, updating, deleting and posting records."""

    @contextmanager
    def _atomic(self) -> Iterator[None]:
        try:
            with self.store.transaction():
                yield
        except KeyExistsError as exc:
            raise BCError(400, "Internal_EntityWithSameKeyExists", str(exc)) from None

    def _create(self, entity: EntityDef, target: Target, payload: dict[str, Any]) -> Reply:
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
        return Reply(201, body, {"content-type": JSON_UTF8,
                                 "location": location, "etag": body["@odata.etag"]})

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
        changes.setdefault(date_field, today_iso())
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
        line_amounts(changes)
        row = self.store.insert(self._qualified(entity), changes)
        if recompute:
            self._recompute_totals(parent, document_id)
        return dict(row)

    def _update(self, entity: EntityDef, target: Target, payload: dict[str, Any],
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
            self._check_record_editable(entity, row)
            changes = self._validate(entity, payload, creating=False)
            self._check_unique(entity, changes, own_id=row["id"])
            self._derive(entity, changes)
            self._derive_sales_price(entity, changes, row)
            if entity.extra.get("lines") and ({"customerId", "customerNumber"} & set(changes)):
                customer = self._customer_for(changes)
                if customer is not None:
                    self._apply_customer(entity, changes, customer)
            if entity.parent:
                changes = self._line_changes(entity, row, changes)
            updated = self.store.update(self._qualified(entity), row["id"], changes)
            if entity.name == "contacts":
                self._refresh_relations(updated)
            elif entity.name == "customers":
                self._update_company_contacts(updated, changes)
            if entity.parent:
                self._recompute_totals(self._entity(entity.parent), row["documentId"])
                updated = self.store.get(self._qualified(entity), row["id"]) or updated
        body = {"@odata.context": f"{target.api_root}$metadata#companies({target.company})/"
                                  f"{entity.name}/$entity"}
        body.update(self._wire(entity, updated))
        return Reply(200, body, {"content-type": JSON_UTF8,
                                 "etag": body["@odata.etag"]})

    def _delete(self, entity: EntityDef, target: Target, headers: Mapping[str, str]) -> Reply:
        assert target.key is not None
        with self._atomic():
            row = self._fetch(entity, target.key)
            self._check_etag(row, headers)
            if entity.name == "companies":
                raise BCError(405, "BadRequest_MethodNotAllowed",
                              "'DELETE' requests for 'companies' are not allowed.")
            self._check_record_editable(entity, row)
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

    def _action(self, entity: EntityDef, target: Target) -> Reply:
        assert target.key is not None
        actions = {("salesOrders", "shipAndInvoice"): self._ship_and_invoice,
                   ("salesInvoices", "post"): self._post_invoice}
        handler = actions.get((entity.name, target.action or ""))
        if handler is None:
            raise BCError(400, "BadRequest_NotFound",
                          f"The action 'Microsoft.NAV.{target.action}' is not bound to "
                          f"'{type_name(entity.name)}'.")
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
        today = today_iso()
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
