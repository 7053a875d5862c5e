"""A table mapping: one NAV/BC entity paired with one Dataverse table, field by field, and
how the pair synchronizes (direction, conflicts, templates, document lines, follow-up).

Besides validating a mapping as a whole, :class:`TableMapping` answers what the engine asks
of it (the fields written in a direction, the ``$select`` of each side, match groups, the
diff's view of the fields), so those rules live in one place next to the data they read.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cached_property
from typing import Any, Literal

from pydantic import Field, StrictBool, model_validator
from pydantic import ValidationError as PydanticValidationError

from ...exceptions import MappingError
from ..diff import DiffField
from ..vocabulary import Side
from .base import (
    DELETION_CONFLICTS,
    DIRECTIONS,
    FIELD_KINDS,
    UPDATE_CONFLICTS,
    Direction,
    Frozen,
    choice,
    not_blank,
)
from .messages import pydantic_message
from .specs import (
    CrmSide,
    DocumentLines,
    FieldMapping,
    NavSide,
    NotSynchronized,
    RevertCreated,
    Template,
    Templates,
)

__all__ = ["TableMapping"]


class TableMapping(Frozen):
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
    on_revert_created: RevertCreated = Field(
        RevertCreated.DEACTIVATE, description="what reverting a run does with the records it "
        "created: deactivate (CRM) / block (BC), or delete (docs/revert.md)")
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
    id_scope: str = Field("", description="set by the engine when several ERP companies share "
                          "one Dataverse org (the company's bcbi_company row): part of the "
                          "ids of the CRM records the mapping creates, so two companies' "
                          "record 10000 never get the same CRM id")

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
        choice(direction, DIRECTIONS, f"mapping {name}: direction")
        choice(data.get("update_conflict", "none"), UPDATE_CONFLICTS,
                f"mapping {name}: update_conflict")
        choice(data.get("deletion_conflict", "none"), DELETION_CONFLICTS,
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
            choice(field_direction, DIRECTIONS, f"mapping {name}, field {label}: direction")
            compare = raw.get("compare")
            if isinstance(compare, dict) and "kind" in compare:
                choice(compare["kind"], FIELD_KINDS, f"mapping {name}, field {label}: compare.kind")
            fields.append({**raw, "direction": field_direction})
        return {**data, "fields": fields}

    @model_validator(mode="after")
    def _check(self) -> TableMapping:
        """Checks across the fields: unique names, directions that fit the mapping's, valid
        transformations, one writer per column, reversible options."""
        not_blank(self.name, "mapping name")
        seen: set[str] = set()
        targets: dict[tuple[Side, str], str] = {}
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
            self._claim_targets(fld, targets, where)
            if fld.options is not None:
                self._check_options(fld, where)
            if fld.only_when is not None and self.part_of is None:
                raise ValueError(f"{where}: only_when is for document line fields (under "
                                 "lines: fields:), not for a mapping's own fields")
        if self.lines is not None:
            self.line_mapping  # noqa: B018 - validates the line fields
        return self

    @staticmethod
    def _claim_targets(fld: FieldMapping, targets: dict[tuple[Side, str], str],
                       where: str) -> None:
        """Record the columns ``fld`` writes in ``targets`` (side and column -> field name):
        two enabled fields writing one column would overwrite each other on every run."""
        for side, column, writes in ((Side.CRM, fld.crm, fld.writes_to_crm),
                                     (Side.NAV, fld.nav, fld.writes_to_nav)):
            if writes:
                other = targets.get((side, column.lower()))
                if other is not None:
                    raise ValueError(
                        f"{where}: {side} field {column!r} is already written by field "
                        f"{other!r}; disable one of them"
                    )
                targets[(side, column.lower())] = fld.name

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
            raise ValueError(pydantic_message(exc, {"name": f"{self.name} lines",
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
        """NAV ``$select``: key, modified (incremental sets), natural key and name, every enabled
        field's NAV column and the columns the preview mentions (``not_synchronized``)."""
        columns = [self.nav.key, *([self.nav.modified] if self.nav.incremental else [])]
        columns += [c for c in (self.nav.natural_key, self.nav.name) if c]
        if self.nav.coupled_in_field:
            columns.append(self.nav.coupled_in_field)
        columns += [f.nav for f in self.enabled_fields()]
        columns += [n.column for n in self.not_synchronized if n.side == Side.NAV]
        return list(dict.fromkeys(columns))

    def crm_select(self) -> list[str]:
        """Dataverse ``$select`` (lookups as ``_x_value``)."""
        columns = [self.crm.key, self.crm.modified]
        columns += [c for c in (self.crm.natural_key, self.crm.name) if c]
        columns += [f.crm_read_column for f in self.enabled_fields()]
        columns += [n.column for n in self.not_synchronized if n.side == Side.CRM]
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
        for template in self.templates_by_priority[side]:
            if not template.filter or template.matches(source):  # no filter: matches all
                return template
        return None

    @cached_property
    def templates_by_priority(self) -> dict[str, tuple[Template, ...]]:
        """Each side's templates, lowest ``priority`` first (a stable sort, found once: a
        first sync asks :meth:`template_for` once per created record)."""
        return {side: tuple(sorted(getattr(self.templates, side), key=lambda t: t.priority))
                for side in ("nav", "crm")}

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
