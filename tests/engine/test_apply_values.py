"""The apply's writes read one ``{field: new_value}`` dict per record (issue #19: client CPU
per record) and give exactly what the former reading of one dict per field change gave.

For every default mapping, both write targets and random field changes (random subsets of
header and document-line fields in random order; nulls, blanks, numbers, booleans, known and
unknown option codes and lookups, unresolved CRM choices), the former per-row code (kept here
as the reference) and the applier's code are compared: payloads with their key order, binds,
problems, document lines, template choice, new bases, coupling names and keys, history rows,
the rows failures store, and the options a chunk creates.
"""

from __future__ import annotations

import random
from typing import Any

import polars as pl
import pytest

from nav_crm_ops.connectors.models import WriteOutcome
from nav_crm_ops.engine.mapping import MappingSet, TableMapping
from nav_crm_ops.engine.plan.schema import line_field
from nav_crm_ops.engine.sync.applier import _draft
from nav_crm_ops.engine.sync.ledger import Ledger, _name_fields
from nav_crm_ops.engine.sync.payloads import Payloads, _creates_options, _wanted_options
from nav_crm_ops.engine.sync.run import (
    WRITE_VALUE_COLUMNS,
    ApplyRun,
    DirectionTally,
    by_record,
    write_chunks,
)
from nav_crm_ops.engine.vocabulary import INSERTS, Side

MAPPINGS = MappingSet.from_entries(MappingSet.default_entries())
VALUES = {"number": (None, "10", "10.5", "0", "-3.25"), "bool": (None, "true", "false"),
          "text": (None, "", "A", "B", "x-missing", "<7>", "Adatum", "30 DAYS", "FOB", "ZZ NEW")}
"""Canonical plan values per compare kind (other kinds take the text ones)."""


class _Resolver:
    """Deterministic stand-in for ``engine.resolve.Resolver`` (what ``field_value`` asks)."""

    def __init__(self) -> None:
        self.options: dict[tuple[str, str], tuple[dict[str, int], dict[int, str]]] = {}

    def lookup_nav_to_crm(self, fld: Any, values: Any) -> dict[str, str]:
        return {v: f"guid-{v}" for v in values if v and not v.startswith("x")}

    def lookup_failure(self, fld: Any, value: str, to: str) -> str:
        return f"{fld.name}: no {to} record for {value!r}"

    def option_maps(self, mapping: str, fld: Any) -> tuple[dict[str, int], dict[int, str]]:
        key = (mapping, fld.name)
        if key not in self.options:
            self.options[key] = ({"A": 1, "30 DAYS": 2, "FOB": 3}, {1: "A", 2: "30 DAYS", 3: "FOB"})
        return self.options[key]

    def option_created(self, mapping: str, fld: Any, code: str, value: int) -> None:
        to_crm, to_nav = self.option_maps(mapping, fld)
        to_crm[code], to_nav[value] = value, code

    def key_to_via(self, fld: Any, value: str) -> str | None:
        return None if value.startswith("x") else f"via-{value}"

    def reference_id(self, fld: Any, value: str) -> str | None:
        return None if value.startswith("x") else f"ref-{value}"


class _Dataverse:
    def __init__(self) -> None:
        self.created: list[tuple[str, str, str]] = []

    def insert_option_value(self, entity: str, column: str, value: str) -> int:
        self.created.append((entity, column, value))
        return 1000 + len(self.created)


class _Connections:
    def __init__(self) -> None:
        self.dataverse = _Dataverse()


def _payloads() -> Payloads:
    return Payloads(_Connections(), _Resolver())  # type: ignore[arg-type]


# -- the former per-row code (the reference) ------------------------------------------------------
def _old_draft(mapping: TableMapping, rows: list[dict[str, Any]], target: Side,
               payloads: Payloads) -> tuple[dict[str, Any], dict[str, str], list[str],
                                            dict[int, list[dict[str, Any]]]]:
    payload: dict[str, Any] = {}
    binds: dict[str, str] = {}
    problems: list[str] = []
    lines: dict[int, list[dict[str, Any]]] = {}
    for row in rows:
        fld, line, _, plain = payloads.writer(mapping, row["field"], target)
        if line is not None:
            lines.setdefault(line[0], []).append({**row, "field": line[1]})
            continue
        assert fld is not None
        value = row["new_value"]
        if plain is not None:
            if value is not None or not fld.not_null:
                payload[plain] = value
            continue
        problem = payloads.field_value(mapping, fld, value, payload, binds, target)
        if problem:
            problems.append(problem)
    return payload, binds, problems, lines


def _old_base(mapping: TableMapping, base: dict[str, Any] | None,
              rows: list[dict[str, Any]]) -> dict[str, Any]:
    names = mapping.diff_field_names
    new = dict(base or {})
    new.update({c["field"]: c["new_value"] for c in rows if c["field"] in names})
    return new


def _old_written_name(mapping: TableMapping, target: Side, rows: list[dict[str, Any]]) -> Any:
    fields = _name_fields(mapping, target)
    return next((c["new_value"] for c in rows if str(c["field"]).lower() in fields), None)


def _old_template(mapping: TableMapping, side: str, rows: list[dict[str, Any]]) -> Any:
    source = ({r["field"]: r["new_value"] for r in rows}
              if getattr(mapping.templates, side) else {})
    candidates = sorted(getattr(mapping.templates, side), key=lambda t: t.priority)
    return next((t for t in candidates if t.matches(source)), None)


# -- random plans ---------------------------------------------------------------------------------
def _names(mapping: TableMapping) -> dict[str, tuple[str | None, ...]]:
    """The field-change names a record of ``mapping`` may carry, with the values they take."""
    def pool(kind: str) -> tuple[str | None, ...]:
        return VALUES.get(kind, VALUES["text"])

    names = {f.name: pool(f.compare.kind) for f in mapping.enabled_fields()}
    if mapping.lines is not None:
        names.update({line_field(p, f.name): pool(f.compare.kind) for p in (1, 2, 3)
                      for f in mapping.line_mapping.enabled_fields()})
    return names


def _changes(mapping: TableMapping, target: Side, rng: random.Random,
             records: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    names = _names(mapping)
    ids = [f"r{i:03d}" for i in range(records)]
    actions = [rng.choice(["insert_crm", "update_crm"] if target is Side.CRM
                          else ["insert_nav", "update_nav"]) for _ in ids]
    rows = []
    for record_id in ids:
        for name in rng.sample(list(names), rng.randint(0, len(names))):
            pool = names[name]
            rows.append({"record_id": record_id, "field": name, "new_value": rng.choice(pool),
                         "nav_value": rng.choice(pool), "crm_value": rng.choice(pool),
                         "target": str(target)})
    rng.shuffle(rows)  # the diff lists changes field by field, not record by record
    schema = {c: pl.Utf8 for c in (*WRITE_VALUE_COLUMNS, "target")}
    records_frame = pl.DataFrame({
        "record_id": ids, "action": actions, "nav_id": [f"n{i}" for i in ids],
        "crm_id": [f"c{i}" for i in ids], "nav_name": [None] * records,
        "crm_name": ["kept"] * records, "crm_key": [None] * records,
        "nav_version": ["nv"] * records, "crm_version": ["cv"] * records})
    return records_frame, pl.DataFrame(rows, schema=schema)


CASES = [(m.name, t) for m in MAPPINGS for t in Side if m.enabled_fields()]


@pytest.mark.parametrize(("name", "target"), CASES, ids=[f"{n}-{t}" for n, t in CASES])
def test_record_values_give_what_field_change_rows_gave(name: str, target: Side) -> None:
    mapping = MAPPINGS.get(name)
    rng = random.Random(f"{name}:{target}")
    records, changes = _changes(mapping, target, rng, 60)
    old_payloads, new_payloads = _payloads(), _payloads()
    ledger = Ledger(None)  # type: ignore[arg-type]  # coupling_row never asks the store
    for _, _, chunk in write_chunks(records, changes, target, 7):
        assert chunk.frame is not None
        rows_of = by_record(chunk.frame)
        assert chunk.change_rows() == rows_of  # what failures store
        for record in chunk.rows:
            rows = rows_of.get(record["record_id"], [])
            values = chunk.values.get(record["record_id"], {})
            payload, binds, problems, lines = _old_draft(mapping, rows, target, old_payloads)
            draft = _draft(mapping, values, target, new_payloads)
            assert list(draft.payload.items()) == list(payload.items())
            assert (draft.binds, draft.problems) == (binds, problems)
            if mapping.lines is not None:
                old_lines = old_payloads.line_payloads(mapping, lines, target, [])
                assert new_payloads.line_payloads(mapping, draft.line_rows, target, []) \
                    == old_lines
            assert mapping.template_for(target.literal, values) == \
                _old_template(mapping, target.literal, rows)
            _check_booking(mapping, ledger, chunk, record, rows, values)
        assert chunk.history == _old_history(chunk, rows_of, mapping.name)
        _check_options(mapping, chunk, rows_of)


def _run(mapping: TableMapping, records: pl.DataFrame, bases: dict[str, Any]) -> ApplyRun:
    tallies = {d: DirectionTally(i) for i, d in enumerate(mapping.directions)}
    return ApplyRun(mapping, "plan", records, pl.DataFrame(), tallies, bases=bases)


def _check_booking(mapping: TableMapping, ledger: Ledger, chunk: Any, record: dict[str, Any],
                   rows: list[dict[str, Any]], values: dict[str, Any]) -> None:
    """Coupling rows (base, names, keys) and history as the former rows gave them."""
    target = chunk.target
    stored = {"name": "stored", "accountnumber": "S1", "other": "x"}
    run = _run(mapping, pl.DataFrame(), {record["nav_id"]: dict(stored)})
    assert run.new_base(record["nav_id"], values) == _old_base(mapping, stored, rows)
    for body in ({}, {target.pick(mapping.nav.name, mapping.crm.name): "sent back"}):
        outcome = WriteOutcome("op", ok=True, id="00000000-0000-0000-0000-000000000001",
                               etag="e", body=body)
        row = ledger.coupling_row(_run(mapping, pl.DataFrame(), {}), dict(record), target,
                                  outcome, values)
        assert row["base_values"] == _old_base(mapping, None, rows)
        column = target.pick(mapping.nav.name, mapping.crm.name)
        if column:
            written = body.get(column) or _old_written_name(mapping, target, rows)
            expected = str(written) if written not in (None, "") else record[
                target.column("name")]
            assert row[target.column("name")] == expected
        natural = mapping.crm_natural_key_field
        if target is Side.CRM and natural is not None:
            assert row["crm_key"] == next(
                (c["new_value"] for c in rows if c["field"] == natural), None)
    chunk.keep_history(1, mapping.name, record, "v")


def _old_history(chunk: Any, rows_of: dict[str, list[dict[str, Any]]],
                 mapping: str) -> list[tuple[Any, ...]]:
    out: list[tuple[Any, ...]] = []
    old, target = chunk.target.column("value"), chunk.target.value
    for record in chunk.rows:
        nav_id, crm_id = record["nav_id"], record["crm_id"]
        if record["action"] in INSERTS:
            out.append((1, mapping, target, nav_id, crm_id, None, None, None, "v", True))
            continue
        out.extend((1, mapping, target, nav_id, crm_id, row["field"], row.get(old),
                    row["new_value"], "v", False) for row in rows_of.get(record["record_id"], ()))
    return out


def _check_options(mapping: TableMapping, chunk: Any,
                   rows_of: dict[str, list[dict[str, Any]]]) -> None:
    creating = {f.name.lower(): f for f in mapping.enabled_fields() if _creates_options(f)}
    known: dict[str, dict[str, Any]] = {name: {"A": 1} for name in creating}
    old: dict[tuple[str, str], Any] = {}
    for record in chunk.rows:
        for change in rows_of.get(record["record_id"], ()):
            name = change["field"].lower()
            fld = creating.get(name)
            code = change["new_value"]
            if fld is not None and code and code not in known[name]:
                old.setdefault((fld.name, code), fld)
    new = _wanted_options(chunk.rows, chunk.values, creating, known)
    assert list(new.items()) == list(old.items())


def test_templates_with_filters_read_the_record_values() -> None:
    """A side's templates with filters are chosen from the values as before (lowest priority
    number first; an empty filter matches every record)."""
    mapping = MappingSet.from_entries([{
        "name": "T", "direction": "to_crm",
        "nav": {"entity": "customers"},
        "crm": {"entity": "accounts", "logical_name": "account", "key": "accountid"},
        "templates": {"crm": [{"name": "any", "priority": 5, "values": {"a": 1}},
                              {"name": "big", "priority": 1, "filter": {"size": "big"},
                               "values": {"a": 2}},
                              {"name": "also big", "priority": 1, "filter": {"size": "big"}}]},
        "fields": [{"nav": "size", "crm": "size"}, {"nav": "name", "crm": "name"}],
    }]).get("T")
    for values in ({}, {"size": "big"}, {"name": "x", "size": "small"}, {"size": None}):
        rows = [{"field": f, "new_value": v} for f, v in values.items()]
        assert mapping.template_for("crm", values) == _old_template(mapping, "crm", rows)
    assert mapping.template_for("crm", {"size": "big"}).name == "big"  # type: ignore[union-attr]
    assert mapping.template_for("nav", {"size": "big"}) is None
