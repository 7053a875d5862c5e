"""LogsPanel over a real state store: job log, error groups, drill-down, unskip, export, retry.

The offline tests use a real Workspace whose state store is filled through the store's public
API (runs, record errors, record outcomes); they touch no service. The end-to-end test makes a
record fail for real in the sandbox and retries it through the panel.
"""

from __future__ import annotations

import html
import json
import os
import re
from pathlib import Path

import polars as pl
import pytest

from nav_crm_ops.demo import SANDBOX_SECRET_ENV
from nav_crm_ops.engine.workspace import Workspace
from nav_crm_ops.exceptions import ConfigError
from nav_crm_ops.store import RecordFailure
from nav_crm_ops.widgets import LogsPanel

TOO_LONG = "Field 'telephone1' is too long: {n} characters, at most 30 (record {key})"
GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-")
LOOKUP = "The lookup to salesperson PS is not coupled"


def fill_store(workspace: Workspace) -> dict[str, int]:
    """Two CUSTOMER runs with failures of two kinds; record n3 is skipped."""
    store = workspace.store
    first = store.start_run("CUSTOMER", "to_crm", job_name="nightly")
    store.add_record_error("CUSTOMER", "to_crm", TOO_LONG.format(n=35, key=10000), run_id=first,
                           source_id="n1", http_status=400, service_code="0x80044331",
                           payload={"telephone1": "x" * 35}, response={"error": {
                               "code": "0x80044331", "message": "too long"}},
                           source_values={"phoneNumber": "x" * 35, "number": "10000"})
    store.add_record_error("CUSTOMER", "to_crm", LOOKUP, run_id=first, source_id="n3")
    store.record_outcomes("CUSTOMER", "to_crm", failed=[
        RecordFailure("n1", TOO_LONG.format(n=35, key=10000)), RecordFailure("n3", LOOKUP)],
        run_id=first)
    store.finish_run(first, "failed", {"modified": 4, "failed": 2, "requests": 9})
    second = store.start_run("CUSTOMER", "to_crm", job_name="nightly")
    store.add_record_error("CUSTOMER", "to_crm", TOO_LONG.format(n=41, key=20000), run_id=second,
                           source_id="n2", http_status=400)
    store.add_record_error("CUSTOMER", "to_crm", LOOKUP, run_id=second, source_id="n3")
    store.record_outcomes("CUSTOMER", "to_crm", failed=[
        RecordFailure("n2", TOO_LONG.format(n=41, key=20000)), RecordFailure("n3", LOOKUP)],
        run_id=second)
    store.finish_run(second, "failed", {"inserted": 1, "failed": 2, "requests": 5})
    return {"first": first, "second": second}


def test_job_log_and_groups(offline_workspace: Workspace) -> None:
    runs = fill_store(offline_workspace)
    panel = LogsPanel(offline_workspace)
    assert panel.runs_table.view.get_column("id").to_list() == [runs["second"], runs["first"]]
    assert "changes and failures per run" in panel.runs_chart.value
    durations = panel.runs_table.view.get_column("duration_s").to_list()
    assert all(d is not None and 0 <= d < 60 for d in durations)
    # runs are named by time on a time axis, not by id
    assert "2 runs, oldest left, newest right: CUSTOMER to_crm at " in panel.runs_chart.value
    assert f"#{runs['first']}" not in panel.runs_chart.value
    groups = panel.groups_table.view
    assert sorted(groups.select("normalized_message", "count").rows()) == [
        ("Field '<value>' is too long: <n> characters, at most <n> (record <n>)", 2),
        (LOOKUP, 2)]
    states = dict(panel.failed_table.view.select("source_id", "state").rows())
    assert states == {"n1": "failed", "n2": "failed", "n3": "skipped"}


def test_drill_down_from_group_to_record(offline_workspace: Workspace) -> None:
    runs = fill_store(offline_workspace)
    panel = LogsPanel(offline_workspace)
    group = "Field '<value>' is too long: <n> characters, at most <n> (record <n>)"
    panel.select_group("CUSTOMER", group)
    assert sorted(panel.records_table.view.get_column("source_id").to_list()) == ["n1", "n2"]
    panel.select_sources(["n1"])
    detail = panel.detail.value
    assert "Source values" in detail and "Payload sent" in detail and "Service response" in detail
    assert html.escape(json.dumps("x" * 35)) in detail
    assert "0x80044331" in detail and "HTTP 400" in detail
    assert f"<td>{runs['first']}</td>" in detail and "nightly" in detail


def test_record_history_lists_every_run(offline_workspace: Workspace) -> None:
    runs = fill_store(offline_workspace)
    panel = LogsPanel(offline_workspace)
    panel.failed_table.select(["CUSTOMER|to_crm|n3"])
    detail = panel.detail.value
    assert f"<td>{runs['first']}</td>" in detail and f"<td>{runs['second']}</td>" in detail
    assert "(none recorded)" in detail


def test_unskip_selected_puts_record_back(offline_workspace: Workspace) -> None:
    fill_store(offline_workspace)
    panel = LogsPanel(offline_workspace)
    panel.failed_table.choices["state"].value = "skipped"
    panel.failed_table.select(["CUSTOMER|to_crm|n3"])
    panel.unskip_button.click()
    status = offline_workspace.store.record_status("CUSTOMER", "n3", "to_crm")
    assert status is not None and status.state == "failed"
    assert "1 record(s) back in the retry pass" in panel.errors.message
    assert "skipped" not in panel.failed_table.frame.get_column("state").to_list()


def test_export_writes_the_filtered_view(offline_workspace: Workspace, tmp_path: Path) -> None:
    fill_store(offline_workspace)
    panel = LogsPanel(offline_workspace, export_dir=tmp_path)
    panel.failed_table.choices["state"].value = "failed"
    panel.export_choice.value = "failed records"
    panel.export_path.value = "failed"
    panel.export_button.click()
    exported = pl.read_csv(tmp_path / "failed.csv")
    assert sorted(exported.get_column("source_id").to_list()) == ["n1", "n2"]
    assert "Exported 2 row(s)" in panel.errors.message


def test_failing_retry_is_shown_and_raised(offline_workspace: Workspace,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    fill_store(offline_workspace)
    monkeypatch.delenv(SANDBOX_SECRET_ENV)
    assert SANDBOX_SECRET_ENV not in os.environ
    panel = LogsPanel(offline_workspace)
    panel.failed_table.select(["CUSTOMER|to_crm|n1"])
    panel.retry_button.click()
    with pytest.raises(ConfigError):
        panel.progress.wait()
    assert panel.errors.kind == "error"
    assert panel.errors.message.startswith("Could not retry 1 record(s): ")
    assert SANDBOX_SECRET_ENV in panel.errors.message


def test_retry_a_failed_group_end_to_end(sandbox_workspace: Workspace) -> None:
    ws = sandbox_workspace
    ws.sync_all(["CUSTOMER"])
    ws.sync_all(["SALESPEOPLE"])
    panel = LogsPanel(ws)
    groups = panel.groups_table.view.filter(
        pl.col("normalized_message").str.contains("salespersonCode"))
    assert groups.height > 0
    group = groups.sort("count", descending=True).row(0, named=True)
    panel.select_group(group["mapping"], group["normalized_message"])
    sources = panel.records_table.page_rows.get_column("source_id").unique(
        maintain_order=True).to_list()[:2]
    panel.select_sources(sources)
    assert set(panel.selected_records()["CUSTOMER"]) == set(sources)
    failed_before = set(ws.failed_records("CUSTOMER").get_column("source_id").to_list())
    assert set(sources) <= failed_before
    panel.retry_button.click()
    result = panel.progress.wait()
    assert result is panel.retry_result and result is not None
    report = result.report
    assert report is panel.report and report.failed == 0
    assert dict(result.outcomes.select("source_id", "outcome").rows()) == dict.fromkeys(
        sources, "done")
    assert f"{len(sources)} done" in panel.result.value
    failed_after = set(ws.failed_records("CUSTOMER").get_column("source_id").to_list())
    assert not set(sources) & failed_after
    assert failed_after <= failed_before
    for source in sources:
        assert ws.store.get_coupling_by_nav("CUSTOMER", source) is not None
    assert "Retry result" in panel.result.value
    assert set(sources).isdisjoint(panel.failed_table.frame.get_column("source_id").to_list())


def test_retry_without_a_selection_explains_what_to_do(offline_workspace: Workspace) -> None:
    fill_store(offline_workspace)
    panel = LogsPanel(offline_workspace)
    panel.retry_button.click()
    assert panel.errors.message.startswith("Select failed records first")
    assert not panel.progress.running and panel.report is None


def test_runs_that_deviate_are_flagged(offline_workspace: Workspace) -> None:
    runs = fill_store(offline_workspace)
    store = offline_workspace.store
    ids = []
    for modified in (1, 2, 1, 200):
        run = store.start_run("CURRENCY", "to_crm")
        store.finish_run(run, "finished", {"modified": modified})
        ids.append(run)
    panel = LogsPanel(offline_workspace)
    flags = dict(panel.runs_table.frame.select("id", "flags").rows())
    assert flags[ids[-1]] == "unusual volume"
    assert [flags[i] for i in ids[:-1]] == ["", "", ""]
    assert flags[runs["first"]] == "2 failed"
    outcomes = dict(panel.runs_table.frame.select("id", "outcome").rows())
    # two failed records are not a failed run: the log says it as jobs list and reports do
    assert outcomes[runs["first"]] == "succeeded with 2 failed records"
    assert outcomes[ids[0]] == "succeeded"
    panel.runs_table.search.value = "unusual"
    assert panel.runs_table.view.get_column("id").to_list() == [ids[-1]]
    assert "background:#fff8e1" in panel.runs_table.rendered_page


def test_retry_of_a_skipped_record_says_unskip_first(offline_workspace: Workspace) -> None:
    """Retry on a skipped record does nothing and says so (never "done")."""
    fill_store(offline_workspace)
    panel = LogsPanel(offline_workspace)
    panel.failed_table.select(["CUSTOMER|to_crm|n3"])
    panel.retry_button.click()
    assert not panel.progress.running and panel.retry_result is None
    assert panel.errors.kind == "warning"
    assert panel.errors.message.startswith("1 of the selected record(s) are skipped — unskip "
                                           "first")
    status = offline_workspace.store.record_status("CUSTOMER", "n3", "to_crm")
    assert status is not None and status.state == "skipped"


def test_groups_count_records_name_examples_and_advise(offline_workspace: Workspace) -> None:
    store = offline_workspace.store
    run = store.start_run("CUSTOMER", "to_crm")
    message = ("salespersonCode 'BD' is not coupled to a CRM systemuser (mapping SALESPEOPLE): "
               "run SALESPEOPLE first, or couple salespeople 'BD' by hand")
    for source, label in (("g1", "10000 The Cannon Group PLC"), ("g2", "20000 Selangorian")):
        for _ in range(2):
            store.add_record_error("CUSTOMER", "to_crm", message, run_id=run, source_id=source,
                                   source_label=label)
    store.record_outcomes("CUSTOMER", "to_crm", failed=[RecordFailure("g1", message)],
                          run_id=run)
    panel = LogsPanel(offline_workspace)
    group = panel.groups_table.frame.row(0, named=True)
    assert (group["count"], group["records"]) == (4, 2)
    assert set(group["examples"].split(", ")) == {"10000 The Cannon Group PLC",
                                                   "20000 Selangorian"}
    assert group["advice"].startswith("salespersonCode BD has no matching CRM systemuser: "
                                      "couple it in Couple records")
    failed = panel.failed_table.frame.row(0, named=True)
    assert failed["record"] == "10000 The Cannon Group PLC"
    panel.failed_table.select(["CUSTOMER|to_crm|g1"])
    detail = panel.detail.value
    assert "10000 The Cannon Group PLC" in detail and html.escape(message) in detail
    assert "href='couple_records.ipynb'" in detail and "nav-crm-ops errors" not in detail


def test_a_capped_drill_down_says_so(offline_workspace: Workspace) -> None:
    store = offline_workspace.store
    store.add_record_errors({"mapping": "CUSTOMER", "direction": "to_crm",
                             "source_id": f"c{n}", "message": f"Customer C{n:07d} is blocked"}
                            for n in range(10_050))
    panel = LogsPanel(offline_workspace)
    panel.select_group("CUSTOMER", "Customer <no> is blocked")
    assert panel.records_table.frame.height == 10_000
    assert "Showing the newest 10,000 of 10,050 occurrences — narrow the filter" in \
        panel.records_note.value


def test_unskip_and_retry_shows_each_outcome_and_refreshes_the_detail(
        sandbox_workspace: Workspace) -> None:
    """A record skipped for a missing salesperson: fixed (salespeople synchronized), then
    Unskip and retry synchronizes it; the panel names it, says "done", and the detail pane
    no longer shows the old failure."""
    ws = sandbox_workspace
    ws.sync_all(["CUSTOMER"])
    ws.sync_all(["CUSTOMER"])
    skipped = ws.failed_records("CUSTOMER").filter(
        (pl.col("state") == "skipped") & (pl.col("direction") == "to_crm")
        & pl.col("message").str.contains("salespersonCode"))
    assert skipped.height > 0
    row = skipped.row(0, named=True)
    assert row["record"] != row["source_id"] and not GUID.search(row["record"])
    ws.sync_all(["SALESPEOPLE"])
    panel = LogsPanel(ws)
    key = f"CUSTOMER|to_crm|{row['source_id']}"
    panel.failed_table.search.value = row["record"]
    panel.failed_table.select([key])
    assert "skipped since" in panel.detail.value and "salespersonCode" in panel.detail.value
    panel.retry_button.click()
    assert panel.errors.message.startswith("1 of the selected record(s) are skipped")
    panel.failed_table.select([key])
    panel.unskip_retry_button.click()
    result = panel.progress.wait()
    assert result is panel.retry_result and result is not None
    assert result.outcomes.select("record", "outcome").rows() == [(row["record"], "done")]
    assert "1 done" in panel.result.value and html.escape(row["record"]) in panel.result.value
    assert "not in the retry pass" in panel.detail.value
    assert ws.store.record_status("CUSTOMER", row["source_id"], "to_crm") is None
    assert ws.store.get_coupling_by_nav("CUSTOMER", row["source_id"]) is not None
