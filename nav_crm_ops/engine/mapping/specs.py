"""The parts of a table mapping: its two sides, templates, fields and what a field may carry
(lookups, NAV references, option maps, match and compare rules), and document lines.

Why apart from :class:`~.table.TableMapping`: each part validates only itself here (names not
blank, filters well-formed OData); the checks that need the whole mapping (duplicate targets,
directions that fit, option maps that reverse) live with the table mapping.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from functools import cached_property
from typing import Any, Literal

from pydantic import Field, StrictBool, field_validator, model_validator

from ..transform import TransformChain, parse_chain
from ..vocabulary import Side, flows_to
from .base import Direction, Frozen, checked_filter, not_blank

__all__ = [
    "CompareSpec",
    "CrmSide",
    "DocumentLines",
    "FieldMapping",
    "LinesSide",
    "LookupChild",
    "LookupSpec",
    "LookupVia",
    "MatchSpec",
    "NavReference",
    "NavSide",
    "NotSynchronized",
    "OnlyWhen",
    "OptionMap",
    "OptionValue",
    "RevertCreated",
    "Template",
    "Templates",
]


class RevertCreated(StrEnum):
    """What reverting a run does with the records it created (``on_revert_created``): a
    deactivated (CRM) or blocked (BC) record keeps its history and can be restored by a
    person; a deleted one is gone (``engine.revert``)."""

    DEACTIVATE = "deactivate"
    DELETE = "delete"


class NavSide(Frozen):
    """The NAV/BC entity set of a mapping."""

    entity: str = Field(description="entity set, e.g. customers")
    api: str = Field("v2.0", description="'v2.0' (standard API) or a custom API path such as navcrm/sync/v1.0")
    key: str = "id"
    natural_key: str | None = Field(None, description="human key, e.g. number or code")
    name: str | None = Field(
        None, description="the field people know a record by beside its key (displayName): "
        "previews, couplings, errors and reports show 'number name'")
    modified: str = "lastModifiedDateTime"
    modified_is_date: StrictBool = Field(
        False, description="the modified field holds a date without a time of day (NAV "
        "2018's Last_Date_Modified): incremental reads start at the watermark's date, and the "
        "three-way diff finds the rows of that day that did not change")
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
        return not_blank(value, "nav entity/key/modified field")

    @field_validator("filter")
    @classmethod
    def _filter(cls, value: str) -> str:
        return checked_filter(value)

    @property
    def is_custom_api(self) -> bool:
        return self.api != "v2.0"


class CrmSide(Frozen):
    """The Dataverse table of a mapping."""

    entity: str = Field(description="entity set, e.g. accounts")
    logical_name: str = Field(description="logical name, e.g. account")
    key: str = Field(description="primary key column, e.g. accountid")
    natural_key: str | None = None
    name: str | None = Field(
        None, description="the column people know a record by beside its key (name, "
        "fullname): previews, couplings, errors and reports show 'number name'")
    modified: str = "modifiedon"
    filter: str = ""

    @field_validator("entity", "logical_name", "key", "modified")
    @classmethod
    def _names(cls, value: str) -> str:
        return not_blank(value, "crm entity/logical_name/key/modified field")

    @field_validator("filter")
    @classmethod
    def _filter(cls, value: str) -> str:
        return checked_filter(value)


class Template(Frozen):
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


class Templates(Frozen):
    nav: tuple[Template, ...] = ()
    crm: tuple[Template, ...] = ()


class LookupVia(Frozen):
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
        return checked_filter(value)


class LookupChild(Frozen):
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
        return checked_filter(value)


class LookupSpec(Frozen):
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


class NavReference(Frozen):
    """A NAV GUID field that points into a NAV reference table (e.g. ``paymentTermsId``).

    The transferred value is ``field`` (e.g. ``code``) of the ``entity`` row whose ``key``
    equals the NAV value; writing to NAV resolves the code back to the GUID.
    """

    entity: str
    key: str = "id"
    field: str = "code"


class OptionValue(Frozen):
    nav: str
    crm: int
    caption: str = ""


class OptionMap(Frozen):
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


class MatchSpec(Frozen):
    """Use the field for match-based coupling; lower priority numbers are tried first."""

    priority: int = 0
    case_sensitive: StrictBool = False


class CompareSpec(Frozen):
    """How the diff compares the field (mirrors ``engine.diff.DiffField``)."""

    kind: Literal["text", "number", "bool", "datetime", "id"] = "text"
    case_sensitive: StrictBool = True
    decimals: int | None = None


class OnlyWhen(Frozen):
    """A document line field that carries a value only on some lines: the product of an item
    or resource line (other lines are written-in text)."""

    column: str
    values: tuple[str, ...]


class FieldMapping(Frozen):
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
        return not_blank(value, "field name (nav/crm/name)")

    @cached_property
    def chain(self) -> TransformChain:
        """The validated transformation chain (validated once more when the mapping loads)."""
        return parse_chain(self.transformations)

    @property
    def writes_to_crm(self) -> bool:
        return flows_to(self.direction, Side.CRM)

    @property
    def writes_to_nav(self) -> bool:
        return flows_to(self.direction, Side.NAV)

    @property
    def crm_read_column(self) -> str:
        """The column Dataverse returns for this field (``_x_value`` for lookups)."""
        return f"_{self.crm}_value" if self.lookup is not None else self.crm


class NotSynchronized(Frozen):
    """A source column the mapping cannot carry over: the preview says so on every record
    where it holds a value (price starting and ending dates have no place in a CRM price
    list)."""

    side: Literal["nav", "crm"] = "nav"
    column: str
    note: str


class LinesSide(Frozen):
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


class DocumentLines(Frozen):
    """The lines of a document mapping (invoices, orders). Lines are read with the documents
    the plan creates and written with them in one request, so a document never exists
    without its lines; a line that cannot be written (an item not coupled) fails the whole
    document with the reason."""

    nav: LinesSide
    crm: LinesSide
    fields: tuple[dict[str, Any], ...] = ()

