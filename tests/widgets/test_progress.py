"""ProgressPanel: background work drives the bar; Cancel stops it between batches."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from nav_crm_ops.engine.progress import CancelToken, Progress, ProgressEvent, check_cancelled
from nav_crm_ops.engine.report import MappingResult, SyncReport
from nav_crm_ops.exceptions import SyncError
from nav_crm_ops.store.runs import RunOutcome
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
    # a finished mapping says so (it does not stay at its last stage)
    assert "<td>CUSTOMER</td><td>done</td>" in panel.table.value and "50 / 50" in \
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
    assert panel.bar.value == 10  # as far as it got, grey: never a full green bar
    assert panel.bar.bar_style == "" and panel.bar.style.bar_color == "#757575"
    assert "<td>CUSTOMER</td><td>cancelled</td>" in panel.table.value
    assert panel.cancel_button.disabled and panel.cancel_button.button_style == ""


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


def several_mappings(panel: ProgressPanel, report: SyncReport, seen: list[str],
                     cancel_after: str | None = None,
                     ) -> Callable[[Progress, CancelToken], SyncReport]:
    """Work over CURRENCY, CUSTOMER and CONTACT (in that order), ending with ``report`` and
    noting the panel's status after each mapping in ``seen``; with ``cancel_after``, Cancel is
    asked for after that mapping and the work stops there without raising, as a sync cancelled
    between mappings returns its report so far."""

    def work(progress: Progress, cancel: CancelToken) -> SyncReport:
        for mapping in ("CURRENCY", "CUSTOMER", "CONTACT"):
            progress(ProgressEvent(mapping, "read crm", 0, None, ""))
            progress(ProgressEvent(mapping, "plan", 0, 8, ""))
            seen.append(panel.status.value)
            if mapping == cancel_after:
                cancel.cancel()
                break
        return report

    return work


def test_a_run_of_several_mappings_says_where_it_is_and_how_it_ended() -> None:
    """"mapping 2 of 3"; each finished mapping is marked done (never left at "plan 0 / 8");
    failed records end amber as "succeeded with 2 failed records", not green "done"."""
    report = SyncReport((MappingResult("CURRENCY", "finished", {"inserted": 3}),
                         MappingResult("CUSTOMER", "failed", {"failed": 2, "inserted": 1}),
                         MappingResult("CONTACT", "finished")))
    panel = ProgressPanel(ErrorArea(), min_interval_s=0)
    seen: list[str] = []
    panel.start("run 3 mappings", several_mappings(panel, report, seen),
                mappings=["CURRENCY", "CUSTOMER", "CONTACT"])
    assert panel.wait() is report
    assert seen[1].startswith("run 3 mappings: mapping 2 of 3 — CUSTOMER plan 0 of 8")
    assert panel.table.value.count("<td>done</td>") == 3 and "0 / 8" not in panel.table.value
    assert panel.status.value == "run 3 mappings: succeeded with 2 failed records"
    assert panel.bar.bar_style == "warning"
    assert panel.bar.style.bar_color == RunOutcome.SUCCEEDED_WITH_FAILURES.colour


def test_a_run_stopped_by_cancel_between_mappings_says_cancelled() -> None:
    """Cancel between mappings: the work returns normally, and the panel still says
    "cancelled" (grey), not "done" with a green bar."""
    report = SyncReport((MappingResult("CURRENCY", "finished", {"inserted": 3}),))
    panel = ProgressPanel(ErrorArea(), min_interval_s=0)
    panel.start("run 3 mappings", several_mappings(panel, report, [], cancel_after="CURRENCY"),
                mappings=["CURRENCY", "CUSTOMER", "CONTACT"])
    panel.wait()
    assert panel.status.value == "run 3 mappings: cancelled"
    assert panel.bar.bar_style == "" and panel.bar.style.bar_color == RunOutcome.CANCELLED.colour
    assert "<td>CURRENCY</td><td>cancelled</td>" in panel.table.value


def test_reading_of_unknown_size_says_records_so_far() -> None:
    panel = ProgressPanel(ErrorArea(), min_interval_s=0)
    started, release = threading.Event(), threading.Event()

    def work(progress: Progress, cancel: CancelToken) -> None:
        progress(ProgressEvent("CUSTOMER", "read crm", 1200, None, ""))
        started.set()
        release.wait(5)

    panel.start("preview CUSTOMER", work)
    assert started.wait(5)
    assert panel.status.value == "preview CUSTOMER: CUSTOMER read crm: 1200 records so far"
    release.set()
    panel.wait()
