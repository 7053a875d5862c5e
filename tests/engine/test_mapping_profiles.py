"""One mapping definition per table pair, in the field names of each ERP profile (issue #17):
a ``profiles: {nav2018: ...}`` section is merged over the entry for a NAV workspace, by the
same rule as a workspace's override files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from nav_crm_ops.config import load_config
from nav_crm_ops.engine.mapping import MappingSet
from nav_crm_ops.exceptions import MappingError

ENTRY: dict[str, Any] = {
    "name": "T", "direction": "bidirectional",
    "nav": {"entity": "customers", "natural_key": "number"},
    "crm": {"entity": "accounts", "logical_name": "account", "key": "accountid"},
    "fields": [{"nav": "number", "crm": "accountnumber", "direction": "to_crm"},
               {"nav": "displayName", "crm": "name"},
               {"nav": "website", "crm": "websiteurl"}],
    "profiles": {"nav2018": {
        "nav": {"key": "No", "natural_key": "No", "modified": "Last_Date_Modified",
                "modified_is_date": True},
        "fields": [{"name": "accountnumber", "nav": "No"},
                   {"name": "name", "nav": "Name"},
                   {"name": "websiteurl", "remove": True}]}},
}


def test_a_profile_section_renames_the_nav_side_and_its_fields() -> None:
    nav = MappingSet.from_entries([ENTRY], profile="nav2018").get("T")
    assert (nav.nav.entity, nav.nav.key, nav.nav.natural_key) == ("customers", "No", "No")
    assert nav.nav.modified == "Last_Date_Modified" and nav.nav.modified_is_date
    assert [(f.name, f.nav, f.crm) for f in nav.fields] == [
        ("accountnumber", "No", "accountnumber"), ("name", "Name", "name")]
    online = MappingSet.from_entries([ENTRY]).get("T")
    assert [f.nav for f in online.fields] == ["number", "displayName", "website"]
    assert online.nav.key == "id" and not online.nav.modified_is_date


@pytest.mark.parametrize(("profiles", "message"), [
    ({"nav2009": {}}, "unknown profile 'nav2009'; valid: bc-online, nav2018"),
    ({"nav2018": {"name": "X"}}, "profiles.nav2018 must be an override of this mapping"),
    ({"nav2018": {"fields": {"name": "No"}}}, "profiles.nav2018.fields must be a list"),
    (["nav2018"], "profiles must map a profile name"),
])
def test_profile_mistakes_name_the_mapping_and_what_to_write(tmp_path: Path, profiles: Any,
                                                             message: str) -> None:
    import yaml

    file = tmp_path / "mine.yaml"
    file.write_text(yaml.safe_dump({**ENTRY, "profiles": profiles}))
    with pytest.raises(MappingError, match=message.replace("(", r"\(").replace(")", r"\)")):
        MappingSet.load([file], defaults=False, profile="nav2018")


def test_a_nav_workspace_loads_its_override_files_in_nav_terms(tmp_path: Path) -> None:
    """A workspace of profile nav2018 applies the profile to the defaults and to its own
    files; an override written in NAV terms then lands on the NAV field."""
    import yaml

    from tests.test_config import NAV_WORKSPACE

    (tmp_path / "mine.yaml").write_text(yaml.safe_dump({"mappings": [
        ENTRY, {"name": "T", "fields": [{"name": "name", "direction": "to_crm"}]}]}))
    (tmp_path / "nav_crm_ops.toml").write_text(NAV_WORKSPACE.replace(
        'profile = "nav2018"', 'profile = "nav2018"\nmapping_files = ["mine.yaml"]'))
    mapping = MappingSet.for_workspace(load_config(tmp_path)).get("T")
    assert mapping.field("name").nav == "Name" and mapping.field("name").direction == "to_crm"
    assert mapping.nav.key == "No"


def test_every_default_mapping_has_a_nav_2018_section() -> None:
    assert len(MappingSet.load(profile="nav2018")) == len(MappingSet.load()) == 12


def test_an_override_of_a_default_a_nav_workspace_leaves_out_says_so(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """On nav2018 the defaults without a nav2018 section are left out; an override of one is
    refused with what to do (before, it was read as a whole mapping and failed on its missing
    parts). With replace: true it is a mapping of its own. (Every default has a nav2018
    section today: here CUSTOMER STATISTICS plays one written for Business Central only.)"""
    import yaml

    defaults = MappingSet.default_entries()
    monkeypatch.setattr(MappingSet, "default_entries", staticmethod(lambda: [
        {k: v for k, v in e.items() if k != "profiles" or e["name"] != "CUSTOMER STATISTICS"}
        for e in defaults]))

    (tmp_path / "mine.yaml").write_text(yaml.safe_dump({"mappings": [
        {"name": "CUSTOMER STATISTICS", "fields": [{"name": "nav_balance", "enabled": False}]}]}))
    with pytest.raises(MappingError, match="profile nav2018 does not have yet"):
        MappingSet.load([tmp_path / "mine.yaml"], profile="nav2018")
    assert "CUSTOMER STATISTICS" in MappingSet.load([tmp_path / "mine.yaml"])  # bc-online
    whole = {**ENTRY, "name": "CUSTOMER STATISTICS", "replace": True}
    whole.pop("profiles")
    (tmp_path / "mine.yaml").write_text(yaml.safe_dump({"mappings": [whole]}))
    assert "CUSTOMER STATISTICS" in MappingSet.load([tmp_path / "mine.yaml"], profile="nav2018")
