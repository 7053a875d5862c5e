"""A heartbeat that keeps a lease while its holder works, independent of what the work does.

Why a thread of its own: a lease renewed only when the work reports progress is lost by work
that reports nothing for a while (a long read); a renewer that gives up after one failed
renewal loses the lease to a database that was unreachable for a second. The heartbeat renews
every third of the lease's lifetime, retries a failed renewal until the lease would expire,
and when the lease is lost (refused: another holder took it, or it expired) says so once —
``lost`` is set and the ``token`` is cancelled, so the engine stops at its next safe point
(:func:`nav_crm_ops.engine.progress.check_cancelled`). Expiry is judged by the database's
clock (the renewal's ``UPDATE`` compares with it); the local deadline used to stop retrying is
measured from before each successful renewal, so it is never later than the real one.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Protocol

from ..exceptions import LeaseError, NavCrmOpsError

__all__ = ["RETRY_S", "LeaseHeartbeat"]

RETRY_S = 1.0
"""Longest wait between two tries of a renewal that failed for a reason other than a refusal
(the database briefly unreachable); shorter when the lease is about to expire."""


class _Token(Protocol):
    """What the heartbeat cancels: anything with ``cancel(reason)`` (a CancelToken)."""

    def cancel(self, reason: str = "") -> None: ...


class LeaseHeartbeat:
    """Renews the lease ``name`` (``renew()`` extends it by ``ttl_s`` or raises) every
    ``ttl_s / 3`` seconds from :meth:`start` until :meth:`stop`; ``lost`` is the reason once
    the lease is lost ("" while held)."""

    def __init__(self, renew: Callable[[], object], name: str, ttl_s: float, *,
                 token: _Token | None = None) -> None:
        self.renew, self.name, self.ttl_s, self.token = renew, name, ttl_s, token
        self.lost = ""
        self.renewals = 0
        self.failures = 0
        """Renewals that failed and were retried (the database unreachable)."""
        self._deadline = time.monotonic() + ttl_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"heartbeat {name}",
                                        daemon=True)

    def start(self) -> LeaseHeartbeat:
        """Start beating; the lease was just taken (its lifetime counts from now)."""
        self._deadline = time.monotonic() + self.ttl_s
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join()

    def __enter__(self) -> LeaseHeartbeat:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def _beat(self) -> None:
        wait = self.ttl_s / 3
        while not self._stop.wait(wait):
            before = time.monotonic()
            try:
                self.renew()
            except LeaseError as refused:
                self._lose(str(refused))
                return
            except NavCrmOpsError as failed:
                self.failures += 1
                remaining = self._deadline - time.monotonic()
                if remaining <= 0:
                    self._lose(f"lease {self.name!r} could not be renewed before it expired "
                               f"({failed})")
                    return
                wait = min(RETRY_S, max(remaining / 2, 0.01))
                continue
            self.renewals += 1
            self._deadline = before + self.ttl_s
            wait = self.ttl_s / 3

    def _lose(self, why: str) -> None:
        self.lost = why
        if self.token is not None:
            self.token.cancel(f"the lease was lost ({why})")
