"""ProgressPanel: background work drives the bar; Cancel stops it between batches."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from nav_crm_ops.engine.progress import CancelToken, Progress, ProgressEvent, check_cancelled
from nav_crm_ops.exceptions import SyncError
from nav_crm_ops.widgets.errors import ErrorArea
from nav_crm_ops.widgets.progress import ProgressPanel


def batches(count: int, started: threading.Event | None = None,
            release: threading.Event | None = None) -> Callable[[Progress, CancelToken], int]:
    """Work that writes ``count`` batches, checking for Cancel between them as the engine does."""

    def work(progress: Progress, cancel: CancelToken) -> int:
        done = 0
        for batch in range(count):
            check_cancelled(cancel, f"batch {batch}")
            done += 10
            progress(ProgressEvent("CUSTOMER", "write crm", done, count * 10, f"{batch} failed"))
            if started is not None and release is not None and batch == 0:
                started.set()
                release.wait(5)
        return done

    return work


def test_events_update_bar_status_and_table() -> None:
    panel = ProgressPanel(ErrorArea(), min_interval_s=0)
    results: list[int] = []
    panel.start("sync CUSTOMER", batches(5), results.append)
    assert panel.wait() == 50
    assert results == [50]
    assert (panel.bar.value, panel.bar.max, panel.bar.bar_style) == (50, 50, "success")
    assert panel.status.value == "sync CUSTOMER: done"
    assert "<td>CUSTOMER</td><td>write crm</td>" in panel.table.value and "50 / 50" in \
        panel.table.value and "4 failed" in panel.table.value
    assert panel.cancel_button.disabled and not panel.running


def test_cancel_stops_after_the_current_batch() -> None:
    started, release = threading.Event(), threading.Event()
    errors = ErrorArea()
    panel = ProgressPanel(errors, min_interval_s=0)
    panel.start("sync CUSTOMER", batches(100, started, release))
    assert started.wait(5)
    assert not panel.cancel_button.disabled
    panel.cancel_button.click()
    release.set()
    assert panel.wait() is None
    assert panel.status.value == "sync CUSTOMER: cancelled"
    assert errors.kind == "cancelled" and "batch 1" in errors.message
    assert panel.bar.value == 10


def test_failure_is_shown_and_raised_by_wait() -> None:
    errors = ErrorArea()
    panel = ProgressPanel(errors)

    def fail(_progress: Progress, _cancel: CancelToken) -> None:
        raise SyncError("mapping CONTACT depends on CUSTOMER, which is not in this run")

    panel.start("sync CONTACT", fail)
    with pytest.raises(SyncError):
        panel.wait()
    assert errors.message == ("Could not sync CONTACT: mapping CONTACT depends on CUSTOMER, "
                              "which is not in this run")
    assert panel.bar.bar_style == "danger"


def test_one_task_at_a_time() -> None:
    started, release = threading.Event(), threading.Event()
    panel = ProgressPanel(ErrorArea())
    panel.start("first", batches(2, started, release))
    assert started.wait(5)
    with pytest.raises(SyncError, match="first is still running"):
        panel.start("second", batches(1))
    release.set()
    panel.wait()
