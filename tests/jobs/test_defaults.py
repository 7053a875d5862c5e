"""Default job queue entries."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from nav_crm_ops.engine.mapping import RECOMMENDED_ORDER, MappingSet
from nav_crm_ops.exceptions import ConfigError
from nav_crm_ops.jobs.defaults import (
    STATISTICS_NOTEBOOK,
    SYNC_NOTEBOOK,
    default_jobs,
    sync_job_name,
)
from nav_crm_ops.jobs.runner import notebooks_dir


def test_one_sync_job_per_mapping_in_the_recommended_order() -> None:
    entries = default_jobs(MappingSet.load())
    assert [e.mapping for e in entries][:len(RECOMMENDED_ORDER)] == list(RECOMMENDED_ORDER)
    assert all(e.kind == "sync" and e.notebook == SYNC_NOTEBOOK for e in entries)
    assert entries[0].name == sync_job_name("CURRENCY")
    assert (notebooks_dir() / SYNC_NOTEBOOK).is_file()


def test_flow_jobs_only_when_their_notebooks_exist(tmp_path: Path) -> None:
    (tmp_path / "jobs").mkdir()
    shutil.copy(notebooks_dir() / SYNC_NOTEBOOK, tmp_path / SYNC_NOTEBOOK)
    without = default_jobs(MappingSet.load(), notebooks=tmp_path)
    assert {e.kind for e in without} == {"sync"}
    shutil.copy(notebooks_dir() / SYNC_NOTEBOOK, tmp_path / STATISTICS_NOTEBOOK)
    with_statistics = default_jobs(MappingSet.load(), notebooks=tmp_path)
    assert with_statistics[-1].kind == "statistics"
    assert with_statistics[-1].inactivity_timeout_min == 1440
    with pytest.raises(ConfigError, match="missing"):
        default_jobs(MappingSet.load(), notebooks=tmp_path / "nowhere")
