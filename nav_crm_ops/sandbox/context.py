"""The state one running sandbox shares between its routes and middleware.

``SandboxContext.open`` prepares the data directory: ``sandbox.json`` holds the identity of the
emulated tenant (tenant, environment, company, client id and secret) so that a restart keeps the
credentials users already configured, and ``sandbox.db`` holds the data of both services.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..exceptions import SandboxError
from ..secrets import Secret
from .auth import TokenRegistry
from .bc_schema import BC_ENTITIES
from .companies import (
    MAX_COMPANIES,
    CompanyData,
    company_definitions,
    company_file,
    extra_company_info,
    rename_for_company,
)
from .dataverse_catalog import DataverseCatalog, base_entities
from .info import SandboxInfo
from .limits import FaultInjector, ServiceProtection
from .store import SandboxStore

__all__ = ["COMPANY_NAME", "SandboxContext", "SandboxOptions"]

log = logging.getLogger(__name__)

IDENTITY_FILE = "sandbox.json"
DATABASE_FILE = "sandbox.db"
COMPANY_NAME = "CRONUS International Ltd."
DEFAULT_TENANT = "cronus-sandbox"
ENVIRONMENT = "sandbox"
DEFAULT_TOKEN_LIFETIME_S = 3600


@dataclass(frozen=True)
class SandboxOptions:
    """How to open a sandbox: where its data lives, which seed, and test switches."""

    data_dir: Path
    seed: str = "cronus"
    reset: bool = False
    limits: bool = False
    faults: str | None = None
    client_secret: str | None = None
    crm_solution: bool = True
    revoked_privileges: tuple[str, ...] = ()
    companies: int = 1
    """Business Central companies served beside the one Dataverse org (see
    :mod:`.companies`); more than one adds the ``bcbi_company`` table and lookups."""


def _load_identity(data_dir: Path, client_secret: str | None) -> dict[str, str]:
    """Read ``sandbox.json`` or create it once with fresh GUIDs and a random secret."""
    path = data_dir / IDENTITY_FILE
    identity: dict[str, str] = {}
    if path.exists():
        try:
            identity = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise SandboxError(f"{path} is unreadable ({exc}); delete it to get new "
                               "sandbox credentials") from exc
    defaults = {
        "tenant": DEFAULT_TENANT, "environment": ENVIRONMENT,
        "company_id": str(uuid.uuid4()), "company_name": COMPANY_NAME,
        "client_id": str(uuid.uuid4()), "client_secret": uuid.uuid4().hex + uuid.uuid4().hex,
    }
    changed = False
    for name, value in defaults.items():
        if not identity.get(name):
            identity[name] = value
            changed = True
    if client_secret and identity["client_secret"] != client_secret:
        identity["client_secret"] = client_secret
        changed = True
    if changed:
        path.write_text(json.dumps(identity, indent=2), encoding="utf-8")
        os.chmod(path, 0o600)
    return identity


class SandboxContext:
    """Store, identity, tokens, limits and faults of one sandbox instance."""

    def __init__(self, options: SandboxOptions, info: SandboxInfo, store: SandboxStore) -> None:
        self.options = options
        self.info = info
        self.store = store
        self.catalog = DataverseCatalog(store, crm_solution=options.crm_solution)
        # Dataverse privileges (prvReadAccount, ...) the application user lacks.
        self.revoked_privileges: frozenset[str] = frozenset(options.revoked_privileges)
        self.tokens = TokenRegistry()
        self.token_lifetime: int = DEFAULT_TOKEN_LIFETIME_S
        self.protection = ServiceProtection()
        self.protection.configure(options.limits)
        self.faults: FaultInjector | None = FaultInjector.from_spec(options.faults)
        self.seed = options.seed
        self._lock = threading.RLock()
        self.companies: tuple[CompanyData, ...] = ()
        """The further BC companies (the first is this context's own store and info)."""

    @classmethod
    def open(cls, options: SandboxOptions, *, base_url: str) -> SandboxContext:
        """Create the data directory, load or create the identity, open and seed the store."""
        data_dir = Path(options.data_dir)
        try:
            data_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SandboxError(f"cannot create the sandbox data directory {data_dir}: {exc}") \
                from exc
        FaultInjector.from_spec(options.faults)  # fail early on a bad spec
        if not 1 <= options.companies <= MAX_COMPANIES:
            raise SandboxError(f"--companies must be 1 to {MAX_COMPANIES}, got "
                               f"{options.companies}")
        identity = _load_identity(data_dir, options.client_secret)
        info = SandboxInfo(
            base_url=base_url.rstrip("/"), tenant=identity["tenant"],
            environment=identity["environment"], company_id=identity["company_id"],
            company_name=identity["company_name"], client_id=identity["client_id"],
            client_secret=Secret(identity["client_secret"]),
        )
        store = SandboxStore(data_dir / DATABASE_FILE,
                             (*base_entities(options.crm_solution), *BC_ENTITIES))
        context: SandboxContext | None = None
        try:
            context = cls(options, info, store)
            context.companies = tuple(
                CompanyData(SandboxStore(company_file(data_dir, index), store.entities),
                            extra_company_info(info, index))
                for index in range(1, options.companies))
            if options.reset or sum(store.counts().values()) == 0:
                context.reset(options.seed, clear=options.reset)
            else:
                context._ensure_companies(options.seed, clear=False)
        except BaseException:
            store.close()
            for company in context.companies if context is not None else ():
                company.store.close()
            raise
        return context

    # ----------------------------------------------------------------- data
    def reset(self, seed: str | None = None, *, clear: bool = True) -> None:
        """Drop all rows and load ``seed`` (the current one when not given); the Dataverse
        tables and privileges return to those the sandbox started with."""
        spec = seed or self.seed
        with self._lock, self.store.transaction():
            # One transaction: a seed that fails (bad spec) leaves the old data in place.
            if clear:
                self.catalog.reset()
                self.store.reset()
                self.revoked_privileges = frozenset(self.options.revoked_privileges)
            self._load_seed(spec)
            self._ensure_companies(spec, clear=clear)
            self.seed = spec

    def _load_seed(self, spec: str) -> None:
        try:
            from .seed import load_seed
        except ImportError:
            log.warning("sandbox seed module unavailable; starting with an empty store")
        else:
            load_seed(self.store, spec, self.info)
        self._ensure_company()

    def _ensure_company(self) -> None:
        """The BC API needs the one company row even when a seed did not create it."""
        name = "business_central:companies"
        if self.store.get(name, self.info.company_id) is None:
            self.store.insert(name, {
                "id": self.info.company_id, "name": self.info.company_name,
                "displayName": self.info.company_name,
                "businessProfileId": "", "systemVersion": "24.0.16410.18040",
            })

    def _ensure_companies(self, spec: str, *, clear: bool) -> None:
        """With several companies: the further companies' data (seeded when empty or
        ``clear``), their rows in the companies collection, and the ``bcbi_company`` table
        and lookups in Dataverse (see :mod:`.companies`)."""
        if not self.companies:
            return
        for index, company in enumerate(self.companies, start=1):
            if clear:
                company.store.reset()
            if sum(company.store.counts().values()) == 0:
                from .seed import load_seed
                from .seed_rows import bc_ids_of_company

                with bc_ids_of_company(company.info.company_id):
                    load_seed(company.store, spec, company.info)
                rename_for_company(company.store, index)
            name = "business_central:companies"
            if self.store.get(name, company.info.company_id) is None:
                self.store.insert(name, {
                    "id": company.info.company_id, "name": company.info.company_name,
                    "displayName": company.info.company_name, "businessProfileId": "",
                    "systemVersion": "24.0.16410.18040"})
        for definition in company_definitions():
            present = self.catalog.by_name.get(str(definition.get("entity") or
                                                   definition["name"]))
            missing = present is None if definition["kind"] == "table" else (
                present is not None and present.column("bcbi_companyid") is None)
            if missing:
                self.catalog.add(definition)

    def status(self) -> dict[str, Any]:
        """What ``GET /_sandbox/status`` reports: identity (never the secret), rows per table,
        limits, faults injected."""
        return {
            "tenant": self.info.tenant,
            "environment": self.info.environment,
            "company_id": self.info.company_id,
            "company_name": self.info.company_name,
            "companies": [{"id": info.company_id, "name": info.company_name}
                          for info in (self.info, *(c.info for c in self.companies))],
            "client_id": self.info.client_id,
            "seed": self.seed,
            "crm_solution": self.catalog.crm_solution,
            "revoked_privileges": sorted(self.revoked_privileges),
            "counts": self.store.counts(),
            "limits": self.protection.describe(),
            "faults": self.faults.describe() if self.faults else None,
        }

    # ----------------------------------------------------------------- switches
    def set_limits(self, enabled: bool, **settings: Any) -> None:
        """Turn service protection limits on/off; ``settings`` override the scaled defaults."""
        self.protection.configure(enabled, **settings)

    def set_privileges(self, revoke: Iterable[str] = ()) -> None:
        """The Dataverse privileges the application user lacks from now on (replaces the
        earlier list; ``()`` gives every privilege back)."""
        self.revoked_privileges = frozenset(str(name) for name in revoke)

    def set_faults(self, spec: str | None) -> None:
        """Inject faults as described by ``spec`` (None or "" turns them off)."""
        self.faults = FaultInjector.from_spec(spec)

    def close(self) -> None:
        self.store.close()
        for company in self.companies:
            company.store.close()
