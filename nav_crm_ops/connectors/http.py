"""One pooled httpx client per endpoint: standard headers, retries, accounting, parallelism."""

from __future__ import annotations

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
        import json as jsonlib

        body = content if json is None else jsonlib.dumps(json).encode()
        send_headers = dict(headers or {})
        if json is not None:
            send_headers.setdefault("Content-Type", "application/json")
        accepted = set(ok)
        attempt = 0
        waited = 0.0
        auth_retried = False
        connect_failures = 0
        while True:
            send_headers.update(self.auth.headers())
            error: ConnectorError
            try:
                self.stats.add(requests=1, bytes_sent=len(body or b""),
                               reads=1 if method == "GET" else 0,
                               writes=0 if method == "GET" else 1)
                response = self._client.request(method, self.url(path), headers=send_headers,
                                                content=body)
                self.stats.add(bytes_received=len(response.content))
            except (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError) as exc:
                error = TransientError(
                    self._network_message(exc, path, entity, attempt + 1),
                    service=self.service, entity=entity, record_key=record_key)
                if not retry_unsafe and not isinstance(exc, httpx.ConnectError):
                    raise error from None
                if isinstance(exc, httpx.ConnectError):
                    connect_failures += 1
                    if connect_failures > self.retry.max_connect_retries:
                        raise TransientError(
                            f"{self.service} {entity}: cannot connect to {self.base_url} "
                            f"({exc}); check the URL in nav_crm_ops.toml and that the service "
                            "is reachable from here", service=self.service, entity=entity,
                            record_key=record_key) from None
                delay = self.retry.backoff(attempt)
            else:
                status = response.status_code
                if status < 400 or status in accepted:
                    return response
                if status == 401 and not auth_retried and self.auth.invalidate():
                    auth_retried = True
                    continue
                error = error_from_response(status, response.content, response.headers,
                                            service=self.service, entity=entity,
                                            record_key=record_key)
                if status not in RETRY_STATUS or (status in (502, 504) and not retry_unsafe):
                    raise error
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
                delay = retry_after if retry_after is not None else self.retry.backoff(attempt)
                if status == 429:
                    self.stats.add(throttled=1, throttled_wait_s=delay)
                    if self.on_throttle:
                        self.on_throttle()
                else:
                    self.stats.add(backoff_wait_s=delay)
            if attempt >= self.retry.max_retries or waited + delay > self.retry.max_wait_s:
                raise error
            attempt += 1
            waited += delay
            self.stats.add(retries=1)
            self._sleep(delay)


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

