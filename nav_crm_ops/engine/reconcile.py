"""Drift checks: every coupled pair of one mapping compared now, both sides and the stored base.

Why: an incremental sync reads only records modified after its watermark. An edit that keeps
an old modified-on (a bulk import, a database fix, a restore), a watermark moved too far, or a
coupled record deleted is never read again, and the pair stays out of step without anyone
hearing of it (issue #20, item 4). ``nav-crm-ops reconcile MAPPING`` reads every coupled pair
and says which are out of step and why, stores the result (the ``drift`` alert rule reads it)
and offers the drift as a plan to heal.

How it reads — in chunks, never the mapping's couplings at once: one page of BC records at a
time (the mapping's table filter, the service's page size), the couplings of those ids
(``couplings_frame(nav_ids=...)``), their CRM partners by id (URL-sized ``or`` chunks). The
same connections as a sync send the requests, so the same retries, throttling and service
protection limits apply; the result says how many were sent. Couplings whose BC record was
not on any page (deleted, or outside the table filter now) are found by a second pass over
the couplings in id order, only when fewer pairs were seen than are stored; that needs the set
of BC ids seen (about 100 bytes a pair), the one thing that grows with the mapping.

How it compares — as the preview does: both sides as field frames (``engine.sides``,
transformations and lookups applied, values canonical) through the three-way diff
(``engine.diff``) against the coupling's base. A pair is out of step when a sync of it would
write or hold something; fields a sync never writes (a one-way field changed on the side it
does not come from, ``not_null`` sources left empty) do not count. Classes
(:class:`PairClass`):

* ``in_step``: nothing to write (both sides equal the base, or each other);
* ``pending``: every side that changed did so at or after its watermark (less the preview's
  overlap), or the record failed and is in the retry pass: the next sync reads and handles
  it (a held conflict is no such case: it waits for a person, and counts as ``diverged``);
* ``missed``: one side differs from the base with a modified-on before its watermark — an
  edit behind the watermark, which no sync will read;
* ``diverged``: both sides differ from the base (and from each other) behind the watermarks,
  or a pair without a base whose sides differ;
* ``partner_gone``: the coupled record on one side (or both) no longer exists.

Healing (:meth:`Reconciler.run`): the missed and diverged pairs are planned by the normal
planner as a :class:`~nav_crm_ops.engine.sync.snapshot.Selection` of their BC ids, so the plan
is the same preview as any sync — conflicts held (``update_conflict``), never overwritten
silently — saved for ``sync --plan`` or applied at once; the applied pairs are read again
and those now in step are recorded as healed. Partner-gone pairs are not planned: the result
says what the mapping's ``deletion_conflict`` makes of them and what to do. A ``create_only``
mapping is refused (its records are written once: later differences are by design); a
document mapping is compared on its header fields.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import timedelta
from enum import StrEnum
from typing import Any

import polars as pl

from ..exceptions import SyncError
from ..store.schema import utc_now
from .context import EngineContext
from .diff import three_way_diff
from .mapping import TableMapping
from .plan import Plan
from .progress import CancelToken, Progress, ProgressEvent, check_cancelled, emit
from .report import SyncReport
from .resolve import Resolver
from .sides import SideReader, field_frame, reads_incrementally
from .sync.snapshot import Selection, parse_moment
from .vocabulary import PlanAction, Side

__all__ = ["DriftedPair", "HealMode", "PairClass", "ReconcileResult", "Reconciler",
           "Reconciliation", "gone_advice"]

_COUPLING_COLUMNS = ["nav_id", "crm_id", "nav_key", "base_values"]


class PairClass(StrEnum):
    """What a reconcile found for one coupled pair (module docstring)."""

    IN_STEP = "in_step"
    PENDING = "pending"
    MISSED = "missed"
    DIVERGED = "diverged"
    PARTNER_GONE = "partner_gone"

    @property
    def drift(self) -> bool:
        """Out of step with no sync coming to fix it."""
        return self in (PairClass.MISSED, PairClass.DIVERGED, PairClass.PARTNER_GONE)

    @property
    def words(self) -> str:
        return _WORDS[self]


_WORDS = {PairClass.IN_STEP: "in step", PairClass.PENDING: "pending (the next sync handles them)",
          PairClass.MISSED: "missed (edited behind the watermark)",
          PairClass.DIVERGED: "diverged (changed on both sides)",
          PairClass.PARTNER_GONE: "partner gone (a coupled record no longer exists)"}


class HealMode(StrEnum):
    """What a reconcile does with the drift it finds."""

    REPORT = "report"
    """Only report (and store) it."""
    PLAN = "plan"
    """Also plan the healing of the missed and diverged pairs (to save for ``sync --plan``)."""
    APPLY = "apply"
    """Plan and apply it at once."""


@dataclass(frozen=True)
class DriftedPair:
    """One pair out of step: its ids, BC number, class and why (in words)."""

    nav_id: str
    crm_id: str
    kind: PairClass
    why: str
    nav_key: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"nav_id": self.nav_id, "crm_id": self.crm_id, "nav_key": self.nav_key,
                "class": self.kind.value, "why": self.why}


@dataclass(frozen=True)
class ReconcileResult:
    """One reconcile of one mapping: pairs per class, the pairs out of step (pending ones
    included: they are out of step too, only not drift), requests, pages, duration."""

    mapping: str
    counts: dict[PairClass, int]
    pairs: tuple[DriftedPair, ...]
    requests: int
    pages: int
    duration_s: float
    started_at: str
    advice: str = ""
    healed: int = 0
    run_id: int | None = None

    @property
    def compared(self) -> int:
        return sum(self.counts.values())

    @property
    def drifted(self) -> tuple[DriftedPair, ...]:
        return tuple(p for p in self.pairs if p.kind.drift)

    @property
    def remaining(self) -> int:
        """Drifted pairs not healed (the CLI exits 1 and the alert holds while positive)."""
        return max(len(self.drifted) - self.healed, 0)

    def selection(self) -> Selection | None:
        """The missed and diverged pairs as a selection to plan (None when there are none)."""
        ids = tuple(p.nav_id for p in self.drifted if p.kind is not PairClass.PARTNER_GONE)
        return Selection(nav_ids=ids) if ids else None

    def summary(self) -> str:
        parts = ", ".join(f"{self.counts.get(k, 0)} {k.words}" for k in PairClass
                          if self.counts.get(k, 0) or k is PairClass.IN_STEP)
        healed = f"; {self.healed} healed" if self.healed else ""
        return (f"{self.mapping}: {self.compared} coupled pair(s) compared in "
                f"{self.duration_s:.1f} s ({self.requests} requests, {self.pages} BC pages): "
                f"{parts}{healed}")

    def to_dict(self) -> dict[str, Any]:
        return {"mapping": self.mapping, "run_id": self.run_id, "started_at": self.started_at,
                "counts": {k.value: self.counts.get(k, 0) for k in PairClass},
                "compared": self.compared, "drifted": len(self.drifted),
                "healed": self.healed, "remaining": self.remaining,
                "requests": self.requests, "pages": self.pages,
                "duration_s": round(self.duration_s, 3), "advice": self.advice,
                "pairs": [p.to_dict() for p in self.pairs]}


@dataclass(frozen=True)
class Reconciliation:
    """A reconcile and what became of its drift: the heal plan (``HealMode.PLAN`` and
    ``APPLY``) and the report of applying it (``APPLY``)."""

    result: ReconcileResult
    plan: Plan | None = None
    report: SyncReport | None = None


def gone_advice(spec: TableMapping, count: int) -> str:
    """What to do with pairs whose partner is gone: what the mapping's ``deletion_conflict``
    makes of them (a reconcile does not guess)."""
    if not count:
        return ""
    uncouple = f"`nav-crm-ops uncouple {spec.name} --nav-id ID`"
    policy = spec.deletion_conflict
    then = {"none": "a sync of them fails (the record no longer exists): remove each coupling "
                    f"with {uncouple}, or recreate the record and couple it again",
            "remove_coupling": f"a sync of them removes the couplings; {uncouple} does so now",
            "restore": "a sync of them creates the deleted record again from its partner "
                       f"(`ws.sync_now('{spec.name}', nav_ids=[...])`, or Synchronize now in "
                       f"the couple-records dashboard), or remove the coupling with {uncouple}"}[policy]
    return (f"{count} pair(s) lost a coupled record; the mapping's deletion_conflict is "
            f"'{policy}': {then}")


# -- reading and comparing ------------------------------------------------------------------
@dataclass
class _Marks:
    """Each side's watermark as the next sync will use it, and the records in its retry
    pass: what makes a change pending rather than missed."""

    spec: TableMapping
    marks: dict[str, str]
    overlap: timedelta
    date_sides: set[Side]
    retry_nav: set[str]
    retry_crm: set[str]

    def read_next(self, side: Side, modified: str | None) -> bool:
        """Whether the next sync reads a record of ``side`` modified at ``modified``."""
        mark = self.marks.get(side.value)
        if not reads_incrementally(self.spec, side) or not mark:
            return True
        if not modified:
            return False
        when, since = parse_moment(modified), parse_moment(mark)
        if side in self.date_sides:
            return when.date() >= (since - timedelta(days=1)).date()
        return when >= since - self.overlap


@dataclass
class _Tally:
    counts: dict[PairClass, int] = field(default_factory=lambda: dict.fromkeys(PairClass, 0))
    pairs: list[DriftedPair] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)
    pages: int = 0

    def add(self, found: Iterable[tuple[DriftedPair | None, PairClass]]) -> None:
        for pair, kind in found:
            self.counts[kind] += 1
            if pair is not None:
                self.pairs.append(pair)


def _base(couplings: pl.DataFrame, names: list[str]) -> pl.DataFrame:
    """The stored base of each pair (``pair_id`` = BC id), as the preview decodes it."""
    stored = couplings.filter(pl.col("base_values").is_not_null())
    if not stored.height:
        return pl.DataFrame(schema={"pair_id": pl.Utf8, **dict.fromkeys(names, pl.Utf8)})
    return stored.select(pl.col("nav_id").alias("pair_id"), pl.col("base_values").str
                         .json_decode(pl.Struct({n: pl.Utf8 for n in names})).alias("__b")
                         ).unnest("__b")


def _changed_sides(diff_changes: pl.DataFrame) -> dict[str, set[Side]]:
    """Per pair, the sides whose changes a sync would write or hold."""
    acting = diff_changes.filter((pl.col("target").cast(pl.Utf8) != "none")
                                 | (pl.col("resolution").cast(pl.Utf8) == "held"))
    sides: dict[str, set[Side]] = {}
    for pair_id, changed in acting.select("pair_id", pl.col("changed_side").cast(pl.Utf8)
                                          ).iter_rows():
        found = sides.setdefault(pair_id, set())
        found |= {Side.NAV, Side.CRM} if changed == "both" else {Side(changed)}
    return sides


def classify(spec: TableMapping, nav: pl.DataFrame, crm: pl.DataFrame,
             couplings: pl.DataFrame, marks: _Marks,
             ) -> Iterator[tuple[DriftedPair | None, PairClass]]:
    """Each coupling's class, given the field frames read of both sides (a record missing
    from its frame is gone); a pair in step yields no :class:`DriftedPair`."""
    names = [f.name for f in spec.diff_fields()]
    nav_ids, crm_ids = set(nav["_id"].to_list()), set(crm["_id"].to_list())
    present = couplings.filter(pl.col("nav_id").is_in(list(nav_ids))
                               & pl.col("crm_id").is_in(list(crm_ids)))
    for row in couplings.filter(~pl.col("nav_id").is_in(present["nav_id"].to_list())
                                ).iter_rows(named=True):
        gone = [s.label for s, ids, i in ((Side.NAV, nav_ids, row["nav_id"]),
                                          (Side.CRM, crm_ids, row["crm_id"])) if i not in ids]
        yield (DriftedPair(row["nav_id"], row["crm_id"], PairClass.PARTNER_GONE,
                           f"the {' and the '.join(gone)} record no longer exists",
                           row["nav_key"]), PairClass.PARTNER_GONE)
    if not present.height:
        return
    pairs = present.select("nav_id", "crm_id")
    nav_side = nav.join(pairs, left_on="_id", right_on="nav_id").select(
        pl.col("_id").alias("pair_id"), *names)
    crm_side = crm.join(pairs, left_on="_id", right_on="crm_id").select(
        pl.col("nav_id").alias("pair_id"), *names)
    diff = three_way_diff(nav_side, crm_side, _base(present, names), spec.diff_fields(),
                          conflict_policy=spec.update_conflict, mapping_direction=spec.direction)
    out = diff.records.filter(pl.col("action").cast(pl.Utf8) != PlanAction.UNCHANGED.value)
    never = set(out.filter(pl.col("never_synced"))["pair_id"].to_list())
    sides = _changed_sides(diff.field_changes)
    modified = {Side.NAV: dict(nav.select("_id", "_modified").iter_rows()),
                Side.CRM: dict(crm.select("_id", "_modified").iter_rows())}
    out_ids = set(out["pair_id"].to_list())
    for row in present.iter_rows(named=True):
        if row["nav_id"] not in out_ids:
            yield None, PairClass.IN_STEP
            continue
        ids = {Side.NAV: row["nav_id"], Side.CRM: row["crm_id"]}
        changed = sides.get(row["nav_id"], {Side.NAV, Side.CRM})
        kind, why = _decide(marks, changed, ids, modified, row["nav_id"] in never)
        yield DriftedPair(row["nav_id"], row["crm_id"], kind, why, row["nav_key"]), kind


def _ordered(sides: set[Side]) -> list[Side]:
    return [s for s in (Side.NAV, Side.CRM) if s in sides]


def _decide(marks: _Marks, changed: set[Side], ids: dict[Side, str],
            modified: dict[Side, dict[str, str]], never_synced: bool) -> tuple[PairClass, str]:
    """Pending, missed or diverged, and why, for a pair a sync would write."""
    if ids[Side.NAV] in marks.retry_nav or ids[Side.CRM] in marks.retry_crm:
        return PairClass.PENDING, "in the retry pass: the next sync reads it by id"
    stamps = {s: modified[s].get(ids[s]) for s in changed}
    if all(marks.read_next(s, stamps[s]) for s in changed):
        return PairClass.PENDING, (" and ".join(f"{s.label} changed {stamps[s] or ''}".strip()
                                                for s in _ordered(changed))
                                   + " after its watermark: the next sync reads it")
    behind = [f"{s.label} changed behind its watermark (modified {stamps[s] or 'unknown'}, "
              f"watermark {marks.marks.get(s.value)})" for s in _ordered(changed)
              if not marks.read_next(s, stamps[s])]
    if never_synced:
        return PairClass.DIVERGED, "never synchronized and the two sides differ"
    if len(changed) > 1:
        return PairClass.DIVERGED, "both sides differ from the last synchronized values; " + \
            "; ".join(behind)
    return PairClass.MISSED, "; ".join(behind)


# -- the run ----------------------------------------------------------------------------------
ApplyPlan = Callable[..., SyncReport]
"""``Workspace.apply``: applies a plan under the mapping's lease and evaluates the alerts."""


class Reconciler:
    """Reconciles one mapping (module docstring); ``fingerprint`` names the workspace a heal
    plan is made for."""

    def __init__(self, ctx: EngineContext, spec: TableMapping, fingerprint: str) -> None:
        if spec.create_only:
            raise SyncError(f"mapping {spec.name} is create_only: a sync writes its records "
                            "once, when it creates them, so later differences are by design "
                            "and there is nothing to reconcile")
        self.ctx = ctx
        self.spec = spec
        self.fingerprint = fingerprint
        self.store = ctx.store
        planner = ctx.planner()
        self.nav_reader, self.crm_reader = planner.readers(spec)
        self.overlap = planner.overlap
        self.resolver = Resolver(ctx.mappings, ctx.store, ctx.connections)

    def run(self, heal: HealMode = HealMode.REPORT, *, apply: ApplyPlan | None = None,
            progress: Progress | None = None,
            cancel: CancelToken | None = None) -> Reconciliation:
        """Compare every pair, store the result; plan (and apply) the healing of its drift."""
        result = self.check(progress, cancel)
        selection = result.selection()
        if heal is HealMode.REPORT or selection is None:
            return Reconciliation(result)
        part = self.ctx.planner().plan(self.spec, selection, progress=progress, cancel=cancel)
        plan = Plan.create(part.records, part.field_changes,
                           workspace_fingerprint=self.fingerprint, mappings=[self.spec.name])
        if heal is HealMode.PLAN or apply is None:
            return Reconciliation(result, plan)
        report = apply(plan, progress=progress, cancel=cancel, job_name="reconcile")
        healed = self.healed(result)
        if result.run_id is not None:
            self.store.reconcile_runs.set_healed(result.run_id, healed)
        return Reconciliation(replace(result, healed=healed), plan, report)

    def _marks(self) -> _Marks:
        status = self.store.record_status_frame(self.spec.name, states=["failed"])
        retry = {d: set(status.filter(pl.col("direction") == d)["source_id"].to_list())
                 for d in ("to_crm", "from_crm")}
        dates = {Side.NAV} if self.nav_reader.modified_is_date else set()
        return _Marks(self.spec, self.store.watermarks(self.spec.name), self.overlap, dates,
                      retry["to_crm"], retry["from_crm"])

    def check(self, progress: Progress | None = None,
              cancel: CancelToken | None = None) -> ReconcileResult:
        """Read and compare every coupled pair (module docstring) and store the result."""
        started, clock = utc_now(), time.monotonic()
        before = self.ctx.requests()
        marks, tally = self._marks(), _Tally()
        total = self.store.count_couplings(self.spec.name)
        stage = "reconcile"
        emit(progress, ProgressEvent(self.spec.name, stage, 0, total))
        for page in self._nav_pages():
            tally.pages += 1
            nav = self._frame(Side.NAV, page)
            couplings = self.store.couplings_frame(self.spec.name, columns=_COUPLING_COLUMNS,
                                                   nav_ids=nav["_id"].to_list())
            self._compare(nav.filter(pl.col("_id").is_in(couplings["nav_id"].to_list())),
                          couplings, marks, tally)
            emit(progress, ProgressEvent(self.spec.name, stage, len(tally.seen), total))
            check_cancelled(cancel, f"the {self.spec.name} reconcile")
        if len(tally.seen) < total:
            self._unseen(marks, tally, progress, cancel)
        result = ReconcileResult(
            self.spec.name, tally.counts, tuple(tally.pairs), self.ctx.requests() - before,
            tally.pages, time.monotonic() - clock, started,
            gone_advice(self.spec, tally.counts[PairClass.PARTNER_GONE]))
        return replace(result, run_id=self.store.reconcile_runs.record(result.to_dict()))

    def _nav_pages(self) -> Iterator[pl.DataFrame]:
        reader: SideReader = self.nav_reader
        yield from reader.client.read_pages(reader.entity, select=reader.select, etag=True,
                                            filter=reader.table_filter)

    def _frame(self, side: Side, raw: pl.DataFrame) -> pl.DataFrame:
        return field_frame(raw, self.spec, side, self.resolver).unique(
            "_id", keep="last", maintain_order=True)

    def _compare(self, nav: pl.DataFrame, couplings: pl.DataFrame, marks: _Marks,
                 tally: _Tally) -> None:
        """Classify the pairs of ``couplings`` given their BC rows: CRM partners by id."""
        if not couplings.height:
            return
        crm = self._frame(Side.CRM, self.crm_reader.by_ids(couplings["crm_id"].to_list()))
        tally.add(classify(self.spec, nav, crm, couplings, marks))
        tally.seen.update(couplings["nav_id"].to_list())

    def _unseen(self, marks: _Marks, tally: _Tally, progress: Progress | None,
                cancel: CancelToken | None) -> None:
        """Couplings whose BC record was on no page: read by id (gone, or outside the table
        filter now), a chunk of couplings at a time in id order."""
        for chunk in self.store.reconcile_runs.coupled_ids(self.spec.name):
            ids = [i for i in chunk if i not in tally.seen]
            if not ids:
                continue
            couplings = self.store.couplings_frame(self.spec.name, columns=_COUPLING_COLUMNS,
                                                   nav_ids=ids)
            self._compare(self._frame(Side.NAV, self.nav_reader.by_ids(ids)), couplings,
                          marks, tally)
            emit(progress, ProgressEvent(self.spec.name, "reconcile", len(tally.seen)))
            check_cancelled(cancel, f"the {self.spec.name} reconcile")

    def healed(self, result: ReconcileResult) -> int:
        """How many of ``result``'s missed and diverged pairs are in step now (read again)."""
        selection = result.selection()
        if selection is None:
            return 0
        marks, tally = self._marks(), _Tally()
        for start in range(0, len(selection.nav_ids), 500):
            ids = list(selection.nav_ids[start:start + 500])
            couplings = self.store.couplings_frame(self.spec.name, columns=_COUPLING_COLUMNS,
                                                   nav_ids=ids)
            self._compare(self._frame(Side.NAV, self.nav_reader.by_ids(ids)), couplings,
                          marks, tally)
        return tally.counts[PairClass.IN_STEP]
