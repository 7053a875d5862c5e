"""The workspace: the one object notebooks, widgets, jobs and the CLI talk to.

``ws = open_workspace(path)`` reads ``nav_crm_ops.toml``, loads the mappings (defaults merged
with the workspace's files), opens the state store and connects lazily (the first call that
needs a service authenticates). Everything a person does — preview, apply, sync, couple, look
at errors, retry — is a method here; the engine modules do the work.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import polars as pl

from ..config import WorkspaceConfig, load_config
from ..connectors.factory import Connections, connect
from ..exceptions import PlanError, SyncError
from ..store import Coupling, StateStore
from .alerts import with_titles
from .approval_check import refuse_unapproved
from .browse import compare_pairs, pick_records, refuse_unknown_ids
from .conflicts import ConflictChoice, conflict_choices
from .context import EngineContext
from .coupling import MatchResult, couple_records, match_and_couple
from .ids import record_id
from .lease import MappingLease, mapping_lease
from .links import record_links
from .mapping import MappingSet, TableMapping
from .plan import Plan, signed_text
from .progress import CancelToken, Progress
from .related import related_records
from .report import MappingResult, SyncReport
from .sync.applier import Applier
from .sync.followups import follow_up, sync_with_followups, without
from .sync.planner import MappingPlan, Planner, Selection
from .troubleshoot import RetryResult, groups_for_people, labelled_status, retry_outcomes

if TYPE_CHECKING:
    from .notify import AlertCheck
    from .reconcile import Reconciliation

__all__ = ["MatchResult", "Workspace", "open_workspace"]


class Workspace:
    """See the module docstring. Close it (or use ``with``) to release the database."""

    def __init__(self, config: WorkspaceConfig, *, connections: Connections | None = None
                 ) -> None:
        self.config = config
        self.mappings = MappingSet.for_workspace(config)
        self.store = StateStore.open(config.state_url)
        self._connections = connections
        self.last_alerts: AlertCheck | None = None
        """What the alert rules found after the last run (``None`` before one)."""

    # -- plumbing ---------------------------------------------------------------------------------
    @property
    def connections(self) -> Connections:
        if self._connections is None:
            self._connections = connect(self.config)
        return self._connections

    @property
    def fingerprint(self) -> str:
        """Identifies the workspace a plan was made for: name + company + CRM URL + the id of
        its state database (two workspaces alike in everything else hold different couplings,
        so a plan of one would create the other's records again)."""
        return (f"{self.config.workspace.name}|{self.config.erp_company}"
                f"|{self.config.dataverse.url}|{self.store.identity().state_id}")

    def save_plan(self, plan: Plan, path: str | Path) -> Path:
        """Save ``plan`` signed with this workspace's key (only :meth:`load_plan` of this
        workspace accepts it, and only unedited)."""
        return plan.save(path, sign=self.store.identity().sign)

    def load_plan(self, path: str | Path) -> Plan:
        """A saved plan, checked: unedited (digest), made for this workspace (fingerprint) and
        signed by it (its key never leaves the state database). Raises PlanError otherwise."""
        plan = Plan.load(path)
        self._check_workspace(plan)
        if not self.store.identity().verify(signed_text(plan.metadata), plan.metadata.signature):
            raise PlanError(
                f"plan file {path} is not signed by this workspace: it was edited after it was "
                "saved, or saved without the workspace (Plan.save instead of "
                "Workspace.save_plan / `nav-crm-ops preview --out`); preview again")
        return replace(plan, metadata=replace(plan.metadata, verified=True))

    def _check_workspace(self, plan: Plan) -> None:
        made_for = plan.metadata.workspace_fingerprint
        if made_for == self.fingerprint:
            return
        name, _, rest = made_for.partition("|")
        same_looking = made_for.rpartition("|")[0] == self.fingerprint.rpartition("|")[0]
        raise PlanError(
            f"this plan was made for another workspace ({name or 'unnamed'}"
            + (", same name, company and CRM but another state database" if same_looking
               else f", {rest.rpartition('|')[0] or 'unknown company'}")
            + f"), not {self.config.workspace.name}: its couplings differ, so applying it here "
            "could create records twice; preview again in this workspace")

    def _context(self) -> EngineContext:
        """The mappings, state store and connected services the operations work with."""
        return EngineContext(self.mappings, self.store, self.connections,
                             self.config.dataverse.ignore_own_changes)

    def _planner(self) -> Planner:
        return self._context().planner()

    def _applier(self) -> Applier:
        return self._context().applier()

    def _requests(self) -> int:
        return self._context().requests()

    def _names(self, mappings: str | Sequence[str] | None) -> list[str]:
        if mappings is None:
            return self.mappings.dependency_order()
        names = [mappings] if isinstance(mappings, str) else list(mappings)
        return self.mappings.dependency_order(names)

    def close(self) -> None:
        if self._connections is not None:
            for client in (self._connections.dataverse, self._connections.business_central,
                           self._connections.business_central_custom):
                client.close()
        self.store.close()

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Workspace {self.config.workspace.name!r} at {self.config.root}>"

    # -- preview and apply ---------------------------------------------------------------------------
    def preview(self, mappings: str | Sequence[str] | None = None, *,
                progress: Progress | None = None, cancel: CancelToken | None = None) -> Plan:
        """What a sync of ``mappings`` (all when None) would do, in dependency order. Reads
        both services; writes nothing anywhere."""
        planner = self._planner()
        parts = [planner.plan(self.mappings.get(name), progress=progress, cancel=cancel)
                 for name in self._names(mappings)]
        return self._plan(self._names(mappings), parts)

    def _plan(self, names: list[str], parts: list[MappingPlan]) -> Plan:
        records = pl.concat([p.records for p in parts], how="diagonal_relaxed") if parts else \
            pl.DataFrame(schema={"mapping": pl.Utf8, "record_id": pl.Utf8, "action": pl.Utf8})
        changes = pl.concat([p.field_changes for p in parts], how="diagonal_relaxed") \
            if parts else None
        marks = {name: part.watermarks for name, part in zip(names, parts, strict=True)
                 if part.watermarks}
        return Plan.create(records, changes, workspace_fingerprint=self.fingerprint,
                           watermarks=marks, mappings=names)

    def apply(self, plan: Plan, *, progress: Progress | None = None,
              cancel: CancelToken | None = None, job_name: str = "") -> SyncReport:
        """Carry out the included records of ``plan`` (mappings in dependency order).

        The plan must be this workspace's (its fingerprint) and, when read from a file, loaded
        with :meth:`load_plan` (signature checked). Every record is compared with what the
        preview saw — its coupling, and its version on both sides read again — and refused
        when it changed since (``engine.freshness``): a plan is as safe later as it is now.
        A plan an approval-mode job saved is refused unless that job applies it approved
        (``engine.approval_check``)."""
        self._check_workspace(plan)
        if not plan.metadata.verified:
            raise PlanError("this plan was read from a file without checking its signature: "
                            "load it with Workspace.load_plan(path) (or `nav-crm-ops sync "
                            "--plan FILE`), which refuses edited and foreign plans")
        refuse_unapproved(self.store.approvals, plan.metadata.plan_id, job_name)
        return self._apply(plan, plan.metadata.mappings, progress=progress, cancel=cancel,
                           job_name=job_name, recheck=True)

    def _apply(self, plan: Plan, names: Iterable[str], *, progress: Progress | None,
               cancel: CancelToken | None, job_name: str,
               preview_requests: dict[str, int] | None = None,
               recheck: bool = False) -> SyncReport:
        applier = self._applier()
        results: list[MappingResult] = []
        for name in self.mappings.dependency_order(names):
            with self._lease(name) as lease:
                result = applier.apply_mapping(
                    self.mappings.get(name), plan, job_name=job_name,
                    progress=lease.keep(progress),
                    cancel=cancel, preview_requests=(preview_requests or {}).get(name, 0),
                    recheck_versions=recheck)
            results.append(result)
            if result.status == "cancelled":
                break
        return self.after_runs(SyncReport(tuple(results)))

    def _lease(self, mapping: str) -> MappingLease:
        return mapping_lease(self.store, mapping)

    def sync(self, mapping: str, *, progress: Progress | None = None,
             cancel: CancelToken | None = None, job_name: str = "") -> SyncReport:
        """Preview and apply one mapping now (holding its lease throughout)."""
        return self.sync_all([mapping], progress=progress, cancel=cancel, job_name=job_name)

    def sync_all(self, mappings: Sequence[str] | None = None, *,
                 progress: Progress | None = None, cancel: CancelToken | None = None,
                 job_name: str = "") -> SyncReport:
        """Preview and apply each mapping in dependency order (all when None). A mapping
        that created records in BC is planned once more at once, so values that only exist
        after the create (numbers BC assigns) reach CRM in the same run."""
        report = SyncReport()
        for name in self._names(mappings):
            mapping = self.mappings.get(name)
            with self._lease(name) as lease:
                keep = lease.keep(progress)

                def once(retry: bool, leave_out: set[str] | None, mapping: TableMapping = mapping,
                         keep: Progress = keep) -> MappingResult:
                    return self._sync_one(mapping, None, keep, cancel, job_name, retry=retry,
                                          leave_out=leave_out)

                def step(mapping: TableMapping = mapping) -> MappingResult | None:
                    return follow_up(self.mappings, self.store, self.connections, mapping,
                                     job_name)

                result = sync_with_followups(mapping, self.store, once, step)
            report = report + SyncReport((result,))
            if result.status == "cancelled":
                break
        return self.after_runs(report)

    def _sync_one(self, mapping: TableMapping, selection: Selection | None,
                  progress: Progress | None, cancel: CancelToken | None,
                  job_name: str, *, retry: bool = True,
                  leave_out: set[str] | None = None) -> MappingResult:
        """Preview and apply one mapping; ``leave_out`` drops records (by NAV or CRM id) that
        this sync already tried, so a follow-up pass never counts a failure twice."""
        before = self._requests()
        part = self._planner().plan(mapping, selection, retry=retry, progress=progress,
                                    cancel=cancel)
        plan = self._plan([mapping.name], [without(part, leave_out or ())])
        return self._applier().apply_mapping(
            mapping, plan, job_name=job_name, progress=progress, cancel=cancel,
            preview_requests=self._requests() - before)

    def conflict_choices(self, plan: Plan, mapping: str, record_id: str
                         ) -> tuple[ConflictChoice, ...]:
        """How a held conflict record of ``plan`` can be resolved (keep BC / keep CRM), each
        choice saying field by field what it writes (``engine.conflicts``)."""
        spec = self.mappings.get(mapping)
        mine = (pl.col("mapping") == mapping) & (pl.col("record_id") == record_id)
        found = plan.records.filter(mine)
        if found.height == 0:
            raise PlanError(f"mapping {spec.name}: record {record_id} is not in this plan")
        return conflict_choices(spec, found.row(0, named=True), plan.field_changes.filter(mine))

    def resolve_conflict(self, choice: ConflictChoice, *,
                         progress: Progress | None = None) -> SyncReport:
        """Carry out a :meth:`conflict_choices` choice now: synchronize the one pair with the
        kept side's values (``sync_now`` with the forced direction)."""
        ids = {"nav_ids": [choice.nav_id]} if choice.direction == "to_crm" else \
            {"crm_ids": [choice.crm_id]}
        return self.sync_now(choice.mapping, direction=choice.direction, progress=progress,
                             **ids)

    def has_changes(self, mapping: str) -> bool:
        """Whether either side changed since ``mapping``'s watermarks (at most one request per
        side); the job queue uses it to wake jobs on hold for inactivity."""
        return self._planner().has_changes(self.mappings.get(mapping))

    # -- coupling ----------------------------------------------------------------------------------
    def couple(self, mapping: str, nav_id: str, crm_id: str) -> Coupling:
        """Couple two existing records (both are read first; a CRM record coupled to another
        record is refused). The next sync compares them field by field."""
        return couple_records(self._context(), self.mappings.get(mapping), nav_id, crm_id)

    def uncouple(self, mapping: str, *, nav_id: str | None = None,
                 crm_id: str | None = None) -> int:
        spec = self.mappings.get(mapping)
        count = self.store.uncouple(spec.name, nav_id=nav_id and record_id(nav_id),
                                    crm_id=crm_id and record_id(crm_id))
        run = self.store.start_run(spec.name, spec.directions[0], "uncouple")
        self.store.finish_run(run, "finished", {"uncoupled": count})
        return count

    def match_couple(self, mapping: str, *, create: bool = False, apply: bool = True
                     ) -> MatchResult:
        """Match uncoupled records of both sides on the mapping's match fields.

        ``apply=False`` only reports (matched / unmatched / ambiguous); ``apply=True`` couples
        the matches; ``create=True`` also creates the unmatched records on the other side
        (where the mapping's direction allows) and couples them."""
        return match_and_couple(self._context(), self.mappings.get(mapping), create=create,
                                apply=apply, sync_selection=self._sync_selection)

    def _sync_selection(self, mapping: TableMapping, selection: Selection,
                        progress: Progress | None = None,
                        cancel: CancelToken | None = None) -> SyncReport:
        with self._lease(mapping.name) as lease:
            return SyncReport((self._sync_one(mapping, selection, lease.keep(progress), cancel,
                                              ""),))

    def sync_now(self, mapping: str, *, nav_ids: Sequence[str] = (), crm_ids: Sequence[str] = (),
                 direction: Literal["to_crm", "from_crm"] | None = None,
                 progress: Progress | None = None) -> SyncReport:
        """Synchronize the selected records now. With ``direction`` the source side's values
        overwrite the other side for every field that may flow that way; without it the
        three-way merge decides (as a scheduled sync would)."""
        spec = self.mappings.get(mapping)
        if direction is not None and direction not in spec.directions:
            raise SyncError(f"mapping {spec.name} synchronizes {spec.direction}; direction "
                            f"{direction!r} is not allowed (valid: {list(spec.directions)})")
        if not nav_ids and not crm_ids:
            raise SyncError("select at least one record (nav_ids or crm_ids)")
        selection = Selection(tuple(record_id(i) for i in nav_ids),
                              tuple(record_id(i) for i in crm_ids), direction)
        refuse_unknown_ids(self._context(), spec, selection)
        return self._sync_selection(spec, selection, progress).with_skipped_totals(self.store)

    def reconcile(self, mapping: str, *, heal: str = "report",
                  progress: Progress | None = None) -> Reconciliation:
        """Compare every coupled pair now, store the result, evaluate the alerts; ``heal``
        ``plan`` / ``apply`` plans (and applies) the drift (``engine.reconcile``)."""
        from .reconcile import HealMode, Reconciler

        done = Reconciler(self._context(), self.mappings.get(mapping), self.fingerprint).run(
            HealMode(heal), apply=self.apply, progress=progress)
        self.after_runs(SyncReport())
        return done

    # -- alerts (engine.alerts, docs/alerts.md) --------------------------------------------------
    def after_runs(self, report: SyncReport) -> SyncReport:
        """Evaluate the alert rules after a run (``last_alerts`` keeps what they found)."""
        for result in report.results:
            self.store.runs.link_sync(result.run_ids)
        if self.config.alerts.enabled:
            self.last_alerts = self.check_alerts()
        return report

    def check_alerts(self, *, now: datetime | None = None) -> AlertCheck:
        """Evaluate every alert rule now, record what holds, send the alerts raised."""
        from .notify import check_workspace_alerts

        return check_workspace_alerts(self.config, self.store, now=now)

    def alerts(self, *, state: str | None = "open", limit: int = 200) -> pl.DataFrame:
        """Alerts newest first (open ones; ``state=None``: all), with each rule's ``title``."""
        return with_titles(self.store.alerts.frame(state=state, limit=limit))

    # -- logs and failed records ---------------------------------------------------------------------
    def runs(self, mapping: str | None = None, limit: int = 200) -> pl.DataFrame:
        return self.store.runs_frame(mapping, limit=limit)

    def errors(self, mapping: str | None = None, *, run_id: int | None = None,
               normalized_message: str | None = None, source_id: str | None = None
               ) -> pl.DataFrame:
        return self.store.record_errors_frame(mapping, run_id=run_id,
                                              normalized_message=normalized_message,
                                              source_id=source_id)

    def error_groups(self, mapping: str | None = None) -> pl.DataFrame:
        """Errors by cause: ``count``, ``records`` (distinct), example records by name,
        ``advice`` and ``remedy`` (``engine.troubleshoot.groups_for_people``)."""
        return groups_for_people(self.store, mapping)

    def failed_records(self, mapping: str | None = None) -> pl.DataFrame:
        """Records in the retry pass (failed, conflict) and skipped ones, with the reason,
        ``record`` (number and name) and ``advice``."""
        return labelled_status(self.store, mapping)

    def retry(self, mapping: str | None = None, source_ids: Sequence[str] | None = None,
              *, progress: Progress | None = None) -> SyncReport:
        """Synchronize failed records now (not skipped ones: :meth:`unskip` them first)."""
        report = SyncReport()
        names = self._names(mapping) if mapping else self.mappings.dependency_order()
        for name in names:
            spec = self.mappings.get(name)
            status = self.store.record_status_frame(spec.name, states=["failed", "conflict"])
            if source_ids is not None:
                status = status.filter(pl.col("source_id").is_in([record_id(i) for i in source_ids]))
            if status.height == 0:
                continue
            nav_ids = tuple(status.filter(pl.col("direction") == "to_crm")["source_id"])
            crm_ids = tuple(status.filter(pl.col("direction") == "from_crm")["source_id"])
            report = report + self._sync_selection(spec, Selection(nav_ids, crm_ids), progress)
        return report

    def retry_records(self, mapping: str, source_ids: Sequence[str], *, unskip: bool = False,
                      progress: Progress | None = None) -> RetryResult:
        """Retry the selected records of one mapping and say what became of each (done,
        failed again with the new message, ...). Skipped records are retried only with
        ``unskip`` (they are put back into the retry pass first); otherwise their outcome
        says so — a retry never reports "done" for a record it left alone."""
        spec = self.mappings.get(mapping)
        ids = [record_id(i) for i in source_ids]
        chosen = pl.col("source_id").is_in(ids)
        before = labelled_status(self.store, spec.name).filter(chosen)
        skipped = before.filter(pl.col("state") == "skipped")["source_id"].to_list()
        if unskip and skipped:
            self.store.unskip(spec.name, skipped)
            before = labelled_status(self.store, spec.name).filter(chosen)
        retried = ids if unskip else [i for i in ids if i not in set(skipped)]
        report = self.retry(spec.name, retried, progress=progress) if retried else SyncReport()
        after = self.store.record_status_frame(spec.name).filter(chosen)
        return RetryResult(report, retry_outcomes(before, after, retried_skipped=unskip))

    def unskip(self, mapping: str, source_ids: Sequence[str] | None = None) -> int:
        """Put skipped records back into the retry pass; returns how many."""
        spec = self.mappings.get(mapping)
        return self.store.unskip(spec.name, None if source_ids is None
                                 else [record_id(i) for i in source_ids])

    def compare(self, mapping: str) -> pl.DataFrame:
        """Coupled pairs whose mapped values differ right now (reads both sides in full):
        ``nav_id``, ``crm_id``, ``nav_key``, ``field``, ``nav_value``, ``crm_value``. Empty when
        the two sides agree on every enabled field (create-only fields excepted, and
        ``not_null`` fields whose source is empty: the engine leaves those on purpose)."""
        return compare_pairs(self._context(), self.mappings.get(mapping))

    # -- records and links -------------------------------------------------------------------------
    def records(self, mapping: str, side: Literal["nav", "crm"], search: str | None = None,
                top: int = 50) -> pl.DataFrame:
        """Records of one side for people to pick from: id, key, the mapped fields, and the
        coupled partner's id (``coupled_to``). ``search`` looks in the key and name fields."""
        return pick_records(self._context(), self.mappings.get(mapping), side, search, top)

    def related_records(self, account_id: str, *, top: int = 50) -> dict[str, pl.DataFrame]:
        """A CRM account's opportunities, cases and quotes (title -> at most ``top`` rows)."""
        return related_records(self.connections.dataverse, account_id, top=top)

    def record_links(self, mapping: str, *, nav_id: str | None = None,
                     crm_id: str | None = None) -> dict[str, str]:
        """Links that open the records in Business Central and in Dynamics 365 Sales (see
        ``engine.links``)."""
        return record_links(self.config, self.mappings.get(mapping), nav_id=nav_id,
                            crm_id=crm_id)


def open_workspace(path: str | Path = ".") -> Workspace:
    """Open the workspace in folder ``path`` (or the ``nav_crm_ops.toml`` file itself)."""
    return Workspace(load_config(Path(path)))

