"""Business Central business rules: payload validation, table relations, numbering, customer
contacts, document lines and totals."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, timedelta
from typing import Any

from ..bc_schema import BC_SERVICE
from ..price_lists import CUSTOMER_PRICE_GROUP, price_list_code
from ..schema import EntityDef
from .common import (
    CUSTOMER_TO_CONTACT,
    EMPTY_GUID,
    LINE_COMPUTED,
    LINE_RESOLVED,
    LOCAL_CURRENCY,
    NUMBER_PREFIXES,
    TABLE_RELATIONS,
    TAX_PERCENT,
    BCError,
    etag_for,
    line_amounts,
    type_name,
)
from .computed import BusinessCentralComputed
from .values import coerce_value


class BusinessCentralRules(BusinessCentralComputed):
    """Checks and side effects applied to writes."""

    def _validate(self, entity: EntityDef, payload: Mapping[str, Any],
                  creating: bool) -> dict[str, Any]:
        """Payload → store changes, raising BC's errors for bad properties and values."""
        changes = _payload_changes(entity, payload, creating)
        for name, relation in TABLE_RELATIONS.items():
            value = changes.get(name)
            if not value or entity.column(name) is None or entity.name == relation[0]:
                continue
            if name == "currencyCode" and value == LOCAL_CURRENCY and entity.name != "salesPrices":
                # The API shows LCY as its code on customers and documents; a sales price
                # keeps LCY blank and its Currency Code relation refuses the LCY code.
                continue
            found = self._related(entity.extra.get("label"), relation, value)
            if name == "currencyCode" and entity.column("currencyId") is not None:
                changes["currencyId"] = found["id"]
        if changes.get("currencyCode") == LOCAL_CURRENCY and entity.column("currencyId"):
            changes["currencyId"] = EMPTY_GUID
        return changes

    def _related(self, label: str | None, relation: tuple[str, str, str, str],
                 value: Any) -> dict[str, Any]:
        """The row a field's value names in its related table, or BC's relation error."""
        target, code_column, caption, table = relation
        found = self.store.query(f"{BC_SERVICE}:{target}", f'"{code_column}" = ?',
                                 [value], limit=1)
        if not found:
            raise BCError(400, "Internal_InvalidTableRelation",
                          f"The field {caption} of table "
                          f"{label} contains a value ({value}) that "
                          f"cannot be found in the related table ({table}).")
        return dict(found[0])

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
        if len(number) > number_column.max_length or self.store.query(
                self._qualified(contacts), '"number" = ?', [number], limit=1):
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
                company = self._related("Contact", ("contacts", "number", "Company No.",
                                                    "Contact"), changes["companyNumber"])
                changes["companyName"] = company["displayName"]
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
        for name, *relation in relations:
            value = merged.get(name)
            if name not in changes and row is not None and sales_type == row.get("salesType"):
                continue
            if value:
                self._related("Sales Price", (relation[0], relation[1], relation[2],
                                              relation[3]), value)
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

    def _due_date(self, customer: Mapping[str, Any], start: str) -> str:
        days = 30
        if customer.get("paymentTermsId"):
            terms = self.store.get(f"{BC_SERVICE}:paymentTerms", customer["paymentTermsId"])
            match = re.fullmatch(r"(\d+)D", (terms or {}).get("dueDateCalculation") or "")
            if match:
                days = int(match.group(1))
        return (date.fromisoformat(start) + timedelta(days=days)).isoformat()

    def _resolve_line(self, changes: dict[str, Any], header: Mapping[str, Any]) -> None:
        line_type = changes.setdefault("lineType", "Item")
        if line_type == "Item":
            self._resolve_item(changes)
        elif line_type == "Resource":
            self._resolve_resource(changes)
        customer = self.store.get(f"{BC_SERVICE}:customers", header["customerId"])
        taxable = bool(customer and customer["taxLiable"])
        changes.setdefault("taxPercent", TAX_PERCENT if taxable else 0.0)
        if header.get("postingDate"):
            changes.setdefault("shipmentDate", header["postingDate"])

    def _resolve_item(self, changes: dict[str, Any]) -> None:
        """An item line takes the item's number, description, unit and price."""
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

    def _resolve_resource(self, changes: dict[str, Any]) -> None:
        """A resource line takes the resource's name, unit and price."""
        found = self.store.query(f"{BC_SERVICE}:resources", '"number" = ?',
                                 [changes.get("lineObjectNumber") or ""], limit=1)
        if not found:
            raise BCError(404, "Internal_RecordNotFound",
                          "The Resource does not exist. Identification fields and values: "
                          f"No.='{changes.get('lineObjectNumber') or ''}'")
        changes.setdefault("description", found[0]["name"])
        changes.setdefault("unitOfMeasureCode", found[0]["baseUnitOfMeasureCode"])
        changes.setdefault("unitPrice", found[0]["unitPrice"])

    def _line_changes(self, entity: EntityDef, row: Mapping[str, Any],
                      changes: dict[str, Any]) -> dict[str, Any]:
        """A line's changes plus what follows from them: a new item or type is resolved
        again (its derived fields unless sent), the amounts are computed again."""
        merged = {**row, **changes}
        if {"itemId", "lineObjectNumber", "lineType"} & set(changes):
            if "itemId" not in changes:
                merged.pop("itemId", None)
            for derived in ("description", "unitPrice", "unitOfMeasureCode",
                            "unitOfMeasureId"):
                if derived not in changes:
                    merged.pop(derived, None)
            header = self._fetch(self._entity(entity.parent or ""), row["documentId"])
            self._resolve_line(merged, header)
        line_amounts(merged)
        result = {k: merged[k] for k in merged
                  if k in changes or k in LINE_COMPUTED or k in LINE_RESOLVED}
        result.pop("id", None)
        return result

    def _check_record_editable(self, entity: EntityDef, row: Mapping[str, Any]) -> None:
        """A line is editable when its document is; a document when it is not posted."""
        if entity.parent:
            parent = self._entity(entity.parent)
            self._ensure_editable(parent, self._fetch(parent, row["documentId"]))
        else:
            self._ensure_editable(entity, row)

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


def _payload_changes(entity: EntityDef, payload: Mapping[str, Any],
                     creating: bool) -> dict[str, Any]:
    """The payload's writable properties, each value checked and converted."""
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
                          f"'{type_name(entity.name)}'. Make sure to only use property "
                          "names that are defined by the type.")
        if column.read_only:
            continue
        changes[name] = coerce_value(entity, column, value)
    return changes
