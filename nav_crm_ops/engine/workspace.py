"""The workspace: the one object notebooks, widgets, jobs and the CLI talk to.

``ws = open_workspace(path)`` reads ``nav_crm_ops.toml``, loads the mappings (defaults merged
with the workspace's files), opens the state store and connects lazily (the first call that
needs a service authenticates). Everything a person does — preview, apply, sync, couple, look
at errors, retry — is a method here; the engine modules do the work.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal
from urllib.parse import quote

import polars as pl

from ..config import WorkspaceConfig, load_config
from ..connectors.factory import Connections, connect
from ..connectors.odata import F, any_of
from ..exceptions import LeaseHeldError, PlanError, StateStoreError, SyncError
from ..store import Coupling, StateStore, default_holder
from .applier import Applier
from .mapping import MappingSet, TableMapping
from .matching import MATCH_SCHEMA, match_records
from .order_status import SalesOrderFollowUp
from .plan import Plan, signed_text
from .planner import MappingPlan, Planner, Selection
from .progress import CancelToken, Progress, ProgressEvent
from .related import related_records
from .report import MappingResult, SyncReport
from .resolve import Resolver
from .sides import field_frame

__all__ = ["MatchResult", "Workspace", "open_workspace"]

LEASE_TTL_S = 15 * 60.0


@dataclass(frozen=True)
class MatchResult:
    """Match-based coupling of one mapping: one row per uncoupled record of either side.

    ``frame`` columns: ``source_side``, ``source_id``, ``source_key``, ``status`` (matched,
    unmatched, ambiguous; after apply also ``coupled``, and ``created`` with create=True),
    ``other_id``, ``message``.
    """

    mapping: str
    frame: pl.DataFrame
    report: SyncReport = field(default_factory=SyncReport)

    @property
    def counts(self) -> dict[str, int]:
        found = self.frame.group_by("status").len()
        return {str(s): int(n) for s, n in found.iter_rows()}


class Workspace:
    """See the module docstring. Close it (or use ``with``) to release the database."""

    def __init__(self, config: WorkspaceConfig, *, connections: Connections | None = None
                 ) -> None:
        self.config = config
        self.mappings = MappingSet.for_workspace(config)
        self.store = StateStore.open(config.state_url)
        self._connections = connections

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
        bc = self.config.business_central
        return (f"{self.config.workspace.name}|{bc.company_id}|{self.config.dataverse.url}"
                f"|{self.store.identity().state_id}")

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

    def _planner(self) -> Planner:
        return Planner(self.mappings, self.store, self.connections,
                       ignore_own_changes=self.config.dataverse.ignore_own_changes)

    def _applier(self) -> Applier:
        return Applier(self.mappings, self.store, self.connections)

    def _requests(self) -> int:
        c = self.connections
        return sum(x.stats.requests for x in (c.dataverse, c.business_central,
                                              c.business_central_custom))

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
        when it changed since (``engine.freshness``): a plan is as safe later as it is now."""
        self._check_workspace(plan)
        if not plan.metadata.verified:
            raise PlanError("this plan was read from a file without checking its signature: "
                            "load it with Workspace.load_plan(path) (or `nav-crm-ops sync "
                            "--plan FILE`), which refuses edited and foreign plans")
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
        return SyncReport(tuple(results))

    def _lease(self, mapping: str) -> _Lease:
        return _Lease(self.store, f"mapping:{mapping.upper()}", default_holder(f"sync {mapping}"))

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
                result = self._sync_one(mapping, None, lease.keep(progress), cancel, job_name)
                if result.status != "cancelled" and self._created_in_bc(result) and \
                        "to_crm" in mapping.directions:
                    tried = self.store.record_status_frame(mapping.name).filter(
                        pl.col("run_id").is_in(list(result.run_ids)))["source_id"].to_list()
                    follow = self._sync_one(mapping, None, lease.keep(progress), cancel, job_name,
                                            retry=False, leave_out=set(tried))
                    result = _merged(result, follow)
                if result.status != "cancelled" and mapping.follow_up == "sales_order_status":
                    result = _merged(result, SalesOrderFollowUp(
                        self.mappings, self.store, self.connections).run(
                        mapping, job_name=job_name))
            report = report + SyncReport((result,))
            if result.status == "cancelled":
                break
        return report

    def _created_in_bc(self, result: MappingResult) -> bool:
        runs = self.store.runs_frame(result.mapping, limit=10)
        created = runs.filter(pl.col("id").is_in(list(result.run_ids))
                              & (pl.col("direction") == "from_crm") & (pl.col("inserted") > 0))
        return created.height > 0

    def _sync_one(self, mapping: TableMapping, selection: Selection | None,
                  progress: Progress | None, cancel: CancelToken | None,
                  job_name: str, *, retry: bool = True,
                  leave_out: set[str] | None = None) -> MappingResult:
        """Preview and apply one mapping; ``leave_out`` drops records (by NAV or CRM id) that
        this sync already tried, so a follow-up pass never counts a failure twice."""
        before = self._requests()
        part = self._planner().plan(mapping, selection, retry=retry, progress=progress,
                                    cancel=cancel)
        if leave_out:
            ids = list(leave_out)
            dropped = pl.col("nav_id").is_in(ids) | pl.col("crm_id").is_in(ids)
            kept = part.records.filter(~dropped.fill_null(False))
            part = MappingPlan(kept, part.field_changes.join(
                kept.select("record_id"), on="record_id", how="semi"), part.watermarks)
        plan = self._plan([mapping.name], [part])
        return self._applier().apply_mapping(
            mapping, plan, job_name=job_name, progress=progress, cancel=cancel,
            preview_requests=self._requests() - before)

    def has_changes(self, mapping: str) -> bool:
        """Whether either side changed since ``mapping``'s watermarks (at most one request per
        side); the job queue uses it to wake jobs on hold for inactivity."""
        return self._planner().has_changes(self.mappings.get(mapping))

    # -- coupling ----------------------------------------------------------------------------------
    def couple(self, mapping: str, nav_id: str, crm_id: str) -> Coupling:
        """Couple two existing records (both are read first; a CRM record coupled to another
        record is refused). The next sync compares them field by field."""
        spec = self.mappings.get(mapping)
        planner = self._planner()
        nav_reader, crm_reader = planner.readers(spec)
        nav = nav_reader.by_ids([nav_id])
        crm = crm_reader.by_ids([crm_id])
        if nav.height == 0:
            raise SyncError(f"mapping {spec.name}: BC {spec.nav.entity} record {nav_id} does "
                            "not exist; check the id")
        if crm.height == 0:
            raise SyncError(f"mapping {spec.name}: CRM {spec.crm.logical_name} record {crm_id} "
                            "does not exist; check the id")
        nav_key = nav.get_column(spec.nav.natural_key).item(0) if spec.nav.natural_key else None
        crm_key = crm.get_column(spec.crm.natural_key).item(0) if spec.crm.natural_key else None
        try:
            coupling = self.store.couple(spec.name, nav_id.lower(), crm_id.lower(),
                                         nav_key=None if nav_key is None else str(nav_key),
                                         crm_key=None if crm_key is None else str(crm_key))
        except StateStoreError as error:
            raise SyncError(str(error)) from None
        run = self.store.start_run(spec.name, spec.directions[0], "couple")
        self.store.finish_run(run, "finished", {"coupled": 1},
                              message=f"coupled BC {nav_id} with CRM {crm_id}")
        return coupling

    def uncouple(self, mapping: str, *, nav_id: str | None = None,
                 crm_id: str | None = None) -> int:
        spec = self.mappings.get(mapping)
        count = self.store.uncouple(spec.name, nav_id=nav_id and nav_id.lower(),
                                    crm_id=crm_id and crm_id.lower())
        run = self.store.start_run(spec.name, spec.directions[0], "uncouple")
        self.store.finish_run(run, "finished", {"uncoupled": count})
        return count

    def match_couple(self, mapping: str, *, create: bool = False, apply: bool = True
                     ) -> MatchResult:
        """Match uncoupled records of both sides on the mapping's match fields.

        ``apply=False`` only reports (matched / unmatched / ambiguous); ``apply=True`` couples
        the matches; ``create=True`` also creates the unmatched records on the other side
        (where the mapping's direction allows) and couples them."""
        spec = self.mappings.get(mapping)
        planner = self._planner()
        resolver = Resolver(self.mappings, self.store, self.connections)
        nav_reader, crm_reader = planner.readers(spec)
        couplings = self.store.couplings_frame(spec.name)
        nav = field_frame(nav_reader.changed(None, planner.overlap), spec, "nav", resolver)
        crm = field_frame(crm_reader.changed(None, planner.overlap), spec, "crm", resolver)
        nav = nav.filter(~pl.col("_id").is_in(couplings["nav_id"].to_list()))
        crm = crm.filter(~pl.col("_id").is_in(couplings["crm_id"].to_list()))
        frame = match_records(spec, nav, crm) if nav.height or crm.height else pl.DataFrame(
            schema=MATCH_SCHEMA)
        if not apply:
            return MatchResult(spec.name, frame)
        matched = frame.filter((pl.col("status") == "matched") & (pl.col("source_side") == "nav"))
        keys_nav = dict(nav.select("_id", "_key").iter_rows())
        keys_crm = dict(crm.select("_id", "_key").iter_rows())
        rows = [{"nav_id": n, "crm_id": c, "nav_key": keys_nav.get(n), "crm_key": keys_crm.get(c)}
                for n, c in matched.select("source_id", "other_id").iter_rows()]
        self.store.upsert_couplings(spec.name, rows)
        run = self.store.start_run(spec.name, spec.directions[0], "match")
        counts = {"coupled": len(rows),
                  "failed": frame.filter(pl.col("status") == "ambiguous").height}
        self.store.finish_run(run, "finished", counts,
                              message=f"{len(rows)} coupled by matching")
        frame = frame.with_columns(pl.when(pl.col("status") == "matched")
                                   .then(pl.lit("coupled")).otherwise(pl.col("status"))
                                   .alias("status"))
        report = SyncReport()
        if create:
            frame, report = self._create_unmatched(spec, frame)
        return MatchResult(spec.name, frame, report)

    def _create_unmatched(self, spec: TableMapping, frame: pl.DataFrame
                          ) -> tuple[pl.DataFrame, SyncReport]:
        """Create the unmatched records of ``frame`` on the other side (where the direction
        allows) and couple them. A record that could not be created becomes ``failed`` with
        the reason (``not created: <the error>``), not "no record matches"."""
        unmatched = frame.filter(pl.col("status") == "unmatched")
        nav_ids = tuple(unmatched.filter(pl.col("source_side") == "nav")["source_id"]) \
            if "to_crm" in spec.directions else ()
        crm_ids = tuple(unmatched.filter(pl.col("source_side") == "crm")["source_id"]) \
            if "from_crm" in spec.directions else ()
        if not nav_ids and not crm_ids:
            return frame, SyncReport()
        report = self._sync_selection(spec, Selection(nav_ids, crm_ids)).with_skipped_totals(
            self.store)
        tried = [*nav_ids, *crm_ids]
        reasons = self.store.record_status_frame(spec.name).filter(
            pl.col("source_id").is_in(tried)).unique("source_id", keep="last").select(
            "source_id", pl.concat_str(pl.lit("not created: "), pl.col("message").fill_null(
                "see `nav-crm-ops errors`")).alias("__reason"))
        frame = frame.join(reasons, on="source_id", how="left")
        is_tried = pl.col("source_id").is_in(tried)
        return frame.with_columns(
            pl.when(is_tried & pl.col("__reason").is_not_null()).then(pl.lit("failed"))
            .when(is_tried).then(pl.lit("created")).otherwise(pl.col("status")).alias("status"),
            pl.coalesce("__reason", "message").alias("message"),
        ).drop("__reason"), report

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
        selection = Selection(tuple(i.lower() for i in nav_ids),
                              tuple(i.lower() for i in crm_ids), direction)
        self._refuse_unknown_ids(spec, selection)
        return self._sync_selection(spec, selection, progress).with_skipped_totals(self.store)

    def _refuse_unknown_ids(self, spec: TableMapping, selection: Selection) -> None:
        """Refuse (naming them) selected ids that are neither coupled in ``spec`` nor exist
        on their side; a coupled record that is gone is a deletion the sync handles."""
        couplings = self.store.couplings_frame(spec.name)
        nav_reader, crm_reader = self._planner().readers(spec)
        missing: list[str] = []
        for ids, reader, coupled, what in (
                (selection.nav_ids, nav_reader, "nav_id", f"BC {spec.nav.entity}"),
                (selection.crm_ids, crm_reader, "crm_id", f"CRM {spec.crm.logical_name}")):
            known = set(couplings[coupled].to_list())
            unknown = [i for i in dict.fromkeys(ids) if i not in known]
            if not unknown:
                continue
            found = reader.by_ids(unknown)
            present = {str(v).lower() for v in found[reader.key]} if found.height else set()
            missing += [f"{what} {i}" for i in unknown if i not in present]
        if missing:
            raise SyncError(f"mapping {spec.name}: no such record(s): {', '.join(missing)}; "
                            "check the ids (nothing was synchronized)")

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
        return self.store.error_groups(mapping)

    def failed_records(self, mapping: str | None = None) -> pl.DataFrame:
        """Records in the retry pass (failed, conflict) and skipped ones, with the reason."""
        return self.store.record_status_frame(mapping)

    def retry(self, mapping: str | None = None, source_ids: Sequence[str] | None = None,
              *, progress: Progress | None = None) -> SyncReport:
        """Synchronize failed records now (not skipped ones: :meth:`unskip` them first)."""
        report = SyncReport()
        names = self._names(mapping) if mapping else self.mappings.dependency_order()
        for name in names:
            spec = self.mappings.get(name)
            status = self.store.record_status_frame(spec.name, states=["failed", "conflict"])
            if source_ids is not None:
                status = status.filter(pl.col("source_id").is_in([i.lower() for i in source_ids]))
            if status.height == 0:
                continue
            nav_ids = tuple(status.filter(pl.col("direction") == "to_crm")["source_id"])
            crm_ids = tuple(status.filter(pl.col("direction") == "from_crm")["source_id"])
            report = report + self._sync_selection(spec, Selection(nav_ids, crm_ids), progress)
        return report

    def unskip(self, mapping: str, source_ids: Sequence[str] | None = None) -> int:
        """Put skipped records back into the retry pass; returns how many."""
        spec = self.mappings.get(mapping)
        return self.store.unskip(spec.name, None if source_ids is None
                                 else [i.lower() for i in source_ids])

    def compare(self, mapping: str) -> pl.DataFrame:
        """Coupled pairs whose mapped values differ right now (reads both sides in full):
        ``nav_id``, ``crm_id``, ``nav_key``, ``field``, ``nav_value``, ``crm_value``. Empty when
        the two sides agree on every enabled field (create-only fields excepted, and
        ``not_null`` fields whose source is empty: the engine leaves those on purpose)."""
        spec = self.mappings.get(mapping)
        planner = self._planner()
        resolver = Resolver(self.mappings, self.store, self.connections)
        nav_reader, crm_reader = planner.readers(spec)
        couplings = self.store.couplings_frame(spec.name).select("nav_id", "crm_id")
        nav = field_frame(nav_reader.by_ids(couplings["nav_id"].to_list()), spec, "nav", resolver)
        crm = field_frame(crm_reader.by_ids(couplings["crm_id"].to_list()), spec, "crm", resolver)
        fields = spec.diff_fields()
        joined = couplings.join(nav.rename({f.name: f"nav:{f.name}" for f in fields}),
                                left_on="nav_id", right_on="_id", how="inner").join(
            crm.select("_id", *[pl.col(f.name).alias(f"crm:{f.name}") for f in fields]),
            left_on="crm_id", right_on="_id", how="inner")
        parts = []
        for fld in fields:
            left, right = pl.col(f"nav:{fld.name}"), pl.col(f"crm:{fld.name}")
            if fld.kind == "text" and not fld.case_sensitive:
                left, right = left.str.to_lowercase(), right.str.to_lowercase()
            differs = ~left.eq_missing(right)
            spec_field = spec.field(fld.name)
            if spec_field.not_null and fld.direction != "bidirectional":
                source = pl.col(f"nav:{fld.name}" if fld.direction == "to_crm"
                                else f"crm:{fld.name}")
                differs = differs & source.is_not_null()
            parts.append(joined.filter(differs).select(
                "nav_id", "crm_id", pl.col("_key").alias("nav_key"),
                pl.lit(fld.name).alias("field"),
                pl.col(f"nav:{fld.name}").alias("nav_value"),
                pl.col(f"crm:{fld.name}").alias("crm_value")))
        return pl.concat(parts) if parts else pl.DataFrame()

    # -- records and links -------------------------------------------------------------------------
    def records(self, mapping: str, side: Literal["nav", "crm"], search: str | None = None,
                top: int = 50) -> pl.DataFrame:
        """Records of one side for people to pick from: id, key, the mapped fields, and the
        coupled partner's id (``coupled_to``). ``search`` looks in the key and name fields."""
        spec = self.mappings.get(mapping)
        nav_reader, crm_reader = self._planner().readers(spec)
        reader = nav_reader if side == "nav" else crm_reader
        if search:
            columns = self._search_columns(spec, side)
            if side == "crm":
                raw = reader.client.read(reader.entity, select=reader.select, top=top, etag=True,
                                         filter=any_of([F(c).contains(search) for c in columns]))
            else:
                # Business Central refuses `or` across different fields: one read per field.
                found = [reader.client.read(reader.entity, select=reader.select, top=top,
                                            etag=True, filter=F(c).contains(search))
                         for c in columns]
                raw = pl.concat([f for f in found if f.height] or found[:1],
                                how="diagonal_relaxed").unique(
                    subset=[reader.key], keep="first", maintain_order=True).head(top)
        else:
            raw = reader.client.read(reader.entity, select=reader.select, top=top, etag=True)
        frame = field_frame(raw, spec, side, Resolver(self.mappings, self.store,
                                                      self.connections))
        couplings = self.store.couplings_frame(spec.name)
        own, other = ("nav_id", "crm_id") if side == "nav" else ("crm_id", "nav_id")
        partners = couplings.select(pl.col(own).alias("_id"), pl.col(other).alias("coupled_to"))
        return frame.join(partners, on="_id", how="left").rename(
            {"_id": "id", "_key": "key", "_version": "version", "_modified": "modified"})

    @staticmethod
    def _search_columns(spec: TableMapping, side: Literal["nav", "crm"]) -> list[str]:
        natural = spec.nav.natural_key if side == "nav" else spec.crm.natural_key
        names = [natural] if natural else []
        for _, fields in spec.match_groups():
            for fld in fields:
                if fld.lookup is None and fld.options is None:
                    names.append(fld.nav if side == "nav" else fld.crm)
        return list(dict.fromkeys(names))

    def related_records(self, account_id: str, *, top: int = 50) -> dict[str, pl.DataFrame]:
        """A CRM account's opportunities, cases and quotes (title -> at most ``top`` rows)."""
        return related_records(self.connections.dataverse, account_id, top=top)

    def record_links(self, mapping: str, *, nav_id: str | None = None,
                     crm_id: str | None = None) -> dict[str, str]:
        """Links that open the records in Business Central and in Dynamics 365 Sales.

        Business Central: ``<web client>/?company=<name>&page=<card page>&filter='SystemId'
        IS '<id>'`` (the web client is ``business_central.web_client_url`` or derived from an
        online API URL); Dynamics 365: ``<org>/main.aspx?etn=<logical name>
        &pagetype=entityrecord&id=<guid>``."""
        spec = self.mappings.get(mapping)
        links: dict[str, str] = {}
        bc = self.config.business_central
        web_client = bc.web_client_url or _bc_web_client(bc.api_url)
        if nav_id and web_client:
            query = f"company={quote(bc.company_name)}"
            page = _BC_PAGES.get(spec.nav.entity)
            if page:
                system_id = f"'SystemId' IS '{nav_id}'"
                query += f"&page={page}&filter={quote(system_id)}"
            links["business_central"] = f"{web_client.rstrip('/')}/?{query}"
        if crm_id:
            base = self.config.dataverse.web_url or self.config.dataverse.url.split("/api/")[0]
            links["dynamics_365"] = (f"{base.rstrip('/')}/main.aspx?etn={spec.crm.logical_name}"
                                     f"&pagetype=entityrecord&id={crm_id}")
        return links


def _bc_web_client(api_url: str) -> str | None:
    """``https://businesscentral.dynamics.com/<tenant>/<environment>`` for an online API URL
    ``https://api.businesscentral.dynamics.com/v2.0/<tenant>/<environment>/api/v2.0/``."""
    match = re.match(r"https://api\.businesscentral\.dynamics\.com/v2\.0/([^/]+)/([^/]+)/",
                     api_url)
    if match is None:
        return None
    return f"https://businesscentral.dynamics.com/{match.group(1)}/{match.group(2)}"


_BC_PAGES = {"customers": 21, "contacts": 5050, "items": 30, "currencies": 5,
             "unitsOfMeasure": 209, "salespeoplePurchasers": 5116, "resources": 76}
"""Business Central card page ids of the default mappings' tables."""


def _merged(first: MappingResult, second: MappingResult) -> MappingResult:
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


class _Lease:
    """Holds a mapping's lease in the state store while it is previewed and applied, renewed
    as progress is reported so a long apply keeps it and a dead process loses it."""

    def __init__(self, store: StateStore, name: str, holder: str) -> None:
        self.store = store
        self.name = name
        self.holder = holder
        self.renewed = time.monotonic()

    def keep(self, progress: Progress | None) -> Progress:
        """``progress`` wrapped so that every event renews the lease when a third of its
        lifetime has passed."""
        def report(event: ProgressEvent) -> None:
            if time.monotonic() - self.renewed > LEASE_TTL_S / 3:
                self.store.renew_lease(self.name, self.holder, LEASE_TTL_S)
                self.renewed = time.monotonic()
            if progress is not None:
                progress(event)
        return report

    def __enter__(self) -> _Lease:
        try:
            self.store.acquire_lease(self.name, self.holder, LEASE_TTL_S)
            self.renewed = time.monotonic()
        except LeaseHeldError as error:
            raise LeaseHeldError(
                f"{self.name.removeprefix('mapping:')} is being synchronized by "
                f"{error.holder} (lease until {error.expires_at}); wait for it to finish",
                holder=error.holder, expires_at=error.expires_at) from None
        return self

    def __exit__(self, *_: object) -> None:
        self.store.release_lease(self.name, self.holder)


def open_workspace(path: str | Path = ".") -> Workspace:
    """Open the workspace in folder ``path`` (or the ``nav_crm_ops.toml`` file itself)."""
    return Workspace(load_config(Path(path)))

