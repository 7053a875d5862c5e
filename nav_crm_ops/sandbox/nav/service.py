"""The NAV 2018 OData v4 page web services: authentication, request paths and dispatch, and the
ASGI app mounted at ``/nav``.

URLs follow "OData Web Services" / "Walkthrough: Creating and Interacting with a Page Web
Service (OData)" (NAV 2018): ``{base}/nav/ODataV4/Company`` lists the companies,
``…/ODataV4/Company('CRONUS International Ltd.')/Customer`` is the page published as
``Customer``, ``…/Customer('10000')`` one record by its key, several key fields by name
(``SalesOrderSalesLines(Document_Type='Order',Document_No='101001',Line_No=10000)``);
``…/ODataV4/Customer?company=…`` names the company as a query option instead.

Authentication is NavUserPassword: HTTP Basic with the user name and its *web service access
key* ("Web Service Access Key", NAV 2018: the key replaces the password for web service
calls). Anything else gets ``401`` with ``WWW-Authenticate: Basic realm="…"``; the sandbox
does not emulate Windows (NTLM/Negotiate) authentication, whose challenge a NAV server only
sends when its credential type is Windows.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Callable, Mapping
from urllib.parse import parse_qsl, unquote

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from ..business_central.common import log
from ..odata.asgi import catch_all_app
from ..odata.replies import JSON_UTF8, Reply
from ..odata.service import ServiceContext
from .common import (
    ODATA_ROOT,
    REALM,
    NavError,
    Target,
    nav_credentials,
    parse_key,
    unknown_segment,
)
from .csdl import metadata_document
from .pages import PAGES, page_by_service
from .writes import NavWrites

__all__ = ["NavService", "build_nav_app"]

_COMPANY_SEGMENT = "Company"


class NavService(NavWrites):
    """Synchronous request handling of the NAV pages over the sandbox store."""

    def handle(self, method: str, path: str, query: str, headers: Mapping[str, str],
               body: bytes) -> Reply:
        """Answer one request; ``path`` is relative to the ``/nav`` mount."""
        if not self._authorized(headers):
            return Reply(401, b"", {"www-authenticate": f'Basic realm="{REALM}"'})
        try:
            return self._answer(method, path, dict(parse_qsl(query, keep_blank_values=True)),
                                headers, body)
        except NavError as error:
            return error.reply()
        except Exception:
            log.exception("unexpected error in the NAV sandbox (%s %s)", method, path)
            return NavError(500, "Internal_ServerError",
                            "An unexpected error occurred in the sandbox; see its log.").reply()

    def _authorized(self, headers: Mapping[str, str]) -> bool:
        """HTTP Basic with the NAV user (names are case-insensitive) and its access key."""
        header = headers.get("authorization", "")
        if header[:6].lower() != "basic ":
            return False
        try:
            user, _, key = base64.b64decode(header[6:].strip()).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        expected = nav_credentials(self.ctx.info)
        return user.lower() == expected.user.lower() and hmac.compare_digest(
            key.encode(), expected.access_key.reveal().encode())

    @property
    def _root(self) -> str:
        return f"{self.ctx.info.base_url}/nav/{ODATA_ROOT}/"

    def _answer(self, method: str, path: str, params: dict[str, str],
                headers: Mapping[str, str], body: bytes) -> Reply:
        parts = [unquote(part) for part in path.strip("/").split("/")]
        if parts[0] != ODATA_ROOT:
            raise NavError(404, "BadRequest_NotFound",
                           f"No HTTP resource was found that matches the request URI "
                           f"'{self.ctx.info.base_url}/nav/{path.strip('/')}'.")
        rest = [part for part in parts[1:] if part]
        if not rest:
            return self._only_get(method, self._service_document)
        if rest == ["$metadata"]:
            return self._only_get(method, lambda: Reply(
                200, metadata_document(), {"content-type": "application/xml"}))
        target = self._target(rest, params)
        if target.page is None:
            return self._only_get(method, lambda: self._companies(self._root,
                                                                  target.company is not None))
        return self._dispatch(method, target, params, headers, body)

    @staticmethod
    def _only_get(method: str, answer: Callable[[], Reply]) -> Reply:
        """Companies, the service document and ``$metadata`` are read-only."""
        if method != "GET":
            raise NavError(405, "BadRequest_MethodNotAllowed",
                           f"'{method}' requests are not allowed for this resource.")
        return answer()

    def _service_document(self) -> Reply:
        sets = [{"name": "Company", "kind": "EntitySet", "url": "Company"},
                *({"name": page.service, "kind": "EntitySet", "url": page.service}
                  for page in PAGES)]
        return Reply(200, {"@odata.context": f"{self._root}$metadata", "value": sets},
                     {"content-type": JSON_UTF8})

    def _target(self, rest: list[str], params: Mapping[str, str]) -> Target:
        """``Company('…')[/Service[(key)]]`` or ``Service[(key)]?company=…``."""
        name, key_text = _segment(rest[0])
        if name == _COMPANY_SEGMENT:
            company = self._company(key_text) if key_text is not None else None
            if len(rest) == 1:
                return Target(self._root, company)
            if company is None:
                raise unknown_segment(rest[1])
            return self._page_target(company, rest[1:])
        if "company" not in params:
            raise unknown_segment(rest[0])
        return self._page_target(self._company(f"'{params['company']}'"), rest)

    def _company(self, key_text: str) -> str:
        name = str(parse_key(key_text, ("Name",))["Name"])
        if name != self.ctx.info.company_name:
            raise NavError(400, "Internal_CompanyNotFound",
                           f"Cannot process the request because the company '{name}' does "
                           "not exist.")
        return name

    def _page_target(self, company: str, rest: list[str]) -> Target:
        name, key_text = _segment(rest[0])
        page = page_by_service(name)
        if page is None:
            raise unknown_segment(rest[0])
        if len(rest) > 1:
            raise unknown_segment(rest[1])
        key = parse_key(key_text, page.keys) if key_text is not None else None
        return Target(self._root, company, page, key)

    def _dispatch(self, method: str, target: Target, params: Mapping[str, str],
                  headers: Mapping[str, str], body: bytes) -> Reply:
        if method == "GET":
            if target.key is None:
                return self._list(target, params)
            return self._get_one(target, params)
        if method == "POST" and target.key is None:
            return self._insert(target, body)
        if method == "PATCH" and target.key is not None:
            return self._modify(target, headers, body)
        if method == "DELETE" and target.key is not None:
            return self._remove(target, headers)
        what = "a single entity" if target.key is not None else "a collection"
        service = target.page.service if target.page else ""
        raise NavError(405, "BadRequest_MethodNotAllowed",
                       f"'{method}' requests for {what} of '{service}' are not allowed.")


def _segment(text: str) -> tuple[str, str | None]:
    """``Name(key)`` → (name, key text); ``Name`` → (name, None)."""
    if text.endswith(")") and "(" in text:
        name, _, key = text[:-1].partition("(")
        return name, key
    return text, None


def build_nav_app(ctx: ServiceContext) -> Starlette:
    """The NAV 2018 OData v4 page web services as an ASGI app, mounted at ``/nav``."""
    service = NavService(ctx)

    async def endpoint(request: Request) -> Response:
        body = await request.body()
        headers = {name.lower(): value for name, value in request.headers.items()}
        reply = await run_in_threadpool(service.handle, request.method,
                                        "/" + request.path_params.get("path", ""),
                                        request.url.query, headers, body)
        out = {"odata-version": "4.0", **reply.headers} if reply.status != 401 else reply.headers
        return Response(reply.encoded(), status_code=reply.status, headers=out)

    return catch_all_app(endpoint)
