"""Build the two service clients from a workspace config (secrets resolved only here)."""

from __future__ import annotations

from dataclasses import dataclass

from ..config import AuthConfig, WorkspaceConfig
from .auth import Auth, BasicAuth, ClientCredentials
from .business_central import BusinessCentral
from .dataverse import Dataverse

__all__ = ["Connections", "connect"]


@dataclass(frozen=True)
class Connections:
    """The clients one workspace talks to: Dataverse, BC API v2.0 and the BC custom API."""

    dataverse: Dataverse
    business_central: BusinessCentral
    business_central_custom: BusinessCentral

    def business_central_for(self, api: str) -> BusinessCentral:
        """The BC client for a mapping's ``api`` (``v2.0`` or a custom API path)."""
        return self.business_central if api == "v2.0" else self.business_central_custom


def _auth(config: AuthConfig, what: str) -> Auth:
    secret = config.secret(what)
    if config.kind == "basic":
        return BasicAuth(config.client_id, secret)
    return ClientCredentials(config.authority, config.client_id, secret, config.scope,
                             secret_setting=config.client_secret_env or "client secret")


def connect(config: WorkspaceConfig) -> Connections:
    """Create the clients (waiting at most ``[http] timeout_s`` for an answer); raises
    ConfigError naming the setting when a secret is missing."""
    crm_auth = _auth(config.dataverse.auth, "dataverse.auth")
    bc_auth = _auth(config.business_central.auth, "business_central.auth")
    bc = config.business_central
    custom = (BusinessCentral(bc.custom_api_url, bc.company_id, bc_auth) if bc.custom_api_url
              else BusinessCentral.custom_api(bc.api_url, bc.company_id, bc_auth))
    connections = Connections(
        dataverse=Dataverse(config.dataverse.url, crm_auth),
        business_central=BusinessCentral(bc.api_url, bc.company_id, bc_auth),
        business_central_custom=custom,
    )
    for client in (connections.dataverse, connections.business_central,
                   connections.business_central_custom):
        client.http.set_timeout(config.http.timeout_s)
    return connections
