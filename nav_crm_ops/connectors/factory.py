"""Build the service clients from a workspace config (secrets resolved only here)."""

from __future__ import annotations

from dataclasses import dataclass

from ..config import AuthConfig, NavConfig, WorkspaceConfig
from .auth import Auth, BasicAuth, ClientCredentials, NtlmAuth
from .business_central import BusinessCentral
from .dataverse import Dataverse
from .nav_odata import NavODataV4

__all__ = ["Connections", "connect"]


@dataclass(frozen=True)
class Connections:
    """The clients one workspace talks to: Dataverse, BC API v2.0 and the BC custom API.

    On a NAV workspace (``profile = "nav2018"``) all three ERP fields hold the same
    :class:`NavODataV4` client (a :class:`BusinessCentral` as far as types go: it reads, writes,
    counts and closes the same way), which maps each entity set to its published page."""

    dataverse: Dataverse
    business_central: BusinessCentral
    business_central_custom: BusinessCentral

    def business_central_for(self, api: str) -> BusinessCentral:
        """The BC client for a mapping's ``api`` (``v2.0`` or a custom API path)."""
        return self.business_central if api == "v2.0" else self.business_central_custom


def _secret_setting(config: AuthConfig, default: str) -> str:
    """Where the secret comes from, as errors name it (never the secret itself)."""
    return config.client_secret_env or config.keyring_service or default


def _auth(config: AuthConfig, what: str) -> Auth:
    secret = config.secret(what)
    if config.kind == "basic":
        return BasicAuth(config.client_id, secret,
                         secret_setting=_secret_setting(config, "web service access key"))
    if config.kind == "ntlm":
        return NtlmAuth(config.client_id, secret,
                        secret_setting=_secret_setting(config, "password"))
    return ClientCredentials(config.authority, config.client_id, secret, config.scope,
                             secret_setting=config.client_secret_env or "client secret")


def _nav(nav: NavConfig) -> NavODataV4:
    """The page web services client of a NAV workspace (``[nav]``)."""
    return NavODataV4(nav.odata_url, nav.company_name, _auth(nav.auth, "nav.auth"),
                      pages=nav.pages, batch=nav.batch, max_parallel=nav.max_parallel)


def _business_central(config: WorkspaceConfig) -> tuple[BusinessCentral, BusinessCentral]:
    """The API v2.0 client and the custom API client of a Business Central workspace."""
    bc = config.bc
    bc_auth = _auth(bc.auth, "business_central.auth")
    custom = (BusinessCentral(bc.custom_api_url, bc.company_id, bc_auth) if bc.custom_api_url
              else BusinessCentral.custom_api(bc.api_url, bc.company_id, bc_auth))
    return BusinessCentral(bc.api_url, bc.company_id, bc_auth), custom


def connect(config: WorkspaceConfig) -> Connections:
    """Create the clients (waiting at most ``[http] timeout_s`` for an answer); raises
    ConfigError naming the setting when a secret is missing."""
    crm_auth = _auth(config.dataverse.auth, "dataverse.auth")
    standard: BusinessCentral
    custom: BusinessCentral
    if config.nav is not None:
        standard = custom = _nav(config.nav)
    else:
        standard, custom = _business_central(config)
    connections = Connections(dataverse=Dataverse(config.dataverse.url, crm_auth),
                              business_central=standard, business_central_custom=custom)
    for client in (connections.dataverse, connections.business_central,
                   connections.business_central_custom):
        client.http.set_timeout(config.http.timeout_s)
    return connections
