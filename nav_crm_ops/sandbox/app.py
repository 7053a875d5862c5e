"""The sandbox's one ASGI application: auth endpoints, both APIs, admin routes, middleware.

Middleware order (outermost first): the read-only record pages of web-client links
(``web_client``: they answer a person's browser, which has no token), bearer-token checks
(401 before any work), service protection limits (per authenticated client), fault injection
(a flaky server: a slow answer holds its concurrency slot like a slow real request), then the
routes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

from ..exceptions import SandboxError
from .auth import AuthMiddleware, auth_routes
from .business_central import build_bc_app
from .dataverse import build_dataverse_app
from .limits import FaultMiddleware, LimitsMiddleware
from .nav import build_nav_app
from .web_client import WebClientFront

if TYPE_CHECKING:
    from .context import SandboxContext

__all__ = ["build_app"]


def build_app(ctx: SandboxContext) -> Any:
    """Starlette app serving everything under one base URL (see docs/architecture.md)."""

    async def status(request: Request) -> Response:
        return JSONResponse(await run_in_threadpool(ctx.status))

    async def reset(request: Request) -> Response:
        seed = request.query_params.get("seed") or None
        try:
            await run_in_threadpool(ctx.reset, seed)
        except SandboxError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse(await run_in_threadpool(ctx.status))

    async def privileges(request: Request) -> Response:
        """``POST {"revoke": ["prvWriteAccount", ...]}``: the privileges the application user
        lacks from now on (replaces the earlier list); ``GET``: that list."""
        if request.method == "POST":
            try:
                body = await request.json()
                revoke = body["revoke"] if isinstance(body, dict) else None
            except (ValueError, KeyError):
                revoke = None
            if not isinstance(revoke, list) or not all(isinstance(n, str) for n in revoke):
                return JSONResponse({"error": 'send {"revoke": ["prvWriteAccount", ...]}'},
                                    status_code=400)
            ctx.set_privileges(revoke)
        return JSONResponse({"revoke": sorted(ctx.revoked_privileges)})

    routes = [
        Route("/_sandbox/privileges", privileges, methods=["GET", "POST"]),
        Route("/_sandbox/status", status, methods=["GET"]),
        Route("/_sandbox/reset", reset, methods=["POST"]),
        Mount("/crm/api/data/v9.2", build_dataverse_app(ctx)),
        Mount("/bc", build_bc_app(ctx)),
        Mount("/nav", build_nav_app(ctx)),
        *auth_routes(ctx),
    ]
    app = Starlette(routes=routes)
    # Record pages behind web-client links first: a browser has no bearer token to show.
    return WebClientFront(AuthMiddleware(LimitsMiddleware(FaultMiddleware(app, ctx), ctx), ctx),
                          ctx)
