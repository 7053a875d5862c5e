"""Job runs as reports with honest outcomes, through papermill against the CRONUS sandbox:
the same outcome in the job queue (``jobs list``), the job log, ``jobs run`` and the report
headline; the HTML report without code, with the headline, the chart and every failed record
with its full message; cancelled and failed notebook runs saying so on top of their report."""

from __future__ import annotations

import html
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import nbformat
import polars as pl
import pytest
from click.testing import CliRunner

from nav_crm_ops import WriteOp, open_workspace
from nav_crm_ops.engine.mapping import MappingSet
from nav_crm_ops.engine.workspace import Workspace
from nav_crm_ops.jobs import JobRun, JobRunner, init_queue, runs_table
from nav_crm_ops.jobs.cli import jobs
from nav_crm_ops.jobs.report import DEFAULT_DASHBOARDS_URL
from nav_crm_ops.store.runs import RunOutcome
from nav_crm_ops.widgets.dashboards import DEFAULT_IP, DEFAULT_PORT, dashboard_url

from .test_runner import add_job

INPUT_AREA = re.compile(r'class="[^"]*(jp-InputArea-editor|input_area|highlight hl-)')
"""A code cell's input area as nbconvert writes it: the editor box with the highlighted source
(markdown cells also sit in a ``jp-InputArea``, and the stylesheet names every class)."""
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture
def runner(workspace_dir: Path) -> Iterator[JobRunner]:
    with JobRunner(workspace_dir) as opened:
        init_queue(opened.queue, MappingSet.for_workspace(opened.config))
        yield opened


def report_html(run: JobRun) -> str:
    assert run.output_html is not None and run.output_html.exists(), run.message
    return run.output_html.read_text(encoding="utf-8")


def assert_reads_without_code(run: JobRun) -> str:
    """No code in the HTML, every code cell's input hidden in the output notebook."""
    text = report_html(run)
    assert not INPUT_AREA.search(text)
    assert "run_sync_job(" not in text and "result_path = " not in text
    assert run.output_notebook is not None
    notebook = nbformat.read(run.output_notebook, as_version=4)
    code = [c for c in notebook.cells if c.cell_type == "code"]
    assert code and all(c.metadata["jupyter"]["source_hidden"] for c in code)
    return text


def listed_outcome(workspace: Path, job: str) -> str:
    result = CliRunner().invoke(jobs, ["list", "-w", str(workspace)])
    assert result.exit_code == 0, result.output
    [line] = [line for line in result.output.splitlines() if job in line]
    return line


def test_a_run_with_failed_records_succeeds_with_them_everywhere(
        runner: JobRunner, workspace_dir: Path) -> None:
    runner.run("CURRENCY")
    run = runner.run("CUSTOMER")
    failed = run.counts["failed"]
    label = f"succeeded with {failed} failed records"
    assert failed > 1 and run.outcome is RunOutcome.SUCCEEDED_WITH_FAILURES, run.error
    assert run.label == label and label in runs_table([run])
    entry = runner.queue.get("CUSTOMER")
    assert entry.outcome_label == label and entry.last_report == str(run.output_html)
    line = listed_outcome(workspace_dir, entry.name)
    assert label in line and str(run.output_html.relative_to(workspace_dir)) in line  # type: ignore[union-attr]
    log = runner.store.runs_frame().filter(pl.col("id").is_in(list(run.run_ids)))
    assert RunOutcome.worst(RunOutcome(o) for o in log["outcome"]) is run.outcome
    assert set(log["outcome"]) <= {"succeeded", "succeeded_with_failures"}

    text = assert_reads_without_code(run)
    assert label in text and RunOutcome.SUCCEEDED_WITH_FAILURES.colour in text
    assert "<img" in text and "data:image/png;base64," in text  # the runs-over-time chart
    with open_workspace(workspace_dir) as ws:
        errors = ws.errors("CUSTOMER").filter(pl.col("run_id").is_in(list(run.run_ids)))
    assert errors["source_id"].n_unique() == failed
    plain = html.unescape(text)
    for record, message in errors.select("source_label", "message").iter_rows():
        assert record in plain and message in plain  # named, and the message never cut
    assert "28 records</b>: salespersonCode … is not coupled" in text  # one cause, counted
    assert "create in BC" in text and "written" in text and "failed (see below)" in text
    assert f"{DEFAULT_DASHBOARDS_URL}voila/render/analyse_logs.ipynb" in text
    assert dashboard_url(DEFAULT_IP, DEFAULT_PORT) == DEFAULT_DASHBOARDS_URL


def _person_edit(ws: Workspace, entity: str, key: str, payload: dict[str, object]) -> None:
    """A person's edit in CRM (impersonated: the engine ignores its own changes)."""
    people = ws.connections.dataverse.read("systemusers", select=["systemuserid"],
                                           filter="accessmode ne 4 and isdisabled eq false")
    with ws.connections.dataverse.acting_as(str(people["systemuserid"][0])) as person:
        [outcome] = person.write([WriteOp.update(entity, key, payload)])
    assert outcome.ok, outcome.error


def test_a_held_conflict_and_no_failed_record_says_held_conflicts(
        runner: JobRunner, workspace_dir: Path) -> None:
    with open_workspace(workspace_dir) as ws:
        ws.sync_all(["CURRENCY", "SALESPEOPLE", "CUSTOMER"])
        ws.sync("CUSTOMER")  # the dirty CRONUS records fail twice and are skipped
        coupling = ws.store.couplings_frame("CUSTOMER").filter(pl.col("nav_key") == "20000")
        nav_id, crm_id = coupling["nav_id"].item(), coupling["crm_id"].item()
        _person_edit(ws, "accounts", crm_id, {"address1_city": "Leeds"})
        [written] = ws.connections.business_central.write(
            [WriteOp.update("customers", nav_id, {"city": "York"})])
        assert written.ok, written.error
    run = runner.run("CUSTOMER")
    assert (run.counts["failed"], run.counts["conflicts"]) == (0, 1), run.counts
    assert run.outcome is RunOutcome.HELD_CONFLICTS and run.label == "held conflicts (1)"
    assert runner.queue.get("CUSTOMER").outcome_label == "held conflicts (1)"
    assert "held conflicts (1)" in listed_outcome(workspace_dir, run.job)
    log = runner.store.runs_frame().filter(pl.col("id").is_in(list(run.run_ids)))
    assert "held_conflicts" in set(log["outcome"]) and "failed" not in set(log["outcome"])
    text = assert_reads_without_code(run)
    assert "held conflicts (1)" in text and "held: changed on both sides" in text
    assert "address1_city: BC 'York' / CRM 'Leeds'" in html.unescape(text)
    assert "No record failed in this run." in text
    assert "skipped after failing again and again" in text  # the dirty records, not synced


def test_a_cancelled_notebook_run_says_cancelled(offline_workspace: Path,
                                                 test_notebooks: Path) -> None:
    add_job(offline_workspace, "Stopped", test_notebooks / "cancelled.ipynb")
    result = CliRunner().invoke(jobs, ["run", "Stopped", "-w", str(offline_workspace)])
    assert result.exit_code == 1, result.output
    assert "cancelled" in result.output and "SyncCancelled" in result.output
    with JobRunner(offline_workspace) as runner:
        entry = runner.queue.get("Stopped")
    assert entry.outcome is RunOutcome.CANCELLED and entry.outcome_label == "cancelled"
    assert "cancelled" in listed_outcome(offline_workspace, "Stopped")
    assert entry.last_report is not None
    text = Path(entry.last_report).read_text(encoding="utf-8")
    assert "Outcome:" in text and RunOutcome.CANCELLED.colour in text
    assert "cancelled during write crm" in text and not INPUT_AREA.search(text)


def test_a_failed_notebook_run_says_failed_on_top_of_its_report(
        offline_workspace: Path, test_notebooks: Path) -> None:
    add_job(offline_workspace, "Broken", test_notebooks / "failing.ipynb")
    with JobRunner(offline_workspace) as runner:
        run = runner.run("Broken")
        entry = runner.queue.get("Broken")
    assert run.outcome is RunOutcome.FAILED and entry.outcome_label == "failed"
    text = assert_reads_without_code(run)
    banner = text.index("Outcome:")
    assert banner < text.index("before the failure")  # on top, before the cells' outputs
    assert RunOutcome.FAILED.colour in text
    assert "injected failure: the CRM refused the batch" in text


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (make browser)")
def test_a_report_renders_in_a_browser_with_its_headline_and_chart(runner: JobRunner) -> None:
    from playwright import sync_api

    runner.run("CURRENCY")
    run = runner.run("CUSTOMER")
    assert run.output_html is not None
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.goto(run.output_html.as_uri())
            page.get_by_text(run.label, exact=True).wait_for()
            chart = page.locator("img").first
            assert chart.evaluate("img => img.complete && img.naturalWidth > 400")
            assert page.get_by_text("Failed records by cause").is_visible()
            assert page.locator(".jp-InputArea-editor").count() == 0  # markdown only
            # make screenshots keeps it in docs/screenshots/ (linked from the README)
            shots = Path(os.environ.get("NAV_CRM_OPS_SCREENSHOTS") or ARTIFACTS)
            shots.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(shots / "job-report.png"), full_page=True)
        finally:
            browser.close()


def test_an_interrupted_runner_records_the_run_as_cancelled(offline_workspace: Path,
                                                            test_notebooks: Path) -> None:
    add_job(offline_workspace, "Interrupted", test_notebooks / "interrupted.ipynb")
    with JobRunner(offline_workspace) as runner:
        with pytest.raises(KeyboardInterrupt):
            runner.run("Interrupted")
        entry = runner.queue.get("Interrupted")
    assert entry.outcome is RunOutcome.CANCELLED and entry.status != "In Process"
    assert "interrupted (Ctrl+C)" in entry.last_error
