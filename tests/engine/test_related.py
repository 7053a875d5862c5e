"""A coupled account's CRM activity, read for the coupling panel."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from nav_crm_ops import open_workspace
from nav_crm_ops.engine.related import RELATED_TABLES


def test_related_records_are_the_accounts_opportunities_cases_and_quotes(
        workspace_dir: Path) -> None:
    with open_workspace(workspace_dir) as ws:
        dataverse = ws.connections.dataverse
        opportunities = dataverse.read("opportunities", select=["_customerid_value", "name"])
        account = opportunities.filter(pl.col("_customerid_value").is_not_null())[
            "_customerid_value"][0]
        found = ws.related_records(account)
        assert list(found) == [t.title for t in RELATED_TABLES]
        for table in RELATED_TABLES:
            expected = dataverse.read(table.entity_set, select=["_customerid_value"]).filter(
                pl.col("_customerid_value") == account)
            assert found[table.title].height == expected.height
            assert found[table.title].columns == list(table.columns)
        assert set(found["Opportunities"]["name"].to_list()) == set(
            opportunities.filter(pl.col("_customerid_value") == account)["name"].to_list())
        assert all(frame.height <= 1 for frame in ws.related_records(account, top=1).values())
