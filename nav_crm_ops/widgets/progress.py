"""A progress bar with a Cancel button that runs long engine work in a background thread.

Why a thread: a preview or sync takes seconds to minutes; run in the kernel's main thread it
would freeze the notebook and the Cancel button could never be clicked. The work receives the
panel's :class:`~nav_crm_ops.engine.progress.CancelToken` and a progress callback; the engine
emits :class:`~nav_crm_ops.engine.progress.ProgressEvent` values that update the bar (throttled:
at most one redraw every ``min_interval_s``) and a small per-mapping table.

Statuses say what happened, in the same words and colours as the job log and the job reports
(:class:`~nav_crm_ops.store.runs.RunOutcome`): a sync with failed records ends amber as
"succeeded with N failed records", a cancelled one grey as "cancelled", a failed one red;
finished mappings are marked done, and a run over several mappings says which one of how many
it is at.

Failures are shown through the panel's :class:`~nav_crm_ops.widgets.errors.ErrorArea`; under
the test switch :meth:`ProgressPanel.wait` raises them again.
"""

from __future__ import annotations

import html
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import ipywidgets as widgets

from ..engine.progress import CancelToken, Progress, ProgressEvent
from ..exceptions import SyncCancelled, SyncError
from ..store.runs import RunOutcome
from .errors import ActionButton, ErrorArea, callbacks_raise, report_failure

__all__ = ["MappingProgress", "ProgressPanel", "Task"]

T = TypeVar("T")
DONE = "done"
_BAR_STYLES = {RunOutcome.SUCCEEDED: "success", RunOutcome.SUCCEEDED_WITH_FAILURES: "warning",
               RunOutcome.HELD_CONFLICTS: "warning", RunOutcome.FAILED: "danger",
               RunOutcome.TIMED_OUT: "danger", RunOutcome.CANCELLED: ""}
"""ipywidgets' bar style nearest to each outcome (the exact colour is ``RunOutcome.colour``)."""


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

    def __init__(self, action: str, work: Callable[[Progress, CancelToken], T],
                 expected: Sequence[str] = ()) -> None:
        self.action = action
        self.work = work
        self.expected = tuple(expected)
        """The mappings the work runs, in order, when known (for "mapping 2 of 5")."""
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
        self.cancel_button = ActionButton(description="Cancel", button_style="",
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
              on_done: Callable[[T], None] | None = None, *,
              mappings: Sequence[str] = ()) -> Task[T]:
        """Run ``work(progress, cancel)`` in a thread; ``on_done(result)`` after success.

        ``action`` completes "Could not ..." in error messages (e.g. "preview CUSTOMER");
        ``mappings`` (in run order), when given, lets the status say "mapping 2 of 5".
        """
        current = self._task
        if current is not None and not current.finished.is_set():
            raise SyncError(f"{current.action} is still running; wait for it to finish or click "
                            "Cancel, then try again")
        task: Task[T] = Task(action, work, mappings)
        self._task = task
        self.mappings = {}
        self.events = 0
        self.errors.clear()
        self.bar.value, self.bar.max, self.bar.bar_style = 0, 1, "info"
        self.bar.style.bar_color = None
        self.status.value = f"{action}: starting"
        self.table.value = ""
        self._cancel_enabled(True)
        task.thread = threading.Thread(target=self._run, args=(task, on_done), daemon=True,
                                       name=f"nav-crm-ops {action}")
        task.thread.start()
        return task

    def _run(self, task: Task[T], on_done: Callable[[T], None] | None) -> None:
        try:
            task.result = task.work(self._on_event, task.cancel)
            self._finish_rows(cancelled=task.cancel.cancelled)
            if on_done is not None:
                on_done(task.result)
            self._show_outcome(task, _outcome_of(task.result, task.cancel.cancelled))
        except SyncCancelled as cancelled:
            self._finish_rows(cancelled=True)
            self._show_outcome(task, RunOutcome.CANCELLED)
            self.errors.show_error(cancelled, task.action)
        except Exception as error:
            task.error = error
            self._show_outcome(task, RunOutcome.FAILED)
            report_failure(self.errors, error, task.action)
        finally:
            self._cancel_enabled(False)
            task.finished.set()

    def _show_outcome(self, task: Task[Any], outcome: RunOutcome) -> None:
        """Bar and status in the outcome's words and colour (a full bar once it succeeded)."""
        self.bar.bar_style = _BAR_STYLES.get(outcome, "")
        self.bar.style.bar_color = outcome.colour
        if outcome.completed:
            self.bar.value = self.bar.max
        label = _label_of(task.result, outcome)
        self.status.value = f"{task.action}: {'done' if outcome is RunOutcome.SUCCEEDED else label}"

    def _cancel_enabled(self, enabled: bool) -> None:
        """Cancel is amber while there is something to cancel, plain when there is not."""
        self.cancel_button.disabled = not enabled
        self.cancel_button.button_style = "warning" if enabled else ""

    def _finish_rows(self, *, cancelled: bool) -> None:
        """Every mapping the work reported on is done (the last one cancelled, if it was)."""
        with self._lock:
            rows = list(self.mappings.values())
            stopped = rows[-1] if cancelled and rows else None
            for row in rows:
                if row is stopped:
                    row.stage = "cancelled"  # as far as it got
                else:
                    row.stage, row.done = DONE, row.total if row.total else row.done
        self._draw(force=True)

    def cancel(self) -> None:
        """Ask the running work to stop at its next batch (finished batches are kept)."""
        if self._task is not None and not self._task.finished.is_set():
            self._task.cancel.cancel()
            self.status.value = f"{self._task.action}: cancelling after the current batch"
            self._cancel_enabled(False)

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
            if event.mapping not in self.mappings:
                for earlier in self.mappings.values():  # mappings run one after the other
                    if earlier.stage != DONE:
                        earlier.stage = DONE
                        earlier.done = earlier.total if earlier.total else earlier.done
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
        task = self._task
        if task is not None and task.finished.is_set():
            self.table.value = _table_html(rows)
            return
        action = task.action if task is not None else ""
        self.status.value = f"{action}: {_position(task, latest.mapping)}{_doing(latest)}"
        self.table.value = _table_html(rows)


def _position(task: Task[Any] | None, mapping: str) -> str:
    """``mapping 2 of 5 — `` when the task's mappings are known."""
    if task is None or mapping not in task.expected:
        return ""
    return f"mapping {task.expected.index(mapping) + 1} of {len(task.expected)} — "


def _doing(row: MappingProgress) -> str:
    """``CUSTOMER write crm 120 of 300``; a read of unknown size says how many so far."""
    if row.total is None and row.stage.startswith("read"):
        return f"{row.mapping} {row.stage}: {row.done} records so far"
    of = f" of {row.total}" if row.total is not None else ""
    return f"{row.mapping} {row.stage} {row.done}{of}"


def _table_html(rows: list[MappingProgress]) -> str:
    body = "".join(
        f"<tr><td>{html.escape(r.mapping)}</td><td>{html.escape(r.stage)}</td>"
        f"<td style='text-align:right'>{r.done}"
        f"{'' if r.total is None else ' / ' + str(r.total)}</td>"
        f"<td>{html.escape(r.message)}</td></tr>" for r in rows)
    return ("<table><thead><tr><th>mapping</th><th>stage</th><th>records</th>"
            f"<th>note</th></tr></thead><tbody>{body}</tbody></table>")


def _outcome_of(result: Any, cancelled: bool) -> RunOutcome:
    """What a finished task's result says (a sync report's outcome); cancelled when Cancel
    stopped it early; plain success for other results (a plan, a coupling)."""
    outcome = getattr(result, "outcome", None)
    if isinstance(outcome, RunOutcome) and outcome is not RunOutcome.SUCCEEDED:
        return outcome
    return RunOutcome.CANCELLED if cancelled else RunOutcome.SUCCEEDED


def _label_of(result: Any, outcome: RunOutcome) -> str:
    """The outcome in words, with counts from a sync report when there is one."""
    label = getattr(result, "outcome_label", None)
    if callable(label) and getattr(result, "outcome", None) is outcome:
        return str(label())
    return outcome.label()
