"""Scenario 4: no-change sync of every default mapping (see :mod:`benchmarks.scenarios.syncs`)."""

from __future__ import annotations

from ..harness import Context, Measurement
from .syncs import measure_no_change

__all__ = ["measure"]


def measure(job: str, ctx: Context) -> list[Measurement]:
    return measure_no_change(ctx)
