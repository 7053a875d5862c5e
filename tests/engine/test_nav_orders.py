"""NAV 2018 end to end, sales orders: SALES ORDERS on a ``profile = "nav2018"`` workspace against
the sandbox's page 42 Sales Order and page 46 Sales Order Subform over real loopback HTTP.

NAV 2018 has no deep insert for page web services, so the connector writes the header and then
each line; the guarantees are BC online's: one NAV order per submitted CRM order, never an order
without its lines (a refused line takes its header with it), the CRM order marked submitted with
the NAV order number, and the follow-up marking it Invoiced once NAV posted it or Active again
once it was deleted.

Lost replies: the sandbox's fault injection covers its ``/bc`` and ``/crm`` services only, so
these tests lose NAV replies on the client side: :class:`LoseReplies` sends every request to the
sandbox for real and, for the chosen writes, drops the answer after the server committed (a
reset, or a 504 as a gateway answers), exactly what ``commitreset`` / ``commit504`` do for BC.

NAV 2018 posts documents in its client (page web services have no posting action), so posting
goes through the sandbox's own Business Central API over the same store (``Sandbox.bc_admin``).
"""

from __future__ import annotations

import functools
import random
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import polars as pl
import pytest

from nav_crm_ops import open_workspace
from nav_crm_ops.connectors import factory
from nav_crm_ops.connectors.dataverse import Dataverse
from nav_crm_ops.connectors.nav_odata import NavODataV4
from nav_crm_ops.engine.workspace import Workspace
from nav_crm_ops.sandbox import Sandbox
from tests.engine.crm_orders import crm_id, crm_order, submit_order

Person = Callable[[Workspace], Dataverse]

MASTER_DATA = ["CURRENCY", "SALESPEOPLE", "UNIT OF MEASURE", "CUSTOMER", "ITEM-PRODUCT"]
ORDERS = "SALES ORDERS"
INVOICES = "POSTEDSALESINV-INV"


class LoseReplies(httpx.BaseTransport):
    """Real loopback HTTP that loses the reply of chosen NAV requests after the server ran them.

    Every request is logged in ``sent`` (method, last path segment, ``If-Match``);
    ``lose(request)`` returns ``"reset"`` (the connection drops: ``httpx.ReadError``),
    ``"504"`` (a gateway's timeout answer) or None (the reply arrives)."""

    def __init__(self, lose: Callable[[httpx.Request], str | None]) -> None:
        self.inner = httpx.HTTPTransport()
        self.lose = lose
        self.lost: list[tuple[str, str, str]] = []
        self.sent: list[tuple[str, str, str]] = []
        self._lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        where = request.url.path.rsplit("/", 1)[-1]
        with self._lock:
            self.sent.append((request.method, where, request.headers.get("If-Match", "")))
        response = self.inner.handle_request(request)
        how = self.lose(request)
        if how is None:
            return response
        response.read()
        response.close()
        with self._lock:
            self.lost.append((request.method, where, how))
        if how == "reset":
            raise httpx.ReadError("connection reset after the server answered", request=request)
        return httpx.Response(504, json={"error": {"code": "GatewayTimeout",
                                                   "message": "The gateway timed out."}},
                              request=request)

    def close(self) -> None:
        self.inner.close()


def _writes_to(page: str, *, times: int, how: str = "reset") -> Callable[[httpx.Request],
                                                                          str | None]:
    """Lose the replies of the first ``times`` POSTs to ``page``."""
    left = [times]

    def lose(request: httpx.Request) -> str | None:
        if request.method == "POST" and request.url.path.endswith("/" + page) and left[0] > 0:
            left[0] -= 1
            return how
        return None
    return lose


@contextmanager
def _nav_transport(lose: Callable[[httpx.Request], str | None]) -> Iterator[LoseReplies]:
    """Workspaces opened inside talk to NAV through a :class:`LoseReplies` transport."""
    transport = LoseReplies(lose)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(factory, "NavODataV4", functools.partial(NavODataV4, transport=transport))
        yield transport


# -- CRM and NAV as people see them ----------------------------------------------------------------








def _nav_get(ws: Workspace, service: str, condition: str = "") -> list[dict[str, Any]]:
    """Rows of a NAV page over HTTP, as any OData client reads them."""
    nav = ws.connections.business_central
    assert isinstance(nav, NavODataV4)
    company = nav.entity_path("customers").rsplit("/", 1)[0]
    query = f"?$filter={condition}" if condition else ""
    return list(nav.http.request("GET", f"{company}/{service}{query}").json()["value"])


def _nav_orders(ws: Workspace, reference: str) -> list[dict[str, Any]]:
    return _nav_get(ws, "SalesOrder", f"Your_Reference eq '{reference}'")


def _nav_lines(ws: Workspace, number: str) -> list[tuple[Any, ...]]:
    rows = _nav_get(ws, "SalesOrderSalesLines", f"Document_No eq '{number}'")
    return sorted((r["Line_No"], r["Type"], r["No"], r["Unit_of_Measure_Code"], r["Quantity"],
                   r["Unit_Price"]) for r in rows)


def _post_in_nav(sandbox: Sandbox, number: str) -> None:
    """Ship and invoice the order as a NAV user does in the client (module docstring)."""
    info = sandbox.info
    company = f"{info.bc_api_url}companies({info.company_id})/"
    found = sandbox.bc_admin("GET", company + f"salesOrders?$filter=number eq '{number}'")
    order_id = found.json()["value"][0]["id"]
    posted = sandbox.bc_admin("POST", company + f"salesOrders({order_id})/"
                              "Microsoft.NAV.shipAndInvoice")
    assert posted.status_code == 204, posted.text


def _ready(ws: Workspace) -> None:
    """Master data synced, and the follow-up's first run behind (it marks where posts start)."""
    report = ws.sync_all(MASTER_DATA)
    assert report.result("CUSTOMER").count("inserted") > 0
    assert ws.sync(ORDERS).result(ORDERS).status == "finished", ws.errors(ORDERS)


def _errors(ws: Workspace, crm_id: str) -> list[str]:
    return list(ws.errors(ORDERS).filter(pl.col("source_id") == crm_id)["message"].to_list())


# -- the tests -----------------------------------------------------------------------------------
def test_submitted_order_becomes_one_nav_order_with_its_lines_and_comes_back_invoiced(
        nav_workspace: Path, crm_person: Person, fresh_sandbox: Sandbox) -> None:
    with open_workspace(nav_workspace) as ws:
        _ready(ws)
        order = submit_order(ws, crm_person(ws), crm_id(ws, "CUSTOMER", "10000"),
                             "Web shop order 4711",
                             [("1896-S", "PCS", 3, 120.5), ("1900-S", "PCS", 1, 99)])

        result = ws.sync(ORDERS).result(ORDERS)
        assert result.count("inserted") == 1, ws.errors(ORDERS)["message"].to_list()
        [header] = _nav_orders(ws, order["ordernumber"])
        number = header["No"]
        assert (header["Document_Type"], header["Sell_to_Customer_No"],
                header["External_Document_No"]) == ("Order", "10000", "Web shop order 4711")
        assert _nav_lines(ws, number) == [(10000, "Item", "1896-S", "PCS", 3, 120.5),
                                          (20000, "Item", "1900-S", "PCS", 1, 99)]
        crm = crm_order(ws, order["salesorderid"])
        assert crm["nav_submittedtobackoffice"] is True
        assert crm["nav_bcordernumber"] == number
        # the coupling is the order number a person knows, not the page's composite key
        coupled = ws.store.couplings_frame(ORDERS).filter(
            pl.col("crm_id") == order["salesorderid"])
        assert coupled["nav_id"].item() == number

        again = ws.sync(ORDERS).result(ORDERS)
        assert again.count("inserted") == 0 and again.count("failed") == 0
        assert len(_nav_orders(ws, order["ordernumber"])) == 1

        _post_in_nav(fresh_sandbox, number)
        # The follow-up links the CRM invoice when POSTEDSALESINV-INV is there, and works
        # without it (as on BC).
        linking = INVOICES in ws.mappings.names
        report = ws.sync_all([INVOICES, ORDERS] if linking else [ORDERS])
        settled = report.result(ORDERS)
        assert settled.status == "finished", ws.errors(ORDERS)["message"].to_list()
        assert settled.count("uncoupled") == 1
        crm = crm_order(ws, order["salesorderid"])
        assert (crm["statecode"], crm["statuscode"]) == (4, 100003)
        invoices = _nav_get(ws, "PostedSalesInvoice", f"Order_No eq '{number}'")
        if linking:
            crm_invoice = ws.connections.dataverse.read(
                "invoices", filter=f"nav_bcinvoicenumber eq '{invoices[0]['No']}'")
            assert crm_invoice["_salesorderid_value"].to_list() == [order["salesorderid"]]
        posts = ws.connections.dataverse.read(
            "posts", filter=f"_regardingobjectid_value eq {crm_id(ws, 'CUSTOMER', '10000')}")
        said = posts.filter(pl.col("text").str.contains(number))["text"].to_list()
        [invoice] = invoices
        amount = f"{invoice['Amount_Including_VAT']:,.2f}"
        assert said == [f"Sales order {number} was shipped and invoiced in NAV: posted invoice "
                        f"{invoice['No']}, {amount} {invoice['Currency_Code']}."]

        quiet = ws.sync(ORDERS).result(ORDERS)
        assert quiet.count("inserted") == quiet.count("modified") == 0
        posts_after = ws.connections.dataverse.read(
            "posts", filter=f"_regardingobjectid_value eq {crm_id(ws, 'CUSTOMER', '10000')}")
        assert posts_after.height == posts.height, "no second post for the same invoice"


def test_deleted_nav_order_returns_the_crm_order_to_active(
        nav_workspace: Path, crm_person: Person) -> None:
    with open_workspace(nav_workspace) as ws:
        _ready(ws)
        order = submit_order(ws, crm_person(ws), crm_id(ws, "CUSTOMER", "20000"),
                             "Phone order",
                             [("1896-S", "PCS", 2, 100)])
        assert ws.sync(ORDERS).result(ORDERS).count("inserted") == 1
        [header] = _nav_orders(ws, order["ordernumber"])
        nav = ws.connections.business_central
        nav.http.request("DELETE", nav.record_path("salesOrders", header["No"]),
                         headers={"If-Match": header["@odata.etag"]})
        assert _nav_lines(ws, header["No"]) == []

        result = ws.sync(ORDERS).result(ORDERS)
        assert result.count("uncoupled") == 1, ws.errors(ORDERS)["message"].to_list()
        crm = crm_order(ws, order["salesorderid"])
        assert (crm["statecode"], crm["statuscode"]) == (0, 1)
        assert crm["nav_submittedtobackoffice"] is False
        assert ws.store.couplings_frame(ORDERS).filter(
            pl.col("crm_id") == order["salesorderid"]).height == 0


def test_a_line_nav_refuses_leaves_no_order_behind(
        nav_workspace: Path, crm_person: Person) -> None:
    with open_workspace(nav_workspace) as ws:
        _ready(ws)
        # BOX is coupled to its CRM unit group, then deleted in NAV: the second line names a
        # unit NAV no longer has, so NAV refuses it after the header and the first line exist.
        nav = ws.connections.business_central
        assert isinstance(nav, NavODataV4)
        unit = nav.get("unitsOfMeasure", "BOX")
        nav.http.request("DELETE", nav.record_path("unitsOfMeasure", "BOX"),
                         headers={"If-Match": unit["@odata.etag"]})
        before = (len(_nav_get(ws, "SalesOrder")), len(_nav_get(ws, "SalesOrderSalesLines")))
        order = submit_order(ws, crm_person(ws), crm_id(ws, "CUSTOMER", "10000"),
                             "Mixed order",
                             [("1896-S", "PCS", 1, 100), ("8908-W", "BOX", 2, 10)])

        result = ws.sync(ORDERS).result(ORDERS)
        assert result.count("failed") == 1 and result.count("inserted") == 0
        assert _nav_orders(ws, order["ordernumber"]) == []
        assert (len(_nav_get(ws, "SalesOrder")), len(_nav_get(ws, "SalesOrderSalesLines"))
                ) == before
        [message] = _errors(ws, order["salesorderid"])
        assert message.startswith("line 2: ")
        assert "Unit of Measure Code" in message and "(BOX)" in message
        assert "deleted again" in message
        crm = crm_order(ws, order["salesorderid"])
        assert crm["nav_submittedtobackoffice"] is not True
        assert ws.store.couplings_frame(ORDERS).filter(
            pl.col("crm_id") == order["salesorderid"]).height == 0


@pytest.mark.parametrize(("page", "how"), [("SalesOrder", "reset"), ("SalesOrder", "504"),
                                           ("SalesOrderSalesLines", "reset"),
                                           ("SalesOrderSalesLines", "504")])
def test_a_reply_lost_after_nav_committed_makes_no_duplicate_and_no_order_without_lines(
        nav_workspace: Path, crm_person: Person, page: str, how: str) -> None:
    with open_workspace(nav_workspace) as ws:
        _ready(ws)
        order = submit_order(ws, crm_person(ws), crm_id(ws, "CUSTOMER", "10000"),
                             "Lost reply order",
                             [("1896-S", "PCS", 3, 120.5), ("1900-S", "PCS", 1, 99)])
    with _nav_transport(_writes_to(page, times=1, how=how)) as transport, \
            open_workspace(nav_workspace) as ws:
        result = ws.sync(ORDERS).result(ORDERS)
        assert transport.lost == [("POST", page, how)]
        assert result.count("inserted") == 1, ws.errors(ORDERS)["message"].to_list()
        [header] = _nav_orders(ws, order["ordernumber"])
        assert _nav_lines(ws, header["No"]) == [(10000, "Item", "1896-S", "PCS", 3, 120.5),
                                                (20000, "Item", "1900-S", "PCS", 1, 99)]
        assert crm_order(ws, order["salesorderid"])["nav_bcordernumber"] == header["No"]


def test_orders_survive_a_fifth_of_nav_replies_lost(
        nav_workspace: Path, crm_person: Person) -> None:
    """20% of NAV writes lose their reply after committing (resets and 504s, seeded): after
    a few runs every submitted order is in NAV exactly once, with all its lines."""
    with open_workspace(nav_workspace) as ws:
        _ready(ws)
        person = crm_person(ws)
        orders = [submit_order(ws, person, crm_id(ws, "CUSTOMER", customer),
                               f"Soak order {i}",
                               [("1896-S", "PCS", i + 1, 100), ("1900-S", "PCS", 1, 50 + i),
                                 ("1906-S", "PCS", 2, 10)])
                  for i, customer in enumerate(["10000", "20000", "30000"] * 4)]
    rng = random.Random(20)
    lock = threading.Lock()

    def lose(request: httpx.Request) -> str | None:
        if request.method == "GET":
            return None
        with lock:
            hit, how = rng.random() < 0.2, rng.choice(["reset", "504"])
        return how if hit else None

    with _nav_transport(lose) as transport, open_workspace(nav_workspace) as ws:
        for _ in range(3):
            ws.sync(ORDERS)
        lost_headers = [x for x in transport.lost if x[:2] == ("POST", "SalesOrder")]
        lost_lines = [x for x in transport.lost if x[:2] == ("POST", "SalesOrderSalesLines")]
        assert lost_headers and lost_lines, transport.lost
    with open_workspace(nav_workspace) as ws:
        last = ws.sync(ORDERS).result(ORDERS)
        assert last.count("failed") == 0, ws.errors(ORDERS)["message"].to_list()
        for order in orders:
            [found] = _nav_orders(ws, order["ordernumber"])
            assert [line[:3] for line in _nav_lines(ws, found["No"])] == [
                (10000, "Item", "1896-S"), (20000, "Item", "1900-S"), (30000, "Item", "1906-S")]
            crm = crm_order(ws, order["salesorderid"])
            assert (crm["nav_bcordernumber"], crm["nav_submittedtobackoffice"]) == (
                found["No"], True)
        # and no NAV order at all was left without its lines
        for header in _nav_get(ws, "SalesOrder"):
            assert _nav_lines(ws, header["No"]), header["No"]
