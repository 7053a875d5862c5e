"""Failures shown in plain words inside a widget, never lost in ipywidgets' callback handling.

Why: ipywidgets catches every exception a button or observer callback raises and only logs it,
so a person sees nothing happen and a test that clicks a failing button passes. Every panel
callback here is wrapped by :func:`guarded`: the failure is written into the panel's
:class:`ErrorArea` in plain words (what could not be done, the engine's message which already
says what to fix), the traceback goes to the ``nav_crm_ops.widgets`` logger, and - when the
test switch is on - the exception is raised again so pytest sees it::

    with raise_callback_errors():
        panel.save_button.click()        # raises what the callback raised

:class:`ActionButton` is a ``Button`` whose ``click()`` lets that exception through (plain
ipywidgets buttons swallow it even when re-raised). The switch is process wide (callbacks also
run in worker threads); ``NAV_CRM_OPS_WIDGETS_RAISE=1`` in the environment turns it on.
"""

from __future__ import annotations

import functools
import html
import logging
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, ParamSpec, TypeVar

import ipywidgets as widgets

from ..exceptions import NavCrmOpsError, SyncCancelled

__all__ = [
    "ActionButton",
    "ErrorArea",
    "callbacks_raise",
    "guarded",
    "plain_message",
    "raise_callback_errors",
    "report_failure",
    "set_callbacks_raise",
]

RAISE_ENV = "NAV_CRM_OPS_WIDGETS_RAISE"
log = logging.getLogger("nav_crm_ops.widgets")

P = ParamSpec("P")
R = TypeVar("R")

_switch_lock = threading.Lock()
_overrides: list[bool] = []
_default = False


def callbacks_raise() -> bool:
    """True when widget callbacks re-raise their exceptions (tests), False for people."""
    if _overrides:
        return _overrides[-1]
    return _default or os.environ.get(RAISE_ENV, "") in ("1", "true")


def set_callbacks_raise(enabled: bool) -> None:
    """Set the process-wide default (a :func:`raise_callback_errors` block overrides it)."""
    global _default
    _default = enabled


@contextmanager
def raise_callback_errors(enabled: bool = True) -> Iterator[None]:
    """Within the block, callbacks show their failure AND raise it (``enabled=False``: show
    only, as for people)."""
    with _switch_lock:
        _overrides.append(enabled)
    try:
        yield
    finally:
        with _switch_lock:
            _overrides.pop()


def plain_message(error: BaseException, action: str) -> str:
    """One sentence a person can act on: what could not be done and why.

    The package's own errors already say what to fix; anything else is a bug, said so.
    """
    if isinstance(error, SyncCancelled):
        return f"Cancelled {action}: {error}"
    if isinstance(error, NavCrmOpsError):
        return f"Could not {action}: {error}"
    detail = str(error) or "no details"
    return (f"Could not {action}: unexpected {type(error).__name__} ({detail}). This is a bug "
            "in nav-crm-ops, not in your data; the traceback is in the nav_crm_ops.widgets log.")


class ErrorArea:
    """Where a panel tells people what went wrong (or that a step finished)."""

    def __init__(self) -> None:
        self.widget = widgets.HTML(value="")
        self.message = ""
        self.kind = ""

    def show_error(self, error: BaseException, action: str) -> None:
        self._show(plain_message(error, action),
                   "cancelled" if isinstance(error, SyncCancelled) else "error")

    def show_info(self, text: str) -> None:
        """A step finished as asked (green)."""
        self._show(text, "info")

    def show_warning(self, text: str) -> None:
        """Something a person must look at before going on (amber, never green)."""
        self._show(text, "warning")

    def clear(self) -> None:
        self.message = ""
        self.kind = ""
        self.widget.value = ""

    def _show(self, text: str, kind: str) -> None:
        colours = {"error": ("#fdecea", "#b71c1c"), "cancelled": ("#fff8e1", "#8d6e00"),
                   "warning": ("#fff8e1", "#8d6e00"), "info": ("#e8f5e9", "#1b5e20")}
        background, colour = colours[kind]
        self.message = text
        self.kind = kind
        self.widget.value = (
            f'<div class="nav-crm-ops-{kind}" style="background:{background};color:{colour};'
            f'padding:6px 10px;border-radius:4px;white-space:pre-wrap">{html.escape(text)}</div>')


def report_failure(area: ErrorArea, error: BaseException, action: str) -> None:
    """Show ``error`` in ``area`` and log its traceback (cancellations are not failures)."""
    area.show_error(error, action)
    if not isinstance(error, NavCrmOpsError):
        log.error("widget action %r failed", action, exc_info=error)
    else:
        log.info("widget action %r failed: %s", action, error)


def guarded(area: ErrorArea, action: str) -> Callable[[Callable[P, R]], Callable[P, R | None]]:
    """Wrap a callback: failures appear in ``area``; re-raised under the test switch."""

    def wrap(callback: Callable[P, R]) -> Callable[P, R | None]:
        @functools.wraps(callback)
        def run(*args: P.args, **kwargs: P.kwargs) -> R | None:
            try:
                return callback(*args, **kwargs)
            except SyncCancelled as cancelled:
                area.show_error(cancelled, action)
                return None
            except Exception as error:
                report_failure(area, error, action)
                if callbacks_raise():
                    raise
                return None

        return run

    return wrap


class ActionButton(widgets.Button):
    """A Button whose ``click()`` lets callback exceptions through under the test switch;
    as wide as its label (ipywidgets' fixed width cuts "Create and couple unmatched")."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("layout", widgets.Layout(width="auto", min_width="8em"))
        super().__init__(**kwargs)

    def click(self) -> None:
        if not callbacks_raise():
            super().click()
            return
        handlers: list[Callable[[Any], Any]] = list(self._click_handlers.callbacks)
        for handler in handlers:
            handler(self)
