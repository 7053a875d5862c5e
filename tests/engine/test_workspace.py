"""End-to-end synchronization through the Python API against the CRONUS sandbox."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest

from nav_crm_ops import WriteOp, load_config, open_workspace, write_config
from nav_crm_ops.engine.workspace import Workspace
from nav_crm_ops.exceptions import SyncError

ALL_MAPPINGS = ["CURRENCY", "SALESPEOPLE", "UNIT OF MEASURE", "CUSTOMER", "CONTACT",
                "RESOURCE-PRODUCT", "ITEM-PRODUCT", "CUSTPRCGRP-PRICE", "SALESPRC-PRODUCTPRICE",
                "POSTEDSALESINV-INV", "SALES ORDERS", "CUSTOMER STATISTICS"]


@pytest.fixture
def ws(workspace_dir: Path) -> Iterator[Workspace]:
    with open_workspace(workspace_dir) as opened:
        yield opened


def _crm(ws: Workspace, entity: str, **filters: str) -> pl.DataFrame:
    flt = " and ".join(f"{k} eq '{v}'" for k, v in filters.items()) or None
    return ws.connections.dataverse.read(entity, filter=flt)


def _nav(ws: Workspace, entity: str, **filters: str) -> pl.DataFrame:
    flt = " and ".join(f"{k} eq '{v}'" for k, v in filters.items()) or None
    return ws.connections.business_central.read(entity, filter=flt)


def _crm_update(ws: Workspace, entity: str, key: str, payload: dict[str, object]) -> None:
    """A person's edit in CRM (impersonated: the engine ignores its own changes)."""
    people = ws.connections.dataverse.read("systemusers", select=["systemuserid"],
                                           filter="accessmode ne 4 and isdisabled eq false")
    with ws.connections.dataverse.acting_as(str(people["systemuserid"][0])) as person:
        [outcome] = person.write([WriteOp.update(entity, key, payload)])
    assert outcome.ok, outcome.error


def _nav_update(ws: Workspace, entity: str, key: str, payload: dict[str, object]) -> None:
    [outcome] = ws.connections.business_central.write([WriteOp.update(entity, key, payload)])
    assert outcome.ok, outcome.error


def _customer_pair(ws: Workspace, number: str) -> tuple[str, str]:
    coupling = ws.store.couplings_frame("CUSTOMER").filter(pl.col("nav_key") == number)
    assert coupling.height == 1, f"customer {number} is not coupled"
    return coupling["nav_id"].item(), coupling["crm_id"].item()


def test_first_sync_all_flows_every_mapping_and_both_sides_agree(ws: Workspace) -> None:
    report = ws.sync_all()
    assert [r.mapping for r in report.results] == ALL_MAPPINGS
    # currencies, units of measure, items and resources reach CRM; users reach BC
    crm_currencies = set(_crm(ws, "transactioncurrencies")["isocurrencycode"].to_list())
    assert set(_nav(ws, "currencies")["code"].to_list()) <= crm_currencies
    assert set(_nav(ws, "unitsOfMeasure")["code"].to_list()) <= set(
        _crm(ws, "uomschedules")["name"].to_list())
    products = set(_crm(ws, "products")["productnumber"].to_list())
    items = ws.connections.business_central.read("items", filter="blocked eq false")
    assert set(items["number"].to_list()) <= products
    users = ws.connections.dataverse.read(
        "systemusers", filter="isdisabled eq false and islicensed eq true and accessmode ne 4")
    salespeople = _nav(ws, "salespeoplePurchasers")
    assert set(users["internalemailaddress"].str.to_lowercase().to_list()) <= set(
        salespeople["email"].str.to_lowercase().to_list())
    # customers and accounts: matched by name where CRM had no number, never duplicated
    for name in ("The Cannon Group PLC", "Selangorian Ltd."):
        assert _crm(ws, "accounts", name=name).height == 1
        assert _nav(ws, "customers", displayName=name).height == 1
    _, cannon_crm = _customer_pair(ws, "10000")
    assert _crm(ws, "accounts", name="The Cannon Group PLC")["accountid"].item() == cannon_crm
    created_in_bc = report.result("CUSTOMER").counts
    assert created_in_bc["inserted"] > 0 and created_in_bc["coupled"] >= 4
    # contacts coupled in both directions with their parent account
    assert report.result("CONTACT").count("inserted") > 0
    # both sides agree on every mapped field of every coupled pair
    for mapping in ALL_MAPPINGS:
        differences = ws.compare(mapping)
        assert differences.height == 0, (mapping, differences.head(5).to_dicts())
    # the job log holds the same counts as the report
    runs = ws.runs(limit=100).filter(pl.col("kind") == "sync")
    for result in report.results:
        logged = runs.filter(pl.col("id").is_in(list(result.run_ids)))
        assert int(logged["inserted"].sum()) == result.count("inserted")
        assert int(logged["failed"].sum()) == result.count("failed")


def test_merge_of_different_fields_then_conflict_resolved_by_policy(ws: Workspace,
                                                                   workspace_dir: Path) -> None:
    ws.sync_all(["CURRENCY", "SALESPEOPLE", "CUSTOMER"])
    nav_id, crm_id = _customer_pair(ws, "20000")
    _crm_update(ws, "accounts", crm_id, {"name": "Selangorian Holdings Ltd."})
    _nav_update(ws, "customers", nav_id, {"phoneNumber": "+44 20 7946 0000"})

    plan = ws.preview("CUSTOMER")
    record = plan.records.filter(pl.col("nav_id") == nav_id)
    assert record["action"].cast(pl.Utf8).item() == "update_both"
    changes = plan.field_changes.filter(pl.col("record_id") == nav_id).sort("field")
    assert changes.select("field", "changed_side", "target", "new_value").rows() == [
        ("name", "crm", "nav", "Selangorian Holdings Ltd."),
        ("telephone1", "nav", "crm", "+44 20 7946 0000"),
    ]
    assert not changes["conflict"].any()
    report = ws.apply(plan)
    assert report.result("CUSTOMER").status in ("finished", "failed")
    assert _nav(ws, "customers", number="20000")["displayName"].item() == "Selangorian Holdings Ltd."
    assert _crm(ws, "accounts", accountid=crm_id)["telephone1"].item() == "+44 20 7946 0000"
    assert ws.compare("CUSTOMER").filter(pl.col("nav_id") == nav_id).height == 0

    _crm_update(ws, "accounts", crm_id, {"address1_city": "Leeds"})
    _nav_update(ws, "customers", nav_id, {"city": "York"})
    held = ws.preview("CUSTOMER")
    conflict = held.records.filter(pl.col("nav_id") == nav_id)
    assert conflict["action"].cast(pl.Utf8).item() == "conflict"
    assert "York" in conflict["message"].item() and "Leeds" in conflict["message"].item()
    city = held.field_changes.filter((pl.col("record_id") == nav_id) & pl.col("conflict"))
    assert city.select("field", "nav_value", "crm_value").rows() == [
        ("address1_city", "York", "Leeds")]
    report = ws.apply(held)
    assert report.result("CUSTOMER").count("conflicts") == 1
    assert _nav(ws, "customers", number="20000")["city"].item() == "York"  # held: nothing written

    (workspace_dir / "mappings.yaml").write_text(
        "- {name: CUSTOMER, update_conflict: crm_wins}\n", encoding="utf-8")
    config = load_config(workspace_dir)
    write_config(config.model_copy(update={"workspace": config.workspace.model_copy(
        update={"mapping_files": ("mappings.yaml",)})}), workspace_dir)
    with open_workspace(workspace_dir) as again:
        resolved = again.sync("CUSTOMER")
        assert resolved.result("CUSTOMER").count("conflicts") == 0
        assert _nav(again, "customers", number="20000")["city"].item() == "Leeds"
        assert again.failed_records("CUSTOMER").filter(pl.col("source_id") == nav_id).height == 0


def test_dirty_records_fail_clearly_skip_on_repeat_and_retry_after_the_fix(ws: Workspace) -> None:
    first = ws.sync_all(["CURRENCY", "SALESPEOPLE", "CUSTOMER"])
    assert first.result("CUSTOMER").count("failed") > 0
    messages = "\n".join(ws.errors("CUSTOMER")["message"].to_list())
    assert "The length of the string is 114" in messages
    assert "Atlantis" in messages
    assert "salespersonCode 'TD' is not coupled to a CRM systemuser" in messages
    assert "run SALESPEOPLE first" in messages

    failed = ws.failed_records("CUSTOMER")
    assert set(failed["state"].to_list()) == {"failed"}
    ws.sync_all(["CUSTOMER"])
    skipped = ws.failed_records("CUSTOMER")
    assert set(skipped["state"].to_list()) == {"skipped"}
    third = ws.sync_all(["CUSTOMER"])
    assert third.result("CUSTOMER").count("failed") == 0

    long_name = _crm(ws, "accounts").filter(pl.col("name").str.len_chars() > 100)
    account_id = long_name["accountid"].item()
    _crm_update(ws, "accounts", account_id, {"name": "Consolidated Messenger"})
    assert ws.unskip("CUSTOMER", [account_id]) == 1
    retried = ws.retry("CUSTOMER", [account_id])
    assert retried.result("CUSTOMER").count("inserted") == 1
    assert _nav(ws, "customers", displayName="Consolidated Messenger").height == 1
    assert ws.failed_records("CUSTOMER").filter(pl.col("source_id") == account_id).height == 0


def test_a_run_with_nothing_changed_reads_two_pages_per_side_and_writes_nothing(
        ws: Workspace) -> None:
    ws.sync_all()
    ws.sync_all()  # the retry pass takes the dirty records to skipped
    for mapping in ALL_MAPPINGS:
        clients = {"nav": ws.connections.business_central_for(
            ws.mappings.get(mapping).nav.api).stats, "crm": ws.connections.dataverse.stats}
        before = {side: (s.reads, s.writes) for side, s in clients.items()}
        report = ws.sync(mapping)
        result = report.result(mapping)
        assert result.count("inserted") == result.count("modified") == 0, mapping
        assert result.count("failed") == 0, mapping
        for side, stats in clients.items():
            reads, writes = stats.reads - before[side][0], stats.writes - before[side][1]
            assert writes == 0, (mapping, side)
            assert reads <= 2, (mapping, side, reads)
        plan = ws.preview(mapping)
        assert set(plan.records["action"].cast(pl.Utf8).to_list()) <= {"unchanged", "skip"}


def test_a_saved_plan_refuses_a_record_changed_since_and_says_why(ws: Workspace,
                                                                 tmp_path: Path) -> None:
    ws.sync_all(["CURRENCY", "SALESPEOPLE", "CUSTOMER"])
    nav_id, crm_id = _customer_pair(ws, "30000")
    other_nav, other_crm = _customer_pair(ws, "40000")
    _nav_update(ws, "customers", nav_id, {"phoneNumber": "+44 1 0000 0001"})
    _nav_update(ws, "customers", other_nav, {"phoneNumber": "+44 1 0000 0002"})
    path = ws.save_plan(ws.preview("CUSTOMER"), tmp_path / "plan.parquet")

    _crm_update(ws, "accounts", crm_id, {"websiteurl": "https://changed.example"})
    report = ws.apply(ws.load_plan(path))
    assert report.result("CUSTOMER").count("modified") == 1
    assert _crm(ws, "accounts", accountid=other_crm)["telephone1"].item() == "+44 1 0000 0002"
    assert _crm(ws, "accounts", accountid=crm_id)["telephone1"].item() != "+44 1 0000 0001"
    refused = ws.errors("CUSTOMER").filter(pl.col("source_id") == nav_id)
    assert "changed after the preview" in refused["message"].item(0)
    again = ws.sync("CUSTOMER")
    assert again.result("CUSTOMER").count("modified") == 2  # phone to CRM, website to BC
    assert _nav(ws, "customers", number="30000")["website"].item() == "https://changed.example"
    assert _crm(ws, "accounts", accountid=crm_id)["telephone1"].item() == "+44 1 0000 0001"
    assert _crm(ws, "accounts", accountid=crm_id)["websiteurl"].item() == "https://changed.example"


def test_match_couple_and_manual_coupling(ws: Workspace) -> None:
    ws.sync_all(["CURRENCY", "SALESPEOPLE"])
    preview = ws.match_couple("CUSTOMER", apply=False)
    counts = preview.counts
    assert counts["matched"] >= 8 and counts.get("unmatched", 0) > 0
    assert ws.store.couplings_frame("CUSTOMER").height == 0
    done = ws.match_couple("CUSTOMER")
    coupled = ws.store.couplings_frame("CUSTOMER")
    assert coupled.height == counts["matched"] // 2
    nav_id, crm_id = coupled.row(0)[1], coupled.row(0)[2]
    with pytest.raises(SyncError, match="already coupled"):
        other = ws.store.couplings_frame("CUSTOMER").row(1)
        ws.couple("CUSTOMER", other[1], crm_id)
    assert ws.uncouple("CUSTOMER", nav_id=nav_id) == 1
    ws.couple("CUSTOMER", nav_id, crm_id)
    assert done.report.results == ()
    with pytest.raises(SyncError, match="does not exist"):
        ws.couple("CUSTOMER", "00000000-0000-0000-0000-000000000001", crm_id)


def test_sync_now_with_an_explicit_direction_overwrites_the_other_side(ws: Workspace) -> None:
    ws.sync_all(["CURRENCY", "SALESPEOPLE", "CUSTOMER"])
    nav_id, crm_id = _customer_pair(ws, "10000")
    _crm_update(ws, "accounts", crm_id, {"address1_city": "Crm City"})
    report = ws.sync_now("CUSTOMER", nav_ids=[nav_id], direction="to_crm")
    assert report.result("CUSTOMER").count("modified") == 1
    assert _crm(ws, "accounts", accountid=crm_id)["address1_city"].item() == \
        _nav(ws, "customers", number="10000")["city"].item()
    with pytest.raises(SyncError, match="not allowed"):
        ws.sync_now("CURRENCY", nav_ids=[nav_id], direction="from_crm")


def test_links_open_both_records(ws: Workspace, workspace_dir: Path) -> None:
    links = ws.record_links("CUSTOMER", nav_id="abc", crm_id="def")
    assert links["dynamics_365"].endswith("/crm/main.aspx?etn=account&pagetype=entityrecord&id=def")
    assert "/businesscentral/" in links["business_central"]  # the sandbox's record pages
    config = load_config(workspace_dir)
    # without a configured web client URL, an online API URL gives the online web client
    online = config.model_copy(update={"business_central": config.business_central.model_copy(
        update={"api_url": "https://api.businesscentral.dynamics.com/v2.0/t1/Production/api/v2.0/",
                "company_name": "CRONUS UK Ltd.", "web_client_url": ""})})
    with Workspace(online) as other:
        link = other.record_links("CUSTOMER", nav_id="abc")["business_central"]
    assert link == ("https://businesscentral.dynamics.com/t1/Production/?company=CRONUS%20UK%20Ltd."
                    "&page=21&filter=%27SystemId%27%20IS%20%27abc%27")


def test_a_second_process_is_refused_while_the_mapping_is_being_synchronized(
        ws: Workspace) -> None:
    from nav_crm_ops.exceptions import LeaseHeldError

    ws.store.acquire_lease("mapping:CURRENCY", "other-host:4242 sync CURRENCY", 60)
    with pytest.raises(LeaseHeldError, match="other-host:4242"):
        ws.sync("CURRENCY")
    ws.store.release_lease("mapping:CURRENCY", "other-host:4242 sync CURRENCY")
    assert ws.sync("CURRENCY").result("CURRENCY").count("inserted") == 7


def test_missing_option_values_are_created_when_the_mapping_says_so(ws: Workspace) -> None:
    ws.sync_all(["CURRENCY", "SALESPEOPLE", "CUSTOMER"])
    created = ws.store.option_mappings("CUSTOMER", "address1_freighttermscode")
    by_code = dict(created.select("nav_value", "crm_value").iter_rows())
    assert {"EXW", "CIF"} <= set(by_code)
    labels = ws.connections.dataverse.choice_options("account", "address1_freighttermscode")
    assert labels[by_code["EXW"]] == "EXW"
    _, crm_id = _customer_pair(ws, "10000")
    account = _crm(ws, "accounts", accountid=crm_id)
    assert account["address1_freighttermscode"].item() == by_code["EXW"]
    again = ws.sync("CUSTOMER")
    assert ws.store.option_mappings("CUSTOMER", "address1_freighttermscode").height == \
        created.height
    assert again.result("CUSTOMER").count("modified") == 0
