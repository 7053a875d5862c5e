"""Dataverse business rules: value checks, state transitions, required columns, keys,
duplicate detection, line totals."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from functools import cached_property
from typing import Any

from ..dataverse_schema import (
    DETAIL_HEADERS,
    OPTION_VALUE_ENTITY,
    is_polymorphic,
    type_column,
)
from ..schema import Column, EntityDef
from .common import (
    CODE_BAD_OPTION,
    CODE_DUPLICATE,
    CODE_DUPLICATE_FOUND,
    CODE_INVALID_ARGUMENT,
    CODE_ODATA,
    DUPLICATE_RULES,
    DataverseError,
    Query,
    not_found,
    state_label,
)
from .reads import DataverseReads
from .values import DataverseCoercer


class DataverseRules(DataverseReads):
    """Checks and derived values applied to every write."""

    @cached_property
    def _coercer(self) -> DataverseCoercer:
        return DataverseCoercer(self._valid_options)

    def _coerce(self, entity: EntityDef, column: Column, value: Any) -> Any:
        return self._coercer.coerce(entity, column, value)

    def _valid_options(self, entity: EntityDef, column: Column) -> list[int]:
        values = list(column.choices or {})
        if column.name not in ("statecode", "statuscode"):
            added = self.store.query(f"dataverse:{OPTION_VALUE_ENTITY}",
                                     '"entitylogicalname" = ? AND "attributelogicalname" = ?',
                                     [entity.name, column.name])
            values.extend(r["value"] for r in added)
        return values

    def _changes(self, entity: EntityDef, data: Mapping[str, Any], existing: Mapping[str, Any]
                 | None, content_ids: Mapping[str, str]) -> dict[str, Any]:
        """Validate a request body and turn it into store column changes."""
        changes: dict[str, Any] = {}
        for name, value in data.items():
            if "@" not in name:
                self._column_change(entity, name, value, existing, changes)
            elif name.endswith("@odata.bind"):
                self._bind_change(entity, name, value, content_ids, changes)
        self._apply_state(entity, changes, existing)
        return changes

    def _bind_change(self, entity: EntityDef, name: str, value: Any,
                     content_ids: Mapping[str, str], changes: dict[str, Any]) -> None:
        """``<navigation>@odata.bind``: set (or clear) a lookup to the referenced record."""
        nav = name[:-len("@odata.bind")]
        navigation = self.navigation[entity.name]
        if nav not in navigation:
            raise DataverseError(
                400, CODE_ODATA,
                f"An undeclared property '{nav}' which only has property annotations "
                f"in the payload but no property value was found in the payload. In "
                f"OData, only declared navigation properties and declared named "
                f"streams can be represented as properties without values.")
        column, fixed_target = navigation[nav]
        if value is None:
            changes[column.name] = None
            if is_polymorphic(column):
                changes[type_column(column)] = None
            return
        if not isinstance(value, str):
            raise DataverseError(400, CODE_ODATA, f"The value of '{name}' must be an "
                                                  "entity reference string.")
        target, target_key = self._parse_reference(value, content_ids)
        allowed = (fixed_target,) if fixed_target else column.lookup_targets
        if target.name not in allowed:
            raise DataverseError(400, CODE_ODATA,
                                 f"'{name}' must refer to a record of type "
                                 f"{' or '.join(allowed)}, not {target.name}.")
        found = self._find(target, target_key)
        if found is None:
            raise not_found(target, self._describe_key(target_key))
        changes[column.name] = found[target.key]
        if is_polymorphic(column):
            changes[type_column(column)] = target.name

    def _column_change(self, entity: EntityDef, name: str, value: Any,
                       existing: Mapping[str, Any] | None, changes: dict[str, Any]) -> None:
        """A plain property: checked and converted (read-only columns and, on update, the
        key are ignored)."""
        if name.startswith("_") and name.endswith("_value"):
            raise DataverseError(400, CODE_ODATA, "CRM do not support direct update of "
                                                  "Entity Reference properties, Use "
                                                  "Navigation properties instead.")
        column = entity.column(name)
        if column is None or self._hidden(entity, column):
            raise DataverseError(
                400, CODE_ODATA,
                f"The property '{name}' does not exist on type 'Microsoft.Dynamics.CRM."
                f"{entity.name}'. Make sure to only use property names that are defined "
                f"by the type.")
        if column.type == "lookup":
            raise DataverseError(
                400, CODE_ODATA,
                f"A 'PrimitiveValue' node with non-null value was found when trying to "
                f"read the value of the navigation property '{name}'; however, a "
                f"'StartArray' node, a 'StartObject' node, or a 'PrimitiveValue' node with "
                f"null value was expected. Write lookups as '{name}@odata.bind'.")
        if column.read_only or (column.name == entity.key and existing is not None):
            return
        changes[name] = self._coerce(entity, column, value)

    def _apply_state(self, entity: EntityDef, changes: dict[str, Any],
                     existing: Mapping[str, Any] | None) -> None:
        states: Mapping[int, tuple[int, ...]] = entity.extra.get("states") or {}
        if not states or ("statecode" not in changes and "statuscode" not in changes):
            return
        self._resolve_state(entity, states, changes, existing)
        transitions = entity.extra.get("transitions")
        if existing is None or transitions is None:
            return
        before, after = existing.get("statecode") or 0, changes["statecode"]
        if (before, after) not in transitions:
            allowed = ", ".join(f"{state_label(entity, a)} -> {state_label(entity, b)}"
                                for a, b in sorted(transitions) if a != b)
            raise DataverseError(400, CODE_INVALID_ARGUMENT,
                                 f"The {entity.name} with Id {existing[entity.key]} cannot move "
                                 f"from state {state_label(entity, before)} to "
                                 f"{state_label(entity, after)} with an update; the service "
                                 f"changes that state with its own messages. Updates may "
                                 f"move {allowed}.")

    def _resolve_state(self, entity: EntityDef, states: Mapping[int, tuple[int, ...]],
                       changes: dict[str, Any], existing: Mapping[str, Any] | None) -> None:
        """Fill the missing half of a statecode/statuscode pair and check the pair."""
        state = changes.get("statecode")
        status = changes.get("statuscode")
        if (state is None and "statecode" in changes) or (
                status is None and "statuscode" in changes):
            raise DataverseError(400, CODE_INVALID_ARGUMENT, "statecode and statuscode cannot "
                                                             "be null.")
        if state is None:
            state = next((s for s, allowed in states.items() if status in allowed), None)
            if state is None:
                raise DataverseError(400, CODE_BAD_OPTION,
                                     f"A validation error occurred.  The value {status} of "
                                     f"'statuscode' on record of type '{entity.name}' is "
                                     f"outside the valid range.")
            current = existing.get("statecode") if existing else 0
            if state != current and existing is not None:
                current_label = state_label(entity, current)
                raise DataverseError(400, CODE_INVALID_ARGUMENT,
                                     f"{status} is not a valid status code for state code "
                                     f"{entity.name.capitalize()}State.{current_label} on "
                                     f"{entity.name} with Id {existing[entity.key]}.")
            changes["statecode"] = state
            return
        if status is None:
            changes["statuscode"] = states[state][0]
            return
        if status not in states[state]:
            current_label = state_label(entity, state)
            record = existing[entity.key] if existing else "(new record)"
            raise DataverseError(400, CODE_INVALID_ARGUMENT,
                                 f"{status} is not a valid status code for state code "
                                 f"{entity.name.capitalize()}State.{current_label} on "
                                 f"{entity.name} with Id {record}.")

    def _check_required(self, entity: EntityDef, merged: Mapping[str, Any],
                        only: Iterable[str] | None = None) -> None:
        """Required columns must have a value (on update: only those being changed)."""
        names = set(only) if only is not None else None
        for column in entity.required_columns:
            if names is not None and column.name not in names:
                continue
            if merged.get(column.name) in (None, ""):
                label = column.name
                if column.type == "lookup":
                    label = f"{column.navigation or column.name} (write it as "\
                            f"'{column.navigation or column.name}@odata.bind')"
                raise DataverseError(
                    400, CODE_INVALID_ARGUMENT,
                    f"A validation error occurred.  The '{label}' attribute of the "
                    f"'{entity.name}' entity is required; provide a value.")

    def _check_alternate_keys(self, entity: EntityDef, merged: Mapping[str, Any]) -> None:
        for column in entity.extra.get("alternate_keys", ()):
            value = merged.get(column)
            if self._taken(entity, column, merged, per_company=True):
                raise DataverseError(
                    412, CODE_DUPLICATE,
                    f"A record that has the attribute values {value} already exists. The "
                    f"entity key {column} requires that this set of attributes contains "
                    f"unique values. Select unique values and try again.")

    def _taken(self, entity: EntityDef, column: str, merged: Mapping[str, Any], *,
               per_company: bool = False) -> bool:
        """Whether another row of ``entity`` holds ``merged``'s value of ``column`` (no case).

        ``per_company``: on a table with Business Central's ``bcbi_companyid`` (a sandbox of
        several companies), only among rows of the same company — the multi-company solution
        keys its tables by company and number, so two companies may both have customer 10000
        (see :mod:`nav_crm_ops.sandbox.companies`)."""
        value = merged.get(column)
        if value in (None, ""):
            return False
        where = f'"{column}" = ? COLLATE NOCASE AND "{entity.key}" <> ?'
        params = [value, merged.get(entity.key) or ""]
        if per_company and entity.column("bcbi_companyid") is not None:
            where += ' AND "bcbi_companyid" IS ?'
            params.append(merged.get("bcbi_companyid"))
        return bool(self.store.query(self.qualified(entity), where, params, limit=1))

    def _check_duplicate_rules(self, entity: EntityDef, q: Query,
                               merged: Mapping[str, Any]) -> None:
        """Duplicate detection, only when asked for: the documented ``500`` / ``0x80040333``
        (*Detect duplicate data using the Web API*)."""
        if not q.detect_duplicates:
            return
        for column in DUPLICATE_RULES.get(entity.name, ()):
            if self._taken(entity, column, merged):
                raise DataverseError(500, CODE_DUPLICATE_FOUND,
                                     "A record was not created or updated because a duplicate "
                                     "of the current record already exists.")

    def _autonumber(self, entity: EntityDef, merged: dict[str, Any]) -> None:
        spec = entity.extra.get("autonumber")
        if spec and not merged.get(spec[0]):
            sequence = self.store.count(self.qualified(entity)) + 1001
            merged[spec[0]] = f"{spec[1]}{sequence:05d}-{uuid.uuid4().hex[:6].upper()}"

    def _inherit_currency(self, detail: str, merged: dict[str, Any]) -> None:
        """A new line takes its header's currency when it names none."""
        header_name, lookup = DETAIL_HEADERS[detail]
        if merged.get("transactioncurrencyid") is None and merged.get(lookup):
            header = self.store.get(f"dataverse:{header_name}", merged[lookup])
            if header is not None:
                merged["transactioncurrencyid"] = header.get("transactioncurrencyid")

    def _roll_up(self, detail: str, row: Mapping[str, Any]) -> None:
        """A header's line total follows its details (system pricing recalculates it)."""
        header_name, lookup = DETAIL_HEADERS[detail]
        header_key = row.get(lookup)
        if header_key is None:
            return
        header = self.store.get(f"dataverse:{header_name}", header_key)
        if header is None:
            return
        lines = self.store.query(f"dataverse:{detail}", f'"{lookup}" = ?', [header_key])
        total = round(sum(float(line["extendedamount"] or 0.0) for line in lines), 2)
        if header.get("totallineitemamount") != total:
            self.store.update(f"dataverse:{header_name}", header_key,
                              {"totallineitemamount": total})

    def _create_base_unit(self, group: Mapping[str, Any], user: str | None) -> None:
        """Creating a unit group creates its base unit, named after ``baseuomname``."""
        unit_id = str(uuid.uuid4())
        self.store.insert("dataverse:uom", {
            "uomid": unit_id, "name": group["baseuomname"], "uomscheduleid":
            group["uomscheduleid"], "quantity": 1.0, "baseuom": unit_id,
            "isschedulebaseuom": True, "createdby": user, "modifiedby": user})
