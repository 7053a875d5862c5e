"""Mappings as data: which NAV/BC entity pairs with which Dataverse table, field by field.

Why data and not code: users change mappings (disable a field, add a filter) without touching
Python, a preview shows exactly what a mapping will do, and the defaults ship as YAML
(``nav_crm_ops/mappings/*.yaml``, one file per mapping).

A mapping is found by its *name* (case-insensitive), never by table, so two mappings on the
same table pair cannot be confused (a known weakness of the reference engine).

Workspace override files (``[workspace] mapping_files`` in ``nav_crm_ops.toml``) hold a YAML
list of mappings (or ``{mappings: [...]}``). Merge rule, entry by entry:

* a name that is not a default, or an entry with ``replace: true``, is a whole mapping;
* otherwise the entry is merged over the default of that name: mappings (``nav``, ``crm``,
  ``templates`` ...) merge key by key, scalars and lists replace; ``fields`` entries are matched
  to default fields by ``name`` (which defaults to the CRM field name) and merged key by key,
  so ``{name: websiteurl, enabled: false}`` disables one field; an entry with ``remove: true``
  deletes the field; entries with new names are appended.

Later files win over earlier files. The result is validated as a whole (dependencies,
lookups, cycles) and every error names the mapping, the field and the valid choices.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Iterator, Mapping, Sequence
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    field_validator,
    model_validator,
)
from pydantic import ValidationError as PydanticValidationError

from ..config import WorkspaceConfig
from ..connectors.odata import check_raw_filter
from ..exceptions import ConfigError, MappingError
from .diff import DiffField
from .transform import TransformChain, parse_chain

__all__ = [
    "DIRECTIONS",
    "MAX_FILTER_CHARS",
    "RECOMMENDED_ORDER",
    "CompareSpec",
    "CrmSide",
    "DocumentLines",
    "FieldMapping",
    "LinesSide",
    "LookupChild",
    "LookupSpec",
    "LookupVia",
    "MappingSet",
    "MatchSpec",
    "NavReference",
    "NavSide",
    "NotSynchronized",
    "OnlyWhen",
    "OptionMap",
    "OptionValue",
    "TableMapping",
    "Template",
]

Direction = Literal["to_crm", "from_crm", "bidirectional"]
DIRECTIONS: tuple[str, ...] = ("to_crm", "from_crm", "bidirectional")
UPDATE_CONFLICTS: tuple[str, ...] = ("none", "nav_wins", "crm_wins")
DELETION_CONFLICTS: tuple[str, ...] = ("none", "remove_coupling", "restore")
FIELD_KINDS: tuple[str, ...] = ("text", "number", "bool", "datetime", "id")

RECOMMENDED_ORDER: tuple[str, ...] = (
    "CURRENCY", "SALESPEOPLE", "UNIT OF MEASURE", "CUSTOMER", "CONTACT", "RESOURCE-PRODUCT",
    "ITEM-PRODUCT", "CUSTPRCGRP-PRICE", "SALESPRC-PRODUCTPRICE", "POSTEDSALESINV-INV",
    "SALES ORDERS", "CUSTOMER STATISTICS",
)
"""The reference's first-run order; other mappings follow (dependencies permitting)."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _choice(value: Any, choices: Sequence[str], what: str) -> str:
    if value not in choices:
        raise ValueError(f"{what} {value!r} is not one of {list(choices)}")
    return str(value)


def _not_blank(value: str, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{what} must not be empty")
    return value


MAX_FILTER_CHARS = 2_000
"""Longest table filter a mapping may hold: the engine adds modified-on and id conditions to
it and the services refuse URLs much longer than a few thousand characters."""


def _checked_filter(value: str) -> str:
    """A table filter must at least be well-formed OData (quotes, parentheses, no ``&``/``#``)
    and at most :data:`MAX_FILTER_CHARS` long; the service checks field names when the mapping
    first reads."""
    if len(value) > MAX_FILTER_CHARS:
        raise ValueError(
            f"the filter is {len(value):,} characters long; the limit is {MAX_FILTER_CHARS:,} "
            "(the services refuse longer URLs): shorten it, e.g. a range instead of a list of "
            "values, or split the records over two mappings")
    if value and value.strip():
        try:
            check_raw_filter(value)
        except ConfigError as exc:
            raise ValueError(str(exc)) from None
    return value


class NavSide(_Frozen):
    """The NAV/BC entity set of a mapping."""

    entity: str = Field(description="entity set, e.g. customers")
    api: str = Field("v2.0", description="'v2.0' (standard API) or a custom API path such as navcrm/sync/v1.0")
    key: str = "id"
    natural_key: str | None = Field(None, description="human key, e.g. number or code")
    modified: str = "lastModifiedDateTime"
    filter: str = Field("", description="OData $filter limiting which records take part")
    incremental: StrictBool = Field(
        True, description="false for computed sets without a usable modified-on (statistics): "
        "every run reads the set in full and the three-way diff finds what changed")
    coupled_in: str | None = Field(
        None, description="take only records whose id is a NAV id coupled in this mapping "
        "(statistics of coupled customers); must also be a dependency")
    coupled_in_field: str | None = Field(
        None, description="with coupled_in: the column holding that NAV id (default: the "
        "record's own key), e.g. customerId for documents of coupled customers")

    @field_validator("entity", "key", "modified")
    @classmethod
    def _names(cls, value: str) -> str:
        return _not_blank(value, "nav entity/key/modified field")

    @field_validator("filter")
    @classmethod
    def _filter(cls, value: str) -> str:
        return _checked_filter(value)

    @property
    def is_custom_api(self) -> bool:
        return self.api != "v2.0"


class CrmSide(_Frozen):
    """The Dataverse table of a mapping."""

    entity: str = Field(description="entity set, e.g. accounts")
    logical_name: str = Field(description="logical name, e.g. account")
    key: str = Field(description="primary key column, e.g. accountid")
    natural_key: str | None = None
    modified: str = "modifiedon"
    filter: str = ""

    @field_validator("entity", "logical_name", "key", "modified")
    @classmethod
    def _names(cls, value: str) -> str:
        return _not_blank(value, "crm entity/logical_name/key/modified field")

    @field_validator("filter")
    @classmethod
    def _filter(cls, value: str) -> str:
        return _checked_filter(value)


class Template(_Frozen):
    """Default values for records the sync creates on one side.

    ``filter`` holds source-field equalities (all must hold); the matching template with the
    lowest ``priority`` number applies; an empty filter matches every record.
    """

    name: str = "default"
    filter: dict[str, Any] = Field(default_factory=dict)
    priority: int = 0
    values: dict[str, Any] = Field(default_factory=dict)

    def matches(self, source: Mapping[str, Any]) -> bool:
        return all(source.get(key) == value for key, value in self.filter.items())


class Templates(_Frozen):
    nav: tuple[Template, ...] = ()
    crm: tuple[Template, ...] = ()


class LookupVia(_Frozen):
    """A NAV table linking the field's value to the referenced record's id, for fields that
    hold another record's number: a person contact's ``companyNumber`` is its company
    contact, related to the customer through ``contactsInformation`` (contact business
    relations)."""

    entity: str = Field(description="NAV entity set, e.g. contactsInformation")
    key: str = Field(description="column holding the field's value, e.g. contactNumber")
    target_id: str = Field(description="column holding the referenced record's id, e.g. relatedId")
    filter: str = ""

    @field_validator("filter")
    @classmethod
    def _filter(cls, value: str) -> str:
        return _checked_filter(value)


class LookupChild(_Frozen):
    """The CRM record a lookup points to is a child of the coupled record: a price list
    item's unit (``uom``) is the base unit of the unit group coupled with the BC unit of
    measure. Read as one table ``child id -> parent id`` (cached like reference tables)."""

    entity: str = Field(description="CRM entity set of the children, e.g. uoms")
    key: str = Field(description="their primary key, e.g. uomid")
    parent: str = Field(description="their lookup to the coupled record, e.g. uomscheduleid")
    filter: str = Field("", description="which child stands for the parent, e.g. "
                        "isschedulebaseuom eq true")

    @field_validator("filter")
    @classmethod
    def _filter(cls, value: str) -> str:
        return _checked_filter(value)


class LookupSpec(_Frozen):
    """A reference resolved through the couplings of another mapping.

    NAV holds ``nav_key`` of the referenced record (``code``, ``number`` or ``id``; default:
    the referenced mapping's natural key); CRM holds the referenced record's GUID, read as
    ``_<crm field>_value`` and written as ``<navigation>@odata.bind: /<target>(<guid>)``.
    The preview shows the NAV key on both sides (see ``engine.resolve``).
    """

    mapping: str
    navigation: str = Field(description="CRM navigation property, e.g. parentcustomerid_account")
    target: str = Field(description="CRM entity set of the referenced record, e.g. accounts")
    nav_key: str | None = None
    via: LookupVia | None = None
    also: tuple[str, ...] = Field(
        (), description="further mappings whose couplings resolve the value when the first "
        "does not (a document line's product is an item or a resource)")
    crm_child: LookupChild | None = None
    crm_natural_key_fallback: StrictBool = Field(
        False, description="resolve values that are not coupled through the referenced "
        "mapping's CRM natural key (the local currency exists only on the CRM side)")

    def bind(self, crm_id: str) -> dict[str, str]:
        """The ``@odata.bind`` body entry that sets the lookup to ``crm_id``."""
        return {f"{self.navigation}@odata.bind": f"/{self.target}({crm_id})"}

    @property
    def mappings(self) -> tuple[str, ...]:
        """Every mapping whose couplings resolve the value, in the order they are tried."""
        return (self.mapping, *self.also)


class NavReference(_Frozen):
    """A NAV GUID field that points into a NAV reference table (e.g. ``paymentTermsId``).

    The transferred value is ``field`` (e.g. ``code``) of the ``entity`` row whose ``key``
    equals the NAV value; writing to NAV resolves the code back to the GUID.
    """

    entity: str
    key: str = "id"
    field: str = "code"


class OptionValue(_Frozen):
    nav: str
    crm: int
    caption: str = ""


class OptionMap(_Frozen):
    """NAV code ↔ CRM choice value.

    ``on_missing``: ``record`` fails the record with a message naming the value and where to
    add it; ``create`` inserts the choice value on the CRM side (``InsertOptionValue``) and
    records it in the state store's option mappings.
    """

    values: tuple[OptionValue, ...] = ()
    on_missing: Literal["record", "create"] = "record"

    def crm_for(self, nav_value: str) -> int | None:
        return next((v.crm for v in self.values if v.nav == nav_value), None)

    def nav_for(self, crm_value: int) -> str | None:
        return next((v.nav for v in self.values if v.crm == crm_value), None)


class MatchSpec(_Frozen):
    """Use the field for match-based coupling; lower priority numbers are tried first."""

    priority: int = 0
    case_sensitive: StrictBool = False


class CompareSpec(_Frozen):
    """How the diff compares the field (mirrors ``engine.diff.DiffField``)."""

    kind: Literal["text", "number", "bool", "datetime", "id"] = "text"
    case_sensitive: StrictBool = True
    decimals: int | None = None


class OnlyWhen(_Frozen):
    """A document line field that carries a value only on some lines: the product of an item
    or resource line (other lines are written-in text)."""

    column: str
    values: tuple[str, ...]


class FieldMapping(_Frozen):
    """One field pair. ``name`` (default: the CRM field) identifies it within its mapping."""

    name: str = ""
    nav: str
    crm: str
    direction: Direction
    enabled: StrictBool = True
    on_create_only: StrictBool = Field(False, description="written only when the sync creates the record")
    constant: Any = Field(None, description="written when the source value is empty")
    transformations: tuple[Any, ...] = ()
    lookup: LookupSpec | None = None
    nav_reference: NavReference | None = None
    options: OptionMap | None = None
    clear_on_failed_lookup: StrictBool = False
    not_null: StrictBool = Field(False, description="never write an empty value (e.g. a CRM owner, "
                           "which Dataverse requires): an empty source leaves the other side")
    match: MatchSpec | None = None
    compare: CompareSpec = CompareSpec()
    only_when: OnlyWhen | None = Field(
        None, description="document lines only: the field is empty on lines whose source "
        "column is not one of the values")

    @model_validator(mode="before")
    @classmethod
    def _default_name(cls, data: Any) -> Any:
        if isinstance(data, dict) and not data.get("name") and data.get("crm"):
            data = {**data, "name": data["crm"]}
        return data

    @field_validator("nav", "crm", "name")
    @classmethod
    def _names(cls, value: str) -> str:
        return _not_blank(value, "field name (nav/crm/name)")

    @cached_property
    def chain(self) -> TransformChain:
        """The validated transformation chain (validated once more when the mapping loads)."""
        return parse_chain(self.transformations)

    @property
    def writes_to_crm(self) -> bool:
        return self.direction in ("to_crm", "bidirectional")

    @property
    def writes_to_nav(self) -> bool:
        return self.direction in ("from_crm", "bidirectional")

    @property
    def crm_read_column(self) -> str:
        """The column Dataverse returns for this field (``_x_value`` for lookups)."""
        return f"_{self.crm}_value" if self.lookup is not None else self.crm


class NotSynchronized(_Frozen):
    """A source column the mapping cannot carry over: the preview says so on every record
    where it holds a value (price starting and ending dates have no place in a CRM price
    list)."""

    side: Literal["nav", "crm"] = "nav"
    column: str
    note: str


class LinesSide(_Frozen):
    """One side of a document's lines."""

    entity: str = Field(description="entity set of the lines, e.g. salesInvoiceLines")
    parent: str = Field(description="column (CRM: lookup) holding the document, e.g. documentId")
    navigation: str = Field(description="navigation property for creating the document with "
                            "its lines in one request (deep insert), e.g. invoice_details")
    key: str = "id"
    order: str = Field(description="line order column, e.g. sequence or lineitemnumber")
    logical_name: str = ""
    api: str = "v2.0"

    @property
    def parent_read_column(self) -> str:
        """How the parent reference is read (CRM lookups come back as ``_x_value``)."""
        return f"_{self.parent}_value" if self.logical_name else self.parent


class DocumentLines(_Frozen):
    """The lines of a document mapping (invoices, orders). Lines are read with the documents
    the plan creates and written with them in one request, so a document never exists
    without its lines; a line that cannot be written (an item not coupled) fails the whole
    document with the reason."""

    nav: LinesSide
    crm: LinesSide
    fields: tuple[dict[str, Any], ...] = ()


class TableMapping(_Frozen):
    """One table pair and how it synchronizes (see the module docstring for overrides)."""

    name: str
    description: str = ""
    nav: NavSide
    crm: CrmSide
    direction: Direction
    only_coupled: StrictBool = True
    create_when_no_match: StrictBool = False
    sync_after_match: StrictBool = True
    templates: Templates = Templates()
    depends_on: tuple[str, ...] = ()
    update_conflict: Literal["none", "nav_wins", "crm_wins"] = "none"
    deletion_conflict: Literal["none", "remove_coupling", "restore"] = "none"
    skip_after: int = Field(2, ge=0, description="consecutive identical permanent failures before a coupling is skipped (0: never)")
    create_only: StrictBool = Field(
        False, description="records are written once, when the sync creates them; later "
        "changes are reported in the preview, not synchronized (orders sent to the back office)")
    mark_source_on_create: dict[str, Any] = Field(
        default_factory=dict, description="values written to the source record once its "
        "copy exists: '{today}', '{now}' and '{created.<column>}' are filled in")
    not_synchronized: tuple[NotSynchronized, ...] = ()
    lines: DocumentLines | None = None
    part_of: str | None = Field(None, description="set by the engine on the line mapping of "
                                "a document mapping (its name)")
    follow_up: Literal["sales_order_status"] | None = Field(
        None, description="work done after the mapping's sync (sales orders: posted orders "
        "make the CRM order Invoiced, deleted ones return it to Active)")
    fields: tuple[FieldMapping, ...] = ()

    @model_validator(mode="before")
    @classmethod
    def _check_raw(cls, data: Any) -> Any:
        """Give field directions the table's default and name the culprit of bad choices."""
        if not isinstance(data, dict):
            raise ValueError(f"a mapping must be a YAML mapping, got {type(data).__name__}")
        name = data.get("name") or "<unnamed>"
        direction = data.get("direction", "")
        if not direction:
            raise ValueError(f"mapping {name}: direction is missing; valid: {list(DIRECTIONS)}")
        _choice(direction, DIRECTIONS, f"mapping {name}: direction")
        _choice(data.get("update_conflict", "none"), UPDATE_CONFLICTS,
                f"mapping {name}: update_conflict")
        _choice(data.get("deletion_conflict", "none"), DELETION_CONFLICTS,
                f"mapping {name}: deletion_conflict")
        fields: list[Any] = []
        for index, raw in enumerate(data.get("fields") or ()):
            if isinstance(raw, FieldMapping):
                fields.append(raw)
                continue
            if not isinstance(raw, dict):
                raise ValueError(f"mapping {name}: field #{index + 1} must be a mapping")
            label = raw.get("name") or raw.get("crm") or f"#{index + 1}"
            field_direction = raw.get("direction", direction)
            _choice(field_direction, DIRECTIONS, f"mapping {name}, field {label}: direction")
            compare = raw.get("compare")
            if isinstance(compare, dict) and "kind" in compare:
                _choice(compare["kind"], FIELD_KINDS, f"mapping {name}, field {label}: compare.kind")
            fields.append({**raw, "direction": field_direction})
        return {**data, "fields": fields}

    @model_validator(mode="after")
    def _check(self) -> TableMapping:
        _not_blank(self.name, "mapping name")
        seen: set[str] = set()
        targets: dict[tuple[str, str], str] = {}
        for fld in self.fields:
            where = f"mapping {self.name}, field {fld.name}"
            if fld.name.lower() in seen:
                raise ValueError(f"{where}: duplicate field name (give one of them another 'name')")
            seen.add(fld.name.lower())
            if fld.direction != self.direction and self.direction != "bidirectional":
                raise ValueError(
                    f"{where}: direction {fld.direction!r} does not fit the mapping direction "
                    f"{self.direction!r} (valid: {self.direction!r})"
                )
            try:
                fld.chain  # noqa: B018 - validates the rules
            except MappingError as exc:
                raise ValueError(f"{where}: {exc}") from None
            if not fld.enabled:
                continue
            for side, column, writes in (("crm", fld.crm, fld.writes_to_crm),
                                         ("nav", fld.nav, fld.writes_to_nav)):
                if writes:
                    other = targets.get((side, column.lower()))
                    if other is not None:
                        raise ValueError(
                            f"{where}: {side} field {column!r} is already written by field "
                            f"{other!r}; disable one of them"
                        )
                    targets[(side, column.lower())] = fld.name
            if fld.options is not None:
                self._check_options(fld, where)
            if fld.only_when is not None and self.part_of is None:
                raise ValueError(f"{where}: only_when is for document line fields (under "
                                 "lines: fields:), not for a mapping's own fields")
        if self.lines is not None:
            self.line_mapping  # noqa: B018 - validates the line fields
        return self

    @cached_property
    def line_mapping(self) -> TableMapping:
        """The lines of a document mapping as a mapping of their own (fields, lookups and
        transformations work the same way); MappingError when this is no document mapping."""
        if self.lines is None:
            raise MappingError(f"mapping {self.name} has no lines")
        nav, crm = self.lines.nav, self.lines.crm
        try:
            return TableMapping.model_validate({
                "name": f"{self.name} LINES", "direction": self.direction,
                "part_of": self.name,
                "nav": {"entity": nav.entity, "api": nav.api, "key": nav.key,
                        "incremental": False},
                "crm": {"entity": crm.entity, "logical_name": crm.logical_name or crm.entity,
                        "key": crm.key},
                "fields": list(self.lines.fields)})
        except PydanticValidationError as exc:
            raise ValueError(_pydantic_message(exc, {"name": f"{self.name} lines",
                                                     "fields": list(self.lines.fields)},
                                               "lines")) from None

    @staticmethod
    def _check_options(fld: FieldMapping, where: str) -> None:
        navs = [v.nav for v in fld.options.values] if fld.options else []
        crms = [v.crm for v in fld.options.values] if fld.options else []
        if len(set(navs)) != len(navs):
            raise ValueError(f"{where}: options list a NAV value twice: {navs}")
        if fld.writes_to_nav and len(set(crms)) != len(crms):
            raise ValueError(
                f"{where}: options map several NAV values to one CRM value {crms}, which "
                "cannot be reversed for a field that writes to NAV; make the field to_crm"
            )

    # -- helpers the engine needs ------------------------------------------------------------
    def enabled_fields(self) -> tuple[FieldMapping, ...]:
        return tuple(f for f in self.fields if f.enabled)

    @cached_property
    def fields_by_name(self) -> dict[str, FieldMapping]:
        return {fld.name.lower(): fld for fld in self.fields}

    @cached_property
    def crm_natural_key_field(self) -> str | None:
        """The field that writes the CRM natural key (a created record's ``crm_key``)."""
        return next((f.name for f in self.enabled_fields()
                     if self.crm.natural_key and f.crm == self.crm.natural_key), None)

    @cached_property
    def diff_field_names(self) -> frozenset[str]:
        """Names of the fields the three-way diff (and so the stored base) covers."""
        return frozenset(f.name for f in self.enabled_fields() if not f.on_create_only)

    def field(self, name: str) -> FieldMapping:
        """The field named ``name`` (case-insensitive); MappingError lists the valid names."""
        found = self.fields_by_name.get(name.lower())
        if found is not None:
            return found
        raise MappingError(
            f"mapping {self.name}: no field {name!r}; fields: {[f.name for f in self.fields]}"
        )

    def fields_for(self, direction: Literal["to_crm", "from_crm"]) -> tuple[FieldMapping, ...]:
        """Enabled fields that write in ``direction`` (bidirectional fields count for both)."""
        if direction not in ("to_crm", "from_crm"):
            raise MappingError(
                f"mapping {self.name}: direction {direction!r} is not one of ['to_crm', 'from_crm']"
            )
        if direction == "to_crm":
            return tuple(f for f in self.enabled_fields() if f.writes_to_crm)
        return tuple(f for f in self.enabled_fields() if f.writes_to_nav)

    @property
    def directions(self) -> tuple[str, ...]:
        """Run order of the directions (bidirectional: NAV → CRM first, as the reference)."""
        return ("to_crm", "from_crm") if self.direction == "bidirectional" else (self.direction,)

    def nav_select(self) -> list[str]:
        """NAV ``$select``: key, modified (incremental sets), natural key, every enabled
        field's NAV column and the columns the preview mentions (``not_synchronized``)."""
        columns = [self.nav.key, *([self.nav.modified] if self.nav.incremental else [])]
        if self.nav.natural_key:
            columns.append(self.nav.natural_key)
        if self.nav.coupled_in_field:
            columns.append(self.nav.coupled_in_field)
        columns += [f.nav for f in self.enabled_fields()]
        columns += [n.column for n in self.not_synchronized if n.side == "nav"]
        return list(dict.fromkeys(columns))

    def crm_select(self) -> list[str]:
        """Dataverse ``$select`` (lookups as ``_x_value``)."""
        columns = [self.crm.key, self.crm.modified]
        if self.crm.natural_key:
            columns.append(self.crm.natural_key)
        columns += [f.crm_read_column for f in self.enabled_fields()]
        columns += [n.column for n in self.not_synchronized if n.side == "crm"]
        return list(dict.fromkeys(columns))

    def match_groups(self) -> list[tuple[int, tuple[FieldMapping, ...]]]:
        """Match fields grouped by ascending priority (all fields of a group must match)."""
        groups: dict[int, list[FieldMapping]] = {}
        for fld in self.enabled_fields():
            if fld.match is not None:
                groups.setdefault(fld.match.priority, []).append(fld)
        return [(priority, tuple(groups[priority])) for priority in sorted(groups)]

    def template_for(self, side: Literal["nav", "crm"], source: Mapping[str, Any]) -> Template | None:
        """The template used when creating a record on ``side`` from ``source`` values."""
        candidates = sorted(getattr(self.templates, side), key=lambda t: t.priority)
        return next((t for t in candidates if t.matches(source)), None)

    def diff_fields(self) -> list[DiffField]:
        """The three-way diff's view of the enabled fields (create-only fields excluded).

        Lookup fields compare as text: both sides hold the referenced record's NAV key there
        (see ``engine.resolve``), not a GUID.
        """
        return [
            DiffField(name=f.name, direction=f.direction,
                      kind="text" if f.lookup is not None else f.compare.kind,
                      case_sensitive=f.compare.case_sensitive, decimals=f.compare.decimals)
            for f in self.enabled_fields() if not f.on_create_only
        ]

    def lookups(self) -> tuple[FieldMapping, ...]:
        return tuple(f for f in self.enabled_fields() if f.lookup is not None)


def _pydantic_message(exc: PydanticValidationError, entry: Mapping[str, Any], origin: str) -> str:
    """Pydantic's errors rewritten to name the mapping, the field and the valid choices."""
    name = entry.get("name") or "<unnamed>"
    raw_fields = entry.get("fields") or []
    parts = []
    for err in exc.errors():
        loc = list(err["loc"])
        msg = str(err["msg"]).removeprefix("Value error, ")
        if err["type"] == "bool_type":
            msg += " (write true or false, without quotes)"
        if msg.startswith("mapping "):
            parts.append(msg)
            continue
        where = f"mapping {name}"
        if len(loc) >= 2 and loc[0] == "fields" and isinstance(loc[1], int):
            raw = raw_fields[loc[1]] if loc[1] < len(raw_fields) else {}
            label = (raw.get("name") or raw.get("crm")) if isinstance(raw, dict) else None
            where += f", field {label or '#' + str(loc[1] + 1)}"
            loc = loc[2:]
        path = ".".join(str(p) for p in loc)
        parts.append(f"{where}: {path + ': ' if path else ''}{msg}")
    return f"{origin}: " + "; ".join(parts)


def _merge(base: Any, override: Any) -> Any:
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for key, value in override.items():
            merged[key] = _merge(base[key], value) if key in base else value
        return merged
    return copy.deepcopy(override)


def _field_key(raw: Mapping[str, Any]) -> str:
    return str(raw.get("name") or raw.get("crm") or "").lower()


def _merge_mapping(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    override = {k: v for k, v in override.items() if k != "replace"}
    fields_override = override.pop("fields", None)
    merged: dict[str, Any] = _merge(base, override)
    if fields_override is None:
        return merged
    fields = [dict(f) for f in base.get("fields", [])]
    for entry in fields_override:
        key = _field_key(entry)
        index = next((i for i, f in enumerate(fields) if _field_key(f) == key), None)
        if entry.get("remove"):
            if index is None:
                raise MappingError(
                    f"mapping {base.get('name')}: cannot remove field {key!r}: no such field; "
                    f"fields: {[_field_key(f) for f in fields]}"
                )
            del fields[index]
        elif index is None:
            fields.append(dict(entry))
        else:
            fields[index] = _merge(fields[index], entry)
    merged["fields"] = fields
    return merged


def _read_entries(text: str, origin: str) -> list[dict[str, Any]]:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise MappingError(f"{origin} is not valid YAML: {exc}") from None
    if data is None:
        return []
    if isinstance(data, dict) and "mappings" in data:
        data = data["mappings"]
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list) or not all(isinstance(d, dict) for d in data):
        raise MappingError(f"{origin}: expected a mapping, a list of mappings or {{mappings: [...]}}")
    for entry in data:
        if not str(entry.get("name") or "").strip():
            raise MappingError(f"{origin}: a mapping has no 'name' (every mapping needs one)")
        fields = entry.get("fields", [])
        if not isinstance(fields, list) or not all(isinstance(f, dict) for f in fields):
            raise MappingError(
                f"{origin}: mapping {entry['name']}: fields must be a list of field entries, "
                "e.g. fields: [{name: telephone1, enabled: false}] or "
                "[{nav: phoneNumber, crm: telephone1, direction: to_crm}]; "
                f"got {_shown(fields)}")
    return data


def _shown(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


class MappingSet:
    """All mappings of a workspace, validated together."""

    def __init__(self, mappings: Iterable[TableMapping]) -> None:
        self._mappings: dict[str, TableMapping] = {}
        for mapping in mappings:
            key = mapping.name.upper()
            if key in self._mappings:
                raise MappingError(f"mapping {mapping.name} is defined twice")
            self._mappings[key] = mapping
        self._check_references()
        self.dependency_order()

    # -- loading -------------------------------------------------------------------------------
    @staticmethod
    def default_entries() -> list[dict[str, Any]]:
        """The raw YAML entries of the packaged defaults."""
        folder = resources.files("nav_crm_ops.mappings")
        entries: list[dict[str, Any]] = []
        for item in sorted(folder.iterdir(), key=lambda p: p.name):
            if item.name.endswith(".yaml"):
                entries += _read_entries(item.read_text(encoding="utf-8"), f"mappings/{item.name}")
        return entries

    @classmethod
    def from_entries(cls, entries: Iterable[Mapping[str, Any]], origin: str = "mappings") -> MappingSet:
        built = []
        for entry in entries:
            try:
                built.append(TableMapping.model_validate(dict(entry)))
            except PydanticValidationError as exc:
                raise MappingError(_pydantic_message(exc, entry, origin)) from None
        return cls(built)

    @classmethod
    def load(cls, override_files: Sequence[str | Path] = (), *, defaults: bool = True) -> MappingSet:
        """Packaged defaults (unless ``defaults=False``) merged with the override files."""
        entries: dict[str, dict[str, Any]] = {}
        if defaults:
            for entry in cls.default_entries():
                entries[str(entry["name"]).upper()] = entry
        for path in override_files:
            file = Path(path)
            if not file.exists():
                raise MappingError(f"mapping file {file} does not exist (check mapping_files)")
            for entry in _read_entries(file.read_text(encoding="utf-8"), str(file)):
                key = str(entry["name"]).upper()
                if key in entries and not entry.get("replace"):
                    entries[key] = _merge_mapping(entries[key], entry)
                else:
                    entries[key] = {k: v for k, v in entry.items() if k != "replace"}
        return cls.from_entries(entries.values())

    @classmethod
    def for_workspace(cls, config: WorkspaceConfig) -> MappingSet:
        """Defaults merged with the workspace's ``mapping_files`` (relative to the workspace)."""
        return cls.load([config.resolve_path(f) for f in config.workspace.mapping_files])

    @classmethod
    def from_yaml(cls, text: str) -> MappingSet:
        return cls.from_entries(_read_entries(text, "YAML text"))

    def to_yaml(self) -> str:
        """Every mapping as YAML that :meth:`from_yaml` reads back to an equal set."""
        data = {"mappings": [self.get(name).model_dump(mode="json", exclude_defaults=True)
                             for name in self.dependency_order()]}
        return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)

    # -- access -------------------------------------------------------------------------------
    @property
    def names(self) -> list[str]:
        return [m.name for m in self._mappings.values()]

    def __iter__(self) -> Iterator[TableMapping]:
        """Mappings in :meth:`dependency_order`."""
        return iter([self.get(name) for name in self.dependency_order()])

    def __len__(self) -> int:
        return len(self._mappings)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.upper() in self._mappings

    def get(self, name: str) -> TableMapping:
        """The mapping named ``name`` (case-insensitive)."""
        mapping = self._mappings.get(name.upper())
        if mapping is None:
            raise MappingError(f"no mapping named {name!r}; known mappings: {self.names}")
        return mapping

    def dependency_order(self, names: Iterable[str] | None = None) -> list[str]:
        """Mapping names, dependencies first, else in :data:`RECOMMENDED_ORDER` then by name.

        With ``names`` only those mappings are returned (their dependencies are not added).
        """
        wanted = [self.get(n).name for n in names] if names is not None else self.names
        rank = {name: i for i, name in enumerate(RECOMMENDED_ORDER)}

        def sort_key(name: str) -> tuple[int, str]:
            return (rank.get(name.upper(), len(rank)), name.upper())

        order: list[str] = []
        state: dict[str, int] = {}

        def visit(name: str, path: list[str]) -> None:
            if state.get(name) == 2:
                return
            if state.get(name) == 1:
                cycle = [*path[path.index(name):], name]
                raise MappingError(f"mapping dependency cycle: {' -> '.join(cycle)}; remove one "
                                   "of these depends_on entries")
            state[name] = 1
            deps = [self.get(d).name for d in self._mappings[name.upper()].depends_on]
            for dep in sorted(deps, key=sort_key):
                visit(dep, [*path, name])
            state[name] = 2
            order.append(name)

        for name in sorted(self.names, key=sort_key):
            visit(name, [])
        keep = {n.upper() for n in wanted}
        return [n for n in order if n.upper() in keep]

    def _check_references(self) -> None:
        for mapping in self._mappings.values():
            scope = mapping.nav.coupled_in
            if scope is not None and scope.upper() not in {d.upper() for d in mapping.depends_on}:
                raise MappingError(
                    f"mapping {mapping.name}: nav.coupled_in names {scope!r}, which must also be "
                    f"in depends_on (it is {list(mapping.depends_on)})")
            for dep in mapping.depends_on:
                if dep.upper() not in self._mappings:
                    raise MappingError(
                        f"mapping {mapping.name}: depends_on names unknown mapping {dep!r}; "
                        f"known mappings: {self.names}"
                    )
            fields = mapping.fields + (mapping.line_mapping.fields if mapping.lines else ())
            for fld in fields:
                if fld.lookup is None:
                    continue
                where = f"mapping {mapping.name}, field {fld.name}"
                for name in fld.lookup.mappings:
                    target = self._mappings.get(name.upper())
                    if target is None:
                        raise MappingError(
                            f"{where}: lookup names unknown mapping {name!r}; "
                            f"known mappings: {self.names}"
                        )
                    valid = [k for k in (target.nav.key, target.nav.natural_key) if k]
                    if fld.lookup.nav_key is not None and fld.lookup.nav_key not in valid:
                        raise MappingError(
                            f"{where}: lookup nav_key {fld.lookup.nav_key!r} does not identify "
                            f"a {target.name} record; valid: {valid}"
                        )

    def lookup_nav_key(self, fld: FieldMapping) -> str:
        """The NAV field of the referenced mapping that the lookup field holds."""
        if fld.lookup is None:
            raise MappingError(f"field {fld.name} is not a lookup")
        if fld.lookup.nav_key:
            return fld.lookup.nav_key
        target = self.get(fld.lookup.mapping)
        return target.nav.natural_key or target.nav.key
