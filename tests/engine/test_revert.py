"""Undo a run on the sandbox (issue #20, item 1): a bad run — a transformation that uppercases
every CRM account name, applied — is reverted end to end, a record edited in between held as
a conflict; reverting twice changes nothing; records a run created are deactivated (CRM) or
blocked (BC) and uncoupled; a revert whose replies were lost after Business Central committed
is safe to run again. All over real loopback HTTP against the sandbox.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from nav_crm_ops import WriteOp, load_config, open_workspace, write_config
from nav_crm_ops.connectors import Dataverse, RetryPolicy
from nav_crm_ops.engine.revert import FieldState, apply_revert, revert, revert_plan
from nav_crm_ops.engine.workspace import Workspace
from nav_crm_ops.exceptions import PlanError
from nav_crm_ops.sandbox import Sandbox
from nav_crm_ops.store.history import HistoryRepository
from tests.conftest import CliRunner

MAPPINGS = ["CURRENCY", "SALESPEOPLE", "CUSTOMER"]
UPPERCASE = """\
- name: CUSTOMER
  fields:
    - {name: name, direction: to_crm, transformations: [upper], compare: {case_sensitive: true}}
"""
"""The bad mapping change: CRM account names written in upper case."""


def _use_mappings(workspace_dir: Path, text: str | None) -> None:
    """Point the workspace at a mapping override (None: the default mappings again)."""
    files: tuple[str, ...] = ()
    if text is not None:
        (workspace_dir / "mappings.yaml").write_text(text, encoding="utf-8")
        files = ("mappings.yaml",)
    config = load_config(workspace_dir)
    write_config(config.model_copy(update={"workspace": config.workspace.model_copy(
        update={"mapping_files": files})}), workspace_dir)


def _names(ws: Workspace, crm_ids: list[str]) -> dict[str, str]:
    frame = ws.connections.dataverse.read("accounts", select=["accountid", "name"])
    return {str(i).lower(): n for i, n in frame.select("accountid", "name").iter_rows()
            if str(i).lower() in crm_ids}


def _bad_run(workspace_dir: Path) -> tuple[int, list[str], dict[str, str]]:
    """Sync with the default mappings, then apply the uppercasing one: (the bad run's id,
    the CRM ids it wrote, their names before it)."""
    with open_workspace(workspace_dir) as ws:
        ws.sync_all(MAPPINGS)
        crm_ids = ws.store.couplings_frame("CUSTOMER", columns=["crm_id"])["crm_id"].to_list()
        before = _names(ws, crm_ids)
    _use_mappings(workspace_dir, UPPERCASE)
    with open_workspace(workspace_dir) as ws:
        report = ws.sync("CUSTOMER")
        run_id = report.result("CUSTOMER").run_ids[0]
        after = _names(ws, crm_ids)
    changed = [i for i in crm_ids if after[i] != before[i]]
    assert changed and all(after[i] == before[i].upper() for i in changed)
    return run_id, changed, before


def test_a_bad_run_is_reverted_end_to_end_with_an_edit_held(
        workspace_dir: Path, cli: CliRunner,
        crm_person: Callable[[Workspace], Dataverse]) -> None:
    run_id, changed, before = _bad_run(workspace_dir)
    edited = changed[0]
    with open_workspace(workspace_dir) as ws:
        [out] = crm_person(ws).write([WriteOp.update("accounts", edited,
                                                     {"name": "Edited Since Ltd"})])
        assert out.ok
        rows = HistoryRepository.of(ws.store).of_run(run_id)
        names = rows.filter(pl.col("field") == "name")
        assert names.height == len(changed) and not rows["created"].any()
        assert set(names["old_value"]) == {before[i] for i in changed}
        assert names["version"].null_count() == 0

    code, out, err = cli("revert", str(run_id), "-w", str(workspace_dir))
    assert code == 0, out + err
    assert f"{len(changed) - 1} field(s) to revert" in out and "1 held as conflicts" in out
    assert "Edited Since Ltd" in out  # the held field says what it is now
    with open_workspace(workspace_dir) as ws:
        assert _names(ws, changed)[changed[1]] == before[changed[1]].upper()  # preview only
        planned = revert_plan(ws, run_id)
        assert planned.fields[FieldState.CONFLICT] == 1
        conflict = planned.plan.records.filter(pl.col("action") == "conflict")
        assert conflict["crm_id"].to_list() == [edited]

    code, out, err = cli("revert", str(run_id), "--apply", "-w", str(workspace_dir))
    assert code == 1, out + err  # the held conflict needs a person
    with open_workspace(workspace_dir) as ws:
        now = _names(ws, changed)
        assert now[edited] == "Edited Since Ltd"  # never overwritten
        assert all(now[i] == before[i] for i in changed[1:])
        kinds = ws.runs("CUSTOMER").filter(pl.col("job_name") == f"revert run {run_id}")
        assert set(kinds["kind"]) == {"revert"}

    code, out, err = cli("revert", str(run_id), "--apply", "-w", str(workspace_dir))
    assert "0 field(s) to revert" in out and f"{len(changed) - 1} already reverted" in out
    with open_workspace(workspace_dir) as ws:
        assert _names(ws, changed) == now  # reverting twice changes nothing

    _use_mappings(workspace_dir, None)  # the mapping fixed: the next sync copies nothing back
    with open_workspace(workspace_dir) as ws:
        plan = ws.preview("CUSTOMER")
        names_written = plan.field_changes.filter((pl.col("field") == "name")
                                                  & (pl.col("target").cast(pl.Utf8) != "none"))
        # only the person's edit travels (to BC, as any CRM edit does); no reverted name
        assert names_written.select("crm_value", "target").rows() == [
            ("Edited Since Ltd", "nav")], names_written


def test_created_records_are_deactivated_in_crm_and_blocked_in_bc(
        workspace_dir: Path, crm_person: Callable[[Workspace], Dataverse]) -> None:
    _use_mappings(workspace_dir, "- {name: CUSTOMER, only_coupled: false, "
                                 "create_when_no_match: true}\n")
    with open_workspace(workspace_dir) as ws:
        ws.sync_all(MAPPINGS)
        [made] = ws.connections.business_central.write([WriteOp.create(
            "customers", {"displayName": "Revert Me Ltd", "type": "Company"})])
        assert made.ok
        [made_crm] = crm_person(ws).write([WriteOp.create(
            "accounts", {"name": "Undo Me Ltd", "customertypecode": 3})])
        assert made_crm.ok
        ws.sync("CUSTOMER")
        runs = ws.runs("CUSTOMER").filter(pl.col("inserted") > 0).sort("id")
        to_crm, from_crm = (runs.filter(pl.col("direction") == d)["id"][-1]
                            for d in ("to_crm", "from_crm"))
        crm_created = revert_plan(ws, to_crm).created
        assert [c.nav_id for c in crm_created] == [made.id.lower()]
        nav_created = revert_plan(ws, from_crm).created
        assert [c.crm_id for c in nav_created] == [made_crm.id.lower()]

        done = revert(ws, to_crm)
        assert done.created_reverted == 1
        crm_id = crm_created[0].crm_id
        state = ws.connections.dataverse.read("accounts", select=["statecode", "statuscode"],
                                              filter=f"accountid eq {crm_id}")
        assert state.row(0) == (1, 2)
        assert ws.store.get_coupling_by_nav("CUSTOMER", made.id.lower()) is None

        assert revert(ws, from_crm).created_reverted == 1
        nav_id = nav_created[0].nav_id
        blocked = ws.connections.business_central.read("customers", select=["blocked"],
                                                       filter=f"id eq {nav_id}")
        assert blocked["blocked"][0] == "All"
        again = revert_plan(ws, from_crm)
        assert not again.has_work and "nothing to revert" in again.summary()


def test_a_revert_whose_replies_were_lost_is_safe_to_run_again(
        workspace_dir: Path, fresh_sandbox: Sandbox,
        crm_person: Callable[[Workspace], Dataverse]) -> None:
    with open_workspace(workspace_dir) as ws:
        ws.sync_all(MAPPINGS)
        pairs = ws.store.couplings_frame("CUSTOMER", columns=["nav_id", "crm_id"]).head(1)
        person = crm_person(ws)
        for crm_id in pairs["crm_id"]:
            [out] = person.write([WriteOp.update("accounts", crm_id, {"address1_city": "Lostham"})])
            assert out.ok
        report = ws.sync("CUSTOMER")
        from_crm = report.result("CUSTOMER").run_ids[1]
        cities = _cities(ws, pairs["nav_id"].to_list())
        assert set(cities.values()) == {"Lostham"}
        history = HistoryRepository.of(ws.store).of_run(from_crm)
        old = dict(history.filter(pl.col("field") == "address1_city")
                   .select("nav_id", "old_value").iter_rows())
        assert len(old) == 1

        planned = revert_plan(ws, from_crm)
        ws.connections.business_central.http.retry = RetryPolicy(
            max_retries=1, base_delay_s=0.01, max_delay_s=0.05)  # the test need not wait
        fresh_sandbox.set_faults("rate=1,kinds=commit504,seed=3")
        try:
            first = apply_revert(ws, planned)
        finally:
            fresh_sandbox.set_faults(None)
        assert _cities(ws, list(old)) == old  # committed, though the answers were lost
        assert first.report.result("CUSTOMER").count("failed") >= 1

        again = revert_plan(ws, from_crm)
        assert again.fields[FieldState.REVERT] == 0
        assert again.fields[FieldState.ALREADY] == len(old)
        revert(ws, from_crm)
        assert _cities(ws, list(old)) == old
        # the base is the old value again: the revert is not copied back to CRM (the
        # person's CRM edit, still there, travels to BC again as any CRM edit does)
        follow = ws.preview("CUSTOMER").field_changes.filter(
            pl.col("field") == "address1_city")
        assert follow.select("target", "new_value").rows() == [("nav", "Lostham")]


def _cities(ws: Workspace, nav_ids: list[str]) -> dict[str, Any]:
    frame = ws.connections.business_central.read("customers", select=["id", "city"])
    return {str(i).lower(): c for i, c in frame.iter_rows() if str(i).lower() in nav_ids}


def test_bad_input_exits_2_with_what_to_do(workspace_dir: Path, cli: CliRunner) -> None:
    code, _, err = cli("revert", "999", "-w", str(workspace_dir))
    assert code == 2 and "no run 999" in err and "nav-crm-ops runs" in err
    assert "Traceback" not in err
    with open_workspace(workspace_dir) as ws:
        ws.sync_all(["CURRENCY"])
        empty = ws.sync("CURRENCY").result("CURRENCY").run_ids[0]  # nothing left to write
        uncouple = ws.store.start_run("CURRENCY", "to_crm", "uncouple")
        ws.store.finish_run(uncouple, "finished")
    code, _, err = cli("revert", str(uncouple), "-w", str(workspace_dir))
    assert code == 2 and "uncouple run" in err
    code, _, err = cli("revert", str(empty), "-w", str(workspace_dir))
    assert code == 2 and "nothing to revert" in err
    code, _, err = cli("revert", "1", "--apply", "--out", str(workspace_dir / "x.parquet"),
                       "-w", str(workspace_dir))
    assert code == 2 and "not both" in err


def test_a_saved_revert_plan_is_applied_with_sync_plan(workspace_dir: Path, cli: CliRunner
                                                        ) -> None:
    run_id, changed, before = _bad_run(workspace_dir)
    plan = workspace_dir / "revert.parquet"
    code, out, err = cli("revert", str(run_id), "--out", str(plan), "--json",
                         "-w", str(workspace_dir))
    assert code == 0, out + err
    data = json.loads(out)
    assert data["fields"]["revert"] == len(changed) and data["plan_file"] == str(plan)
    code, out, err = cli("sync", "--plan", str(plan), "--no-progress", "-w", str(workspace_dir))
    assert code in (0, 1), out + err  # 1: CRONUS's dirty customers stay skipped, as before
    assert "Traceback" not in err
    with open_workspace(workspace_dir) as ws:
        assert _names(ws, changed) == {i: before[i] for i in changed}


@pytest.mark.parametrize("how", ["deactivate", "delete", "nonsense"])
def test_on_revert_created_is_a_mapping_option(how: str, tmp_path: Path) -> None:
    from nav_crm_ops.engine.mapping import MappingSet
    from nav_crm_ops.exceptions import MappingError

    override = tmp_path / "m.yaml"
    override.write_text(f"- {{name: CUSTOMER, on_revert_created: {how}}}\n", encoding="utf-8")
    if how == "nonsense":
        with pytest.raises(MappingError, match="on_revert_created"):
            MappingSet.load([override])
        return
    assert MappingSet.load([override]).get("CUSTOMER").on_revert_created == how
    assert MappingSet.load([]).get("CUSTOMER").on_revert_created == "deactivate"


def test_plan_error_names_the_run(workspace_dir: Path) -> None:
    with open_workspace(workspace_dir) as ws, pytest.raises(PlanError, match="no run 12345"):
        revert_plan(ws, 12345)
