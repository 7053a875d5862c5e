"""Mappings as raw YAML entries: reading a mapping file and merging override files over the
defaults, before anything is validated.

Why merge raw entries and not validated mappings: an override names only what it changes
(``{name: websiteurl, enabled: false}``), which is no valid mapping on its own. The merge
rule, entry by entry (see also the package docstring):

* a name that is not a default, or an entry with ``replace: true``, is a whole mapping;
* otherwise the entry is merged over the default of that name: mappings (``nav``, ``crm``,
  ``templates`` ...) merge key by key, scalars and lists replace; ``fields`` entries are matched
  to default fields by ``name`` (which defaults to the CRM field name) and merged key by key;
  an entry with ``remove: true`` deletes the field; entries with new names are appended.

Profiles: one mapping definition serves every ERP the toolkit talks to. An entry may carry
``profiles: {nav2018: {...}}``: for a workspace of that profile the section is merged over the
entry by the same rule before anything else (so the NAV page's field names replace the API's:
``fields: [{name: accountnumber, nav: "No"}]``, ``nav: {key: "No", modified:
Last_Date_Modified, modified_is_date: true}``), and the ``profiles`` key itself is dropped.
An entry without a section for the workspace's profile is taken as written; the loader leaves
out the *packaged defaults* without one on a profile other than ``bc-online`` (they name
Business Central API fields a NAV page does not have).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any

import yaml

from ...config import ErpProfile
from ...exceptions import MappingError
from .messages import shown

__all__ = ["PROFILES", "for_profile", "merge_mapping", "overlay", "read_entries"]

PROFILES = tuple(p.value for p in ErpProfile)
"""The ERP profiles a ``profiles`` section may name."""


def read_entries(text: str, origin: str) -> list[dict[str, Any]]:
    """The mapping entries of one YAML text (a mapping, a list of them or ``{mappings: [...]}``),
    each checked to have a name and a list of field entries; errors name ``origin``."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise MappingError(f"{origin} is not valid YAML: {exc}") from None
    entries = _entry_list(data, origin)
    for entry in entries:
        _check_entry(entry, origin)
    return entries


def _entry_list(data: Any, origin: str) -> list[dict[str, Any]]:
    """The accepted file shapes, normalized to a list of entries (an empty file has none)."""
    if data is None:
        return []
    if isinstance(data, dict) and "mappings" in data:
        data = data["mappings"]
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list) or not all(isinstance(d, dict) for d in data):
        raise MappingError(f"{origin}: expected a mapping, a list of mappings or {{mappings: [...]}}")
    return data


def _check_entry(entry: Mapping[str, Any], origin: str) -> None:
    """What the merge itself relies on: a name to match by, ``fields`` as field entries, and
    ``profiles`` sections that are themselves overrides."""
    if not str(entry.get("name") or "").strip():
        raise MappingError(f"{origin}: a mapping has no 'name' (every mapping needs one)")
    _check_fields(entry, entry.get("fields", []), origin, "fields")
    profiles = entry.get("profiles", {})
    if not isinstance(profiles, dict):
        raise MappingError(f"{origin}: mapping {entry['name']}: profiles must map a profile "
                           f"name ({', '.join(PROFILES)}) to an override; got {shown(profiles)}")
    for profile, section in profiles.items():
        if profile not in PROFILES:
            raise MappingError(f"{origin}: mapping {entry['name']}: unknown profile "
                               f"{profile!r}; valid: {', '.join(PROFILES)}")
        if not isinstance(section, dict) or "profiles" in section or "name" in section:
            raise MappingError(f"{origin}: mapping {entry['name']}: profiles.{profile} must be "
                               "an override of this mapping (nav, fields, lines ...) without "
                               f"a name or profiles of its own; got {shown(section)}")
        _check_fields(entry, section.get("fields", []), origin, f"profiles.{profile}.fields")


def _check_fields(entry: Mapping[str, Any], fields: Any, origin: str, where: str) -> None:
    if not isinstance(fields, list) or not all(isinstance(f, dict) for f in fields):
        raise MappingError(
            f"{origin}: mapping {entry['name']}: {where} must be a list of field entries, "
            "e.g. fields: [{name: telephone1, enabled: false}] or "
            "[{nav: phoneNumber, crm: telephone1, direction: to_crm}]; "
            f"got {shown(fields)}")


def for_profile(entry: Mapping[str, Any], profile: str) -> dict[str, Any]:
    """``entry`` as a workspace of ``profile`` uses it: its ``profiles`` section for that
    profile merged over it (module docstring), the ``profiles`` key dropped."""
    base = {k: v for k, v in entry.items() if k != "profiles"}
    section = (entry.get("profiles") or {}).get(profile)
    if not section:
        return base
    return merge_mapping(base, {"name": base["name"], **section})


def overlay(entries: Mapping[str, dict[str, Any]],
            overrides: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """``entries`` (keyed by upper-case name) with one file's ``overrides`` applied by the
    merge rule; a later file's overlay wins over an earlier one's."""
    merged = dict(entries)
    for entry in overrides:
        key = str(entry["name"]).upper()
        if key in merged and not entry.get("replace"):
            merged[key] = merge_mapping(merged[key], entry)
        else:
            merged[key] = {k: v for k, v in entry.items() if k != "replace"}
    return merged


def merge_mapping(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """One override entry merged over the entry ``base`` of the same name."""
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


def _merge(base: Any, override: Any) -> Any:
    """Dictionaries merge key by key (recursively); anything else is replaced by a copy."""
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for key, value in override.items():
            merged[key] = _merge(base[key], value) if key in base else value
        return merged
    return copy.deepcopy(override)


def _field_key(raw: Mapping[str, Any]) -> str:
    """What matches an override field to a default field: its name, else its CRM field."""
    return str(raw.get("name") or raw.get("crm") or "").lower()
