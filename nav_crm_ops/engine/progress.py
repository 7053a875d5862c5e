"""Progress reporting and cancellation for long engine work (reads, plans, applies).

Why a plain callback: the CLI shows tqdm bars, widgets show ipywidgets bars, papermill jobs print
lines; the engine only emits :class:`ProgressEvent` values and checks a :class:`CancelToken`
between pages and batches, so cancelling never leaves half a batch unrecorded.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from ..exceptions import SyncCancelled

__all__ = ["CancelToken", "Progress", "ProgressEvent", "check_cancelled", "emit"]


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
    """Set from any thread (a widget's Cancel button); the engine stops at the next batch."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()


def emit(progress: Progress | None, event: ProgressEvent) -> None:
    if progress is not None:
        progress(event)


def check_cancelled(cancel: CancelToken | None, where: str) -> None:
    """Raise :class:`SyncCancelled` when a cancel was requested (``where`` says what stopped)."""
    if cancel is not None and cancel.cancelled:
        raise SyncCancelled(f"cancelled during {where}; batches already written are recorded "
                            "in the job log, run the sync again to continue")
