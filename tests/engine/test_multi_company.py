"""Two Business Central companies synchronized with one Dataverse org (issue #19, item 5):
``nav-crm-ops sandbox --companies 2`` in-process, one workspace per company made by
``nav-crm-ops init --company``, both on one state database (a SQLite file, and the private
PostgreSQL server), ``sync --all`` of both at once in two threads.

The second company has the same customer and item numbers as the first, with other names
(``Adatum Corporation (UK)``): numbers alone cannot tell the companies' records apart, the
company column of the state database and ``bcbi_companyid`` in Dataverse must."""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest

from nav_crm_ops.demo import SANDBOX_SECRET_ENV
from nav_crm_ops.engine.mapping import MappingSet
from nav_crm_ops.engine.workspace import Workspace, open_workspace
from nav_crm_ops.jobs.defaults import default_jobs, sync_job_name
from nav_crm_ops.sandbox.server import Sandbox
from tests.conftest import CliRunner

UK = "CRONUS UK Ltd."


@pytest.fixture
def two_companies(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Sandbox]:
    """A CRONUS sandbox serving two BC companies beside one Dataverse org."""
    with Sandbox(data_dir=tmp_path / "sandbox", seed="cronus", port=0, companies=2) as sb:
        monkeypatch.setenv(SANDBOX_SECRET_ENV, sb.info.client_secret.reveal())
        yield sb


def _init_both(cli: CliRunner, sandbox: Sandbox, tmp_path: Path,
               state_url: str) -> tuple[Path, Path]:
    intl, uk = tmp_path / "intl", tmp_path / "uk"
    for folder, extra in ((intl, ()), (uk, ("--company", UK))):
        code, out, err = cli("init", "--dir", str(folder), "--sandbox", sandbox.info.base_url,
                             "--state-url", state_url, *extra)
        assert code == 0, err
        assert "created bcbi_company" in out
    return intl, uk


def _sync_both_at_once(folders: tuple[Path, Path]) -> None:
    """``sync --all`` of both workspaces in two threads started together: their mapping
    leases are per company, so neither waits for (or is refused by) the other."""
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def sync(folder: Path) -> None:
        try:
            with open_workspace(folder) as ws:
                start.wait(timeout=30)
                ws.sync_all()
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=sync, args=(folder,)) for folder in folders]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert errors == []


def _accounts(ws: Workspace) -> pl.DataFrame:
    return ws.connections.dataverse.read(
        "accounts", select=["accountid", "accountnumber", "name", "telephone1",
                            "_bcbi_companyid_value"])


def _customers(ws: Workspace) -> pl.DataFrame:
    """The company's customers the CUSTOMER mapping takes part (not blocked)."""
    return ws.connections.business_central.read(
        "customers", select=["id", "number", "displayName", "phoneNumber"],
        filter=ws.mappings.get("CUSTOMER").nav.filter)


def test_two_companies_sync_with_one_org_without_mixing_their_records(
        two_companies: Sandbox, cli: CliRunner, state_url: str, tmp_path: Path,
        crm_person: object) -> None:
    intl_dir, uk_dir = _init_both(cli, two_companies, tmp_path, state_url)
    _sync_both_at_once((intl_dir, uk_dir))
    with open_workspace(intl_dir) as intl, open_workspace(uk_dir) as uk:
        rows = {ws.config.dataverse.company_row_id: ws for ws in (intl, uk)}
        assert len(rows) == 2 and intl.store.company != uk.store.company
        accounts = _accounts(intl)
        for row_id, ws in rows.items():
            customers = _customers(ws)
            failed = set(ws.errors("CUSTOMER")["source_id"].to_list())
            synced = customers.filter(~pl.col("id").is_in(list(failed)))
            own = accounts.filter(pl.col("_bcbi_companyid_value") == row_id)
            # Every synced customer of the company: exactly one account of that company,
            # with the company's own name for the number (the UK names end in "(UK)").
            assert Counter(own["accountnumber"].to_list()) == Counter(
                synced["number"].to_list())
            names = dict(zip(own["accountnumber"], own["name"], strict=True))
            assert all(names[n] == name for n, name in
                       zip(synced["number"], synced["displayName"], strict=True))
            couplings = ws.store.couplings_frame("CUSTOMER")
            assert set(couplings["crm_id"]) == set(own["accountid"])
        both = [set(ws.store.couplings_frame("CUSTOMER")["crm_id"]) for ws in (intl, uk)]
        assert both[0] and both[1] and not both[0] & both[1], "an account coupled twice"
        assert all(name.endswith("(UK)") for name in
                   accounts.filter(pl.col("_bcbi_companyid_value") ==
                                   uk.config.dataverse.company_row_id)["name"])

        # Each workspace's job log and errors are its own company's.
        intl_runs, uk_runs = set(intl.runs()["id"]), set(uk.runs()["id"])
        assert intl_runs and uk_runs and not intl_runs & uk_runs
        spans = [(ws.runs()["started_at"].min(), ws.runs()["finished_at"].max())
                 for ws in (intl, uk)]
        assert spans[0][0] < spans[1][1] and spans[1][0] < spans[0][1], \
            f"the two companies' runs did not overlap: {spans}"
        uk_errors, intl_errors = uk.errors(), intl.errors()
        assert uk_errors.height and intl_errors.height
        assert not set(uk_errors["source_id"]) & set(intl_errors["source_id"])
        assert all("(UK)" in str(label) for label in uk.errors("CUSTOMER")["source_label"])
        assert not any("(UK)" in str(label) for label in intl_errors["source_label"])

        # A person edits company A's account 10000 in CRM: it reaches company A's customer
        # 10000 only, not company B's customer of the same number.
        target = accounts.filter((pl.col("accountnumber") == "10000") & (
            pl.col("_bcbi_companyid_value") == intl.config.dataverse.company_row_id))
        person = crm_person(intl)  # type: ignore[operator]
        person.http.request("PATCH", f"accounts({target['accountid'][0]})",
                            json={"telephone1": "+44 20 7946 0001"},
                            headers={"If-Match": "*"})
        uk_before = _customers(uk).filter(pl.col("number") == "10000")["phoneNumber"][0]
        for ws in (intl, uk):
            ws.sync("CUSTOMER")
        assert _customers(intl).filter(pl.col("number") == "10000")["phoneNumber"][0] \
            == "+44 20 7946 0001"
        assert _customers(uk).filter(pl.col("number") == "10000")["phoneNumber"][0] \
            == uk_before


def test_each_workspace_lists_only_its_own_jobs(
        two_companies: Sandbox, cli: CliRunner, state_url: str, tmp_path: Path) -> None:
    intl_dir, uk_dir = _init_both(cli, two_companies, tmp_path, state_url)
    for folder in (intl_dir, uk_dir):  # the same job names in both: no clash
        code, _, err = cli("jobs", "init", "-w", str(folder))
        assert code == 0, err
    code, _, err = cli("jobs", "set", "CUSTOMER", "--status", "On Hold", "-w", str(intl_dir))
    assert code == 0, err
    listed = {}
    for folder in (intl_dir, uk_dir):
        code, out, err = cli("jobs", "list", "--json", "-w", str(folder))
        assert code == 0, err
        listed[folder] = {job["name"]: job["status"] for job in json.loads(out)}
    assert listed[intl_dir].keys() == listed[uk_dir].keys()
    job = sync_job_name("CUSTOMER")
    assert len(listed[uk_dir]) == len(default_jobs(MappingSet.load())) + 1  # + retention
    assert listed[intl_dir][job] == "On Hold"
    assert listed[uk_dir][job] != "On Hold"


def test_init_refuses_a_company_the_sandbox_does_not_serve(
        two_companies: Sandbox, cli: CliRunner, tmp_path: Path) -> None:
    code, _, err = cli("init", "--dir", str(tmp_path / "ws"), "--sandbox",
                         two_companies.info.base_url, "--company", "CRONUS Narnia Ltd.")
    assert code == 2
    assert "serves no company 'CRONUS Narnia Ltd.'" in err and "'CRONUS UK Ltd.'" in err
    assert "Traceback" not in err and not (tmp_path / "ws").exists()


def test_setup_crm_fills_the_company_row_a_multi_company_workspace_lacks(
        two_companies: Sandbox, cli: CliRunner, tmp_path: Path) -> None:
    """Without the secret at ``init`` time the row id stays empty: the workspace refuses to
    load its mappings (exit 2, saying what to run); ``setup crm`` creates the company's
    bcbi_company row (or finds it, the second time) and writes its id into the config."""
    folder = tmp_path / "uk"
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv(SANDBOX_SECRET_ENV)
        code, out, err = cli("init", "--dir", str(folder), "--sandbox",
                             two_companies.info.base_url, "--company", UK)
    assert code == 0, err
    assert "run `nav-crm-ops setup crm`" in out
    code, out, err = cli("doctor", "-w", str(folder))
    assert code == 2 and "dataverse.company_row_id is empty" in err
    code, out, err = cli("setup", "crm", "-w", str(folder))
    assert code == 0, err
    assert f"created: bcbi_company '{UK}'" in out
    with open_workspace(folder) as ws:
        row = ws.config.dataverse.company_row_id
        found = ws.connections.dataverse.read(
            "bcbi_companies", select=["bcbi_companyid", "bcbi_externalid"])
        assert found.filter(pl.col("bcbi_companyid") == row)["bcbi_externalid"].to_list() \
            == [ws.config.erp_company]
        assert f"_bcbi_companyid_value eq {row}" in ws.mappings.get("CUSTOMER").crm.filter
    code, out, err = cli("setup", "crm", "-w", str(folder))  # idempotent: nothing new
    assert code == 0 and "bcbi_company" not in out


def test_the_sandbox_keeps_each_company_s_records_to_itself(two_companies: Sandbox) -> None:
    """Business Central: a request goes to the company its path names; a $batch mixing two
    companies is refused. Dataverse: ``_bcbi_companyid_value`` filters; a sandbox of one
    company has no such column (400, like Dataverse for an unknown column)."""
    import httpx

    info = two_companies.info
    token = httpx.post(info.token_url, data={
        "grant_type": "client_credentials", "client_id": info.client_id,
        "client_secret": info.client_secret.reveal(), "scope": info.bc_scope}).json()
    headers = {"Authorization": f"Bearer {token['access_token']}"}
    companies = httpx.get(f"{info.bc_api_url}companies", headers=headers).json()["value"]
    assert [c["name"] for c in companies] == ["CRONUS International Ltd.", UK]
    names = {}
    for company in companies:
        reply = httpx.get(f"{info.bc_api_url}companies({company['id']})/customers"
                          "?$filter=number eq '10000'", headers=headers).json()["value"]
        names[company["name"]] = (reply[0]["id"], reply[0]["displayName"])
    assert names[UK][1] == f"{names['CRONUS International Ltd.'][1]} (UK)"
    assert names[UK][0] != names["CRONUS International Ltd."][0]
    batch = {"requests": [
        {"id": str(n), "method": "GET", "url": f"companies({c['id']})/customers"}
        for n, c in enumerate(companies)]}
    reply = httpx.post(f"{info.bc_api_url}$batch", json=batch, headers=headers)
    assert reply.status_code == 400 and "one company per $batch" in reply.text


def test_a_single_company_sandbox_has_no_company_column(fresh_sandbox: Sandbox) -> None:
    import httpx

    info = fresh_sandbox.info
    token = httpx.post(info.token_url, data={
        "grant_type": "client_credentials", "client_id": info.client_id,
        "client_secret": info.client_secret.reveal(),
        "scope": info.dataverse_scope}).json()["access_token"]
    reply = httpx.get(f"{info.dataverse_url}accounts?$filter=_bcbi_companyid_value eq "
                      "00000000-0000-0000-0000-000000000001",
                      headers={"Authorization": f"Bearer {token}"})
    assert reply.status_code == 400
    assert "_bcbi_companyid_value" in reply.text


def test_nav_companies_never_share_the_ids_of_the_crm_records_they_create() -> None:
    """NAV ids are numbers, equal across companies: the deterministic id of a created CRM
    record includes the company, so company B's customer 10000 is never created onto (and,
    after a lost reply, coupled to) company A's account; within one company it stays
    deterministic (a lost create is recognised when sent again)."""
    from nav_crm_ops.engine.sync.classify import insert_frames

    a_row, b_row = "0a0a0a0a-0000-4000-8000-00000000000a", "0b0b0b0b-0000-4000-8000-00000000000b"
    def created_ids(row: str) -> list[str]:
        mapping = MappingSet.load(profile="nav2018", crm_company=row).get("CUSTOMER")
        assert mapping.id_scope == row
        frame = pl.DataFrame({"_id": ["10000", "20000"], "_version": ["1", "1"],
                              "_key": ["10000", "20000"],
                              **{f.name: [None, None] for f in mapping.fields}})
        records = insert_frames(mapping, frame, "crm")[0]
        return records["crm_id"].to_list()

    first_a, first_b = created_ids(a_row), created_ids(b_row)
    assert set(first_a).isdisjoint(first_b)
    assert created_ids(a_row) == first_a  # deterministic per company
    single = MappingSet.load(profile="nav2018").get("CUSTOMER")
    assert single.id_scope == ""  # one company: ids as before the upgrade
