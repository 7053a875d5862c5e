"""The lease a mapping is previewed and applied under, so two callers never sync it at once.

Why a heartbeat (:class:`~nav_crm_ops.store.heartbeat.LeaseHeartbeat`) rather than renewing
on progress events: a long read reports nothing for minutes, and a lease that expires
meanwhile lets a second caller sync the same mapping. A lease lost anyway (the database
unreachable for its whole lifetime, the process paused) stops the work at the next safe point
— between pages and batches, so nothing is half-written — and raises :class:`LeaseLostError`.
"""

from __future__ import annotations

import os
from contextlib import ExitStack

from ..exceptions import ConfigError, LeaseHeldError, LeaseLostError, SyncCancelled
from ..store import StateStore, default_holder
from ..store.heartbeat import LeaseHeartbeat
from .progress import CancelToken, Progress, ProgressEvent, guarded

__all__ = ["LEASE_TTL_ENV", "LEASE_TTL_S", "MappingLease", "lease_ttl_s", "mapping_lease"]

LEASE_TTL_S = 15 * 60.0
"""How long a mapping lease lives without a heartbeat (a dead holder's lease frees after)."""
LEASE_TTL_ENV = "NAV_CRM_OPS_MAPPING_LEASE_TTL_S"
"""Overrides :data:`LEASE_TTL_S` (seconds): tests use short leases; so may a deployment that
wants a crashed runner's mappings free sooner."""


def lease_ttl_s() -> float:
    """The mapping lease's lifetime: ``$NAV_CRM_OPS_MAPPING_LEASE_TTL_S`` or 15 minutes."""
    text = os.environ.get(LEASE_TTL_ENV, "").strip()
    if not text:
        return LEASE_TTL_S
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise ConfigError(f"{LEASE_TTL_ENV}={text!r} must be a positive number of seconds "
                          "(unset it for the default of 900)")
    return value


class MappingLease:
    """Holds a mapping's lease in the state store while it is previewed and applied; a
    heartbeat renews it every third of its lifetime, and a lost lease cancels the work at its
    next safe point (:func:`~nav_crm_ops.engine.progress.guarded`), then raises
    :class:`LeaseLostError` when the ``with`` block ends."""

    def __init__(self, store: StateStore, name: str, holder: str,
                 ttl_s: float | None = None) -> None:
        self.store = store
        self.name = name
        self.holder = holder
        self.ttl_s = lease_ttl_s() if ttl_s is None else ttl_s
        self.token = CancelToken()
        self.heartbeat = LeaseHeartbeat(
            lambda: self.store.renew_lease(self.name, self.holder, self.ttl_s), name,
            self.ttl_s, token=self.token)
        self._stack = ExitStack()

    def keep(self, progress: Progress | None) -> Progress:
        """``progress`` as a callback that is never None: the heartbeat, not the events,
        keeps the lease (kept for callers that wrap their progress callback)."""
        def report(event: ProgressEvent) -> None:
            if progress is not None:
                progress(event)
        return report

    @property
    def lost(self) -> str:
        """Why the lease was lost ("" while held)."""
        return self.heartbeat.lost

    def __enter__(self) -> MappingLease:
        try:
            self.store.acquire_lease(self.name, self.holder, self.ttl_s)
        except LeaseHeldError as error:
            raise LeaseHeldError(
                f"{self.name.removeprefix('mapping:')} is being synchronized by "
                f"{error.holder} (lease until {error.expires_at}); wait for it to finish",
                holder=error.holder, expires_at=error.expires_at) from None
        self._stack.enter_context(guarded(self.token))
        self._stack.enter_context(self.heartbeat)
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 *_: object) -> None:
        self._stack.close()
        if not self.lost:
            self.store.release_lease(self.name, self.holder)
            return
        if kind is None or issubclass(kind, SyncCancelled):
            current = self.store.lease(self.name)
            raise LeaseLostError(
                f"{self.name.removeprefix('mapping:')}: the lease was lost mid-run "
                f"({self.lost}); the run stopped at a safe point (batches written are "
                "recorded in the job log) and counts as failed; run it again",
                holder=current.holder if current else "",
                expires_at=current.expires_at if current else "") from error


def mapping_lease(store: StateStore, mapping: str, ttl_s: float | None = None) -> MappingLease:
    """The lease of ``mapping``, held by this caller (its own token: two threads of one
    process are two holders)."""
    return MappingLease(store, f"mapping:{mapping.upper()}", default_holder(f"sync {mapping}"),
                        ttl_s)
