"""Approval-mode jobs (issue #20, item 2) through the real job runner and papermill against the
CRONUS sandbox: a plan above the job's thresholds is saved and waits (nothing written), a named
person approves it, the next run applies exactly that plan and refuses a record edited in
between, and every decision is recorded; routine plans flow; an edited plan file, bad
settings and decided approvals are refused with exit 2."""

from __future__ import annotations

import html
import json
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import update

from nav_crm_ops import WriteOp, open_workspace
from nav_crm_ops.engine.mapping import MappingSet
from nav_crm_ops.engine.plan import Plan
from nav_crm_ops.engine.workspace import Workspace
from nav_crm_ops.exceptions import ConfigError, PlanError
from nav_crm_ops.jobs import READY, JobEntry, JobRun, JobRunner, init_queue
from nav_crm_ops.jobs.approvals import (
    ApprovalSettings,
    PlanCounts,
    approval_reasons,
    plan_counts,
)
from nav_crm_ops.store import StateStore
from nav_crm_ops.store.approvals import Approval, ApprovalState
from nav_crm_ops.store.runs import RunOutcome
from nav_crm_ops.store.schema import approvals as approvals_table
from nav_crm_ops.store.schema import utc_now
from tests.conftest import CliRunner

CUSTOMER_JOB = "CUSTOMER - Dynamics 365 Sales synchronization job"
CURRENCY_JOB = "CURRENCY - Dynamics 365 Sales synchronization job"


@pytest.fixture
def runner(workspace_dir: Path) -> Iterator[JobRunner]:
    with JobRunner(workspace_dir) as opened:
        init_queue(opened.queue, MappingSet.for_workspace(opened.config))
        yield opened


def set_approval(cli: CliRunner, workspace: Path, job: str, settings: str) -> None:
    code, _out, err = cli("jobs", "set", job, "--approval", settings, "-w", str(workspace))
    assert code == 0, err


def approvals(runner: JobRunner, job: str) -> list[Approval]:
    return runner.store.approvals.find(job=runner.queue.get(job).name)


def report_text(run: JobRun) -> str:
    assert run.output_html is not None and run.output_html.exists(), run.error
    return html.unescape(run.output_html.read_text(encoding="utf-8"))


def count(ws: Workspace, entity: str, where: str | None = None) -> int:
    return ws.connections.dataverse.read(entity, filter=where).height


# -- the settings and the thresholds (no service) -------------------------------------------------
def test_thresholds_say_why_a_plan_needs_approval() -> None:
    records = pl.DataFrame({
        "mapping": ["CUSTOMER"] * 5, "record_id": list("abcde"),
        "action": ["insert_crm", "insert_nav", "update_crm", "deletion_conflict", "unchanged"],
        "included": [True, True, True, True, False]})
    changes = pl.DataFrame({"mapping": ["CUSTOMER"] * 3, "record_id": ["c", "c", "e"],
                            "field": ["creditlimit", "name", "creditlimit"],
                            "target": ["crm", "crm", "crm"]})
    plan = Plan.create(records, changes, workspace_fingerprint="test")
    counts = plan_counts(plan, coupled=4, fields=["creditlimit"])
    assert (counts.creates, counts.updates, counts.deletes) == (2, 1, 1)
    assert counts.fields == {"creditlimit": 1}  # record e is excluded from the plan
    strict = ApprovalSettings(max_creates=1, max_deletes=0, max_changed_percent=10,
                              fields=("creditlimit",))
    assert approval_reasons(counts, strict) == (
        "2 creates > 1", "1 delete > 0", "50.0% of the 4 coupled records change > 10%",
        "creditlimit changes (1 record)")
    loose = ApprovalSettings(max_creates=2, max_deletes=1, max_changed_percent=50)
    assert approval_reasons(counts, loose) == ()
    assert approval_reasons(PlanCounts(), ApprovalSettings()) == ()
    assert approval_reasons(counts, ApprovalSettings()) == (
        "4 changes (approval mode without thresholds: every change waits)",)
    first_sync = PlanCounts(creates=30, coupled=0)  # no coupled records: no percentage
    assert approval_reasons(first_sync, ApprovalSettings(max_changed_percent=1)) == ()


@pytest.mark.parametrize("value, message", [
    ({"max_creates": -1}, "max_creates must be a whole number of at least 0"),
    ({"max_deletes": 1.5}, "max_deletes must be a whole number"),
    ({"max_creates": True}, "max_creates must be a whole number"),
    ({"max_creats": 1}, "unknown setting(s) ['max_creats']"),
    ({"max_changed_percent": 120}, "max_changed_percent must be a number from 0 to 100"),
    ({"fields": [""]}, "fields must be a list of field names"),
    ({"expires_after_hours": 0}, "expires_after_hours must be at least 1"),
    ([1], "must be a JSON object"),
])
def test_bad_settings_are_refused_with_what_to_fix(value: object, message: str) -> None:
    with pytest.raises(ConfigError) as refused:
        ApprovalSettings.parse("Customers", value)
    assert message in str(refused.value)


@pytest.mark.parametrize("text, message", [
    ('{"max_creates": -1}', "max_creates must be a whole number of at least 0"),
    ('{"fields": ["creditlimt"]}', "approval fields ['creditlimt'] are not fields of mapping"),
    ("max_creates=5", "--approval must be JSON"),
])
def test_jobs_set_refuses_bad_approval_settings_with_exit_2_and_stores_nothing(
        offline_workspace: Path, cli: CliRunner, text: str, message: str) -> None:
    with JobRunner(offline_workspace) as runner:
        runner.queue.add(JobEntry(name="Customers", kind="sync", mapping="CUSTOMER",
                                  notebook="jobs/sync_mapping.ipynb"))
    code, _out, err = cli("jobs", "set", "Customers", "--approval", text,
                          "-w", str(offline_workspace))
    assert code == 2 and message in err and "Traceback" not in err, err
    with JobRunner(offline_workspace) as runner:
        assert runner.queue.get("Customers").parameters == {}
    code, _out, err = cli("jobs", "add", "Report", "--notebook", "x.ipynb", "--approval",
                          '{"max_creates": 1}', "-w", str(offline_workspace))
    assert code == 2 and "approval mode is for sync jobs" in err, err


def test_settings_round_trip_and_off_ends_approval_mode(offline_workspace: Path,
                                                        cli: CliRunner) -> None:
    with JobRunner(offline_workspace) as runner:
        runner.queue.add(JobEntry(name="Customers", kind="sync", mapping="CUSTOMER",
                                  notebook="jobs/sync_mapping.ipynb"))
    set_approval(cli, offline_workspace, "Customers",
                 '{"max_creates": 50, "max_changed_percent": 10, "fields": "creditlimit"}')
    with JobRunner(offline_workspace) as runner:
        assert runner.queue.get("Customers").parameters == {"approval": {
            "max_creates": 50, "max_changed_percent": 10.0, "fields": ["creditlimit"]}}
    set_approval(cli, offline_workspace, "Customers", "off")
    with JobRunner(offline_workspace) as runner:
        assert runner.queue.get("Customers").parameters == {}


def test_approvals_are_kept_per_company_and_move_only_from_the_state_read(
        state_url: str) -> None:
    uk = StateStore.open(state_url, company="CRONUS UK")
    us = StateStore.open(state_url, company="CRONUS US")
    try:
        made = uk.approvals.add(job="CUSTOMER", mapping="CUSTOMER", plan_id="p1",
                                plan_path="plans/p1.parquet", digest="d" * 64,
                                counts={"creates": 3}, reasons=["3 creates > 1"],
                                expires_at=None)
        assert made.state is ApprovalState.PENDING and made.why == "3 creates > 1"
        assert us.approvals.find() == [] and us.approvals.get(made.id) is None
        assert not us.approvals.move(made.id, [ApprovalState.PENDING],
                                     ApprovalState.APPROVED, approved_by="Someone")
        assert uk.approvals.move(made.id, [ApprovalState.PENDING], ApprovalState.APPROVED,
                                 approved_by="Dana", approved_at="2026-01-01T00:00:00.000000Z")
        assert not uk.approvals.move(made.id, [ApprovalState.PENDING],
                                     ApprovalState.REJECTED, rejected_by="Late")
        stored = uk.approvals.get(made.id)
        assert stored is not None and (stored.state, stored.approved_by) == (
            ApprovalState.APPROVED, "Dana")
    finally:
        uk.close()
        us.close()


# -- the job on the sandbox -----------------------------------------------------------------------
def test_an_approval_mode_job_waits_then_applies_the_approved_plan_refusing_a_changed_record(
        runner: JobRunner, workspace_dir: Path, cli: CliRunner) -> None:
    with open_workspace(workspace_dir) as ws:
        ws.sync_all(["CURRENCY", "SALESPEOPLE"])
        accounts_before = count(ws, "accounts")
    set_approval(cli, workspace_dir, "CUSTOMER", '{"max_creates": 1}')

    waiting = runner.run("CUSTOMER")
    assert waiting.outcome is RunOutcome.AWAITING_APPROVAL, waiting.error
    assert waiting.outcome.colour != RunOutcome.SUCCEEDED.colour  # never shown green
    assert waiting.label.startswith("waiting for approval: ") and " creates > 1" in waiting.label
    assert waiting.run_ids == () and waiting.counts.get("inserted", 0) == 0
    entry = runner.queue.get("CUSTOMER")
    assert (entry.status, entry.attempts, entry.last_error) == (READY, 0, "")
    assert entry.outcome_label == "waiting for approval"
    [pending] = approvals(runner, "CUSTOMER")
    assert pending.state is ApprovalState.PENDING and pending.counts["creates"] > 1
    text = report_text(waiting)
    assert waiting.label in text and f"plans approve {pending.id} --by NAME" in text
    with open_workspace(workspace_dir) as ws:
        assert count(ws, "accounts") == accounts_before  # nothing written to CRM
        assert ws.store.couplings.count("CUSTOMER") == 0
        plan = ws.load_plan(workspace_dir / pending.plan_path)
    assert runner.run("CUSTOMER").label == waiting.label  # still waits, no second plan
    assert len(approvals(runner, "CUSTOMER")) == 1

    code, out, err = cli("plans", "approve", str(pending.id), "--by", "Dana Reviewer",
                         "-w", str(workspace_dir))
    assert code == 0 and f"approved #{pending.id}" in out, err

    creates = plan.records.filter(pl.col("action") == "insert_crm")
    assert creates.height > 1
    edited = creates.row(0, named=True)
    with open_workspace(workspace_dir) as ws:  # a person edits one of them in BC meanwhile
        [outcome] = ws.connections.business_central.write([WriteOp.update(
            "customers", edited["nav_id"], {"displayName": "Edited After Approval"})])
        assert outcome.ok, outcome.error

    applied = runner.run("CUSTOMER")
    assert applied.outcome.completed, applied.error
    assert applied.counts["inserted"] > 0 and applied.counts["failed"] >= 1
    [done] = approvals(runner, "CUSTOMER")
    assert done.state is ApprovalState.APPLIED and done.approved_by == "Dana Reviewer"
    assert done.approved_at and done.applied_at
    assert set(done.applied_run_ids) == set(applied.run_ids) != set()
    with open_workspace(workspace_dir) as ws:
        errors = ws.errors("CUSTOMER").filter(pl.col("run_id").is_in(list(applied.run_ids))
                                              & (pl.col("source_id") == edited["nav_id"]))
        assert "changed after the preview" in errors["message"][0]
        assert "was edited since; not written" in errors["message"][0]
        number = edited["nav_key"]
        assert count(ws, "accounts", f"accountnumber eq '{number}'") == 0  # not written
        assert count(ws, "accounts") > accounts_before  # the other records were
        written = ws.store.couplings_frame("CUSTOMER")
        assert edited["nav_id"] not in written["nav_id"].to_list()
        others = set(creates["nav_id"].to_list()) - {edited["nav_id"]}
        assert others & set(written["nav_id"].to_list())
    text = report_text(applied)
    assert "approved by Dana Reviewer" in text and "was edited since; not written" in text

    code, out, _err = cli("plans", "list", "--json", "-w", str(workspace_dir))
    [listed] = json.loads(out)
    assert (listed["state"], listed["approved_by"], listed["reasons"]) == (
        "applied", "Dana Reviewer", list(pending.reasons))
    assert listed["approved_at"] == done.approved_at and listed["plan_path"] == pending.plan_path


def test_a_routine_run_within_the_thresholds_applies_without_approval(
        runner: JobRunner, workspace_dir: Path, cli: CliRunner) -> None:
    set_approval(cli, workspace_dir, "CURRENCY", '{"max_creates": 50, "max_deletes": 0}')
    run = runner.run("CURRENCY")
    assert run.outcome is RunOutcome.SUCCEEDED and run.label == "succeeded", run.error
    assert run.counts["inserted"] > 0
    assert approvals(runner, "CURRENCY") == []
    assert runner.queue.get("CURRENCY").outcome_label == "succeeded"


def _edit_a_value(path: Path) -> None:
    """What someone editing the file by hand does: change one value, keep everything else
    (the metadata with its digest and signature included)."""
    table = pq.read_table(path)
    values = table.column("new_value").to_pylist()
    index = next(i for i, value in enumerate(values) if value is not None)
    values[index] = f"{values[index]}X"
    edited = table.set_column(table.schema.get_field_index("new_value"), "new_value",
                              pa.array(values, type=table.schema.field("new_value").type))
    pq.write_table(edited.replace_schema_metadata(table.schema.metadata), path)


def test_an_edited_plan_file_is_refused_at_approval_and_a_rejected_plan_never_applies(
        runner: JobRunner, workspace_dir: Path, cli: CliRunner) -> None:
    set_approval(cli, workspace_dir, "CURRENCY", '{"max_creates": 0}')
    with open_workspace(workspace_dir) as ws:
        currencies = count(ws, "transactioncurrencies")
    runner.run("CURRENCY")
    [pending] = approvals(runner, "CURRENCY")
    path = workspace_dir / pending.plan_path
    original = path.read_bytes()
    _edit_a_value(path)
    code, _out, err = cli("plans", "approve", str(path), "--by", "Mallory",
                          "-w", str(workspace_dir))
    assert code == 2 and "was modified after it was saved" in err and "Traceback" not in err
    assert approvals(runner, "CURRENCY")[0].state is ApprovalState.PENDING

    with open_workspace(workspace_dir) as ws:  # another signed plan in its place
        ws.save_plan(ws.preview("CURRENCY"), path)
    code, _out, err = cli("plans", "approve", str(pending.id), "--by", "Mallory",
                          "-w", str(workspace_dir))
    assert code == 2 and "its digest differs" in err, err
    path.write_bytes(original)

    code, out, err = cli("plans", "reject", pending.plan_id, "--by", "Dana",
                         "--reason", "not this week", "-w", str(workspace_dir))
    assert code == 0 and f"rejected #{pending.id}" in out, err
    code, _out, err = cli("plans", "approve", str(pending.id), "--by", "Dana",
                          "-w", str(workspace_dir))
    assert code == 2 and "already rejected by Dana" in err
    code, _out, err = cli("plans", "approve", "999", "--by", "Dana", "-w", str(workspace_dir))
    assert code == 2 and "no approval '999'" in err

    code, out, err = cli("jobs", "run", "CURRENCY", "-w", str(workspace_dir))
    assert code == 0 and "waiting for approval: " in out, out + err  # previewed again
    newest, rejected = approvals(runner, "CURRENCY")
    assert (rejected.state, rejected.rejected_by, rejected.note) == (
        ApprovalState.REJECTED, "Dana", "not this week")
    assert newest.state is ApprovalState.PENDING and newest.plan_id != pending.plan_id
    with open_workspace(workspace_dir) as ws:
        assert count(ws, "transactioncurrencies") == currencies
    code, out, _err = cli("plans", "list", "-w", str(workspace_dir))
    assert "rejected by Dana" in out and "note: not this week" in out

    code, out, err = cli("jobs", "set", "CURRENCY", "--approval", "off", "-w", str(workspace_dir))
    assert code == 0 and "approval mode off; 1 open approval(s) expired" in out, err
    assert approvals(runner, "CURRENCY")[0].state is ApprovalState.EXPIRED
    assert runner.queue.get("CURRENCY").parameters == {}


def test_a_waiting_plan_is_applied_only_by_its_job_after_approval(
        runner: JobRunner, workspace_dir: Path, cli: CliRunner) -> None:
    """The saved plan is signed by the workspace, so `sync --plan` (and the preview
    dashboard's Load plan, which applies through the same Workspace.apply) would otherwise
    write it before anyone approved it, or after someone rejected it."""
    set_approval(cli, workspace_dir, "CURRENCY", '{"max_creates": 0}')
    with open_workspace(workspace_dir) as ws:
        currencies = count(ws, "transactioncurrencies")
    runner.run("CURRENCY")
    [pending] = approvals(runner, "CURRENCY")
    path = str(workspace_dir / pending.plan_path)
    code, _out, err = cli("sync", "--plan", path, "--no-progress", "-w", str(workspace_dir))
    assert code == 2 and "Traceback" not in err, err
    assert f"is approval #{pending.id} of job {CURRENCY_JOB!r}, waiting for approval" in err
    assert f"plans approve {pending.id} --by NAME" in err
    with open_workspace(workspace_dir) as ws:
        assert count(ws, "transactioncurrencies") == currencies  # nothing written
        plan = ws.load_plan(path)
        with pytest.raises(PlanError, match="waiting for approval"):
            ws.apply(plan, job_name="another job")

    code, _out, err = cli("plans", "approve", str(pending.id), "--by", "Dana",
                          "-w", str(workspace_dir))
    assert code == 0, err
    code, _out, err = cli("sync", "--plan", path, "--no-progress", "-w", str(workspace_dir))
    assert code == 2 and "approved by Dana: the job applies it at its next run" in err, err
    assert runner.run("CURRENCY").outcome.completed  # the job applies it
    assert approvals(runner, "CURRENCY")[0].state is ApprovalState.APPLIED
    code, _out, err = cli("sync", "--plan", path, "--no-progress", "-w", str(workspace_dir))
    assert code == 2 and "applied already at" in err, err
    with open_workspace(workspace_dir) as ws:
        assert count(ws, "transactioncurrencies") > currencies


def test_an_approval_not_given_in_time_expires_and_the_job_previews_again(
        runner: JobRunner, workspace_dir: Path, cli: CliRunner) -> None:
    set_approval(cli, workspace_dir, "CURRENCY", '{"max_creates": 0, "expires_after_hours": 1}')
    runner.run("CURRENCY")
    [pending] = approvals(runner, "CURRENCY")
    assert pending.expires_at is not None and pending.expires_at > pending.created_at
    with runner.store.transaction() as conn:  # an hour later
        conn.execute(update(approvals_table).where(approvals_table.c.id == pending.id)
                     .values(expires_at=utc_now(-1)))
    code, _out, err = cli("plans", "approve", str(pending.id), "--by", "Dana",
                          "-w", str(workspace_dir))
    assert code == 2 and f"approval #{pending.id} expired at" in err, err
    assert approvals(runner, "CURRENCY")[0].state is ApprovalState.EXPIRED
    again = runner.run("CURRENCY")
    assert again.label.startswith("waiting for approval: "), again.error
    newest, expired = approvals(runner, "CURRENCY")
    assert newest.state is ApprovalState.PENDING and expired.state is ApprovalState.EXPIRED
