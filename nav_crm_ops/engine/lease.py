"""The lease a mapping is previewed and applied under, so two callers never sync it at once."""

from __future__ import annotations

import time

from ..exceptions import LeaseHeldError
from ..store import StateStore, default_holder
from .progress import Progress, ProgressEvent

__all__ = ["LEASE_TTL_S", "MappingLease", "mapping_lease"]

LEASE_TTL_S = 15 * 60.0


class MappingLease:
    """Holds a mapping's lease in the state store while it is previewed and applied, renewed
    as progress is reported so a long apply keeps it and a dead process loses it."""

    def __init__(self, store: StateStore, name: str, holder: str) -> None:
        self.store = store
        self.name = name
        self.holder = holder
        self.renewed = time.monotonic()

    def keep(self, progress: Progress | None) -> Progress:
        """``progress`` wrapped so that every event renews the lease when a third of its
        lifetime has passed."""
        def report(event: ProgressEvent) -> None:
            if time.monotonic() - self.renewed > LEASE_TTL_S / 3:
                self.store.renew_lease(self.name, self.holder, LEASE_TTL_S)
                self.renewed = time.monotonic()
            if progress is not None:
                progress(event)
        return report

    def __enter__(self) -> MappingLease:
        try:
            self.store.acquire_lease(self.name, self.holder, LEASE_TTL_S)
            self.renewed = time.monotonic()
        except LeaseHeldError as error:
            raise LeaseHeldError(
                f"{self.name.removeprefix('mapping:')} is being synchronized by "
                f"{error.holder} (lease until {error.expires_at}); wait for it to finish",
                holder=error.holder, expires_at=error.expires_at) from None
        return self

    def __exit__(self, *_: object) -> None:
        self.store.release_lease(self.name, self.holder)


def mapping_lease(store: StateStore, mapping: str) -> MappingLease:
    """The lease of ``mapping``, held by this caller (its own token: two threads of one
    process are two holders)."""
    return MappingLease(store, f"mapping:{mapping.upper()}", default_holder(f"sync {mapping}"))
