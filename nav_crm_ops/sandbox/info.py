"""Where a running sandbox answers and the credentials to use with it (no server code here,
so the services and the context can name it without importing the runner)."""

from __future__ import annotations

from dataclasses import dataclass

from ..secrets import Secret

__all__ = ["BC_SCOPE", "SandboxInfo"]

BC_SCOPE = "https://api.businesscentral.dynamics.com/.default"


@dataclass(frozen=True)
class SandboxInfo:
    """Where the running sandbox answers, and the credentials to use with it."""

    base_url: str
    tenant: str
    environment: str
    company_id: str
    company_name: str
    client_id: str
    client_secret: Secret

    @property
    def authority(self) -> str:
        return f"{self.base_url}/{self.tenant}"

    @property
    def token_url(self) -> str:
        return f"{self.base_url}/{self.tenant}/oauth2/v2.0/token"

    @property
    def dataverse_resource(self) -> str:
        return f"{self.base_url}/crm"

    @property
    def dataverse_url(self) -> str:
        return f"{self.base_url}/crm/api/data/v9.2/"

    @property
    def dataverse_scope(self) -> str:
        return f"{self.dataverse_resource}/.default"

    @property
    def bc_api_url(self) -> str:
        return f"{self.base_url}/bc/v2.0/{self.tenant}/{self.environment}/api/v2.0/"

    @property
    def bc_custom_api_url(self) -> str:
        return f"{self.base_url}/bc/v2.0/{self.tenant}/{self.environment}/api/navcrm/sync/v1.0/"

    @property
    def bc_scope(self) -> str:
        return BC_SCOPE

    @property
    def nav_url(self) -> str:
        """Root of the NAV 2018 OData v4 page web services (credentials: sandbox.nav)."""
        return f"{self.base_url}/nav/ODataV4/"
