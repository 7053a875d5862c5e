"""Company scoping of CRM rows when several ERP companies share one Dataverse org.

Why: Business Central's multi-company synchronization keeps each company's rows apart in one
org with the lookup ``bcbi_companyid`` (to the ``bcbi_company`` row whose ``bcbi_externalid``
is the BC company): BC sets it on the rows it writes and reads only rows of its company. With
one company BC's default filter is "this company or none"; with several, a row without a
company would be claimed by whichever company reads it first, so a workspace with
``[dataverse] multi_company = true`` reads only its own company's rows (docs/multi-company.md).

:func:`company_scoped` rewrites raw mapping entries (before validation), so every default and
override mapping of a company-scoped table gets the same two changes: ``crm.filter`` gains
``_bcbi_companyid_value eq <row id>`` and every CRM template (one is added when there is none)
binds ``bcbi_companyid`` on the rows the sync creates. Rows the sync updates already carry it.
The company row also becomes the mapping's ``id_scope``: the deterministic ids of the CRM rows
a sync creates (``engine.ids.crm_id_for``) differ per company, so a NAV company's customer
10000 never lands on another company's account (NAV ids are numbers, equal across companies).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["COMPANY_BIND", "COMPANY_FILTER_COLUMN", "COMPANY_SCOPED_TABLES", "company_scoped"]

COMPANY_SCOPED_TABLES = frozenset({"account", "contact", "product", "pricelevel", "salesorder",
                                   "invoice", "nav_accountstatistics"})
"""CRM tables (logical names) that carry ``bcbi_companyid``: those of Business Central's
solution, and the integration's own customer statistics."""
COMPANY_FILTER_COLUMN = "_bcbi_companyid_value"
COMPANY_BIND = "bcbi_companyid@odata.bind"


def _scoped(entry: Mapping[str, Any], row_id: str) -> dict[str, Any]:
    scoped = copy.deepcopy(dict(entry))
    scoped["id_scope"] = row_id
    crm = scoped["crm"]
    condition = f"{COMPANY_FILTER_COLUMN} eq {row_id}"
    current = str(crm.get("filter") or "").strip()
    crm["filter"] = f"({current}) and {condition}" if current else condition
    bind = {COMPANY_BIND: f"/bcbi_companies({row_id})"}
    templates = scoped.setdefault("templates", {}) or {}
    scoped["templates"] = templates
    crm_templates = list(templates.get("crm") or [])
    if not crm_templates:
        crm_templates = [{"name": "company"}]
    templates["crm"] = [{**t, "values": {**(t.get("values") or {}), **bind}}
                        for t in crm_templates]
    return scoped


def company_scoped(entries: Iterable[Mapping[str, Any]], row_id: str) -> list[dict[str, Any]]:
    """``entries`` with the CRM rows of company-scoped tables narrowed to the company whose
    ``bcbi_company`` row is ``row_id`` (see the module docstring); other entries unchanged."""
    out: list[dict[str, Any]] = []
    for entry in entries:
        crm = entry.get("crm")
        logical = str(crm.get("logical_name") or "") if isinstance(crm, Mapping) else ""
        out.append(_scoped(entry, row_id) if logical in COMPANY_SCOPED_TABLES
                   else dict(entry))
    return out
