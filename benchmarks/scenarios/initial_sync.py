"""Scenario 2: initial sync (see :mod:`benchmarks.scenarios.syncs`)."""

from __future__ import annotations

from ..harness import Context, Measurement
from .syncs import measure_initial, measure_per_record

__all__ = ["measure"]


def measure(job: str, ctx: Context) -> list[Measurement]:
    return measure_initial(ctx) if job == "ours" else measure_per_record(ctx)
