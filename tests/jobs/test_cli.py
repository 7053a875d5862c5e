"""``nav-crm-ops jobs ...`` through click's CliRunner on a real workspace and state file."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from nav_crm_ops.config import load_config
from nav_crm_ops.engine.mapping import MappingSet
from nav_crm_ops.jobs import sync_job_name
from nav_crm_ops.jobs.cli import jobs
from nav_crm_ops.jobs.defaults import RETENTION_JOB
from nav_crm_ops.store import StateStore


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(jobs, list(args), catch_exceptions=False)
    return result.exit_code, result.output


def test_init_list_show_and_set(offline_workspace: Path) -> None:
    ws = ["--workspace", str(offline_workspace)]
    code, out = invoke("init", *ws)
    assert code == 0, out
    # the sync jobs in dependency order, then the daily retention job
    names = [*(sync_job_name(m) for m in MappingSet.load().dependency_order()), RETENTION_JOB]
    assert [line.split(None, 2)[-1] for line in out.splitlines()] == names
    assert all(line.startswith("created") for line in out.splitlines())
    code, out = invoke("init", *ws)
    assert code == 0 and all(line.startswith("exists") for line in out.splitlines())

    code, out = invoke("list", "--json", *ws)
    listed = json.loads(out)
    assert [j["name"] for j in listed] == names
    assert {j["status"] for j in listed} == {"Ready"}
    code, out = invoke("list", *ws)
    assert code == 0 and "every 30 min" in out and names[0] in out

    code, out = invoke("set", "customer", "--every", "15", "--weekdays", "mon-fri",
                       "--start", "08:00", "--end", "18:00", "--max-attempts", "5",
                       "--inactivity-timeout", "60", "--param", "dry_run=true", *ws)
    assert code == 0, out
    code, out = invoke("show", "CUSTOMER", "--json", *ws)
    shown = json.loads(out)
    assert shown["schedule"] == "every 15 min, mon,tue,wed,thu,fri, 08:00-18:00 UTC"
    assert (shown["max_attempts"], shown["inactivity_timeout_min"]) == (5, 60)
    assert shown["parameters"] == {"dry_run": True}
    code, out = invoke("set", "CUSTOMER", "--status", "on-hold", *ws)
    assert code == 0 and "On Hold" in out
    code, out = invoke("show", "CUSTOMER", *ws)
    assert "status" in out and "On Hold" in out


def test_bad_input_says_what_to_fix(offline_workspace: Path) -> None:
    ws = ["--workspace", str(offline_workspace)]
    code, out = invoke("show", "nope", *ws)
    assert code == 2 and "jobs init" in out
    invoke("init", *ws)
    code, out = invoke("set", "CUSTOMER", "--param", "client_secret=abc", *ws)
    assert code == 2 and "must never be parameters" in out
    code, out = invoke("set", "CUSTOMER", "--status", "In Process", *ws)
    assert code == 2 and "runner sets" in out
    code, out = invoke("set", "CUSTOMER", "--weekdays", "someday", *ws)
    assert code == 2 and "mon-fri" in out
    with StateStore.open(load_config(offline_workspace).state_url) as store:
        store.acquire_lease("job:" + sync_job_name("CUSTOMER"), "otherhost:7 jobs run", 60)
    code, out = invoke("set", "CUSTOMER", "--every", "5", *ws)
    assert code == 4 and "otherhost:7 jobs run" in out and "after this run" in out
    code, out = invoke("run", *ws)
    assert code == 2 and "exactly one of NAME, --due or --all" in out
    code, out = invoke("list", "--workspace", str(offline_workspace / "missing"))
    assert code == 2 and "nav-crm-ops init" in out


def test_add_and_run_notebook_jobs(offline_workspace: Path, test_notebooks: Path) -> None:
    ws = ["--workspace", str(offline_workspace)]
    code, out = invoke("add", "Report", "--notebook", str(test_notebooks / "passing.ipynb"),
                       "--every", "60", "--param", "changed=false", *ws)
    assert code == 0 and "every 60 min" in out, out
    code, out = invoke("add", "Broken", "--notebook", str(test_notebooks / "failing.ipynb"),
                       "--max-attempts", "1", *ws)
    assert code == 0, out
    code, out = invoke("run", "Report", *ws)
    assert code == 0, out
    assert "succeeded" in out and "report-1.ipynb" in out
    code, out = invoke("run", "Broken", "--json", *ws)
    assert code == 1
    [run] = json.loads(out)
    assert run["status"] == "Error" and "injected failure" in run["error"]
    code, out = invoke("run", "--due", *ws)
    assert (code, out.strip()) == (0, "No job was due.")
    code, out = invoke("remove", "Broken", *ws)
    assert code == 0
    code, out = invoke("list", "--json", *ws)
    assert [j["name"] for j in json.loads(out)] == ["Report"]
