"""Authentication: OAuth2 client credentials through msal (HTTP via httpx), and NAV basic or
Windows (NTLM) auth for on-premises page web services."""

from __future__ import annotations

import threading
import time
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlparse

import httpx
import msal

from ..exceptions import AuthError
from ..secrets import Secret

__all__ = ["Auth", "BasicAuth", "ClientCredentials", "MsalHttpClient", "NtlmAuth"]


class Auth(Protocol):
    """What a service client needs from an authentication method."""

    def headers(self) -> dict[str, str]:
        """Authorization header(s) for the next request."""
        ...

    def invalidate(self) -> bool:
        """Forget a rejected token; True when a retry with fresh headers makes sense."""
        ...


_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


@dataclass(frozen=True)
class _MsalResponse:
    """The requests-like surface msal reads from a response."""

    status_code: int
    text: str
    headers: Any
    _response: httpx.Response

    def raise_for_status(self) -> None:
        self._response.raise_for_status()


class MsalHttpClient:
    """The ``http_client`` msal expects (``get``/``post`` returning requests-like responses),
    backed by httpx so every HTTP call of the package goes through one stack.

    msal only accepts https authorities. For a plain-http *loopback* authority (the embedded
    sandbox) ``plain_http_netloc`` names the ``host:port`` msal is told is https: requests to it
    go out as http and its URLs in replies are shown to msal as https. Nothing else is touched.
    """

    def __init__(self, client: httpx.Client | None = None, *,
                 plain_http_netloc: str = "") -> None:
        self._client = client or httpx.Client(timeout=30.0)
        self._netloc = plain_http_netloc
        self.token_requests = 0

    def _outgoing(self, url: str) -> str:
        if self._netloc and url.startswith(f"https://{self._netloc}/"):
            return "http://" + url[len("https://"):]
        return url

    def _incoming(self, response: httpx.Response) -> _MsalResponse:
        text = response.text
        if self._netloc:
            text = text.replace(f"http://{self._netloc}/", f"https://{self._netloc}/")
        return _MsalResponse(response.status_code, text, response.headers, response)

    def post(self, url: str, params: Any = None, data: Any = None, json: Any = None,
             headers: Any = None, **kwargs: Any) -> _MsalResponse:
        self.token_requests += 1
        return self._incoming(self._client.post(
            self._outgoing(url), params=params, data=data, json=json, headers=headers,
            timeout=kwargs.get("timeout", 30.0)))

    def get(self, url: str, params: Any = None, headers: Any = None,
            **kwargs: Any) -> _MsalResponse:
        return self._incoming(self._client.get(self._outgoing(url), params=params,
                                               headers=headers,
                                               timeout=kwargs.get("timeout", 30.0)))

    def close(self) -> None:
        self._client.close()


class ClientCredentials:
    """App-only token for one scope; cached, renewed before expiry and once after a 401.

    ``authority`` is ``https://login.microsoftonline.com/{tenant}`` for the real services or the
    sandbox's ``{base}/{tenant}``. ``secret_setting`` names where the secret came from (e.g. the
    environment variable) so errors can say what to check without ever showing it.
    """

    def __init__(self, authority: str, client_id: str, client_secret: Secret, scope: str, *,
                 secret_setting: str = "client secret", http: httpx.Client | None = None,
                 refresh_margin_s: float = 300.0) -> None:
        if not isinstance(client_secret, Secret):
            raise TypeError("client_secret must be a nav_crm_ops.secrets.Secret")
        self.authority = authority.rstrip("/")
        parsed = urlparse(self.authority)
        loopback_http = parsed.scheme == "http" and parsed.hostname in _LOOPBACK
        if parsed.scheme != "https" and not loopback_http:
            raise AuthError(f"authority {self.authority!r} must be an https URL such as "
                            "https://login.microsoftonline.com/<tenant>: check the tenant setting")
        self._msal_authority = ("https://" + self.authority[len("http://"):]
                                if loopback_http else self.authority)
        self.client_id = client_id
        self.scope = scope
        self._secret = client_secret
        self._secret_setting = secret_setting
        self._http = MsalHttpClient(http, plain_http_netloc=parsed.netloc if loopback_http else "")
        self._lock = threading.Lock()
        self._token: str | None = None
        self._expires_at = 0.0
        self._refresh_margin = refresh_margin_s
        self._app: Any = None

    def __repr__(self) -> str:
        return f"ClientCredentials(authority={self.authority!r}, client_id={self.client_id!r}, scope={self.scope!r})"

    @property
    def token_requests(self) -> int:
        """Requests sent to the token endpoint (kept apart from API request counts)."""
        return self._http.token_requests

    def _application(self) -> Any:
        if self._app is None:
            is_public = urlparse(self.authority).hostname == "login.microsoftonline.com"
            try:
                self._app = msal.ConfidentialClientApplication(
                    self.client_id, client_credential=self._secret.reveal(),
                    authority=self._msal_authority, http_client=self._http,
                    validate_authority=is_public, instance_discovery=is_public,
                    token_cache=msal.TokenCache())
            except (ValueError, httpx.HTTPError) as exc:
                raise AuthError(f"cannot reach authority {self.authority}: check the tenant / "
                                f"authority URL ({type(exc).__name__})") from None
        return self._app

    def token(self) -> str:
        with self._lock:
            now = time.monotonic()
            if self._token and now < self._expires_at:
                return self._token
            app = self._application()
            app.remove_tokens_for_client()
            try:
                result = app.acquire_token_for_client(scopes=[self.scope])
            except httpx.HTTPError as exc:
                raise AuthError(f"token endpoint of {self.authority} unreachable "
                                f"({type(exc).__name__}); check the tenant / authority URL",
                                status=None) from None
            if "access_token" not in result:
                code = str(result.get("error", ""))
                raise AuthError(self._explain(code), code=code, status=401)
            lifetime = float(result.get("expires_in", 3600))
            margin = min(self._refresh_margin, lifetime / 10)
            self._token = str(result["access_token"])
            self._expires_at = now + lifetime - margin
            return self._token

    def _explain(self, code: str) -> str:
        if code in ("invalid_client", "unauthorized_client"):
            what = (f"check client id {self.client_id!r} and the {self._secret_setting} "
                    "(wrong or expired secret)")
        elif code == "invalid_scope":
            what = f"check the scope {self.scope!r} (resource URL + '/.default')"
        elif code in ("invalid_request", "invalid_tenant"):
            what = f"check the tenant in authority {self.authority!r}"
        else:
            what = (f"check tenant/authority {self.authority!r}, client id {self.client_id!r}, "
                    f"the {self._secret_setting} and scope {self.scope!r}")
        return f"token request failed ({code or 'no error code'}): {what}"

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token()}"}

    def invalidate(self) -> bool:
        with self._lock:
            self._token = None
            self._expires_at = 0.0
        return True


class BasicAuth:
    """User name + web service access key for on-premises NAV/BC (NavUserPassword).

    ``secret_setting`` names where the key came from (e.g. the environment variable) so a
    refusal can say what to check without ever showing the key."""

    def __init__(self, user: str, web_service_key: Secret, *,
                 secret_setting: str = "web service access key") -> None:
        if not isinstance(web_service_key, Secret):
            raise TypeError("web_service_key must be a nav_crm_ops.secrets.Secret")
        self.user = user
        self._key = web_service_key
        self.secret_setting = secret_setting
        self.token_requests = 0

    def __repr__(self) -> str:
        return f"BasicAuth(user={self.user!r})"

    def headers(self) -> dict[str, str]:
        return {"Authorization": httpx.BasicAuth(self.user, self._key.reveal())._auth_header}

    def invalidate(self) -> bool:
        return False

    def rejection(self, offered: str) -> str:
        """What to check when the server answers 401 (``offered``: its WWW-Authenticate)."""
        if offered and "basic" not in offered.lower():
            return (f"the server asks for {offered} (Windows authentication), not Basic: set "
                    'kind = "ntlm" with client_id = DOMAIN\\user and the password\'s variable')
        return (f"check the user name {self.user!r} and the web service access key in "
                f"{self.secret_setting} (NAV: Users > the user > Web Service Access Key; it may "
                "have expired), and that the server's credential type is NavUserPassword")


class NtlmAuth:
    """Windows authentication (NTLM) for on-premises NAV/BC whose server tier uses the Windows
    credential type.

    NTLM is a challenge-response handshake over one connection (401 ``WWW-Authenticate: NTLM``,
    then the client's NEGOTIATE, the server's CHALLENGE, the client's AUTHENTICATE), so it cannot
    be a header computed up front: :meth:`flow` gives the httpx ``Auth`` flow of the
    ``httpx-ntlm`` library (pyspnego underneath), imported only when a client is built, and
    :meth:`headers` adds nothing. ``user`` is ``DOMAIN\\user``.
    """

    def __init__(self, user: str, password: Secret, *, secret_setting: str = "password") -> None:
        if not isinstance(password, Secret):
            raise TypeError("password must be a nav_crm_ops.secrets.Secret")
        self.user = user
        self._password = password
        self.secret_setting = secret_setting
        self.token_requests = 0

    def __repr__(self) -> str:
        return f"NtlmAuth(user={self.user!r})"

    def flow(self) -> httpx.Auth:
        """The handshake as an httpx auth flow (the library's object never reaches a repr)."""
        from httpx_ntlm import HttpNtlmAuth

        return _HiddenAuth(HttpNtlmAuth(self.user, self._password.reveal()))

    def headers(self) -> dict[str, str]:
        return {}

    def invalidate(self) -> bool:
        """True: one more handshake is worth it, since a handshake whose steps ran on
        different pooled connections is refused although the credentials are right."""
        return True

    def rejection(self, offered: str) -> str:
        """What to check when the server answers 401 (``offered``: its WWW-Authenticate)."""
        if offered and not any(s in offered.lower() for s in ("ntlm", "negotiate")):
            return (f"the server asks for {offered}, not Windows authentication: set "
                    'kind = "basic" with the NAV user name and its web service access key')
        return (f"check the Windows user {self.user!r} (DOMAIN\\user) and the password in "
                f"{self.secret_setting}, and that the server's credential type is Windows")


class _HiddenAuth(httpx.Auth):
    """Wraps an httpx auth flow that holds a password so no repr or log line can show it."""

    def __init__(self, inner: httpx.Auth) -> None:
        self._inner = inner

    def __repr__(self) -> str:
        return "_HiddenAuth()"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        """The library's handshake; a challenge it cannot use (a server that offers NTLM and
        then answers without a CHALLENGE message) is an AuthError, not a library exception."""
        try:
            return (yield from self._inner.auth_flow(request))
        except Exception as exc:  # pyspnego / httpx-ntlm raise their own types
            raise AuthError(f"NTLM handshake with {request.url.host} failed "
                            f"({type(exc).__name__}): check that the server's credential type is "
                            "Windows and that it offers NTLM (WWW-Authenticate: NTLM)",
                            status=401) from None
