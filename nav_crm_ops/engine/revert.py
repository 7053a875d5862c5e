"""Undo a run: ``nav-crm-ops revert RUN_ID`` previews, saves or applies its reversal.

Why: a bad mapping change or a bad source import writes thousands of wrong values, and the
way back used to be by hand (issue #20, item 1). Every applied write keeps what it replaced
(:mod:`nav_crm_ops.store.history`); a revert reads those rows for one run of the job log and
builds the reversal as a :class:`~nav_crm_ops.engine.plan.Plan` — the same preview as any
sync, saved for ``sync --plan`` or applied by the same :class:`Applier`:

* the run's target records are read again now. A field whose current value is still what the
  run wrote gets its old value back (an update with ``If-Match`` of the version just read, so
  a record edited between this preview and its apply is refused, never overwritten);
* a field whose value changed since (someone edited it) is held as a conflict — the record's
  action is ``conflict`` when every field is, or its other fields are reverted and the held
  ones shown as conflicts;
* a field already back at its old value is not written; when the coupling's stored base still
  holds the run's value, the base is set to the old one (``same_value``) so the next sync sees
  no change to copy back. Written fields move the base the same way (the applier's new base);
* records the run created are deactivated (CRM ``statecode`` 1 / ``statuscode`` 2; BC
  customers and vendors ``blocked: All``, items ``blocked: true``) or deleted, per the
  mapping's ``on_revert_created``, and their couplings removed. A plan has no action for
  that, so they travel beside it (:attr:`RevertPlan.created`): ``--apply`` handles them; a
  plan saved with ``--out`` reverts the fields only and says so.

Reverting twice changes nothing: the second revert finds every field at its old value (and
the base already set) and every created record uncoupled, and says so. A revert is itself a
run (kind ``revert``) in the job log, and its writes keep history too (a revert can be
reverted). A reply lost after the service committed is safe: the field is found reverted
(or the version moved, and the write is refused) on the next revert.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import polars as pl

from ..connectors.models import WriteOp
from ..exceptions import PlanError
from ..store.history import HistoryRepository
from .diff.canonical import canonical_frame
from .lease import mapping_lease
from .mapping import TableMapping
from .mapping.specs import RevertCreated
from .plan import Plan
from .progress import Progress
from .report import MappingResult, SyncReport
from .resolve import Resolver
from .sides import _source_value
from .vocabulary import Direction, PlanAction, Side

if TYPE_CHECKING:
    from .workspace import Workspace

__all__ = ["CreatedRecord", "FieldState", "RevertPlan", "RevertResult", "apply_revert",
           "deactivation", "revert", "revert_plan"]

REVERTIBLE_KINDS = ("sync", "revert")
"""Job-log kinds whose writes keep history (couple, match and uncouple runs write none)."""

_CRM_DEACTIVATE: dict[str, dict[str, Any]] = {
    entity: {"statecode": 1, "statuscode": 2}
    for entity in ("accounts", "contacts", "transactioncurrencies", "products", "leads")}
_NAV_BLOCK: dict[str, dict[str, Any]] = {"customers": {"blocked": "All"},
                                         "vendors": {"blocked": "All"},
                                         "items": {"blocked": True}}


class FieldState(StrEnum):
    """What a revert finds for one field the run wrote."""

    REVERT = "revert"
    """Still the value the run wrote: the old value goes back."""
    ALREADY = "already"
    """Back at the old value already (reverted before, or by a person)."""
    CONFLICT = "conflict"
    """Changed since by someone else: held, never overwritten."""


def deactivation(spec: TableMapping, target: Side) -> dict[str, Any] | None:
    """The update that deactivates (CRM) or blocks (BC) a record of ``spec`` on ``target``;
    None when no way is known for its table."""
    if target is Side.CRM:
        return _CRM_DEACTIVATE.get(spec.crm.entity)
    return _NAV_BLOCK.get(spec.nav.entity)


@dataclass(frozen=True)
class CreatedRecord:
    """A record the run created, and what the revert does with it."""

    nav_id: str
    crm_id: str
    target: Side
    how: RevertCreated
    payload: dict[str, Any] | None = None
    problem: str = ""
    done: bool = False
    """Already reverted (its coupling is gone)."""

    @property
    def record_id(self) -> str:
        return self.crm_id if self.target is Side.CRM else self.nav_id

    def to_dict(self) -> dict[str, Any]:
        return {"nav_id": self.nav_id, "crm_id": self.crm_id, "target": self.target.value,
                "how": self.how.value, "already_reverted": self.done, "problem": self.problem}


@dataclass(frozen=True)
class RevertPlan:
    """The reversal of one run: the plan of field reversals and the created records."""

    run_id: int
    mapping: str
    target: Side
    plan: Plan
    created: tuple[CreatedRecord, ...]
    fields: dict[FieldState, int]
    held: tuple[str, ...] = ()
    """One line per held field (record, field, what the run wrote, what it is now)."""

    @property
    def to_create_revert(self) -> list[CreatedRecord]:
        return [c for c in self.created if not c.done and not c.problem]

    @property
    def has_work(self) -> bool:
        """Anything to write or to settle (a base to set counts); held conflicts alone are
        none: applying them would only record them again."""
        held = self.plan.records.filter(pl.col("action").cast(pl.Utf8)
                                        == PlanAction.CONFLICT.value).height
        return bool(self.plan.records.height - held or self.to_create_revert)

    def summary(self) -> str:
        f = self.fields
        done = sum(1 for c in self.created if c.done)
        pending = len(self.to_create_revert)
        stuck = len([c for c in self.created if c.problem and not c.done])
        verb = "deactivate" if not self.created or self.created[0].how is \
            RevertCreated.DEACTIVATE else "delete"
        parts = [f"{f[FieldState.REVERT]} field(s) to revert",
                 f"{f[FieldState.CONFLICT]} held as conflicts (changed since)",
                 f"{f[FieldState.ALREADY]} already reverted"]
        if self.created:
            parts.append(f"{pending} created record(s) to {verb}, {done} already done"
                         + (f", {stuck} with no known way" if stuck else ""))
        head = f"revert of run {self.run_id} ({self.mapping}, {self.target.label}): "
        if not self.has_work:
            return head + "nothing to revert: everything is already reverted or held (" + \
                ", ".join(parts) + ")"
        return head + ", ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "mapping": self.mapping, "target": self.target.value,
                "plan_id": self.plan.metadata.plan_id,
                "fields": {k.value: self.fields.get(k, 0) for k in FieldState},
                "held": list(self.held), "created": [c.to_dict() for c in self.created],
                "nothing_to_do": not self.has_work, "summary": self.summary()}


@dataclass(frozen=True)
class RevertResult:
    """A revert applied: the plan, the apply's report, and the created records handled."""

    revert: RevertPlan
    report: SyncReport
    created_reverted: int = 0
    created_failed: tuple[str, ...] = ()

    def summary(self) -> str:
        lines = [self.revert.summary()]
        if self.report.results:
            lines.append(str(self.report))
        if self.created_reverted or self.created_failed:
            lines.append(f"{self.created_reverted} created record(s) reverted and uncoupled"
                         + "".join(f"\n  failed: {m}" for m in self.created_failed))
        return "\n".join(lines)


# -- building the plan ------------------------------------------------------------------------
def _checked_run(history: HistoryRepository, run_id: int) -> dict[str, Any]:
    """The job-log row of a run that can be reverted; bad input says what to do."""
    run = history.run(run_id)
    if run is None:
        raise PlanError(f"no run {run_id} in this workspace's job log: `nav-crm-ops runs` "
                        "lists the runs (their ids are in the first column)")
    if run["kind"] not in REVERTIBLE_KINDS:
        raise PlanError(f"run {run_id} is a {run['kind']} run: only sync runs (and reverts) "
                        "write records, so only they can be reverted")
    return run


@dataclass
class _Builder:
    """Collects the plan rows of one revert (what :func:`revert_plan` returns)."""

    spec: TableMapping
    target: Side
    records: list[dict[str, Any]] = field(default_factory=list)
    changes: list[dict[str, Any]] = field(default_factory=list)
    counts: dict[FieldState, int] = field(default_factory=lambda: dict.fromkeys(FieldState, 0))
    held: list[str] = field(default_factory=list)

    def change(self, record_id: str, row: dict[str, Any], current: Any, state: FieldState
               ) -> None:
        target, other = self.target.value, self.target.other.value
        self.changes.append({
            "mapping": self.spec.name, "record_id": record_id, "field": row["field"],
            "base_value": row["new_value"], f"{target}_value": current,
            f"{other}_value": None, "changed_side": other if state is FieldState.REVERT else
            ("both" if state is FieldState.CONFLICT else target),
            "target": target if state is FieldState.REVERT else "none",
            "new_value": row["old_value"], "conflict": state is FieldState.CONFLICT,
            "resolution": {FieldState.REVERT: "none", FieldState.CONFLICT: "held",
                           FieldState.ALREADY: "same_value"}[state]})


def _state(row: dict[str, Any], current: Any) -> FieldState:
    if current == row["old_value"]:
        return FieldState.ALREADY
    if current == row["new_value"]:
        return FieldState.REVERT
    return FieldState.CONFLICT


def _current_values(ws: Workspace, spec: TableMapping, target: Side, ids: list[str],
                    names: set[str]) -> tuple[dict[str, dict[str, Any]], dict[str, str | None]]:
    """The target records' current values of ``names`` (canonical, as the plan keeps them,
    before any transformation: what is stored there) and versions, by id."""
    reader = ws._context().readers(spec)[0 if target is Side.NAV else 1]
    raw = pl.concat([reader.by_ids(ids[i:i + 200]) for i in range(0, len(ids), 200)],
                    how="diagonal_relaxed") if ids else reader.empty()
    if not raw.height:
        return {}, {}
    resolver = Resolver(ws.mappings, ws.store, ws.connections)
    side_spec = target.pick(spec.nav, spec.crm)
    key = pl.Series("_id", [str(v).lower() for v in raw.get_column(side_spec.key).to_list()])
    diff_fields = [f for f in spec.diff_fields() if f.name in names]
    by_name = {f.name: f for f in spec.enabled_fields()}
    frame = pl.DataFrame([key, *(_source_value(raw, by_name[f.name], target, spec, resolver)
                                 .cast(pl.Utf8).alias(f.name) for f in diff_fields)])
    values = canonical_frame(frame, diff_fields, key="_id")
    versions = dict(zip(key.to_list(), raw.get_column("@odata.etag").cast(pl.Utf8).to_list()
                        if "@odata.etag" in raw.columns else [None] * raw.height, strict=True))
    return {row.pop("_id"): row for row in values.to_dicts()}, versions


def _plan_updates(ws: Workspace, builder: _Builder, updates: pl.DataFrame) -> None:
    """The field reversals of the run's updated records (module docstring)."""
    spec, target = builder.spec, builder.target
    names = {f.name for f in spec.diff_fields()}
    id_column = target.column("id")
    ids = sorted({str(i) for i in updates[id_column].drop_nulls().to_list()})
    current, versions = _current_values(ws, spec, target, ids, names)
    couplings = ws.store.couplings_frame(spec.name, nav_ids=updates["nav_id"].unique().to_list())
    coupled = {r["nav_id"]: r for r in couplings.to_dicts()}
    for (nav_id,), rows in updates.group_by("nav_id", maintain_order=True):
        _plan_record(builder, str(nav_id), rows.to_dicts(), coupled.get(str(nav_id)),
                     current.get(str(rows[id_column][0]).lower()), versions, names)


def _plan_record(builder: _Builder, nav_id: str, rows: list[dict[str, Any]],
                 coupling: dict[str, Any] | None, current: dict[str, Any] | None,
                 versions: dict[str, str | None], names: set[str]) -> None:
    """One record's field reversals, conflicts and base settlements."""
    target = builder.target
    crm_id = rows[0]["crm_id"]
    label = f"{nav_id} / {crm_id}"
    if coupling is None or current is None or coupling["crm_id"] != crm_id:
        why = "no longer coupled" if current is not None else \
            f"the {target.label} record no longer exists"
        builder.counts[FieldState.CONFLICT] += len(rows)
        builder.held.append(f"{label}: {why}; nothing reverted")
        return
    label = " ".join(str(v) for v in (coupling.get("nav_key"), coupling.get("crm_name") or
                                      coupling.get("nav_name")) if v) or label
    states, held = _plan_fields(builder, nav_id, label, rows, coupling, current, names)
    if not any(states.values()):
        return
    action = PlanAction.UPDATE_CRM if target is Side.CRM else PlanAction.UPDATE_NAV
    if not states[FieldState.REVERT]:
        action = PlanAction.CONFLICT if states[FieldState.CONFLICT] else PlanAction.UNCHANGED
    builder.records.append({
        "mapping": builder.spec.name, "record_id": nav_id, "pair_id": nav_id,
        "nav_id": nav_id, "crm_id": crm_id, **{c: coupling.get(c) for c in (
            "nav_key", "crm_key", "nav_name", "crm_name")}, "action": action.value,
        f"{target.value}_version": versions.get(str(target.pick(nav_id, crm_id)).lower()),
        f"{target.other.value}_version": coupling.get(f"{target.other.value}_etag"),
        "nav_coupled_to": crm_id, "crm_coupled_to": nav_id,
        "message": (f"revert: changed since the run, held: {', '.join(held)}" if held else
                    "revert")})


def _plan_fields(builder: _Builder, nav_id: str, label: str, rows: list[dict[str, Any]],
                 coupling: dict[str, Any], current: dict[str, Any], names: set[str],
                 ) -> tuple[dict[FieldState, int], list[str]]:
    """The field changes of one record: per state, how many enter the plan; the held ones."""
    base = json.loads(coupling.get("base_values") or "{}")
    latest = {r["field"]: r for r in rows}  # one write per field and run: the last wins
    states: dict[FieldState, int] = dict.fromkeys(FieldState, 0)
    held: list[str] = []
    for name, row in latest.items():
        if name not in names:
            builder.held.append(f"{label}: {name} is not a field of the mapping now; "
                                "not reverted")
            builder.counts[FieldState.CONFLICT] += 1
            continue
        state = _state(row, current.get(name))
        builder.counts[state] += 1
        if state is FieldState.ALREADY and base.get(name) == row["old_value"]:
            continue
        if state is FieldState.CONFLICT:
            held.append(name)
            builder.held.append(f"{label}: {name} is {current.get(name)!r} now, not "
                                f"{row['new_value']!r} as the run wrote; held")
        states[state] += 1
        builder.change(nav_id, row, current.get(name), state)
    return states, held


def _plan_created(ws: Workspace, spec: TableMapping, target: Side,
                  created: pl.DataFrame) -> tuple[CreatedRecord, ...]:
    """What becomes of each record the run created (deactivated or deleted; done when its
    coupling is gone already)."""
    how = RevertCreated(spec.on_revert_created)
    column = target.column("id")
    ids = [str(i) for i in created[column].to_list()]
    coupled = ws.store.couplings_frame(spec.name, columns=["nav_id", "crm_id"],
                                       **{f"{column}s": ids})
    still = set(coupled[column].to_list())
    payload = deactivation(spec, target) if how is RevertCreated.DEACTIVATE else None
    problem = "" if how is RevertCreated.DELETE or payload is not None else (
        f"no known way to deactivate a {target.label} {target.pick(spec.nav, spec.crm).entity} "
        f"record: set `on_revert_created: delete` on mapping {spec.name} to delete it, or "
        "deactivate it by hand")
    return tuple(CreatedRecord(str(r["nav_id"]), str(r["crm_id"]), target, how, payload,
                               problem, done=str(r[column]) not in still)
                 for r in created.to_dicts())


def revert_plan(ws: Workspace, run_id: int) -> RevertPlan:
    """The reversal of run ``run_id`` (module docstring); reads the target records now and
    writes nothing."""
    history = HistoryRepository.of(ws.store)
    run = _checked_run(history, run_id)
    rows = history.of_run(run_id)
    if not rows.height:
        raise PlanError(f"run {run_id} ({run['mapping']}, {run['kind']}) wrote nothing that was "
                        "kept: there is nothing to revert (runs applied before this version of "
                        "nav-crm-ops keep no history)")
    spec = ws.mappings.get(run["mapping"])
    target = Direction(run["direction"]).target
    builder = _Builder(spec, target)
    updates = rows.filter(~pl.col("created"))
    if updates.height:
        _plan_updates(ws, builder, updates)
    created = _plan_created(ws, spec, target, rows.filter(pl.col("created"))) \
        if rows["created"].any() else ()
    records = pl.DataFrame(builder.records) if builder.records else \
        pl.DataFrame(schema={"mapping": pl.Utf8, "record_id": pl.Utf8, "action": pl.Utf8})
    changes = pl.DataFrame(builder.changes, infer_schema_length=None) \
        if builder.changes else None
    plan = Plan.create(records, changes, workspace_fingerprint=ws.fingerprint,
                       mappings=[spec.name])
    return RevertPlan(int(run_id), spec.name, target, plan, created, builder.counts,
                      tuple(builder.held))


# -- applying ---------------------------------------------------------------------------------
def _revert_created(ws: Workspace, spec: TableMapping, revert: RevertPlan
                    ) -> tuple[int, list[str]]:
    """Deactivate or delete the created records and remove their couplings, counted in a
    job-log run of kind ``revert``; a record already gone counts as deleted."""
    todo = revert.to_create_revert
    if not todo:
        return 0, []
    target = revert.target
    run_id = ws.store.start_run(spec.name, target.direction, "revert",
                                job_name=f"revert run {revert.run_id}")
    client = (ws.connections.dataverse if target is Side.CRM
              else ws.connections.business_central_for(spec.nav.api))
    entity = target.pick(spec.nav, spec.crm).entity
    ops = [WriteOp.delete(entity, c.record_id) if c.how is RevertCreated.DELETE
           else WriteOp.update(entity, c.record_id, dict(c.payload or {})) for c in todo]
    done, failed = 0, []
    for record, outcome in zip(todo, client.write(ops), strict=True):
        if outcome.ok or (record.how is RevertCreated.DELETE and outcome.status == 404):
            ws.store.uncouple(spec.name, **{target.column("id"): record.record_id})
            done += 1
        else:
            failed.append(f"{target.label} {record.record_id}: {outcome.error or outcome.status}")
    counts = {"deleted" if todo[0].how is RevertCreated.DELETE else "modified": done,
              "uncoupled": done, "failed": len(failed)}
    ws.store.finish_run(run_id, "finished", counts,
                        message="; ".join(failed[:5]) if failed else "")
    return done, failed


def apply_revert(ws: Workspace, revert: RevertPlan, *, progress: Progress | None = None
                 ) -> RevertResult:
    """Apply a revert plan under the mapping's lease: field reversals through the applier
    (job-log runs of kind ``revert``), then the created records."""
    spec = ws.mappings.get(revert.mapping)
    results: list[MappingResult] = []
    with mapping_lease(ws.store, spec.name) as lease:
        if revert.plan.records.height:
            results.append(ws._context().applier().apply_mapping(
                spec, revert.plan, job_name=f"revert run {revert.run_id}",
                progress=lease.keep(progress), kind="revert"))
        done, failed = _revert_created(ws, spec, revert)
    report = ws.after_runs(SyncReport(tuple(results)))
    return RevertResult(revert, report, done, tuple(failed))


def revert(ws: Workspace, run_id: int, *, progress: Progress | None = None) -> RevertResult:
    """Preview the reversal of ``run_id`` and apply it at once."""
    return apply_revert(ws, revert_plan(ws, run_id), progress=progress)

