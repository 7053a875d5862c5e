"""The garbage collector's setting during bulk work (``engine.collector``): raised and frozen
while a preview or an apply runs, restored exactly when the last one ends — also when it
fails, and when two threads overlap."""

from __future__ import annotations

import gc
import threading
from pathlib import Path

import pytest

from nav_crm_ops.engine.collector import YOUNG_THRESHOLD, bulk_work
from nav_crm_ops.engine.progress import ProgressEvent
from nav_crm_ops.engine.workspace import open_workspace


@pytest.fixture(autouse=True)
def _usual_threshold() -> object:
    saved = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    yield
    gc.set_threshold(*saved)


def test_bulk_work_raises_and_freezes_then_restores_even_after_an_error() -> None:
    assert gc.get_freeze_count() == 0
    with pytest.raises(RuntimeError, match="boom"), bulk_work():
        assert gc.get_threshold() == (YOUNG_THRESHOLD, 10, 10)
        assert gc.get_freeze_count() > 0
        raise RuntimeError("boom")
    assert gc.get_threshold() == (700, 10, 10)
    assert gc.get_freeze_count() == 0


def test_nested_bulk_work_restores_only_when_the_outermost_ends() -> None:
    with bulk_work():
        with bulk_work():
            pass
        assert gc.get_threshold()[0] == YOUNG_THRESHOLD
        assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == (700, 10, 10)


def test_overlapping_threads_share_one_setting() -> None:
    """Thread A starts, B starts, A ends while B runs: B still runs with the raised setting;
    when B ends the user's own threshold (here 900) comes back, not the raised one."""
    gc.set_threshold(900, 10, 10)
    a_in, b_in, a_out = threading.Event(), threading.Event(), threading.Event()
    seen: dict[str, tuple[int, int, int]] = {}

    def a() -> None:
        with bulk_work():
            a_in.set()
            b_in.wait(5)
        a_out.set()

    def b() -> None:
        a_in.wait(5)
        with bulk_work():
            b_in.set()
            a_out.wait(5)
            seen["b after a"] = gc.get_threshold()

    threads = [threading.Thread(target=a), threading.Thread(target=b)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert seen["b after a"] == (YOUNG_THRESHOLD, 10, 10)
    assert gc.get_threshold() == (900, 10, 10)
    assert gc.get_freeze_count() == 0


def test_a_sync_runs_raised_and_leaves_the_setting_as_it_was(workspace_dir: Path) -> None:
    """Over the sandbox: every progress event of CURRENCY's preview (reads, plan) and apply
    (writes) sees the raised threshold and frozen objects; after the sync the process's
    collector is as before."""
    during: list[tuple[str, int, int]] = []

    def watch(event: ProgressEvent) -> None:
        during.append((event.stage, gc.get_threshold()[0], gc.get_freeze_count()))

    with open_workspace(workspace_dir) as ws:
        report = ws.sync("CURRENCY", progress=watch)
    assert report.results[0].status == "finished"
    stages = {stage for stage, _, _ in during}
    assert {"read nav", "plan", "write crm"} <= stages, stages
    assert all(threshold == YOUNG_THRESHOLD and frozen > 0 for _, threshold, frozen in during
               ), during
    assert gc.get_threshold() == (700, 10, 10)
    assert gc.get_freeze_count() == 0

