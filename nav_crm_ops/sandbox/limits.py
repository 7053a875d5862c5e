"""Service protection limits and fault injection, as ASGI middleware.

Limits (off by default) are scaled-down versions of the documented ones so tests can reach
them quickly: Dataverse counts requests per client in a sliding window and concurrent requests
(429 with ``Retry-After`` and the documented error codes); Business Central processes a few
requests per client at once, queues a few more and answers 429 beyond that, plus a request
window like the online service's.

Faults (off by default) follow a spec such as ``"rate=0.05,kinds=503+reset+slow+429,seed=7"``:
each API request draws from a seeded RNG, so a given spec and request sequence always fail the
same way. ``reset`` closes the connection without a complete response. ``commit504`` and
``commitreset`` are as strict as the real Business Central: a write (a ``$batch`` without
``Isolation: snapshot``, or a single POST/PATCH/DELETE) runs and commits, and then its answer is
a 504 Gateway Timeout or a dropped connection; drawn for any other request they do nothing.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import random
import threading
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, fields, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .context import SandboxContext

__all__ = [
    "COMMIT_FAULT_KINDS",
    "DEFAULT_FAULT_KINDS",
    "FAULT_KINDS",
    "FaultInjector",
    "FaultMiddleware",
    "FaultSpecError",
    "LimitSettings",
    "LimitsMiddleware",
    "ServiceProtection",
    "parse_fault_spec",
]

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

DEFAULT_FAULT_KINDS = ("503", "reset", "slow", "429")
COMMIT_FAULT_KINDS = ("commit504", "commitreset")
FAULT_KINDS = DEFAULT_FAULT_KINDS + COMMIT_FAULT_KINDS
INCOMPLETE_RESPONSE_MESSAGE = "ASGI callable returned without completing response."


def _service_of(path: str) -> str | None:
    if path.startswith("/crm/"):
        return "dataverse"
    if path.startswith("/bc/"):
        return "business_central"
    if path.startswith("/nav/"):
        return "nav"
    return None


def _error_body(service: str, code: str, message: str) -> bytes:
    if service == "business_central":
        message = f"{message}  CorrelationId:  {uuid.uuid4()}."
    return json.dumps({"error": {"code": code, "message": message}}).encode()


async def _respond(send: Send, status: int, body: bytes,
                   headers: list[tuple[bytes, bytes]] | None = None) -> None:
    all_headers = [(b"content-type", b"application/json; charset=utf-8"),
                   (b"content-length", str(len(body)).encode()), *(headers or [])]
    await send({"type": "http.response.start", "status": status, "headers": all_headers})
    await send({"type": "http.response.body", "body": body})


# --------------------------------------------------------------------------- limits
@dataclass(frozen=True)
class LimitSettings:
    """Scaled-down limits (the real ones: Dataverse 6000 requests / 300 s and 52 concurrent
    per user; BC 6000 requests / 300 s, 5 concurrent with a queue of 95)."""

    requests: int = 600
    window_s: float = 10.0
    concurrent: int = 52
    bc_requests: int = 600
    bc_window_s: float = 10.0
    bc_concurrent: int = 5
    bc_queue: int = 10
    bc_queue_timeout_s: float = 30.0


class _ClientState:
    def __init__(self) -> None:
        self.hits: deque[float] = deque()
        self.active = 0
        self.waiting = 0
        self.condition: asyncio.Condition | None = None


class ServiceProtection:
    """Per-client counters behind :class:`LimitsMiddleware`."""

    def __init__(self) -> None:
        self.enabled = False
        self.settings = LimitSettings()
        self.throttled: dict[str, int] = {"dataverse": 0, "business_central": 0}
        self._clients: dict[tuple[str, str], _ClientState] = {}
        self._lock = threading.Lock()

    def configure(self, enabled: bool, **settings: Any) -> None:
        """Turn limits on/off; keyword settings override :class:`LimitSettings` defaults."""
        known = {f.name for f in fields(LimitSettings)}
        unknown = sorted(set(settings) - known)
        if unknown:
            raise ValueError(f"unknown limit setting(s) {', '.join(unknown)}; use "
                             f"{', '.join(sorted(known))}")
        with self._lock:
            self.enabled = bool(enabled)
            self.settings = replace(LimitSettings(), **settings)
            self._clients.clear()

    def describe(self) -> dict[str, Any]:
        return {"enabled": self.enabled,
                "settings": {f.name: getattr(self.settings, f.name)
                             for f in fields(LimitSettings)},
                "throttled": dict(self.throttled)}

    def client(self, service: str, client_id: str) -> _ClientState:
        with self._lock:
            return self._clients.setdefault((service, client_id), _ClientState())

    def count_request(self, state: _ClientState, limit: int, window_s: float) -> float | None:
        """Record a request; returns seconds to wait when the window is already full."""
        now = time.monotonic()
        with self._lock:
            while state.hits and state.hits[0] <= now - window_s:
                state.hits.popleft()
            if len(state.hits) >= limit:
                return max(0.0, state.hits[0] + window_s - now)
            state.hits.append(now)
            return None

    def remaining(self, state: _ClientState, limit: int) -> int:
        with self._lock:
            return max(0, limit - len(state.hits))


def _client_id(scope: Scope) -> str:
    state = scope.get("state") or {}
    return str(state.get("client_id") or "anonymous")


class LimitsMiddleware:
    """429s like the real services when the (scaled-down) limits are exceeded."""

    def __init__(self, app: ASGIApp, ctx: SandboxContext) -> None:
        self.app = app
        self.ctx = ctx

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        protection = self.ctx.protection
        service = _service_of(scope.get("path", "")) if scope["type"] == "http" else None
        # NAV 2018 on premises has no service protection limits: only faults reach it
        if service in (None, "nav") or not protection.enabled:
            await self.app(scope, receive, send)
            return
        if service == "dataverse":
            await self._dataverse(scope, receive, send)
        else:
            await self._business_central(scope, receive, send)

    async def _dataverse(self, scope: Scope, receive: Receive, send: Send) -> None:
        protection = self.ctx.protection
        limits = protection.settings
        state = protection.client("dataverse", _client_id(scope))
        wait = protection.count_request(state, limits.requests, limits.window_s)
        if wait is not None:
            protection.throttled["dataverse"] += 1
            await _respond(send, 429, _error_body(
                "dataverse", "0x80072322",
                f"Number of requests exceeded the limit of {limits.requests} over time window "
                f"of {_seconds(limits.window_s)} seconds."),
                [(b"retry-after", str(max(1, math.ceil(wait))).encode())])
            return
        if state.active >= limits.concurrent:
            protection.throttled["dataverse"] += 1
            await _respond(send, 429, _error_body(
                "dataverse", "0x80072326",
                f"Number of concurrent requests exceeded the limit of {limits.concurrent}."),
                [(b"retry-after", b"1")])
            return
        remaining = str(protection.remaining(state, limits.requests)).encode()

        async def send_with_headers(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message = dict(message)
                message["headers"] = [*message.get("headers", []),
                                      (b"x-ms-ratelimit-burst-remaining-xrm-requests",
                                       remaining)]
            await send(message)

        state.active += 1
        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            state.active -= 1

    async def _business_central(self, scope: Scope, receive: Receive, send: Send) -> None:
        protection = self.ctx.protection
        limits = protection.settings
        state = protection.client("business_central", _client_id(scope))
        if protection.count_request(state, limits.bc_requests, limits.bc_window_s) is not None:
            protection.throttled["business_central"] += 1
            await _respond(send, 429, _error_body(
                "business_central", "Application_TooManyRequests",
                f"The request exceeded the maximum of {limits.bc_requests} requests per "
                f"{_seconds(limits.bc_window_s)} seconds. Please retry later."))
            return
        if state.condition is None:
            state.condition = asyncio.Condition()
        condition = state.condition
        async with condition:
            if state.active >= limits.bc_concurrent:
                if state.waiting >= limits.bc_queue:
                    protection.throttled["business_central"] += 1
                    await _respond(send, 429, _error_body(
                        "business_central", "Application_TooManyRequests",
                        f"The request could not be processed: {limits.bc_concurrent} requests "
                        f"are already running and {limits.bc_queue} are queued. Please retry "
                        "later."))
                    return
                state.waiting += 1
                try:
                    await asyncio.wait_for(
                        condition.wait_for(lambda: state.active < limits.bc_concurrent),
                        timeout=limits.bc_queue_timeout_s)
                except TimeoutError:
                    await _respond(send, 503, _error_body(
                        "business_central", "Application_ServiceUnavailable",
                        "The request waited too long in the queue. Please retry later."),
                        [(b"retry-after", b"5")])
                    return
                finally:
                    state.waiting -= 1
            state.active += 1
        try:
            await self.app(scope, receive, send)
        finally:
            async with condition:
                state.active -= 1
                condition.notify()


def _seconds(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


# --------------------------------------------------------------------------- faults
class FaultSpecError(ValueError):
    """The ``--faults`` spec cannot be parsed; the message names the bad part."""


@dataclass(frozen=True)
class FaultSpec:
    rate: float
    kinds: tuple[str, ...]
    seed: int
    slow_s: tuple[float, float] = (1.0, 2.0)


def _fault_rate(value: str) -> float:
    try:
        rate = float(value)
    except ValueError:
        raise FaultSpecError(f"fault spec 'rate={value}': not a number") from None
    if not 0.0 <= rate <= 1.0:
        raise FaultSpecError(f"fault spec 'rate={value}': must be between 0 and 1")
    return rate


def _fault_kinds(value: str) -> tuple[str, ...]:
    kinds = tuple(k.strip().lower() for k in value.split("+") if k.strip())
    bad = [k for k in kinds if k not in FAULT_KINDS]
    if bad or not kinds:
        raise FaultSpecError(f"fault spec 'kinds={value}': unknown kind(s) "
                             f"{', '.join(bad) or '(none)'}; use "
                             f"{'+'.join(FAULT_KINDS)}")
    return kinds


def _fault_seed(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise FaultSpecError(f"fault spec 'seed={value}': not an integer") from None


def _fault_slow(value: str) -> tuple[float, float]:
    low, _, high = value.partition("-")
    try:
        return (float(low), float(high or low))
    except ValueError:
        raise FaultSpecError(f"fault spec 'slow={value}': use seconds like 1-2") from None


_FAULT_SETTINGS: dict[str, Callable[[str], Any]] = {
    "rate": _fault_rate, "kinds": _fault_kinds, "seed": _fault_seed, "slow": _fault_slow}


def parse_fault_spec(spec: str) -> FaultSpec:
    """``rate=R,kinds=K1+K2,seed=S[,slow=MIN-MAX]`` → :class:`FaultSpec`."""
    settings: dict[str, Any] = {"kinds": DEFAULT_FAULT_KINDS, "seed": 0, "slow": (1.0, 2.0)}
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        name, sep, value = part.partition("=")
        name = name.strip().lower()
        if not sep:
            raise FaultSpecError(f"fault spec part '{part}' is not name=value; expected e.g. "
                                 "'rate=0.05,kinds=503+reset+slow+429,seed=7'")
        parse = _FAULT_SETTINGS.get(name)
        if parse is None:
            raise FaultSpecError(f"fault spec part '{part}': unknown setting '{name}'; use "
                                 "rate, kinds, seed, slow")
        settings[name] = parse(value.strip())
    if "rate" not in settings:
        raise FaultSpecError(f"fault spec '{spec}' has no rate=; e.g. 'rate=0.05'")
    return FaultSpec(settings["rate"], settings["kinds"], settings["seed"], settings["slow"])


class FaultInjector:
    """Seeded per-request fault decisions and counts by kind."""

    def __init__(self, spec: FaultSpec, text: str) -> None:
        self.spec = spec
        self.text = text
        self._rng = random.Random(spec.seed)
        self._lock = threading.Lock()
        self.requests = 0
        self.injected: dict[str, int] = dict.fromkeys(spec.kinds, 0)

    @classmethod
    def from_spec(cls, spec: str | None) -> FaultInjector | None:
        if spec is None or not spec.strip() or spec.strip().lower() in ("off", "none"):
            return None
        return cls(parse_fault_spec(spec), spec.strip())

    def draw(self, commits: bool = False) -> tuple[str | None, float]:
        """The fault for the next request (None for none) and, for ``slow``, the delay.
        ``commits``: whether the request is a write a commit fault applies to (the draw
        consumes the same random numbers either way, so the sequence stays reproducible)."""
        with self._lock:
            self.requests += 1
            hit = self._rng.random() < self.spec.rate
            kind = self._rng.choice(self.spec.kinds)
            delay = self._rng.uniform(*self.spec.slow_s)
            if not hit or (kind in COMMIT_FAULT_KINDS and not commits):
                return None, 0.0
            self.injected[kind] += 1
            return kind, delay

    def describe(self) -> dict[str, Any]:
        return {"spec": self.text, "requests": self.requests, "injected": dict(self.injected)}


class _QuietIncompleteResponses(logging.Filter):
    """Injected resets are deliberate: keep uvicorn from logging each one as an error."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != INCOMPLETE_RESPONSE_MESSAGE


_QUIET_FILTER = _QuietIncompleteResponses()


def _commits_one_by_one(scope: Scope) -> bool:
    """A Business Central or NAV write whose operations commit as they run: a ``$batch``
    without ``Isolation: snapshot`` or a single POST/PATCH/DELETE."""
    if _service_of(scope.get("path", "")) not in ("business_central", "nav"):
        return False
    if str(scope.get("method", "GET")).upper() not in ("POST", "PATCH", "DELETE"):
        return False
    headers = {bytes(k).lower(): bytes(v) for k, v in scope.get("headers") or []}
    snapshot = headers.get(b"isolation", b"").strip().lower() == b"snapshot"
    return not (str(scope.get("path", "")).endswith("/$batch") and snapshot)


class FaultMiddleware:
    """Injects 503 / connection reset / slow answer / 429 into API requests, and commit-then-
    lose-the-answer (504 or reset after the write ran) into Business Central writes."""

    def __init__(self, app: ASGIApp, ctx: SandboxContext) -> None:
        self.app = app
        self.ctx = ctx
        uvicorn_log = logging.getLogger("uvicorn.error")
        if _QUIET_FILTER not in uvicorn_log.filters:
            uvicorn_log.addFilter(_QUIET_FILTER)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        injector = self.ctx.faults
        service = _service_of(scope.get("path", "")) if scope["type"] == "http" else None
        if injector is None or service is None:
            await self.app(scope, receive, send)
            return
        kind, delay = injector.draw(commits=_commits_one_by_one(scope))
        if kind == "429" and service == "nav":
            kind = "503"  # no throttling on premises: an unavailable server instead
        if kind in COMMIT_FAULT_KINDS:
            await self._commit_then_lose(kind, service, scope, receive, send)
        elif kind == "503":
            code = "" if service == "dataverse" else "Unknown"
            await _respond(send, 503, _error_body(
                service, code, "The service is temporarily unavailable (sandbox fault "
                "injection). Please retry later."), [(b"retry-after", b"1")])
        elif kind == "429":
            code = "0x80072322" if service == "dataverse" else "Application_TooManyRequests"
            await _respond(send, 429, _error_body(
                service, code, "Too many requests (sandbox fault injection). Please retry "
                "later."), [(b"retry-after", b"1")])
        elif kind == "reset":
            # Promise a body and close the connection before sending it.
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"application/json"),
                                    (b"content-length", b"4096")]})
        else:
            if kind == "slow":
                await asyncio.sleep(delay)
            await self.app(scope, receive, send)

    async def _commit_then_lose(self, kind: str, service: str, scope: Scope, receive: Receive,
                                send: Send) -> None:
        """Run the write to the end (it commits), drop its answer, then answer 504 like the
        gateway after the 10-minute request timeout, or close the connection (``commitreset``)."""

        async def swallow(message: MutableMapping[str, Any]) -> None:
            return None

        await self.app(scope, receive, swallow)
        if kind == "commit504":
            await _respond(send, 504, _error_body(
                service, "Unknown", "Gateway Timeout: the request exceeded the execution time "
                "limit (sandbox fault injection: it ran and committed)."))
        else:
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"application/json"),
                                    (b"content-length", b"4096")]})
