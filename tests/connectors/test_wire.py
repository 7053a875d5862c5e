"""Wire-level behaviour against httpx.MockTransport replaying the documented formats."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import pytest

from nav_crm_ops.connectors import (
    BasicAuth,
    BusinessCentral,
    ClientCredentials,
    Dataverse,
    NavODataV4,
    RetryPolicy,
    WriteOp,
)
from nav_crm_ops.exceptions import (
    AuthError,
    ConcurrencyError,
    NotFoundError,
    ThrottledError,
    ValidationError,
)
from nav_crm_ops.secrets import Secret

DV = "https://org.crm.dynamics.com/api/data/v9.2/"
BC = "https://api.businesscentral.dynamics.com/v2.0/t/production/api/v2.0/"
COMPANY = "7b3e4f0c-1a7e-4d3f-9f57-0a3c1e2b4d5f"
GUIDS = [f"00000000-0000-0000-0000-{n:012d}" for n in range(1, 20)]
NO_WAIT = RetryPolicy(max_retries=3, base_delay_s=0.0, max_delay_s=0.0)

Handler = Callable[[httpx.Request], httpx.Response]


def basic() -> BasicAuth:
    return BasicAuth("admin", Secret("key"))


def dataverse(handler: Handler, **kwargs: object) -> Dataverse:
    return Dataverse(DV, basic(), transport=httpx.MockTransport(handler), retry=NO_WAIT,
                     max_workers=1, **kwargs)  # type: ignore[arg-type]


def test_paging_follows_skiptoken_next_link_verbatim() -> None:
    cookie = ("%3Ccookie%20pagenumber=%222%22%20pagingcookie=%22%253ccookie%2520page%253d%25221"
              "%2522%253e%253caccountid%2520last%253d%2522%257b1%257d%2522%253e%22%20/%3E")
    next_link = f"{DV}accounts?$select=name&$skiptoken={cookie}"
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if "$skiptoken" in str(request.url):
            return httpx.Response(200, json={"value": [{"accountid": GUIDS[2], "name": "C"}]})
        return httpx.Response(200, headers={"Preference-Applied": "odata.maxpagesize=2"},
                              json={"value": [{"accountid": GUIDS[0], "name": "A"},
                                              {"accountid": GUIDS[1], "name": "B"}],
                                    "@odata.nextLink": next_link})

    frame = dataverse(handler, page_size=2).read("accounts", select=["accountid", "name"])
    assert frame["name"].to_list() == ["A", "B", "C"]
    assert len(seen) == 2
    assert str(seen[1].url) == next_link
    assert seen[0].headers["Prefer"] == "odata.maxpagesize=2"
    assert seen[0].headers["OData-Version"] == "4.0"


def test_empty_result_still_has_every_selected_column() -> None:
    frame = dataverse(lambda r: httpx.Response(200, json={"value": []})).read(
        "accounts", select=["accountid", "name", "modifiedon"])
    assert frame.columns == ["accountid", "name", "modifiedon"] and frame.height == 0
    assert str(frame.schema["modifiedon"]) == "Datetime(time_unit='ms', time_zone='UTC')"


def test_429_with_retry_after_is_waited_and_counted() -> None:
    calls = {"n": 0}
    waits: list[float] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls["n"] += 1
        if calls["n"] == 1:
            return httpx.Response(429, headers={"Retry-After": "7"}, json={"error": {
                "code": "0x80072322", "message": "Number of requests exceeded the limit of "
                "6000 over time window of 300 seconds."}})
        return httpx.Response(200, json={"value": []})

    client = dataverse(handler)
    client.http._sleep = waits.append
    client.read("accounts", select=["name"])
    assert waits == [7.0]
    assert (client.stats.requests, client.stats.retries, client.stats.throttled) == (2, 1, 1)
    assert client.stats.throttled_wait_s == 7.0


def test_429_beyond_the_budget_raises_throttled_error() -> None:
    client = dataverse(lambda r: httpx.Response(429, headers={"Retry-After": "1"}, json={
        "error": {"code": "0x80072326", "message": "concurrent"}}))
    client.http._sleep = lambda s: None
    with pytest.raises(ThrottledError) as info:
        client.read("accounts")
    assert info.value.retry_after == 1.0 and info.value.code == "0x80072326"
    assert client.stats.requests == NO_WAIT.max_retries + 1


def _batch_reply(statuses: list[tuple[int, str]]) -> httpx.Response:
    chunks = []
    for status, body in statuses:
        reason = {200: "OK", 204: "No Content", 412: "Precondition Failed", 400: "Bad Request",
                  404: "Not Found", 503: "Service Unavailable"}[status]
        chunks.append("--batchresponse_x\r\nContent-Type: application/http\r\n"
                      "Content-Transfer-Encoding: binary\r\n\r\n"
                      f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n\r\n"
                      f"{body}\r\n")
    text = "".join(chunks) + "--batchresponse_x--\r\n"
    return httpx.Response(200, content=text.encode(),
                          headers={"Content-Type": "multipart/mixed; boundary=batchresponse_x"})


def test_dataverse_batch_outcomes_in_order_with_412_and_409_semantics() -> None:
    sent: list[httpx.Request] = []
    stale = json.dumps({"error": {"code": "", "message": "The version of the existing record "
                                  "doesn't match the RowVersion property provided."}})
    exists = json.dumps({"error": {"code": "", "message": "A record with matching key values "
                                   "already exists."}})
    too_long = json.dumps({"error": {"code": "0x80044331", "message": "A validation error "
                                     "occurred."}})

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        if "GET " in request.content.decode():  # the read-back: GUIDS[1] does exist
            return _batch_reply([(200, json.dumps({"@odata.etag": 'W/"7"'}))] * 2)
        return _batch_reply([(204, ""), (412, exists), (412, stale), (400, too_long),
                             (404, "{}")])

    ops = [WriteOp.create("accounts", {"name": "A"}, key=GUIDS[0]),
           WriteOp.create("accounts", {"name": "B"}, key=GUIDS[1]),
           WriteOp.update("accounts", GUIDS[2], {"name": "C"}, if_match='W/"1"'),
           WriteOp.create("accounts", {"name": "D" * 200}, key=GUIDS[3],
                          binds={"primarycontactid": f"/contacts({GUIDS[4]})"}),
           WriteOp.delete("accounts", GUIDS[5])]
    outcomes = dataverse(handler).write(ops)
    assert [o.op_id for o in outcomes] == [op.op_id for op in ops]
    assert [(o.ok, o.already_existed) for o in outcomes] == [
        (True, False), (True, True), (False, False), (False, False), (True, False)]
    assert [o.etag for o in outcomes[:2]] == ['W/"7"', 'W/"7"']
    assert isinstance(outcomes[2].error, ConcurrencyError)
    assert isinstance(outcomes[3].error, ValidationError)
    assert outcomes[3].error.code == "0x80044331"
    body = sent[0].content.decode()
    assert sent[0].headers["Prefer"] == "odata.continue-on-error"
    assert body.count("If-None-Match: *") == 3 and "If-Match: W/\"1\"" in body
    assert f'"primarycontactid@odata.bind":"/contacts({GUIDS[4]})"' in body


def test_dataverse_retries_only_parts_that_failed_transiently() -> None:
    bodies: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append(request.content.decode())
        done = (200, json.dumps({"@odata.etag": 'W/"1"'}))  # return=representation
        if len(bodies) == 1:
            return _batch_reply([done, (503, "{}"), done])
        return _batch_reply([done])

    client = dataverse(handler)
    outcomes = client.write([WriteOp.create("accounts", {"name": n}, key=g)
                             for n, g in zip("ABC", GUIDS, strict=False)])
    assert all(o.ok for o in outcomes) and len(bodies) == 2
    assert GUIDS[1] in bodies[1] and GUIDS[0] not in bodies[1] and GUIDS[2] not in bodies[1]


def bc(handler: Handler) -> BusinessCentral:
    return BusinessCentral(BC, COMPANY, basic(), transport=httpx.MockTransport(handler),
                           retry=NO_WAIT, max_workers=1)


def test_bc_json_batch_items_and_if_match_always_sent() -> None:
    sent: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        payload = json.loads(request.content)
        sent.append(payload)
        ids = [r["id"] for r in payload["requests"]]
        return httpx.Response(200, json={"responses": [
            {"id": ids[2], "status": 409, "headers": {}, "body": {"error": {
                "code": "Request_EntityChanged", "message": "Another user has already changed "
                "the record.  CorrelationId:  3f8a3c1e-4a6d-4c1f-9b2e-1d2c3b4a5f60."}}},
            {"id": ids[0], "status": 201, "headers": {}, "body": {
                "id": GUIDS[9], "@odata.etag": 'W/"JzQ0O2c4UTNaMTswMDsn"', "number": "10000"}},
            {"id": ids[1], "status": 200, "headers": {}, "body": {"id": GUIDS[1]}},
            {"id": ids[3], "status": 204, "headers": {}},
        ]})

    outcomes = bc(handler).write([
        WriteOp.create("customers", {"displayName": "The Cannon Group PLC"}),
        WriteOp.update("customers", GUIDS[1], {"phoneNumber": "1"}),
        WriteOp.update("customers", GUIDS[2], {"phoneNumber": "2"}, if_match='W/"old"'),
        WriteOp.delete("customers", GUIDS[3])])
    requests = sent[0]["requests"]
    assert [r["method"] for r in requests] == ["POST", "PATCH", "PATCH", "DELETE"]
    assert requests[0]["url"] == f"companies({COMPANY})/customers"
    assert [r["headers"].get("If-Match") for r in requests] == [
        None, "*", 'W/"old"', "*"]
    assert [o.ok for o in outcomes] == [True, True, False, True]
    assert outcomes[0].id == GUIDS[9] and outcomes[0].etag == 'W/"JzQ0O2c4UTNaMTswMDsn"'
    error = outcomes[2].error
    assert isinstance(error, ConcurrencyError) and error.code == "Request_EntityChanged"
    assert error.correlation_id == "3f8a3c1e-4a6d-4c1f-9b2e-1d2c3b4a5f60"
    assert error.service_message == "Another user has already changed the record."


def test_bc_errors_map_to_the_exception_tree() -> None:
    replies = iter([
        httpx.Response(404, json={"error": {"code": "BadRequest_ResourceNotFound",
                                            "message": "Resource not found. CorrelationId: "
                                            "3f8a3c1e-4a6d-4c1f-9b2e-1d2c3b4a5f61."}}),
        httpx.Response(400, json={"error": {"code": "BadRequest_InvalidToken",
                                            "message": "Could not validate the client "
                                            "concurrency token."}}),
    ])
    client = bc(lambda r: next(replies))
    with pytest.raises(NotFoundError) as missing:
        client.read("customerz")
    assert missing.value.correlation_id.endswith("5f61") and missing.value.status == 404
    with pytest.raises(ValidationError, match="BadRequest_InvalidToken"):
        client.read("customers")


def test_nav_odata_v4_profile_uses_page_keys_and_basic_auth() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.method == "GET":
            return httpx.Response(200, json={"value": [
                {"No": "10000", "Name": "The Cannon Group PLC",
                 "Last_Date_Modified": "2024-01-02T00:00:00Z"}]})
        return httpx.Response(200, json={"No": "10000", "@odata.etag": 'W/"x"'})

    nav = NavODataV4("https://nav.local:7048/BC/ODataV4/", "CRONUS International Ltd.",
                     BasicAuth("admin", Secret("wsk")), transport=httpx.MockTransport(handler))
    frame = nav.read("Customer", select=["No", "Name", "Last_Date_Modified"])
    outcome = nav.write([WriteOp.update("Customer", "10000", {"Phone_No": "1"})])[0]
    assert frame["No"].to_list() == ["10000"] and outcome.ok and outcome.etag == 'W/"x"'
    assert seen[0].url.raw_path.startswith(
        b"/BC/ODataV4/Company('CRONUS%20International%20Ltd.')/Customer?")
    assert seen[1].url.raw_path.endswith(b"/Customer('10000')")
    assert seen[1].headers["If-Match"] == "*"
    assert seen[0].headers["Authorization"].startswith("Basic ")


def _token_server(tokens: list[str]) -> httpx.Client:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/openid-configuration"):
            base = "https://login.example.test/tenant1"
            return httpx.Response(200, json={
                "issuer": f"{base}/v2.0", "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                "token_endpoint": f"{base}/oauth2/v2.0/token"})
        form = parse_qs(request.content.decode())
        if form["client_secret"] != ["right"]:
            return httpx.Response(401, json={"error": "invalid_client", "error_description":
                                             "AADSTS7000215: Invalid client secret provided."})
        tokens.append(f"tok{len(tokens)}")
        return httpx.Response(200, json={"token_type": "Bearer", "expires_in": 3600,
                                         "access_token": tokens[-1]})

    return httpx.Client(transport=httpx.MockTransport(handler))


def test_token_is_cached_and_renewed_once_after_401() -> None:
    tokens: list[str] = []
    auth = ClientCredentials("https://login.example.test/tenant1", "app-id", Secret("right"),
                             "https://org.crm.dynamics.com/.default", http=_token_server(tokens))

    def api(request: httpx.Request) -> httpx.Response:
        if request.headers["Authorization"] == "Bearer tok0" and urlparse(
                str(request.url)).path.endswith("contacts"):
            return httpx.Response(401, json={"error": {"code": "", "message": "expired"}})
        return httpx.Response(200, json={"value": []})

    client = Dataverse(DV, auth, transport=httpx.MockTransport(api), retry=NO_WAIT)
    client.read("accounts")
    client.read("accounts")
    client.read("contacts")
    assert auth.token_requests == 2 and tokens == ["tok0", "tok1"]
    assert client.stats.requests == 4


def test_wrong_secret_gives_auth_error_without_the_secret() -> None:
    secret_value = "wrong-secret-value-123"
    auth = ClientCredentials("https://login.example.test/tenant1", "app-id",
                             Secret(secret_value), "https://org.crm.dynamics.com/.default",
                             secret_setting="environment variable CRM_CLIENT_SECRET",
                             http=_token_server([]))
    with pytest.raises(AuthError) as info:
        auth.token()
    error = info.value
    assert "CRM_CLIENT_SECRET" in str(error) and "app-id" in str(error)
    for text in (str(error), repr(error), repr(error.args), repr(auth), str(error.to_dict())):
        assert secret_value not in text


def test_bc_create_with_lost_reply_is_found_by_natural_key_not_resent() -> None:
    batches: list[list[dict[str, Any]]] = []
    lookups: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            lookups.append(dict(request.url.params)["$filter"])
            found = "number eq '10000'" in lookups[-1]
            return httpx.Response(200, json={"value": [
                {"id": GUIDS[7], "number": "10000", "@odata.etag": 'W/"a"'}] if found else []})
        batches.append(json.loads(request.content)["requests"])
        if len(batches) == 1:
            raise httpx.ReadError("connection reset by peer", request=request)
        return httpx.Response(200, json={"responses": [
            {"id": r["id"], "status": 201, "body": {"id": GUIDS[8], "number": "20000"}}
            for r in batches[-1]]})

    client = bc(handler)
    client.http._sleep = lambda s: None
    outcomes = client.write([
        WriteOp.create("customers", {"number": "10000"}, natural_key={"number": "10000"}),
        WriteOp.create("customers", {"number": "20000"}, natural_key={"number": "20000"})])
    assert len(batches) == 2 and [r["body"]["number"] for r in batches[1]] == ["20000"]
    assert lookups == ["number eq '10000'", "number eq '20000'"]
    assert (outcomes[0].ok, outcomes[0].already_existed, outcomes[0].id) == (True, True, GUIDS[7])
    assert (outcomes[1].ok, outcomes[1].already_existed, outcomes[1].id) == (True, False, GUIDS[8])


def test_adaptive_pool_halves_on_throttle_and_grows_back() -> None:
    from nav_crm_ops.connectors import AdaptivePool

    pool = AdaptivePool(8)
    pool.throttled()
    pool.throttled()
    assert pool.width == 2
    for _ in range(2 + 3):
        pool.succeeded()
    assert pool.width == 4
    assert pool.map(lambda n: n * n, range(20)) == [n * n for n in range(20)]


def test_a_batch_that_keeps_failing_reports_each_record_instead_of_raising() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503, headers={"Retry-After": "0"},
                              json={"error": {"code": "", "message": "Service unavailable"}})

    outcomes = dataverse(handler, batch_size=2).write(
        [WriteOp.create("accounts", {"name": n}, key=g) for n, g in zip("ABC", GUIDS,
                                                                         strict=False)])
    assert [o.ok for o in outcomes] == [False, False, False]
    assert all(o.error is not None and o.error.transient for o in outcomes)
    assert [o.id for o in outcomes] == GUIDS[:3]
