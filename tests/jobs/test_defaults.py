"""Default job queue entries."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from nav_crm_ops.engine.mapping import RECOMMENDED_ORDER, MappingSet
from nav_crm_ops.exceptions import ConfigError
from nav_crm_ops.jobs.defaults import (
    SALES_ORDERS_NOTEBOOK,
    STATISTICS_NOTEBOOK,
    SYNC_NOTEBOOK,
    default_jobs,
    sync_job_name,
)
from nav_crm_ops.jobs.runner import notebooks_dir


def test_one_job_per_mapping_in_the_recommended_order() -> None:
    entries = default_jobs(MappingSet.load())
    assert [e.mapping for e in entries][:len(RECOMMENDED_ORDER)] == list(RECOMMENDED_ORDER)
    orders = next(e for e in entries if e.mapping == "SALES ORDERS")
    assert orders.kind == "sales_orders" and orders.notebook == SALES_ORDERS_NOTEBOOK
    assert orders.inactivity_timeout_min == 0
    assert (notebooks_dir() / SALES_ORDERS_NOTEBOOK).is_file()
    assert all(e.kind == "sync" and e.notebook == SYNC_NOTEBOOK for e in entries
               if e is not orders)
    assert entries[0].name == sync_job_name("CURRENCY")
    assert (notebooks_dir() / SYNC_NOTEBOOK).is_file()


def test_flow_jobs_only_when_their_notebooks_exist(tmp_path: Path) -> None:
    (tmp_path / "jobs").mkdir()
    shutil.copy(notebooks_dir() / SYNC_NOTEBOOK, tmp_path / SYNC_NOTEBOOK)
    without = default_jobs(MappingSet.load(), notebooks=tmp_path)
    assert {e.kind for e in without} == {"sync"}
    shutil.copy(notebooks_dir() / SYNC_NOTEBOOK, tmp_path / STATISTICS_NOTEBOOK)
    with_statistics = default_jobs(MappingSet.load(), notebooks=tmp_path)
    statistics = next(e for e in with_statistics if e.mapping == "CUSTOMER STATISTICS")
    assert statistics.kind == "statistics" and statistics.notebook == STATISTICS_NOTEBOOK
    assert statistics.inactivity_timeout_min == 1440
    assert len({e.name for e in with_statistics}) == len(with_statistics)
    with pytest.raises(ConfigError, match="missing"):
        default_jobs(MappingSet.load(), notebooks=tmp_path / "nowhere")
