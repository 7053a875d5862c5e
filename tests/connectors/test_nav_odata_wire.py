"""NAV 2013 R2-2018 / BC on-premises OData v4 page web services on the wire (issue #17).

Each test replays responses in the shapes the cited documentation gives, through
httpx.MockTransport, and checks the requests the connector sends. The last test talks to the
sandbox's NAV emulation over loopback HTTP.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import httpx
import pytest

from nav_crm_ops.config import DEFAULT_NAV_PAGES, WorkspaceConfig
from nav_crm_ops.connectors import (
    BasicAuth,
    BusinessCentral,
    NavODataV4,
    NtlmAuth,
    RetryPolicy,
    WriteOp,
    key_segment,
)
from nav_crm_ops.connectors.factory import connect
from nav_crm_ops.exceptions import AuthError, ConcurrencyError
from nav_crm_ops.sandbox import Sandbox
from nav_crm_ops.sandbox.nav import nav_credentials
from nav_crm_ops.secrets import Secret

ROOT = "https://navserver:7048/DynamicsNAV110/ODataV4/"
COMPANY_PATH = "/DynamicsNAV110/ODataV4/Company('CRONUS%20International%20Ltd.')"
NO_WAIT = RetryPolicy(max_retries=2, base_delay_s=0.0, max_delay_s=0.0)
ETAG = "W/\"JzQ0O0VnQUFBQUo3QlRFQU1BQXdBREFBQUFBQTAwMDAwMDAwMDAwMDAwMDAwMTswMDsn\""
NEW_ETAG = "W/\"JzQ0O0VnQUFBQUo3QlRFQU1BQXdBREFBQUFBQTAwMDAwMDAwMDAwMDAwMDAwMjswMDsn\""


def nav(handler: Any, **kwargs: Any) -> NavODataV4:
    return NavODataV4(ROOT, "CRONUS International Ltd.",
                      BasicAuth("SYNC", Secret("wsk-44-chars"), secret_setting="NAV_KEY"),
                      pages=DEFAULT_NAV_PAGES, transport=httpx.MockTransport(handler),
                      retry=NO_WAIT, **kwargs)


def raw_path(request: httpx.Request) -> str:
    return request.url.raw_path.decode()


def customer(no: str, name: str, etag: str = ETAG) -> dict[str, Any]:
    return {"@odata.etag": etag, "No": no, "Name": name, "Phone_No": "",
            "Last_Date_Modified": "2024-05-01"}


def test_paging_follows_every_next_link_even_after_a_short_page() -> None:
    """*Server-Driven Paging in OData Web Services* (NAV 2018; "Configuring Microsoft Dynamics
    NAV Server": ``ODataServicesMaxPageSize``, default 1,000): the server cuts the result into
    pages and links the next one with ``@odata.nextLink`` (``$skiptoken``); a page may be
    shorter than the maximum and still not be the last."""
    base = f"https://navserver:7048{COMPANY_PATH}/Customer"
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        token = request.url.params.get("$skiptoken")
        if token is None:
            rows = [customer(f"{n:05d}", f"Customer {n}") for n in range(1, 4)]
            return httpx.Response(200, json={"@odata.context": f"{ROOT}$metadata#Customer",
                                             "value": rows,
                                             "@odata.nextLink": f"{base}?$skiptoken='00003'"})
        if token == "'00003'":
            return httpx.Response(200, json={"value": [customer("00004", "Short page")],
                                             "@odata.nextLink": f"{base}?$skiptoken='00004'"})
        return httpx.Response(200, json={"value": [customer("00005", "Last")]})

    frame = nav(handler).read("customers", select=["No", "Name"])
    assert frame["No"].to_list() == ["00001", "00002", "00003", "00004", "00005"]
    assert len(seen) == 3
    assert raw_path(seen[0]).startswith(f"{COMPANY_PATH}/Customer?")
    assert [r.url.params.get("$skiptoken") for r in seen] == [None, "'00003'", "'00004'"]


def test_etag_read_then_patch_sends_it_as_if_match() -> None:
    """*Using OData Web Services to Modify Data* (Business Central on-premises dev-itpro):
    "PATCH operations require the 'If-Match' header to be set, either with a retrieved ETag or
    with '*'"; the etag is the record's ``@odata.etag`` (*Update records with OData*)."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.method == "GET":
            return httpx.Response(200, json=customer("10000", "The Cannon Group PLC"))
        body = {**customer("10000", "The Cannon Group PLC", NEW_ETAG), **json.loads(
            request.content)}
        return httpx.Response(200, json=body)

    client = nav(handler)
    record = client.get("customers", "10000")
    outcome = client.write([WriteOp.update("customers", "10000", {"Phone_No": "0123"},
                                           if_match=record["@odata.etag"])])[0]
    assert raw_path(seen[0]) == f"{COMPANY_PATH}/Customer('10000')"
    assert seen[1].method == "PATCH" and raw_path(seen[1]) == raw_path(seen[0])
    assert seen[1].headers["If-Match"] == ETAG
    assert outcome.ok and outcome.id == "10000" and outcome.etag == NEW_ETAG


def test_stale_etag_answers_412_with_the_odata_error_body() -> None:
    """*Using OData Web Services to Modify Data*: "If the etag that you provide doesn't match the
    current etag of the record, the record isn't updated"; the answer is ``412`` with the OData
    v4 JSON error body ``{"error":{"code":…,"message":…}}`` (OData JSON Format v4.0, 21
    "Error Response"). It is a per-record conflict, not retried."""
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(412, json={"error": {
            "code": "Request_EntityChanged",
            "message": "Another user has already changed the record."}})

    outcome = nav(handler).write([WriteOp.update("customers", "10000", {"Name": "X"},
                                                 if_match=ETAG, op_id="c-10000")])[0]
    assert not outcome.ok and outcome.status == 412 and outcome.op_id == "c-10000"
    assert isinstance(outcome.error, ConcurrencyError)
    assert outcome.error.code == "Request_EntityChanged"
    assert outcome.error.service_message == "Another user has already changed the record."
    assert len(calls) == 1


def test_basic_401_challenge_is_an_auth_error_saying_what_to_check() -> None:
    """*How to: Use an Access Key for SOAP and OData Web Service Authentication* (NAV 2018) and
    *Web Services Authentication*: with NavUserPassword a web service request carries the user
    name and the web service access key (HTTP Basic); otherwise the server answers 401 with a
    ``WWW-Authenticate`` challenge. The error names the user and where the key comes from,
    never the key."""
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(401, headers={
            "WWW-Authenticate": 'Basic realm="Microsoft Dynamics NAV"'})

    with pytest.raises(AuthError) as caught:
        nav(handler).read("customers")
    message = str(caught.value)
    assert caught.value.status == 401 and len(calls) == 1
    assert "'SYNC'" in message and "NAV_KEY" in message and "Web Service Access Key" in message
    assert "wsk-44-chars" not in message
    assert calls[0].headers["Authorization"] == "Basic " + base64.b64encode(
        b"SYNC:wsk-44-chars").decode()


def test_basic_credentials_against_a_windows_server_say_to_use_ntlm() -> None:
    """*Credential Types for Dynamics NAV Users*: a server instance uses one credential type;
    a Windows one challenges with ``Negotiate``/``NTLM``, which Basic cannot answer."""
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, headers={"WWW-Authenticate": "Negotiate, NTLM"})

    with pytest.raises(AuthError, match='kind = "ntlm"'):
        nav(handler).read("customers")


# [MS-NLMP] 4.2.4.3 (NTLMv2 authentication, "Messages"): the example CHALLENGE_MESSAGE, server
# challenge 0123456789abcdef, target "Server", domain "Domain" (the same bytes as
# kChallengeMsgFromSpecV2 in Chromium's net/ntlm/ntlm_test_data.h, which cites that section).
SPEC_CHALLENGE = bytes.fromhex(
    "4e544c4d53535000020000000c000c003800000033828ae20123456789abcdef0000000000000000"
    "240024004400000006007017000000"
    "0f53006500720076006500720002000c0044006f006d00610069006e0001000c0053006500720076"
    "006500720000000000")


def _ntlm_type(header: str) -> int:
    """The NTLM message type of an ``Authorization: NTLM <base64>`` header ([MS-NLMP] 2.2.1:
    signature ``NTLMSSP\\0`` then a little-endian MessageType)."""
    scheme, _, token = header.partition(" ")
    raw = base64.b64decode(token)
    assert scheme == "NTLM" and raw[:8] == b"NTLMSSP\x00"
    return int.from_bytes(raw[8:12], "little")


def test_ntlm_handshake_negotiate_challenge_authenticate() -> None:
    """[MS-NLMP] 1.3.1.1 (connection-oriented NTLM) over HTTP: 401 ``WWW-Authenticate: NTLM``,
    the client's NEGOTIATE_MESSAGE (type 1), 401 carrying the server's CHALLENGE_MESSAGE
    (type 2: the spec's example, 4.2.4.3), the client's AUTHENTICATE_MESSAGE (type 3), then
    the page's data. User and password are the spec's (4.2.1): Domain\\User, "Password"."""
    sent: list[int | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        header = request.headers.get("Authorization")
        sent.append(_ntlm_type(header) if header else None)
        if header is None:
            return httpx.Response(401, headers={"WWW-Authenticate": "Negotiate, NTLM"})
        if sent[-1] == 1:
            return httpx.Response(401, headers={
                "WWW-Authenticate": "NTLM " + base64.b64encode(SPEC_CHALLENGE).decode()})
        return httpx.Response(200, json={"value": [customer("10000", "The Cannon Group PLC")]})

    auth = NtlmAuth("Domain\\User", Secret("Password"), secret_setting="NAV_PASSWORD")
    client = NavODataV4(ROOT, "CRONUS International Ltd.", auth, pages=DEFAULT_NAV_PAGES,
                        transport=httpx.MockTransport(handler), retry=NO_WAIT)
    assert client.read("customers")["No"].to_list() == ["10000"]
    assert sent == [None, 1, 3]
    assert "Password" not in repr(client) and "Password" not in repr(auth)


def test_single_request_writes_run_in_parallel_and_keep_input_order() -> None:
    """*OData Web Services* (NAV 2018) documents no ``$batch`` for page web services, so each
    record is its own request (POST/PATCH/DELETE, *Using OData Web Services to Modify Data*),
    ``max_parallel`` at a time; outcomes come back in the order of the ops."""
    lock = threading.Lock()
    in_flight = [0, 0]

    def handler(request: httpx.Request) -> httpx.Response:
        assert "$batch" not in raw_path(request)
        body = json.loads(request.content)
        with lock:
            in_flight[0] += 1
            in_flight[1] = max(in_flight[1], in_flight[0])
        time.sleep(0.02 * (8 - int(body["No"][-1])))  # later ops answer first
        with lock:
            in_flight[0] -= 1
        return httpx.Response(201, json={**customer(body["No"], body["Name"])})

    ops = [WriteOp.create("customers", {"No": f"C-{n}", "Name": f"New {n}"}, op_id=f"op{n}",
                          natural_key={"No": f"C-{n}"}) for n in range(8)]
    outcomes = nav(handler, max_parallel=4).write(ops)
    assert [o.op_id for o in outcomes] == [f"op{n}" for n in range(8)]
    assert [o.id for o in outcomes] == [f"C-{n}" for n in range(8)]
    assert all(o.ok and o.status == 201 for o in outcomes)
    assert 1 < in_flight[1] <= 4


def test_lost_create_reply_is_settled_by_the_key_it_sent() -> None:
    """A 504 from the gateway after a POST (the request may have run) is never re-sent blind:
    the record is looked up by the key the create sent (``$filter=No eq 'C-1'``, *Using Filter
    Expressions in OData URIs*); holding the values sent, it is taken as created."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.method == "POST":
            return httpx.Response(504, json={"error": {"code": "GatewayTimeout",
                                                       "message": "Gateway Timeout"}})
        return httpx.Response(200, json={"value": [customer("C-1", "New one")]})

    op = WriteOp.create("customers", {"No": "C-1", "Name": "New one"}, natural_key={"No": "C-1"})
    outcome = nav(handler).write([op])[0]
    assert [r.method for r in seen] == ["POST", "GET"]
    assert unquote(seen[1].url.params["$filter"]) == "No eq 'C-1'"
    assert outcome.ok and outcome.already_existed and outcome.id == "C-1"
    assert outcome.etag == ETAG


def test_lost_create_whose_key_is_free_is_sent_again_and_one_without_a_key_is_not() -> None:
    """The key the create sent is free: it did not happen, so it is sent once more. A create
    without a key (NAV numbers it from the number series) cannot be looked up: its outcome
    stays unknown and it is not sent again."""
    posts: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            return httpx.Response(200, json={"value": []})
        body = json.loads(request.content)
        posts.append(body.get("No", ""))
        if len(posts) == 1 or not body.get("No"):
            return httpx.Response(502, text="Bad Gateway")
        return httpx.Response(201, json=customer(body["No"], body["Name"]))

    client = nav(handler, max_parallel=1)
    keyed = client.write([WriteOp.create("customers", {"No": "C-2", "Name": "B"},
                                         natural_key={"No": "C-2"})])[0]
    unkeyed = client.write([WriteOp.create("customers", {"Name": "numbered by NAV"})])[0]
    assert keyed.ok and keyed.id == "C-2" and posts[:2] == ["C-2", "C-2"]
    assert not unkeyed.ok and unkeyed.error is not None and unkeyed.error.transient
    assert "not sent again" in str(unkeyed.error) and posts[2:] == [""]


def test_composite_keys_and_company_names_in_urls() -> None:
    """*OData web services* / wire-protocols reference: record URLs carry the page's key fields,
    ``SalesLines(Document_Type='Order',Document_No='1001',Line_No=10000)``; a quote inside a
    string literal is doubled (OData ABNF ``SQUOTE-in-string``), also in ``Company('…')``."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.method == "POST":
            return httpx.Response(201, json={"@odata.etag": ETAG, "Document_Type": "Order",
                                             "Document_No": "1001", "Line_No": 20000})
        return httpx.Response(200, json={"@odata.etag": NEW_ETAG})

    client = NavODataV4(ROOT, "O'Brien & Sons", BasicAuth("SYNC", Secret("k")),
                        pages=DEFAULT_NAV_PAGES, transport=httpx.MockTransport(handler),
                        retry=NO_WAIT)
    line = {"Document_Type": "Order", "Document_No": "1001", "Line_No": 10000}
    assert client.record_path("salesOrderLines", line) == (
        "Company('O''Brien%20%26%20Sons')/SalesOrderSalesLines("
        "Document_Type='Order',Document_No='1001',Line_No=10000)")
    created, updated = client.write([
        WriteOp.create("salesOrderLines", {"Document_Type": "Order", "Document_No": "1001",
                                           "No": "1000", "Quantity": 1}),
        WriteOp.update("salesOrderLines", key_segment(line), {"Quantity": 2})])
    assert raw_path(seen[1]).endswith(
        "/SalesOrderSalesLines(Document_Type='Order',Document_No='1001',Line_No=10000)")
    assert created.id == "Document_Type='Order',Document_No='1001',Line_No=20000"
    assert updated.ok and seen[1].headers["If-Match"] == "*"


def test_date_watermark_is_an_edm_date_literal_from_the_day_before() -> None:
    """*Using Filter Expressions in OData URIs* (NAV 2018): comparison filters on page fields
    (``$filter=Entry_No gt 610``); ``Last Date Modified`` is a Date, written as an ``Edm.Date``
    literal (``2024-05-01``, no quotes, OData ABNF ``dateValue``). Read from the day before the
    watermark: the field holds the server's local date."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"value": []})

    nav(handler).read("customers", select=["No"], filter="Blocked eq ' '",
                      changed_since=datetime(2024, 5, 2, 0, 30, tzinfo=UTC))
    assert seen[0].url.params["$filter"] == (
        "(Blocked eq ' ') and Last_Date_Modified ge 2024-05-01")


def test_batch_true_sends_json_batch_with_page_urls() -> None:
    """*OData $batch* (Business Central on-premises): with ``batch = true`` the writes go as one
    JSON ``$batch`` whose parts address the pages relative to the OData root."""
    seen: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        assert raw_path(request).endswith("/ODataV4/$batch")
        body = json.loads(request.content)
        seen.append(body)
        return httpx.Response(200, json={"responses": [
            {"id": part["id"], "status": 200, "headers": {},
             "body": customer("10000", "X", NEW_ETAG)} for part in body["requests"]]})

    outcome = nav(handler, batch=True).write([WriteOp.update("customers", "10000",
                                                             {"Name": "X"}, if_match=ETAG)])[0]
    part = seen[0]["requests"][0]
    assert part["url"] == "Company('CRONUS%20International%20Ltd.')/Customer('10000')"
    assert part["headers"]["If-Match"] == ETAG and outcome.ok and outcome.etag == NEW_ETAG


def test_connect_builds_the_nav_client_for_a_nav2018_workspace(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """``profile = "nav2018"``: the three ERP clients are one NavODataV4 over ``[nav]``."""
    monkeypatch.setenv("NAV_KEY", "k")
    monkeypatch.setenv("CRM_SECRET", "s")
    config = WorkspaceConfig.model_validate({
        "workspace": {"profile": "nav2018"},
        "nav": {"odata_url": ROOT, "company_name": "CRONUS International Ltd.",
                "auth": {"kind": "ntlm", "client_id": "CRONUS\\sync",
                         "client_secret_env": "NAV_KEY"}, "max_parallel": 2},
        "dataverse": {"url": "https://org.crm4.dynamics.com/", "auth": {
            "authority": "https://login.microsoftonline.com/t", "client_id": "app",
            "client_secret_env": "CRM_SECRET", "scope": "https://org.crm4.dynamics.com/.default"}},
        "root": tmp_path})
    connections = connect(config)
    client = connections.business_central_for("navcrm/sync/v1.0")
    assert isinstance(client, NavODataV4) and isinstance(client, BusinessCentral)
    assert client is connections.business_central is connections.business_central_custom
    assert isinstance(client.http.auth, NtlmAuth) and client.pool.max_workers == 2
    assert client.entity_path("salesInvoices").endswith(
        "/" + DEFAULT_NAV_PAGES["salesInvoices"])


def test_sandbox_nav_pages_read_and_update_with_etag(fresh_sandbox: Sandbox) -> None:
    """The sandbox's NAV 2018 emulation (``{base}/nav/ODataV4/``): Basic auth with its printed
    user and access key, ``Company('…')`` paths, string keys, etags."""
    info = fresh_sandbox.info
    credentials = nav_credentials(info)
    client = NavODataV4(info.nav_url, info.company_name,
                        BasicAuth(credentials.user, credentials.access_key),
                        pages=DEFAULT_NAV_PAGES, retry=NO_WAIT)
    with client:
        frame = client.read("customers", select=["No", "Name", "Phone_No"], etag=True)
        assert frame.height > 0
        first = frame.row(0, named=True)
        outcome = client.write([WriteOp.update("customers", first["No"],
                                               {"Phone_No": "0123-456"},
                                               if_match=first["@odata.etag"])])[0]
        assert outcome.ok and outcome.etag and outcome.etag != first["@odata.etag"]
        assert client.get("customers", first["No"])["Phone_No"] == "0123-456"
        stale = client.write([WriteOp.update("customers", first["No"], {"Phone_No": "1"},
                                             if_match=first["@odata.etag"])])[0]
        assert isinstance(stale.error, ConcurrencyError) and stale.status == 412


def test_lost_create_is_settled_even_without_retries_left() -> None:
    """With no retries allowed a lost create reply is still settled by its key, not failed."""
    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            raise httpx.ReadTimeout("no answer", request=request)
        return httpx.Response(200, json={"value": [customer("C-3", "C")]})

    client = NavODataV4(ROOT, "CRONUS International Ltd.", BasicAuth("SYNC", Secret("k")),
                        pages=DEFAULT_NAV_PAGES, transport=httpx.MockTransport(handler),
                        retry=RetryPolicy(max_retries=0))
    outcome = client.write([WriteOp.create("customers", {"No": "C-3", "Name": "C"},
                                           natural_key={"No": "C-3"})])[0]
    assert outcome.ok and outcome.already_existed and outcome.id == "C-3"
