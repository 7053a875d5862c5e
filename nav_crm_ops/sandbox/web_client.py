"""Read-only record pages behind the sandbox's web-client links (Business Central, NAV 2018,
Dynamics 365), so a record link the toolkit shows opens something a person can read.

The links keep the URL formats of the real web clients (``engine/links.py`` builds them):

- Business Central: ``<web client>/?company=<name>&page=<card page>&filter='SystemId' IS
  '<id>'`` ("Web Client URL", https://learn.microsoft.com/dynamics365/business-central/
  dev-itpro/developer/devenv-web-client-urls); the sandbox's web client is
  ``<base>/businesscentral/<tenant>/<environment>/`` (the real one is
  ``https://businesscentral.dynamics.com/<tenant>/<environment>/``);
- NAV 2018: ``<web server instance>/?company=<name>&page=<page>&filter='No.' IS '10000'``
  ("Opening a Page in the Microsoft Dynamics NAV Web Client by Using a URL", NAV 2018); the
  sandbox's instance is ``<base>/nav/``, where its OData v4 root ``<base>/nav/ODataV4/`` lives
  (as ``https://navserver:8080/DynamicsNAV110/`` next to ``.../DynamicsNAV110/ODataV4/``);
- Dynamics 365: ``<org>/main.aspx?etn=<logical name>&pagetype=entityrecord&id=<guid>`` ("Open
  apps, forms, views, dialogs, and reports with a URL", Power Apps docs); the sandbox's org is
  ``<base>/crm`` (its Web API is ``<base>/crm/api/data/v9.2/``).

Each answers an HTML page naming the table, the key and every field of the record, or a 404
page saying what was not found. Card pages are found by page id in the NAV page table
(:data:`~nav_crm_ops.sandbox.nav.PAGES`: Business Central kept NAV's page ids); a filter names
the field by its caption (``'No.'``, ``'Code'``) or ``'SystemId'`` (Business Central only:
NAV 2018 tables have none). ``bookmark`` links (an opaque record id only the real server can
decode) are answered with a 404 page saying to use a filter link.

Why no sign-in: the real web clients sign a person in interactively, which the sandbox cannot
emulate; its web pages are read-only, and the APIs keep their bearer-token and Basic checks.
The pages are served by :class:`WebClientFront`, in front of the API middleware, so the
Dataverse page (under ``/crm``, like the org's Web API) is not refused for lacking a token.
"""

from __future__ import annotations

import html
import re
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse

from .bc_schema import BC_SERVICE
from .nav.pages import PAGES, Page, Source

if TYPE_CHECKING:
    from .context import SandboxContext
    from .info import SandboxInfo

__all__ = ["WebClientFront", "bc_web_client_url", "dataverse_web_url", "nav_web_client_url"]

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

DATAVERSE_FORM = "/crm/main.aspx"
NAV_WEB_CLIENT = "/nav/"
BC_WEB_CLIENT = "/businesscentral/"

_FILTER = re.compile(r"^\s*'((?:[^']|'')+)'\s+IS\s+'((?:[^']|'')*)'\s*$", re.IGNORECASE)
_PAGES_BY_ID = {page.page_id: page for page in PAGES}
_Card = tuple[Page, str, str]
"""A card link resolved: the page, the store column its filter names, the value."""


def bc_web_client_url(info: SandboxInfo) -> str:
    """The sandbox's Business Central web client (``[business_central] web_client_url``)."""
    return f"{info.base_url}{BC_WEB_CLIENT}{info.tenant}/{info.environment}"


def nav_web_client_url(info: SandboxInfo) -> str:
    """The sandbox's NAV 2018 web server instance (``[nav] web_client_url``)."""
    return f"{info.base_url}{NAV_WEB_CLIENT}"


def dataverse_web_url(info: SandboxInfo) -> str:
    """The sandbox's Dynamics 365 organization URL (``[dataverse] web_url``)."""
    return info.dataverse_resource


@dataclass(frozen=True)
class RecordPage:
    """What a record page shows, or why there is none (``found`` false: a 404 page)."""

    title: str
    key: str
    fields: tuple[tuple[str, Any], ...] = ()
    found: bool = True
    problem: str = ""


def _text(value: str) -> str:
    """``value`` escaped for an HTML text node (quotes stay readable)."""
    return html.escape(value, quote=False)


def _document(page: RecordPage) -> HTMLResponse:
    title = _text(page.title)
    if not page.found:
        body = f"<h1>{title}</h1><p>{_text(page.problem)}</p>"
        return HTMLResponse(_wrap(f"Not found: {page.title}", body), status_code=404)
    rows = "".join(f"<tr><th>{_text(name)}</th><td>{_text(_shown(value))}</td></tr>"
                   for name, value in page.fields)
    body = (f"<h1>{title}</h1><p>Key: <code>{_text(page.key)}</code> (read-only sandbox "
            f"page)</p><table>{rows}</table>")
    return HTMLResponse(_wrap(f"{page.title} {page.key}", body))


def _wrap(title: str, body: str) -> str:
    return (f"<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>{_text(title)}"
            f"</title></head><body>{body}</body></html>")


def _shown(value: Any) -> str:
    return "" if value is None else str(value)


def _missing(title: str, problem: str, key: str = "") -> RecordPage:
    return RecordPage(title=title, key=key, found=False, problem=problem)


def _unquote(text: str) -> str:
    return text.replace("''", "'")


def _filter(text: str) -> tuple[str, str] | None:
    """(field caption, value) of ``'<field>' IS '<value>'``, the one filter form links use."""
    match = _FILTER.match(text or "")
    return (_unquote(match.group(1)), _unquote(match.group(2))) if match else None


def _wire_name(caption: str) -> str:
    """A field caption as NAV names it on the wire (``No.`` → ``No``, ``Phone No.`` →
    ``Phone_No``): see :mod:`nav_crm_ops.sandbox.nav.pages`."""
    return re.sub(r"[^0-9A-Za-z]+", "_", caption).strip("_")


class _Pages:
    """Record lookups over the sandbox store for the three web clients."""

    def __init__(self, ctx: SandboxContext) -> None:
        self.ctx = ctx

    def _company(self, params: Mapping[str, str]) -> str | None:
        """Why the link's company is wrong, or None."""
        company = params.get("company")
        if company is not None and company != self.ctx.info.company_name:
            return (f"Company '{company}' does not exist; this sandbox has "
                    f"'{self.ctx.info.company_name}'.")
        return None

    def _card(self, params: Mapping[str, str], system_id: bool) -> _Card | RecordPage:
        """(page, store column, value) the link's page and filter name, or a 404 page."""
        problem = self._company(params)
        if problem:
            return _missing("Company not found", problem)
        if "bookmark" in params and "filter" not in params:
            return _missing("Bookmark not supported", "The sandbox cannot decode bookmarks; "
                            "open records with a filter link (filter='No.' IS '10000').")
        page = _PAGES_BY_ID.get(int(params["page"])) if params.get("page", "").isdigit() else None
        if page is None:
            return _missing("Page not found", f"The sandbox has no page {params.get('page')!r}; "
                            f"it has {sorted(_PAGES_BY_ID)}.")
        condition = _filter(params.get("filter", ""))
        if condition is None:
            return _missing(page.page_name, "Open one record with filter='<field>' IS '<value>' "
                            "(e.g. 'No.' IS '10000').")
        caption, value = condition
        if system_id and caption.lower() == "systemid":
            return page, "id", value.strip("{}").lower()
        item = page.field(_wire_name(caption))
        if item is None or item.source is not Source.COLUMN or not item.column:
            return _missing(page.page_name, f"The {page.page_name} has no field '{caption}'.")
        return page, item.column, value

    def _row(self, page: Page, column: str, value: str) -> dict[str, Any] | None:
        scope_sql, scope_args = page.scope
        where = f'"{column}" = ?' + (f" AND ({scope_sql})" if scope_sql else "")
        rows = self.ctx.store.query(f"{BC_SERVICE}:{page.entity}", where,
                                    [value, *scope_args], limit=1)
        return rows[0] if rows else None

    def business_central(self, params: Mapping[str, str]) -> RecordPage:
        found = self._card(params, system_id=True)
        if isinstance(found, RecordPage):
            return found
        page, column, value = found
        row = self._row(page, column, value)
        if row is None:
            return _missing(page.page_name, f"No {page.page_name} record has {column} "
                            f"'{value}'.", value)
        entity = self.ctx.store.entity(f"{BC_SERVICE}:{page.entity}")
        return RecordPage(f"{page.page_name} ({page.entity})", str(row.get("number") or
                          row.get("code") or row["id"]),
                          tuple((name, row.get(name)) for name in entity.column_names))

    def nav(self, params: Mapping[str, str]) -> RecordPage:
        found = self._card(params, system_id=False)
        if isinstance(found, RecordPage):
            return found
        page, column, value = found
        row = self._row(page, column, value)
        if row is None:
            return _missing(page.page_name, f"The {page.page_name} does not exist. "
                            f"Identification fields and values: {column}='{value}'", value)
        shown = tuple((item.name, row.get(item.column)) for item in page.fields
                      if item.source is Source.COLUMN and item.column)
        keys = (page.field(name) for name in page.keys)
        key = ",".join(str(row.get(item.column or "")) for item in keys if item is not None)
        return RecordPage(f"{page.page_name} (page {page.page_id})", key, shown)

    def dataverse(self, params: Mapping[str, str]) -> RecordPage:
        logical = params.get("etn", "")
        entity = self.ctx.catalog.by_name.get(logical)
        if entity is None or entity.extra.get("internal"):
            return _missing("Table not found", f"The organization has no table '{logical}'.")
        if params.get("pagetype") != "entityrecord":
            return _missing(logical, "Open one record with pagetype=entityrecord&id=<guid>.")
        record_id = params.get("id", "").strip("{}").lower()
        row = self.ctx.store.get(f"dataverse:{logical}", record_id) if record_id else None
        if row is None:
            return _missing(logical, f"The {logical} record with id '{record_id}' does not "
                            "exist (it may have been deleted).", record_id)
        fields = []
        for column in entity.columns:
            value = row.get(column.name)
            if column.choices and value is not None and value in column.choices:
                value = f"{column.choices[value]} ({value})"
            fields.append((column.name, value))
        return RecordPage(f"{logical} ({entity.entity_set})", record_id, tuple(fields))


class WebClientFront:
    """ASGI front of the sandbox: GETs of the web-client paths get a record page; everything
    else goes on to ``app`` (the APIs behind their middleware)."""

    def __init__(self, app: ASGIApp, ctx: SandboxContext) -> None:
        self.app = app
        self.pages = _Pages(ctx)

    def _handler(self, path: str) -> Callable[[Mapping[str, str]], RecordPage] | None:
        if path == DATAVERSE_FORM:
            return self.pages.dataverse
        if path in (NAV_WEB_CLIENT, NAV_WEB_CLIENT.rstrip("/")):
            return self.pages.nav
        if path.startswith(BC_WEB_CLIENT):
            return self._business_central(path)
        return None

    def _business_central(self, path: str) -> Callable[[Mapping[str, str]], RecordPage] | None:
        info = self.pages.ctx.info
        parts = [p for p in path[len(BC_WEB_CLIENT):].split("/") if p]
        if len(parts) != 2:
            return None
        if parts[0].lower() != info.tenant.lower() or parts[1] != info.environment:
            return lambda _: _missing("Environment not found", f"No environment {parts[1]!r} "
                                      f"in tenant {parts[0]!r}; the sandbox has "
                                      f"{info.tenant}/{info.environment}.")
        return self.pages.business_central

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        handler = self._handler(scope.get("path", "")) if scope["type"] == "http" else None
        if handler is None or scope.get("method") not in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        record = await run_in_threadpool(handler, dict(request.query_params))
        await _document(record)(scope, receive, send)
