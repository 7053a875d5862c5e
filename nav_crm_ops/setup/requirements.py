"""What each mapping needs from the two services before it can run: Dataverse tables, the
columns it reads and writes (plain values, lookups, choices with their option values), the
privileges of the application user, and the Business Central API, entity set and properties.

Why derived from the mappings: an override that renames a field changes what must exist; the
doctor checks exactly what the workspace's mappings will send, not a fixed list.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from ..engine.mapping import MappingSet, TableMapping
from ..engine.mapping.specs import FieldMapping

__all__ = [
    "Access",
    "BcEntityNeed",
    "BcPropertyNeed",
    "ColumnRole",
    "CrmColumnNeed",
    "CrmTableNeed",
    "MappingRequirements",
    "OptionNeed",
    "PrivilegeNeed",
    "Use",
    "requirements_for",
]


class Use(StrEnum):
    READ = "read"
    WRITE = "write"


class ColumnRole(StrEnum):
    """What the mapping does with a column (decides which ``AttributeType`` fits)."""

    VALUE = "value"
    LOOKUP = "lookup"
    CHOICE = "choice"

    def accepts(self, attribute_type: str) -> bool:
        if self is ColumnRole.LOOKUP:
            return attribute_type in ("Lookup", "Customer", "Owner")
        if self is ColumnRole.CHOICE:
            return attribute_type in ("Picklist", "State", "Status")
        return True


class Access(StrEnum):
    """Privilege kinds; the privilege name is ``prv<access><table SchemaName>``."""

    READ = "Read"
    CREATE = "Create"
    WRITE = "Write"
    APPEND = "Append"
    APPEND_TO = "AppendTo"


@dataclass(frozen=True)
class CrmTableNeed:
    logical_name: str
    entity_set: str
    where: str


@dataclass(frozen=True)
class CrmColumnNeed:
    table: str
    column: str
    use: Use
    role: ColumnRole
    where: str


@dataclass(frozen=True)
class OptionNeed:
    table: str
    column: str
    value: int
    label: str
    where: str


@dataclass(frozen=True)
class PrivilegeNeed:
    access: Access
    table: str

    def name(self, schema_name: str) -> str:
        return f"prv{self.access.value}{schema_name}"


@dataclass(frozen=True)
class BcEntityNeed:
    api: str
    entity_set: str
    where: str


@dataclass(frozen=True)
class BcPropertyNeed:
    api: str
    entity_set: str
    name: str
    use: Use
    where: str


@dataclass(frozen=True)
class MappingRequirements:
    """Everything one mapping (with its document lines) needs."""

    mapping: str
    crm_tables: tuple[CrmTableNeed, ...]
    crm_columns: tuple[CrmColumnNeed, ...]
    options: tuple[OptionNeed, ...]
    privileges: tuple[PrivilegeNeed, ...]
    bc_entities: tuple[BcEntityNeed, ...]
    bc_properties: tuple[BcPropertyNeed, ...]


@dataclass
class _Collector:
    """Needs gathered while walking one mapping (kept in order, without repeats)."""

    mappings: MappingSet
    tables: dict[str, CrmTableNeed] = field(default_factory=dict)
    columns: dict[tuple[str, str], CrmColumnNeed] = field(default_factory=dict)
    options: dict[tuple[str, str, int], OptionNeed] = field(default_factory=dict)
    privileges: dict[tuple[Access, str], PrivilegeNeed] = field(default_factory=dict)
    entities: dict[tuple[str, str], BcEntityNeed] = field(default_factory=dict)
    properties: dict[tuple[str, str, str], BcPropertyNeed] = field(default_factory=dict)

    def table(self, logical: str, entity_set: str, where: str) -> None:
        self.tables.setdefault(logical, CrmTableNeed(logical, entity_set, where))
        self.privilege(Access.READ, logical)

    def column(self, table: str, column: str | None, use: Use, where: str,
               role: ColumnRole = ColumnRole.VALUE) -> None:
        if not column:
            return
        key = (table, column)
        known = self.columns.get(key)
        if known is None or (use is Use.WRITE and known.use is Use.READ) or (
                role is not ColumnRole.VALUE and known.role is ColumnRole.VALUE):
            self.columns[key] = CrmColumnNeed(table, column, use, role, where)

    def privilege(self, access: Access, table: str) -> None:
        self.privileges.setdefault((access, table), PrivilegeNeed(access, table))

    def entity(self, api: str, entity_set: str, where: str) -> None:
        self.entities.setdefault((api, entity_set), BcEntityNeed(api, entity_set, where))

    def prop(self, api: str, entity_set: str, name: str | None, use: Use, where: str) -> None:
        if not name:
            return
        key = (api, entity_set, name)
        known = self.properties.get(key)
        if known is None or (use is Use.WRITE and known.use is Use.READ):
            self.properties[key] = BcPropertyNeed(api, entity_set, name, use, where)

    def logical_for_set(self, entity_set: str) -> str:
        """The logical name of a CRM entity set: a mapping's, else the English singular."""
        for mapping in self.mappings:
            if mapping.crm.entity == entity_set:
                return mapping.crm.logical_name
        for suffix, replacement in (("ies", "y"), ("ses", "s"), ("s", "")):
            if entity_set.endswith(suffix):
                return entity_set[: -len(suffix)] + replacement
        return entity_set


def _crm_side(c: _Collector, m: TableMapping, where: str) -> None:
    table = m.crm.logical_name
    c.table(table, m.crm.entity, where)
    for column in (m.crm.key, m.crm.modified, m.crm.natural_key, m.crm.name):
        c.column(table, column, Use.READ, f"{where} (key / modified-on / natural key / name)")
    writes = False
    for f in m.enabled_fields():
        writes |= _crm_field(c, m, table, f, where)
    for note in m.not_synchronized:
        if note.side == "crm":
            c.column(table, note.column, Use.READ, f"{where} not_synchronized")
    for template in m.templates.crm:
        for column in template.values:
            # A lookup set by a template is written as ``<navigation>@odata.bind``.
            c.column(table, column.split("@", 1)[0], Use.WRITE,
                     f"{where} template {template.name!r}")
            writes = True
    if m.mark_source_on_create and m.direction == "from_crm":
        for column in m.mark_source_on_create:
            c.column(table, column, Use.WRITE, f"{where} mark_source_on_create")
        writes = True
    if writes:
        c.privilege(Access.WRITE, table)
        if m.direction in ("to_crm", "bidirectional"):
            c.privilege(Access.CREATE, table)


def _crm_field(c: _Collector, m: TableMapping, table: str, f: FieldMapping,
               where: str) -> bool:
    """Needs of one field on the CRM side; True when it writes there."""
    label = f"{where} field {f.name!r}"
    role = (ColumnRole.LOOKUP if f.lookup is not None
            else ColumnRole.CHOICE if f.options is not None else ColumnRole.VALUE)
    c.column(table, f.crm, Use.WRITE if f.writes_to_crm else Use.READ, label, role)
    if f.options is not None:
        for value in f.options.values:
            c.options.setdefault((table, f.crm, value.crm), OptionNeed(
                table, f.crm, value.crm, value.caption or value.nav, label))
    if f.lookup is not None:
        _crm_lookup(c, f, label, writes=f.writes_to_crm, table=table)
    return f.writes_to_crm


def _crm_lookup(c: _Collector, f: FieldMapping, label: str, *, writes: bool,
                table: str) -> None:
    assert f.lookup is not None
    targets = [c.mappings.get(name).crm for name in f.lookup.mappings
               if name in c.mappings]
    for target in targets:
        if f.lookup.crm_natural_key_fallback:
            c.table(target.logical_name, target.entity, label)
            c.column(target.logical_name, target.natural_key, Use.READ, label)
        if writes:
            c.privilege(Access.APPEND, table)
            c.privilege(Access.APPEND_TO, target.logical_name)
    child = f.lookup.crm_child
    if child is not None:
        logical = c.logical_for_set(child.entity)
        c.table(logical, child.entity, label)
        c.column(logical, child.key, Use.READ, label)
        c.column(logical, child.parent, Use.READ, label, ColumnRole.LOOKUP)


def _nav_side(c: _Collector, m: TableMapping, where: str) -> None:
    api, entity = m.nav.api, m.nav.entity
    c.entity(api, entity, where)
    for name in m.nav_select():
        c.prop(api, entity, name, Use.READ, where)
    for f in m.enabled_fields():
        label = f"{where} field {f.name!r}"
        c.prop(api, entity, f.nav, Use.WRITE if f.writes_to_nav else Use.READ, label)
        if f.nav_reference is not None:
            ref = f.nav_reference
            c.entity(api, ref.entity, label)
            c.prop(api, ref.entity, ref.key, Use.READ, label)
            c.prop(api, ref.entity, ref.field, Use.READ, label)
        if f.lookup is not None and f.lookup.via is not None:
            via = f.lookup.via
            c.entity(api, via.entity, label)
            c.prop(api, via.entity, via.key, Use.READ, label)
            c.prop(api, via.entity, via.target_id, Use.READ, label)
    for template in m.templates.nav:
        for name in template.values:
            c.prop(api, entity, name, Use.WRITE, f"{where} template {template.name!r}")
    if m.mark_source_on_create and m.direction == "to_crm":
        for name in m.mark_source_on_create:
            c.prop(api, entity, name, Use.WRITE, f"{where} mark_source_on_create")


def _lines(c: _Collector, m: TableMapping, where: str) -> None:
    if m.lines is None:
        return
    lines = m.line_mapping
    label = f"{where} lines"
    _crm_side(c, lines, label)
    c.column(lines.crm.logical_name, m.lines.crm.parent, Use.READ, label, ColumnRole.LOOKUP)
    c.column(lines.crm.logical_name, m.lines.crm.order, Use.READ, label)
    _nav_side(c, lines, label)
    for name in (m.lines.nav.parent, m.lines.nav.order):
        c.prop(lines.nav.api, lines.nav.entity, name, Use.READ, label)


def requirements_for(mapping: TableMapping, mappings: MappingSet) -> MappingRequirements:
    """What ``mapping`` needs (its lines included), in the order first met."""
    c = _Collector(mappings)
    where = f"mapping {mapping.name}"
    _crm_side(c, mapping, where)
    _nav_side(c, mapping, where)
    _lines(c, mapping, where)
    return MappingRequirements(
        mapping=mapping.name, crm_tables=tuple(c.tables.values()),
        crm_columns=tuple(c.columns.values()), options=tuple(c.options.values()),
        privileges=tuple(c.privileges.values()), bc_entities=tuple(c.entities.values()),
        bc_properties=tuple(c.properties.values()))


def all_requirements(mappings: Iterable[TableMapping],
                     mapping_set: MappingSet) -> list[MappingRequirements]:
    """:func:`requirements_for` of each mapping, in dependency order."""
    return [requirements_for(m, mapping_set) for m in mappings]
