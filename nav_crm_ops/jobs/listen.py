"""``nav-crm-ops listen``: near-real-time wake-ups for the job runner (issue #20, item 5).

Why: a record edited in one system otherwise waits for its job's next slot (30 minutes by
default, 12 hours when the job sleeps after a quiet period). The listener learns that a table
changed and marks the jobs whose mappings read it as woken in the state database; ``jobs run
--loop`` checks the marks every few seconds and runs a woken job at once.

How it learns:

- **Business Central webhooks.** On start it subscribes (``POST {api}subscriptions``) to every
  entity set a job's mapping reads from BC, with ``notificationUrl`` = ``--public-url`` and a
  random ``clientState`` made for this process (kept in memory; the state database keeps only
  its SHA-256, logs never show it). A small HTTP receiver answers BC's ``validationToken``
  handshake and takes notifications: a notification whose clientState is not ours is refused
  (401) and logged without the value; a good one wakes the jobs of its resource (a
  ``collection`` notification likewise). Subscriptions are renewed (PATCH, a new handshake)
  well before their three-day expiry, recreated when BC dropped one, deleted on exit.
- **Dataverse change tracking.** Every ``poll_s`` seconds (30 by default) one delta request per
  table a mapping reads from CRM (``Prefer: odata.track-changes``, only the key selected, the
  ``@odata.deltaLink`` kept in the state database): rows changed by someone other than the
  integration's own user wake the table's jobs.

What it never does: write to the services (beyond its own subscriptions), or carry data: a
notification only wakes a job, and the run reads both services as any run does. So a forged
notification can at worst cause one extra run.
"""

from __future__ import annotations

import enum
import json
import logging
import secrets
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from ..config import WorkspaceConfig
from ..exceptions import ConnectorError, NavCrmOpsError
from ..store.subscriptions import SubscriptionRepository

__all__ = ["ChangeSource", "ListenOptions", "Listener", "resource_entity"]

log = logging.getLogger("nav_crm_ops.listen")

MAX_BODY = 4 * 1024 * 1024
"""A notification POST larger than this is refused (BC sends at most 1,000 entries)."""
RENEW_BEFORE_S = 24 * 3600.0
"""Renew a subscription once less than a day of its three days is left."""
CHECK_S = 300.0
"""How often the listener checks that BC still holds its subscriptions."""


class ChangeSource(enum.Enum):
    """Where a wake-up came from (the reason stored with the mark)."""

    BC_WEBHOOK = "Business Central webhook"
    DATAVERSE_POLL = "Dataverse change tracking"


@dataclass(frozen=True)
class ListenOptions:
    """How ``listen`` runs: where it listens, the URL BC calls, the Dataverse poll period."""

    public_url: str
    host: str = "127.0.0.1"
    port: int = 0
    poll_s: float = 30.0
    renew_before_s: float = RENEW_BEFORE_S
    check_s: float = CHECK_S


def resource_entity(resource: str) -> tuple[str, str] | None:
    """A notification's ``resource`` → (api, entity set): ``api/v2.0/companies(…)/customers(…)``
    and ``/api/v2.0/companies(…)/salesInvoices?$filter=…`` (collection) alike."""
    path = urlsplit(resource).path.strip("/")
    if "api/" not in path:
        return None
    rest = path[path.index("api/") + 4:]
    head, _, tail = rest.partition("/companies(")
    entity = tail.split(")/", 1)[1] if ")/" in tail else ""
    entity = entity.split("(", 1)[0].split("/", 1)[0]
    return (head, entity) if head and entity else None


@dataclass
class _Routes:
    """Which jobs read which table (from the job queue and the workspace's mappings)."""

    bc: dict[tuple[str, str], set[str]] = field(default_factory=dict)
    crm: dict[str, set[str]] = field(default_factory=dict)
    crm_keys: dict[str, str] = field(default_factory=dict)


class Listener:
    """One listening process for the workspace ``config`` (see the module docstring)."""

    def __init__(self, config: WorkspaceConfig, options: ListenOptions, *,
                 echo: Callable[[str], object] | None = None) -> None:
        from ..engine.mapping import MappingSet
        from ..store import StateStore

        self.config = config
        self.options = options
        self.echo = echo or (lambda _text: None)
        self.store = StateStore.open(config.state_url)
        self.repo = SubscriptionRepository(self.store.transaction, self.store.company)
        self.mappings = MappingSet.for_workspace(config)
        self._client_state = secrets.token_urlsafe(32)
        self._subs: dict[str, Any] = {}
        self._connections: Any = None
        self._server: ThreadingHTTPServer | None = None
        self._own_user: str | None = None
        self.woken: list[tuple[str, list[str]]] = []
        """(reason, jobs) of every wake-up, in order (for tests and the console)."""

    # -- wiring --------------------------------------------------------------------------------
    @property
    def connections(self) -> Any:
        if self._connections is None:
            from ..connectors.factory import connect

            self._connections = connect(self.config)
        return self._connections

    def routes(self) -> _Routes:
        """The queue's jobs by the tables their mappings read (read each time: jobs change)."""
        from .queue import JobQueue

        routes = _Routes()
        for job in JobQueue(self.store).list():
            if not job.mapping:
                continue
            try:
                mapping = self.mappings.get(job.mapping)
            except NavCrmOpsError:
                continue
            if mapping.direction in ("to_crm", "bidirectional"):
                routes.bc.setdefault((mapping.nav.api, mapping.nav.entity), set()).add(job.name)
            if mapping.direction in ("from_crm", "bidirectional"):
                routes.crm.setdefault(mapping.crm.entity, set()).add(job.name)
                routes.crm_keys[mapping.crm.entity] = mapping.crm.key
        return routes

    @property
    def address(self) -> tuple[str, int]:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    # -- life cycle ------------------------------------------------------------------------------
    def start(self) -> None:
        """Serve the receiver, then subscribe (BC calls back during the subscribe)."""
        self._server = ThreadingHTTPServer((self.options.host, self.options.port),
                                           _handler(self))
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True,
                         name="listen-http").start()
        self._drop_previous()
        self.subscribe()

    def run(self, stop: threading.Event) -> None:
        """Poll Dataverse every ``poll_s``, keep the subscriptions alive, until ``stop``."""
        next_check = 0.0
        waited = 0.0
        while not stop.is_set():
            try:
                self.poll_dataverse()
                if waited >= next_check:
                    self.keep_alive()
                    next_check = waited + self.options.check_s
            except NavCrmOpsError as exc:  # a service or the state database briefly away
                self.echo(f"this round failed ({exc}); trying again in "
                          f"{self.options.poll_s:g} s")
            stop.wait(self.options.poll_s)
            waited += self.options.poll_s

    def close(self) -> None:
        """Unsubscribe (BC stops calling a URL nobody answers) and stop serving."""
        for sub_id, (client, sub) in list(self._subs.items()):
            try:
                client.delete(sub_id, sub.etag)
            except ConnectorError as exc:
                self.echo(f"could not delete subscription {sub_id}: {exc}")
            self.repo.remove(sub_id)
        self._subs.clear()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._connections is not None:
            for client in {id(c): c for c in (self._connections.dataverse,
                                              self._connections.business_central,
                                              self._connections.business_central_custom)
                           }.values():
                client.close()
        self.store.close()

    # -- Business Central subscriptions -----------------------------------------------------------
    def _client(self, api: str) -> Any:
        from ..connectors.bc_subscriptions import BCSubscriptions

        return BCSubscriptions(self.connections.business_central_for(api))

    def _drop_previous(self) -> None:
        """Subscriptions an earlier listener of this workspace left: deleted at BC."""
        for row in self.repo.listed():
            api = resource_entity(row["resource"])
            try:
                self._client(api[0] if api else "v2.0").delete(row["id"], "*")
            except ConnectorError as exc:
                self.echo(f"could not delete the earlier subscription {row['id']}: {exc}")
            self.repo.remove(row["id"])

    def subscribe(self) -> None:
        """One subscription per BC table a job reads; tables BC refuses wait for their slot."""
        held = {self._subs[s][1].resource for s in self._subs}
        for api, entity_set in sorted(self.routes().bc):
            client = self._client(api)
            if client.resource(entity_set) in held:
                continue
            try:
                sub = client.create(entity_set, self.options.public_url, self._client_state)
            except ConnectorError as exc:
                self.echo(f"no webhook for {entity_set}: {exc} (its jobs keep their schedule)")
                continue
            self._subs[sub.id] = (client, sub)
            self.repo.save(sub.wire, self._client_state)
            self.echo(f"subscribed to {entity_set} (expires {sub.expires:%Y-%m-%d %H:%M} UTC)")

    def keep_alive(self) -> None:
        """Renew subscriptions close to expiry; subscribe again where BC dropped one."""
        for sub_id, (client, sub) in list(self._subs.items()):
            if sub.seconds_left() > self.options.renew_before_s:
                continue
            try:
                renewed = client.renew(sub, self._client_state)
            except ConnectorError as exc:
                self.echo(f"renewing {sub.resource} failed ({exc}); subscribing again")
                self._subs.pop(sub_id)
                self.repo.remove(sub_id)
                continue
            self._subs[sub_id] = (client, renewed)
            self.repo.renewed(renewed.wire)
        live_ids: set[str] = set()
        for api in {key[0] for key in self.routes().bc}:
            live_ids |= {s.id for s in self._client(api).list()}
        for gone in set(self._subs) - live_ids:
            self.echo(f"Business Central dropped subscription {gone}; subscribing again")
            self._subs.pop(gone)
            self.repo.remove(gone)
        self.subscribe()

    # -- notifications --------------------------------------------------------------------------
    def notified(self, body: dict[str, Any]) -> int:
        """Handle one notification POST; → the HTTP status to answer."""
        entries = body.get("value")
        if not isinstance(entries, list):
            return 400
        accepted = 0
        tables: set[tuple[str, str]] = set()
        for entry in entries:
            if not isinstance(entry, dict):
                continue
            sub_id = str(entry.get("subscriptionId", ""))
            state = str(entry.get("clientState", ""))
            if sub_id not in self._subs or not secrets.compare_digest(state,
                                                                      self._client_state):
                log.warning("ignored a notification for subscription %r: unknown subscription "
                            "or wrong clientState (value not logged)", sub_id)
                continue
            accepted += 1
            target = resource_entity(str(entry.get("resource", "")))
            if target is not None:
                tables.add(target)
        if not accepted:
            return 401
        routes = self.routes().bc
        for table in sorted(tables):
            self._wake(routes.get(table, set()), ChangeSource.BC_WEBHOOK, table[1])
        return 202

    def _wake(self, jobs: Iterable[str], source: ChangeSource, table: str) -> None:
        names = sorted(jobs)
        if not names:
            return
        reason = f"{source.value}: {table} changed"
        self.repo.wake(names, reason)
        self.woken.append((reason, names))
        self.echo(f"woke {', '.join(names)} ({reason})")

    # -- Dataverse change tracking ------------------------------------------------------------------
    def poll_dataverse(self) -> None:
        """One delta request per CRM table a job reads (the first only takes a delta link)."""
        routes = self.routes()
        if not routes.crm:
            return
        dataverse = self.connections.dataverse
        if self._own_user is None:
            self._own_user = str(dataverse.whoami().get("UserId", "")).lower()
        for entity_set, jobs in sorted(routes.crm.items()):
            link = self.repo.delta_link(entity_set)
            key = routes.crm_keys[entity_set]
            frame, deleted, new_link = dataverse.track_changes(
                entity_set, [key, "_modifiedby_value"], link)
            self.repo.set_delta_link(entity_set, new_link)
            if link is None:
                continue
            by_others = [str(v).lower() for v in frame.get_column("_modifiedby_value")
                         ] if frame.height and "_modifiedby_value" in frame.columns else []
            if deleted or any(user != self._own_user for user in by_others):
                self._wake(jobs, ChangeSource.DATAVERSE_POLL, entity_set)


def _handler(listener: Listener) -> type[BaseHTTPRequestHandler]:
    """The receiver's request handler: the handshake and notifications, nothing else."""

    class Handler(BaseHTTPRequestHandler):
        server_version = "nav-crm-ops-listen"

        def do_GET(self) -> None:
            self._handshake_or(405)

        def do_POST(self) -> None:
            if self._handshake_or(0):
                return
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                self._answer(413, "notification too large")
                return
            try:
                body = json.loads(self.rfile.read(length) or b"{}")
            except ValueError:
                self._answer(400, "the body is not JSON")
                return
            try:
                status = listener.notified(body if isinstance(body, dict) else {})
            except NavCrmOpsError as exc:  # state database away: BC retries on 5xx
                log.warning("could not record a notification: %s", exc)
                status = 503
            self._answer(status, "")

        def _handshake_or(self, status: int) -> bool:
            token = parse_qs(urlsplit(self.path).query).get("validationToken")
            if token:
                self._answer(200, token[0])
                return True
            if status:
                self._answer(status, "")
            return False

        def _answer(self, status: int, text: str) -> None:
            data = text.encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("listen: " + format, *args)  # the query holds only the token

    return Handler
