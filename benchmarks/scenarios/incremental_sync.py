"""Scenario 3: incremental sync (see :mod:`benchmarks.scenarios.syncs`)."""

from __future__ import annotations

from ..harness import Context, Measurement
from .syncs import measure_incremental

__all__ = ["measure"]


def measure(job: str, ctx: Context) -> list[Measurement]:
    return measure_incremental(ctx)
