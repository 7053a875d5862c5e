"""A progress bar with a Cancel button that runs long engine work in a background thread.

Why a thread: a preview or sync takes seconds to minutes; run in the kernel's main thread it
would freeze the notebook and the Cancel button could never be clicked. The work receives the
panel's :class:`~nav_crm_ops.engine.progress.CancelToken` and a progress callback; the engine
emits :class:`~nav_crm_ops.engine.progress.ProgressEvent` values that update the bar (throttled:
at most one redraw every ``min_interval_s``) and a small per-mapping table.

Failures are shown through the panel's :class:`~nav_crm_ops.widgets.errors.ErrorArea`; under
the test switch :meth:`ProgressPanel.wait` raises them again.
"""

from __future__ import annotations

import html
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import ipywidgets as widgets

from ..engine.progress import CancelToken, Progress, ProgressEvent
from ..exceptions import SyncCancelled, SyncError
from .errors import ActionButton, ErrorArea, callbacks_raise, report_failure

__all__ = ["MappingProgress", "ProgressPanel", "Task"]

T = TypeVar("T")


@dataclass
class MappingProgress:
    """The latest event of one mapping, for the live table."""

    mapping: str
    stage: str
    done: int
    total: int | None
    message: str


class Task(Generic[T]):
    """One piece of background work: its thread, cancel token, result or error."""

    def __init__(self, action: str, work: Callable[[Progress, CancelToken], T]) -> None:
        self.action = action
        self.work = work
        self.cancel = CancelToken()
        self.result: T | None = None
        self.error: BaseException | None = None
        self.finished = threading.Event()
        self.thread: threading.Thread | None = None


class ProgressPanel:
    """Bar, status line, per-mapping table and Cancel button; one task at a time."""

    def __init__(self, errors: ErrorArea, *, min_interval_s: float = 0.1) -> None:
        self.errors = errors
        self.min_interval_s = min_interval_s
        self.bar = widgets.IntProgress(value=0, min=0, max=1, description="",
                                       layout=widgets.Layout(width="50%"))
        self.status = widgets.Label(value="")
        self.cancel_button = ActionButton(description="Cancel", button_style="warning",
                                          icon="stop", disabled=True)
        self.cancel_button.on_click(lambda _: self.cancel())
        self.table = widgets.HTML(value="")
        self.widget = widgets.VBox([widgets.HBox([self.bar, self.cancel_button, self.status]),
                                    self.table])
        self.mappings: dict[str, MappingProgress] = {}
        self.events = 0
        self._task: Task[Any] | None = None
        self._last_draw = 0.0
        self._lock = threading.Lock()

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.finished.is_set()

    def start(self, action: str, work: Callable[[Progress, CancelToken], T],
              on_done: Callable[[T], None] | None = None) -> Task[T]:
        """Run ``work(progress, cancel)`` in a thread; ``on_done(result)`` after success.

        ``action`` completes "Could not ..." in error messages (e.g. "preview CUSTOMER").
        """
        current = self._task
        if current is not None and not current.finished.is_set():
            raise SyncError(f"{current.action} is still running; wait for it to finish or click "
                            "Cancel, then try again")
        task: Task[T] = Task(action, work)
        self._task = task
        self.mappings = {}
        self.events = 0
        self.errors.clear()
        self.bar.value, self.bar.max, self.bar.bar_style = 0, 1, "info"
        self.status.value = f"{action}: starting"
        self.table.value = ""
        self.cancel_button.disabled = False
        task.thread = threading.Thread(target=self._run, args=(task, on_done), daemon=True,
                                       name=f"nav-crm-ops {action}")
        task.thread.start()
        return task

    def _run(self, task: Task[T], on_done: Callable[[T], None] | None) -> None:
        try:
            task.result = task.work(self._on_event, task.cancel)
            self._draw(force=True)
            if on_done is not None:
                on_done(task.result)
            self.bar.bar_style = "success"
            self.bar.value = self.bar.max
            self.status.value = f"{task.action}: done"
        except SyncCancelled as cancelled:
            self.bar.bar_style = "warning"
            self.status.value = f"{task.action}: cancelled"
            self.errors.show_error(cancelled, task.action)
        except Exception as error:
            task.error = error
            self.bar.bar_style = "danger"
            self.status.value = f"{task.action}: failed"
            report_failure(self.errors, error, task.action)
        finally:
            self.cancel_button.disabled = True
            task.finished.set()

    def cancel(self) -> None:
        """Ask the running work to stop at its next batch (finished batches are kept)."""
        if self._task is not None and not self._task.finished.is_set():
            self._task.cancel.cancel()
            self.status.value = f"{self._task.action}: cancelling after the current batch"
            self.cancel_button.disabled = True

    def wait(self, timeout: float | None = 120.0) -> Any:
        """Block until the task ends; return its result. Under the test switch a failure is
        raised again here (the thread itself cannot raise into the caller)."""
        task = self._task
        if task is None:
            return None
        if not task.finished.wait(timeout):
            raise TimeoutError(f"{task.action} still running after {timeout} s")
        if task.error is not None and callbacks_raise():
            raise task.error
        return task.result

    def _on_event(self, event: ProgressEvent) -> None:
        with self._lock:
            self.events += 1
            self.mappings[event.mapping] = MappingProgress(event.mapping, event.stage, event.done,
                                                           event.total, event.message)
        self._draw()

    def _draw(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_draw < self.min_interval_s:
            return
        self._last_draw = now
        with self._lock:
            rows = list(self.mappings.values())
        if not rows:
            return
        latest = rows[-1]
        total = latest.total if latest.total else max(latest.done, 1)
        self.bar.max = max(total, 1)
        self.bar.value = min(latest.done, self.bar.max)
        of = f" of {latest.total}" if latest.total is not None else ""
        task = self._task
        action = task.action if task is not None else ""
        self.status.value = f"{action}: {latest.mapping} {latest.stage} {latest.done}{of}"
        body = "".join(
            f"<tr><td>{html.escape(r.mapping)}</td><td>{html.escape(r.stage)}</td>"
            f"<td style='text-align:right'>{r.done}"
            f"{'' if r.total is None else ' / ' + str(r.total)}</td>"
            f"<td>{html.escape(r.message)}</td></tr>" for r in rows)
        self.table.value = ("<table><thead><tr><th>mapping</th><th>stage</th><th>records</th>"
                            f"<th>note</th></tr></thead><tbody>{body}</tbody></table>")
