"""Service protection limits (429 + Retry-After) and seeded fault injection."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from nav_crm_ops.sandbox import Sandbox
from nav_crm_ops.sandbox.limits import FaultSpecError, parse_fault_spec


def token(sb: Sandbox, scope: str) -> dict[str, str]:
    info = sb.info
    response = httpx.post(info.token_url, data={
        "grant_type": "client_credentials", "client_id": info.client_id,
        "client_secret": info.client_secret.reveal(), "scope": scope})
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


@pytest.mark.parametrize(("spec", "named"), [
    ("rate=abc", "rate=abc"),
    ("rate=2", "rate=2"),
    ("rate=0.1,kinds=503+boom", "boom"),
    ("rate=0.1,seed=x", "seed=x"),
    ("rate=0.1,colour=red", "colour"),
    ("kinds=503", "rate="),
    ("rate=0.1,oops", "oops"),
])
def test_bad_fault_specs_name_the_bad_part(spec: str, named: str) -> None:
    with pytest.raises(FaultSpecError, match=named):
        parse_fault_spec(spec)


def test_fault_spec_parses_all_settings() -> None:
    spec = parse_fault_spec("rate=0.05,kinds=503+reset+slow+429,seed=7,slow=0.5-1")
    assert (spec.rate, spec.kinds, spec.seed, spec.slow_s) == (
        0.05, ("503", "reset", "slow", "429"), 7, (0.5, 1.0))


def test_dataverse_request_window_answers_429_with_retry_after(fresh_sandbox: Sandbox) -> None:
    headers = token(fresh_sandbox, fresh_sandbox.info.dataverse_scope)
    fresh_sandbox.set_limits(True, requests=5, window_s=30)
    try:
        with httpx.Client(headers=headers) as client:
            url = fresh_sandbox.info.dataverse_url + "WhoAmI"
            answers = [client.get(url) for _ in range(6)]
    finally:
        fresh_sandbox.set_limits(False)
    assert [a.status_code for a in answers] == [200] * 5 + [429]
    remaining = [int(a.headers["x-ms-ratelimit-burst-remaining-xrm-requests"])
                 for a in answers[:5]]
    assert remaining == sorted(remaining, reverse=True) and remaining[-1] == 0
    throttled = answers[-1]
    assert 1 <= int(throttled.headers["retry-after"]) <= 30
    assert throttled.json()["error"] == {
        "code": "0x80072322",
        "message": "Number of requests exceeded the limit of 5 over time window of 30 seconds."}


def test_business_central_concurrency_limit_answers_429(fresh_sandbox: Sandbox) -> None:
    info = fresh_sandbox.info
    headers = token(fresh_sandbox, info.bc_scope)
    url = info.bc_api_url + f"companies({info.company_id})/items"
    # A slow answer (injected) holds the only processing slot; the queue is empty.
    fresh_sandbox.set_limits(True, bc_concurrent=1, bc_queue=0)
    fresh_sandbox.set_faults("rate=1,kinds=slow,seed=1,slow=1.5-1.5")
    try:
        with ThreadPoolExecutor(1) as pool:
            first = pool.submit(httpx.get, url, headers=headers, timeout=30)
            time.sleep(0.5)
            second = httpx.get(url, headers=headers)
            first_status = first.result().status_code
        fresh_sandbox.set_faults(None)
        after = httpx.get(url, headers=headers)
    finally:
        fresh_sandbox.set_limits(False)
        fresh_sandbox.set_faults(None)
    assert first_status == 200
    assert second.status_code == 429
    assert second.json()["error"]["code"] == "Application_TooManyRequests"
    assert after.status_code == 200


def test_dataverse_concurrency_limit_answers_429(fresh_sandbox: Sandbox) -> None:
    headers = token(fresh_sandbox, fresh_sandbox.info.dataverse_scope)
    url = fresh_sandbox.info.dataverse_url + "WhoAmI"
    fresh_sandbox.set_limits(True, concurrent=1)
    fresh_sandbox.set_faults("rate=1,kinds=slow,seed=1,slow=1.5-1.5")
    try:
        with ThreadPoolExecutor(1) as pool:
            first = pool.submit(httpx.get, url, headers=headers, timeout=30)
            time.sleep(0.5)
            second = httpx.get(url, headers=headers)
            first_status = first.result().status_code
    finally:
        fresh_sandbox.set_limits(False)
        fresh_sandbox.set_faults(None)
    assert first_status == 200
    assert second.status_code == 429 and second.headers["retry-after"].isdigit()
    assert second.json()["error"]["code"] == "0x80072326"


def test_unknown_limit_setting_is_refused(sandbox: Sandbox) -> None:
    with pytest.raises(ValueError, match="reqests"):
        sandbox.set_limits(True, reqests=5)
    sandbox.set_limits(False)


def _statuses(sb: Sandbox, headers: dict[str, str], count: int) -> list[int]:
    url = sb.info.bc_api_url + "companies"
    with httpx.Client(headers=headers) as client:
        return [client.get(url).status_code for _ in range(count)]


def test_faults_are_deterministic_by_seed(fresh_sandbox: Sandbox) -> None:
    headers = token(fresh_sandbox, fresh_sandbox.info.bc_scope)
    try:
        fresh_sandbox.set_faults("rate=0.5,kinds=503+429,seed=7")
        first = _statuses(fresh_sandbox, headers, 30)
        status = httpx.get(fresh_sandbox.info.base_url + "/_sandbox/status").json()
        fresh_sandbox.set_faults("rate=0.5,kinds=503+429,seed=7")
        second = _statuses(fresh_sandbox, headers, 30)
        fresh_sandbox.set_faults("rate=0.5,kinds=503+429,seed=8")
        other = _statuses(fresh_sandbox, headers, 30)
    finally:
        fresh_sandbox.set_faults(None)
    assert first == second
    assert other != first
    assert {200, 503, 429} <= set(first)
    injected = status["faults"]["injected"]
    assert injected == {"503": first.count(503), "429": first.count(429)}


def test_fault_kinds_behave_like_the_network(fresh_sandbox: Sandbox) -> None:
    info = fresh_sandbox.info
    headers = token(fresh_sandbox, info.bc_scope)
    url = info.bc_api_url + "companies"
    try:
        fresh_sandbox.set_faults("rate=1,kinds=reset,seed=1")
        with pytest.raises(httpx.TransportError):
            httpx.get(url, headers=headers)
        # The token endpoint and the admin routes are never faulted.
        assert token(fresh_sandbox, info.bc_scope)
        fresh_sandbox.set_faults("rate=1,kinds=slow,seed=1,slow=0.3-0.3")
        started = time.monotonic()
        slow = httpx.get(url, headers=headers)
        assert slow.status_code == 200 and time.monotonic() - started >= 0.3
        fresh_sandbox.set_faults("rate=1,kinds=503,seed=1")
        unavailable = httpx.get(url, headers=headers)
        assert unavailable.status_code == 503
        assert unavailable.json()["error"]["message"].endswith(".")
        assert "CorrelationId:" in unavailable.json()["error"]["message"]
    finally:
        fresh_sandbox.set_faults(None)
    assert httpx.get(url, headers=headers).status_code == 200
