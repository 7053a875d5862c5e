"""A coupled record deleted on one side: the mapping's deletion_conflict policy decides."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from nav_crm_ops import WriteOp, load_config, open_workspace, write_config
from nav_crm_ops.engine.planner import Planner, Selection


def _policy(workspace: Path, policy: str) -> None:
    (workspace / "deletions.yaml").write_text(
        f"- {{name: CURRENCY, deletion_conflict: {policy}}}\n", encoding="utf-8")
    config = load_config(workspace)
    write_config(config.model_copy(update={"workspace": config.workspace.model_copy(
        update={"mapping_files": ("deletions.yaml",)})}), workspace)


@pytest.mark.parametrize("policy", ["none", "remove_coupling", "restore"])
def test_a_record_deleted_in_crm_follows_the_deletion_policy(workspace_dir: Path,
                                                             policy: str) -> None:
    _policy(workspace_dir, policy)
    with open_workspace(workspace_dir) as ws:
        ws.sync("CURRENCY")
        coupling = ws.store.couplings_frame("CURRENCY").filter(pl.col("nav_key") == "AUD")
        nav_id, crm_id = coupling["nav_id"].item(), coupling["crm_id"].item()
        [gone] = ws.connections.dataverse.write([WriteOp.delete("transactioncurrencies", crm_id)])
        assert gone.ok

        planner = Planner(ws.mappings, ws.store, ws.connections)
        plan = planner.plan(ws.mappings.get("CURRENCY"), Selection(nav_ids=(nav_id,)))
        action = plan.records.filter(pl.col("nav_id") == nav_id)["action"].item()
        report = ws.sync_now("CURRENCY", nav_ids=[nav_id]).result("CURRENCY")
        after = ws.store.get_coupling_by_nav("CURRENCY", nav_id)
        currencies = ws.connections.dataverse.read("transactioncurrencies",
                                                   filter="isocurrencycode eq 'AUD'")
        if policy == "none":
            assert action == "deletion_conflict" and report.count("failed") == 1
            assert after is not None and after.crm_id == crm_id and currencies.height == 0
            assert "no longer exists" in ws.errors("CURRENCY")["message"].item(0)
        elif policy == "remove_coupling":
            assert action == "deletion_conflict" and report.count("uncoupled") == 1
            assert after is None and currencies.height == 0
        else:
            assert action == "insert_crm" and report.count("inserted") == 1
            assert after is not None and after.crm_id != crm_id
            assert currencies["transactioncurrencyid"].to_list() == [after.crm_id]
