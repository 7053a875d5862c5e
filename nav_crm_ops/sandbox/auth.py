"""Entra ID look-alike: OpenID discovery, the client-credentials token endpoint, bearer checks.

Tokens are opaque random strings remembered in memory with their client, audience and expiry;
a token is accepted only by the API whose audience it names. Neither tokens nor secrets are
ever logged.

msal only accepts ``https`` authorities. A client that reaches the sandbox through a transport
rewriting ``https://127.0.0.1`` to ``http://`` sends ``X-Forwarded-Proto: https`` (as behind a
TLS-terminating proxy); discovery then advertises ``https`` endpoints so msal is satisfied.
"""

from __future__ import annotations

import base64
import hmac
import json
import secrets
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

if TYPE_CHECKING:
    from .context import SandboxContext

__all__ = [
    "BC_AUDIENCE",
    "AuthMiddleware",
    "TokenGrant",
    "TokenRegistry",
    "auth_routes",
    "bc_error_body",
]

BC_AUDIENCE = "https://api.businesscentral.dynamics.com"
IGNORED_SCOPES = frozenset({"openid", "profile", "offline_access"})

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


@dataclass(frozen=True)
class TokenGrant:
    """What a bearer token stands for."""

    client_id: str
    audience: str
    expires_at: float


class TokenRegistry:
    """Issued access tokens (in memory: a restart invalidates them, as expiry would)."""

    def __init__(self) -> None:
        self._grants: dict[str, TokenGrant] = {}
        self._lock = threading.Lock()

    def issue(self, client_id: str, audience: str, lifetime_s: float) -> str:
        token = "sbx." + secrets.token_urlsafe(40)
        now = time.time()
        with self._lock:
            self._grants = {t: g for t, g in self._grants.items() if g.expires_at > now}
            self._grants[token] = TokenGrant(client_id, audience, now + lifetime_s)
        return token

    def lookup(self, token: str) -> TokenGrant | None:
        """The grant of a known token (expired ones included; the caller checks expiry)."""
        with self._lock:
            return self._grants.get(token)

    def revoke_all(self) -> None:
        with self._lock:
            self._grants.clear()


def _public_base(request: Request, ctx: SandboxContext) -> str:
    base = ctx.info.base_url
    if request.headers.get("x-forwarded-proto", "").lower() == "https" \
            and base.startswith("http://"):
        return "https://" + base[len("http://"):]
    return base


def _aad_error(status: int, error: str, code: int, description: str) -> JSONResponse:
    trace_id, correlation_id = str(uuid.uuid4()), str(uuid.uuid4())
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    return JSONResponse({
        "error": error,
        "error_description": f"AADSTS{code}: {description} Trace ID: {trace_id} "
                             f"Correlation ID: {correlation_id} Timestamp: {stamp}",
        "error_codes": [code], "timestamp": stamp, "trace_id": trace_id,
        "correlation_id": correlation_id,
    }, status_code=status)


def _tenant_not_found(tenant: str) -> JSONResponse:
    return _aad_error(400, "invalid_request", 90002,
                      f"Tenant '{tenant}' not found. Check to make sure you have the correct "
                      "tenant ID and are signing into the correct cloud.")


def _client_credentials(request: Request, form: dict[str, str]) -> tuple[str, str]:
    """client_secret_post or client_secret_basic."""
    header = request.headers.get("authorization", "")
    if header.lower().startswith("basic "):
        try:
            decoded = base64.b64decode(header[6:]).decode()
        except ValueError:
            return "", ""
        client_id, _, secret = decoded.partition(":")
        return client_id, secret
    return form.get("client_id", ""), form.get("client_secret", "")


def _audience_for(scope_text: str, request: Request, ctx: SandboxContext) -> str | None:
    """The audience named by the requested scope, or None when the scope is unknown."""
    scopes = [s for s in scope_text.split() if s.lower() not in IGNORED_SCOPES]
    if len(scopes) != 1 or not scopes[0].endswith("/.default"):
        return None
    resource = scopes[0][: -len("/.default")].rstrip("/")
    if resource.lower() == BC_AUDIENCE:
        return BC_AUDIENCE
    parts = urlsplit(resource)
    hosts = {urlsplit(ctx.info.base_url).netloc.lower(), request.headers.get("host", "").lower()}
    if parts.scheme in ("http", "https") and parts.netloc.lower() in hosts \
            and parts.path == "/crm":
        return ctx.info.dataverse_resource
    return None


def auth_routes(ctx: SandboxContext) -> list[Route]:
    """Discovery and token endpoints under ``/{tenant}/...``."""

    async def openid_configuration(request: Request) -> Response:
        tenant = request.path_params["tenant"]
        if tenant.lower() != ctx.info.tenant.lower():
            return _tenant_not_found(tenant)
        base = f"{_public_base(request, ctx)}/{ctx.info.tenant}"
        return JSONResponse({
            "issuer": f"{base}/v2.0",
            "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
            "token_endpoint": f"{base}/oauth2/v2.0/token",
            "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
            "jwks_uri": f"{base}/discovery/v2.0/keys",
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["client_secret_post",
                                                      "client_secret_basic"],
            "grant_types_supported": ["client_credentials"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "tenant_region_scope": "EU",
        })

    async def token(request: Request) -> Response:
        tenant = request.path_params["tenant"]
        if tenant.lower() != ctx.info.tenant.lower():
            return _tenant_not_found(tenant)
        raw = (await request.body()).decode("utf-8", errors="replace")
        form = {k: v[0] for k, v in parse_qs(raw, keep_blank_values=True).items()}
        grant_type = form.get("grant_type", "")
        if grant_type != "client_credentials":
            return _aad_error(400, "unsupported_grant_type", 70003,
                              f"The app requested an unsupported grant type '{grant_type}'; "
                              "the sandbox supports client_credentials only.")
        client_id, secret = _client_credentials(request, form)
        if client_id.lower() != ctx.info.client_id.lower():
            return _aad_error(400, "unauthorized_client", 700016,
                              f"Application with identifier '{client_id}' was not found in the "
                              f"directory '{ctx.info.tenant}'.")
        if not hmac.compare_digest(secret.encode(), ctx.info.client_secret.reveal().encode()):
            return _aad_error(401, "invalid_client", 7000215,
                              "Invalid client secret provided. Ensure the secret being sent in "
                              "the request is the client secret value, not the client secret "
                              f"ID, for a secret added to app '{ctx.info.client_id}'.")
        scope_text = form.get("scope", "")
        audience = _audience_for(scope_text, request, ctx)
        if audience is None:
            return _aad_error(400, "invalid_scope", 1002012,
                              f"The provided value for scope {scope_text} is not valid. Client "
                              "credential flows must have a scope value with /.default "
                              f"suffixed to the resource identifier ({ctx.info.dataverse_scope} "
                              f"or {BC_AUDIENCE}/.default).")
        lifetime = int(ctx.token_lifetime)
        access_token = ctx.tokens.issue(ctx.info.client_id, audience, lifetime)
        return JSONResponse({"token_type": "Bearer", "expires_in": lifetime,
                             "ext_expires_in": lifetime, "access_token": access_token})

    return [
        Route("/{tenant}/v2.0/.well-known/openid-configuration", openid_configuration,
              methods=["GET"]),
        Route("/{tenant}/oauth2/v2.0/token", token, methods=["POST"]),
    ]


def bc_error_body(code: str, message: str, correlation_id: str | None = None) -> bytes:
    """Business Central's error JSON; the message ends with the correlation id like BC's."""
    correlation = correlation_id or str(uuid.uuid4())
    return json.dumps({"error": {"code": code,
                                 "message": f"{message}  CorrelationId:  {correlation}."}}
                      ).encode()


class AuthMiddleware:
    """401 for API calls without a valid bearer token of the right audience."""

    def __init__(self, app: ASGIApp, ctx: SandboxContext) -> None:
        self.app = app
        self.ctx = ctx

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if path.startswith("/crm/"):
            audience, service = self.ctx.info.dataverse_resource, "dataverse"
        elif path.startswith("/bc/"):
            audience, service = BC_AUDIENCE, "business_central"
        else:
            await self.app(scope, receive, send)
            return
        grant = self._grant(scope)
        if grant is None or grant.audience != audience or grant.expires_at <= time.time():
            await self._reject(service, send)
            return
        scope.setdefault("state", {})["client_id"] = grant.client_id
        await self.app(scope, receive, send)

    def _grant(self, scope: Scope) -> TokenGrant | None:
        for name, value in scope.get("headers", []):
            if name == b"authorization":
                text = value.decode("latin-1")
                if text[:7].lower() == "bearer ":
                    return self.ctx.tokens.lookup(text[7:].strip())
        return None

    async def _reject(self, service: str, send: Send) -> None:
        authorize = f"{self.ctx.info.authority}/oauth2/authorize"
        if service == "dataverse":
            challenge = (f"Bearer authorization_uri={authorize}, "
                         f"resource_id={self.ctx.info.dataverse_resource}/")
            body = b""
            headers = [(b"www-authenticate", challenge.encode())]
        else:
            challenge = f'Bearer authorization_uri="{authorize}", resource_id="{BC_AUDIENCE}"'
            body = bc_error_body("Authentication_InvalidCredentials",
                                 "The server has rejected the client credentials.")
            headers = [(b"www-authenticate", challenge.encode()),
                       (b"content-type", b"application/json; charset=utf-8")]
        headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": 401, "headers": headers})
        await send({"type": "http.response.body", "body": body})
