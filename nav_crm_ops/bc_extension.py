"""Read the Business Central extension's AL sources (``bc-extension/``) and check them against
the custom API contract the sync relies on.

Why this exists: the sandbox emulates the ``navcrm/sync/v1.0`` API and the mappings are tested
against it, but a real tenant serves that API from the AL extension. When the two drift (a
renamed property, a shorter code field, a page that is read-only where a mapping writes), the
sync fails only on a real tenant, late and far from the cause. These checks compare the AL pages
with the sandbox's entity definitions and with what the mappings read and write, without a BC
compiler or a network: a small parser of the AL subset the extension uses (API pages, a
temporary table, a permission set) is enough, and ``doctor`` can run the same checks later.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "AlField",
    "ApiPage",
    "ExpectedEntity",
    "ExpectedField",
    "Extension",
    "Usage",
    "check_extension",
    "load_extension",
    "mapping_usage",
    "sandbox_contract",
]

# Field types of the base-application tables the pages bind to, from the Microsoft Learn
# application reference (Table Resource, "Customer Price Group", "Price List Line", Customer).
# A trailing "*" marks a FlowField: computed, so never writable through a page.
_BASE_TABLES: dict[str, dict[str, str]] = {
    "Resource": {
        "No.": "Code[20]", "Name": "Text[100]", "Type": 'Enum "Resource Type"',
        "Base Unit of Measure": "Code[10]", "Unit Price": "Decimal", "Unit Cost": "Decimal",
        "Blocked": "Boolean",
    },
    "Customer Price Group": {
        "Code": "Code[10]", "Description": "Text[100]", "Price Includes VAT": "Boolean",
        "Allow Invoice Disc.": "Boolean",
    },
    "Price List Line": {
        "Price List Code": "Code[20]", "Asset No.": "Code[20]",
        "Source Type": 'Enum "Price Source Type"', "Source No.": "Code[20]",
        "Currency Code": "Code[10]", "Starting Date": "Date", "Ending Date": "Date",
        "Unit of Measure Code": "Code[10]", "Minimum Quantity": "Decimal",
        "Unit Price": "Decimal",
    },
    "Customer": {
        "No.": "Code[20]", "Name": "Text[100]", "Balance (LCY)": "Decimal*",
        "Outstanding Orders (LCY)": "Decimal*", "Shipped Not Invoiced (LCY)": "Decimal*",
        "Outstanding Invoices (LCY)": "Decimal*", "Sales (LCY)": "Decimal*",
    },
}
_SYSTEM_FIELDS = {"SystemId": "Guid", "SystemModifiedAt": "DateTime",
                  "SystemCreatedAt": "DateTime"}
_ENUMS: dict[str, tuple[str, ...]] = {
    "Resource Type": ("Person", "Machine"),
    "Price Source Type": ("All", "All Customers", "Customer", "Customer Price Group",
                          "Customer Disc. Group", "All Vendors", "Vendor", "All Jobs", "Job",
                          "Job Task", "Campaign", "Contact"),
}
# Sandbox column type → the AL types that serialize to it.
_COMPATIBLE: dict[str, frozenset[str]] = {
    "string": frozenset({"Code", "Text"}), "memo": frozenset({"Text"}),
    "decimal": frozenset({"Decimal"}), "money": frozenset({"Decimal"}),
    "int": frozenset({"Integer"}), "bigint": frozenset({"BigInteger", "Integer"}),
    "bool": frozenset({"Boolean"}), "date": frozenset({"Date"}),
    "datetime": frozenset({"DateTime"}), "guid": frozenset({"Guid"}),
    "option": frozenset({"Enum", "Option"}),
}
_TYPE = re.compile(r'^(Code|Text)\[(\d+)\]$|^Enum\s+"([^"]+)"$|^(\w+)$')
_OBJECT = re.compile(r'^\s*(page|table|codeunit|permissionset|query)\s+(\d+)\s+("[^"]+"|\w+)',
                     re.MULTILINE | re.IGNORECASE)
_PAGE_FIELD = re.compile(r'\bfield\(\s*(\w+)\s*;\s*((?:"[^"]*"|[^;)"])+?)\s*\)\s*\{([^{}]*)\}',
                         re.IGNORECASE)
_TABLE_FIELD = re.compile(r'\bfield\(\s*\d+\s*;\s*("[^"]+"|\w+)\s*;\s*([^)]+?)\s*\)',
                          re.IGNORECASE)
_VARIABLE = re.compile(r'^\s*(\w+)\s*:\s*((?:Code|Text)\[\d+\]|[A-Za-z]+)\s*;', re.MULTILINE)
_COMMENT = re.compile(r"'(?:[^']|'')*'|//[^\n]*|/\*.*?\*/", re.DOTALL)
_FILTER_NAME = re.compile(r"\b([A-Za-z_]\w*)\s+(?:eq|ne|gt|ge|lt|le|in)\b")


@dataclass(frozen=True)
class AlField:
    """One property of an API page: ``field(<name>; <source>)`` and the AL type behind it."""

    name: str
    source: str
    type: str
    length: int | None = None
    writable: bool = True
    options: tuple[str, ...] | None = None


@dataclass(frozen=True)
class ApiPage:
    """An AL page object with its page-level properties (names lowercased) and fields."""

    object_id: int
    name: str
    file: str
    properties: Mapping[str, str]
    fields: Mapping[str, AlField]

    def prop(self, name: str) -> str:
        return self.properties.get(name.lower(), "")

    @property
    def route(self) -> str:
        """``<APIPublisher>/<APIGroup>/<APIVersion>``, the path segment after ``api/``."""
        return "/".join(self.prop(p) for p in ("APIPublisher", "APIGroup", "APIVersion"))

    @property
    def read_only(self) -> bool:
        return _read_only(self.properties)


@dataclass
class Extension:
    """The parsed extension: app.json, API pages by entity set, every object (kind, id, name)."""

    app: Mapping[str, Any]
    pages: dict[str, ApiPage] = field(default_factory=dict)
    objects: list[tuple[str, int, str]] = field(default_factory=list)
    permissions: str = ""


@dataclass(frozen=True)
class ExpectedField:
    """A property the sandbox serves: its column type, maximum length and option values."""

    name: str
    kind: str
    max_length: int | None = None
    options: tuple[str, ...] | None = None


@dataclass(frozen=True)
class ExpectedEntity:
    """A custom entity set as the sandbox serves it."""

    entity_set: str
    fields: tuple[ExpectedField, ...]
    natural_key: str | None


@dataclass
class Usage:
    """What the mappings do with one entity set's properties (and which mappings do it)."""

    read: dict[str, set[str]] = field(default_factory=dict)
    write: dict[str, set[str]] = field(default_factory=dict)

    def add(self, kind: str, prop: str | None, mapping: str) -> None:
        if prop:
            target = self.write if kind == "write" else self.read
            target.setdefault(prop, set()).add(mapping)


# -- parsing --------------------------------------------------------------------------------------
def _strip_comments(text: str) -> str:
    """AL without comments; quoted strings (captions, tooltips with ``//``) are kept."""
    return _COMMENT.sub(lambda m: m.group(0) if m.group(0).startswith("'") else " ", text)


def _read_only(props: Mapping[str, str]) -> bool:
    """A page clients cannot write: ``Editable = false`` or ``ModifyAllowed = false``."""
    return "false" in (props.get("editable", "").lower(), props.get("modifyallowed", "").lower())


def _unquote(name: str) -> str:
    return name.strip().strip('"').strip("'")


def _parse_type(spec: str) -> tuple[str, int | None, tuple[str, ...] | None]:
    """``Code[20]`` → (Code, 20, None); ``Enum "Resource Type"`` → (Enum, None, values)."""
    match = _TYPE.match(spec.strip().rstrip("*").strip())
    if match is None:
        return spec.strip(), None, None
    if match.group(1):
        return match.group(1), int(match.group(2)), None
    if match.group(3):
        return "Enum", None, _ENUMS.get(match.group(3))
    return match.group(4), None, None


def _header_properties(body: str) -> dict[str, str]:
    """Page-level ``Name = value;`` statements (before ``layout``), names lowercased."""
    head = re.split(r"\blayout\b", body.partition("{")[2], maxsplit=1, flags=re.IGNORECASE)[0]
    props: dict[str, str] = {}
    for statement in head.split(";"):
        match = re.match(r"\s*(\w+)\s*=\s*(.*)$", statement, re.DOTALL)
        if match:
            props[match.group(1).lower()] = _unquote(" ".join(match.group(2).split()))
    return props


def _table_fields(text: str) -> dict[str, str]:
    return {_unquote(name): spec for name, spec in _TABLE_FIELD.findall(text)}


def _resolve(source: str, table: Mapping[str, str], variables: Mapping[str, str]) -> str | None:
    """The AL type spec behind a field's source expression (None when unknown)."""
    expr = source.strip()
    if expr.lower().startswith("rec."):
        name = _unquote(expr[4:])
        return _SYSTEM_FIELDS.get(name) or table.get(name)
    return variables.get(expr)


def _page_fields(text: str, table: Mapping[str, str], page_read_only: bool) -> dict[str, AlField]:
    """The page's ``field(name; source)`` controls by property name.

    A field is writable when a client's PATCH/POST value reaches a table field: the page and
    the control are editable, the source is ``Rec.<field>`` and neither a FlowField nor the
    SystemId (page variables are computed on read, so never writable).
    """
    variables = {name: spec for name, spec in _VARIABLE.findall(text)}
    fields: dict[str, AlField] = {}
    for name, source, body in _PAGE_FIELD.findall(text):
        spec = _resolve(source, table, variables)
        kind, length, options = _parse_type(spec) if spec else ("?", None, None)
        editable = re.search(r"\bEditable\s*=\s*false\s*;", body, re.IGNORECASE) is None
        writable = (editable and not page_read_only and source.lower().startswith("rec.")
                    and not (spec or "").endswith("*") and source != "Rec.SystemId")
        fields[name] = AlField(name, source, kind, length, writable, options)
    return fields


def _split_objects(text: str) -> list[tuple[str, int, str, str]]:
    """(kind, id, name, source text) of every object in one file."""
    starts = list(_OBJECT.finditer(text))
    objects = []
    for index, match in enumerate(starts):
        end = starts[index + 1].start() if index + 1 < len(starts) else len(text)
        objects.append((match.group(1).lower(), int(match.group(2)), _unquote(match.group(3)),
                        text[match.start():end]))
    return objects


def load_extension(folder: str | Path) -> Extension:
    """Parse ``app.json`` and every ``src/**/*.al`` file of the extension in ``folder``."""
    root = Path(folder)
    ext = Extension(app=json.loads((root / "app.json").read_text(encoding="utf-8")))
    sources = [(path, _strip_comments(path.read_text(encoding="utf-8")))
               for path in sorted(root.glob("src/**/*.al"))]
    parsed = [(path, obj) for path, text in sources for obj in _split_objects(text)]
    tables = {name: _table_fields(body) for _, (kind, _, name, body) in parsed if kind == "table"}
    for path, (kind, object_id, name, body) in parsed:
        ext.objects.append((kind, object_id, name))
        if kind == "permissionset":
            ext.permissions += body
        if kind != "page":
            continue
        props = _header_properties(body)
        source_table = props.get("sourcetable", "")
        table = tables.get(source_table) or _BASE_TABLES.get(source_table, {})
        page = ApiPage(object_id, name, path.name, props,
                       _page_fields(body, table, _read_only(props)))
        if props.get("pagetype", "").lower() == "api":
            ext.pages[page.prop("EntitySetName")] = page
    return ext


# -- what the pages must serve ---------------------------------------------------------------------
def _kind_of(name: str, value: Any) -> str:
    """The column type of a sampled statistics value. Every number there is a summed amount
    (a zero sum comes back as the int 0), so numbers are decimals."""
    if name == "id":
        return "guid"
    if isinstance(value, bool):
        return "bool"
    return "decimal" if isinstance(value, int | float) else "string"


def _computed_fields(name: str) -> tuple[ExpectedField, ...]:
    """The properties of a computed set, from the sandbox code that builds its rows."""
    from .sandbox.business_central.statistics import Documents, customer_statistics
    from .sandbox.price_lists import PRICE_LIST_COLUMNS

    if name == "customerPriceLists":
        return tuple(ExpectedField(col, kind) for col, kind in PRICE_LIST_COLUMNS.items())
    customer = {"id": "00000000-0000-0000-0000-000000000001", "number": "C1",
                "displayName": "Sample", "_version": 1}
    row = customer_statistics(name, customer, Documents({}, {}, {}))
    return tuple(ExpectedField(key, _kind_of(key, value)) for key, value in row.items()
                 if not key.startswith("@"))


# The key the sandbox serves a computed set by (computed.py: key_column / number_field).
_COMPUTED_NATURAL_KEYS = {"customerPriceLists": "code", "customerStatistics": "customerNumber"}


def sandbox_contract() -> list[ExpectedEntity]:
    """Every custom (``api="custom"``) entity set of the sandbox with the properties it serves."""
    from .sandbox.bc_schema import BC_ENTITIES, COMPUTED_ENTITIES

    entities = []
    for ent in BC_ENTITIES:
        if ent.extra.get("api") != "custom":
            continue
        hidden = set(ent.extra.get("hidden", ()))
        fields = tuple(ExpectedField(c.name, c.type, c.max_length, c.options)
                       for c in ent.columns if c.name not in hidden)
        entities.append(ExpectedEntity(ent.entity_set, fields, ent.extra.get("natural_key")))
    for name, api in COMPUTED_ENTITIES.items():
        if api == "custom":
            entities.append(ExpectedEntity(name, _computed_fields(name),
                                           _COMPUTED_NATURAL_KEYS.get(name)))
    return entities


def mapping_usage(mappings: Iterable[Any], api: str) -> dict[str, Usage]:
    """Per entity set of ``api``: the NAV properties the mappings read and write.

    Reads: key, natural key, modified-on (incremental sets), filter and field columns. Writes:
    fields flowing to NAV, NAV template values and ``mark_source_on_create`` columns.
    """
    usage: dict[str, Usage] = {}
    for mapping in mappings:
        nav = mapping.nav
        if nav.api != api:
            continue
        use = usage.setdefault(nav.entity, Usage())
        name = mapping.name
        for prop in (nav.key, nav.natural_key, nav.coupled_in_field,
                     nav.modified if nav.incremental else None,
                     *_FILTER_NAME.findall(nav.filter),
                     *(n.column for n in mapping.not_synchronized if n.side == "nav")):
            use.add("read", prop, name)
        for fld in mapping.fields:
            if fld.enabled:
                use.add("read", fld.nav, name)
                if fld.writes_to_nav:
                    use.add("write", fld.nav, name)
        for prop in [*mapping.mark_source_on_create,
                     *(k for t in mapping.templates.nav for k in t.values)]:
            use.add("write", prop, name)
    return usage


# -- checks ---------------------------------------------------------------------------------------
def _field_problems(page: ApiPage, expected: ExpectedField) -> list[str]:
    where = f"{page.file}: {page.prop('EntitySetName')}.{expected.name}"
    al = page.fields.get(expected.name)
    if al is None:
        return [f"{where}: the sandbox serves this property, the AL page has no "
                f"field({expected.name}; ...)"]
    if al.type == "?":
        return [f"{where}: source {al.source} is not a known field or variable"]
    problems = []
    if al.type not in _COMPATIBLE.get(expected.kind, frozenset()):
        problems.append(f"{where}: AL type {al.type} does not serialize as the sandbox's "
                        f"{expected.kind}")
    if expected.max_length and al.length and al.length > expected.max_length:
        problems.append(f"{where}: AL length {al.length} exceeds the sandbox's "
                        f"{expected.max_length}")
    missing = set(expected.options or ()) - set(al.options or expected.options or ())
    if missing:
        problems.append(f"{where}: option values {sorted(missing)} are not in the AL enum")
    return problems


def _page_problems(page: ApiPage, route: str) -> list[str]:
    where = f"{page.file} (page {page.object_id})"
    problems = []
    if page.route != route:
        problems.append(f"{where}: API route {page.route} differs from the connector's {route}")
    if page.prop("ODataKeyFields") != "SystemId":
        problems.append(f"{where}: ODataKeyFields must be SystemId (the id the sync keys on)")
    if page.fields.get("id", AlField("id", "", "")).source != "Rec.SystemId":
        problems.append(f"{where}: property id must be field(id; Rec.SystemId)")
    if not page.read_only and page.prop("DelayedInsert").lower() != "true":
        problems.append(f"{where}: a writable API page needs DelayedInsert = true")
    if len(page.name) > 30:
        problems.append(f"{where}: object name {page.name!r} is longer than 30 characters")
    return problems


def _usage_problems(page: ApiPage, use: Usage) -> list[str]:
    problems = []
    for prop, names in sorted(use.read.items()):
        if prop not in page.fields:
            problems.append(f"{page.file}: {', '.join(sorted(names))} reads "
                            f"{page.prop('EntitySetName')}.{prop}, the AL page has no such field")
    for prop, names in sorted(use.write.items()):
        al = page.fields.get(prop)
        if al is not None and not al.writable:
            problems.append(f"{page.file}: {', '.join(sorted(names))} writes "
                            f"{page.prop('EntitySetName')}.{prop}, which the AL page does not "
                            "let a client write")
    return problems


def _object_problems(ext: Extension) -> list[str]:
    """Object ids inside app.json's idRanges, unique per kind; every page in the permission set."""
    ranges = [(r["from"], r["to"]) for r in ext.app.get("idRanges", [])]
    problems = []
    seen: set[tuple[str, int]] = set()
    for kind, object_id, name in ext.objects:
        if not any(low <= object_id <= high for low, high in ranges):
            problems.append(f"{kind} {object_id} {name!r} is outside app.json idRanges {ranges}")
        if (kind, object_id) in seen:
            problems.append(f"{kind} id {object_id} is used twice")
        seen.add((kind, object_id))
        if kind == "page" and f'page "{name}" = X' not in ext.permissions:
            problems.append(f"page {name!r} is missing from the permission set (page ... = X)")
    return problems


def check_extension(ext: Extension, contract: Sequence[ExpectedEntity],
                    usage: Mapping[str, Usage], route: str) -> list[str]:
    """Every way the AL extension fails the contract, one readable sentence each ([] = fine)."""
    problems = _object_problems(ext)
    for entity in contract:
        page = ext.pages.get(entity.entity_set)
        if page is None:
            problems.append(f"no API page has EntitySetName = '{entity.entity_set}'")
            continue
        problems += _page_problems(page, route)
        for expected in entity.fields:
            problems += _field_problems(page, expected)
        if entity.natural_key and entity.natural_key not in page.fields:
            problems.append(f"{page.file}: natural key {entity.natural_key} is not a field")
    for entity_set, use in usage.items():
        page = ext.pages.get(entity_set)
        if page is None:
            problems.append(f"mappings use {entity_set}, no API page serves it")
        else:
            problems += _usage_problems(page, use)
    return problems
