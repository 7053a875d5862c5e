"""The Business Central extension (bc-extension/) serves the custom API the sandbox emulates.

Why: the mappings are tested against the sandbox only; on a real tenant the same requests go to
the AL pages of bc-extension/. These tests tie the two together (route, keys, every property
with a compatible type and length, every property a mapping reads or writes) by parsing the AL
sources, so a drift fails here instead of on a customer's tenant. No compiler, no network.
"""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path

import pytest

from nav_crm_ops.bc_extension import (
    check_extension,
    load_extension,
    mapping_usage,
    sandbox_contract,
)
from nav_crm_ops.connectors.business_central import CUSTOM_API_PATH
from nav_crm_ops.engine.mapping import MappingSet
from nav_crm_ops.sandbox.business_central.common import CUSTOM_API

EXTENSION = Path(__file__).resolve().parents[1] / "bc-extension"
ROUTE = CUSTOM_API_PATH.removeprefix("api/")
CUSTOM_SETS = {"resources", "customerPriceGroups", "salesPrices", "customerPriceLists",
               "customerStatistics"}
CUSTOM_MAPPINGS = {"RESOURCE-PRODUCT", "CUSTPRCGRP-PRICE", "SALESPRC-PRODUCTPRICE",
                   "CUSTOMER STATISTICS"}


def _problems(folder: Path, mappings: MappingSet | None = None) -> list[str]:
    usage = mapping_usage(mappings if mappings is not None else MappingSet.load(), ROUTE)
    return check_extension(load_extension(folder), sandbox_contract(), usage, ROUTE)


def _mutated(tmp_path: Path, file: str, old: str, new: str) -> Path:
    """A copy of the extension with ``old`` replaced by ``new`` in ``src/<file>``."""
    folder = tmp_path / "bc-extension"
    shutil.copytree(EXTENSION, folder)
    path = folder / "src" / file
    text = path.read_text(encoding="utf-8")
    assert old in text, f"mutation target {old!r} not in {file}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return folder


def test_route_is_the_one_connector_and_sandbox_use() -> None:
    assert ROUTE == CUSTOM_API == "navcrm/sync/v1.0"
    pages = load_extension(EXTENSION).pages
    assert {page.route for page in pages.values()} == {ROUTE}


def test_checks_cover_every_custom_set_and_mapping() -> None:
    """Guards the main test against passing vacuously (an empty contract or usage)."""
    assert {entity.entity_set for entity in sandbox_contract()} == CUSTOM_SETS
    usage = mapping_usage(MappingSet.load(), ROUTE)
    assert set(usage) == CUSTOM_SETS - {"customerPriceGroups"}
    assert set().union(*(names for use in usage.values() for names in use.read.values())) \
        == CUSTOM_MAPPINGS
    assert set(load_extension(EXTENSION).pages) == CUSTOM_SETS


def test_extension_serves_the_sandbox_contract_and_the_mappings() -> None:
    assert _problems(EXTENSION) == []


@pytest.mark.parametrize(("file", "old", "new", "reported"), [
    pytest.param("NavCrmResources.Page.al", "field(unitPrice;", "field(unitPrize;",
                 "RESOURCE-PRODUCT reads resources.unitPrice", id="renamed-property"),
    pytest.param("NavCrmResources.Page.al", "field(unitPrice;",
                 '// field(unitPrice; Rec."Unit Price")\n                field(unitPrize;',
                 "resources.unitPrice: the sandbox serves this property",
                 id="commented-out-field-does-not-count"),
    pytest.param("NavCrmResources.Page.al", 'Rec."Unit Cost"', 'Rec."Unit Costs"',
                 'source Rec."Unit Costs" is not a known field', id="unknown-table-field"),
    pytest.param("NavCrmResources.Page.al", 'field(number; Rec."No.")', 'field(no; Rec."No.")',
                 "natural key number is not a field", id="natural-key"),
    pytest.param("NavCrmSalesPrices.Page.al", "APIVersion = 'v1.0';", "APIVersion = 'v2.0';",
                 "API route navcrm/sync/v2.0 differs", id="api-version"),
    pytest.param("NavCrmCustomerPriceGroups.Page.al", "ODataKeyFields = SystemId;",
                 "ODataKeyFields = Code;", "ODataKeyFields must be SystemId", id="key"),
    pytest.param("NavCrmSalesPrices.Page.al", "PriceListCode: Code[21];",
                 "PriceListCode: Code[30];",
                 "salesPrices.priceListCode: AL length 30 exceeds the sandbox's 21",
                 id="too-long"),
    pytest.param("NavCrmPriceListBuffer.Table.al", '"Price Count"; Integer',
                 '"Price Count"; Decimal',
                 "customerPriceLists.priceCount: AL type Decimal does not serialize as the "
                 "sandbox's int", id="type"),
    pytest.param("NavCrmCustomerStatistics.Page.al", "EntitySetName = 'customerStatistics';",
                 "EntitySetName = 'customerStatistic';",
                 "no API page has EntitySetName = 'customerStatistics'", id="entity-set"),
    pytest.param("NavCrmResources.Page.al", "DelayedInsert = true;", "",
                 "a writable API page needs DelayedInsert = true", id="delayed-insert"),
    pytest.param("NavCrmResources.Page.al", "page 50100", "page 50200",
                 "page 50200 'NavCrm Resources API' is outside app.json idRanges",
                 id="id-range"),
    pytest.param("NavCrmSync.PermissionSet.al", 'page "NavCrm Sales Prices API" = X,', "",
                 "page 'NavCrm Sales Prices API' is missing from the permission set",
                 id="permission-set"),
])
def test_a_drift_is_reported(tmp_path: Path, file: str, old: str, new: str,
                             reported: str) -> None:
    problems = _problems(_mutated(tmp_path, file, old, new))
    assert any(reported in problem for problem in problems), problems


TWO_WAY = """
- name: RESOURCE-TWOWAY
  direction: bidirectional
  nav: {entity: resources, api: navcrm/sync/v1.0, natural_key: number}
  crm: {entity: products, logical_name: product, key: productid, natural_key: productnumber}
  fields:
    - {nav: number, crm: productnumber}
    - {nav: name, crm: name}
- name: PRICE-BACK
  direction: from_crm
  nav: {entity: salesPrices, api: navcrm/sync/v1.0}
  crm: {entity: productpricelevels, logical_name: productpricelevel, key: productpricelevelid}
  fields:
    - {nav: unitPrice, crm: amount}
"""


def test_a_mapping_that_writes_needs_a_writable_field(tmp_path: Path) -> None:
    mappings = MappingSet.from_yaml(TWO_WAY)
    usage = mapping_usage(mappings, ROUTE)
    assert usage["resources"].write == {"number": {"RESOURCE-TWOWAY"},
                                        "name": {"RESOURCE-TWOWAY"}}
    problems = _problems(EXTENSION, mappings)
    # salesPrices is read-only in AL (prices live in price lists): a write is reported.
    assert problems == ["NavCrmSalesPrices.Page.al: PRICE-BACK writes salesPrices.unitPrice, "
                        "which the AL page does not let a client write"]
    read_only = _mutated(tmp_path, "NavCrmResources.Page.al", "Extensible = false;",
                         "Extensible = false;\n    Editable = false;")
    assert any("RESOURCE-TWOWAY writes resources.name" in p
               for p in _problems(read_only, mappings))


def test_app_json_names_the_extension_and_its_id_range() -> None:
    app = json.loads((EXTENSION / "app.json").read_text(encoding="utf-8"))
    assert uuid.UUID(app["id"])
    assert (app["name"], app["publisher"]) == ("NAV CRM Ops Sync API", "nav-crm-ops")
    assert app["idRanges"] == [{"from": 50100, "to": 50149}]
    assert int(app["runtime"].split(".")[0]) >= 13
    assert app["application"].startswith("24.")


def test_readme_documents_install_urls_and_check() -> None:
    readme = (EXTENSION / "README.md").read_text(encoding="utf-8")
    base = ("https://api.businesscentral.dynamics.com/v2.0/<tenant>/<env>/api/navcrm/sync/v1.0/"
            "companies(<id>)/")
    for entity_set in CUSTOM_SETS:
        assert base + entity_set in readme, entity_set
    for needed in ("NAVCRM SYNC", "Extension Management", "Download Symbols", "200"):
        assert needed in readme, needed
