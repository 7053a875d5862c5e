"""Several Business Central companies beside one Dataverse org (``sandbox --companies N``).

Why: Business Central synchronizes several companies with one Dataverse org (multi-company
synchronization). Its integration solution adds the table ``bcbi_company`` (one row per BC
company, ``bcbi_externalid`` = the BC company id) and a lookup ``bcbi_companyid`` to the
standard tables it couples (accounts, contacts, products, price lists, orders, invoices); BC
sets the lookup on every row it writes and reads only its own company's rows. The sandbox
serves that shape so the integration can be tested against it (docs/multi-company.md).

The first company is the sandbox's own (``sandbox.db``, :class:`SandboxInfo`); each further one
has a data file of its own (``sandbox-company-<n>.db``) seeded like the first, with the same
customer and item numbers and other names (``... (UK)``): the realistic, harder case, where
numbers alone cannot tell the companies' records apart. The Business Central API routes a
request to the store of the company its path names (``companies(<id>)/...``); the companies
collection lists them all.
"""

from __future__ import annotations

import dataclasses
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from ..exceptions import SandboxError
from .info import SandboxInfo
from .store import SandboxStore

__all__ = ["COMPANY_NAMES", "COMPANY_TABLE", "COMPANY_TABLES", "MAX_COMPANIES", "CompanyData",
           "CompanyRouter", "company_definitions", "company_file", "extra_company_info",
           "rename_for_company"]

COMPANY_NAMES = ("CRONUS International Ltd.", "CRONUS UK Ltd.", "CRONUS USA, Inc.",
                 "CRONUS Deutschland GmbH")
"""The companies a sandbox serves, in order (``--companies 2`` serves the first two)."""
MAX_COMPANIES = len(COMPANY_NAMES)
_SUFFIXES = ("", " (UK)", " (USA)", " (DE)")

COMPANY_TABLE = "bcbi_company"
"""The BC integration solution's company table (entity set ``bcbi_companies``)."""
COMPANY_TABLES = ("account", "contact", "product", "pricelevel", "salesorder", "invoice",
                  "nav_accountstatistics")
"""The Dataverse tables that carry ``bcbi_companyid``: those of Business Central's solution,
and this integration's own customer statistics table."""
_BC_SERVICE = "business_central"
_COMPANY_SPACE = uuid.UUID("5f1c2f0e-3b7a-4d8e-9c1a-6b2d4e8f0a17")


def company_file(data_dir: Path, index: int) -> Path:
    """The data file of the ``index``-th company (0 is the sandbox's own ``sandbox.db``)."""
    return Path(data_dir) / f"sandbox-company-{index + 1}.db"


def extra_company_info(info: SandboxInfo, index: int) -> SandboxInfo:
    """The identity of the ``index``-th company (1, 2...): the sandbox's tenant and client,
    its own company id (derived from the first company's, so it survives restarts) and
    name."""
    if not 0 < index < MAX_COMPANIES:
        raise SandboxError(f"the sandbox serves 1 to {MAX_COMPANIES} companies")
    company_id = str(uuid.uuid5(_COMPANY_SPACE, f"{info.company_id}/{index}"))
    return dataclasses.replace(info, company_id=company_id, company_name=COMPANY_NAMES[index])


def rename_for_company(store: SandboxStore, index: int) -> None:
    """The seeded customers and items of the ``index``-th company: same numbers, names with
    the company's suffix (``Adatum Corporation (UK)``)."""
    suffix = _SUFFIXES[index]
    for entity, column in (("customers", "displayName"), ("items", "displayName")):
        name = f"{_BC_SERVICE}:{entity}"
        for row in store.query(name):
            store.update(name, row["id"], {column: f"{row[column]}{suffix}"[:100]})


def company_definitions() -> list[dict[str, Any]]:
    """The ``bcbi_company`` table and the ``bcbi_companyid`` lookups, as definitions the
    Dataverse catalog applies (the shape the metadata Web API creates)."""
    def text(name: str, schema: str, length: int, required: bool = False) -> dict[str, Any]:
        return {"name": name, "schema": schema, "type": "string", "max_length": length,
                "required": required, "choices": [], "targets": [], "navigation": None}

    table = {"kind": "table", "name": COMPANY_TABLE, "entity_set": "bcbi_companies",
             "schema": "bcbi_Company", "primary_name": "bcbi_name", "owned": False,
             "columns": [text("bcbi_name", "bcbi_Name", 100, required=True),
                         text("bcbi_externalid", "bcbi_ExternalId", 100)]}
    lookups = [{"kind": "column", "entity": entity, "column": {
        "name": "bcbi_companyid", "schema": "bcbi_CompanyId", "type": "lookup",
        "max_length": None, "required": False, "choices": [], "targets": [COMPANY_TABLE],
        "navigation": "bcbi_companyid"}} for entity in COMPANY_TABLES]
    return [table, *lookups]


@dataclass(frozen=True)
class CompanyData:
    """A further BC company: its store and identity (what a BC service needs)."""

    store: SandboxStore
    info: SandboxInfo


class Handler(Protocol):
    def handle(self, method: str, path: str, query: str, headers: Mapping[str, str],
               body: bytes) -> Any: ...


_COMPANY_IN_PATH = re.compile(r"companies\((?:')?([0-9a-fA-F-]{36})(?:')?\)")


class CompanyRouter:
    """Sends each Business Central request to the service of the company its path names;
    requests naming none (the companies collection, ``$metadata``) go to the first company's.
    A ``$batch`` goes to the company its operations name; operations of two companies in one
    batch are refused (the sandbox keeps each company in a data file of its own)."""

    def __init__(self, first: Handler, others: Mapping[str, Handler]) -> None:
        self.first = first
        self.others = {key.lower(): service for key, service in others.items()}

    def _pick(self, text: str) -> Handler | None:
        """The service of the companies ``text`` names; None when it names two."""
        named = {match.lower() for match in _COMPANY_IN_PATH.findall(text)}
        if len(named) > 1:
            return None
        company = next(iter(named), "")
        return self.others.get(company, self.first)

    def handle(self, method: str, path: str, query: str, headers: Mapping[str, str],
               body: bytes) -> Any:
        from .business_central.common import BCError

        text = path if "$batch" not in path else body.decode("utf-8", errors="replace")
        service = self._pick(text)
        if service is None:
            return BCError(400, "BadRequest", "The sandbox runs the operations of one "
                           "company per $batch; send one batch per company.").reply()
        return service.handle(method, path, query, headers, body)
