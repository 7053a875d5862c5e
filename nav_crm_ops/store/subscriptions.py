"""Wake-ups (issue #20, item 5): webhook subscriptions, woken jobs, Dataverse delta links.

Why in the state database: ``nav-crm-ops listen`` and ``jobs run --loop`` are separate
processes (possibly on separate machines sharing a PostgreSQL state database); a notification
the listener receives must reach the runner, and a restarted listener must find (and delete)
the subscriptions it made before. A wake mark carries no data from the services, only "this
job's tables changed": the run reads the services as any run does.

The clientState of a subscription is a shared secret between Business Central and the
listener: only its SHA-256 is stored (:func:`state_hash`), compared in constant time, never
logged.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from typing import Any

from sqlalchemy import delete, insert, select, update

from .base import Repository
from .schema import change_links, job_wakes, utc_now, webhook_subscriptions

__all__ = ["SubscriptionRepository", "state_hash", "subscriptions_of"]


def state_hash(client_state: str) -> str:
    """The stored form of a clientState (SHA-256, hex)."""
    return hashlib.sha256(client_state.encode("utf-8")).hexdigest()


def subscriptions_of(store: Any) -> SubscriptionRepository:
    """The wake-up tables of an open :class:`~nav_crm_ops.store.StateStore`."""
    return SubscriptionRepository(store.transaction, store.company)


class SubscriptionRepository(Repository):
    """``webhook_subscriptions``, ``job_wakes`` and ``change_links``."""

    # -- subscriptions ---------------------------------------------------------------------------
    def save(self, sub: dict[str, Any], client_state: str) -> None:
        """Record (or replace) a subscription BC answered with (its wire form)."""
        values = {"company": self.company, "id": str(sub["subscriptionId"]),
                  "resource": str(sub["resource"]),
                  "notification_url": str(sub["notificationUrl"]),
                  "client_state_hash": state_hash(client_state),
                  "etag": str(sub.get("@odata.etag") or ""),
                  "expires_at": str(sub["expirationDateTime"]), "created_at": utc_now()}
        t = webhook_subscriptions
        with self._tx() as conn:
            conn.execute(delete(t).where(self.scoped(t), t.c.id == values["id"]))
            conn.execute(insert(t).values(**values))

    def renewed(self, sub: dict[str, Any]) -> None:
        t = webhook_subscriptions
        with self._tx() as conn:
            conn.execute(update(t).where(self.scoped(t), t.c.id == str(sub["subscriptionId"]))
                         .values(etag=str(sub.get("@odata.etag") or ""),
                                 expires_at=str(sub["expirationDateTime"]),
                                 renewed_at=utc_now()))

    def remove(self, sub_id: str) -> None:
        t = webhook_subscriptions
        with self._tx() as conn:
            conn.execute(delete(t).where(self.scoped(t), t.c.id == sub_id))

    def listed(self) -> list[dict[str, Any]]:
        """Every stored subscription (hash included, never the clientState itself)."""
        t = webhook_subscriptions
        with self._tx(write=False) as conn:
            rows = conn.execute(select(t).where(self.scoped(t)).order_by(t.c.id)).all()
        return [dict(row._mapping) for row in rows]

    def verify(self, sub_id: str, client_state: str) -> dict[str, Any] | None:
        """The subscription ``sub_id`` when ``client_state`` is its secret, else None."""
        given = state_hash(client_state or "")
        for row in self.listed():
            if row["id"] == sub_id and hmac.compare_digest(row["client_state_hash"], given):
                return row
        return None

    # -- wakes -------------------------------------------------------------------------------------
    def wake(self, jobs: Iterable[str], reason: str) -> list[str]:
        """Mark ``jobs`` woken (an existing mark keeps its first time); returns them."""
        names = sorted(set(jobs))
        t = job_wakes
        with self._tx() as conn:
            present = set(conn.execute(select(t.c.job).where(
                self.scoped(t), t.c.job.in_(names))).scalars())
            for name in names:
                if name not in present:
                    conn.execute(insert(t).values(company=self.company, job=name,
                                                  woken_at=utc_now(), reason=reason[:500]))
        return names

    def woken(self) -> dict[str, str]:
        """Woken jobs → why."""
        t = job_wakes
        with self._tx(write=False) as conn:
            rows = conn.execute(select(t.c.job, t.c.reason).where(self.scoped(t))).all()
        return {row.job: row.reason for row in rows}

    def clear(self, job: str) -> None:
        t = job_wakes
        with self._tx() as conn:
            conn.execute(delete(t).where(self.scoped(t), t.c.job == job))

    # -- Dataverse delta links ---------------------------------------------------------------------
    def delta_link(self, entity_set: str) -> str | None:
        t = change_links
        with self._tx(write=False) as conn:
            return conn.execute(select(t.c.delta_link).where(
                self.scoped(t), t.c.entity_set == entity_set)).scalar()

    def set_delta_link(self, entity_set: str, link: str) -> None:
        t = change_links
        with self._tx() as conn:
            conn.execute(delete(t).where(self.scoped(t), t.c.entity_set == entity_set))
            conn.execute(insert(t).values(company=self.company, entity_set=entity_set,
                                          delta_link=link, updated_at=utc_now()))
