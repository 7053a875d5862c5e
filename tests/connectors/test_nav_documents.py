"""The NAV connector writes a sales order with its lines as NAV 2018's page web services allow
(no deep insert, no ``$batch``): the header to page 42, then each line to page 46, the header
deleted again when a line cannot be written, lost replies settled by key and never sent blind.

Against the sandbox's NAV pages over real loopback HTTP; replies are lost on the client side
after the server ran the request (:class:`~tests.engine.test_nav_orders.LoseReplies`), since the
sandbox's fault injection does not cover its NAV service."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from nav_crm_ops.config import DEFAULT_NAV_PAGES
from nav_crm_ops.connectors.auth import BasicAuth
from nav_crm_ops.connectors.http import RetryPolicy
from nav_crm_ops.connectors.models import WriteOp, WriteOutcome
from nav_crm_ops.connectors.nav_documents import DOCUMENTS, full_key, own_key_fields
from nav_crm_ops.connectors.nav_odata import NavODataV4
from nav_crm_ops.exceptions import TransientError, ValidationError
from nav_crm_ops.sandbox import Sandbox
from nav_crm_ops.sandbox.nav import nav_credentials
from nav_crm_ops.secrets import Secret
from tests.engine.test_nav_orders import LoseReplies

NO_WAIT = RetryPolicy(max_retries=3, base_delay_s=0.0, max_delay_s=0.0)
LINES = [{"Type": "Item", "No": "1896-S", "Quantity": 3, "Unit_Price": 120.5},
         {"Type": "Item", "No": "1900-S", "Unit_of_Measure_Code": "PCS", "Quantity": 1}]


def _never(_: httpx.Request) -> str | None:
    return None


@pytest.fixture
def connect(fresh_sandbox: Sandbox) -> Iterator[Callable[..., tuple[NavODataV4, LoseReplies]]]:
    """``connect(lose, **client_options)``: a NAV client of the sandbox whose replies
    ``lose`` chooses to lose (see :class:`LoseReplies`)."""
    info = fresh_sandbox.info
    credentials = nav_credentials(info)
    opened: list[NavODataV4] = []

    def make(lose: Callable[[httpx.Request], str | None] = _never,
             **options: Any) -> tuple[NavODataV4, LoseReplies]:
        transport = LoseReplies(lose)
        client = NavODataV4(info.nav_url, info.company_name,
                            BasicAuth(credentials.user, credentials.access_key),
                            pages=DEFAULT_NAV_PAGES, retry=NO_WAIT, transport=transport,
                            **options)
        opened.append(client)
        return client, transport

    yield make
    for client in opened:
        client.http.close()


def _order(reference: str, lines: list[dict[str, Any]] | None = None) -> WriteOp:
    """The create the engine hands over: the lines under the lines' entity set."""
    return WriteOp.create("salesOrders", {
        "Sell_to_Customer_No": "10000", "Your_Reference": reference,
        "External_Document_No": "Connector test", "salesOrderLines": list(lines or LINES)},
        natural_key={"Your_Reference": reference}, settle_filter="Your_Reference ne ''",
        op_id=reference)


def _lines(client: NavODataV4, number: str) -> list[tuple[Any, ...]]:
    rows = client.read("salesOrderLines", filter=f"Document_No eq '{number}'")
    return sorted((r["Line_No"], r["No"], r["Quantity"]) for r in rows.iter_rows(named=True))


def _orders(client: NavODataV4, reference: str) -> list[str]:
    rows = client.read("salesOrders", select=["No"], filter=f"Your_Reference eq '{reference}'")
    return [str(n) for n in rows["No"].to_list()]


def _write(client: NavODataV4, op: WriteOp) -> WriteOutcome:
    [outcome] = client.write([op])
    return outcome


def _post_to(page: str, *, times: int = 1,
             how: str = "reset") -> Callable[[httpx.Request], str | None]:
    left = [times]

    def lose(request: httpx.Request) -> str | None:
        if request.method == "POST" and request.url.path.endswith("/" + page) and left[0]:
            left[0] -= 1
            return how
        return None
    return lose


def test_record_ids_leave_the_fixed_document_type_out() -> None:
    """A sales order is ``1001`` to people and couplings; its URL names the whole page key."""
    client = NavODataV4("https://nav.example:7048/DynamicsNAV110/ODataV4/", "CRONUS",
                        BasicAuth("SYNC", Secret("key")), pages=DEFAULT_NAV_PAGES)
    keys = client.key_fields("salesOrders")
    assert own_key_fields("salesOrders", keys) == ("No",)
    assert full_key("salesOrders", keys, "1001") == {"Document_Type": "Order", "No": "1001"}
    assert client.record_id("salesOrders", {"Document_Type": "Order", "No": "1001"}) == "1001"
    assert client.record_path("salesOrders", "1001").endswith(
        "/SalesOrder(Document_Type='Order',No='1001')")
    # a line's id stays its whole key; a segment without the fixed part still finds it
    line = client.record_id("salesOrderLines",
                            {"Document_Type": "Order", "Document_No": "1001", "Line_No": 20000})
    assert line == "Document_Type='Order',Document_No='1001',Line_No=20000"
    assert client.record_path("salesOrderLines", "Document_No='1001',Line_No=20000").endswith(
        "/SalesOrderSalesLines(Document_Type='Order',Document_No='1001',Line_No=20000)")
    assert client.record_path("customers", "10000").endswith("/Customer('10000')")
    assert set(DOCUMENTS) == {"salesOrders"}


def test_order_is_written_header_then_each_line(
        connect: Callable[..., tuple[NavODataV4, LoseReplies]]) -> None:
    client, transport = connect()
    outcome = _write(client, _order("CT-1"))
    sent = list(transport.sent)
    assert outcome.ok and not outcome.already_existed, outcome.error
    number = outcome.id
    assert _orders(client, "CT-1") == [number] and outcome.body["No"] == number
    assert _lines(client, number) == [(10000, "1896-S", 3), (20000, "1900-S", 1)]
    assert [(m, where) for m, where, _ in sent] == [
        ("POST", "SalesOrder"), ("POST", "SalesOrderSalesLines"),
        ("POST", "SalesOrderSalesLines"),
        ("GET", f"SalesOrder(Document_Type='Order',No='{number}')")]
    # the outcome carries the header as it is now, lines and totals included
    now = client.get("salesOrders", number)
    assert (outcome.etag, outcome.body["Amount"]) == (now["@odata.etag"], now["Amount"])
    assert now["Amount"] > 3 * 120.5


def test_batch_servers_still_get_documents_one_request_at_a_time(
        connect: Callable[..., tuple[NavODataV4, LoseReplies]]) -> None:
    """BC on-premises accepts ``$batch``, but a page's document is still header then lines."""
    client, transport = connect(batch=True)
    outcome = _write(client, _order("CT-2"))
    assert outcome.ok, outcome.error
    assert not any(where == "$batch" for _, where, _ in transport.sent)
    assert len(_lines(client, outcome.id)) == 2


def test_a_refused_line_takes_its_header_with_it(
        connect: Callable[..., tuple[NavODataV4, LoseReplies]]) -> None:
    client, transport = connect()
    refused = [LINES[0], {**LINES[1], "Unit_of_Measure_Code": "CRATE"}]
    outcome = _write(client, _order("CT-3", refused))
    assert not outcome.ok and isinstance(outcome.error, ValidationError)
    message = str(outcome.error)
    assert message.startswith("line 2: ") and "(CRATE)" in message and "deleted again" in message
    assert _orders(client, "CT-3") == []
    deletes = [(where, etag) for method, where, etag in transport.sent if method == "DELETE"]
    [(where, etag)] = deletes
    assert where.startswith("SalesOrder(Document_Type='Order',No=")
    assert etag.startswith('W/"'), "the header is deleted with its version, never blindly"
    number = where.split("No='")[1].rstrip("')")
    assert _lines(client, number) == []


def test_a_lost_header_reply_is_settled_by_your_reference(
        connect: Callable[..., tuple[NavODataV4, LoseReplies]]) -> None:
    client, transport = connect(_post_to("SalesOrder", how="504"))
    outcome = _write(client, _order("CT-4"))
    assert transport.lost == [("POST", "SalesOrder", "504")]
    assert outcome.ok and outcome.already_existed, outcome.error
    assert _orders(client, "CT-4") == [outcome.id]
    assert _lines(client, outcome.id) == [(10000, "1896-S", 3), (20000, "1900-S", 1)]
    assert [m for m, where, _ in transport.sent if where == "SalesOrder"].count("POST") == 1


def test_a_lost_line_reply_is_settled_by_the_line_key(
        connect: Callable[..., tuple[NavODataV4, LoseReplies]]) -> None:
    client, transport = connect(_post_to("SalesOrderSalesLines"))
    outcome = _write(client, _order("CT-5"))
    assert transport.lost == [("POST", "SalesOrderSalesLines", "reset")]
    assert outcome.ok and not outcome.already_existed, outcome.error
    assert _lines(client, outcome.id) == [(10000, "1896-S", 3), (20000, "1900-S", 1)]
    posts = [where for method, where, _ in transport.sent if method == "POST"]
    assert posts == ["SalesOrder", "SalesOrderSalesLines", "SalesOrderSalesLines"]


def test_a_line_whose_fate_cannot_be_known_takes_its_header_with_it(
        connect: Callable[..., tuple[NavODataV4, LoseReplies]]) -> None:
    """The first line's reply is lost and looking the line up fails too: the header (with
    whatever lines it has) is deleted, and the failure is transient (the next run tries again)."""
    lost_line = _post_to("SalesOrderSalesLines")

    def lose(request: httpx.Request) -> str | None:
        if request.method == "GET" and "/SalesOrderSalesLines" in request.url.path:
            return "reset"
        return lost_line(request)

    client, _ = connect(lose)
    outcome = _write(client, _order("CT-6"))
    assert not outcome.ok and isinstance(outcome.error, TransientError)
    assert str(outcome.error).startswith("line 1: ") and "deleted again" in str(outcome.error)
    assert _orders(client, "CT-6") == []
