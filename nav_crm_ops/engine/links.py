"""Links that open a record in Business Central's web client and in Dynamics 365 Sales."""

from __future__ import annotations

import re
from urllib.parse import quote

from ..config import WorkspaceConfig
from .mapping import TableMapping

__all__ = ["BC_CARD_PAGES", "bc_web_client", "record_links"]

BC_CARD_PAGES = {"customers": 21, "contacts": 5050, "items": 30, "currencies": 5,
                 "unitsOfMeasure": 209, "salespeoplePurchasers": 5116, "resources": 76}
"""Business Central card page ids of the default mappings' tables."""


def bc_web_client(api_url: str) -> str | None:
    """``https://businesscentral.dynamics.com/<tenant>/<environment>`` for an online API URL
    ``https://api.businesscentral.dynamics.com/v2.0/<tenant>/<environment>/api/v2.0/``."""
    match = re.match(r"https://api\.businesscentral\.dynamics\.com/v2\.0/([^/]+)/([^/]+)/",
                     api_url)
    if match is None:
        return None
    return f"https://businesscentral.dynamics.com/{match.group(1)}/{match.group(2)}"


def record_links(config: WorkspaceConfig, spec: TableMapping, *, nav_id: str | None = None,
                 crm_id: str | None = None) -> dict[str, str]:
    """Business Central: ``<web client>/?company=<name>&page=<card page>&filter='SystemId'
    IS '<id>'`` (the web client is ``business_central.web_client_url`` or derived from an
    online API URL); Dynamics 365: ``<org>/main.aspx?etn=<logical name>
    &pagetype=entityrecord&id=<guid>``."""
    links: dict[str, str] = {}
    bc = config.business_central  # a NAV workspace (no web client link format yet) has none
    web_client = bc and (bc.web_client_url or bc_web_client(bc.api_url))
    if bc and nav_id and web_client:
        query = f"company={quote(bc.company_name)}"
        page = BC_CARD_PAGES.get(spec.nav.entity)
        if page:
            system_id = f"'SystemId' IS '{nav_id}'"
            query += f"&page={page}&filter={quote(system_id)}"
        links["business_central"] = f"{web_client.rstrip('/')}/?{query}"
    if crm_id:
        base = config.dataverse.web_url or config.dataverse.url.split("/api/")[0]
        links["dynamics_365"] = (f"{base.rstrip('/')}/main.aspx?etn={spec.crm.logical_name}"
                                 f"&pagetype=entityrecord&id={crm_id}")
    return links
