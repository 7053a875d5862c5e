"""Business Central webhooks: the ``subscriptions`` entity set and the notifications it sends.

Why the sandbox has them: ``nav-crm-ops listen`` wakes a job when its tables change, and a test
of that must meet the same protocol as the real service. What is emulated, as "Working with
webhooks in Dynamics 365 Business Central" documents
(https://learn.microsoft.com/dynamics365/business-central/dev-itpro/api-reference/v2.0/dynamics-subscriptions):

- ``POST {api root}subscriptions`` ``{notificationUrl, resource, clientState}`` (the
  ``subscriptions`` set sits beside ``companies``, not inside a company). Before the
  subscription exists the service POSTs to ``notificationUrl?validationToken=<token>``; the
  subscriber must answer 200 with the token as the body within 5 seconds, else no
  subscription is created (the sandbox answers 400 ``BadRequest`` saying why: BC's own wording
  for a failed handshake is not documented). 201 with the subscription.
- ``GET subscriptions`` / ``subscriptions('<id>')``; ``PATCH`` with ``If-Match`` renews (a new
  handshake, ``expirationDateTime`` three days on); ``DELETE`` with ``If-Match`` unsubscribes.
  Subscriptions not renewed for three days expire and are gone.
- Writes to a subscribed resource (``customers``, ...; a line's change notifies its document)
  are delivered after a delay (30 s by default, as BC online; ``delay_s``) counted from the
  first change, one notification per changed record (several changes of one record within
  the delay are one), or one ``collection`` notification (``$filter=lastModifiedDateTime gt
  ...``) when more than ``max_notifications`` records changed. Every notification carries
  the subscription's ``clientState``; one POST carries those of every subscription of one
  ``notificationUrl``.
- Delivery: 2xx is done; 408, 429, 5xx or no answer are retried (BC retries for 36 hours; the
  sandbox ``retries`` times, ``delay_s`` apart); any other answer deletes the subscriptions in
  that POST, as documented.

Subscriptions live in memory (a restarted sandbox has none; a subscriber renews or subscribes
again on start, as ``listen`` does).
"""

from __future__ import annotations

import os
import secrets
import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import httpx

from ..odata.replies import JSON_UTF8, Reply
from .common import SEGMENT, BCError, etag_for, log

__all__ = ["DEFAULT_DELAY_S", "LIFETIME", "WEBHOOK_ENTITIES", "WebhookHub", "notify_write",
           "subscription_request", "webhook_hub"]

DEFAULT_DELAY_S = 30.0
"""BC online waits 30 s after the first change before it notifies."""
DELAY_ENV = "NAV_CRM_OPS_SANDBOX_WEBHOOK_DELAY_S"
"""Overrides :data:`DEFAULT_DELAY_S` for a sandbox process (BC on-premises makes it
configurable too: ``ApiSubscriptionDelayTime``)."""
LIFETIME = timedelta(days=3)
HANDSHAKE_TIMEOUT_S = 5.0
MAX_CLIENT_STATE = 2048
WEBHOOK_ENTITIES = frozenset({
    "accounts", "companyInformation", "countriesRegions", "currencies",
    "customerPaymentJournals", "customers", "dimensions", "employees", "generalLedgerEntries",
    "itemCategories", "items", "journals", "paymentMethods", "paymentTerms",
    "purchaseInvoices", "salesCreditMemos", "salesInvoices", "salesOrders", "salesQuotes",
    "shipmentMethods", "unitsOfMeasure", "vendors"})
"""The v2.0 entities the Learn page lists as webhook-supported (custom API pages are too)."""
_RETRYABLE = frozenset({408, 429})


def _now() -> datetime:
    return datetime.now(UTC)


def _text(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class _Subscription:
    id: str
    notification_url: str
    resource: str
    """As the subscriber wrote it (relative or absolute)."""
    target: tuple[str, str, str]
    """(api, company id, entity set) the resource names."""
    client_state: str
    expires: datetime
    created: datetime
    modified: datetime
    version: int = 1

    def wire(self) -> dict[str, Any]:
        return {"@odata.etag": etag_for(self.version), "subscriptionId": self.id,
                "notificationUrl": self.notification_url, "resource": self.resource,
                "userId": "00000000-0000-0000-0000-000000000001",
                "lastModifiedDateTime": _text(self.modified), "clientState": self.client_state,
                "expirationDateTime": _text(self.expires), "timestamp": self.version,
                "systemCreatedAt": _text(self.created), "systemModifiedAt": _text(self.modified)}


@dataclass
class _Pending:
    """Changes waiting for the delay to pass, per subscription."""

    first: datetime
    records: dict[str, tuple[str, datetime]] = field(default_factory=dict)
    """record id -> (change type, last modified)."""
    attempts: int = 0


class WebhookHub:
    """The subscriptions of one sandbox (all its companies) and their pending notifications.

    ``check_resource(api, company, entity_set)`` raises the BCError a bad resource deserves."""

    def __init__(self, delay_s: float | None = None) -> None:
        env = os.environ.get(DELAY_ENV, "")
        self.delay_s = delay_s if delay_s is not None else float(env or DEFAULT_DELAY_S)
        self.lifetime = LIFETIME
        self.max_notifications = 1000
        self.retries = 5
        self._subs: dict[str, _Subscription] = {}
        self._pending: dict[str, _Pending] = {}
        self._lock = threading.RLock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    # -- the entity set -------------------------------------------------------------------------
    def handle(self, method: str, key: str | None, api: str, headers: Mapping[str, str],
               payload: dict[str, Any], check_resource: Any) -> Reply:
        """One request to ``subscriptions`` / ``subscriptions('<id>')``."""
        self._expire()
        if method == "GET":
            if key is None:
                with self._lock:
                    rows = [s.wire() for s in self._subs.values() if s.target[0] == api]
                return Reply(200, {"value": rows}, {"content-type": JSON_UTF8})
            return Reply(200, self._get(key).wire(), {"content-type": JSON_UTF8})
        if method == "POST" and key is None:
            return self._create(api, payload, check_resource)
        if key is None:
            raise BCError(405, "BadRequest_MethodNotAllowed",
                          f"'{method}' requests for a collection are not allowed; address one "
                          "subscription: subscriptions('<subscriptionId>').")
        if method == "PATCH":
            return self._renew(self._get(key), api, headers, payload, check_resource)
        if method == "DELETE":
            sub = self._get(key)
            _check_if_match(sub, headers)
            with self._lock:
                self._subs.pop(sub.id, None)
                self._pending.pop(sub.id, None)
            return Reply(204)
        raise BCError(405, "BadRequest_MethodNotAllowed", f"'{method}' is not supported.")

    def _get(self, key: str) -> _Subscription:
        with self._lock:
            sub = self._subs.get(key.strip("'"))
        if sub is None:
            raise BCError(404, "Internal_RecordNotFound",
                          f"The API Webhook Subscription does not exist. Identification fields "
                          f"and values: Subscription Id='{key}'")
        return sub

    def _create(self, api: str, payload: dict[str, Any], check_resource: Any) -> Reply:
        url, resource, target, state = _read_body(api, payload, check_resource, required=True)
        _handshake(url)
        now = _now()
        sub = _Subscription(uuid.uuid4().hex, url, resource, target, state,
                            now + self.lifetime, now, now)
        with self._lock:
            self._subs[sub.id] = sub
        return Reply(201, sub.wire(), {"content-type": JSON_UTF8, "ETag": etag_for(sub.version)})

    def _renew(self, sub: _Subscription, api: str, headers: Mapping[str, str],
               payload: dict[str, Any], check_resource: Any) -> Reply:
        _check_if_match(sub, headers)
        merged = {"notificationUrl": sub.notification_url, "resource": sub.resource,
                  "clientState": sub.client_state, **payload}
        url, resource, target, state = _read_body(api, merged, check_resource, required=True)
        _handshake(url)
        now = _now()
        with self._lock:
            sub.notification_url, sub.resource, sub.target = url, resource, target
            sub.client_state, sub.expires, sub.modified = state, now + self.lifetime, now
            sub.version += 1
        return Reply(200, sub.wire(), {"content-type": JSON_UTF8, "ETag": etag_for(sub.version)})

    def _expire(self) -> None:
        now = _now()
        with self._lock:
            for sub in [s for s in self._subs.values() if s.expires <= now]:
                self._subs.pop(sub.id, None)
                self._pending.pop(sub.id, None)

    # -- notifications --------------------------------------------------------------------------
    def changed(self, api: str, company: str, entity_set: str, record_id: str,
                change_type: str) -> None:
        """A write committed: queue a notification for every live subscription of it."""
        now = _now()
        with self._lock:
            for sub in self._subs.values():
                if sub.target != (api, company.lower(), entity_set) or sub.expires <= now:
                    continue
                pending = self._pending.setdefault(sub.id, _Pending(now))
                before = pending.records.get(record_id)
                kind = change_type if before is None or change_type == "deleted" else before[0]
                pending.records[record_id] = (kind, now)
            if self._pending:
                self._start()
        self._wake.set()

    def _start(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._deliver_loop, daemon=True,
                                            name="bc-webhooks")
            self._thread.start()

    def _deliver_loop(self) -> None:
        while True:
            self._wake.wait(timeout=max(0.05, min(self.delay_s, 1.0)))
            self._wake.clear()
            for url, batch in self._due().items():
                self._post(url, batch)
            with self._lock:
                if not self._pending:
                    self._thread = None
                    return

    def _due(self) -> dict[str, list[tuple[_Subscription, _Pending]]]:
        """Pending changes whose delay passed, taken out and grouped by notification URL."""
        now = _now()
        by_url: dict[str, list[tuple[_Subscription, _Pending]]] = {}
        with self._lock:
            for sub_id, pending in list(self._pending.items()):
                sub = self._subs.get(sub_id)
                if sub is None:
                    del self._pending[sub_id]
                elif now - pending.first >= timedelta(seconds=self.delay_s):
                    del self._pending[sub_id]
                    by_url.setdefault(sub.notification_url, []).append((sub, pending))
        return by_url

    def _post(self, url: str, batch: list[tuple[_Subscription, _Pending]]) -> None:
        body = {"value": [n for sub, pending in batch for n in self._notifications(sub, pending)]}
        try:
            status = httpx.post(url, json=body, timeout=HANDSHAKE_TIMEOUT_S).status_code
        except httpx.HTTPError as exc:
            log.info("webhook notification to %s failed (%s); retrying later", url, exc)
            status = 0
        if 200 <= status < 300:
            return
        with self._lock:
            for sub, pending in batch:
                if status in _RETRYABLE or status == 0 or status >= 500:
                    pending.attempts += 1
                    if pending.attempts <= self.retries:
                        pending.first = _now()
                        merged = self._pending.setdefault(sub.id, pending)
                        if merged is not pending:
                            merged.records = {**pending.records, **merged.records}
                else:  # documented: any other answer deletes the subscription
                    log.info("webhook subscriber %s answered %s; subscription %s deleted",
                             url, status, sub.id)
                    self._subs.pop(sub.id, None)

    def _notifications(self, sub: _Subscription, pending: _Pending) -> list[dict[str, Any]]:
        api, company, entity_set = sub.target
        base = f"api/{api}/companies({company})/{entity_set}"
        common = {"subscriptionId": sub.id, "clientState": sub.client_state,
                  "expirationDateTime": _text(sub.expires)}
        if len(pending.records) > self.max_notifications:
            since = quote(_text(pending.first - timedelta(seconds=1)))
            return [{**common, "resource": f"/{base}?$filter=lastModifiedDateTime%20gt%20{since}",
                     "changeType": "collection", "lastModifiedDateTime": _text(_now())}]
        return [{**common, "resource": f"{base}({record})", "changeType": kind,
                 "lastModifiedDateTime": moment.isoformat(timespec="milliseconds")
                 .replace("+00:00", "Z")}
                for record, (kind, moment) in pending.records.items()]


def _check_if_match(sub: _Subscription, headers: Mapping[str, str]) -> None:
    given = (headers.get("if-match") or "").strip()
    if not given:
        raise BCError(400, "BadRequest_InvalidToken",
                      "Could not validate the client concurrency token required by the "
                      "service. Please provide a valid token in the client request.")
    if given != "*" and given != etag_for(sub.version):
        raise BCError(409, "Request_EntityChanged",
                      "Another user has already changed the record.")


def _read_body(api: str, payload: Mapping[str, Any], check_resource: Any, *, required: bool,
               ) -> tuple[str, str, tuple[str, str, str], str]:
    """→ (notificationUrl, resource, (api, company, entity set), clientState), checked."""
    unknown = set(payload) - {"notificationUrl", "resource", "clientState", "subscriptionId",
                              "@odata.etag"}
    if unknown:
        name = sorted(unknown)[0]
        raise BCError(400, "BadRequest_PropertyNotFound",
                      f"The property '{name}' does not exist on type "
                      "'Microsoft.NAV.subscriptions'. Make sure to only use property names "
                      "that are defined by the type.")
    url, resource = payload.get("notificationUrl"), payload.get("resource")
    state = payload.get("clientState") or ""
    if required and not (isinstance(url, str) and url and isinstance(resource, str) and resource):
        raise BCError(400, "BadRequest",
                      "A subscription needs 'notificationUrl' and 'resource'.")
    assert isinstance(url, str) and isinstance(resource, str)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise BCError(400, "BadRequest",
                      f"The notificationUrl '{url}' is not an absolute http(s) URL.")
    if not isinstance(state, str) or len(state) > MAX_CLIENT_STATE:
        raise BCError(400, "BadRequest",
                      f"clientState must be text of at most {MAX_CLIENT_STATE} characters.")
    return url, resource, _resource_target(api, resource, check_resource), state


def _resource_target(api: str, resource: str, check_resource: Any) -> tuple[str, str, str]:
    """``/api/v2.0/companies(<id>)/customers`` (absolute URLs too) → (api, company, set)."""
    path = urlsplit(resource).path
    marker = f"api/{api}/"
    at = path.find(marker)
    rest = path[at + len(marker):] if at >= 0 else ""
    segments = rest.strip("/").split("/")
    if (len(segments) != 2 or not segments[0].startswith("companies(")
            or not segments[0].endswith(")") or "(" in segments[1]):
        raise BCError(400, "BadRequest",
                      f"The resource '{resource}' is not a collection of this API; subscribe "
                      f"to '/api/{api}/companies(<company id>)/<entity set>'.")
    company = segments[0][len("companies("):-1].strip("'").lower()
    entity_set = segments[1]
    check_resource(api, company, entity_set)
    return api, company, entity_set


def _handshake(url: str) -> None:
    """BC's handshake: POST ``?validationToken=``, expect 200 and the token back in 5 s."""
    token = secrets.token_urlsafe(24)
    try:
        response = httpx.post(url, params={"validationToken": token},
                              timeout=HANDSHAKE_TIMEOUT_S)
    except httpx.HTTPError as exc:
        raise BCError(400, "BadRequest",
                      f"The subscription was not created: the handshake with '{url}' failed "
                      f"({type(exc).__name__}); the subscriber must answer within "
                      f"{HANDSHAKE_TIMEOUT_S:g} s.") from None
    if response.status_code != 200 or response.text.strip() != token:
        raise BCError(400, "BadRequest",
                      f"The subscription was not created: the handshake with '{url}' failed "
                      f"(status {response.status_code}); the subscriber must answer 200 with "
                      "the validationToken query parameter as the response body.")


_HUBS: dict[tuple[str, str, str], WebhookHub] = {}
_HUBS_LOCK = threading.Lock()


def webhook_hub(info: Any) -> WebhookHub:
    """The hub of the sandbox ``info`` describes (shared by its companies)."""
    key = (str(info.base_url), str(info.tenant).lower(), str(info.environment))
    with _HUBS_LOCK:
        hub = _HUBS.get(key)
        if hub is None:
            hub = _HUBS[key] = WebhookHub()
        return hub


def subscription_request(service: Any, method: str, path: str, headers: Mapping[str, str],
                         body: bytes) -> Reply | None:
    """Answer ``{api root}subscriptions[('<id>')]`` for ``service`` (a
    ``BusinessCentralService``); None for any other path."""
    parts = [unquote(p) for p in path.strip("/").split("/")]
    if len(parts) < 5 or not parts[-1].startswith("subscriptions"):
        return None
    api, _root, rest = service._api_root(parts)
    match = SEGMENT.match(rest[0]) if len(rest) == 1 else None
    if match is None or match.group("name") != "subscriptions":
        return None
    payload = service._json_body(body) if method in ("POST", "PATCH") else {}
    key = match.group("key")

    def check_resource(api_name: str, company: str, entity_set: str) -> None:
        service._check_company(company)
        service._check_api(api_name, entity_set)
        if api_name == "v2.0" and entity_set not in WEBHOOK_ENTITIES:
            raise BCError(400, "BadRequest",
                          f"The entity '{entity_set}' does not support webhooks; the v2.0 "
                          f"entities that do: {', '.join(sorted(WEBHOOK_ENTITIES))}.")

    lowered = {k.lower(): v for k, v in headers.items()}
    return webhook_hub(service.ctx.info).handle(method, key, api, lowered, payload,
                                                check_resource)


def notify_write(service: Any, method: str, entity: Any, target: Any, reply: Reply) -> Reply:
    """After a committed write: tell the hub (a line's change notifies its document)."""
    if reply.status >= 300 or target.company is None:
        return reply
    kind = {"POST": "created", "PATCH": "updated", "DELETE": "deleted"}.get(method)
    record = target.key
    if method == "POST" and isinstance(reply.body, dict):
        record = reply.body.get("id")
    entity_set = entity.name
    if entity.parent and target.parent_set and target.parent_key:
        entity_set, record, kind = target.parent_set, target.parent_key, "updated"
    elif entity.parent and isinstance(reply.body, dict) and reply.body.get("documentId"):
        entity_set, record, kind = entity.parent, reply.body["documentId"], "updated"
    if kind is None or not record:
        return reply
    webhook_hub(service.ctx.info).changed(target.api, target.company, entity_set,
                                          str(record).lower(), kind)
    return reply
