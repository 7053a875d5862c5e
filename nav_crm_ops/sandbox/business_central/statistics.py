"""The computed customer entities ``customerFinancialDetails`` and ``customerStatistics``:
figures summed over the customer's invoices, orders and order lines."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..bc_schema import BC_SERVICE
from .common import etag_for, today_iso

Rows = list[dict[str, Any]]
DRAFT = ("Draft", "In Review")


@dataclass
class Documents:
    """Invoices, orders and order lines grouped by customer/document, read once per request."""

    invoices: dict[str, Rows]
    orders: dict[str, Rows]
    order_lines: dict[str, Rows]

    @classmethod
    def load(cls, store: Any, *, with_orders: bool) -> Documents:
        def group(entity: str, column: str) -> dict[str, Rows]:
            grouped: dict[str, Rows] = {}
            for row in store.query(f"{BC_SERVICE}:{entity}"):
                grouped.setdefault(row[column], []).append(row)
            return grouped

        if not with_orders:
            return cls(group("salesInvoices", "customerId"), {}, {})
        return cls(group("salesInvoices", "customerId"), group("salesOrders", "customerId"),
                   group("salesOrderLines", "documentId"))


def _total(rows: Iterable[Mapping[str, Any]], column: str) -> float:
    return round(sum((row[column] or 0.0) for row in rows), 2)


def _invoice_figures(invoices: Rows) -> dict[str, float]:
    today = today_iso()
    posted = [i for i in invoices if i["status"] not in DRAFT]
    open_ = [i for i in posted if i["status"] == "Open"]
    return {"balance": _total(open_, "remainingAmount"),
            "overdue": _total((i for i in open_ if (i["dueDate"] or today) < today),
                              "remainingAmount"),
            "total_sales": _total(posted, "totalAmountExcludingTax"),
            "drafts": _total((i for i in invoices if i["status"] in DRAFT),
                             "totalAmountIncludingTax")}


def _shipped_not_invoiced(orders: Rows, documents: Documents) -> float:
    shipped = 0.0
    for order in orders:
        for line in documents.order_lines.get(order["id"], []):
            pending = (line["shippedQuantity"] or 0.0) - (line["invoicedQuantity"] or 0.0)
            shipped += pending * (line["unitPrice"] or 0.0)
    return round(shipped, 2)


def customer_statistics(name: str, customer: Mapping[str, Any],
                        documents: Documents) -> dict[str, Any]:
    """One record of ``name`` (``customerFinancialDetails`` or ``customerStatistics``)."""
    invoices = documents.invoices.get(customer["id"], [])
    figures = _invoice_figures(invoices)
    newest = max([customer["_version"], *(i["_version"] for i in invoices)])
    etag = etag_for(f"{newest}{len(invoices)}")
    if name == "customerFinancialDetails":
        return {"@odata.etag": etag, "id": customer["id"], "number": customer["number"],
                "balance": figures["balance"], "totalSalesExcludingTax": figures["total_sales"],
                "overdueAmount": figures["overdue"]}
    orders = documents.orders.get(customer["id"], [])
    return {"@odata.etag": etag, "id": customer["id"], "customerNumber": customer["number"],
            "customerName": customer["displayName"] or "", "balance": figures["balance"],
            "outstandingOrders": _total(orders, "totalAmountIncludingTax"),
            "shippedNotInvoiced": _shipped_not_invoiced(orders, documents),
            "outstandingInvoices": figures["drafts"], "overdueAmount": figures["overdue"],
            "totalSales": figures["total_sales"]}
