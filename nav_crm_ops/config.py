"""Workspace configuration: ``nav_crm_ops.toml``.

A workspace is a folder holding the config file, the state database and run outputs. The config
names the two connections, how to authenticate (secrets only by environment variable or keyring
entry, never by value), the state database URL and mapping override files::

    [workspace]
    name = "cronus"
    state_url = "sqlite:///state.db"          # relative paths are relative to the workspace
    # state_url = "postgresql+psycopg://sync@dbhost:5432/navcrm"   # or PostgreSQL, with
    # state_password_env = "NAV_CRM_OPS_STATE_PASSWORD"            # its password's variable
    mapping_files = ["mappings.yaml"]          # optional overrides of the default mappings

    [business_central]
    api_url = "https://api.businesscentral.dynamics.com/v2.0/<tenant>/<env>/api/v2.0/"
    custom_api_url = "https://api.businesscentral.dynamics.com/v2.0/<tenant>/<env>/api/navcrm/sync/v1.0/"
    company_id = "<guid>"
    web_client_url = "https://businesscentral.dynamics.com/<tenant>/<env>"

    [business_central.auth]
    kind = "client_credentials"                # or "basic" (on-premises web service key)
    authority = "https://login.microsoftonline.com/<tenant>"
    client_id = "<guid>"
    client_secret_env = "NAV_CRM_OPS_BC_SECRET"
    scope = "https://api.businesscentral.dynamics.com/.default"

    [dataverse]
    url = "https://<org>.crm4.dynamics.com/api/data/v9.2/"
    web_url = "https://<org>.crm4.dynamics.com"
    # multi_company = true                     # several ERP companies share this org: only
    # company_row_id = "<guid>"                # this company's rows (docs/multi-company.md)

    [dataverse.auth]
    kind = "client_credentials"
    authority = "https://login.microsoftonline.com/<tenant>"
    client_id = "<guid>"
    client_secret_env = "NAV_CRM_OPS_CRM_SECRET"
    scope = "https://<org>.crm4.dynamics.com/.default"

    [http]
    timeout_s = 60                             # seconds to wait for a service's answer

    [retention]                                # days kept; the daily retention job purges older
    runs_days = 90                             # job log entries
    resolved_errors_days = 30                  # errors of records that synced since
    journal_days = 7                           # settled (done/failed) journal writes

A NAV 2013 R2-2018 / Business Central on-premises workspace (``profile = "nav2018"``) has a
``[nav]`` section instead of ``[business_central]``: the OData v4 page web services::

    [workspace]
    profile = "nav2018"

    [nav]
    odata_url = "https://navserver:7048/DynamicsNAV110/ODataV4/"
    company_name = "CRONUS International Ltd."
    batch = false                              # true only where the server accepts $batch

    [nav.auth]
    kind = "basic"                             # NavUserPassword: user + web service access key
    client_id = "SYNC"                         # the NAV user name (DOMAIN\\user for "ntlm")
    client_secret_env = "NAV_CRM_OPS_NAV_KEY"  # the web service access key (or password)

    [nav.pages]                                # table -> the service name published for it
    customers = "Customer"

Values are checked as the file loads (URLs must be http(s), ``company_id`` a GUID, booleans
``true``/``false`` without quotes); every error names the key and what to write there.
"""

from __future__ import annotations

import os
import tomllib
import uuid
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import tomli_w
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from .exceptions import ConfigError
from .secrets import Secret, resolve_secret

__all__ = [
    "CONFIG_FILE",
    "DEFAULT_NAV_PAGES",
    "AlertSettings",
    "AuthConfig",
    "BusinessCentralConfig",
    "DataverseConfig",
    "ErpProfile",
    "HttpSettings",
    "NavConfig",
    "RetentionSettings",
    "StateUrl",
    "WorkspaceConfig",
    "WorkspaceSettings",
    "configured_secrets",
    "load_config",
    "write_config",
]

CONFIG_FILE = "nav_crm_ops.toml"
DEFAULT_TIMEOUT_S = 60.0
"""Seconds a request waits for the service's answer unless ``[http] timeout_s`` says otherwise."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _http_url(value: str, example: str) -> str:
    """``value`` when it is an http(s) URL with a host (empty passes: optional settings)."""
    if not value:
        return value
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{value!r} is not an http(s) URL; write it as {example}")
    return value


class AuthConfig(_Frozen):
    """How to authenticate to one service. Secrets are named, never stored."""

    kind: Literal["client_credentials", "basic", "ntlm"] = "client_credentials"
    authority: str = Field("", description="OAuth authority, e.g. https://login.microsoftonline.com/<tenant>")
    client_id: str = Field("", description="Application (client) id, or the user name for basic "
                           "and ntlm auth (DOMAIN\\user for ntlm)")
    client_secret_env: str | None = Field(None, description="Environment variable holding the secret")
    keyring_service: str | None = Field(None, description="Keyring service holding the secret")
    keyring_user: str | None = Field(None, description="Keyring user name of that entry")
    scope: str = Field("", description="OAuth scope, e.g. https://api.businesscentral.dynamics.com/.default")

    @field_validator("authority")
    @classmethod
    def _authority(cls, value: str) -> str:
        return _http_url(value, "https://login.microsoftonline.com/<tenant id>")

    def secret(self, what: str) -> Secret:
        """Resolve the secret from the environment or keyring (raises ConfigError if missing)."""
        if not self.client_secret_env and not self.keyring_service:
            raise ConfigError(
                f"{what}: set client_secret_env (an environment variable name) or "
                f"keyring_service in {CONFIG_FILE}"
            )
        return resolve_secret(
            env=self.client_secret_env, keyring_service=self.keyring_service,
            keyring_user=self.keyring_user, what=what,
        )


class BusinessCentralConfig(_Frozen):
    """The Business Central (or NAV) side."""

    api_url: str = Field(description="API v2.0 root ending in /api/v2.0/")
    custom_api_url: str = Field("", description="Custom API root (resources, prices, statistics)")
    company_id: str = Field(description="Company GUID")
    company_name: str = "CRONUS International Ltd."
    web_client_url: str = Field("", description="Base of links that open records in the BC web client")
    auth: AuthConfig

    @field_validator("api_url", "custom_api_url")
    @classmethod
    def _slash(cls, value: str) -> str:
        _http_url(value, "https://api.businesscentral.dynamics.com/v2.0/<tenant>/<environment>"
                  "/api/v2.0/")
        return value if not value or value.endswith("/") else value + "/"

    @field_validator("web_client_url")
    @classmethod
    def _web_client(cls, value: str) -> str:
        return _http_url(value, "https://businesscentral.dynamics.com/<tenant>/<environment>")

    @field_validator("company_id")
    @classmethod
    def _guid(cls, value: str, info: ValidationInfo) -> str:
        try:
            uuid.UUID(value)
        except ValueError:
            api = info.data.get("api_url") or "<api_url>"
            raise ValueError(
                f"{value!r} is not a GUID; write the company's id as the service lists it "
                f"(GET {api}companies, field id), e.g. 6a3b2c1d-0000-4000-8000-00000000c0de"
            ) from None
        return value



class ErpProfile(StrEnum):
    """Which ERP a workspace talks to (``[workspace] profile``)."""

    BC_ONLINE = "bc-online"
    """Business Central online (or on-premises BC 18+): API v2.0 and the extension's custom API."""
    NAV2018 = "nav2018"
    """NAV 2013 R2-2018 / BC on-premises: OData v4 page web services (``[nav]``)."""


DEFAULT_NAV_PAGES: dict[str, str] = {
    "customers": "Customer", "contacts": "Contact",
    "salespeoplePurchasers": "SalespersonPurchaser", "currencies": "Currencies",
    "unitsOfMeasure": "UnitsOfMeasure", "items": "Item", "resources": "Resource",
    "customerPriceGroups": "CustomerPriceGroups", "salesPrices": "SalesPrices",
    "salesInvoices": "PostedSalesInvoice", "salesInvoiceLines": "PostedSalesInvoiceLines",
    "salesOrders": "SalesOrder", "salesOrderLines": "SalesOrderSalesLines",
    "customerStatistics": "CustomerStatistics", "contactsInformation": "ContactBusinessRelations",
    "generalLedgerSetup": "GeneralLedgerSetup",
}
"""The service names a NAV administrator publishes for the default mappings' tables (Web
Services page, object type Page), keyed by the table's Business Central API entity set."""


class NavConfig(_Frozen):
    """The NAV 2013 R2-2018 / BC on-premises side: OData v4 page web services."""

    odata_url: str = Field(description="OData v4 root ending in /ODataV4/, e.g. "
                           "https://navserver:7048/DynamicsNAV110/ODataV4/")
    company_name: str = Field(description="The company as NAV names it (Company('...') in URLs)")
    auth: AuthConfig
    pages: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_NAV_PAGES),
                                  description="table (BC API entity set) -> published service name")
    batch: StrictBool = Field(False, description="the server accepts OData $batch (BC on-premises "
                              "does; NAV 2018 documents none for page services)")
    max_parallel: int = Field(4, ge=1, le=32, strict=True,
                              description="single-record writes sent at once")
    web_client_url: str = Field("", description="Base of links that open records in the web client")

    @field_validator("odata_url")
    @classmethod
    def _odata_url(cls, value: str) -> str:
        _http_url(value, "https://navserver:7048/DynamicsNAV110/ODataV4/")
        if not value.rstrip("/").endswith("ODataV4"):
            raise ValueError(f"{value!r} is not an OData v4 root; it ends in /ODataV4/, e.g. "
                             "https://navserver:7048/DynamicsNAV110/ODataV4/")
        return value if value.endswith("/") else value + "/"

    @field_validator("web_client_url")
    @classmethod
    def _web_client(cls, value: str) -> str:
        return _http_url(value, "https://navserver:8080/DynamicsNAV110/")

    @field_validator("auth")
    @classmethod
    def _auth_kind(cls, value: AuthConfig) -> AuthConfig:
        if value.kind not in ("basic", "ntlm"):
            raise ValueError(f"kind {value.kind!r} is not used by NAV page web services; write "
                             "kind = \"basic\" (NavUserPassword: user name + web service access "
                             "key) or kind = \"ntlm\" (Windows: DOMAIN\\user + password)")
        if not value.client_id:
            raise ValueError("client_id: write the NAV user name (DOMAIN\\user for ntlm)")
        return value

    @field_validator("company_name")
    @classmethod
    def _company(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("write the company's name as NAV shows it, e.g. "
                             "\"CRONUS International Ltd.\"")
        return value


class DataverseConfig(_Frozen):
    """The Dynamics 365 Sales (Dataverse) side."""

    url: str = Field(description="Web API root ending in /api/data/v9.2/")
    web_url: str = Field("", description="Base of links that open records in Dynamics 365 Sales")
    auth: AuthConfig
    ignore_own_changes: StrictBool = Field(
        True, description="incremental reads skip rows last changed by the integration's own "
        "user (WhoAmI), as the reference integration does, so a run does not read back what "
        "the previous run wrote; people and scripts editing CRM need their own identity (or "
        "impersonation) for their changes to be synchronized")
    multi_company: StrictBool = Field(
        False, description="several ERP companies share this Dataverse org (Business "
        "Central's multi-company synchronization, docs/multi-company.md): the default "
        "mappings read only the CRM rows of this workspace's company (bcbi_companyid) and "
        "set it on the rows they create")
    company_row_id: str = Field(
        "", description="the id of this workspace's company in Dataverse's bcbi_company "
        "table (the row whose bcbi_externalid is the ERP company); `nav-crm-ops init` and "
        "`nav-crm-ops setup crm` find or create it and write it here")

    @field_validator("company_row_id")
    @classmethod
    def _row_guid(cls, value: str) -> str:
        if value:
            try:
                return str(uuid.UUID(value))
            except ValueError:
                raise ValueError(f"{value!r} is not a GUID; leave it empty and run "
                                 "`nav-crm-ops setup crm` to fill it") from None
        return value

    @field_validator("url")
    @classmethod
    def _slash(cls, value: str) -> str:
        _http_url(value, "https://<org>.crm4.dynamics.com/api/data/v9.2/")
        return value if value.endswith("/") else value + "/"

    @field_validator("web_url")
    @classmethod
    def _web(cls, value: str) -> str:
        return _http_url(value, "https://<org>.crm4.dynamics.com")


class HttpSettings(_Frozen):
    """How long requests to the services may take (``[http]``)."""

    timeout_s: float = Field(
        DEFAULT_TIMEOUT_S, gt=0, le=3600, strict=True,
        description="seconds to wait for a service's answer (read timeout); a service that "
        "accepts the connection and never answers fails the request after this long (it is "
        "retried like other transient failures)")


class RetentionSettings(_Frozen):
    """How long the state database keeps what only explains the past (``[retention]``); the
    default retention job purges older rows daily (see ``nav_crm_ops.store.retention``)."""

    runs_days: int = Field(90, strict=True, description="days the job log keeps a run")
    resolved_errors_days: int = Field(
        30, strict=True, description="days a record error is kept once its record synced (errors "
        "of records still failing or skipped are kept while they are)")
    journal_days: int = Field(
        7, strict=True, description="days the journal keeps a failed write (one that succeeded "
        "leaves the journal when its reply is settled); unfinished writes are never purged")

    @field_validator("runs_days", "resolved_errors_days", "journal_days")
    @classmethod
    def _days(cls, value: int, info: ValidationInfo) -> int:
        if value < 1:
            default = cls.model_fields[str(info.field_name)].default
            raise ValueError(f"must be a whole number of days, at least 1 (got {value}; the "
                             f"default is {default})")
        return value


class AlertSettings(_Frozen):
    """``[alerts]``: thresholds of the alert rules (:mod:`nav_crm_ops.engine.alerts`, see
    docs/alerts.md) and where alerts are sent. Secrets (the webhook URL carries its own
    token; the SMTP password) come from environment variables named here."""

    enabled: StrictBool = True
    failed_ratio: float = Field(0.1, gt=0, le=1, description="share of a run's attempted "
                                "writes that failed")
    failed_min_records: int = Field(10, ge=1, description="attempted writes before the "
                                    "failed share counts")
    count_factor: float = Field(5.0, gt=1, description="a run changes this many times more "
                                "(or fewer) records than the median of its recent runs")
    count_min_records: int = Field(100, ge=1, description="changes that make a deviation "
                                   "worth telling")
    runtime_factor: float = Field(3.0, gt=1, description="a run takes this many times the "
                                  "median duration of its recent runs")
    runtime_min_s: float = Field(60.0, ge=0, description="runs shorter than this never alert")
    history_runs: int = Field(10, ge=3, description="recent runs a deviation is measured "
                              "against (at least 3 are needed)")
    job_stale_hours: float = Field(24.0, gt=0, description="an active job without a "
                                   "successful run for this long")
    conflict_backlog: int = Field(25, ge=1, description="held conflicts per mapping")
    skipped_backlog: int = Field(25, ge=1, description="skipped records per mapping")
    watermark_stuck_hours: float = Field(24.0, gt=0, description="a watermark this far "
                                         "behind while runs keep changing records")
    webhook_url_env: str | None = Field(None, description="environment variable holding a "
                                        "Teams or Slack incoming-webhook URL")
    email_to: tuple[str, ...] = ()
    email_from: str = "nav-crm-ops@localhost"
    smtp_host: str = ""
    smtp_port: int = Field(25, ge=1, le=65535)
    smtp_starttls: StrictBool = False
    smtp_user: str = ""
    smtp_password_env: str | None = None


class WorkspaceSettings(_Frozen):
    name: str = "workspace"
    profile: ErpProfile = ErpProfile.BC_ONLINE
    state_url: str = "sqlite:///state.db"
    state_password_env: str | None = None
    """Environment variable holding the state database's password (PostgreSQL); the URL
    itself never holds one (see :mod:`nav_crm_ops.store.urls`)."""
    mapping_files: tuple[str, ...] = ()
    runs_dir: str = "runs"


class StateUrl(str):
    """The state database URL of a workspace, naming the ERP company the workspace keeps in
    it (``.company``).

    Why a string that carries the company: several companies may share one state database
    (docs/multi-company.md), and every opener of a workspace's store — the engine, the job
    runner, ``jobs list``, retention — must open it for the workspace's company.
    :meth:`nav_crm_ops.store.StateStore.open` reads ``.company`` from the URL it is given, so
    passing ``config.state_url`` is enough; code that only needs the text uses it as text."""

    company: str

    def __new__(cls, url: str, *, company: str = "") -> StateUrl:
        made = super().__new__(cls, url)
        made.company = company
        return made


class WorkspaceConfig(_Frozen):
    """The whole ``nav_crm_ops.toml``; ``root`` is the workspace folder (not stored)."""

    workspace: WorkspaceSettings = WorkspaceSettings()
    business_central: BusinessCentralConfig | None = None
    nav: NavConfig | None = None
    dataverse: DataverseConfig
    http: HttpSettings = HttpSettings()
    retention: RetentionSettings = RetentionSettings()
    alerts: AlertSettings = AlertSettings()
    root: Path = Field(default=Path("."), exclude=True)

    @model_validator(mode="before")
    @classmethod
    def _erp_section(cls, data: Any) -> Any:
        """The ERP section the profile needs is there, and only that one (checked before the
        values, so a missing section is said first)."""
        if not isinstance(data, dict):
            return data
        settings = data.get("workspace")
        raw = (settings.get("profile") if isinstance(settings, dict)
               else getattr(settings, "profile", None))
        try:
            profile = ErpProfile(raw or ErpProfile.BC_ONLINE)
        except ValueError:
            return data  # the field's own check names the valid profiles
        wanted, other = (("nav", "business_central") if profile is ErpProfile.NAV2018
                         else ("business_central", "nav"))
        if data.get(wanted) is None:
            raise ValueError(f"profile {profile.value!r} needs a [{wanted}] section (see "
                             f"`nav-crm-ops init --profile {profile.value}`)")
        if data.get(other) is not None:
            raise ValueError(f"[{other}] is not used by profile {profile.value!r}; remove it, "
                             "or set [workspace] profile to the ERP you connect to")
        return data

    @property
    def bc(self) -> BusinessCentralConfig:
        """The ``[business_central]`` section (profile ``bc-online``); a NAV workspace has
        none, and asking for it says so."""
        if self.business_central is None:
            raise ConfigError(f"workspace {self.workspace.name} uses profile "
                              f"{self.workspace.profile.value}: it has no [business_central]; "
                              "this needs a Business Central workspace")
        return self.business_central

    @property
    def erp_auth(self) -> AuthConfig:
        """How the ERP side authenticates, whichever the profile."""
        return self.nav.auth if self.nav is not None else self.bc.auth

    @property
    def erp_company(self) -> str:
        """The ERP company a plan and a state database belong to: the company id on Business
        Central, the company name on NAV."""
        return self.nav.company_name if self.nav is not None else self.bc.company_id

    def resolve_path(self, relative: str) -> Path:
        path = Path(relative)
        return path if path.is_absolute() else self.root / path

    @property
    def state_url(self) -> StateUrl:
        """The SQLAlchemy URL with a relative SQLite path made relative to the workspace, and
        the password from ``state_password_env`` when the config names one (never print
        this URL: show ``self.workspace.state_url``, which holds no password); it names the
        workspace's company (:class:`StateUrl`, :attr:`erp_company`)."""
        return StateUrl(self._state_url(), company=self.erp_company)

    def _state_url(self) -> str:
        url = self.workspace.state_url
        prefix = "sqlite:///"
        if url.startswith(prefix) and not url.startswith(prefix + "/"):
            return prefix + str(self.resolve_path(url[len(prefix):]))
        name = self.workspace.state_password_env
        if name:
            from .store.urls import with_password

            password = os.environ.get(name)
            if not password:
                raise ConfigError(f"workspace.state_password_env names {name}, which is not "
                                  "set: export the state database's password in it")
            return with_password(url, password)
        return url


def load_config(root: str | Path) -> WorkspaceConfig:
    """Read ``nav_crm_ops.toml`` from a workspace folder (or the file itself)."""
    path = Path(root)
    if path.is_dir():
        path = path / CONFIG_FILE
    if not path.exists():
        raise ConfigError(
            f"no workspace config at {path}: run `nav-crm-ops init` in that folder first"
        )
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from exc
    try:
        return WorkspaceConfig.model_validate({**data, "root": path.parent.resolve()})
    except ValidationError as exc:
        raise ConfigError(f"{path}: {_problems(exc)}") from None


_HINTS = {"bool_type": " (write true or false, without quotes)",
          "float_type": " (write a number, without quotes)",
          "int_type": " (write a whole number, without quotes)"}


def _problems(exc: ValidationError) -> str:
    """Pydantic's errors as ``key: what is wrong`` (with what to write where it helps)."""
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc'])}: "
        f"{str(err['msg']).removeprefix('Value error, ')}{_HINTS.get(err['type'], '')}"
        for err in exc.errors())


def configured_secrets(config: WorkspaceConfig) -> list[tuple[str, str]]:
    """``(setting, value)`` of every client secret the config names by environment variable
    that is set right now, e.g. ``("dataverse.auth (NAV_CRM_OPS_CRM_SECRET)", "...")``.

    For refusing values that must never be written anywhere (job parameters); the setting is
    what a message may show, the value never. Keyring entries are not read here.
    """
    found: list[tuple[str, str]] = []
    erp = "nav" if config.nav is not None else "business_central"
    for side, auth in (("dataverse", config.dataverse.auth), (erp, config.erp_auth)):
        value = os.environ.get(auth.client_secret_env or "") if auth.client_secret_env else None
        if value:
            found.append((f"{side}.auth ({auth.client_secret_env})", value))
    state_env = config.workspace.state_password_env
    if state_env and os.environ.get(state_env):
        found.append((f"workspace.state_password_env ({state_env})", os.environ[state_env]))
    return found


def write_config(config: WorkspaceConfig, root: str | Path) -> Path:
    """Write the config as ``nav_crm_ops.toml`` into ``root``; returns the file path."""
    folder = Path(root)
    folder.mkdir(parents=True, exist_ok=True)
    data: dict[str, Any] = config.model_dump(mode="json", exclude_none=True)
    data.pop("root", None)
    path = folder / CONFIG_FILE
    path.write_text(tomli_w.dumps(data), encoding="utf-8")
    return path
