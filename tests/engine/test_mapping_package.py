"""The mapping package's parts on their own: the public names stay where they were, raw YAML
entries read and merge by the documented rule, and errors name the field as the YAML does."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
from pydantic import ValidationError

from nav_crm_ops.engine import mapping
from nav_crm_ops.engine.mapping import MappingSet, TableMapping
from nav_crm_ops.engine.mapping.entries import merge_mapping, overlay, read_entries
from nav_crm_ops.engine.mapping.messages import pydantic_message, shown
from nav_crm_ops.exceptions import MappingError

PUBLIC = ["DIRECTIONS", "MAX_FILTER_CHARS", "RECOMMENDED_ORDER", "CompareSpec", "CrmSide",
          "DocumentLines", "FieldMapping", "LinesSide", "LookupChild", "LookupSpec",
          "LookupVia", "MappingSet", "MatchSpec", "NavReference", "NavSide", "NotSynchronized",
          "OnlyWhen", "OptionMap", "OptionValue", "TableMapping", "Template", "Templates",
          "UPDATE_CONFLICTS", "DELETION_CONFLICTS", "FIELD_KINDS"]


def _mapping(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": "T", "direction": "bidirectional",
        "nav": {"entity": "customers", "natural_key": "number"},
        "crm": {"entity": "accounts", "logical_name": "account", "key": "accountid"},
        "fields": [{"nav": "displayName", "crm": "name"}],
    }
    base.update(overrides)
    return base


def test_every_public_name_imports_from_the_package() -> None:
    assert set(PUBLIC) <= set(mapping.__all__)
    for name in PUBLIC:
        assert getattr(mapping, name) is not None, name


def test_the_package_loads_without_the_store() -> None:
    """Mappings are data: reading them must not pull in the state store (DuckDB)."""
    code = ("import sys, nav_crm_ops.engine.mapping as m; m.MappingSet.load(); "
            "print(any(k.startswith('nav_crm_ops.store') for k in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize(("text", "names"), [
    ("", []),
    ("name: A\n", ["A"]),
    ("- name: A\n- name: B\n", ["A", "B"]),
    ("mappings:\n  - name: A\n", ["A"]),
])
def test_read_entries_accepts_the_documented_shapes(text: str, names: list[str]) -> None:
    assert [e["name"] for e in read_entries(text, "f.yaml")] == names


@pytest.mark.parametrize(("text", "message"), [
    ("- 1\n", r"f\.yaml: expected a mapping, a list of mappings or \{mappings: \[\.\.\.\]\}"),
    ("- {direction: to_crm}\n", "f.yaml: a mapping has no 'name'"),
    ("- {name: A, fields: {nav: x}}\n", r"f\.yaml: mapping A: fields must be a list .* got \{'nav'"),
    ("- name: [\n", "f.yaml is not valid YAML"),
])
def test_read_entries_errors_name_the_origin(text: str, message: str) -> None:
    with pytest.raises(MappingError, match=message):
        read_entries(text, "f.yaml")


def test_overlay_merges_replaces_and_appends_without_touching_its_input() -> None:
    defaults: dict[str, dict[str, Any]] = {
        "A": {"name": "A", "direction": "to_crm", "nav": {"entity": "x", "key": "id"}},
        "B": {"name": "B", "direction": "to_crm"}}
    merged = overlay(defaults, [
        {"name": "a", "nav": {"entity": "y"}},
        {"name": "B", "replace": True, "direction": "from_crm"},
        {"name": "C", "replace": True, "direction": "to_crm"},
    ])
    assert list(merged) == ["A", "B", "C"]
    assert merged["A"]["nav"] == {"entity": "y", "key": "id"}
    assert merged["B"] == {"name": "B", "direction": "from_crm"}
    assert merged["C"] == {"name": "C", "direction": "to_crm"}
    assert defaults["A"]["nav"] == {"entity": "x", "key": "id"}


def test_merge_mapping_matches_fields_by_name_then_crm_field() -> None:
    base = {"name": "A", "fields": [{"nav": "a", "crm": "one"}, {"name": "Two", "nav": "b",
                                                                 "crm": "two"}]}
    merged = merge_mapping(base, {"name": "A", "fields": [
        {"crm": "ONE", "enabled": False}, {"name": "two", "remove": True}, {"nav": "c", "crm": "three"}]})
    assert merged["fields"] == [{"nav": "a", "crm": "ONE", "enabled": False},
                                {"nav": "c", "crm": "three"}]
    assert len(base["fields"]) == 2


@pytest.mark.parametrize(("field", "label"), [
    ({"name": "named", "nav": "a", "crm": "b", "enabled": "yes"}, "field named"),
    ({"nav": "a", "crm": "b", "enabled": "yes"}, "field b"),
])
def test_errors_name_the_field_as_the_yaml_does(field: dict[str, Any], label: str) -> None:
    entry = _mapping(fields=[field])
    with pytest.raises(ValidationError) as caught:
        TableMapping.model_validate(entry)
    message = pydantic_message(caught.value, entry, "f.yaml")
    assert message.startswith(f"f.yaml: mapping T, {label}: enabled: ")
    assert message.endswith("(write true or false, without quotes)")


def test_errors_number_a_field_without_a_name() -> None:
    entry = _mapping(fields=[{"nav": "a"}])
    with pytest.raises(ValidationError) as caught:
        TableMapping.model_validate(entry)
    assert "mapping T, field #1: crm: Field required" in pydantic_message(
        caught.value, entry, "f.yaml")


def test_shown_cuts_long_values() -> None:
    assert shown("x" * 100, limit=10) == repr("x" * 100)[:10] + "..."
    assert shown([1]) == "[1]"


def test_lookup_nav_key_must_identify_the_referenced_record() -> None:
    lookup = {"nav": "customerNumber", "crm": "parentid",
              "lookup": {"mapping": "T", "navigation": "parentid_account", "target": "accounts",
                         "nav_key": "displayName"}}
    with pytest.raises(MappingError, match=r"mapping U, field parentid: lookup nav_key "
                                           r"'displayName' does not identify a T record; "
                                           r"valid: \['id', 'number'\]"):
        MappingSet.from_entries([_mapping(), _mapping(name="U", fields=[lookup])])


def test_not_synchronized_columns_are_selected_on_their_side() -> None:
    table = TableMapping.model_validate(_mapping(not_synchronized=[
        {"side": "nav", "column": "startingDate", "note": "no place in CRM"},
        {"side": "crm", "column": "description", "note": "CRM only"}]))
    assert table.nav_select()[-1] == "startingDate"
    assert "description" not in table.nav_select()
    assert table.crm_select()[-1] == "description"
    assert "startingDate" not in table.crm_select()
