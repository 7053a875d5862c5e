"""What an apply records in the state store: couplings, failures, the retry pass, the runs.

The applier (``engine.sync.applier``) decides and sends the writes; the :class:`Ledger` books
their outcome and settles the records that write nothing — unchanged pairs (new base),
matched pairs coupled without a write, held conflicts, failures the preview already decided,
skips and deletion conflicts — and closes the runs. It talks only to the state store, so the
bookkeeping is tested without HTTP (``tests/engine/test_settle.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import polars as pl

from ...connectors.models import WriteOutcome
from ...exceptions import StateStoreError
from ...store import RecordFailure, StateStore
from ..ids import record_id
from ..labels import record_label
from ..mapping import TableMapping
from ..vocabulary import INSERTS, Direction, PlanAction, Side, action_is
from .run import ApplyRun, DirectionTally, Failure, by_record
from .snapshot import parse_moment

__all__ = ["Ledger", "failure_direction", "source_id"]


_ETAG_COLUMNS = {side: (side.column("etag"), side.other.column("etag"),
                        side.other.column("version")) for side in Side}
"""Per write target: its etag column, the other side's etag column and the plan's column
holding the other side's version (spelled once, not per written record)."""


def failure_direction(mapping: TableMapping, record: dict[str, Any]) -> str:
    """The direction a refused record's failure is kept under (its writes' direction)."""
    direction = str(record.get("direction") or "")
    return direction if direction in mapping.directions else mapping.directions[0]


def _planned_failure_direction(mapping: TableMapping, record: dict[str, Any]) -> str:
    """A record the preview failed is kept under NAV → CRM when it has a NAV record and the
    mapping writes that way, else under CRM → NAV."""
    if record["nav_id"] and Direction.TO_CRM in mapping.directions:
        return Direction.TO_CRM
    return Direction.FROM_CRM


def source_id(record: dict[str, Any], target: Side) -> str:
    """The id of the record a write to ``target`` copies from."""
    return str(record[target.other.column("id")])


def _label_of(record: Mapping[str, Any], side: Side) -> str | None:
    """How people name a plan record's ``side`` record (number and name), if known."""
    return record_label(record.get(side.column("key")), record.get(side.column("name"))) or None


def _name_fields(mapping: TableMapping, target: Side) -> frozenset[str]:
    """The (lower-case) field names that write ``target``'s record name column."""
    column = target.pick(mapping.nav.name, mapping.crm.name)
    return frozenset(name for name, f in mapping.fields_by_name.items()
                     if column and target.pick(f.nav, f.crm) == column)


def _names(mapping: TableMapping, record: dict[str, Any], target: Side,
           body: dict[str, Any], values: Mapping[str, Any],
           name_fields: frozenset[str] | None = None) -> dict[str, Any]:
    """Both sides' record names for the coupling of a written record: as read by the
    preview, the target's as the service sent it back, or the value the write gave it
    (``values``: ``{field: new_value}``). ``name_fields``: :func:`_name_fields` of the
    mapping and target, when the caller keeps it."""
    names = {"nav_name": record.get("nav_name"), "crm_name": record.get("crm_name")}
    column = target.pick(mapping.nav.name, mapping.crm.name)
    if not column:
        return names
    sent_back = body.get(column)
    if sent_back not in (None, ""):
        name = sent_back
    else:  # what the write gave it, looked up only when the service sent no name back
        if name_fields is None:
            name_fields = _name_fields(mapping, target)
        name = None
        for fld, value in values.items():
            if fld.lower() in name_fields:
                name = value
                break
    if name not in (None, ""):
        names[target.column("name")] = str(name)
    return names


class Ledger:
    """Books one workspace's apply outcomes in its state store (module docstring)."""

    def __init__(self, store: StateStore) -> None:
        self.store = store
        self._name_fields: dict[tuple[str, Side], frozenset[str]] = {}
        """:func:`_name_fields` per (mapping, target): found once, not once per record."""

    # -- written records -------------------------------------------------------------------------
    def coupling_row(self, run: ApplyRun, record: dict[str, Any], target: Side,
                     outcome: WriteOutcome, values: Mapping[str, Any]) -> dict[str, Any]:
        """The coupling a successful write stores: ids, keys, the new base and the etags
        (``values``: what the write gave each field, ``{field: new_value}``)."""
        mapping = run.mapping
        body = outcome.body if isinstance(outcome.body, dict) else {}
        nav_key = record.get("nav_key")
        if target is Side.NAV and record["action"] == PlanAction.INSERT_NAV:
            record["nav_id"] = record_id(outcome.id)
            natural = mapping.nav.natural_key
            nav_key = str(body.get(natural)) if natural and body.get(natural) else nav_key
        nav_id, crm_id = record["nav_id"], record["crm_id"]
        base = run.new_base(nav_id, values, keep=record["action"] not in INSERTS)
        run.mark_written(nav_id, target)
        crm_key = record.get("crm_key")
        natural = mapping.crm_natural_key_field
        if crm_key is None and target is Side.CRM and natural is not None:
            crm_key = values.get(natural)
        row: dict[str, Any] = {"nav_id": nav_id, "crm_id": crm_id, "nav_key": nav_key,
                               "crm_key": crm_key, "base_values": base,
                               **_names(mapping, record, target, body, values,
                                        self._names_of(mapping, target))}
        # never an empty version: it would become *
        etag, other_etag, other_version = _ETAG_COLUMNS[target]
        row[etag] = outcome.etag or None
        row[other_etag] = record.get(other_version)
        modified = body.get(mapping.nav.modified) if target is Side.NAV else None
        if modified:
            row["nav_modified_at"] = str(modified)
        return row

    def _names_of(self, mapping: TableMapping, target: Side) -> frozenset[str]:
        key = (mapping.name, target)
        found = self._name_fields.get(key)
        if found is None:
            found = self._name_fields[key] = _name_fields(mapping, target)
        return found

    def store_couplings(self, mapping: TableMapping, rows: list[dict[str, Any]]) -> None:
        """Store couplings in one go; when that fails, one by one, so one bad row costs only
        its own coupling (kept as a record error: written but not coupled)."""
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
                        mapping.name, Direction.TO_CRM, f"written but not coupled: {error}",
                        source_id=row["nav_id"], destination_id=row["crm_id"])

    def store_failures(self, mapping: TableMapping, tally: DirectionTally,
                       failures: list[Failure], values: dict[str, list[dict[str, Any]]],
                       target: Side) -> None:
        """Record errors (payload sent, response) and the retry pass / skip rule."""
        if not failures:
            return
        direction = target.direction
        errors = []
        statuses = []
        source_column = target.other.column("value")
        for record, message, transient, payload, response in failures:
            source = source_id(record, target)
            other = record[target.column("id")]
            sent = {r["field"]: r.get(source_column) or r["new_value"]
                    for r in values.get(record["record_id"], [])}
            reply = response if isinstance(response, dict) else {}
            errors.append({"mapping": mapping.name, "direction": str(direction),
                           "message": message, "run_id": tally.run_id, "source_id": source,
                           "destination_id": other, "transient": transient,
                           "source_label": _label_of(record, target.other),
                           "payload": payload, "response": response, "source_values": sent,
                           "http_status": reply.get("status") if response else None,
                           "service_code": reply.get("code") if response else None})
            statuses.append(RecordFailure(source, message, transient, other))
        self.store.add_record_errors(errors)
        self.store.record_outcomes(mapping.name, direction, failed=statuses, run_id=tally.run_id,
                                   skip_after=mapping.skip_after)
        tally.add("failed", len(failures))

    def store_refused(self, mapping: TableMapping, records: pl.DataFrame, changes: pl.DataFrame,
                      tallies: dict[str, DirectionTally], messages: dict[str, str]) -> None:
        """Records refused because they changed since the preview, stored as transient
        failures (they never count toward skipping) so the next run previews them again."""
        rows = records.filter(pl.col("record_id").is_in(list(messages))).to_dicts()
        values = by_record(changes.filter(pl.col("record_id").is_in(list(messages))))
        for direction in mapping.directions:
            mine = [r for r in rows if failure_direction(mapping, r) == direction]
            self.store_failures(mapping, tallies[direction],
                                [(r, messages[r["record_id"]], True, None, None) for r in mine],
                                values, Direction(direction).target)

    # -- records without writes ---------------------------------------------------------------------
    def settle_other_records(self, run: ApplyRun) -> None:
        """Unchanged pairs (new base), new couplings without writes, conflicts, failures,
        skips and deletion conflicts."""
        self._settle_unchanged(run)
        self._store_conflicts(run)
        self._store_planned_failures(run)
        run.first.add("skipped", run.records.filter(action_is(PlanAction.SKIP)).height)
        self._settle_deletions(run)

    def _settle_unchanged(self, run: ApplyRun) -> None:
        """Unchanged pairs leave the retry pass; new ones (matched, nothing to write) and those
        whose fields both sides changed alike store their coupling with the new base."""
        mapping = run.mapping
        unchanged = run.records.filter(action_is(PlanAction.UNCHANGED))
        settled = unchanged.filter(pl.col("nav_id").is_not_null() & pl.col("crm_id").is_not_null())
        for direction in mapping.directions:
            source = Direction(direction).source
            self.store.record_outcomes(mapping.name, direction,
                                       succeeded=settled[source.column("id")].to_list())
        same = {record_id: {r["field"]: r["new_value"] for r in rows}
                for record_id, rows in run.same.items()}
        coupling_rows = []
        for record in unchanged.iter_rows(named=True):
            nav_id = record["nav_id"]
            new = record["record_id"] not in run.bases
            if not new and record["record_id"] not in same:
                continue
            base = {**(run.bases.get(nav_id) or {}), **same.get(record["record_id"], {})}
            coupling_rows.append({"nav_id": nav_id, "crm_id": record["crm_id"],
                                  "nav_key": record.get("nav_key"),
                                  "crm_key": record.get("crm_key"),
                                  "nav_name": record.get("nav_name"),
                                  "crm_name": record.get("crm_name"), "base_values": base,
                                  "nav_etag": record.get("nav_version"),
                                  "crm_etag": record.get("crm_version")})
            if new:
                run.first.add("coupled")
        self.store_couplings(mapping, coupling_rows)

    def _store_conflicts(self, run: ApplyRun) -> None:
        """Held conflicts: a record error and the retry pass (never skipped)."""
        mapping, first = run.mapping, run.first
        for record in run.records.filter(action_is(PlanAction.CONFLICT)).iter_rows(named=True):
            message = record["message"] or "the same field changed on both sides"
            self.store.add_record_error(mapping.name, run.first_direction,
                                        f"conflict: {message}", run_id=first.run_id,
                                        source_id=record["nav_id"],
                                        destination_id=record["crm_id"],
                                        source_label=_label_of(record, Side.NAV))
            self.store.record_outcomes(mapping.name, Direction.TO_CRM, failed=[RecordFailure(
                record["nav_id"], f"conflict: {message}", conflict=True,
                destination_id=record["crm_id"])], run_id=first.run_id)
            first.add("conflicts")

    def _store_planned_failures(self, run: ApplyRun) -> None:
        """Records the preview already failed, under the direction of their source."""
        mapping = run.mapping
        failures = run.records.filter(action_is(PlanAction.FAIL)).to_dicts()
        for direction in mapping.directions:
            chosen = [r for r in failures if _planned_failure_direction(mapping, r) == direction]
            values = by_record(run.changes.filter(
                pl.col("record_id").is_in([r["record_id"] for r in chosen])))
            self.store_failures(mapping, run.tallies[direction], [
                (r, r["message"] or "cannot be synchronized", False, None, None) for r in chosen
            ], values, Direction(direction).target)

    def _settle_deletions(self, run: ApplyRun) -> None:
        """Deletion conflicts: uncoupled (``remove_coupling``) or held as failures."""
        mapping, first = run.mapping, run.first
        deletions = run.records.filter(action_is(PlanAction.DELETION_CONFLICT))
        for record in deletions.iter_rows(named=True):
            if mapping.deletion_conflict == "remove_coupling":
                first.add("uncoupled", self.store.uncouple(mapping.name, nav_id=record["nav_id"]))
                continue
            self.store_failures(mapping, first, [(record, record["message"], False, None, None)],
                                {}, run.first_direction.target)

    # -- the end of a mapping's apply ---------------------------------------------------------------
    def advance_watermarks(self, mapping: TableMapping, marks: Mapping[str, str]) -> None:
        """Move the watermarks to the plan's, never back: a plan applied after a later sync
        must not make the next run read everything since its own, older preview again."""
        current = self.store.watermarks(mapping.name)
        for side, value in marks.items():
            if not current.get(side) or parse_moment(value) > parse_moment(current[side]):
                self.store.set_watermark(mapping.name, side, value)

    def finish(self, run: ApplyRun, status: str, message: str) -> str:
        """Close the runs of both directions; the worst status of the two."""
        total = self.store.count_couplings(run.mapping.name)
        worst = status
        for direction, tally in run.tallies.items():
            touched = run.touched(Direction(direction).target)
            tally.counts["unchanged"] = max(0, total - touched - tally.counts.get("conflicts", 0))
            run_status = status
            if status == "finished" and (tally.counts.get("failed") or
                                         tally.counts.get("conflicts")):
                run_status = "failed"
                worst = "failed"
            self.store.finish_run(tally.run_id, run_status, tally.counts, message=message)
        return worst
