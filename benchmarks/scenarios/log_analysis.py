"""Scenario 5: group ``size`` record errors by normalized message and drill into groups.

The rows live in a real SQLite state store (``StateStore``), loaded by this benchmark with
:meth:`StateStore.add_record_errors` in chunks of 50,000 (one transaction and one executemany
per chunk; it computes ``normalized_message`` with :func:`normalize_error_message` as the
product does). That loader is not timed and is not how a sync writes errors (the applier
stores them per chunk of records).

Ours: ``StateStore.error_groups()`` (SQL GROUP BY in SQLite) and ``record_errors_frame(mapping,
normalized_message=...)`` for the largest group (newest 10,000, the notebook's view) and a
small group (all its rows). Baseline: what an analyst without the store API would do — load
the table's columns into pandas with ``read_sql`` and ``groupby`` / filter there.
"""

from __future__ import annotations

import sqlite3
from typing import Any

import numpy as np
import polars as pl

from nav_crm_ops.store import StateStore

from ..harness import Context, Measurement, proc_status_mb, timed

__all__ = ["measure", "prepare"]

DRILL_LIMIT = 10_000
CHUNK = 50_000
_MAPPINGS = ("CUSTOMER", "CONTACT", "ITEM_PRODUCT", "SALESPEOPLE")
_FIELDS = ("name", "address1_line1", "telephone1", "emailaddress1", "websiteurl",
           "address1_city", "address1_postalcode", "jobtitle")
_TEMPLATES = (
    "The length of {field} exceeded {n} for record {guid}",
    "Customer {no} does not exist. CorrelationId: {guid}",
    "A record with matching key values already exists (0x80040237): accountnumber '{no}'",
    "The field Phone No. of table Customer contains a value ('{phone}') that cannot be "
    "found in the related table",
    "Principal user (Id={guid}, type=8) is missing prvWriteAccount privilege",
    "Rate limit exceeded: {n} requests in 300 seconds, retry after {n} seconds",
    "The record {guid} was changed after the preview (etag mismatch); it comes back in the "
    "next preview",
    "Lookup of salesperson '{code}' failed: the SALESPEOPLE record is not coupled; run "
    "mapping SALESPEOPLE or couple it",
    "Invalid value for {field}: '{no}' is not a valid option",
    "Payment terms code '{code}' has no CRM option; add it to the option list",
)


def _messages(rng: np.random.Generator, count: int) -> list[str]:
    """Messages from the templates with a skewed frequency (a few large groups, a long tail)."""
    weights = 1.0 / np.arange(1, len(_TEMPLATES) + 1) ** 1.2
    choice = rng.choice(len(_TEMPLATES), size=count, p=weights / weights.sum())
    fields = rng.integers(0, len(_FIELDS), count)
    numbers = rng.integers(1, 100_000, count)
    out = []
    for index in range(count):
        guid = f"{numbers[index]:08x}-1f0c-4e2a-9b7d-{index:012x}"
        out.append(_TEMPLATES[choice[index]].format(
            field=_FIELDS[fields[index]], n=int(numbers[index]) % 1000, guid=guid,
            no=f"C{numbers[index]:07d}", phone=f"+44 20 7{numbers[index]:06d}",
            code=f"X{numbers[index] % 97}"))
    return out


def prepare(ctx: Context) -> None:
    """Create the state store and load ``ctx.size`` record errors (seeded)."""
    rng = np.random.default_rng(ctx.seed)
    ctx.workdir.mkdir(parents=True, exist_ok=True)
    with StateStore.open(ctx.workdir / "state.db") as store:
        for first in range(0, ctx.size, CHUNK):
            count = min(CHUNK, ctx.size - first)
            messages = _messages(rng, count)
            mappings = rng.integers(0, len(_MAPPINGS), count)
            rows: list[dict[str, Any]] = []
            for offset, message in enumerate(messages):
                number = first + offset
                rows.append({
                    "run_id": 1 + number // 1000, "mapping": _MAPPINGS[mappings[offset]],
                    "direction": "to_crm" if number % 3 else "from_crm",
                    "source_id": f"{number:08x}-0000-4000-8000-{number:012x}",
                    "transient": message.startswith("Rate limit"),
                    "http_status": 400, "message": message,
                    "payload": {"name": f"Customer {number}", "telephone1": "+44 20 7946 0000",
                                "address1_city": "London"},
                    "response": {"error": {"code": "0x80040237", "message": message}},
                })
            store.add_record_errors(rows)


def _groups_of(store: StateStore) -> Any:
    return store.error_groups()


def _pick_groups(groups: Any) -> tuple[tuple[str, str, int], tuple[str, str, int]]:
    """(mapping, normalized message, count) of the largest group and of a small one."""
    rows = list(groups.select("mapping", "normalized_message", "count").iter_rows())
    small = next((r for r in reversed(rows) if r[2] >= 5), rows[-1])
    return rows[0], small


def _ours(ctx: Context) -> list[Measurement]:
    with StateStore.open(ctx.workdir / "state.db") as store:
        groups, timing = timed(lambda: _groups_of(store), ctx.repeats)
        largest, small = _pick_groups(groups)
        group_counts = {"groups": groups.height, "largest_group_rows": int(largest[2]),
                        "rows_grouped": int(groups.get_column("count").sum())}
        rows = [Measurement(
            "ours_groups", "ours: StateStore.error_groups() (SQL GROUP BY)", "ours",
            "pandas_groups", records=ctx.size, counts=group_counts,
            notes="count, first/last seen and an example per (mapping, normalized message)",
        ).with_timing(timing)]
        for variant, (mapping, message, size), limit in (
                ("ours_drill_largest", largest, DRILL_LIMIT),
                ("ours_drill_small", small, int(small[2]))):
            def drill(m: str = mapping, t: str = message, n: int = limit) -> pl.DataFrame:
                return store.record_errors_frame(m, normalized_message=t, limit=n)

            frame, timing = timed(drill, ctx.repeats)
            what = ("largest group, newest 10,000" if variant.endswith("largest") else
                    f"a small group ({size} rows), all rows")
            rows.append(Measurement(
                variant, f"ours: record_errors_frame(mapping, normalized_message), {what}",
                "ours", variant.replace("ours", "pandas"), records=ctx.size,
                counts={"rows_returned": frame.height},
                notes="SQL filter on (mapping, normalized_message), newest first; every "
                      "column incl. payload/response JSON text").with_timing(timing))
    return rows


def _pandas(ctx: Context) -> list[Measurement]:
    import pandas as pd

    def load_and_group() -> tuple[Any, Any]:
        with sqlite3.connect(ctx.workdir / "state.db") as conn:
            frame = pd.read_sql("SELECT id, mapping, normalized_message, message, created_at, "
                                "source_id, payload, response FROM record_errors", conn)
        grouped = (frame.groupby(["mapping", "normalized_message"])
                   .agg(count=("id", "size"), first_seen=("created_at", "min"),
                        last_seen=("created_at", "max"), example=("message", "max"))
                   .sort_values("count", ascending=False).reset_index())
        return frame, grouped

    (frame, groups), timing = timed(load_and_group, ctx.repeats)
    loaded_mb = proc_status_mb("VmRSS")
    largest = groups.iloc[0]
    tail = groups[groups["count"] >= 5]
    small = tail.iloc[-1] if len(tail) else groups.iloc[-1]
    rows = [Measurement(
        "pandas_groups", "baseline: pandas read_sql of the table + groupby", "baseline",
        "pandas_groups", records=ctx.size,
        counts={"groups": len(groups), "largest_group_rows": int(largest["count"]),
                "rows_grouped": int(groups["count"].sum())},
        figures={"rss_with_table_loaded_mb": loaded_mb},
        notes="loads id, mapping, messages, created_at, source_id, payload, response; groups "
              "in memory").with_timing(timing)]
    for variant, group, limit in (("pandas_drill_largest", largest, DRILL_LIMIT),
                                  ("pandas_drill_small", small, int(small["count"]))):
        def drill(g: Any = group, n: int = limit) -> Any:
            hit = frame[(frame["mapping"] == g["mapping"])
                        & (frame["normalized_message"] == g["normalized_message"])]
            return hit.sort_values("id", ascending=False).head(n)

        found, timing = timed(drill, ctx.repeats)
        rows.append(Measurement(
            variant, "baseline: boolean filter of the already loaded pandas frame "
                     f"({'newest 10,000' if limit == DRILL_LIMIT else 'all rows'})",
            "baseline", variant, records=ctx.size, counts={"rows_returned": len(found)},
            notes="excludes the load (see pandas_groups): the drill an analyst does once the "
                  "table is in memory").with_timing(timing))
    return rows


def measure(job: str, ctx: Context) -> list[Measurement]:
    return _ours(ctx) if job == "ours" else _pandas(ctx)
