"""Links that open a record in Business Central's web client and in Dynamics 365 Sales."""

from __future__ import annotations

import re
from urllib.parse import quote

from ..config import WorkspaceConfig
from .mapping import TableMapping

__all__ = ["BC_CARD_PAGES", "NAV_KEY_CAPTIONS", "bc_web_client", "record_links"]

BC_CARD_PAGES = {"customers": 21, "contacts": 5050, "items": 30, "currencies": 5,
                 "unitsOfMeasure": 209, "salespeoplePurchasers": 5116, "resources": 76}
"""Business Central card page ids of the default mappings' tables (NAV 2018 has the same)."""

NAV_KEY_CAPTIONS = {"No": "No."}
"""NAV field captions of page keys whose OData name differs (``No.`` is ``No`` on the wire);
other keys (``Code``) are named alike. Web client filters name fields by caption."""


def bc_web_client(api_url: str) -> str | None:
    """``https://businesscentral.dynamics.com/<tenant>/<environment>`` for an online API URL
    ``https://api.businesscentral.dynamics.com/v2.0/<tenant>/<environment>/api/v2.0/``."""
    match = re.match(r"https://api\.businesscentral\.dynamics\.com/v2\.0/([^/]+)/([^/]+)/",
                     api_url)
    if match is None:
        return None
    return f"https://businesscentral.dynamics.com/{match.group(1)}/{match.group(2)}"


def _web_client_link(web_client: str, company: str, entity_set: str, field: str,
                     value: str) -> str:
    """``<web client>/?company=<name>&page=<card page>&filter='<field>' IS '<value>'`` (the
    company alone when the table has no known card page)."""
    query = f"company={quote(company)}"
    page = BC_CARD_PAGES.get(entity_set)
    if page:
        condition = f"'{field}' IS '{value}'"
        query += f"&page={page}&filter={quote(condition)}"
    return f"{web_client.rstrip('/')}/?{query}"


def record_links(config: WorkspaceConfig, spec: TableMapping, *, nav_id: str | None = None,
                 crm_id: str | None = None) -> dict[str, str]:
    """Business Central: ``<web client>/?company=<name>&page=<card page>&filter='SystemId'
    IS '<id>'`` (the web client is ``business_central.web_client_url`` or derived from an
    online API URL); NAV 2018 (key ``nav``, when ``nav.web_client_url`` is set):
    ``<web server instance>/?company=<name>&page=<card page>&filter='No.' IS '<key>'``
    ("Opening a Page in the Microsoft Dynamics NAV Web Client by Using a URL"); Dynamics 365:
    ``<org>/main.aspx?etn=<logical name>&pagetype=entityrecord&id=<guid>``."""
    links: dict[str, str] = {}
    nav = config.nav
    if nav and nav_id and nav.web_client_url:
        key = NAV_KEY_CAPTIONS.get(spec.nav.key, spec.nav.key.replace("_", " "))
        links["nav"] = _web_client_link(nav.web_client_url, nav.company_name, spec.nav.entity,
                                        key, nav_id.replace("'", "''"))
    bc = config.business_central
    web_client = bc and (bc.web_client_url or bc_web_client(bc.api_url))
    if bc and nav_id and web_client:
        links["business_central"] = _web_client_link(web_client, bc.company_name,
                                                     spec.nav.entity, "SystemId", nav_id)
    if crm_id:
        base = config.dataverse.web_url or config.dataverse.url.split("/api/")[0]
        links["dynamics_365"] = (f"{base.rstrip('/')}/main.aspx?etn={spec.crm.logical_name}"
                                 f"&pagetype=entityrecord&id={crm_id}")
    return links
