"""Seed data loaded into real SQLite stores: CRONUS names, dirty records, determinism, scale."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from nav_crm_ops.exceptions import SandboxError
from nav_crm_ops.sandbox import Sandbox
from nav_crm_ops.sandbox.bc_schema import BC_ENTITIES
from nav_crm_ops.sandbox.cronus import business_central as cronus_bc
from nav_crm_ops.sandbox.cronus import dataverse as cronus_dv
from nav_crm_ops.sandbox.dataverse_schema import DATAVERSE_ENTITIES, PAYMENT_TERMS
from nav_crm_ops.sandbox.seed import SeedSpec, SeedSummary, load_seed, parse_seed_spec, seed_id
from nav_crm_ops.sandbox.server import SandboxInfo
from nav_crm_ops.sandbox.store import SandboxStore
from nav_crm_ops.secrets import Secret

INFO = SandboxInfo(
    base_url="http://127.0.0.1:9", tenant="cronus-tenant", environment="sandbox",
    company_id="6a3b2c1d-0000-4000-8000-00000000c0de",
    company_name="CRONUS International Ltd.",
    client_id="0c1e2f3a-4b5c-4d6e-8f70-8192a3b4c5d6", client_secret=Secret("not-used"),
)
CUSTOMERS = "business_central:customers"
BC_CONTACTS = "business_central:contacts"


def _seeded(path: Path, spec: str) -> tuple[SandboxStore, SeedSummary]:
    store = SandboxStore(path, [*DATAVERSE_ENTITIES, *BC_ENTITIES])
    return store, load_seed(store, spec, INFO)


def _rows(store: SandboxStore, entity: str, where: str = "",
          params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
    return store.query(entity, where, params)


def _one(store: SandboxStore, entity: str, where: str, *params: Any) -> dict[str, Any]:
    rows = _rows(store, entity, where, params)
    assert len(rows) == 1, f"{entity} where {where} {params}: {len(rows)} rows"
    return rows[0]


@pytest.fixture(scope="module")
def cronus(tmp_path_factory: pytest.TempPathFactory) -> tuple[SandboxStore, SeedSummary]:
    return _seeded(tmp_path_factory.mktemp("cronus") / "sandbox.db", "cronus")


@pytest.fixture
def store(cronus: tuple[SandboxStore, SeedSummary]) -> SandboxStore:
    return cronus[0]


# ----------------------------------------------------------------------------- spec parsing


@pytest.mark.parametrize(("text", "expected"), [
    ("cronus", SeedSpec("cronus")),
    (" CRONUS ", SeedSpec("cronus")),
    ("scale:2000", SeedSpec("scale", 2000, 0)),
    ("scale:10,seed=7", SeedSpec("scale", 10, 7)),
])
def test_valid_specs_parse(text: str, expected: SeedSpec) -> None:
    assert parse_seed_spec(text) == expected


@pytest.mark.parametrize("text", ["", "demo", "scale", "scale:", "scale:0", "scale:-5",
                                  "scale:abc", "scale:10,seed=x", "scale:10;seed=1"])
def test_invalid_spec_names_the_valid_forms(tmp_path: Path, text: str) -> None:
    store = SandboxStore(tmp_path / "sandbox.db", [*DATAVERSE_ENTITIES, *BC_ENTITIES])
    with pytest.raises(SandboxError) as caught:
        load_seed(store, text, INFO)
    message = str(caught.value)
    assert "'cronus'" in message and "'scale:N'" in message and repr(text) in message
    assert sum(store.counts().values()) == 0


def test_seeding_twice_is_refused_and_changes_nothing(tmp_path: Path) -> None:
    store, summary = _seeded(tmp_path / "twice.db", "scale:5")
    before = store.counts()
    with pytest.raises(SandboxError, match="reset the sandbox"):
        load_seed(store, "cronus", INFO)
    assert store.counts() == before
    assert summary.count(CUSTOMERS) == 5 and summary.count("business_central:items") == 1


# ----------------------------------------------------------------------------- cronus


def test_summary_matches_the_store_and_the_schema(
        cronus: tuple[SandboxStore, SeedSummary]) -> None:
    store, summary = cronus
    assert summary.spec == "cronus"
    assert summary.skipped_columns == {}, "seed columns the schema lacks"
    assert summary.missing_entities == ()
    assert dict(summary.counts) == {k: v for k, v in store.counts().items() if v}
    assert summary.count(CUSTOMERS) == len(cronus_bc.CUSTOMERS)
    assert summary.count(BC_CONTACTS) == len(cronus_bc.CUSTOMERS) + len(
        cronus_bc.PERSON_CONTACTS)
    assert summary.count("dataverse:account") == len(cronus_dv.ACCOUNTS)
    assert summary.count("dataverse:systemuser") == len(cronus_dv.USERS) + 1


def test_cronus_company_reference_data_and_names(store: SandboxStore) -> None:
    company = _one(store, "business_central:companies", "id = ?", INFO.company_id)
    assert company["name"] == "CRONUS International Ltd."
    names = {r["number"]: r["displayName"] for r in _rows(store, CUSTOMERS)}
    assert names["10000"] == "The Cannon Group PLC"
    assert names["20000"] == "Selangorian Ltd."
    assert names["30000"] == "John Haddock Insurance Co."
    assert names["40000"] == "Deerfield Graphics Company"
    assert names["50000"] == "Guildford Water Department"
    items = {r["number"]: r for r in _rows(store, "business_central:items")}
    assert items["1896-S"]["displayName"] == "ATHENS Desk"
    assert items["1908-S"]["displayName"] == "LONDON Swivel Chair, blue"
    assert items["1925-W"]["baseUnitOfMeasureCode"] == "SET"
    assert [n for n, r in items.items() if r["blocked"]] == ["1936-S"]
    people = {r["code"]: r["displayName"]
              for r in _rows(store, "business_central:salespeoplePurchasers")}
    assert {"AH": "Annette Hill", "JR": "John Roberts", "PS": "Peter Saddow"}.items() \
        <= people.items()
    units = {r["code"] for r in _rows(store, "business_central:unitsOfMeasure")}
    assert {"PCS", "BOX", "HOUR", "DAY", "PACK", "SET", "KG"} <= units
    blocked = [r["number"] for r in _rows(store, CUSTOMERS, "blocked <> ' '")]
    assert blocked == ["74000"]


def test_cronus_customers_point_at_existing_reference_rows(store: SandboxStore) -> None:
    terms = {r["id"] for r in _rows(store, "business_central:paymentTerms")}
    methods = {r["id"] for r in _rows(store, "business_central:shipmentMethods")}
    currencies = {r["id"]: r["code"] for r in _rows(store, "business_central:currencies")}
    countries = {r["code"] for r in _rows(store, "business_central:countriesRegions")}
    people = {r["code"] for r in _rows(store, "business_central:salespeoplePurchasers")}
    for customer in _rows(store, CUSTOMERS):
        assert customer["paymentTermsId"] in terms
        assert customer["shipmentMethodId"] in methods
        assert customer["country"] in countries
        assert customer["salespersonCode"] in people
        if customer["currencyCode"] == "GBP":
            assert customer["currencyId"] == "00000000-0000-0000-0000-000000000000"
        else:
            assert currencies[customer["currencyId"]] == customer["currencyCode"]


def test_integration_application_user_and_licensed_users(store: SandboxStore) -> None:
    app_user = _one(store, "dataverse:systemuser", "applicationid = ?", INFO.client_id)
    assert app_user["fullname"] == "# NAV CRM Ops Integration"
    assert app_user["accessmode"] == 4
    assert app_user["isdisabled"] is False
    hill = _one(store, "dataverse:systemuser", "fullname = ?", "Annette Hill")
    assert hill["internalemailaddress"] == "annette.hill@cronus.example"
    assert hill["islicensed"] is True and hill["accessmode"] == 0
    disabled = _rows(store, "dataverse:systemuser", "isdisabled = 1")
    assert [u["fullname"] for u in disabled] == ["Bart Duncan"]


def test_crm_has_only_some_currencies(store: SandboxStore) -> None:
    crm = {r["isocurrencycode"] for r in _rows(store, "dataverse:transactioncurrency")}
    bc = {r["code"] for r in _rows(store, "business_central:currencies")}
    assert crm == {"GBP", "USD", "EUR"}
    assert {"DKK", "SEK", "NOK", "JPY", "CAD"} <= bc - crm


def test_price_groups_and_sales_prices(store: SandboxStore) -> None:
    groups = {r["code"] for r in _rows(store, "business_central:customerPriceGroups")}
    assert groups == {"RETAIL", "WHOLESALE", "EXPORT"}
    prices = _rows(store, "business_central:salesPrices")
    by_type = Counter(p["salesType"] for p in prices)
    assert by_type["Customer"] >= 1 and by_type["Customer Price Group"] >= 10
    wholesale_currencies = {p["currencyCode"] for p in prices if p["salesCode"] == "WHOLESALE"}
    assert len(wholesale_currencies) == 2
    assert any(p["startingDate"] and p["endingDate"] for p in prices)


def test_documents_have_lines_and_totals(store: SandboxStore) -> None:
    for header_entity, line_entity in (("salesOrders", "salesOrderLines"),
                                       ("salesInvoices", "salesInvoiceLines")):
        headers = _rows(store, f"business_central:{header_entity}")
        assert len(headers) >= 5
        for header in headers:
            lines = _rows(store, f"business_central:{line_entity}", '"documentId" = ?',
                          (header["id"],))
            assert lines
            assert header["totalAmountExcludingTax"] == pytest.approx(
                sum(line["amountExcludingTax"] for line in lines))


# ----------------------------------------------------------------------------- dirty records


def test_dirty_account_name_longer_than_bc_display_name(store: SandboxStore) -> None:
    long_names = [a for a in _rows(store, "dataverse:account")
                  if len(a["name"]) > 100 and a["customertypecode"] == 3]
    assert len(long_names) == 1
    bc_limit = store.entity(CUSTOMERS).column("displayName")
    assert bc_limit is not None and bc_limit.max_length == 100
    crm_limit = store.entity("dataverse:account").column("name")
    assert crm_limit is not None and len(long_names[0]["name"]) <= (crm_limit.max_length or 0)


def test_dirty_payment_terms_without_crm_option(store: SandboxStore) -> None:
    term = _one(store, "business_central:paymentTerms", "code = ?", "21 DAYS")
    customer = _one(store, CUSTOMERS, '"paymentTermsId" = ?', term["id"])
    assert customer["number"] == "70000"
    assert not any("21" in label for label in PAYMENT_TERMS.values())


def test_dirty_unknown_country_on_crm_customer(store: SandboxStore) -> None:
    account = _one(store, "dataverse:account", "address1_country = ?", "Atlantis")
    assert account["customertypecode"] == 3 and account["statecode"] == 0
    assert not _rows(store, "business_central:countriesRegions",
                     "code = ? OR \"displayName\" = ?", ("Atlantis", "Atlantis"))


def test_dirty_salesperson_without_crm_user(store: SandboxStore) -> None:
    person = _one(store, "business_central:salespeoplePurchasers", "code = ?", "TD")
    assert _one(store, CUSTOMERS, '"salespersonCode" = ?', "TD")["number"] == "72000"
    assert not _rows(store, "dataverse:systemuser", "fullname = ?", (person["displayName"],))


def test_dirty_contact_person_without_company(store: SandboxStore) -> None:
    orphans = _rows(store, BC_CONTACTS, "type = 'Person' AND (\"companyNumber\" = '' OR "
                    "\"companyNumber\" IS NULL)")
    assert [c["displayName"] for c in orphans] == ["Jim Bell"]
    companies = {c["number"] for c in _rows(store, BC_CONTACTS, "type = 'Company'")}
    persons = _rows(store, BC_CONTACTS, "type = 'Person' AND \"companyNumber\" <> ''")
    assert persons and all(p["companyNumber"] in companies for p in persons)


def test_dirty_crm_contacts_share_an_email(store: SandboxStore) -> None:
    emails = Counter(c["emailaddress1"] for c in _rows(store, "dataverse:contact"))
    assert [e for e, n in emails.items() if n > 1] == ["mark.hanson@cannongroup.example"]
    assert _rows(store, "dataverse:contact", "parentcustomerid IS NULL")


def test_crm_accounts_matching_nav_customers_by_name_only(store: SandboxStore) -> None:
    bc_names = {r["displayName"].lower() for r in _rows(store, CUSTOMERS)}
    matched = [a for a in _rows(store, "dataverse:account") if a["name"].lower() in bc_names]
    assert {a["name"] for a in matched} >= {"The Cannon Group PLC", "Selangorian Ltd."}
    assert all(a["accountnumber"] is None for a in matched)
    assert any(a["name"] not in {r["displayName"] for r in _rows(store, CUSTOMERS)}
               for a in matched), "one account should differ only in letter case"


def test_crm_accounts_filtered_by_type_or_state_exist(store: SandboxStore) -> None:
    accounts = _rows(store, "dataverse:account")
    types = Counter(a["customertypecode"] for a in accounts)
    assert types[8] >= 1 and types[1] >= 1 and types[3] >= 8
    inactive = [a for a in accounts if a["statecode"] == 1]
    assert [(a["name"], a["statuscode"]) for a in inactive] == [("Wingtip Toys", 2)]


def test_submitted_orders_one_for_a_customer_not_in_nav(store: SandboxStore) -> None:
    submitted = _rows(store, "dataverse:salesorder", "statecode = 1")
    assert len(submitted) >= 2
    bc_names = {r["displayName"].lower() for r in _rows(store, CUSTOMERS)}
    accounts = {a["accountid"]: a["name"] for a in _rows(store, "dataverse:account")}
    customers = [accounts[o["customerid"]] for o in submitted]
    assert any(name.lower() not in bc_names for name in customers)
    assert any(name.lower() in bc_names for name in customers)
    for order in submitted:
        details = _rows(store, "dataverse:salesorderdetail", "salesorderid = ?",
                        (order["salesorderid"],))
        assert details and all(d["productid"] and d["uomid"] for d in details)


# ----------------------------------------------------------------------------- determinism


def test_same_spec_gives_identical_rows(tmp_path: Path,
                                        cronus: tuple[SandboxStore, SeedSummary]) -> None:
    first, _ = cronus
    second, summary = _seeded(tmp_path / "again.db", "cronus")
    for entity in ("business_central:customers", "business_central:contacts",
                   "dataverse:account", "dataverse:contact", "dataverse:salesorderdetail"):
        left = [{k: v for k, v in r.items() if k not in ("_version", "versionnumber")}
                for r in _rows(first, entity)]
        right = [{k: v for k, v in r.items() if k not in ("_version", "versionnumber")}
                 for r in _rows(second, entity)]
        assert left == right, entity
    assert max(r["modifiedon"] for r in _rows(second, "dataverse:account")) < "2026-02-01"
    assert summary.counts == cronus[1].counts


def test_scale_seed_changes_the_data(tmp_path: Path) -> None:
    one, _ = _seeded(tmp_path / "one.db", "scale:60,seed=1")
    two, _ = _seeded(tmp_path / "two.db", "scale:60,seed=2")
    names_one = [r["displayName"] for r in _rows(one, CUSTOMERS, "number LIKE 'C%'")]
    names_two = [r["displayName"] for r in _rows(two, CUSTOMERS, "number LIKE 'C%'")]
    assert len(set(names_one)) == 60 and names_one != names_two
    ids_one = {r["id"] for r in _rows(one, CUSTOMERS)}
    assert not ids_one & {r["id"] for r in _rows(two, CUSTOMERS)}


# ----------------------------------------------------------------------------- scale


def test_scale_2000_proportions(tmp_path: Path) -> None:
    store, summary = _seeded(tmp_path / "scale.db", "scale:2000")
    assert summary.spec == "scale:2000,seed=0"
    assert summary.skipped_columns == {} and summary.missing_entities == ()
    assert summary.count(CUSTOMERS) == 2000
    assert summary.count(BC_CONTACTS) == 4000
    assert summary.count("business_central:items") == 200
    assert summary.count("business_central:salesOrders") == 100
    assert summary.count("business_central:salesOrderLines") >= 100
    assert summary.count("business_central:salesPrices") == 300
    assert summary.count("dataverse:transactioncurrency") == 3
    assert summary.count("business_central:salespeoplePurchasers") == 6
    persons_without_company = store.count(
        BC_CONTACTS, "type = 'Person' AND \"companyNumber\" = ''")
    assert persons_without_company == 40
    bc_names = {r["displayName"] for r in _rows(store, CUSTOMERS)}
    assert len(bc_names) == 2000
    accounts = _rows(store, "dataverse:account")
    matching = [a for a in accounts if a["name"] in bc_names]
    assert len(matching) == 667 and len(accounts) == 667 + 100
    assert summary.count("dataverse:contact") == len(accounts)
    assert _one(store, "dataverse:systemuser", "applicationid = ?", INFO.client_id)


@pytest.mark.slow
def test_scale_100000_timing(tmp_path: Path) -> None:
    started = time.perf_counter()
    _, summary = _seeded(tmp_path / "big.db", "scale:100000")
    elapsed = time.perf_counter() - started
    print(f"scale:100000 loaded {summary.total} rows in {elapsed:.1f} s")
    assert summary.count(CUSTOMERS) == 100_000
    assert elapsed < 120


@pytest.mark.parametrize("spec", ["cronus", "scale:300,seed=5"])
def test_seeded_rows_fit_the_entity_definitions(tmp_path: Path, spec: str) -> None:
    """Lengths, options, choices, required columns and lookup targets all hold."""
    store, _ = _seeded(tmp_path / "fit.db", spec)
    problems: list[str] = []
    for entity in store.entities:
        name = f"{entity.service}:{entity.name}"
        for row in _rows(store, name):
            for column in entity.columns:
                value = row[column.name]
                where = f"{name}.{column.name}={value!r}"
                if value is None:
                    if column.required:
                        problems.append(f"{where} is required")
                    continue
                if column.max_length and isinstance(value, str) \
                        and len(value) > column.max_length:
                    problems.append(f"{where} longer than {column.max_length}")
                if column.options and value not in column.options:
                    problems.append(f"{where} not an option")
                if column.choices and value not in column.choices:
                    problems.append(f"{where} not a choice")
                if column.type == "lookup":
                    targets = column.lookup_targets
                    if len(targets) > 1:
                        targets = (row[f"{column.name}type"],)
                    if not any(store.get(f"dataverse:{t}", value) for t in targets if t):
                        problems.append(f"{where} points to no {column.lookup_targets}")
    assert problems == []


# ----------------------------------------------------------------------------- over HTTP


def _token(info: SandboxInfo, scope: str) -> dict[str, str]:
    response = httpx.post(info.token_url, data={
        "grant_type": "client_credentials", "client_id": info.client_id,
        "client_secret": info.client_secret.reveal(), "scope": scope}, timeout=30)
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}",
            "Accept": "application/json"}


def test_seeded_records_are_served_over_http(fresh_sandbox: Sandbox) -> None:
    info = fresh_sandbox.info
    bc = httpx.get(f"{info.bc_api_url}companies({info.company_id})/customers",
                   params={"$filter": "number eq '10000'"},
                   headers=_token(info, info.bc_scope), timeout=30)
    assert bc.status_code == 200, bc.text
    [customer] = bc.json()["value"]
    assert customer["displayName"] == "The Cannon Group PLC"
    assert customer["id"] == seed_id("business_central", "customers", "10000")
    dv_headers = _token(info, info.dataverse_scope)
    who = httpx.get(f"{info.dataverse_url}WhoAmI", headers=dv_headers, timeout=30)
    assert who.status_code == 200, who.text
    assert who.json()["UserId"] == seed_id("dataverse", "systemuser",
                                           f"application:{info.client_id.lower()}")
    accounts = httpx.get(f"{info.dataverse_url}accounts", headers=dv_headers, timeout=30,
                         params={"$select": "name,accountnumber",
                                 "$filter": "name eq 'SELANGORIAN LTD.'"})
    assert accounts.status_code == 200, accounts.text
    [account] = accounts.json()["value"]
    assert account["name"] == "Selangorian Ltd." and account["accountnumber"] is None


def test_dirty_crm_accounts_fail_as_documented_when_created_in_bc(
        fresh_sandbox: Sandbox) -> None:
    """The long name and the unknown country are rejected by the BC API the way the seed says."""
    info = fresh_sandbox.info
    store = fresh_sandbox.context.store
    long_name = next(a for a in _rows(store, "dataverse:account") if len(a["name"]) > 100)
    atlantis = _one(store, "dataverse:account", "address1_country = ?", "Atlantis")
    headers = _token(info, info.bc_scope)
    url = f"{info.bc_api_url}companies({info.company_id})/customers"
    too_long = httpx.post(url, headers=headers, timeout=30,
                          json={"displayName": long_name["name"]})
    assert too_long.status_code == 400
    assert too_long.json()["error"]["code"] == "Application_StringExceededLength"
    unknown_country = httpx.post(url, headers=headers, timeout=30, json={
        "displayName": atlantis["name"], "country": atlantis["address1_country"]})
    assert unknown_country.status_code == 400
    assert "Atlantis" in unknown_country.json()["error"]["message"]
