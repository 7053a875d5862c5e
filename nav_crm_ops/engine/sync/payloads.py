"""Plan values as the services take them: the payload of one record's write.

A plan holds canonical text in NAV's terms (``engine.resolve``); a write needs the service's
own values: CRM lookups as ``@odata.bind`` paths to the coupled record, option codes as CRM
choice numbers (created first when the field says ``on_missing: create``), NAV reference codes
as their GUIDs, numbers and booleans typed. A value that cannot be translated is not written:
the record fails with the reason (:meth:`Payloads.field_value` returns it).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import polars as pl

from ...connectors.factory import Connections
from ...exceptions import ConnectorError
from ..mapping import FieldMapping, TableMapping
from ..plan import split_line_field
from ..resolve import Resolver, is_unresolved
from ..vocabulary import Side

__all__ = ["FieldWriter", "Payloads", "natural_key", "source_marks", "typed"]


def typed(value: str | None, fld: FieldMapping) -> Any:
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


def natural_key(mapping: TableMapping, payload: dict[str, Any]) -> dict[str, Any] | None:
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


def source_marks(marks: Mapping[str, Any], body: Mapping[str, Any], today: str,
                 now: str) -> dict[str, Any]:
    """What ``mark_source_on_create`` writes to a source record once its copy exists:
    ``{created.<field>}`` takes the created record's value, ``{today}`` / ``{now}`` the date
    and time, anything else is written as it is."""
    payload: dict[str, Any] = {}
    for column, value in marks.items():
        if isinstance(value, str) and value.startswith("{created.") and value.endswith("}"):
            payload[column] = body.get(value[len("{created."):-1])
        elif value == "{today}":
            payload[column] = today
        elif value == "{now}":
            payload[column] = now
        else:
            payload[column] = value
    return payload


def _creates_options(fld: FieldMapping) -> bool:
    return fld.options is not None and fld.options.on_missing == "create"


def _missing_options(frame: pl.DataFrame, known: dict[str, dict[str, Any]]) -> int:
    """How many distinct (field, code) pairs of ``frame`` a field creating options lacks;
    computed over the distinct pairs (polars) instead of every record's values in Python."""
    pairs = (frame.lazy()
             .select(pl.col("field").str.to_lowercase(), pl.col("new_value").cast(pl.Utf8))
             .filter(pl.col("field").is_in(list(known)) & pl.col("new_value").is_not_null()
                     & (pl.col("new_value") != ""))
             .unique().collect())
    return sum(1 for name, code in pairs.iter_rows() if code not in known[name])


def _wanted_options(rows: list[dict[str, Any]], values: Mapping[str, Mapping[str, Any]],
                    creating: dict[str, FieldMapping], known: dict[str, dict[str, Any]],
                    ) -> dict[tuple[str, str], FieldMapping]:
    """The (field, code) pairs the records need and CRM lacks, in the records' order (the
    order CRM is asked to create them in); ``values``: per record id, ``{field: new_value}``."""
    wanted: dict[tuple[str, str], FieldMapping] = {}
    for record in rows:
        for field_name, code in values.get(record["record_id"], {}).items():
            name = field_name.lower()
            fld = creating.get(name)
            if fld is None:
                continue
            if code and code not in known[name]:
                wanted.setdefault((fld.name, code), fld)
    return wanted


class FieldWriter(NamedTuple):
    """How one field change's value is written (:meth:`Payloads.writer`): a header field
    ``fld`` (``source``: the column its value came from; ``plain``: the column it is written
    to as it is, or None) or a line field ``line`` (position, line field name)."""

    fld: FieldMapping | None
    line: tuple[int, str] | None
    source: str
    plain: str | None


class Payloads:
    """Builds write payloads for one apply (the resolver caches lookups across records)."""

    def __init__(self, connections: Connections, resolver: Resolver) -> None:
        self.connections = connections
        self.resolver = resolver
        self._fields: dict[tuple[str, str], Any] = {}
        self._plain: dict[tuple[str, str, Side], str | None] = {}
        self._writers: dict[tuple[str, Side], dict[str, FieldWriter]] = {}
        self._found: dict[tuple[str, str], str] = {}
        """CRM ids a lookup found in this apply, by (field, NAV key): a million records look
        up a few hundred salespeople and currencies. An apply's writes add couplings; the one
        they remove (a restored CRM record's pair, whose BC record is gone, before its new BC
        create) is not a NAV key a lookup still finds. Misses are asked again."""

    def header_or_line(self, mapping: TableMapping, name: str,
                       ) -> tuple[FieldMapping, None] | tuple[None, tuple[int, str]]:
        """The header field a field change names, or its (line position, line field).

        Remembered per name for the apply: a chunk of 4,000 records names the same ~14 fields
        56,000 times. A name that is neither raises MappingError (``mapping.field``)."""
        key = (mapping.name, name)
        found = self._fields.get(key)
        if found is None:
            # a header field is found at once; only other names are split as line fields
            fld = mapping.fields_by_name.get(name.lower())
            line = None if fld is not None else split_line_field(name)
            found = (None, line) if line is not None else (fld or mapping.field(name), None)
            self._fields[key] = found
        return found

    def writer(self, mapping: TableMapping, name: str, target: Side) -> FieldWriter:
        """How a value of the field change ``name`` is written to ``target``: the header
        field (with the source column its value came from, and the column it is written to
        as it is, see :meth:`plain_column`) or the line field. One lookup per value instead
        of several calls; remembered per (mapping, name, target) for the apply
        (:meth:`writers`)."""
        known = self.writers(mapping, target)
        found = known.get(name)
        if found is None:
            fld, line = self.header_or_line(mapping, name)
            if fld is None:
                found = FieldWriter(None, line, "", None)
            else:
                source = fld.nav if target is Side.CRM else fld.crm
                found = FieldWriter(fld, None, source, self.plain_column(mapping, fld, target))
            known[name] = found
        return found

    def writers(self, mapping: TableMapping, target: Side) -> dict[str, FieldWriter]:
        """The :meth:`writer` of each field change name met so far for ``mapping`` and
        ``target``, by name: a record's loop looks its names up here and asks
        :meth:`writer` only for a name not met yet."""
        key = (mapping.name, target)
        found = self._writers.get(key)
        if found is None:
            found = self._writers[key] = {}
        return found

    def plain_column(self, mapping: TableMapping, fld: FieldMapping, target: Side) -> str | None:
        """The CRM column a field writes its value to as it is (what :meth:`field_value`
        does for a CRM field without lookup or options that is not a number or a boolean),
        or None when the value needs :meth:`field_value`. Writes to NAV always do.

        Why: a first sync writes ~14 values per record, most of them plain text; deciding
        that once per field instead of per value saves several calls per value. Remembered
        per (mapping, field, target) for the apply."""
        key = (mapping.name, fld.name, target)
        if key not in self._plain:
            plain = (target is Side.CRM and fld.lookup is None and fld.options is None
                     and fld.compare.kind not in ("number", "bool"))
            self._plain[key] = fld.crm if plain else None
        return self._plain[key]

    def field_value(self, mapping: TableMapping, fld: FieldMapping, value: str | None,
                    payload: dict[str, Any], binds: dict[str, str],
                    target: Side) -> str | None:
        """Put one field's value into ``payload``; the reason when it cannot be written."""
        if value is None and fld.not_null:
            return None
        if target is Side.CRM:
            return self.crm_value(mapping, fld, value, payload, binds)
        return self.nav_value(mapping, fld, value, payload)

    def line_payloads(self, mapping: TableMapping, line_rows: dict[int, list[dict[str, Any]]],
                      target: Side, problems: list[str]) -> list[dict[str, Any]]:
        """The lines of a document created in one request (deep insert), in line order."""
        lines = mapping.line_mapping
        out: list[dict[str, Any]] = []
        for position in sorted(line_rows):
            payload: dict[str, Any] = {}
            binds: dict[str, str] = {}
            for row in line_rows[position]:
                problem = self.field_value(lines, lines.field(row["field"]), row["new_value"],
                                           payload, binds, target)
                if problem:
                    problems.append(f"line {position}: {problem}")
            payload.update({f"{nav}@odata.bind": path for nav, path in binds.items()})
            out.append(payload)
        return out

    def create_options(self, mapping: TableMapping, rows: list[dict[str, Any]],
                       values: Mapping[str, Mapping[str, Any]],
                       frame: pl.DataFrame | None = None) -> None:
        """Choice values a chunk needs and CRM lacks (``on_missing: create``), created in one
        request before the chunk's writes; a refusal is left to the records (they fail naming
        the value). ``values``: per record id, ``{field: new_value}``. ``frame``: the chunk's field changes as a frame (``record_id``, ``field``,
        ``new_value``), which tells column-wise whether anything is missing at all."""
        creating = {f.name.lower(): f for f in mapping.enabled_fields() if _creates_options(f)}
        if not creating:
            return
        # Only the fields that create options are looked at (a chunk holds ~14 values per
        # record; looking each one up cost 2 s per 100,000 records); line fields never match.
        known = {name: self.resolver.option_maps(mapping.name, fld)[0]
                 for name, fld in creating.items()}
        if frame is not None and _missing_options(frame, known) < 2:
            return  # the usual chunk: every code known (one pass over distinct values)
        wanted = _wanted_options(rows, values, creating, known)
        if len(wanted) < 2:
            return
        keys = list(wanted)
        try:
            created = self.connections.dataverse.insert_option_values(
                [(mapping.crm.logical_name, wanted[k].crm, k[1]) for k in keys])
        except ConnectorError:
            return
        for key, value in zip(keys, created, strict=True):
            if isinstance(value, int):
                self.resolver.option_created(mapping.name, wanted[key], key[1], value)

    # -- CRM values ---------------------------------------------------------------------------
    def crm_value(self, mapping: TableMapping, fld: FieldMapping, value: str | None,
                  payload: dict[str, Any], binds: dict[str, str]) -> str | None:
        if fld.lookup is not None:
            return self._crm_lookup(fld, value, payload, binds)
        if fld.options is not None and value:
            return self._crm_option(mapping, fld, value, payload)
        payload[fld.crm] = typed(value, fld)
        return None

    def _crm_lookup(self, fld: FieldMapping, value: str | None, payload: dict[str, Any],
                    binds: dict[str, str]) -> str | None:
        assert fld.lookup is not None
        crm_id = self._found.get((fld.name, value)) if value else None
        if value and crm_id is None:
            crm_id = self.resolver.lookup_nav_to_crm(fld, [value]).get(value)
            if crm_id is not None:
                self._found[(fld.name, value)] = crm_id
        if not value or (crm_id is None and fld.clear_on_failed_lookup):
            payload[f"{fld.lookup.navigation}@odata.bind"] = None
            return None
        if crm_id is None:
            return self.resolver.lookup_failure(fld, value, to="crm")
        binds[fld.lookup.navigation] = f"/{fld.lookup.target}({crm_id})"
        return None

    def _crm_option(self, mapping: TableMapping, fld: FieldMapping, value: str,
                    payload: dict[str, Any]) -> str | None:
        assert fld.options is not None
        to_crm, _ = self.resolver.option_maps(mapping.name, fld)
        number = to_crm.get(value)
        if number is None:
            if fld.options.on_missing != "create":
                return (f"{fld.nav} {value!r} has no CRM option in {fld.crm}: add it to the "
                        f"options of field {fld.name} in mapping {mapping.name}")
            number = self.connections.dataverse.insert_option_value(
                mapping.crm.logical_name, fld.crm, value)
            self.resolver.option_created(mapping.name, fld, value, number)
        payload[fld.crm] = number
        return None

    # -- BC values ----------------------------------------------------------------------------
    def nav_value(self, mapping: TableMapping, fld: FieldMapping, value: str | None,
                  payload: dict[str, Any]) -> str | None:
        if value and is_unresolved(value):
            return self._nav_unresolved(mapping, fld, value, payload)
        if fld.lookup is not None and fld.lookup.via is not None and value:
            linked = self.resolver.key_to_via(fld, value)
            if linked is None and fld.clear_on_failed_lookup:
                linked = ""
            if linked is None:
                return self.resolver.lookup_failure(fld, value, to="nav")
            payload[fld.nav] = linked
            return None
        if fld.nav_reference is not None:
            return self._nav_reference(fld, value, payload)
        payload[fld.nav] = typed(value, fld) if value is not None else (
            "" if fld.compare.kind == "text" else None)
        return None

    def _nav_unresolved(self, mapping: TableMapping, fld: FieldMapping, value: str,
                        payload: dict[str, Any]) -> str | None:
        """A CRM value with no NAV counterpart: cleared, or the reason."""
        if fld.lookup is not None and fld.clear_on_failed_lookup:
            payload[fld.nav] = ""
            return None
        if fld.lookup is not None:
            return self.resolver.lookup_failure(fld, value, to="nav")
        return (f"{fld.crm}: CRM {value.strip('<>')} has no BC code: add it to the options "
                f"of field {fld.name} in mapping {mapping.name}")

    def _nav_reference(self, fld: FieldMapping, value: str | None,
                       payload: dict[str, Any]) -> str | None:
        assert fld.nav_reference is not None
        if not value:
            payload[fld.nav] = None
            return None
        reference = self.resolver.reference_id(fld, value)
        if reference is None:
            return (f"{fld.nav}: BC has no {fld.nav_reference.entity} with code {value!r}: "
                    "create it in BC or change the value in CRM")
        payload[fld.nav] = reference
        return None
