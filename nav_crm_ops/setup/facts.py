"""What the services have, read once through the metadata connectors: the Dataverse tables,
columns, option values and the application user's privileges, the Business Central APIs'
entity sets and companies, and each service's clock.

Why apart from the checks: reading talks to the services and can fail in many ways (a wrong
secret, a service down, a role that cannot read its own privileges); judging is a pure
comparison of requirements with these facts (:mod:`.doctor`, :mod:`.crm_setup`), tested
without HTTP. A failure to read is kept as a :class:`Probe` that says what failed and what to
do, and the facts that could not be read stay ``None``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TypeVar

from ..connectors.factory import Connections
from ..connectors.metadata import (
    AttributeInfo,
    BcEntitySet,
    BcMetadata,
    DataverseMetadata,
    ServiceClock,
    TableInfo,
)
from ..connectors.nav_views import NavViews
from ..exceptions import AuthError, ConnectorError, TransientError

__all__ = ["ROOT_API", "BcFacts", "CrmFacts", "Facts", "Probe", "ProbeStatus", "Service",
           "gather_facts"]

T = TypeVar("T")
ROOT_API = "v2.0"
"""The key of the standard API in :attr:`BcFacts.apis` (on NAV: the OData v4 root)."""


class Service(StrEnum):
    DATAVERSE = "dataverse"
    BUSINESS_CENTRAL = "business_central"
    NAV = "nav"
    """NAV 2013 R2-2018 / BC on-premises page web services (the ``[nav]`` section)."""


class ProbeStatus(StrEnum):
    OK = "ok"
    FAILED = "failed"
    UNREACHABLE = "unreachable"
    """No answer or no token: nothing further about the service can be known (exit 3)."""


@dataclass(frozen=True)
class Probe:
    """One workspace-wide question asked of a service, and its answer."""

    service: Service
    check: str
    status: ProbeStatus
    message: str
    fix: str = ""


@dataclass
class CrmFacts:
    """Dataverse as read: tables by logical name, their columns (None: table missing) and
    choice values, the caller and its privileges (None: could not be read)."""

    user_id: str = ""
    tables_read: bool = False
    tables: dict[str, TableInfo] = field(default_factory=dict)
    attributes: dict[str, dict[str, AttributeInfo] | None] = field(default_factory=dict)
    options: dict[str, dict[str, frozenset[int]]] = field(default_factory=dict)
    privileges: frozenset[str] | None = None
    clock: ServiceClock = field(default_factory=ServiceClock)


@dataclass
class BcFacts:
    """The ERP as read: entity sets per API (None: the API answers 404), companies (id ->
    name; on NAV name -> name). On NAV (``service`` :attr:`Service.NAV`) there is one OData
    v4 root whose entity sets are the published pages' service names: ``pages`` gives the
    service name of a mapping's entity set."""

    apis: dict[str, dict[str, BcEntitySet] | None] = field(default_factory=dict)
    api_urls: dict[str, str] = field(default_factory=dict)
    companies: dict[str, str] | None = None
    clock: ServiceClock = field(default_factory=ServiceClock)
    service: Service = Service.BUSINESS_CENTRAL
    pages: Callable[[str], str] | None = None
    views: NavViews | None = None
    """On NAV: the sets and columns the connection computes from published pages."""

    def computed(self, entity_set: str, name: str | None = None) -> bool:
        """Whether the connection computes the set (``name`` None) or the set's column."""
        if self.views is None:
            return False
        if self.views.derives(entity_set):
            return True
        return name is not None and name in self.views.computed(entity_set)

    def locate(self, api: str, entity_set: str) -> tuple[str, str]:
        """Where a mapping's ``(api, entity set)`` is in these facts: itself on Business
        Central; on NAV the one root's published service name."""
        if self.pages is None:
            return api, entity_set
        return ROOT_API, self.pages(entity_set)


@dataclass
class Facts:
    crm: CrmFacts | None = None
    bc: BcFacts | None = None
    probes: list[Probe] = field(default_factory=list)

    @property
    def unreachable(self) -> bool:
        return any(p.status is ProbeStatus.UNREACHABLE for p in self.probes)


_PERMISSIONS = {
    Service.DATAVERSE: "give the application user a security role that allows it",
    Service.BUSINESS_CENTRAL: "assign the Entra application the permission sets it needs in "
                              "Business Central (Microsoft Entra applications page)",
    Service.NAV: "give the NAV user the permission sets it needs (Users page in NAV), and "
                 "check the page is published on the Web Services page",
}


def _fix_for(service: Service, error: ConnectorError) -> str:
    where = f"[{service.value}]"
    if isinstance(error, AuthError) and error.status == 403:
        return _PERMISSIONS[service]
    if isinstance(error, AuthError) and service is Service.NAV:
        return (f"check {where} auth in nav_crm_ops.toml: the NAV user name and the "
                "environment variable holding its web service access key (Basic), or the "
                "Windows account (NTLM); and the server's credential type")
    if isinstance(error, AuthError):
        return (f"check {where} auth in nav_crm_ops.toml: tenant (authority), client id, the "
                "client secret's environment variable, and that the scope names this service")
    return f"check {where} URLs in nav_crm_ops.toml and that the service is reachable from here"


class _Asker:
    """Runs one question, turning a connector error into a failed :class:`Probe`."""

    def __init__(self, facts: Facts) -> None:
        self.facts = facts

    def ask(self, service: Service, check: str, call: Callable[[], T], *,
            fatal: bool = False) -> T | None:
        try:
            return call()
        except (AuthError, TransientError) as error:
            status = ProbeStatus.UNREACHABLE if fatal else ProbeStatus.FAILED
            self.facts.probes.append(Probe(service, check, status, str(error),
                                           _fix_for(service, error)))
        except ConnectorError as error:
            self.facts.probes.append(Probe(service, check, ProbeStatus.FAILED, str(error),
                                           _fix_for(service, error)))
        return None

    def ok(self, service: Service, check: str, message: str) -> None:
        self.facts.probes.append(Probe(service, check, ProbeStatus.OK, message))


def _scoped(scope: str) -> str:
    return f"token for scope {scope} accepted" if scope else "token accepted"


def _read_crm(asker: _Asker, meta: DataverseMetadata, tables: Iterable[str],
              choice_tables: set[str], scope: str) -> CrmFacts | None:
    me = asker.ask(Service.DATAVERSE, "authentication", meta.whoami, fatal=True)
    if me is None:
        return None
    facts = CrmFacts(user_id=str(me.get("UserId") or ""), clock=meta.clock)
    asker.ok(Service.DATAVERSE, "authentication",
             f"{_scoped(scope)}; WhoAmI: application user {facts.user_id}")
    found = asker.ask(Service.DATAVERSE, "tables", lambda: meta.tables(sorted(set(tables))),
                      fatal=True)
    if found is None:
        return facts
    facts.tables, facts.tables_read = found, True
    for name in found:
        facts.attributes[name] = asker.ask(Service.DATAVERSE, f"columns of {name}",
                                           lambda n=name: meta.attributes(n))  # type: ignore[misc]
        if name in choice_tables:
            facts.options[name] = asker.ask(
                Service.DATAVERSE, f"choices of {name}",
                lambda n=name: meta.option_values(n)) or {}  # type: ignore[misc]
    if facts.user_id:
        facts.privileges = asker.ask(Service.DATAVERSE, "privileges",
                                     lambda: meta.user_privileges(facts.user_id))
    return facts


def _read_bc(asker: _Asker, clients: Mapping[str, BcMetadata], scope: str) -> BcFacts | None:
    main = clients[ROOT_API]
    nav = main.pages is not None
    service = Service.NAV if nav else Service.BUSINESS_CENTRAL
    companies = asker.ask(service, "authentication", main.companies, fatal=True)
    if companies is None:
        return None
    facts = BcFacts(companies=companies, clock=main.clock, service=service, pages=main.pages,
                    views=main.views)
    accepted = "credentials accepted" if nav else _scoped(scope)
    asker.ok(service, "authentication",
             f"{accepted}; {len(companies)} compan{'y' if len(companies) == 1 else 'ies'}"
             " listed")
    for api, client in clients.items():
        facts.api_urls[api] = client.api_url
        check = "OData v4 page web services" if nav else f"API {api}"
        before = len(asker.facts.probes)
        sets = asker.ask(service, check, client.entity_sets)
        if len(asker.facts.probes) > before:
            continue  # could not be read: the probe says why
        facts.apis[api] = sets
        if sets is not None:
            what = "published pages" if nav else "entity sets"
            asker.ok(service, check, f"$metadata of {client.api_url} lists {len(sets)} {what}")
        elif api != ROOT_API:
            asker.facts.probes.append(Probe(
                service, check, ProbeStatus.FAILED,
                f"{client.api_url} answers 404: the extension's API is not installed",
                "install the BC extension (bc-extension/README.md)"))
    return facts


def gather_facts(connections: Connections, *, crm_tables: Iterable[str],
                 choice_tables: Iterable[str], bc_apis: Iterable[str],
                 scopes: Mapping[Service, str] | None = None) -> Facts:
    """Read what the checks need: the named Dataverse tables (with the choices of
    ``choice_tables``) and the ``$metadata`` of each BC API (``v2.0`` or a custom API path)."""
    facts = Facts()
    asker = _Asker(facts)
    scopes = scopes or {}
    facts.crm = _read_crm(asker, DataverseMetadata(connections.dataverse), crm_tables,
                          set(choice_tables), scopes.get(Service.DATAVERSE, ""))
    main = BcMetadata(connections.business_central)
    clients = {ROOT_API: main}
    for api in bc_apis if main.pages is None else ():  # NAV: one root for every API
        if api != ROOT_API:
            clients[api] = BcMetadata(connections.business_central_for(api))
    facts.bc = _read_bc(asker, clients, scopes.get(Service.BUSINESS_CENTRAL, ""))
    return facts
