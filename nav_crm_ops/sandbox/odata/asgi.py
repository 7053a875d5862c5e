"""The Starlette side both services share: one catch-all route answered by a synchronous
service in a worker thread."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

METHODS = ["GET", "POST", "PATCH", "PUT", "DELETE"]


def catch_all_app(endpoint: Callable[[Request], Awaitable[Response]]) -> Starlette:
    """An app sending every path and method of :data:`METHODS` to ``endpoint``."""
    return Starlette(routes=[Route("/{path:path}", endpoint, methods=METHODS)])


def joined_headers(request: Request) -> dict[str, str]:
    """Request headers by lower-case name, repeated headers joined with ``", "``."""
    headers: dict[str, str] = {}
    for name, value in request.headers.items():
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return headers


def request_client_id(request: Request) -> str | None:
    """The client id the auth middleware put in the request state, if any."""
    state: Any = request.scope.get("state") or {}
    value = state.get("client_id") if isinstance(state, dict) else None
    if value is None:
        value = getattr(request.state, "client_id", None)
    return str(value) if value else None
