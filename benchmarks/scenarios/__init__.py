"""The scenarios of ``make bench`` and how each is split into measurement processes.

Specs are plain data so the runner can plan without importing polars, pandas or the engine;
each scenario module provides ``prepare(ctx)`` (build inputs once, untimed) and
``measure(job, ctx) -> list[Measurement]`` (one process per job, so its peak memory is its own).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SCENARIOS", "ScenarioSpec", "by_name"]


@dataclass(frozen=True)
class ScenarioSpec:
    """One scenario: ``jobs`` run one process each, in order, after ``prepare`` (if any)."""

    name: str
    number: int
    title: str
    module: str
    full_size: int
    quick_size: int
    jobs: tuple[str, ...]
    full_repeats: int = 3
    quick_repeats: int = 1
    prepare: bool = True
    target: str = ""

    def size(self, quick: bool) -> int:
        return self.quick_size if quick else self.full_size

    def repeats(self, quick: bool) -> int:
        return self.quick_repeats if quick else self.full_repeats


SCENARIOS: tuple[ScenarioSpec, ...] = (
    ScenarioSpec(
        name="plan_diff", number=1, title="Plan (three-way diff) computation",
        module="benchmarks.scenarios.plan_diff", full_size=1_000_000, quick_size=20_000,
        jobs=("ours_full", "pandas_full", "datacompy_full", "ours_changed", "pandas_changed"),
        target="<= 3 s and <= 1.5 GB peak for 1M records; >= 10x faster than pandas",
    ),
    ScenarioSpec(
        name="initial_sync", number=2, title="Initial sync of NAV customers to an empty CRM",
        module="benchmarks.scenarios.initial_sync", full_size=100_000, quick_size=300,
        jobs=("ours", "per_record"), full_repeats=1, prepare=False,
        target="requests <= 1.05 x minimum; >= 20x faster than one request per record",
    ),
    ScenarioSpec(
        name="incremental_sync", number=3, title="Incremental sync, 1% of customers changed",
        module="benchmarks.scenarios.incremental_sync", full_size=100_000, quick_size=300,
        jobs=("ours",), full_repeats=1, prepare=False,
        target="requests <= 1.05 x minimum",
    ),
    ScenarioSpec(
        name="no_change_sync", number=4, title="No-change sync of all default mappings",
        module="benchmarks.scenarios.no_change_sync", full_size=10_000, quick_size=100,
        jobs=("ours",), full_repeats=1, prepare=False,
        target="<= 2 read requests per side per mapping, no writes",
    ),
    ScenarioSpec(
        name="log_analysis", number=5, title="Log analysis: error groups and drill-down",
        module="benchmarks.scenarios.log_analysis", full_size=1_000_000, quick_size=20_000,
        jobs=("ours", "pandas"),
    ),
    ScenarioSpec(
        name="sandbox_throughput", number=6, title="Sandbox throughput (loopback HTTP)",
        module="benchmarks.scenarios.sandbox_throughput", full_size=20_000, quick_size=600,
        jobs=("services",), full_repeats=1, prepare=False,
    ),
    ScenarioSpec(
        name="scale_sync", number=7,
        title="Initial sync of 1,000,000 NAV customers, then a 1% incremental sync",
        module="benchmarks.scenarios.scale_sync", full_size=1_000_000, quick_size=300,
        jobs=("ours", "ours_incremental", "per_record_patch", "per_record"), full_repeats=1,
        prepare=False,
        target="initial: <= 600 MB peak per 100,000 records, <= 100 µs client CPU per record; "
               "1% incremental: < 500 MB, >= 3x one PATCH per changed record; requests <= "
               "1.05x minimum",
    ),
)


def by_name(names: str | None) -> list[ScenarioSpec]:
    """The scenarios named in a comma-separated list (all when None); unknown names raise."""
    if not names:
        return list(SCENARIOS)
    known = {s.name: s for s in SCENARIOS}
    wanted = [n.strip() for n in names.split(",") if n.strip()]
    unknown = [n for n in wanted if n not in known]
    if unknown:
        raise SystemExit(f"unknown scenario(s) {unknown}; choose from {sorted(known)}")
    return [s for s in SCENARIOS if s.name in wanted]
