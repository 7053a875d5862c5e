"""Apply: carry out the included records of a plan through the connectors, and record it all.

Per mapping, directions run NAV → CRM first, then CRM → NAV (as the reference). Writes go in
chunks (each a few parallel ``$batch`` requests); after every chunk the outcome is stored at
once — couplings with their new base values and etags, the retry pass and skip rule
(``record_status``), record errors with the payload sent and the response — so a crash loses
at most the chunk in flight, and that chunk is safe to send again:

* Dataverse creates use the plan's deterministic GUID with ``If-None-Match: *`` (a second send
  finds the record and couples it);
* Business Central creates are found again by their natural key (the connector looks after a
  lost reply; a crash before the coupling was stored is caught by the next run matching before
  it creates, because watermarks move only when a mapping's apply completes);
* updates carry the version the preview read as ``If-Match``: a record changed since the plan
  is refused (412/409) and said so; it stays in the retry pass for the next preview.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import polars as pl

from ...connectors.factory import Connections
from ...connectors.models import WriteOp, WriteOutcome
from ...connectors.reader import PagedReader
from ...exceptions import (
    ConcurrencyError,
    ConnectorError,
    PermanentError,
    SyncCancelled,
)
from ...store import StateStore
from ...store.history import HistoryRepository
from ..collector import bulk_work
from ..freshness import changed_couplings, changed_versions
from ..mapping import MappingSet, TableMapping
from ..plan import Plan
from ..progress import CancelToken, Progress, ProgressEvent, check_cancelled, emit
from ..report import MappingResult
from ..resolve import Resolver
from ..vocabulary import INSERTS, Side, inserts_to
from .ledger import Ledger, source_id
from .payloads import Payloads, natural_key, source_marks
from .run import (
    ApplyRun,
    Chunk,
    DirectionTally,
    Prepared,
    mapping_result,
    write_chunks,
)

__all__ = ["Applier"]


_NO_VALUES: Mapping[str, Any] = {}
"""The values of a record whose writes carry no field change (never filled in)."""


def _requests(clients: Iterable[PagedReader]) -> tuple[int, int]:
    stats = [client.stats for client in clients]
    return sum(s.requests for s in stats), sum(s.retries for s in stats)


class Applier:
    """Applies plans for the mappings of one workspace."""

    def __init__(self, mappings: MappingSet, store: StateStore, connections: Connections) -> None:
        self.mappings = mappings
        self.store = store
        self.connections = connections
        self.ledger = Ledger(store)
        self.history = HistoryRepository.of(store)

    def _clients(self) -> tuple[PagedReader, ...]:
        c = self.connections
        return (c.dataverse, c.business_central, c.business_central_custom)

    @bulk_work()
    def apply_mapping(self, mapping: TableMapping, plan: Plan, *, job_name: str = "",
                      preview_requests: int = 0, progress: Progress | None = None,
                      cancel: CancelToken | None = None,
                      recheck_versions: bool = False, kind: str = "sync") -> MappingResult:
        """Apply the part of ``plan`` that belongs to ``mapping`` (see the module docstring).

        Records whose coupling changed since the preview — and, with ``recheck_versions`` (a
        saved plan), records edited or deleted since — are refused (``engine.freshness``).
        ``kind`` names the job-log runs (``revert`` for ``engine.revert``)."""
        started = time.monotonic()
        part = plan.for_mapping(mapping.name)
        tallies = {d: DirectionTally(self.store.start_run(mapping.name, d, kind,
                                                          job_name=job_name))
                   for d in mapping.directions}
        tallies[mapping.directions[0]].add("requests", preview_requests)
        run, refused = self._start(mapping, part, tallies, recheck_versions)
        run.progress, run.cancel = progress, cancel
        excluded = part.records.height - part.included().height
        resolver = Resolver(self.mappings, self.store, self.connections)
        resolver.prefetch(mapping, run.changes)
        payloads = Payloads(self.connections, resolver)
        status, message = "finished", ""
        try:
            for target in run.targets():
                self._write_direction(run, target, payloads)
            self.ledger.settle_other_records(run)
        except SyncCancelled as stop:
            status, message = "cancelled", str(stop)
        except ConnectorError as error:
            status, message = "failed", f"stopped: {error}"
            self.ledger.finish(run, status, message)
            raise
        if status == "finished" and excluded == 0:
            self.ledger.advance_watermarks(mapping, part.metadata.watermarks.get(mapping.name, {}))
            self.store.purge_ops(states=("done",))
        elif excluded:
            message = (f"{excluded} record(s) excluded from the plan: the watermark stays, so "
                       "they are previewed again next time")
        result_status = self.ledger.finish(run, status, message)
        return mapping_result(mapping, tallies, result_status, message, len(refused),
                              time.monotonic() - started)

    def _start(self, mapping: TableMapping, part: Plan, tallies: dict[str, DirectionTally],
               recheck_versions: bool) -> tuple[ApplyRun, list[str]]:
        """The run of the included records still as the preview saw them (the others are
        refused and stored as such), with the stored bases and restored CRM couplings."""
        records = part.included()
        # every record included (a sync's own plan): no join, whose copy of a million
        # records' field changes cost about 0.25 GB per 100,000 records
        changes = part.field_changes if records.height == part.records.height else \
            part.field_changes.join(records.select("mapping", "record_id"),
                                    on=["mapping", "record_id"], how="semi")
        refused = self._refuse_changed(mapping, records, changes, tallies, recheck_versions)
        if refused:
            records = records.filter(~pl.col("record_id").is_in(refused))
            changes = changes.filter(~pl.col("record_id").is_in(refused))
        in_plan = [i for i in records["nav_id"].to_list() if i]
        stored = self.store.couplings_frame(mapping.name,
                                            columns=["nav_id", "crm_id", "base_values"],
                                            nav_ids=in_plan)
        bases = {n: json.loads(b) if b else None for n, b in
                 stored.select("nav_id", "base_values").iter_rows()}
        inserts_nav = [i for i in records.filter(inserts_to(Side.NAV))["crm_id"].to_list() if i]
        restored = self.store.couplings_frame(mapping.name, columns=["nav_id", "crm_id"],
                                              crm_ids=inserts_nav)
        coupled_crm = dict(zip(restored["crm_id"].to_list(), restored["nav_id"].to_list(),
                               strict=True))
        run = ApplyRun(mapping, part.metadata.plan_id, records, changes, tallies, bases=bases,
                       coupled_crm=coupled_crm)
        return run, refused

    def _refuse_changed(self, mapping: TableMapping, records: pl.DataFrame,
                        changes: pl.DataFrame, tallies: dict[str, DirectionTally],
                        recheck_versions: bool) -> list[str]:
        """Record ids refused because they changed since the preview, stored as transient
        failures (they never count toward skipping) so the next run previews them again."""
        refused = changed_couplings(mapping.name, records, self.store)
        if recheck_versions:
            fresh = records.filter(~pl.col("record_id").is_in(refused["record_id"].to_list()))
            refused = pl.concat([refused, changed_versions(mapping, fresh, self.connections)])
        if refused.height == 0:
            return []
        messages = dict(refused.iter_rows())
        self.ledger.store_refused(mapping, records, changes, tallies, messages)
        return list(messages)

    def _not_coupled_elsewhere(self, mapping: TableMapping, prepared: list[Prepared],
                               outcomes: list[WriteOutcome], target: Side,
                               ) -> list[WriteOutcome]:
        """A create the service reports as already made (a lost reply settled by its key) is
        ours only if that record is not coupled to another one: otherwise it fails, and the
        existing coupling stays as it is."""
        checked: list[WriteOutcome] = []
        for item, outcome in zip(prepared, outcomes, strict=True):
            partner = self._partner_of_found(mapping, outcome, target)
            if partner is None or partner == source_id(item.record, target):
                checked.append(outcome)
                continue
            checked.append(replace(outcome, ok=False, error=PermanentError(
                f"the {target.label} record {outcome.id} found for this create is already "
                f"coupled to {partner}; it was not coupled again. Check both records and couple "
                "by hand", service=target.service, entity=item.op.entity_set,
                record_key=outcome.id)))
        return checked

    def _partner_of_found(self, mapping: TableMapping, outcome: WriteOutcome,
                          target: Side) -> str | None:
        """The record a create settled as already made is coupled to, if any."""
        if not (outcome.ok and outcome.already_existed and outcome.id):
            return None
        if target is Side.NAV:
            found = self.store.get_coupling_by_nav(mapping.name, outcome.id)
            return None if found is None else found.crm_id
        found = self.store.get_coupling_by_crm(mapping.name, outcome.id)
        return None if found is None else found.nav_id

    # -- writes ----------------------------------------------------------------------------------
    def _write_direction(self, run: ApplyRun, target: Side, payloads: Payloads) -> None:
        """Write every record of the run that writes to ``target``, chunk by chunk, storing
        each chunk's outcome before the next one is sent."""
        mapping = run.mapping
        client = self._client(mapping, target)
        size = getattr(client, "batch_size", 100) * 4
        tally = run.tally(target)
        for start, total, chunk in write_chunks(run.records, run.changes, target, size):
            check_cancelled(run.cancel, f"writing {mapping.name} to {target.upper()}")
            before = _requests(self._clients())
            self._prepare_chunk(run, chunk, payloads)
            chunk.outcomes = self._send(run, chunk, client)
            self._book_outcomes(run, chunk)
            after = _requests(self._clients())
            tally.add("requests", after[0] - before[0])
            tally.add("retries", after[1] - before[1])
            self._store_chunk(run, chunk)
            failed, requests = tally.counts.get("failed", 0), tally.counts.get("requests", 0)
            emit(run.progress, ProgressEvent(mapping.name, f"write {target}",
                                             min(start + size, total), total,
                                             f"{failed} failed, {requests} requests",
                                             failed=failed, requests=requests))

    def _client(self, mapping: TableMapping, target: Side) -> Any:
        return (self.connections.dataverse if target is Side.CRM
                else self.connections.business_central_for(mapping.nav.api))

    def _prepare_chunk(self, run: ApplyRun, chunk: Chunk, payloads: Payloads) -> None:
        """Each record's write, or its failure (a value that cannot be written)."""
        if chunk.target is Side.CRM:
            payloads.create_options(run.mapping, chunk.rows, chunk.values, chunk.frame)
        values = chunk.values
        for record in chunk.rows:
            built = self._prepare(run, record, values.get(record["record_id"], _NO_VALUES),
                                  chunk.target, payloads)
            if isinstance(built, str):
                chunk.failures.append((record, built, False, None, None))
            else:
                chunk.prepared.append(built)

    def _send(self, run: ApplyRun, chunk: Chunk, client: Any) -> list[WriteOutcome]:
        """Journal the chunk's writes, send them, and settle each op (done: removed; failed: kept)."""
        if not chunk.prepared:
            return []
        target = chunk.target
        prefix, suffix, side = f"{run.plan_id}:", f":{target}", str(target)
        keys = [p.record["record_id"] for p in chunk.prepared]
        ops = [p.op for p in chunk.prepared]
        op_ids = [f"{prefix}{key}{suffix}" for key in keys]
        journal = [{"op_id": op_id, "kind": op.kind, "target": side, "record_key": key,
                    "payload": op.payload}
                   for op_id, key, op in zip(op_ids, keys, ops, strict=True)]
        # journaled and marked sent in one commit before the send; settled in one after it
        self.store.journal.journal_sent(run.tally(target).run_id, run.mapping.name, journal)
        outcomes = self._not_coupled_elsewhere(run.mapping, chunk.prepared, client.write(ops),
                                               target)
        done: list[str] = []
        failed: list[str] = []
        for op_id, outcome in zip(op_ids, outcomes, strict=True):
            (done if outcome.ok else failed).append(op_id)
        self.store.journal.settle(done=done, failed=failed)
        return outcomes

    def _book_outcomes(self, run: ApplyRun, chunk: Chunk) -> None:
        """Couplings (new base, etags) for the writes that succeeded, failures for the others,
        and the source marks of what was created."""
        target, tally = chunk.target, run.tally(chunk.target)
        values, same, name = chunk.values, run.same, run.mapping.name
        source_column = target.other.column("id")  # source_id's, spelled once per chunk
        counts: dict[str, int] = {}  # added to the tally in the order they first occur
        for item, outcome in chunk.sent():
            record = item.record
            if not outcome.ok:
                run.failed_writes.add(record["record_id"])
                chunk.failures.append((record, self._failure_message(outcome, target),
                                       self._transient(outcome), item.op.payload,
                                       {**(outcome.error.to_dict() if outcome.error else
                                           {"status": outcome.status}), "body": outcome.body}))
                continue
            newly_coupled = run.is_new_coupling(record)
            chunk.succeeded.append(str(record[source_column]))
            written = values.get(record["record_id"], _NO_VALUES)
            alike = same.get(record["record_id"]) if same else None
            if alike:  # fields both sides changed alike (never written, so never in values)
                written = {**written, **{r["field"]: r["new_value"] for r in alike}}
            chunk.coupling_rows.append(self.ledger.coupling_row(run, record, target, outcome, written))
            chunk.keep_history(tally.run_id, name, record, outcome.etag or None)
            counted = "inserted" if record["action"] in INSERTS else "modified"
            counts[counted] = counts.get(counted, 0) + 1
            if newly_coupled:
                counts["coupled"] = counts.get("coupled", 0) + 1
        for counted, amount in counts.items():
            tally.add(counted, amount)
        if run.mapping.mark_source_on_create:
            chunk.failures += self._mark_sources(run.mapping, target, chunk.created())

    def _store_chunk(self, run: ApplyRun, chunk: Chunk) -> None:
        """The chunk's outcome, stored at once: couplings, failures, the retry pass."""
        mapping, direction = run.mapping, chunk.direction
        tally = run.tally(chunk.target)
        self.ledger.store_couplings(mapping, chunk.coupling_rows)
        self.history.record(chunk.history)
        self.ledger.store_failures(mapping, tally, chunk.failures,
                                   chunk.change_rows() if chunk.failures else {}, chunk.target)
        self.store.record_outcomes(mapping.name, direction, succeeded=chunk.succeeded,
                                   run_id=tally.run_id, skip_after=mapping.skip_after)
        self.store.record_outcomes(mapping.name, direction.other,
                                   succeeded=chunk.partners(run.failed_writes))

    def _prepare(self, run: ApplyRun, record: dict[str, Any], values: Mapping[str, Any],
                 target: Side, payloads: Payloads) -> Prepared | str:
        """The write for one record (``values``: ``{field: new_value}``), or the reason it
        cannot be written."""
        mapping = run.mapping
        draft = _draft(mapping, values, target, payloads)
        payload, binds, problems, line_rows = draft.payload, draft.binds, draft.problems, \
            draft.line_rows
        inserting = record["action"] in INSERTS
        if mapping.lines is not None and inserting:
            lines = payloads.line_payloads(mapping, line_rows, target, problems)
            side = mapping.lines.crm if target is Side.CRM else mapping.lines.nav
            payload[side.navigation] = lines
        if problems:
            return "; ".join(problems)
        if inserting:
            op = self._create_op(run, record, values, payload, binds, target)
        elif target is Side.CRM:
            op = WriteOp.update(mapping.crm.entity, record["crm_id"], payload,
                                if_match=record.get("crm_version") or "*", binds=binds)
        else:
            op = WriteOp.update(mapping.nav.entity, record["nav_id"], payload,
                                if_match=record.get("nav_version") or "*")
        return Prepared(record, op)

    def _create_op(self, run: ApplyRun, record: dict[str, Any], values: Mapping[str, Any],
                   payload: dict[str, Any], binds: dict[str, str], target: Side) -> WriteOp:
        """The create of one record (template values first); a CRM record still coupled (a
        restore) is uncoupled before BC creates its new partner. ``values`` (``{field:
        new_value}``) are the source values a template's filter reads."""
        mapping = run.mapping
        template = mapping.template_for(target.literal, values)
        payload = {**(template.values if template else {}), **payload}
        if target is Side.CRM:
            return WriteOp.create(mapping.crm.entity, payload, key=record["crm_id"],
                                  binds=binds, key_column=mapping.crm.key)
        if record["crm_id"] in run.coupled_crm:
            self.store.uncouple(mapping.name, crm_id=record["crm_id"])
            run.coupled_crm.pop(record["crm_id"], None)
        return WriteOp.create(mapping.nav.entity, payload,
                              natural_key=self._natural_key(mapping, payload),
                              settle_filter=mapping.nav.filter)

    def _mark_sources(self, mapping: TableMapping, target: Side,
                      created: list[tuple[dict[str, Any], WriteOutcome]],
                      ) -> list[tuple[dict[str, Any], str, bool, Any, Any]]:
        """Write ``mark_source_on_create`` to the source records whose copies now exist (a
        CRM order is marked as submitted to the back office with the BC order number)."""
        if not created:
            return []
        today = time.strftime("%Y-%m-%d", time.gmtime())
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        ops: list[WriteOp] = []
        for record, outcome in created:
            body = outcome.body if isinstance(outcome.body, dict) else {}
            payload = source_marks(mapping.mark_source_on_create, body, today, now)
            source = target.other
            ops.append(WriteOp.update(source.pick(mapping.nav, mapping.crm).entity,
                                      record[source.column("id")], payload))
        client = self._client(mapping, target.other)
        failed = []
        for (record, outcome), op, marked in zip(created, ops, client.write(ops), strict=True):
            if not marked.ok:
                side = target.other.label
                failed.append((record, f"created as {outcome.id}, but marking the {side} source "
                                       f"record failed: {marked.error}; set "
                                       f"{', '.join(op.payload)} on it by hand", False,
                               op.payload, None))
        return failed

    _natural_key = staticmethod(natural_key)

    @staticmethod
    def _transient(outcome: WriteOutcome) -> bool:
        return outcome.error is None or outcome.error.transient or isinstance(
            outcome.error, ConcurrencyError)

    @staticmethod
    def _failure_message(outcome: WriteOutcome, target: Side) -> str:
        side = target.label
        if isinstance(outcome.error, ConcurrencyError):
            return (f"the {side} record changed after the preview, so it was not overwritten; "
                    "the next preview shows it with the new values")
        if outcome.error is None:
            return f"{side} rejected the record (HTTP {outcome.status})"
        return str(outcome.error)


@dataclass
class _Draft:
    """One record's write as its field values give it: the body, the lookups bound, what
    cannot be written and document lines by line number."""

    payload: dict[str, Any] = field(default_factory=dict)
    binds: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    line_rows: dict[int, list[dict[str, Any]]] = field(default_factory=dict)


def _draft(mapping: TableMapping, values: Mapping[str, Any], target: Side,
           payloads: Payloads) -> _Draft:
    """The :class:`_Draft` of one record's field values (``{field: new_value}``, in the
    order of its field changes) written to ``target``."""
    draft = _Draft()
    payload = draft.payload
    writers = payloads.writers(mapping, target)
    for name, value in values.items():
        fld, line, _, plain = writers.get(name) or payloads.writer(mapping, name, target)
        if line is not None:
            draft.line_rows.setdefault(line[0], []).append({"field": line[1], "new_value": value})
            continue
        assert fld is not None
        if plain is not None:  # what field_value does for such a field, without calls
            if value is not None or not fld.not_null:
                payload[plain] = value
            continue
        problem = payloads.field_value(mapping, fld, value, payload, draft.binds, target)
        if problem:
            draft.problems.append(problem)
    return draft
