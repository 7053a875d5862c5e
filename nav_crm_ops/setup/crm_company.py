"""The ``bcbi_company`` row of a workspace's ERP company in a Dataverse org shared by several
companies (docs/multi-company.md).

Why: Business Central's multi-company synchronization tells the companies' rows apart by the
lookup ``bcbi_companyid`` to one ``bcbi_company`` row per BC company (``bcbi_externalid`` = the
BC company id, ``bcbi_name`` its name); BC's setup creates the row when it is missing. A
workspace with ``[dataverse] multi_company = true`` needs that row's id to filter and stamp
its rows (:mod:`nav_crm_ops.engine.mapping.companies`): ``nav-crm-ops init`` (when it can
authenticate) and ``nav-crm-ops setup crm`` find or create it and write the id into the config.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from ..config import WorkspaceConfig, load_config, write_config
from ..connectors.dataverse import Dataverse
from ..exceptions import ConfigError, NotFoundError

__all__ = ["CompanyChoice", "CompanyRow", "ensure_company_row", "fill_company_row",
           "fill_workspace_company_row"]

ENTITY_SET = "bcbi_companies"


@dataclass(frozen=True)
class CompanyRow:
    """The ``bcbi_company`` row of an ERP company, and whether this call created it."""

    row_id: str
    external_id: str
    name: str
    created: bool


def _quoted(value: str) -> str:
    """An OData string literal (a single quote doubled)."""
    return "'" + value.replace("'", "''") + "'"


def ensure_company_row(dataverse: Dataverse, external_id: str, name: str) -> CompanyRow:
    """Find the ``bcbi_company`` row whose ``bcbi_externalid`` is ``external_id`` (the BC
    company id, the NAV company name), or create it named ``name``. ConfigError when the org
    has no ``bcbi_company`` table (Business Central's integration solution is missing)."""
    query = urlencode({"$select": "bcbi_companyid,bcbi_name",
                       "$filter": f"bcbi_externalid eq {_quoted(external_id)}"})
    try:
        found = dataverse.http.request("GET", f"{ENTITY_SET}?{query}",
                                       entity=ENTITY_SET).json().get("value") or []
    except NotFoundError:
        raise ConfigError(
            "this Dataverse org has no bcbi_company table, which several companies sharing "
            "one org need (Business Central's integration solution creates it); install "
            "that solution or set [dataverse] multi_company = false") from None
    if found:
        row = found[0]
        return CompanyRow(str(row["bcbi_companyid"]), external_id,
                          str(row.get("bcbi_name") or name), created=False)
    row_id = str(uuid.uuid4())
    dataverse.http.request("POST", ENTITY_SET, entity=ENTITY_SET, json={
        "bcbi_companyid": row_id, "bcbi_name": name[:100], "bcbi_externalid": external_id})
    return CompanyRow(row_id, external_id, name, created=True)


@dataclass(frozen=True)
class CompanyChoice:
    """``init --company NAME`` / ``--company-id GUID`` / ``--multi-company``: which ERP
    company a new workspace keeps, and whether the Dataverse org is shared."""

    name: str | None = None
    company_id: str | None = None
    multi_company: bool = False

    def pick(self, status: Mapping[str, Any]) -> dict[str, str]:
        """The chosen company among those a sandbox serves (its ``/_sandbox/status``); the
        sandbox's first when none is named. ConfigError naming the choices otherwise."""
        served = [{"id": str(c["id"]), "name": str(c["name"])}
                  for c in status.get("companies") or ()] or [
            {"id": str(status["company_id"]), "name": str(status["company_name"])}]
        if not self.name and not self.company_id:
            return served[0]
        for company in served:
            if (self.company_id and company["id"].lower() == self.company_id.lower()) or (
                    self.name and company["name"].casefold() == self.name.casefold()):
                return company
        listed = "; ".join(f"{c['name']!r} ({c['id']})" for c in served)
        raise ConfigError(f"the sandbox serves no company {self.name or self.company_id!r}; "
                          f"it serves {listed} (start it with --companies N for more)")

    def apply(self, config: WorkspaceConfig, *, multi_company: bool = False) -> WorkspaceConfig:
        """``config`` with the named company (template configs) and, when the org is shared
        (``--multi-company`` or a sandbox of several companies), ``multi_company`` on."""
        update: dict[str, Any] = {}
        if config.business_central is not None and (self.name or self.company_id):
            erp: dict[str, Any] = {}
            if self.name:
                erp["company_name"] = self.name
            if self.company_id:
                erp["company_id"] = str(uuid.UUID(self.company_id))
            update["business_central"] = config.business_central.model_copy(update=erp)
        elif config.nav is not None and self.name:
            update["nav"] = config.nav.model_copy(update={"company_name": self.name})
        if multi_company or self.multi_company:
            update["dataverse"] = config.dataverse.model_copy(update={"multi_company": True})
        return config.model_copy(update=update) if update else config


def _company_name(config: WorkspaceConfig) -> str:
    return config.nav.company_name if config.nav is not None else config.bc.company_name


def fill_company_row(config: WorkspaceConfig, dataverse: Dataverse,
                     root: str | Path | None = None) -> tuple[WorkspaceConfig, CompanyRow]:
    """``config`` with ``[dataverse] company_row_id`` set to its company's row (found or
    created), written to ``root`` (the workspace folder) when given."""
    row = ensure_company_row(dataverse, config.erp_company, _company_name(config))
    crm = config.dataverse.model_copy(update={"company_row_id": row.row_id})
    updated = config.model_copy(update={"dataverse": crm})
    if root is not None:
        write_config(updated, root)
    return updated, row


def fill_workspace_company_row(path: str | Path) -> CompanyRow | None:
    """For ``setup crm``: a multi-company workspace without its ``company_row_id`` gets it
    (found or created, written to its config); None when there is nothing to do."""
    from ..connectors.factory import connect

    config = load_config(path)
    if not config.dataverse.multi_company or config.dataverse.company_row_id:
        return None
    connections = connect(config)
    try:
        return fill_company_row(config, connections.dataverse, config.root)[1]
    finally:
        for client in (connections.dataverse, connections.business_central,
                       connections.business_central_custom):
            client.http.close()
