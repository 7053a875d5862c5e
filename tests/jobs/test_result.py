"""The notebook-to-runner summary file."""

from __future__ import annotations

from pathlib import Path

import pytest

from nav_crm_ops.engine.report import MappingResult, SyncReport
from nav_crm_ops.exceptions import NavCrmOpsError
from nav_crm_ops.jobs.result import JobResult, read_result, write_result


def test_a_sync_report_round_trips(tmp_path: Path) -> None:
    report = SyncReport((
        MappingResult("CUSTOMER", "failed", {"inserted": 3, "failed": 2}, (7, 8), "2 failed", 1.5),
        MappingResult("CONTACT", "finished", {"unchanged": 4}, (9,), "", 0.5),
    ))
    path = tmp_path / "runs" / "x.result.json"
    written = write_result(path, report)
    read = read_result(path)
    assert read == written
    assert read is not None and read.changed and read.failed == 2 and read.run_ids == (7, 8, 9)
    assert read.counts["inserted"] == 3 and read.counts["unchanged"] == 4
    assert [m["mapping"] for m in read.mappings] == ["CUSTOMER", "CONTACT"]


def test_nothing_changed_and_interactive_runs(tmp_path: Path) -> None:
    idle = write_result("", SyncReport((MappingResult("CURRENCY", "finished",
                                                      {"unchanged": 7}),)))
    assert idle.changed is False and not list(tmp_path.iterdir())
    assert read_result(tmp_path / "missing.json") is None


def test_plain_dicts_and_unreadable_files(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    assert write_result(path, {"changed": False, "counts": {"modified": "1"}}) == \
        JobResult(changed=False, counts={"modified": 1})
    path.write_text("[1, 2]")
    with pytest.raises(NavCrmOpsError, match="write_result"):
        read_result(path)
