"""The sales-order follow-up's steps against a state database and scripted services: which
gone BC orders count as posted (this run's invoices, or an earlier invoice found by one more
read) and which as deleted, what the CRM orders get, and how failed writes are reported."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import polars as pl
import pytest

from nav_crm_ops.connectors.models import WriteOp, WriteOutcome
from nav_crm_ops.engine.mapping import MappingSet
from nav_crm_ops.engine.order_status import INVOICED, REOPENED, SalesOrderFollowUp
from nav_crm_ops.store import StateStore

ORDERS = "SALES ORDERS"
MARK = "2024-01-01T00:00:00.000Z"


class FakeBC:
    """Business Central as the follow-up reads it: the orders still there, this run's posted
    invoices (``read``) and older posted invoices (``read_by_ids`` on salesInvoices)."""

    def __init__(self, alive: list[str], invoices: list[dict[str, Any]],
                 older: list[dict[str, Any]]) -> None:
        self.alive, self.invoices, self.older = alive, invoices, older
        self.stats = SimpleNamespace(requests=0)
        self.asked_older: list[list[str]] = []

    def read(self, entity: str, **_: Any) -> pl.DataFrame:
        self.stats.requests += 1
        return pl.DataFrame(self.invoices)

    def read_by_ids(self, entity: str, key: str, ids: list[str], **_: Any) -> pl.DataFrame:
        self.stats.requests += 1
        if entity == "salesInvoices":
            self.asked_older.append(list(ids))
            return pl.DataFrame([r for r in self.older if r["orderNumber"] in ids],
                                schema={"id": pl.Utf8, "orderNumber": pl.Utf8})
        return pl.DataFrame({key: [i for i in ids if i in self.alive]}, schema={key: pl.Utf8})


class FakeDataverse:
    """Dataverse that records every write and fails the updates of ``failing`` records."""

    def __init__(self, failing: set[str]) -> None:
        self.failing = failing
        self.writes: list[WriteOp] = []
        self.stats = SimpleNamespace(requests=0)

    def write(self, ops: list[WriteOp]) -> list[WriteOutcome]:
        self.stats.requests += 1
        self.writes += ops
        return [WriteOutcome(op.op_id, op.key not in self.failing, 204 if op.key not in
                             self.failing else 412) for op in ops]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[StateStore]:
    opened = StateStore.open(tmp_path / "state.db")
    yield opened
    opened.close()


def _follow_up(store: StateStore, bc: FakeBC, crm: FakeDataverse) -> SalesOrderFollowUp:
    connections: Any = SimpleNamespace(business_central=bc, dataverse=crm,
                                       business_central_for=lambda api: bc)
    return SalesOrderFollowUp(MappingSet.load(), store, connections)


def _invoice(invoice_id: str, order: str, customer: str = "c-9") -> dict[str, Any]:
    return {"id": invoice_id, "number": f"PS-{invoice_id}", "orderNumber": order,
            "customerId": customer, "customerNumber": "10000",
            "totalAmountIncludingTax": 10.0, "currencyCode": "EUR",
            "lastModifiedDateTime": "2024-01-02T00:00:00Z"}


def test_gone_orders_become_invoiced_or_active_and_posted_ones_link_their_invoice(
        store: StateStore) -> None:
    store.upsert_couplings(ORDERS, [
        {"nav_id": "o-alive", "crm_id": "crm-alive", "nav_key": "SO1"},
        {"nav_id": "o-now", "crm_id": "crm-now", "nav_key": "SO2"},
        {"nav_id": "o-before", "crm_id": "crm-before", "nav_key": "SO3"},
        {"nav_id": "o-deleted", "crm_id": "crm-deleted", "nav_key": "SO4"}])
    store.upsert_couplings("POSTEDSALESINV-INV", [{"nav_id": "inv-2", "crm_id": "crm-inv-2"}])
    store.set_watermark(f"{ORDERS} POSTS", "nav", MARK)
    bc = FakeBC(["o-alive"], [_invoice("INV-2", "SO2")], [{"id": "INV-3", "orderNumber": "SO3"}])
    crm = FakeDataverse(set())
    follow_up = _follow_up(store, bc, crm)

    result = follow_up.run(MappingSet.load().get(ORDERS))

    assert result.status == "finished"
    assert bc.asked_older == [["SO3", "SO4"]]
    updates = {op.key: op.payload for op in crm.writes if op.entity_set == "salesorders"}
    assert updates == {"crm-now": INVOICED, "crm-before": INVOICED,
                       "crm-deleted": {**REOPENED, "nav_bcordernumber": None}}
    links = [op for op in crm.writes if op.entity_set == "invoices"]
    assert [(op.key, op.binds) for op in links] == [
        ("crm-inv-2", {"salesorderid": "/salesorders(crm-now)"})]
    assert result.count("modified") == 3 and result.count("uncoupled") == 3
    assert store.couplings_frame(ORDERS)["nav_id"].to_list() == ["o-alive"]


def test_failed_updates_keep_the_coupling_and_are_reported(store: StateStore) -> None:
    store.upsert_couplings(ORDERS, [
        {"nav_id": "o-now", "crm_id": "crm-now", "nav_key": "SO2"},
        {"nav_id": "o-deleted", "crm_id": "crm-deleted", "nav_key": "SO4"}])
    store.set_watermark(f"{ORDERS} POSTS", "nav", MARK)
    bc = FakeBC([], [_invoice("INV-2", "SO2")], [])
    crm = FakeDataverse({"crm-now", "crm-deleted"})

    result = _follow_up(store, bc, crm).run(MappingSet.load().get(ORDERS))

    assert result.status == "failed"
    assert result.count("failed") == 2 and result.count("modified") == 0
    messages = sorted(store.record_errors_frame(ORDERS)["message"].to_list())
    assert messages == [
        "could not return the CRM order to Active (the BC order was deleted): HTTP 412",
        "could not set the CRM order to Invoiced (BC posted it): HTTP 412"]
    assert sorted(store.couplings_frame(ORDERS)["nav_id"].to_list()) == ["o-deleted", "o-now"]


def test_nothing_gone_writes_nothing(store: StateStore) -> None:
    store.upsert_couplings(ORDERS, [{"nav_id": "o-alive", "crm_id": "crm-alive",
                                     "nav_key": "SO1"}])
    crm = FakeDataverse(set())

    result = _follow_up(store, FakeBC(["o-alive"], [], []), crm).run(
        MappingSet.load().get(ORDERS))

    assert result.status == "finished"
    assert crm.writes == []
    assert store.watermarks(f"{ORDERS} POSTS")["nav"]
