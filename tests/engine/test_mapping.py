"""Mappings load from the packaged YAML, validate with precise errors and merge overrides."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import pytest

from nav_crm_ops.engine.mapping import MappingSet, TableMapping
from nav_crm_ops.engine.workspace import open_workspace
from nav_crm_ops.exceptions import MappingError

DEFAULT_NAMES = {"CURRENCY", "SALESPEOPLE", "UNIT OF MEASURE", "CUSTOMER", "CONTACT",
                 "ITEM-PRODUCT", "RESOURCE-PRODUCT", "CUSTOMER STATISTICS", "CUSTPRCGRP-PRICE",
                 "SALESPRC-PRODUCTPRICE", "POSTEDSALESINV-INV", "SALES ORDERS"}


def _mapping(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": "T", "direction": "bidirectional",
        "nav": {"entity": "customers", "natural_key": "number"},
        "crm": {"entity": "accounts", "logical_name": "account", "key": "accountid"},
        "fields": [{"nav": "displayName", "crm": "name"}],
    }
    base.update(overrides)
    return base


@pytest.fixture(scope="module")
def defaults() -> MappingSet:
    return MappingSet.load()


def test_defaults_load_in_recommended_order(defaults: MappingSet) -> None:
    assert set(defaults.names) == DEFAULT_NAMES
    assert defaults.dependency_order() == [
        "CURRENCY", "SALESPEOPLE", "UNIT OF MEASURE", "CUSTOMER", "CONTACT",
        "RESOURCE-PRODUCT", "ITEM-PRODUCT", "CUSTPRCGRP-PRICE", "SALESPRC-PRODUCTPRICE",
        "POSTEDSALESINV-INV", "SALES ORDERS", "CUSTOMER STATISTICS"]
    assert defaults.dependency_order(["contact", "currency"]) == ["CURRENCY", "CONTACT"]


def test_customer_default_helpers(defaults: MappingSet) -> None:
    customer = defaults.get("customer")
    assert customer.crm.filter == "statecode eq 0 and customertypecode eq 3"
    assert customer.nav.filter == "blocked eq ' '"
    assert customer.directions == ("to_crm", "from_crm")
    select = customer.crm_select()
    assert select[:3] == ["accountid", "modifiedon", "accountnumber"]
    assert "_ownerid_value" in select and "ownerid" not in select
    assert "paymentTermsId" in customer.nav_select()
    priorities = [(p, [f.crm for f in group]) for p, group in customer.match_groups()]
    assert priorities == [(0, ["accountnumber"]), (1, ["name"])]
    from_crm = {f.crm for f in customer.fields_for("from_crm")}
    assert "ownerid" not in from_crm and "creditlimit" not in from_crm and "name" in from_crm
    owner = customer.field("ownerid")
    assert owner.lookup is not None and owner.lookup.bind("abc") == {
        "ownerid@odata.bind": "/systemusers(abc)"}
    assert defaults.lookup_nav_key(customer.field("transactioncurrencyid")) == "code"
    terms = customer.field("paymenttermscode")
    assert terms.options is not None and terms.options.crm_for("30 DAYS") == 1
    assert terms.options.nav_for(4) == "60 DAYS" and terms.options.on_missing == "create"
    template = customer.template_for("crm", {"displayName": "x"})
    assert template is not None and template.values == {"customertypecode": 3}


def test_accounts_a_sync_creates_carry_the_create_template(workspace_dir: Path) -> None:
    """CUSTOMER's create template (``customertypecode`` 3) is in every account the sync
    creates on the sandbox, not only in what ``template_for`` answers."""
    with open_workspace(workspace_dir) as ws:
        ws.sync_all(["CURRENCY", "SALESPEOPLE"])
        plan = ws.preview("CUSTOMER").records
        created = plan.filter(pl.col("action").cast(pl.Utf8) == "insert_crm")["crm_id"]
        ws.sync_all(["CUSTOMER"])
        accounts = ws.connections.dataverse.read("accounts",
                                                 select=["accountid", "customertypecode"])
    types = accounts.filter(pl.col("accountid").is_in(created.to_list()))["customertypecode"]
    assert types.len() > 0 and set(types.to_list()) == {3}


def test_diff_fields_follow_compare_hints(defaults: MappingSet) -> None:
    fields = {f.name: f for f in defaults.get("ITEM-PRODUCT").diff_fields()}
    assert fields["price"].kind == "number" and fields["price"].decimals == 2
    assert fields["defaultuomscheduleid"].kind == "text"  # lookups compare NAV keys
    customer = {f.name: f for f in defaults.get("CUSTOMER").diff_fields()}
    assert not customer["emailaddress1"].case_sensitive and customer["telephone1"].case_sensitive
    assert customer["accountnumber"].direction == "to_crm"
    assert "code" not in {f.name for f in defaults.get("SALESPEOPLE").diff_fields()}


def test_salespeople_code_is_derived_from_initials(defaults: MappingSet) -> None:
    code = defaults.get("SALESPEOPLE").field("code")
    assert code.on_create_only
    assert [code.chain.scalar(n) for n in ("Annette Hill", "john  roberts", "Peter")] == [
        "AH", "JR", "P"]
    assert defaults.get("SALESPEOPLE").crm.filter == (
        "isdisabled eq false and islicensed eq true and accessmode ne 4")


def test_yaml_round_trip(defaults: MappingSet) -> None:
    again = MappingSet.from_yaml(defaults.to_yaml())
    assert list(again) == list(defaults)


def test_unknown_mapping_lists_known_names(defaults: MappingSet) -> None:
    with pytest.raises(MappingError, match=r"no mapping named 'VENDOR'; known mappings: \["):
        defaults.get("VENDOR")


@pytest.mark.parametrize(("data", "message"), [
    (_mapping(direction="sideways"),
     r"mapping T: direction 'sideways' is not one of \['to_crm', 'from_crm', 'bidirectional'\]"),
    (_mapping(direction="to_crm", fields=[{"nav": "a", "crm": "b", "direction": "from_crm"}]),
     "mapping T, field b: direction 'from_crm' does not fit the mapping direction 'to_crm'"),
    (_mapping(fields=[{"nav": "a", "crm": "b", "direction": "up"}]),
     "mapping T, field b: direction 'up' is not one of"),
    (_mapping(fields=[{"nav": "a", "crm": "b"}, {"nav": "c", "crm": "b"}]),
     "mapping T, field b: duplicate field name"),
    (_mapping(fields=[{"nav": "a", "crm": "b"}, {"name": "b2", "nav": "a", "crm": "c"}]),
     "mapping T, field b2: nav field 'a' is already written by field 'b'"),
    (_mapping(fields=[{"nav": "a", "crm": "b", "transformations": ["shout"]}]),
     "mapping T, field b: unknown transformation 'shout'"),
    (_mapping(fields=[{"nav": "a", "crm": "b", "transformations": [{"truncate": {"max_length": 0}}]}]),
     "mapping T, field b: transformation 'truncate': argument 'max_length' must be"),
    (_mapping(fields=[{"nav": "", "crm": "b"}]), "must not be empty"),
    (_mapping(name=" "), "mapping name must not be empty"),
    (_mapping(fields=[{"nav": "a", "crm": "b", "options": {"on_missing": "ask"}}]),
     "mapping T, field b: options.on_missing: Input should be 'record' or 'create'"),
    (_mapping(crm={"entity": "accounts", "key": "accountid"}),
     "mapping T: crm.logical_name: Field required"),
    (_mapping(update_conflict="newest"), r"update_conflict 'newest' is not one of \['none', 'nav_wins', 'crm_wins'\]"),
    (_mapping(fields=[{"nav": "a", "crm": "b", "options": {"values": [
        {"nav": "X", "crm": 1}, {"nav": "Y", "crm": 1}]}}]),
     "options map several NAV values to one CRM value"),
])
def test_invalid_mappings_name_mapping_field_and_choices(data: dict[str, Any], message: str) -> None:
    with pytest.raises(MappingError, match=message):
        MappingSet.from_entries([data])


def test_many_to_one_options_allowed_one_way() -> None:
    data = _mapping(direction="to_crm", fields=[{"nav": "a", "crm": "b", "options": {
        "values": [{"nav": "X", "crm": 1}, {"nav": "Y", "crm": 1}]}}])
    assert MappingSet.from_entries([data]).get("T").field("b").options.crm_for("Y") == 1  # type: ignore[union-attr]


def test_set_level_errors() -> None:
    with pytest.raises(MappingError, match=r"mapping T: depends_on names unknown mapping 'NOPE'"):
        MappingSet.from_entries([_mapping(depends_on=["NOPE"])])
    lookup = {"nav": "salespersonCode", "crm": "ownerid",
              "lookup": {"mapping": "SALES", "navigation": "ownerid", "target": "systemusers"}}
    with pytest.raises(MappingError, match="mapping T, field ownerid: lookup names unknown mapping 'SALES'"):
        MappingSet.from_entries([_mapping(fields=[lookup])])
    cycle = [_mapping(name="A", depends_on=["B"]), _mapping(name="B", depends_on=["C"]),
             _mapping(name="C", depends_on=["A"])]
    with pytest.raises(MappingError, match="dependency cycle: A -> B -> C -> A"):
        MappingSet.from_entries(cycle)
    with pytest.raises(MappingError, match="defined twice"):
        MappingSet.from_entries([_mapping(), _mapping()])


def test_field_direction_defaults_to_table_direction() -> None:
    mapping = TableMapping.model_validate(_mapping(direction="from_crm"))
    assert mapping.fields[0].direction == "from_crm"


def test_workspace_override_merges_fields_and_replaces_mappings(tmp_path: Path) -> None:
    override = tmp_path / "mappings.yaml"
    override.write_text("""
mappings:
  - name: customer
    crm: {filter: statecode eq 0}
    update_conflict: crm_wins
    fields:
      - {name: websiteurl, enabled: false}
      - {name: telephone1, remove: true}
      - {nav: fax, crm: fax}
  - name: CURRENCY
    replace: true
    direction: to_crm
    nav: {entity: currencies, natural_key: code}
    crm: {entity: transactioncurrencies, logical_name: transactioncurrency, key: transactioncurrencyid}
    fields: [{nav: code, crm: isocurrencycode}]
""", encoding="utf-8")
    merged = MappingSet.load([override])
    customer = merged.get("CUSTOMER")
    assert customer.crm.filter == "statecode eq 0"
    assert customer.crm.logical_name == "account"  # untouched keys stay
    assert customer.update_conflict == "crm_wins"
    assert not customer.field("websiteurl").enabled
    assert "telephone1" not in [f.name for f in customer.fields]
    assert customer.fields[-1].crm == "fax"
    assert [f.crm for f in merged.get("CURRENCY").fields] == ["isocurrencycode"]
    assert merged.get("CURRENCY").create_when_no_match is False


def test_override_errors_name_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("- name: CUSTOMER\n  fields:\n    - {name: nosuch, remove: true}\n")
    with pytest.raises(MappingError, match="cannot remove field 'nosuch'"):
        MappingSet.load([bad])
    with pytest.raises(MappingError, match="does not exist"):
        MappingSet.load([tmp_path / "missing.yaml"])
    broken = tmp_path / "broken.yaml"
    broken.write_text("- name: [unclosed\n")
    with pytest.raises(MappingError, match="is not valid YAML"):
        MappingSet.load([broken])


def test_for_workspace_reads_mapping_files_relative_to_the_workspace(tmp_path: Path) -> None:
    from nav_crm_ops.config import WorkspaceConfig

    (tmp_path / "mine.yaml").write_text("- {name: CONTACT, update_conflict: nav_wins}\n")
    auth = {"client_id": "x"}
    config = WorkspaceConfig.model_validate({
        "workspace": {"mapping_files": ["mine.yaml"]},
        "business_central": {"api_url": "http://bc/api/v2.0/",
                             "company_id": "00000000-0000-4000-8000-00000000000c", "auth": auth},
        "dataverse": {"url": "http://crm/api/data/v9.2/", "auth": auth},
        "root": tmp_path,
    })
    assert MappingSet.for_workspace(config).get("CONTACT").update_conflict == "nav_wins"


def test_coupled_in_must_be_a_dependency() -> None:
    entries = MappingSet.default_entries()
    stats = next(e for e in entries if e["name"] == "CUSTOMER STATISTICS")
    stats["depends_on"] = []
    with pytest.raises(MappingError, match=r"nav\.coupled_in names 'CUSTOMER', which must also be"):
        MappingSet.from_entries(entries)
    assert "lastModifiedDateTime" not in MappingSet.load().get("CUSTOMER STATISTICS").nav_select()


def test_document_lines_are_a_mapping_of_their_own(defaults: MappingSet) -> None:
    invoices = defaults.get("POSTEDSALESINV-INV")
    lines = invoices.line_mapping
    assert lines.name == "POSTEDSALESINV-INV LINES" and lines.part_of == invoices.name
    product = lines.field("productid")
    assert product.lookup is not None
    assert product.lookup.mappings == ("ITEM-PRODUCT", "RESOURCE-PRODUCT")
    assert product.only_when is not None and "Item" in product.only_when.values
    with pytest.raises(MappingError, match="has no lines"):
        defaults.get("CUSTOMER").line_mapping  # noqa: B018
    orders = defaults.get("SALES ORDERS")
    assert orders.create_only and orders.follow_up == "sales_order_status"
    assert orders.mark_source_on_create["nav_bcordernumber"] == "{created.number}"
    prices = defaults.get("SALESPRC-PRODUCTPRICE")
    assert {n.column for n in prices.not_synchronized} >= {"startingDate", "endingDate"}
    assert "startingDate" in prices.nav_select()


def test_bad_document_options_name_the_culprit() -> None:
    header_condition = _mapping(fields=[{"nav": "displayName", "crm": "name",
                                         "only_when": {"column": "type", "values": ["x"]}}])
    with pytest.raises(MappingError, match="only_when is for document line fields"):
        MappingSet.from_entries([header_condition])
    lines = {"nav": {"entity": "salesInvoiceLines", "parent": "documentId",
                     "navigation": "salesInvoiceLines", "order": "sequence"},
             "crm": {"entity": "invoicedetails", "logical_name": "invoicedetail",
                     "key": "invoicedetailid", "parent": "invoiceid",
                     "navigation": "invoice_details", "order": "lineitemnumber"},
             "fields": [{"nav": "lineObjectNumber", "crm": "productid",
                         "lookup": {"mapping": "T", "also": ["NOWHERE"],
                                    "navigation": "productid", "target": "products"}}]}
    with pytest.raises(MappingError, match="unknown mapping 'NOWHERE'"):
        MappingSet.from_entries([_mapping(lines=lines)])
    broken = {**lines, "fields": [{"nav": "quantity", "crm": "quantity",
                                   "direction": "sideways"}]}
    with pytest.raises(MappingError, match="lines"):
        MappingSet.from_entries([_mapping(lines=broken)])
