"""Python's garbage collector during bulk work (a preview or an apply).

A sync makes and drops millions of small objects (a dict per record and per value) that never
form reference cycles: reference counting frees each one at once. CPython's cyclic collector
still runs after every 700 net allocations, and every few of those passes it walks *every*
object the process holds — the imports, the plan, the chunk in hand. Measured on the
100,000-customer first sync (scenario 2's data; main-thread CPU): 20 full passes and 3,300
young ones cost 1.6 s of the client's 12.4 s, about 16 µs per record.

While bulk work runs, :func:`bulk_work` freezes the objects that already exist (``gc.freeze``:
left out of every pass until the work ends) and raises the young generation's threshold to
:data:`YOUNG_THRESHOLD`; the last bulk work to end restores both. Nothing is kept longer than
before except reference cycles made during the work, which wait for at most
:data:`YOUNG_THRESHOLD` allocations. Nested and concurrent bulk work (a dashboard previewing
while a job applies) share one setting: the process's collector is one.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["YOUNG_THRESHOLD", "bulk_work"]

YOUNG_THRESHOLD = 50_000
"""Net allocations between young collections during bulk work (CPython's default is 700)."""

class _Setting:
    """The process's one collector setting while bulk work runs: how many run, what to restore."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.depth = 0
        self.saved: tuple[int, int, int] = gc.get_threshold()


_SETTING = _Setting()


@contextmanager
def bulk_work() -> Iterator[None]:
    """Fewer and smaller collector passes while the ``with`` block runs (module docstring)."""
    with _SETTING.lock:
        if _SETTING.depth == 0:
            _SETTING.saved = gc.get_threshold()
            gc.freeze()
            gc.set_threshold(max(_SETTING.saved[0], YOUNG_THRESHOLD), *_SETTING.saved[1:])
        _SETTING.depth += 1
    try:
        yield
    finally:
        with _SETTING.lock:
            _SETTING.depth -= 1
            if _SETTING.depth == 0:
                gc.set_threshold(*_SETTING.saved)
                gc.unfreeze()
