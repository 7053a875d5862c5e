"""Progress reporting and cancellation for long engine work (reads, plans, applies).

Why a plain callback: the CLI shows tqdm bars, widgets show ipywidgets bars, papermill jobs print
lines; the engine only emits :class:`ProgressEvent` values and checks a :class:`CancelToken`
between pages and batches, so cancelling never leaves half a batch unrecorded.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from ..exceptions import SyncCancelled

__all__ = ["CancelToken", "Progress", "ProgressEvent", "check_cancelled", "emit", "guarded"]


@dataclass(frozen=True)
class ProgressEvent:
    """``stage`` is e.g. ``read nav``, ``read crm``, ``plan``, ``write crm``, ``write nav``;
    ``done`` / ``total`` count records (``total`` None when unknown); ``failed`` and
    ``requests`` are the running totals of the stage's mapping run."""

    mapping: str
    stage: str
    done: int
    total: int | None = None
    message: str = ""
    failed: int = 0
    requests: int = 0


Progress = Callable[[ProgressEvent], None]


class CancelToken:
    """Set from any thread (a widget's Cancel button, a lease's heartbeat that lost the
    lease); the engine stops at the next batch. ``reason`` says why when it was not a
    person."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.reason = ""

    def cancel(self, reason: str = "") -> None:
        if reason and not self.reason:
            self.reason = reason
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()


def emit(progress: Progress | None, event: ProgressEvent) -> None:
    if progress is not None:
        progress(event)


_GUARDS: ContextVar[tuple[CancelToken, ...]] = ContextVar("nav_crm_ops_cancel_guards",
                                                          default=())
"""Tokens :func:`check_cancelled` also obeys in this thread (see :func:`guarded`)."""


@contextmanager
def guarded(token: CancelToken) -> Iterator[CancelToken]:
    """While inside, every :func:`check_cancelled` of this thread also stops when ``token``
    is cancelled. Why: a mapping lease's heartbeat (a background thread) that loses the lease
    must stop the work at its next safe point, whatever token (or none) the caller passed."""
    reset = _GUARDS.set((*_GUARDS.get(), token))
    try:
        yield token
    finally:
        _GUARDS.reset(reset)


def check_cancelled(cancel: CancelToken | None, where: str) -> None:
    """Raise :class:`SyncCancelled` when a cancel was requested, on ``cancel`` or on a token
    this thread is :func:`guarded` by (``where`` says what stopped)."""
    for token in (cancel, *_GUARDS.get()):
        if token is not None and token.cancelled:
            why = f"{token.reason}; stopped" if token.reason else "cancelled"
            raise SyncCancelled(f"{why} during {where}; batches already written are recorded "
                                "in the job log, run the sync again to continue")
