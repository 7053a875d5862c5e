"""Progress of ``sync`` and ``preview`` on the command line: bars for a person, lines for a file.

Why two reporters: tqdm redraws its bars with carriage returns and escape codes, which a log
file or a pipe keeps as garbage. So bars are drawn only when standard error is a terminal;
otherwise one plain line per finished mapping is written (``CUSTOMER: read nav, read crm,
planned, wrote 12 of 12 to crm (0 failed, 3 requests)``). Both write to standard error
only: standard output holds the report or the JSON a script parses.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import IO, Any

from .engine.progress import ProgressEvent

__all__ = ["PlainLines", "Reporter", "TerminalBars", "cli_progress"]


class TerminalBars:
    """tqdm bars on a terminal, one per mapping and stage (removed when done)."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.bars: dict[tuple[str, str], Any] = {}

    def __call__(self, event: ProgressEvent) -> None:
        from tqdm import tqdm

        key = (event.mapping, event.stage)
        bar = self.bars.get(key)
        if bar is None:
            bar = self.bars[key] = tqdm(total=event.total, desc=f"{event.mapping} {event.stage}",
                                        unit="rec", file=self.stream, leave=False)
        bar.n = event.done
        if event.message:
            bar.set_postfix_str(event.message, refresh=False)
        bar.refresh()

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()
        self.bars.clear()


@dataclass
class _MappingSteps:
    """What one mapping did so far, as the events told it (stage -> last event)."""

    name: str
    stages: dict[str, ProgressEvent] = field(default_factory=dict)

    def line(self) -> str:
        parts = []
        for stage, event in self.stages.items():
            if stage == "plan":
                parts.append("planned")
            elif stage.startswith("write "):
                target = stage.removeprefix("write ")
                total = event.total if event.total is not None else event.done
                parts.append(f"wrote {event.done} of {total} to {target} ({event.failed} failed, "
                             f"{event.requests} requests)")
            else:
                parts.append(stage)
        return f"{self.name}: {', '.join(parts)}"


class PlainLines:
    """One line per finished mapping (a mapping is finished when the next one starts, or at
    :meth:`close`): no carriage returns, no escape codes."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.current: _MappingSteps | None = None

    def __call__(self, event: ProgressEvent) -> None:
        if self.current is None or self.current.name != event.mapping:
            self._finish()
            self.current = _MappingSteps(event.mapping)
        self.current.stages[event.stage] = event

    def _finish(self) -> None:
        if self.current is not None:
            self.stream.write(self.current.line() + "\n")
            self.stream.flush()
            self.current = None

    def close(self) -> None:
        self._finish()


class _Silent:
    """No progress (``--no-progress``, ``--json``)."""

    def __call__(self, event: ProgressEvent) -> None:
        return None

    def close(self) -> None:
        return None


Reporter = TerminalBars | PlainLines | _Silent
"""A progress callback with ``close()``: call it with each event, close it when done."""


def cli_progress(enabled: bool, stream: IO[str] | None = None) -> Reporter:
    """The reporter for a command: none when disabled, bars when ``stream`` (standard error)
    is a terminal, plain lines otherwise."""
    target = stream if stream is not None else sys.stderr
    if not enabled:
        return _Silent()
    isatty = getattr(target, "isatty", None)
    if callable(isatty) and isatty():
        return TerminalBars(target)
    return PlainLines(target)
