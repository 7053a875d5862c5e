"""The HTTP layer's retry decisions, one per test: what is re-sent, how often, how long."""

from __future__ import annotations

import re
from collections.abc import Callable

import httpx
import pytest

from nav_crm_ops.connectors.http import RetryPolicy, ServiceClient
from nav_crm_ops.exceptions import AuthError, TransientError

BASE = "https://service.test/api/"
Handler = Callable[[httpx.Request], httpx.Response]


class FlakyAuth:
    """Auth whose token can be renewed ``renewals`` times."""

    def __init__(self, renewals: int = 1) -> None:
        self.renewals = renewals
        self.issued = 0

    def headers(self) -> dict[str, str]:
        self.issued += 1
        return {"Authorization": f"Bearer {self.issued}"}

    def invalidate(self) -> bool:
        if self.renewals <= 0:
            return False
        self.renewals -= 1
        return True


def client(handler: Handler, waits: list[float], *, auth: FlakyAuth | None = None,
           **policy: float) -> ServiceClient:
    return ServiceClient(BASE, auth or FlakyAuth(), service="svc",
                         retry=RetryPolicy(**policy),  # type: ignore[arg-type]
                         transport=httpx.MockTransport(handler), sleep=waits.append)


def test_a_refused_connection_is_retried_only_max_connect_retries_times() -> None:
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.method)
        raise httpx.ConnectError("refused", request=request)

    waits: list[float] = []
    http = client(handler, waits, max_retries=8, max_connect_retries=2, base_delay_s=0.0)
    with pytest.raises(TransientError, match=re.escape(f"cannot connect to {BASE}")):
        http.request("POST", "things", json={}, retry_unsafe=False)
    assert len(calls) == 3 and len(waits) == 2
    assert http.stats.retries == 2


def test_a_timeout_of_an_unsafe_request_is_raised_at_once() -> None:
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.method)
        raise httpx.ReadTimeout("slow", request=request)

    waits: list[float] = []
    http = client(handler, waits, base_delay_s=0.0)
    with pytest.raises(TransientError, match=re.escape(f"no answer from {BASE}$batch")):
        http.request("POST", "$batch", json={}, retry_unsafe=False)
    assert len(calls) == 1 and waits == []


def test_a_401_renews_the_token_once_without_waiting() -> None:
    seen: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("Authorization"))
        return httpx.Response(401, json={"error": {"code": "", "message": "expired"}})

    waits: list[float] = []
    http = client(handler, waits, auth=FlakyAuth(renewals=5))
    with pytest.raises(AuthError):
        http.request("GET", "things")
    assert seen == ["Bearer 1", "Bearer 2"] and waits == []
    assert http.stats.retries == 0


def test_backoff_stops_when_the_total_wait_would_exceed_max_wait_s() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503, headers={"Retry-After": "2"})

    waits: list[float] = []
    http = client(handler, waits, max_retries=8, max_wait_s=5.0)
    with pytest.raises(TransientError):
        http.request("GET", "things")
    assert waits == [2.0, 2.0]
    assert http.stats.requests == 3
    assert http.stats.backoff_wait_s == 6.0  # the refused third wait is still counted


def test_extra_ok_statuses_are_returned_not_raised() -> None:
    waits: list[float] = []
    http = client(lambda request: httpx.Response(404), waits)
    assert http.request("GET", "things", ok=(404,)).status_code == 404
    assert http.stats.requests == 1 and http.stats.reads == 1 and http.stats.writes == 0
