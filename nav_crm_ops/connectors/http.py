"""One pooled httpx client per endpoint: standard headers, retries, accounting, parallelism."""

from __future__ import annotations

import json as jsonlib
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx

from ..config import DEFAULT_TIMEOUT_S
from ..exceptions import ConnectorError, TransientError
from .auth import Auth
from .errors import error_from_response, parse_retry_after

__all__ = ["AdaptivePool", "RequestStats", "RetryPolicy", "ServiceClient"]

T = TypeVar("T")
R = TypeVar("R")
RETRY_STATUS = frozenset({429, 502, 503, 504})
OUTCOME_UNKNOWN_STATUS = frozenset({502, 504})
"""Gateway errors after which the request may still have run (re-sent only when safe)."""
NETWORK_ERRORS = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)
CONNECT_TIMEOUT_S = 15.0


@dataclass
class RequestStats:
    """Counters for the job log and benchmarks (thread-safe)."""

    service: str = ""
    requests: int = 0
    reads: int = 0
    writes: int = 0
    retries: int = 0
    throttled: int = 0
    throttled_wait_s: float = 0.0
    backoff_wait_s: float = 0.0
    bytes_sent: int = 0
    bytes_received: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, **deltas: float) -> None:
        with self._lock:
            for name, value in deltas.items():
                setattr(self, name, getattr(self, name) + value)

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("service", "requests", "reads", "writes",
                                              "retries", "throttled",
                                              "throttled_wait_s", "backoff_wait_s",
                                              "bytes_sent", "bytes_received")}


@dataclass(frozen=True)
class RetryPolicy:
    """Retry 429/502/503/504 and network failures: Retry-After when given, else capped
    exponential backoff with full jitter; at most ``max_retries`` per call and
    ``max_wait_s`` total waiting. A refused connection is retried only ``max_connect_retries``
    times: it is usually a wrong URL or a service that is down, and people should hear so
    in seconds, not minutes."""

    max_retries: int = 8
    max_connect_retries: int = 3
    base_delay_s: float = 0.5
    max_delay_s: float = 30.0
    max_wait_s: float = 300.0

    def backoff(self, attempt: int) -> float:
        cap = min(self.max_delay_s, self.base_delay_s * (2 ** attempt))
        return random.uniform(cap / 2, cap)

    def allows(self, attempt: int, waited: float, delay: float) -> bool:
        """True while another try fits both budgets: retries used and total time waited."""
        return attempt < self.max_retries and waited + delay <= self.max_wait_s


@dataclass
class _Call:
    """One logical request across its attempts: what is sent, and how much of the retry
    budget it has used so far (kept together so each decision reads one object)."""

    method: str
    path: str
    body: bytes | None
    headers: dict[str, str]
    entity: str
    record_key: str
    accepted: frozenset[int]
    retry_unsafe: bool
    attempt: int = 0
    waited: float = 0.0
    auth_retried: bool = False
    connect_failures: int = 0

    @classmethod
    def build(cls, method: str, path: str, *, headers: dict[str, str] | None,
              content: bytes | None, json: Any, entity: str, record_key: str,
              ok: Iterable[int], retry_unsafe: bool) -> _Call:
        """Encode a JSON body once (with its content type) so every attempt sends the same bytes."""
        body = content if json is None else jsonlib.dumps(json).encode()
        send_headers = dict(headers or {})
        if json is not None:
            send_headers.setdefault("Content-Type", "application/json")
        return cls(method, path, body, send_headers, entity, record_key, frozenset(ok),
                   retry_unsafe)

    def spend(self, delay: float) -> None:
        """Record one more attempt and its wait against the budget."""
        self.attempt += 1
        self.waited += delay


class ServiceClient:
    """HTTP for one service endpoint (``base_url`` ends with ``/``)."""

    def __init__(self, base_url: str, auth: Auth, *, service: str,
                 default_headers: dict[str, str] | None = None,
                 retry: RetryPolicy | None = None, timeout: float = DEFAULT_TIMEOUT_S,
                 transport: httpx.BaseTransport | None = None,
                 max_connections: int = 16, sleep: Callable[[float], None] = time.sleep) -> None:
        self.base_url = base_url if base_url.endswith("/") else base_url + "/"
        self.auth = auth
        self.service = service
        self.retry = retry or RetryPolicy()
        self.stats = RequestStats(service=service)
        self._sleep = sleep
        self.on_throttle: Callable[[], None] | None = None
        self._client = httpx.Client(
            base_url=self.base_url, headers=default_headers or {}, transport=transport,
            auth=_auth_flow(auth),
            timeout=httpx.Timeout(timeout, connect=min(timeout, CONNECT_TIMEOUT_S)),
            limits=httpx.Limits(max_connections=max_connections,
                                max_keepalive_connections=max_connections))
        self.timeout_s = timeout
        """Seconds a request waits for the service's answer (``[http] timeout_s``)."""

    def set_timeout(self, seconds: float) -> None:
        """Wait at most ``seconds`` for an answer (connecting: at most 15 s)."""
        self.timeout_s = seconds
        self._client.timeout = httpx.Timeout(seconds, connect=min(seconds, CONNECT_TIMEOUT_S))

    def _network_message(self, exc: Exception, path: str, entity: str, attempts: int) -> str:
        """What a network failure says: for a timeout the URL, the limit and what to do."""
        if isinstance(exc, httpx.TimeoutException) and not isinstance(exc, httpx.ConnectTimeout):
            url = self.url(path).split("?", 1)[0]
            return (f"{self.service} {entity}: no answer from {url} within {self.timeout_s:g} s "
                    f"({attempts} attempt(s); the limit is [http] timeout_s in nav_crm_ops.toml):"
                    " the service may be overloaded or hanging; try again later, or raise "
                    "timeout_s if it is legitimately slow")
        return (f"{self.service} {entity}: {type(exc).__name__} talking to {self.base_url}; "
                "the service may be overloaded or unreachable")

    def close(self) -> None:
        self._client.close()

    def url(self, path: str) -> str:
        """Absolute URL for a path relative to the endpoint (absolute URLs pass through)."""
        return path if path.startswith(("http://", "https://")) else self.base_url + path

    def request(self, method: str, path: str, *, headers: dict[str, str] | None = None,
                content: bytes | None = None, json: Any = None, entity: str = "",
                record_key: str = "", ok: Iterable[int] = (), retry_unsafe: bool = True,
                ) -> httpx.Response:
        """Send with retries; raise the mapped :class:`ConnectorError` on failure.

        ``ok`` lists extra statuses returned to the caller instead of raised. Requests whose
        outcome is unknown — a network error after sending, or a 502/504 from the gateway (the
        request may have run, e.g. a Business Central ``$batch`` commits part by part and 504s
        after 10 minutes) — are only re-sent when ``retry_unsafe``; otherwise the error is
        raised at once and the caller settles what happened.
        """
        call = _Call.build(method, path, headers=headers, content=content, json=json,
                           entity=entity, record_key=record_key, ok=ok,
                           retry_unsafe=retry_unsafe)
        while True:
            error: ConnectorError
            try:
                response = self._send(call)
            except NETWORK_ERRORS as exc:
                error, delay = self._network_failure(exc, call)
            else:
                if response.status_code < 400 or response.status_code in call.accepted:
                    return response
                if self._renewed_auth(response, call):
                    continue
                error, delay = self._failed_reply(response, call)
            self._wait_or_raise(call, error, delay)

    def _send(self, call: _Call) -> httpx.Response:
        """One attempt with fresh auth headers, counted in the stats (reads vs writes)."""
        call.headers.update(self.auth.headers())
        reading = call.method == "GET"
        self.stats.add(requests=1, bytes_sent=len(call.body or b""),
                       reads=1 if reading else 0, writes=0 if reading else 1)
        response = self._client.request(call.method, self.url(call.path), headers=call.headers,
                                        content=call.body)
        self.stats.add(bytes_received=len(response.content))
        return response

    def _network_failure(self, exc: Exception, call: _Call) -> tuple[ConnectorError, float]:
        """The error and backoff for a failed attempt that got no reply, or raise at once.

        A refused connection never reached the service, so it is always safe to retry (but
        only a few times); any other failure may have run the request, so it is re-sent only
        when ``retry_unsafe``."""
        error = TransientError(
            self._network_message(exc, call.path, call.entity, call.attempt + 1),
            service=self.service, entity=call.entity, record_key=call.record_key)
        if isinstance(exc, httpx.ConnectError):
            call.connect_failures += 1
            if call.connect_failures > self.retry.max_connect_retries:
                raise self._unreachable(exc, call) from None
        elif not call.retry_unsafe:
            raise error from None
        return error, self.retry.backoff(call.attempt)

    def _unreachable(self, exc: Exception, call: _Call) -> TransientError:
        """The error once connecting failed too often: most likely a wrong URL or a service down."""
        return TransientError(
            f"{self.service} {call.entity}: cannot connect to {self.base_url} "
            f"({exc}); check the URL in nav_crm_ops.toml and that the service "
            "is reachable from here", service=self.service, entity=call.entity,
            record_key=call.record_key)

    def _renewed_auth(self, response: httpx.Response, call: _Call) -> bool:
        """True when a 401 got a fresh token to try once more (a cached one may have expired)."""
        if response.status_code != 401 or call.auth_retried or not self.auth.invalidate():
            return False
        call.auth_retried = True
        return True

    def _failed_reply(self, response: httpx.Response,
                      call: _Call) -> tuple[ConnectorError, float]:
        """The error and wait for a failed reply worth retrying, or raise the error at once."""
        status = response.status_code
        error = error_from_response(status, response.content, response.headers,
                                    service=self.service, entity=call.entity,
                                    record_key=call.record_key)
        if status not in RETRY_STATUS or (status in OUTCOME_UNKNOWN_STATUS
                                          and not call.retry_unsafe):
            raise error
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        delay = retry_after if retry_after is not None else self.retry.backoff(call.attempt)
        self._count_wait(status, delay)
        return error, delay

    def _count_wait(self, status: int, delay: float) -> None:
        """Book a wait as throttling (and tell the pool to narrow) or as plain backoff."""
        if status == 429:
            self.stats.add(throttled=1, throttled_wait_s=delay)
            if self.on_throttle:
                self.on_throttle()
        else:
            self.stats.add(backoff_wait_s=delay)

    def _wait_or_raise(self, call: _Call, error: ConnectorError, delay: float) -> None:
        """Sleep ``delay`` before the next attempt, or raise ``error`` when the budget is spent."""
        if not self.retry.allows(call.attempt, call.waited, delay):
            raise error
        call.spend(delay)
        self.stats.add(retries=1)
        self._sleep(delay)


def _auth_flow(auth: Auth) -> httpx.Auth | None:
    """The httpx auth flow of an auth method that is a handshake rather than a header (NTLM
    offers one through ``flow()``); header-based methods give none and sign each attempt."""
    flow = getattr(auth, "flow", None)
    return flow() if callable(flow) else None


class RetryRound:
    """One round of a ``$batch``: decides which parts to re-send, then waits once for them all.

    A part answering 429/502/503/504 is re-sent while the policy allows; the wait is the longest
    ``Retry-After`` among them (else the policy's backoff), counted as throttled or backoff time.
    """

    def __init__(self, client: ServiceClient, attempt: int) -> None:
        self.client = client
        self.attempt = attempt
        self.delay = 0.0
        self.throttled = False
        self.retrying = 0

    def should_retry(self, status: int, retry_after: str | None, *, missing: bool = False) -> bool:
        """True when this part must be re-sent (``missing``: the batch gave no answer for it)."""
        retryable = status in RETRY_STATUS and self.attempt < self.client.retry.max_retries
        if not (missing or retryable):
            return False
        wait = parse_retry_after(retry_after)
        self.delay = max(self.delay, wait if wait is not None
                         else self.client.retry.backoff(self.attempt))
        if status == 429:
            self.throttled = True
            self.client.stats.add(throttled=1)
            if self.client.on_throttle:
                self.client.on_throttle()
        self.retrying += 1
        return True

    def wait(self) -> None:
        """Sleep before the next round (only when some part is re-sent) and count it."""
        if not self.retrying:
            return
        self.client.stats.add(retries=1, **{
            "throttled_wait_s" if self.throttled else "backoff_wait_s": self.delay})
        time.sleep(self.delay)


class AdaptivePool:
    """Run calls on a thread pool whose width halves on throttling and grows back by one after
    each success streak (AIMD). Threads, not asyncio, so it works inside a Jupyter kernel."""

    def __init__(self, max_workers: int) -> None:
        self.max_workers = max(1, max_workers)
        self.width = self.max_workers
        self._lock = threading.Lock()
        self._streak = 0

    def throttled(self) -> None:
        with self._lock:
            self.width = max(1, self.width // 2)
            self._streak = 0

    def succeeded(self) -> None:
        with self._lock:
            self._streak += 1
            if self._streak >= self.width and self.width < self.max_workers:
                self.width += 1
                self._streak = 0

    def map(self, fn: Callable[[T], R], items: Iterable[T]) -> list[R]:
        """Results in input order; the first exception propagates after running work ends."""
        pending_items = list(enumerate(items))
        if self.max_workers == 1 or len(pending_items) <= 1:
            ordered: list[R] = []
            for _, item in pending_items:
                ordered.append(fn(item))
                self.succeeded()
            return ordered
        results: dict[int, R] = {}
        queue: Iterator[tuple[int, T]] = iter(pending_items)
        running: dict[Future[R], int] = {}
        with ThreadPoolExecutor(max_workers=self.max_workers) as pool:
            exhausted = False
            while True:
                while not exhausted and len(running) < self.width:
                    nxt = next(queue, None)
                    if nxt is None:
                        exhausted = True
                        break
                    running[pool.submit(fn, nxt[1])] = nxt[0]
                if not running:
                    break
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for fut in done:
                    index = running.pop(fut)
                    exc = fut.exception()
                    if exc is not None:
                        for other in running:
                            other.cancel()
                        raise exc
                    results[index] = fut.result()
                    self.succeeded()
        return [results[i] for i in range(len(pending_items))]

