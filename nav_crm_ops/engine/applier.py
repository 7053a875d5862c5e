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
from typing import Any, Literal

import polars as pl

from ..connectors.factory import Connections
from ..connectors.models import WriteOp, WriteOutcome
from ..connectors.reader import PagedReader
from ..exceptions import (
    ConcurrencyError,
    ConnectorError,
    PermanentError,
    StateStoreError,
    SyncCancelled,
)
from ..store import RecordFailure, StateStore
from .freshness import changed_couplings, changed_versions
from .mapping import FieldMapping, MappingSet, TableMapping
from .plan import Plan, split_line_field
from .planner import parse_moment
from .progress import CancelToken, Progress, ProgressEvent, check_cancelled, emit
from .report import MappingResult
from .resolve import Resolver, is_unresolved

__all__ = ["Applier"]

Target = Literal["crm", "nav"]
_WRITE_ACTIONS = {"crm": ("insert_crm", "update_crm", "update_both"),
                  "nav": ("insert_nav", "update_nav", "update_both")}


@dataclass
class _DirectionTally:
    """Counts and outcomes of one direction, flushed to the store chunk by chunk."""

    run_id: int
    counts: dict[str, int] = field(default_factory=dict)

    def add(self, name: str, amount: int = 1) -> None:
        self.counts[name] = self.counts.get(name, 0) + amount


@dataclass
class _Prepared:
    record: dict[str, Any]
    op: WriteOp
    source_values: dict[str, Any]


def _typed(value: str | None, fld: FieldMapping) -> Any:
    """A canonical plan value as the service expects it."""
    if value is None:
        return None
    if fld.compare.kind == "number":
        number = float(value)
        whole = fld.compare.decimals == 0 or "." not in value
        return round(number) if whole and number.is_integer() else number
    if fld.compare.kind == "bool":
        return value == "true"
    return value


def _result(mapping: TableMapping, tallies: dict[str, _DirectionTally], status: str,
            message: str, refused: int, duration_s: float) -> MappingResult:
    """The mapping's result: counts of both directions and what a person should know."""
    counts: dict[str, int] = {}
    for tally in tallies.values():
        for name, amount in tally.counts.items():
            counts[name] = counts.get(name, 0) + amount
    failures = counts.get("failed", 0) + counts.get("conflicts", 0)
    if refused and not message:
        message = (f"{refused} record(s) changed since the preview and were not written; the "
                   "next run previews them again as they are now")
    if status == "failed" and not message:
        message = (f"{failures} record(s) failed or conflict: see `nav-crm-ops errors "
                   f"{mapping.name}`")
    return MappingResult(mapping.name, status, counts, tuple(t.run_id for t in tallies.values()),
                         message, duration_s)


def _failure_direction(mapping: TableMapping, record: dict[str, Any]) -> str:
    """The direction a refused record's failure is kept under (its writes' direction)."""
    direction = str(record.get("direction") or "")
    return direction if direction in mapping.directions else mapping.directions[0]


def _requests(clients: Iterable[PagedReader]) -> tuple[int, int]:
    stats = [client.stats for client in clients]
    return sum(s.requests for s in stats), sum(s.retries for s in stats)


class Applier:
    """Applies plans for the mappings of one workspace."""

    def __init__(self, mappings: MappingSet, store: StateStore, connections: Connections) -> None:
        self.mappings = mappings
        self.store = store
        self.connections = connections

    def _clients(self) -> tuple[PagedReader, ...]:
        c = self.connections
        return (c.dataverse, c.business_central, c.business_central_custom)

    def apply_mapping(self, mapping: TableMapping, plan: Plan, *, job_name: str = "",
                      preview_requests: int = 0, progress: Progress | None = None,
                      cancel: CancelToken | None = None,
                      recheck_versions: bool = False) -> MappingResult:
        """Apply the part of ``plan`` that belongs to ``mapping`` (see the module docstring).

        Records whose coupling changed since the preview — and, with ``recheck_versions`` (a
        saved plan), records edited or deleted since — are refused (``engine.freshness``)."""
        started = time.monotonic()
        part = plan.for_mapping(mapping.name)
        records = part.records.filter(pl.col("included"))
        excluded = part.records.height - records.height
        changes = part.field_changes.join(records.select("mapping", "record_id"),
                                          on=["mapping", "record_id"], how="semi")
        resolver = Resolver(self.mappings, self.store, self.connections)
        tallies = {d: _DirectionTally(self.store.start_run(mapping.name, d, "sync",
                                                           job_name=job_name))
                   for d in mapping.directions}
        first = tallies[mapping.directions[0]]
        first.add("requests", preview_requests)
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
        inserts_nav = [i for i in records.filter(pl.col("action").cast(pl.Utf8) == "insert_nav")
                       ["crm_id"].to_list() if i]
        restored = self.store.couplings_frame(mapping.name, columns=["nav_id", "crm_id"]).filter(
            pl.col("crm_id").is_in(inserts_nav)) if inserts_nav else stored.clear()
        coupled_crm = dict(zip(restored["crm_id"].to_list(), restored["nav_id"].to_list(),
                               strict=True))
        written: dict[str, set[Target]] = {}
        failed_writes: set[str] = set()
        same: dict[str, list[dict[str, Any]]] = {}
        for row in changes.filter(pl.col("resolution").cast(pl.Utf8) == "same_value").iter_rows(
                named=True):
            same.setdefault(row["record_id"], []).append(row)
        status = "finished"
        message = ""
        try:
            for direction in mapping.directions:
                target: Target = "crm" if direction == "to_crm" else "nav"
                self._write_direction(mapping, part.metadata.plan_id, records, changes, target,
                                      tallies[direction], resolver, bases, coupled_crm,
                                      written, failed_writes, same, progress, cancel)
            self._settle_other_records(mapping, records, changes, tallies, bases, coupled_crm)
        except SyncCancelled as stop:
            status, message = "cancelled", str(stop)
        except ConnectorError as error:
            status, message = "failed", f"stopped: {error}"
            self._finish(mapping, tallies, written, status, message)
            raise
        if status == "finished" and excluded == 0:
            self._advance_watermarks(mapping, part.metadata.watermarks.get(mapping.name, {}))
            self.store.purge_ops(states=("done",))
        elif excluded:
            message = (f"{excluded} record(s) excluded from the plan: the watermark stays, so "
                       "they are previewed again next time")
        result_status = self._finish(mapping, tallies, written, status, message)
        return _result(mapping, tallies, result_status, message, len(refused),
                       time.monotonic() - started)

    def _refuse_changed(self, mapping: TableMapping, records: pl.DataFrame,
                        changes: pl.DataFrame, tallies: dict[str, _DirectionTally],
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
        rows = records.filter(pl.col("record_id").is_in(list(messages))).to_dicts()
        by_record: dict[str, list[dict[str, Any]]] = {}
        for row in changes.filter(pl.col("record_id").is_in(list(messages))).iter_rows(
                named=True):
            by_record.setdefault(row["record_id"], []).append(row)
        for direction in mapping.directions:
            target: Target = "crm" if direction == "to_crm" else "nav"
            mine = [r for r in rows if _failure_direction(mapping, r) == direction]
            self._store_failures(mapping, direction, tallies[direction],
                                 [(r, messages[r["record_id"]], True, None, None) for r in mine],
                                 by_record, target)
        return list(messages)

    def _not_coupled_elsewhere(self, mapping: TableMapping, prepared: list[_Prepared],
                               outcomes: list[WriteOutcome], target: Target,
                               ) -> list[WriteOutcome]:
        """A create the service reports as already made (a lost reply settled by its key) is
        ours only if that record is not coupled to another one: otherwise it fails, and the
        existing coupling stays as it is."""
        checked: list[WriteOutcome] = []
        for item, outcome in zip(prepared, outcomes, strict=True):
            source = self._source_id(item.record, target)
            found = (self.store.get_coupling_by_nav(mapping.name, outcome.id) if target == "nav"
                     else self.store.get_coupling_by_crm(mapping.name, outcome.id)) \
                if outcome.ok and outcome.already_existed and outcome.id else None
            partner = None if found is None else (found.crm_id if target == "nav"
                                                  else found.nav_id)
            if partner is None or partner == source:
                checked.append(outcome)
                continue
            where = "BC" if target == "nav" else "CRM"
            checked.append(replace(outcome, ok=False, error=PermanentError(
                f"the {where} record {outcome.id} found for this create is already coupled to "
                f"{partner}; it was not coupled again. Check both records and couple by hand",
                service="business_central" if target == "nav" else "dataverse",
                entity=item.op.entity_set, record_key=outcome.id)))
        return checked

    def _advance_watermarks(self, mapping: TableMapping, marks: Mapping[str, str]) -> None:
        """Move the watermarks to the plan's, never back: a plan applied after a later sync
        must not make the next run read everything since its own, older preview again."""
        current = self.store.watermarks(mapping.name)
        for side, value in marks.items():
            if not current.get(side) or parse_moment(value) > parse_moment(current[side]):
                self.store.set_watermark(mapping.name, side, value)

    # -- writes ----------------------------------------------------------------------------------
    def _write_direction(self, mapping: TableMapping, plan_id: str, records: pl.DataFrame,
                         changes: pl.DataFrame, target: Target, tally: _DirectionTally,
                         resolver: Resolver, bases: dict[str, Any], coupled_crm: dict[str, str],
                         written: dict[str, set[Target]], failed_writes: set[str],
                         same: dict[str, list[dict[str, Any]]],
                         progress: Progress | None, cancel: CancelToken | None) -> None:
        todo = records.filter(pl.col("action").cast(pl.Utf8).is_in(_WRITE_ACTIONS[target]))
        if todo.height == 0:
            return
        values = changes.filter(pl.col("target").cast(pl.Utf8) == target)
        by_record: dict[str, list[dict[str, Any]]] = {}
        for row in values.iter_rows(named=True):
            by_record.setdefault(row["record_id"], []).append(row)
        client = (self.connections.dataverse if target == "crm"
                  else self.connections.business_central_for(mapping.nav.api))
        chunk = getattr(client, "batch_size", 100) * 4
        direction = "to_crm" if target == "crm" else "from_crm"
        rows = todo.to_dicts()
        done = 0
        for start in range(0, len(rows), chunk):
            check_cancelled(cancel, f"writing {mapping.name} to {target.upper()}")
            before = _requests(self._clients())
            if target == "crm":
                self._create_options(mapping, rows[start:start + chunk], by_record, resolver)
            prepared: list[_Prepared] = []
            failures: list[tuple[dict[str, Any], str, bool, Any, Any]] = []
            for record in rows[start:start + chunk]:
                built = self._prepare(mapping, record, by_record.get(record["record_id"], []),
                                      target, resolver, coupled_crm)
                if isinstance(built, str):
                    failures.append((record, built, False, None, None))
                else:
                    prepared.append(built)
            ops = [p.op for p in prepared]
            if ops:
                journal = [{"op_id": f"{plan_id}:{p.record['record_id']}:{target}",
                            "kind": p.op.kind, "target": target,
                            "record_key": p.record["record_id"], "payload": p.op.payload}
                           for p in prepared]
                self.store.journal_ops(tally.run_id, mapping.name, journal)
                op_ids = [j["op_id"] for j in journal]
                self.store.mark_ops(op_ids, "sent")
                outcomes = self._not_coupled_elsewhere(mapping, prepared,
                                                       client.write(ops), target)
                self.store.mark_ops([i for i, o in zip(op_ids, outcomes, strict=True) if o.ok],
                                    "done")
                self.store.mark_ops([i for i, o in zip(op_ids, outcomes, strict=True)
                                     if not o.ok], "failed")
            else:
                outcomes = []
            coupling_rows: list[dict[str, Any]] = []
            succeeded: list[str] = []
            for item, outcome in zip(prepared, outcomes, strict=True):
                record = item.record
                if outcome.ok:
                    inserted = record["action"].startswith("insert")
                    newly_coupled = not inserted and record["record_id"] not in bases
                    succeeded.append(self._source_id(record, target))
                    coupling_rows.append(self._coupling_row(
                        mapping, record, target, outcome,
                        by_record.get(record["record_id"], []) + same.get(record["record_id"], []),
                        bases, written))
                    tally.add("inserted" if inserted else "modified")
                    if newly_coupled:
                        tally.add("coupled")
                else:
                    failed_writes.add(record["record_id"])
                    failures.append((record, self._failure_message(outcome, target),
                                     self._transient(outcome), item.op.payload,
                                     {**(outcome.error.to_dict() if outcome.error else
                                         {"status": outcome.status}), "body": outcome.body}))
            if mapping.mark_source_on_create:
                created = [(p.record, o) for p, o in zip(prepared, outcomes, strict=True)
                           if o.ok and p.record["action"].startswith("insert")]
                failures += self._mark_sources(mapping, target, created)
            after = _requests(self._clients())
            tally.add("requests", after[0] - before[0])
            tally.add("retries", after[1] - before[1])
            self._store_couplings(mapping, coupling_rows)
            self._store_failures(mapping, direction, tally, failures, by_record, target)
            self.store.record_outcomes(mapping.name, direction, succeeded=succeeded,
                                       run_id=tally.run_id, skip_after=mapping.skip_after)
            other = "from_crm" if direction == "to_crm" else "to_crm"
            partners = [str(p.record["crm_id"] if target == "crm" else p.record["nav_id"])
                        for p, o in zip(prepared, outcomes, strict=True)
                        if o.ok and p.record["record_id"] not in failed_writes
                        and p.record["nav_id"] and p.record["crm_id"]]
            self.store.record_outcomes(mapping.name, other, succeeded=partners)
            done += len(rows[start:start + chunk])
            failed, requests = tally.counts.get("failed", 0), tally.counts.get("requests", 0)
            emit(progress, ProgressEvent(mapping.name, f"write {target}", done, len(rows),
                                         f"{failed} failed, {requests} requests",
                                         failed=failed, requests=requests))

    def _prepare(self, mapping: TableMapping, record: dict[str, Any],
                 values: list[dict[str, Any]], target: Target, resolver: Resolver,
                 coupled_crm: dict[str, str]) -> _Prepared | str:
        """The write for one record, or the reason it cannot be written."""
        payload: dict[str, Any] = {}
        binds: dict[str, str] = {}
        problems: list[str] = []
        source_values: dict[str, Any] = {}
        line_rows: dict[int, list[dict[str, Any]]] = {}
        for row in values:
            line = split_line_field(row["field"])
            if line is not None:
                line_rows.setdefault(line[0], []).append({**row, "field": line[1]})
                continue
            fld = mapping.field(row["field"])
            value = row["new_value"]
            source_values[fld.nav if target == "crm" else fld.crm] = value
            if value is None and fld.not_null:
                continue
            if target == "crm":
                problem = self._crm_value(mapping, fld, value, payload, binds, resolver)
            else:
                problem = self._nav_value(mapping, fld, value, payload, resolver)
            if problem:
                problems.append(problem)
        action = record["action"]
        if mapping.lines is not None and action.startswith("insert"):
            lines = self._line_payloads(mapping, line_rows, target, resolver, problems)
            side = mapping.lines.crm if target == "crm" else mapping.lines.nav
            payload[side.navigation] = lines
        if problems:
            return "; ".join(problems)
        if action.startswith("insert"):
            source = {r["field"]: r["new_value"] for r in values}
            template = mapping.template_for(target, source)
            payload = {**(template.values if template else {}), **payload}
            if target == "crm":
                op = WriteOp.create(mapping.crm.entity, payload, key=record["crm_id"],
                                    binds=binds, key_column=mapping.crm.key)
            else:
                if record["crm_id"] in coupled_crm:
                    self.store.uncouple(mapping.name, crm_id=record["crm_id"])
                    coupled_crm.pop(record["crm_id"], None)
                op = WriteOp.create(mapping.nav.entity, payload,
                                    natural_key=self._natural_key(mapping, payload),
                                    settle_filter=mapping.nav.filter)
        elif target == "crm":
            op = WriteOp.update(mapping.crm.entity, record["crm_id"], payload,
                                if_match=record.get("crm_version") or "*", binds=binds)
        else:
            op = WriteOp.update(mapping.nav.entity, record["nav_id"], payload,
                                if_match=record.get("nav_version") or "*")
        return _Prepared(record, op, source_values)

    def _create_options(self, mapping: TableMapping, rows: list[dict[str, Any]],
                        by_record: dict[str, list[dict[str, Any]]], resolver: Resolver) -> None:
        """Choice values a chunk needs and CRM lacks (``on_missing: create``), created in one
        request before the chunk's writes; a refusal is left to the records (they fail naming
        the value)."""
        if not any(f.options is not None and f.options.on_missing == "create"
                   for f in mapping.enabled_fields()):
            return
        wanted: dict[tuple[str, str], FieldMapping] = {}
        for record in rows:
            for change in by_record.get(record["record_id"], []):
                if split_line_field(change["field"]) is not None:
                    continue
                fld = mapping.field(change["field"])
                code = change["new_value"]
                if fld.options is None or fld.options.on_missing != "create" or not code:
                    continue
                if code not in resolver.option_maps(mapping.name, fld)[0]:
                    wanted.setdefault((fld.name, code), fld)
        if len(wanted) < 2:
            return
        keys = list(wanted)
        try:
            values = self.connections.dataverse.insert_option_values(
                [(mapping.crm.logical_name, wanted[k].crm, k[1]) for k in keys])
        except ConnectorError:
            return
        for key, value in zip(keys, values, strict=True):
            if isinstance(value, int):
                resolver.option_created(mapping.name, wanted[key], key[1], value)

    def _mark_sources(self, mapping: TableMapping, target: Target,
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
            payload: dict[str, Any] = {}
            for column, value in mapping.mark_source_on_create.items():
                if isinstance(value, str) and value.startswith("{created.") and \
                        value.endswith("}"):
                    payload[column] = body.get(value[len("{created."):-1])
                elif value == "{today}":
                    payload[column] = today
                elif value == "{now}":
                    payload[column] = now
                else:
                    payload[column] = value
            if target == "nav":
                ops.append(WriteOp.update(mapping.crm.entity, record["crm_id"], payload))
            else:
                ops.append(WriteOp.update(mapping.nav.entity, record["nav_id"], payload))
        client = (self.connections.dataverse if target == "nav"
                  else self.connections.business_central_for(mapping.nav.api))
        failed = []
        for (record, outcome), op, marked in zip(created, ops, client.write(ops), strict=True):
            if not marked.ok:
                side = "CRM" if target == "nav" else "BC"
                failed.append((record, f"created as {outcome.id}, but marking the {side} source "
                                       f"record failed: {marked.error}; set "
                                       f"{', '.join(op.payload)} on it by hand", False,
                               op.payload, None))
        return failed

    def _line_payloads(self, mapping: TableMapping, line_rows: dict[int, list[dict[str, Any]]],
                       target: Target, resolver: Resolver,
                       problems: list[str]) -> list[dict[str, Any]]:
        """The lines of a document created in one request (deep insert), in line order."""
        lines = mapping.line_mapping
        out: list[dict[str, Any]] = []
        for position in sorted(line_rows):
            payload: dict[str, Any] = {}
            binds: dict[str, str] = {}
            for row in line_rows[position]:
                fld = lines.field(row["field"])
                value = row["new_value"]
                if value is None and fld.not_null:
                    continue
                problem = (self._crm_value(lines, fld, value, payload, binds, resolver)
                           if target == "crm" else
                           self._nav_value(lines, fld, value, payload, resolver))
                if problem:
                    problems.append(f"line {position}: {problem}")
            payload.update({f"{nav}@odata.bind": path for nav, path in binds.items()})
            out.append(payload)
        return out

    def _crm_value(self, mapping: TableMapping, fld: FieldMapping, value: str | None,
                   payload: dict[str, Any], binds: dict[str, str],
                   resolver: Resolver) -> str | None:
        if fld.lookup is not None:
            if not value:
                payload[f"{fld.lookup.navigation}@odata.bind"] = None
                return None
            crm_id = resolver.lookup_nav_to_crm(fld, [value]).get(value)
            if crm_id is None and fld.clear_on_failed_lookup:
                payload[f"{fld.lookup.navigation}@odata.bind"] = None
                return None
            if crm_id is None:
                return resolver.lookup_failure(fld, value, to="crm")
            binds[fld.lookup.navigation] = f"/{fld.lookup.target}({crm_id})"
            return None
        if fld.options is not None and value:
            to_crm, _ = resolver.option_maps(mapping.name, fld)
            number = to_crm.get(value)
            if number is None:
                if fld.options.on_missing != "create":
                    return (f"{fld.nav} {value!r} has no CRM option in {fld.crm}: add it to the "
                            f"options of field {fld.name} in mapping {mapping.name}")
                number = self.connections.dataverse.insert_option_value(
                    mapping.crm.logical_name, fld.crm, value)
                resolver.option_created(mapping.name, fld, value, number)
            payload[fld.crm] = number
            return None
        payload[fld.crm] = _typed(value, fld)
        return None

    def _nav_value(self, mapping: TableMapping, fld: FieldMapping, value: str | None,
                   payload: dict[str, Any], resolver: Resolver) -> str | None:
        if value and is_unresolved(value):
            if fld.lookup is not None and fld.clear_on_failed_lookup:
                payload[fld.nav] = ""
                return None
            if fld.lookup is not None:
                return resolver.lookup_failure(fld, value, to="nav")
            return (f"{fld.crm}: CRM {value.strip('<>')} has no BC code: add it to the options "
                    f"of field {fld.name} in mapping {mapping.name}")
        if fld.lookup is not None and fld.lookup.via is not None and value:
            linked = resolver.key_to_via(fld, value)
            if linked is None and fld.clear_on_failed_lookup:
                linked = ""
            if linked is None:
                return resolver.lookup_failure(fld, value, to="nav")
            payload[fld.nav] = linked
            return None
        if fld.nav_reference is not None:
            if not value:
                payload[fld.nav] = None
                return None
            reference = resolver.reference_id(fld, value)
            if reference is None:
                return (f"{fld.nav}: BC has no {fld.nav_reference.entity} with code {value!r}: "
                        "create it in BC or change the value in CRM")
            payload[fld.nav] = reference
            return None
        payload[fld.nav] = _typed(value, fld) if value is not None else (
            "" if fld.compare.kind == "text" else None)
        return None

    @staticmethod
    def _natural_key(mapping: TableMapping, payload: dict[str, Any]) -> dict[str, Any] | None:
        """The key a BC create sends that finds it again when its reply is lost: the
        mapping's NAV natural key (``number``, ``code``) when the payload sets it, else a field
        carrying the CRM record's own natural key (a deterministic id, e.g. a sales order's
        ``yourReference`` = CRM ``ordernumber``). Never a match field such as a display name:
        another record may share it (e.g. a blocked customer outside the mapping's filter).
        None when the create sends no key (BC numbers it): a lost reply then leaves its
        outcome unknown, and the next run matches before it creates."""
        natural = mapping.nav.natural_key
        if natural and payload.get(natural) not in (None, ""):
            return {natural: payload[natural]}
        crm_key = mapping.crm.natural_key
        for fld in mapping.enabled_fields():
            if crm_key and fld.crm == crm_key and payload.get(fld.nav) not in (None, ""):
                return {fld.nav: payload[fld.nav]}
        return None

    @staticmethod
    def _source_id(record: dict[str, Any], target: Target) -> str:
        return str(record["nav_id"] if target == "crm" else record["crm_id"])

    @staticmethod
    def _transient(outcome: WriteOutcome) -> bool:
        return outcome.error is None or outcome.error.transient or isinstance(
            outcome.error, ConcurrencyError)

    @staticmethod
    def _failure_message(outcome: WriteOutcome, target: Target) -> str:
        side = "CRM" if target == "crm" else "BC"
        if isinstance(outcome.error, ConcurrencyError):
            return (f"the {side} record changed after the preview, so it was not overwritten; "
                    "the next preview shows it with the new values")
        if outcome.error is None:
            return f"{side} rejected the record (HTTP {outcome.status})"
        return str(outcome.error)

    def _coupling_row(self, mapping: TableMapping, record: dict[str, Any], target: Target,
                      outcome: WriteOutcome, values: list[dict[str, Any]], bases: dict[str, Any],
                      written: dict[str, set[Target]]) -> dict[str, Any]:
        nav_id = record["nav_id"]
        crm_id = record["crm_id"]
        body = outcome.body if isinstance(outcome.body, dict) else {}
        nav_key = record.get("nav_key")
        if target == "nav":
            if record["action"] == "insert_nav":
                nav_id = outcome.id.lower()
                natural = mapping.nav.natural_key
                nav_key = str(body.get(natural)) if natural and body.get(natural) else nav_key
            record["nav_id"] = nav_id
        diff_names = mapping.diff_field_names
        base = dict(bases.get(nav_id) or {})
        for change in values:
            if change["field"] in diff_names:
                base[change["field"]] = change["new_value"]
        bases[nav_id] = base
        written.setdefault(nav_id, set()).add(target)
        crm_key = record.get("crm_key")
        natural = mapping.crm_natural_key_field
        if crm_key is None and target == "crm" and natural is not None:
            crm_key = next((c["new_value"] for c in values if c["field"] == natural), None)
        row: dict[str, Any] = {"nav_id": nav_id, "crm_id": crm_id, "nav_key": nav_key,
                               "crm_key": crm_key, "base_values": base}
        if target == "crm":
            row["crm_etag"] = outcome.etag or None  # never an empty version: it would become *
            row["nav_etag"] = record.get("nav_version")
        else:
            row["nav_etag"] = outcome.etag or None
            row["crm_etag"] = record.get("crm_version")
            modified = body.get(mapping.nav.modified)
            if modified:
                row["nav_modified_at"] = str(modified)
        return row

    def _store_couplings(self, mapping: TableMapping, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        try:
            self.store.upsert_couplings(mapping.name, rows)
        except StateStoreError:
            for row in rows:
                try:
                    self.store.upsert_couplings(mapping.name, [row])
                except StateStoreError as error:
                    self.store.add_record_error(
                        mapping.name, "to_crm", f"written but not coupled: {error}",
                        source_id=row["nav_id"], destination_id=row["crm_id"])

    def _store_failures(self, mapping: TableMapping, direction: str, tally: _DirectionTally,
                        failures: list[tuple[dict[str, Any], str, bool, Any, Any]],
                        by_record: dict[str, list[dict[str, Any]]], target: Target) -> None:
        if not failures:
            return
        errors = []
        statuses = []
        source_column = "nav_value" if target == "crm" else "crm_value"
        for record, message, transient, payload, response in failures:
            source_id = self._source_id(record, target)
            other = record["crm_id"] if target == "crm" else record["nav_id"]
            values = {r["field"]: r.get(source_column) or r["new_value"]
                      for r in by_record.get(record["record_id"], [])}
            errors.append({"mapping": mapping.name, "direction": direction, "message": message,
                           "run_id": tally.run_id, "source_id": source_id,
                           "destination_id": other, "transient": transient,
                           "payload": payload, "response": response, "source_values": values,
                           "http_status": (response or {}).get("status")
                           if isinstance(response, dict) else None,
                           "service_code": (response or {}).get("code")
                           if isinstance(response, dict) else None})
            statuses.append(RecordFailure(source_id, message, transient, other))
        self.store.add_record_errors(errors)
        self.store.record_outcomes(mapping.name, direction, failed=statuses, run_id=tally.run_id,
                                   skip_after=mapping.skip_after)
        tally.add("failed", len(failures))

    # -- records without writes ---------------------------------------------------------------------
    def _settle_other_records(self, mapping: TableMapping, records: pl.DataFrame,
                              changes: pl.DataFrame, tallies: dict[str, _DirectionTally],
                              bases: dict[str, Any], coupled_crm: dict[str, str]) -> None:
        """Unchanged pairs (new base), new couplings without writes, conflicts, failures,
        skips and deletion conflicts."""
        first_direction = mapping.directions[0]
        first = tallies[first_direction]
        action = pl.col("action").cast(pl.Utf8)
        same = changes.filter(pl.col("resolution").cast(pl.Utf8) == "same_value")
        same_by_record: dict[str, dict[str, Any]] = {}
        for record_id, name, value in same.select("record_id", "field", "new_value").iter_rows():
            same_by_record.setdefault(record_id, {})[name] = value
        coupling_rows = []
        settled = records.filter((action == "unchanged") & pl.col("nav_id").is_not_null()
                                 & pl.col("crm_id").is_not_null())
        for direction, column in (("to_crm", "nav_id"), ("from_crm", "crm_id")):
            if direction in mapping.directions:
                self.store.record_outcomes(mapping.name, direction,
                                           succeeded=settled[column].to_list())
        for record in records.filter(action == "unchanged").iter_rows(named=True):
            nav_id = record["nav_id"]
            new = record["record_id"] not in bases
            if not new and record["record_id"] not in same_by_record:
                continue
            base = {**(bases.get(nav_id) or {}), **same_by_record.get(record["record_id"], {})}
            coupling_rows.append({"nav_id": nav_id, "crm_id": record["crm_id"],
                                  "nav_key": record.get("nav_key"),
                                  "crm_key": record.get("crm_key"), "base_values": base,
                                  "nav_etag": record.get("nav_version"),
                                  "crm_etag": record.get("crm_version")})
            if new:
                first.add("coupled")
        self._store_couplings(mapping, coupling_rows)
        for record in records.filter(action == "conflict").iter_rows(named=True):
            message = record["message"] or "the same field changed on both sides"
            self.store.add_record_error(mapping.name, first_direction,
                                        f"conflict: {message}", run_id=first.run_id,
                                        source_id=record["nav_id"],
                                        destination_id=record["crm_id"])
            self.store.record_outcomes(mapping.name, "to_crm", failed=[RecordFailure(
                record["nav_id"], f"conflict: {message}", conflict=True,
                destination_id=record["crm_id"])], run_id=first.run_id)
            first.add("conflicts")
        failures = []
        for record in records.filter(action == "fail").iter_rows(named=True):
            direction = "to_crm" if record["nav_id"] and "to_crm" in mapping.directions \
                else "from_crm"
            failures.append((direction, record))
        for direction in mapping.directions:
            tally = tallies[direction]
            chosen = [r for d, r in failures if d == direction]
            target: Target = "crm" if direction == "to_crm" else "nav"
            by_record: dict[str, list[dict[str, Any]]] = {}
            for change in changes.filter(pl.col("record_id").is_in(
                    [r["record_id"] for r in chosen])).iter_rows(named=True):
                by_record.setdefault(change["record_id"], []).append(change)
            self._store_failures(mapping, direction, tally, [
                (r, r["message"] or "cannot be synchronized", False, None, None) for r in chosen
            ], by_record, target)
        first.add("skipped", records.filter(action == "skip").height)
        for record in records.filter(action == "deletion_conflict").iter_rows(named=True):
            if mapping.deletion_conflict == "remove_coupling":
                first.add("uncoupled", self.store.uncouple(mapping.name, nav_id=record["nav_id"]))
                continue
            self._store_failures(mapping, first_direction, first, [
                (record, record["message"], False, None, None)], {},
                "crm" if first_direction == "to_crm" else "nav")

    def _finish(self, mapping: TableMapping, tallies: dict[str, _DirectionTally],
                written: dict[str, set[Target]], status: str, message: str) -> str:
        total = self.store.count_couplings(mapping.name)
        worst = status
        for direction, tally in tallies.items():
            target: Target = "crm" if direction == "to_crm" else "nav"
            touched = sum(1 for targets in written.values() if target in targets)
            tally.counts["unchanged"] = max(0, total - touched - tally.counts.get("conflicts", 0))
            run_status = status
            if status == "finished" and (tally.counts.get("failed") or
                                         tally.counts.get("conflicts")):
                run_status = "failed"
                worst = "failed"
            self.store.finish_run(tally.run_id, run_status, tally.counts, message=message)
        return worst
