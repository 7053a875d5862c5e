"""RunMappingsPanel against the sandbox: dependency order, live progress, results per mapping."""

from __future__ import annotations

import time

import polars as pl

from nav_crm_ops.engine.workspace import Workspace
from nav_crm_ops.sandbox import Sandbox
from nav_crm_ops.widgets import RunMappingsPanel


def test_runs_selected_mappings_in_dependency_order(sandbox_workspace: Workspace) -> None:
    ws = sandbox_workspace
    panel = RunMappingsPanel(ws, job_name="widget test")
    panel.mapping_picker.value = ("CUSTOMER", "SALESPEOPLE")
    assert "SALESPEOPLE → CUSTOMER" in panel.order.value
    panel.run_button.click()
    report = panel.progress.wait()
    assert report is panel.report and report is not None
    assert [r.mapping for r in report.results] == ["SALESPEOPLE", "CUSTOMER"]
    assert panel.progress.events > 0 and "CUSTOMER" in panel.progress.table.value
    assert "<td>SALESPEOPLE</td>" in panel.results.value and "requests" in panel.results.value
    runs = ws.runs()
    assert set(runs.get_column("job_name").to_list()) == {"widget test"}
    assert set(runs.get_column("mapping").to_list()) == {"SALESPEOPLE", "CUSTOMER"}
    assert sum(runs.get_column("requests").to_list()) == report.counts["requests"]


def test_all_checkbox_runs_everything(sandbox_workspace: Workspace) -> None:
    panel = RunMappingsPanel(sandbox_workspace)
    panel.mapping_picker.value = ("CURRENCY",)
    panel.all_checkbox.value = True
    assert panel.selected is None and "(all mappings)" in panel.order.value
    order = sandbox_workspace.mappings.dependency_order()
    assert " → ".join(order) in panel.order.value


def test_cancel_stops_before_the_remaining_mappings(sandbox_workspace: Workspace,
                                                    fresh_sandbox: Sandbox) -> None:
    ws = sandbox_workspace
    everything = ws.mappings.dependency_order()
    fresh_sandbox.set_faults("rate=1,kinds=slow,seed=1,slow=0.15-0.15")
    try:
        panel = RunMappingsPanel(ws)
        panel.all_checkbox.value = True
        panel.run_button.click()
        deadline = time.monotonic() + 30
        while panel.progress.events == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        panel.progress.cancel_button.click()
        report = panel.progress.wait()
    finally:
        fresh_sandbox.set_faults(None)
    ran = set(ws.runs().filter(pl.col("kind") == "sync").get_column("mapping").to_list())
    assert ran < set(everything)
    if report is None:  # cancelled while previewing: the engine raised SyncCancelled
        assert panel.progress.status.value == "run all mappings: cancelled"
        assert panel.errors.kind == "cancelled"
        assert "run the sync again to continue" in panel.errors.message
    else:  # cancelled while writing: the report ends with the cancelled mapping
        assert report.results[-1].status == "cancelled"
