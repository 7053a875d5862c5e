"""Values that point elsewhere: lookups through another mapping's couplings, NAV reference
tables (payment terms, shipment methods) and option values.

Why one namespace: the preview shows people codes they know (salesperson ``JR``, currency
``EUR``, customer ``10000``, payment terms ``30 DAYS``), never GUIDs or choice numbers. So both
sides are expressed in NAV's human terms before the diff:

* a lookup field holds the referenced record's NAV key (``LookupSpec.nav_key``); the CRM GUID is
  translated through the referenced mapping's couplings (``crm_id -> nav_key``) and back when
  writing to CRM (``nav_key -> crm_id``, sent as ``@odata.bind``);
* a ``nav_reference`` field holds the reference table's code instead of its GUID;
* an option field holds the NAV code; CRM choice values are translated through the mapping's
  option list plus the option mappings recorded in the state store.

A CRM value that cannot be translated shows as ``<not coupled: …>`` / ``<CRM option n>``; such a
value is never written: the record fails with a message that says what to couple or map.
NAV reference tables, ``via`` relation tables and CRM natural keys are cached in the state
store for an hour (:data:`REFERENCE_TTL_S`) and re-read at once when a value is not found, so
a run with nothing to do reads only the changes of each side.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from ..connectors.factory import Connections
from ..exceptions import ConnectorError, SyncError
from ..store import StateStore
from .ids import record_id
from .mapping import FieldMapping, MappingSet, TableMapping
from .plan.schema import split_line_field
from .vocabulary import Side

__all__ = ["REFERENCE_TTL_S", "UNRESOLVED_PREFIXES", "Resolver", "is_unresolved"]

UNRESOLVED_PREFIXES = ("<not coupled: ", "<CRM option ", "<no relation: ")
REFERENCE_TTL_S = 3600.0


def is_unresolved(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(UNRESOLVED_PREFIXES)


def _not_coupled(crm_id: str) -> str:
    return f"<not coupled: {crm_id}>"


def _holds(table: dict[str, str] | None, keys: list[str], values: list[str]) -> bool:
    """Whether ``table`` is known and has every wanted key and value (else it is read again)."""
    if table is None:
        return False
    return all(k in table for k in keys) and (not values or set(values) <= set(table.values()))


def _has_child(fld: FieldMapping) -> bool:
    """Whether the lookup points at a child record (a unit) standing for its parent."""
    return fld.lookup is not None and fld.lookup.crm_child is not None


def _falls_back_to_natural_keys(fld: FieldMapping) -> bool:
    return fld.lookup is not None and fld.lookup.crm_natural_key_fallback


_NAME_COLUMNS = ("name", "fullname", "title")
"""CRM columns that name a record for people (first found wins)."""


class _LookupIndex:
    """What a lookup's referenced mappings' couplings say about the ids and keys asked for so
    far in this run: ``to_crm`` (nav_key -> crm_id), ``to_nav`` (crm_id -> nav_key),
    ``by_nav_id`` (nav_id -> nav_key).

    Why not the whole mappings: a preview of ten changes must not load 200,000 couplings to
    translate the few values its rows hold. Each dictionary is filled only from lookups by its
    own key column, mapping by mapping in the lookup's order (so the first mapping that knows
    a key wins, as it did over whole tables); couplings without a NAV key translate nothing."""

    def __init__(self, store: StateStore, names: tuple[str, ...]) -> None:
        self.store, self.names = store, names
        self.to_crm: dict[str, str] = {}
        self.to_nav: dict[str, str] = {}
        self.by_nav_id: dict[str, str] = {}
        self._asked: dict[str, set[str]] = {c: set() for c in ("crm_id", "nav_key", "nav_id")}
        self._nav_ids_of_key: dict[str, list[str]] = {}

    def ensure(self, *, crm_ids: Iterable[str] = (), nav_keys: Iterable[str] = (),
               nav_ids: Iterable[str] = ()) -> None:
        """Look up the ids and keys not asked for yet."""
        for column, values in (("crm_id", crm_ids), ("nav_key", nav_keys), ("nav_id", nav_ids)):
            asked = self._asked[column]
            fresh = [v for v in dict.fromkeys(values) if v and v not in asked]
            if fresh:
                asked.update(fresh)
                self._fill(column, fresh)

    def _fill(self, column: str, values: list[str]) -> None:
        """Fill the dictionary keyed by ``column`` from each mapping's couplings of
        ``values`` (a ``nav_key`` lookup also remembers every NAV id coupled under a key)."""
        for name in self.names:
            found = self.store.couplings_frame(
                name, columns=["nav_id", "crm_id", "nav_key"],
                **{f"{column}s": values}).filter(pl.col("nav_key").is_not_null())
            for nav_id, crm_id, key in found.iter_rows():
                if column == "crm_id":
                    self.to_nav.setdefault(record_id(crm_id), key)
                elif column == "nav_key":
                    self.to_crm.setdefault(key, record_id(crm_id))
                    self._nav_ids_of_key.setdefault(key, []).append(record_id(nav_id))
                else:
                    self.by_nav_id.setdefault(record_id(nav_id), key)

    def nav_ids_of(self, key: str) -> list[str]:
        """The NAV ids coupled under the NAV key ``key`` in any referenced mapping."""
        self.ensure(nav_keys=[key])
        return list(dict.fromkeys(self._nav_ids_of_key.get(key, [])))


@dataclass
class Resolver:
    """Translations for one run (create one per preview or apply)."""

    mappings: MappingSet
    store: StateStore
    connections: Connections
    _lookups: dict[str, _LookupIndex] = field(default_factory=dict)
    _tables: dict[str, dict[str, str]] = field(default_factory=dict)
    _refreshed: set[str] = field(default_factory=set)
    _options: dict[tuple[str, str], tuple[dict[str, int], dict[int, str]]] = field(
        default_factory=dict)

    # -- cached translation tables -----------------------------------------------------------------
    def _table(self, scope: str, load: Callable[[], dict[str, str]], *,
               keys: Iterable[str] = (), values: Iterable[str] = ()) -> dict[str, str]:
        """``scope``'s table from this run, the store's cache or the service (read again
        when stale or when a wanted key/value is missing, at most once per run)."""
        wanted_keys, wanted_values = [k for k in keys if k], [v for v in values if v]
        table = self._known_table(scope)
        if not _holds(table, wanted_keys, wanted_values) and scope not in self._refreshed:
            table = load()
            self.store.put_cached_map(scope, dict(table))
            self._refreshed.add(scope)
        self._tables[scope] = table or {}
        return self._tables[scope]

    def _known_table(self, scope: str) -> dict[str, str] | None:
        """``scope``'s table as this run or, while fresh, the store's cache holds it."""
        table = self._tables.get(scope)
        if table is not None:
            return table
        cached = self.store.cached_map(scope)
        if cached is not None and cached[1] < REFERENCE_TTL_S:
            return {k: v for k, v in cached[0].items() if k and v is not None}
        return None

    # -- lookups ---------------------------------------------------------------------------
    def _lookup_index(self, fld: FieldMapping) -> _LookupIndex:
        """The translations of ``fld``'s referenced mappings known so far (one per run)."""
        assert fld.lookup is not None
        names = tuple(self.mappings.get(n).name for n in fld.lookup.mappings)
        cache_key = " | ".join(names)
        index = self._lookups.get(cache_key)
        if index is None:
            index = self._lookups[cache_key] = _LookupIndex(self.store, names)
        return index

    def _lookup_maps(self, fld: FieldMapping, *, crm_ids: Iterable[str] = (),
                     nav_keys: Iterable[str] = (), nav_ids: Iterable[str] = (),
                     ) -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
        """(nav_key -> crm_id, crm_id -> nav_key, nav_id -> nav_key) of the referenced
        mappings' couplings (the first mapping wins when several know a key), holding at
        least the ``crm_ids``, ``nav_keys`` and ``nav_ids`` asked for (looked up in the state
        store, never whole mappings)."""
        index = self._lookup_index(fld)
        index.ensure(crm_ids=crm_ids, nav_keys=nav_keys, nav_ids=nav_ids)
        return index.to_crm, index.to_nav, index.by_nav_id

    def prefetch(self, mapping: TableMapping, changes: pl.DataFrame) -> None:
        """Look up at once, in chunks, the couplings behind the lookup values ``changes``
        (plan field changes of ``mapping``) write: an apply builds payloads one record at a
        time, and asking the state store once per value would cost a query per record."""
        if changes.height == 0:
            return
        values = changes.filter(pl.col("new_value").is_not_null()).group_by(
            "field", maintain_order=True).agg(pl.col("new_value").unique())
        for name, keys in values.iter_rows():
            line = split_line_field(name)
            table = mapping.line_mapping if line is not None and mapping.lines else mapping
            fld = table.fields_by_name.get((line[1] if line else name).lower())
            if fld is None or fld.lookup is None:
                continue
            index = self._lookup_index(fld)
            index.ensure(nav_keys=keys)
            if fld.lookup.via is not None:
                index.ensure(nav_ids=[n for k in keys for n in index.nav_ids_of(k)])

    def _children(self, fld: FieldMapping, *, child_ids: Iterable[str] = (),
                  parent_ids: Iterable[str] = ()) -> dict[str, str]:
        """``crm_child`` lookups: child id -> parent id (a unit -> its unit group)."""
        assert fld.lookup is not None and fld.lookup.crm_child is not None
        child = fld.lookup.crm_child
        parent_column = f"_{child.parent}_value"

        def load() -> dict[str, str]:
            frame = self.connections.dataverse.read(child.entity,
                                                    select=[child.key, parent_column],
                                                    filter=child.filter or None)
            return {record_id(c): record_id(p) for c, p in frame.iter_rows() if c and p}

        return self._table(f"crm:{child.entity}:{child.parent}:{child.filter}", load,
                           keys=child_ids, values=parent_ids)

    def _crm_natural_keys(self, fld: FieldMapping, *, crm_ids: Iterable[str] = (),
                          nav_keys: Iterable[str] = ()) -> None:
        """Fallback for records that exist only on the CRM side (the local currency is no
        BC currency record): the referenced CRM record with that natural key."""
        assert fld.lookup is not None
        target = self.mappings.get(fld.lookup.mapping)
        natural = target.crm.natural_key
        if not natural:
            return

        def load() -> dict[str, str]:
            frame = self.connections.dataverse.read(target.crm.entity,
                                                    select=[target.crm.key, natural])
            return {record_id(i): str(k) for i, k in frame.iter_rows() if i and k}

        crm_ids, nav_keys = list(crm_ids), list(nav_keys)
        table = self._table(f"crm:{target.crm.entity}:{natural}", load, keys=crm_ids,
                            values=nav_keys)
        # Only the table's records of the keys wanted: whether each is coupled decides, in the
        # table's order, as over the whole table.
        keys = {table[i] for i in crm_ids if i in table} | set(nav_keys)
        entries = [(i, k) for i, k in table.items() if k in keys]
        to_crm, to_nav, _ = self._lookup_maps(fld, crm_ids=[i for i, _ in entries],
                                              nav_keys=keys)
        for crm_id, key in entries:
            if crm_id not in to_nav and key not in to_crm:
                to_crm[key] = crm_id
                to_nav[crm_id] = key

    def _parent_guids(self, fld: FieldMapping, guids: list[str | None]) -> list[str | None]:
        """``crm_child`` lookups: each child GUID replaced by its parent's (kept if unknown)."""
        if not _has_child(fld):
            return guids
        parents = self._children(fld, child_ids=[g for g in guids if g])
        return [None if g is None else parents.get(g, g) for g in guids]

    def _child_guids(self, fld: FieldMapping, found: dict[str, str]) -> dict[str, str]:
        """``crm_child`` lookups: each parent GUID replaced by a child's (dropped if none)."""
        if not _has_child(fld) or not found:
            return found
        table = self._children(fld, parent_ids=found.values())
        child_of = {parent: child for child, parent in table.items()}
        return {k: child_of[p] for k, p in found.items() if p in child_of}

    def lookup_crm_to_nav(self, fld: FieldMapping, values: pl.Series) -> pl.Series:
        """CRM GUIDs of a lookup column as NAV keys (``<not coupled: guid>`` when unknown)."""
        guids = self._parent_guids(
            fld, [None if v is None else record_id(v) for v in values.to_list()])
        _, to_nav, _ = self._lookup_maps(fld, crm_ids=[g for g in guids if g])
        missing = [g for g in guids if g and g not in to_nav]
        if missing and _falls_back_to_natural_keys(fld):
            self._crm_natural_keys(fld, crm_ids=missing)
        return pl.Series(values.name, [None if g is None else to_nav.get(g, _not_coupled(g))
                                       for g in guids], dtype=pl.Utf8)

    def lookup_nav_to_crm(self, fld: FieldMapping, nav_keys: Iterable[str]) -> dict[str, str]:
        """NAV keys -> CRM GUIDs for the keys that can be resolved (others are absent)."""
        keys = [k for k in dict.fromkeys(nav_keys) if k]
        to_crm, _, _ = self._lookup_maps(fld, nav_keys=keys)
        missing = [k for k in keys if k not in to_crm]
        if missing and _falls_back_to_natural_keys(fld):
            self._crm_natural_keys(fld, nav_keys=missing)
        return self._child_guids(fld, {k: to_crm[k] for k in keys if k in to_crm})

    def _via_table(self, fld: FieldMapping, *, keys: Iterable[str] = (),
                   values: Iterable[str] = ()) -> dict[str, str]:
        """The ``via`` relation of a lookup: field value -> referenced NAV id."""
        assert fld.lookup is not None and fld.lookup.via is not None
        via = fld.lookup.via
        target = self.mappings.get(fld.lookup.mapping)
        client = self.connections.business_central_for(target.nav.api)

        def load() -> dict[str, str]:
            frame = client.read(via.entity, select=[via.key, via.target_id],
                                filter=via.filter or None)
            return {str(k): record_id(t) for k, t in frame.iter_rows() if k and t}

        scope = f"nav:{via.entity}:{via.key}:{via.target_id}:{via.filter}"
        return self._table(scope, load, keys=keys, values=values)

    def via_to_key(self, fld: FieldMapping, values: pl.Series) -> pl.Series:
        """NAV values of a ``via`` lookup as the referenced mapping's NAV keys."""
        raw = [None if v is None or v == "" else str(v) for v in values.to_list()]
        table = self._via_table(fld, keys=[v for v in raw if v])
        _, _, by_nav_id = self._lookup_maps(
            fld, nav_ids=[table[v] for v in raw if v is not None and v in table])
        out: list[str | None] = []
        for value in raw:
            if value is None:
                out.append(None)
            elif value not in table:
                out.append(f"<no relation: {value}>")
            else:
                out.append(by_nav_id.get(table[value],
                                         _not_coupled(f"BC {table[value]} from {value}")))
        return pl.Series(values.name, out, dtype=pl.Utf8)

    def key_to_via(self, fld: FieldMapping, key: str) -> str | None:
        """The NAV value a ``via`` lookup field takes for the referenced record ``key``."""
        candidates = self._lookup_index(fld).nav_ids_of(key)
        _, _, by_nav_id = self._lookup_maps(fld, nav_ids=candidates)
        nav_ids = [n for n in candidates if by_nav_id.get(n) == key]
        if not nav_ids:
            return None
        table = self._via_table(fld, values=nav_ids)
        return next((value for value, target in table.items() if target in nav_ids), None)

    def lookup_failure(self, fld: FieldMapping, value: str, *, to: Side | str) -> str:
        """The message for a lookup value that cannot be written (says what to do)."""
        assert fld.lookup is not None
        target = self.mappings.get(fld.lookup.mapping)
        if value.startswith("<no relation: "):
            number = value.removeprefix("<no relation: ").removesuffix(">")
            via = fld.lookup.via
            return (f"{fld.nav} {number!r} has no relation to a {target.nav.entity} record in BC"
                    f"{f' ({via.entity})' if via else ''}: link it to a {target.name.lower()} "
                    "in BC (business relation) or correct the value")
        if value.startswith("<not coupled: BC "):
            nav_id, _, number = value.removeprefix("<not coupled: BC ").removesuffix(
                ">").partition(" from ")
            return (f"{fld.nav} {number!r} belongs to BC {target.nav.entity} record {nav_id}, "
                    f"which is not coupled to a CRM {target.crm.logical_name} (mapping "
                    f"{target.name}): run {target.name} first (see its errors), or couple it "
                    "by hand")
        names = " or ".join(self.mappings.get(n).name for n in fld.lookup.mappings)
        if to == Side.CRM:
            return (f"{fld.nav} {value!r} is not coupled to a CRM {target.crm.logical_name} "
                    f"(mapping {names}): run {target.name} first, or couple "
                    f"{target.nav.entity} {value!r} by hand")
        if to == Side.NAV and not value.startswith("<"):
            return (f"{fld.nav}: {target.nav.entity} {value!r} has no "
                    f"{fld.lookup.via.entity if fld.lookup.via else 'record'} in BC that this "
                    "field can point to: create it in BC, or choose another value in CRM")
        guid = value.removeprefix("<not coupled: ").removesuffix(">")
        return (f"{fld.crm}: CRM {target.crm.logical_name} {self.describe_crm(target.name, guid)}"
                f" is not coupled to a BC {target.nav.entity} record (mapping {names}): couple "
                f"it with `nav-crm-ops couple {target.name} <BC id> {guid}` or "
                f"`nav-crm-ops match {target.name}`, or run {target.name} first")

    def describe_crm(self, mapping: str, crm_id: str) -> str:
        """A CRM record as a person knows it (``'Adatum Corporation' (accountnumber 10000,
        id …)``), read once per run; the bare id when it cannot be read."""
        target = self.mappings.get(mapping)
        known = self._crm_record_names(target, crm_id)
        name = next((known[c] for c in _NAME_COLUMNS if c in known), None)
        natural = target.crm.natural_key
        details = ", ".join([*([f"{natural} {known[natural]}"] if natural and natural in known
                               else []), f"id {crm_id}"])
        return f"{name!r} ({details})" if name else details

    def _crm_record_names(self, target: TableMapping, crm_id: str) -> dict[str, str]:
        """The naming columns (:data:`_NAME_COLUMNS`, natural key) of one CRM record that hold
        a value, read once per run; empty when there are none or the read fails."""
        cache_key = f"describe:{target.crm.entity}:{crm_id}"
        known = self._tables.get(cache_key)
        if known is not None:
            return known
        columns = list(dict.fromkeys(
            [*(f.crm for f in target.enabled_fields()
               if f.crm in _NAME_COLUMNS and f.lookup is None),
             *([target.crm.natural_key] if target.crm.natural_key else [])]))
        known = {}
        if columns:
            try:
                frame = self.connections.dataverse.read_by_ids(
                    target.crm.entity, target.crm.key, [crm_id], select=columns)
            except ConnectorError:
                frame = pl.DataFrame()
            if frame.height:
                known = {c: str(frame[c][0]) for c in columns if frame[c][0] is not None}
        self._tables[cache_key] = known
        return known

    # -- NAV reference tables ----------------------------------------------------------------
    def reference_codes(self, fld: FieldMapping, *, ids: Iterable[str] = (),
                        codes: Iterable[str] = ()) -> dict[str, str]:
        """NAV reference GUID (lower case) -> code."""
        ref = fld.nav_reference
        assert ref is not None

        def load() -> dict[str, str]:
            frame = self.connections.business_central.read(ref.entity,
                                                           select=[ref.key, ref.field])
            return {str(k).lower(): str(v) for k, v in frame.iter_rows() if k is not None}

        return self._table(f"nav:{ref.entity}:{ref.key}:{ref.field}", load,
                           keys=[str(i).lower() for i in ids], values=codes)

    def reference_id(self, fld: FieldMapping, code: str) -> str | None:
        """The NAV reference GUID for ``code`` (None when BC has no such code)."""
        for guid, known in self.reference_codes(fld, codes=[code]).items():
            if known == code:
                return guid
        return None

    # -- options -------------------------------------------------------------------------------
    def option_maps(self, mapping: str, fld: FieldMapping) -> tuple[dict[str, int], dict[int, str]]:
        """(NAV code -> CRM value, CRM value -> NAV code): the mapping's list, then values the
        store recorded (created options)."""
        cache_key = (mapping.upper(), fld.name)
        cached = self._options.get(cache_key)
        if cached is None:
            to_crm: dict[str, int] = {}
            to_nav: dict[int, str] = {}
            for value in fld.options.values if fld.options else ():
                to_crm.setdefault(value.nav, value.crm)
                to_nav.setdefault(value.crm, value.nav)
            stored = self.store.option_mappings(mapping, fld.name)
            for nav_value, crm_value in stored.select("nav_value", "crm_value").iter_rows():
                to_crm.setdefault(str(nav_value), int(crm_value))
                to_nav.setdefault(int(crm_value), str(nav_value))
            cached = (to_crm, to_nav)
            self._options[cache_key] = cached
        return cached

    def option_created(self, mapping: str, fld: FieldMapping, code: str, value: int) -> None:
        self.store.set_option_mapping(mapping, fld.name, code, value, caption=code)
        to_crm, to_nav = self.option_maps(mapping, fld)
        to_crm[code] = value
        to_nav[value] = code

    def options_to_nav(self, mapping: str, fld: FieldMapping, values: pl.Series) -> pl.Series:
        _, to_nav = self.option_maps(mapping, fld)
        out: list[str | None] = []
        for raw in values.to_list():
            if raw is None:
                out.append(None)
                continue
            try:
                number = int(raw)
            except (TypeError, ValueError):
                raise SyncError(f"{fld.crm}: CRM value {raw!r} is not a choice value") from None
            out.append(to_nav.get(number, f"<CRM option {number}>"))
        return pl.Series(values.name, out, dtype=pl.Utf8)
