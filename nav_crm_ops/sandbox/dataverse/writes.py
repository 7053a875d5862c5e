"""Dataverse writes: create (with deep insert), upsert, update and delete."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from ..dataverse_schema import (
    DETAIL_HEADERS,
    derive_columns,
    is_polymorphic,
    line_amounts,
    type_column,
)
from ..odata.replies import Reply
from ..schema import EntityDef
from ..store import KeyExistsError
from .common import (
    CODE_DUPLICATE,
    CODE_INVALID_ARGUMENT,
    CODE_ODATA,
    OWNER_COLUMN,
    DataverseError,
    Query,
    etag,
    not_found,
)
from .rules import DataverseRules


class DataverseWrites(DataverseRules):
    """Creating, updating and deleting records."""

    def _insert(self, entity: EntityDef, changes: dict[str, Any], client_id: str | None,
                *, roll_up: bool = True) -> dict[str, Any]:
        merged = _with_defaults(entity, changes)
        merged.update(derive_columns(entity, merged))
        self._autonumber(entity, merged)
        self._check_required(entity, merged)
        self._check_alternate_keys(entity, merged)
        user = self._caller(client_id)
        if entity.extra.get("owned"):
            _set_owner(merged, user)
        merged["createdby"] = user
        merged["modifiedby"] = user
        if entity.name in DETAIL_HEADERS:
            self._inherit_currency(entity.name, merged)
            merged.update(line_amounts(merged))
        try:
            row = self.store.insert(self.qualified(entity), merged)
        except KeyExistsError:
            raise DataverseError(412, CODE_DUPLICATE,
                                 "A record with matching key values already exists.") from None
        if entity.name in DETAIL_HEADERS and roll_up:
            self._roll_up(entity.name, row)
        if entity.name == "uomschedule":
            self._create_base_unit(row, user)
        return row

    def _update(self, entity: EntityDef, existing: dict[str, Any], changes: dict[str, Any],
                client_id: str | None, *, built: bool = False) -> dict[str, Any]:
        """``built``: the written row may be built from ``existing`` (see :func:`_built`)."""
        merged = {**existing, **changes}
        changes.update(derive_columns(entity, merged) if
                       {"firstname", "lastname"} & set(changes) else {})
        merged.update(changes)
        self._check_required(entity, merged, only=changes)
        if set(entity.extra.get("alternate_keys", ())) & set(changes):
            self._check_alternate_keys(entity, merged)
        changes["modifiedby"] = self._caller(client_id)
        if entity.name in DETAIL_HEADERS:
            changes.update(line_amounts(merged))
        row = self.store.update(self.qualified(entity), existing[entity.key], changes,
                                existing if built else None)
        if entity.name in DETAIL_HEADERS:
            lookup = DETAIL_HEADERS[entity.name][1]
            self._roll_up(entity.name, row)
            if existing.get(lookup) != row.get(lookup):
                self._roll_up(entity.name, existing)
            row = self.store.get(self.qualified(entity), row[entity.key]) or row
        return row

    def _create(self, entity: EntityDef, body: bytes, q: Query, client_id: str | None,
                content_ids: Mapping[str, str]) -> Reply:
        data = self._body(body, entity)
        collections: Mapping[str, tuple[str, str]] = entity.extra.get("collections") or {}
        nested = {name: data.pop(name) for name in list(data) if name in collections}
        with self.store.transaction():
            changes = self._changes(entity, data, None, content_ids)
            self._check_duplicate_rules(entity, q, changes)
            row = self._insert(entity, changes, client_id)
            if nested:
                self._deep_insert(entity, row, nested, client_id, content_ids)
                row = self.store.get(self.qualified(entity), row[entity.key]) or row
        if nested and q.prefer.get("return") == "representation":
            # The answer is expanded to the level of the request, as OData requires.
            extra = {name: Query(None, q.annotations, q.prefer) for name in nested}
            q = Query(q.select, q.annotations, q.prefer, {**extra, **q.expand})
        return self._write_reply(entity, row, q, created=True)

    def _deep_insert(self, entity: EntityDef, row: Mapping[str, Any],
                     nested: Mapping[str, Any], client_id: str | None,
                     content_ids: Mapping[str, str]) -> None:
        """Create the new child rows of collection-valued navigation properties."""
        for name, items in nested.items():
            child_name, lookup = entity.extra["collections"][name]
            child = self.by_name[child_name]
            if not isinstance(items, list):
                raise DataverseError(400, CODE_ODATA, f"The value of the navigation property "
                                                      f"'{name}' must be an array of "
                                                      f"{child_name} records.")
            for item in items:
                if not isinstance(item, dict):
                    raise DataverseError(400, CODE_ODATA, f"Each item of '{name}' must be a "
                                                          f"{child_name} record (a JSON "
                                                          "object).")
                changes = self._changes(child, item, None, content_ids)
                changes[lookup] = row[entity.key]
                self._insert(child, changes, client_id, roll_up=False)
            if child_name in DETAIL_HEADERS:
                self._roll_up(child_name, {lookup: row[entity.key]})

    def _upsert(self, entity: EntityDef, key: tuple[str, str], body: bytes,
                headers: Mapping[str, str], q: Query, client_id: str | None,
                content_ids: Mapping[str, str]) -> Reply:
        data = self._body(body, entity)
        deep = sorted(set(data) & set(entity.extra.get("collections") or {}))
        if deep:
            raise DataverseError(400, CODE_ODATA, f"Deep update is not supported: '{deep[0]}' "
                                                  "cannot be written with PATCH; create or "
                                                  f"update the {deep[0]} rows one by one.")
        if_match = headers.get("if-match")
        if_none_match = headers.get("if-none-match")
        with self.store.transaction():
            existing = self._find(entity, key)
            if existing is None:
                if if_match is not None:
                    raise not_found(entity, self._describe_key(key))
                changes = self._changes(entity, data, None, content_ids)
                body_key = changes.get(entity.key)
                column, value = key
                if column == entity.key:
                    if body_key is not None and body_key != value:
                        raise DataverseError(400, CODE_INVALID_ARGUMENT,
                                             f"The key {value} in the URL does not match the "
                                             f"{entity.key} {body_key} in the body.")
                    changes[entity.key] = value
                else:
                    changes[column] = value
                self._check_duplicate_rules(entity, q, changes)
                row = self._insert(entity, changes, client_id)
                return self._write_reply(entity, row, q, created=True)
            if if_none_match == "*":
                # Documented with an empty code (*Perform conditional operations*); an
                # alternate-key clash answers the same status with CODE_DUPLICATE.
                raise DataverseError(412, "", "A record with matching key values already "
                                              "exists.")
            self._check_if_match(existing, if_match)
            changes = self._changes(entity, data, existing, content_ids)
            if q.detect_duplicates:  # (the merged row only then)
                self._check_duplicate_rules(entity, q, {**existing, **changes})
            row = self._update(entity, existing, changes, client_id, built=_built(q))
        return self._write_reply(entity, row, q, created=False)

    @staticmethod
    def _check_if_match(row: Mapping[str, Any], if_match: str | None) -> None:
        if if_match is None or if_match.strip() == "*":
            return
        current = etag(row)
        if if_match == current:  # one tag, as a batch of updates sends: no list to read
            return
        tags = {t.strip() for t in if_match.split(",")}
        if current not in tags and str(row["versionnumber"]) not in tags:
            raise DataverseError(412, "", "The version of the existing record doesn't match the "
                                          "RowVersion property provided.")

    def _delete(self, entity: EntityDef, key: tuple[str, str],
                headers: Mapping[str, str]) -> Reply:
        with self.store.transaction():
            existing = self._find(entity, key)
            if existing is None:
                raise not_found(entity, self._describe_key(key))
            self._check_if_match(existing, headers.get("if-match"))
            self._delete_cascade(entity, existing[entity.key])
        return Reply(204, headers={"OData-Version": "4.0"})

    def _delete_cascade(self, entity: EntityDef, key: str) -> None:
        """Delete a record: child lines go with it, other lookups to it are cleared."""
        deleted = self.store.delete(self.qualified(entity), key)
        if deleted is not None and entity.name in DETAIL_HEADERS:
            self._roll_up(entity.name, deleted)
        for other in self.catalog.entities:
            for column in other.columns:
                if column.type != "lookup" or entity.name not in column.lookup_targets:
                    continue
                if column.name in ("createdby", "modifiedby"):
                    continue
                name = self.qualified(other)
                for row in self.store.query(name, f'"{column.name}" = ?', [key]):
                    if other.parent == entity.name or column.name in other.extra.get(
                            "cascade", ()):
                        self.store.delete(name, row[other.key])
                    else:
                        clear = {column.name: None}
                        if is_polymorphic(column):
                            clear[type_column(column)] = None
                        self.store.update(name, row[other.key], clear)


def _built(q: Query) -> bool:
    """Whether an update's answer may come from the row built from the one read (see
    ``SandboxStore.update``): it shows no decimal or money column. ``UPDATE ... RETURNING``
    answers such a column's whole number as an integer (``5000``, where a read gives
    ``5000.0``), and the answer stays as it was."""
    if q.prefer.get("return") != "representation":
        return True
    return q.select is not None and not any(c.type in ("decimal", "money") for c in q.select)


def _with_defaults(entity: EntityDef, changes: Mapping[str, Any]) -> dict[str, Any]:
    """A new record: a fresh key unless given, column defaults, the status of its state."""
    merged = dict(changes)
    if merged.get(entity.key) is None:
        merged[entity.key] = str(uuid.uuid4())
    for column in entity.columns:
        if column.default is not None and merged.get(column.name) is None:
            merged[column.name] = column.default
    states = entity.extra.get("states") or {}
    if states and "statecode" not in changes:
        merged["statuscode"] = states[merged.get("statecode", 0)][0]
    return merged


def _set_owner(merged: dict[str, Any], user: str | None) -> None:
    """An owned record without an owner is the caller's; an owner is a systemuser unless
    its type says otherwise."""
    if merged.get(OWNER_COLUMN) is None and user:
        merged[OWNER_COLUMN] = user
        merged[f"{OWNER_COLUMN}type"] = "systemuser"
    if merged.get(OWNER_COLUMN) and not merged.get(f"{OWNER_COLUMN}type"):
        merged[f"{OWNER_COLUMN}type"] = "systemuser"
