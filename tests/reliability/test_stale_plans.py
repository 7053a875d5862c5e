"""A plan is as safe later as it is now; another workspace's plan, an edited plan and a second
thread are refused (issue: never duplicate, never mis-couple).

Each scenario runs against the sandbox with generated data (``scale:N``): a first sync of
CUSTOMER creates records both ways, which is where a stale plan used to duplicate them. The
fast versions run in ``make test``; ``make soak`` runs the long ones (more data, several seeds).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest

from nav_crm_ops import Workspace, WriteOp, open_workspace
from nav_crm_ops.cli import EXIT_BAD_INPUT
from nav_crm_ops.config import write_config
from nav_crm_ops.demo import SANDBOX_SECRET_ENV, sandbox_workspace_config
from nav_crm_ops.engine.plan import METADATA_KEY, _digest
from nav_crm_ops.exceptions import LeaseHeldError
from nav_crm_ops.sandbox import Sandbox

CliRunner = Callable[..., tuple[int, str, str]]  # the `cli` fixture of tests/conftest.py


def text_of(cli: CliRunner, *argv: str) -> tuple[int, str]:
    code, out, err = cli(*argv)
    return code, out + err


FAST_SEED = "scale:300"
DEPENDENCIES = ["CURRENCY", "SALESPEOPLE"]


@pytest.fixture(scope="module")
def scale_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    with Sandbox(data_dir=tmp_path_factory.mktemp("scale"), seed=FAST_SEED, port=0) as sb:
        yield sb


def _workspace_dir(sandbox: Sandbox, root: Path, monkeypatch: pytest.MonkeyPatch,
                   seed: str = FAST_SEED) -> Path:
    sandbox.set_faults(None)
    sandbox.set_limits(False)
    sandbox.reset(seed)
    monkeypatch.setenv(SANDBOX_SECRET_ENV, sandbox.info.client_secret.reveal())
    write_config(sandbox_workspace_config(sandbox.info, root), root)
    return root


def _customers(ws: Workspace) -> pl.DataFrame:
    return ws.connections.business_central.read(
        "customers", select=["id", "number", "displayName", "blocked"])


def _accounts(ws: Workspace) -> pl.DataFrame:
    return ws.connections.dataverse.read(
        "accounts", select=["accountid", "accountnumber", "name"],
        filter="statecode eq 0 and customertypecode eq 3")


def _assert_no_duplicate_and_no_wrong_pair(ws: Workspace) -> None:
    """Every coupling is one to one, between records in CUSTOMER's filter on both sides whose
    natural keys agree, and no name appears twice on either side."""
    customers, accounts = _customers(ws), _accounts(ws)
    # A CRM customer named like a *blocked* BC customer gets its own, new BC customer (the
    # blocked one is outside the mapping): the same name twice is right there.
    in_filter = customers.filter(pl.col("blocked") == " ")
    for frame, column in ((in_filter, "displayName"), (accounts, "name")):
        twice = frame.filter(pl.col(column).is_duplicated())[column].unique().to_list()
        assert not twice, f"duplicated {column}: {twice[:5]}"
    pairs = ws.store.couplings_frame("CUSTOMER", columns=["nav_id", "crm_id"])
    assert pairs["nav_id"].is_unique().all() and pairs["crm_id"].is_unique().all()
    joined = (pairs.join(customers.with_columns(pl.col("id").str.to_lowercase().alias("nav_id")),
                         on="nav_id", how="left")
              .join(accounts.with_columns(pl.col("accountid").str.to_lowercase()
                                          .alias("crm_id")), on="crm_id", how="left"))
    outside = joined.filter(pl.col("blocked").ne_missing(" "))
    assert outside.height == 0, f"coupled outside the filter: {outside.head(3).to_dicts()}"
    other_key = joined.filter(pl.col("accountnumber").is_not_null()
                              & (pl.col("accountnumber") != pl.col("number")))
    assert other_key.height == 0, f"coupled to another number: {other_key.head(3).to_dicts()}"


def _inserts(plan_records: pl.DataFrame) -> dict[str, int]:
    counts = plan_records.group_by(pl.col("action").cast(pl.Utf8)).len()
    found = dict(counts.iter_rows())
    return {a: int(found.get(a, 0)) for a in ("insert_crm", "insert_nav")}


def _first_sync_plan_applied_after_the_sync(root: Path) -> None:
    with open_workspace(root) as ws:
        ws.sync_all(DEPENDENCIES)
        plan = ws.preview("CUSTOMER")
        planned = _inserts(plan.records)
        assert planned["insert_crm"] > 0 and planned["insert_nav"] > 0, planned
        path = ws.save_plan(plan, root / "first-sync.parquet")
        ws.sync("CUSTOMER")
        before = (_customers(ws).height, _accounts(ws).height)

        report = ws.apply(ws.load_plan(path))

        assert (_customers(ws).height, _accounts(ws).height) == before
        result = report.result("CUSTOMER")
        assert result.count("inserted") == 0 and result.count("modified") == 0
        refused = ws.errors("CUSTOMER").filter(
            pl.col("message").str.contains("changed after the preview"))
        coupled_since = set(ws.store.couplings_frame("CUSTOMER")["nav_id"].to_list())
        new_pairs = plan.records.filter(  # creates, and matches the plan would have coupled
            pl.col("nav_coupled_to").is_null() & pl.col("crm_coupled_to").is_null()
            & (pl.col("nav_id").is_in(list(coupled_since)) | pl.col("crm_id").is_not_null()))
        assert refused.height == new_pairs.height >= sum(planned.values())
        assert refused["transient"].all()
        _assert_no_duplicate_and_no_wrong_pair(ws)
        again = ws.preview("CUSTOMER")
        assert _inserts(again.records) == {"insert_crm": 0, "insert_nav": 0}


def test_a_saved_first_sync_plan_applied_after_the_sync_creates_nothing_twice(
        scale_sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _first_sync_plan_applied_after_the_sync(
        _workspace_dir(scale_sandbox, tmp_path / "ws", monkeypatch))


def test_records_coupled_edited_or_deleted_after_the_preview_are_refused(
        scale_sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = _workspace_dir(scale_sandbox, tmp_path / "ws", monkeypatch)
    with open_workspace(root) as ws:
        ws.sync_all(DEPENDENCIES)
        plan = ws.preview("CUSTOMER")
        records = plan.records
        to_crm = records.filter(pl.col("action").cast(pl.Utf8) == "insert_crm")
        to_nav = records.filter(pl.col("action").cast(pl.Utf8) == "insert_nav")
        coupled_nav, coupled_crm = to_crm["nav_id"][0], to_nav["crm_id"][0]
        edited_nav, deleted_crm = to_crm["nav_id"][1], to_nav["crm_id"][1]
        path = ws.save_plan(plan, root / "plan.parquet")
        ws.couple("CUSTOMER", coupled_nav, coupled_crm)  # a person couples two of them
        bc = ws.connections.business_central
        etag = bc.read_by_ids("customers", "id", [edited_nav], select=["id"], etag=True)
        assert bc.write([WriteOp.update("customers", edited_nav, {"phoneNumber": "+44 1 2345"},
                                        if_match=etag["@odata.etag"][0])])[0].ok
        assert ws.connections.dataverse.write(
            [WriteOp.delete("accounts", deleted_crm)])[0].ok
        before = (_customers(ws).height, _accounts(ws).height)

        report = ws.apply(ws.load_plan(path))

        result = report.result("CUSTOMER")
        assert result.count("inserted") == to_crm.height + to_nav.height - 4
        assert (_customers(ws).height, _accounts(ws).height) == (
            before[0] + to_nav.height - 2, before[1] + to_crm.height - 2)
        messages = dict(ws.errors("CUSTOMER").select("source_id", "message").iter_rows())
        assert "was coupled to CRM record" in messages[coupled_nav]
        assert "was coupled to BC record" in messages[coupled_crm]
        assert "was edited" in messages[edited_nav]
        assert "was deleted" in messages[deleted_crm]
        ws.sync("CUSTOMER")
        created = ws.store.get_coupling_by_nav("CUSTOMER", edited_nav)
        assert created is not None
        account = ws.connections.dataverse.read_by_ids(
            "accounts", "accountid", [created.crm_id], select=["telephone1"])
        assert account["telephone1"].to_list() == ["+44 1 2345"]
        assert ws.store.get_coupling_by_crm("CUSTOMER", deleted_crm) is None
        _assert_no_duplicate_and_no_wrong_pair(ws)



def test_a_plan_of_another_workspace_alike_in_name_company_and_crm_is_refused(
        scale_sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        cli: CliRunner) -> None:
    first = _workspace_dir(scale_sandbox, tmp_path / "first", monkeypatch)
    second = tmp_path / "second"
    write_config(sandbox_workspace_config(scale_sandbox.info, second), second)
    for root in (first, second):
        code, text = text_of(cli, "sync", *DEPENDENCIES, "--no-progress", "-w", str(root))
        assert code == 0, text
    plan = tmp_path / "plan.parquet"
    code, text = text_of(cli, "preview", "CUSTOMER", "--out", str(plan), "-w", str(first))
    assert code == 0, text
    with open_workspace(first) as ws:
        before = (_customers(ws).height, _accounts(ws).height)

    code, text = text_of(cli, "sync", "--plan", str(plan), "--no-progress", "-w", str(second))

    assert code == EXIT_BAD_INPUT, text
    assert "another state database" in text and "Traceback" not in text
    with open_workspace(second) as ws:
        assert ws.store.couplings_frame("CUSTOMER").height == 0
        assert (_customers(ws).height, _accounts(ws).height) == before
    code, text = text_of(cli, "sync", "--plan", str(plan), "--no-progress", "-w", str(first))
    assert code == 0, text


def _tamper(path: Path, new_name: str) -> None:
    """Edit a value and recompute the file's unkeyed digest, as anyone editing it can."""
    table = pq.read_table(path)
    stored = json.loads(table.schema.metadata[METADATA_KEY])
    frame = pl.DataFrame(pl.from_arrow(table.replace_schema_metadata(None)))
    name_row = (pl.col("field") == "name") & pl.col("new_value").is_not_null()
    target = frame.filter(name_row)["record_id"][0]
    frame = frame.with_columns(pl.when(name_row & (pl.col("record_id") == target))
                               .then(pl.lit(new_name)).otherwise(pl.col("new_value"))
                               .alias("new_value"))
    signature = stored.pop("signature")
    stored.pop("content_sha256")
    stored["content_sha256"] = _digest(stored, frame)
    stored["signature"] = signature
    out = frame.to_arrow().replace_schema_metadata({METADATA_KEY: json.dumps(stored).encode()})
    pq.write_table(out, path)


def test_an_edited_and_re_digested_plan_is_refused(
        scale_sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        cli: CliRunner) -> None:
    root = _workspace_dir(scale_sandbox, tmp_path / "ws", monkeypatch)
    code, text = text_of(cli, "sync", *DEPENDENCIES, "--no-progress", "-w", str(root))
    assert code == 0, text
    plan = tmp_path / "plan.parquet"
    code, text = text_of(cli, "preview", "CUSTOMER", "--out", str(plan), "-w", str(root))
    assert code == 0, text
    _tamper(plan, "TAMPERED NAME")

    code, text = text_of(cli, "sync", "--plan", str(plan), "--no-progress", "-w", str(root))

    assert code == EXIT_BAD_INPUT, text
    assert "not signed by this workspace" in text and "Traceback" not in text
    with open_workspace(root) as ws:
        assert ws.store.couplings_frame("CUSTOMER").height == 0
        assert "TAMPERED NAME" not in _accounts(ws)["name"].to_list()
        unsigned = tmp_path / "unsigned.parquet"
        ws.preview("CUSTOMER").save(unsigned)
    code, text = text_of(cli, "sync", "--plan", str(unsigned), "--no-progress", "-w", str(root))
    assert code == EXIT_BAD_INPUT and "not signed by this workspace" in text, text


def _two_threads_sync(root: Path, sandbox: Sandbox) -> list[BaseException | None]:
    with open_workspace(root) as ws:
        ws.sync_all(DEPENDENCIES)
    sandbox.set_faults("rate=1.0,kinds=slow,seed=3,slow=0.05-0.1")
    start = threading.Barrier(2)
    outcomes: list[BaseException | None] = [None, None]

    def sync(index: int) -> None:
        with open_workspace(root) as ws:
            start.wait()
            try:
                ws.sync("CUSTOMER")
            except BaseException as error:
                outcomes[index] = error

    threads = [threading.Thread(target=sync, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    sandbox.set_faults(None)
    return outcomes


def test_two_threads_of_one_process_never_hold_a_mapping_at_once(
        scale_sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = _workspace_dir(scale_sandbox, tmp_path / "ws", monkeypatch)
    outcomes = _two_threads_sync(root, scale_sandbox)
    refused = [o for o in outcomes if isinstance(o, LeaseHeldError)]
    assert len(refused) == 1 and outcomes.count(None) == 1, outcomes
    assert "is being synchronized by" in str(refused[0])
    with open_workspace(root) as ws:
        _assert_no_duplicate_and_no_wrong_pair(ws)
        ws.sync("CUSTOMER")
        _assert_no_duplicate_and_no_wrong_pair(ws)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_soak_stale_plans_and_threads_at_scale(
        scale_sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        seed: int) -> None:
    spec = f"scale:3000,seed={seed}"
    _first_sync_plan_applied_after_the_sync(
        _workspace_dir(scale_sandbox, tmp_path / "plan", monkeypatch, spec))
    root = _workspace_dir(scale_sandbox, tmp_path / "threads", monkeypatch, spec)
    outcomes = _two_threads_sync(root, scale_sandbox)
    assert sum(isinstance(o, LeaseHeldError) for o in outcomes) == 1, outcomes
    with open_workspace(root) as ws:
        _assert_no_duplicate_and_no_wrong_pair(ws)
