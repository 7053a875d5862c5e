"""Business Central webhook subscriptions over the API (``{api root}subscriptions``).

Why a separate client: subscriptions sit beside ``companies`` (not inside one), are keyed by a
text ``subscriptionId``, and creating or renewing one makes Business Central call the
subscriber back (the ``validationToken`` handshake), so those requests are never re-sent
blindly: a lost reply is settled by listing the subscriptions. Protocol:
https://learn.microsoft.com/dynamics365/business-central/dev-itpro/api-reference/v2.0/dynamics-subscriptions
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from .business_central import BusinessCentral

__all__ = ["BCSubscriptions", "Subscription"]


@dataclass(frozen=True)
class Subscription:
    """One subscription as Business Central answered it (never holds the clientState)."""

    id: str
    resource: str
    notification_url: str
    expires: datetime
    etag: str
    wire: dict[str, Any]

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> Subscription:
        wire = {k: v for k, v in data.items() if k != "clientState"}
        expires = datetime.fromisoformat(str(data["expirationDateTime"]).replace("Z", "+00:00"))
        if expires.tzinfo is None:
            expires = expires.replace(tzinfo=UTC)
        return cls(str(data["subscriptionId"]), str(data["resource"]),
                   str(data["notificationUrl"]), expires,
                   str(data.get("@odata.etag") or "*"), wire)

    def seconds_left(self, now: datetime | None = None) -> float:
        return (self.expires - (now or datetime.now(UTC))).total_seconds()


class BCSubscriptions:
    """Create, list, renew and delete subscriptions through ``bc``'s HTTP client."""

    def __init__(self, bc: BusinessCentral) -> None:
        self.bc = bc

    def resource(self, entity_set: str) -> str:
        """``/api/v2.0/companies(<id>)/<entity set>`` for the API ``bc`` talks to."""
        path = urlsplit(self.bc.http.url("")).path
        api = path[path.index("/api/"):].rstrip("/") if "/api/" in path else "/api/v2.0"
        return f"{api}/companies({self.bc.company_id})/{entity_set}"

    def create(self, entity_set: str, notification_url: str, client_state: str) -> Subscription:
        body = {"notificationUrl": notification_url, "resource": self.resource(entity_set),
                "clientState": client_state}
        response = self.bc.http.request("POST", "subscriptions", json=body,
                                        entity="subscriptions", retry_unsafe=False)
        return Subscription.from_wire(response.json())

    def list(self) -> list[Subscription]:
        response = self.bc.http.request("GET", "subscriptions", entity="subscriptions")
        return [Subscription.from_wire(row) for row in response.json().get("value", [])]

    def renew(self, sub: Subscription, client_state: str) -> Subscription:
        """PATCH with If-Match: a new handshake and three more days."""
        response = self.bc.http.request(
            "PATCH", f"subscriptions('{sub.id}')", json={"clientState": client_state},
            headers={"If-Match": sub.etag}, entity="subscriptions", record_key=sub.id,
            retry_unsafe=False)
        return Subscription.from_wire(response.json())

    def delete(self, sub_id: str, etag: str = "*") -> bool:
        """Unsubscribe; False when it was already gone (expired, or deleted by BC)."""
        response = self.bc.http.request(
            "DELETE", f"subscriptions('{sub_id}')", headers={"If-Match": etag or "*"},
            entity="subscriptions", record_key=sub_id, ok=(404,))
        return response.status_code != 404
