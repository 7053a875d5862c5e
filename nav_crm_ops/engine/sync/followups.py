"""Sync policy around one mapping's preview + apply: what else a sync does right after.

Two rules, kept here rather than in the workspace (which only holds the lease and calls
:func:`sync_with_followups`):

* **second pass after BC creates.** A mapping that created records in Business Central and
  writes to CRM is planned once more at once, so values that only exist after the create (the
  customer number BC assigns) reach CRM in the same run. The second pass leaves the retry pass
  out and drops the records the first pass already tried (:func:`tried_in`), so a failure is
  never counted twice;
* **follow-up steps.** A mapping naming a ``follow_up`` runs that step after its sync
  (``sales_order_status``: ``engine.order_status``, what BC did with the orders handed to it).

Results of the passes and steps are merged into the mapping's one result (:func:`merged`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import polars as pl

from ...connectors.factory import Connections
from ...store import StateStore
from ..mapping import MappingSet, TableMapping
from ..order_status import SalesOrderFollowUp
from ..report import MappingResult
from ..vocabulary import Direction
from .planner import MappingPlan

__all__ = ["FOLLOW_UPS", "SyncOnce", "created_in_bc", "follow_up", "merged", "needs_second_pass",
           "sync_with_followups", "tried_in", "without"]

SyncOnce = Callable[[bool, set[str] | None], MappingResult]
"""Preview and apply the mapping once: ``(retry, leave_out) -> result`` (``retry`` includes
the retry pass; ``leave_out`` drops records by NAV or CRM id)."""

FollowUpStep = Callable[[MappingSet, StateStore, Connections, TableMapping, str], MappingResult]


def _sales_order_status(mappings: MappingSet, store: StateStore, connections: Connections,
                        mapping: TableMapping, job_name: str) -> MappingResult:
    return SalesOrderFollowUp(mappings, store, connections).run(mapping, job_name=job_name)


FOLLOW_UPS: dict[str, FollowUpStep] = {"sales_order_status": _sales_order_status}
"""The steps a mapping's ``follow_up`` can name."""


def merged(first: MappingResult, second: MappingResult) -> MappingResult:
    """One result of two passes (or a pass and a step): counts add up, except ``unchanged``
    (the later pass knows it) and ``skipped`` (the first pass counted them)."""
    counts = dict(first.counts)
    for name, value in second.counts.items():
        if name == "unchanged":
            counts[name] = value
        elif name != "skipped":
            counts[name] = counts.get(name, 0) + value
    status = "failed" if "failed" in (first.status, second.status) else second.status
    message = "; ".join(m for m in (first.message, second.message) if m)
    return MappingResult(first.mapping, status, counts, first.run_ids + second.run_ids, message,
                         first.duration_s + second.duration_s)


def created_in_bc(store: StateStore, result: MappingResult) -> bool:
    """Whether the runs of ``result`` created records in BC."""
    runs = store.runs_frame(result.mapping, limit=10)
    created = runs.filter(pl.col("id").is_in(list(result.run_ids))
                          & (pl.col("direction") == Direction.FROM_CRM)
                          & (pl.col("inserted") > 0))
    return created.height > 0


def needs_second_pass(store: StateStore, mapping: TableMapping, result: MappingResult) -> bool:
    """A mapping writing to CRM that just created records in BC is planned once more."""
    return (result.status != "cancelled" and Direction.TO_CRM in mapping.directions
            and created_in_bc(store, result))


def tried_in(store: StateStore, mapping: TableMapping, result: MappingResult) -> set[str]:
    """Source ids of the records the runs of ``result`` failed, held or skipped."""
    statuses = store.record_status_frame(mapping.name)
    return set(statuses.filter(pl.col("run_id").is_in(list(result.run_ids)))["source_id"]
               .to_list())


def without(part: MappingPlan, leave_out: Iterable[str]) -> MappingPlan:
    """``part`` without the records whose NAV or CRM id is in ``leave_out``."""
    ids = list(leave_out)
    if not ids:
        return part
    dropped = pl.col("nav_id").is_in(ids) | pl.col("crm_id").is_in(ids)
    kept = part.records.filter(~dropped.fill_null(False))
    return MappingPlan(kept, part.field_changes.join(
        kept.select("record_id"), on="record_id", how="semi"), part.watermarks)


def follow_up(mappings: MappingSet, store: StateStore, connections: Connections,
              mapping: TableMapping, job_name: str) -> MappingResult | None:
    """Run the mapping's ``follow_up`` step, if it names one."""
    step = FOLLOW_UPS.get(mapping.follow_up or "")
    return None if step is None else step(mappings, store, connections, mapping, job_name)


def sync_with_followups(mapping: TableMapping, store: StateStore, sync_once: SyncOnce,
                        step: Callable[[], MappingResult | None]) -> MappingResult:
    """One mapping's sync: a pass, the second pass after BC creates, then the follow-up step
    (see the module docstring); ``step`` runs :func:`follow_up`."""
    result = sync_once(True, None)
    if needs_second_pass(store, mapping, result):
        result = merged(result, sync_once(False, tried_in(store, mapping, result)))
    if result.status != "cancelled":
        extra = step()
        if extra is not None:
            result = merged(result, extra)
    return result
