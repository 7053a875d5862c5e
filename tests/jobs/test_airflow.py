"""``nav-crm-ops jobs airflow-dag``: the generated DAG names every job with the mappings'
dependencies as edges, holds no secret, and Apache Airflow itself (in its own virtual
environment, ``.nav_crm_ops/airflow-venv``) loads it with its DagBag and runs it once against
the sandbox with ``dag.test()``. The exit codes the DAG relies on (busy -> 4, retried; On Hold
with ``--skip-on-hold`` -> 5, skipped) are checked on the real command."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, time
from pathlib import Path
from typing import Any

import pytest

from nav_crm_ops.config import load_config
from nav_crm_ops.engine.mapping import MappingSet
from nav_crm_ops.jobs import JobRunner
from nav_crm_ops.jobs.airflow import EXIT_ON_HOLD, airflow_dag, cron_schedule, render_dag
from nav_crm_ops.jobs.recurrence import Recurrence
from nav_crm_ops.store import StateStore, default_holder
from nav_crm_ops.store.runs import RunOutcome
from tests.conftest import CliRunner

AIRFLOW_VERSION = "3.3.2"
REPO = Path(__file__).resolve().parents[2]
AIRFLOW_VENV = Path(os.environ.get("NAV_CRM_OPS_AIRFLOW_VENV",
                                   REPO / ".nav_crm_ops" / "airflow-venv"))
"""Where Airflow is installed; NAV_CRM_OPS_AIRFLOW_VENV points elsewhere (a CI cache)."""
NAV_CRM_OPS = Path(sys.executable).parent / "nav-crm-ops"
EXAMPLE = REPO / "docs" / "examples" / "airflow_dag.py"

_DRIVER = """
import json, sys
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder=sys.argv[1])
assert not bag.import_errors, bag.import_errors
result = {"states": {}, "upstream": {}, "rules": {}, "runs": {}}
for dag_id in sorted(bag.dag_ids):
    dag = bag.get_dag(dag_id)
    run = dag.test()
    result["runs"][dag_id] = str(run.state)
    result["states"].update({ti.task_id: str(ti.state) for ti in run.get_task_instances()})
    result["upstream"].update({t.task_id: sorted(t.upstream_task_ids) for t in dag.tasks})
    result["rules"].update({t.task_id: getattr(t.trigger_rule, "value", t.trigger_rule)
                            for t in dag.tasks})
print("RESULT " + json.dumps(result))
"""


@pytest.mark.parametrize(("recurrence", "cron"), [
    (Recurrence(every_minutes=30), "*/30 * * * *"),
    (Recurrence(every_minutes=1), "* * * * *"),
    (Recurrence(every_minutes=120), "0 */2 * * *"),
    (Recurrence(every_minutes=1440), "0 0 * * *"),
    (Recurrence(every_minutes=15, weekdays=(0, 1, 2, 3, 4), starting_time=time(8),
                ending_time=time(18)), "*/15 8-17 * * 1,2,3,4,5"),
    (Recurrence(every_minutes=60, weekdays=(6,)), "0 * * * 0"),
    (Recurrence(every_minutes=45), None),
    (Recurrence(every_minutes=None), None),
    (Recurrence(every_minutes=30, starting_time=time(22), ending_time=time(6)), None),
    (Recurrence(every_minutes=30, starting_time=time(8, 30)), None),
    (Recurrence(every_minutes=30, weekdays=(0,), timezone="Europe/Berlin"), None),
    (Recurrence(every_minutes=30, expiration=datetime(2027, 1, 1, tzinfo=UTC)), None),
])
def test_a_recurrence_maps_to_cron_only_when_cron_says_exactly_the_same(
        recurrence: Recurrence, cron: str | None) -> None:
    found, note = cron_schedule(recurrence)
    assert found == cron
    assert note  # why not, or what it is, for the comment in the DAG file


def _generate(cli: CliRunner, workspace: Path, out: Path, *, init: bool = True) -> str:
    if init:
        code, _out, err = cli("jobs", "init", "-w", str(workspace))
        assert code == 0, err
    code, said, err = cli("jobs", "airflow-dag", "-w", str(workspace), "--out", str(out),
                          "--executable", str(NAV_CRM_OPS))
    assert code == 0, err
    assert "tasks" in said
    return out.read_text(encoding="utf-8")


def _literal(tree: ast.Module, name: str) -> Any:
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == name for t in node.targets):
            return ast.literal_eval(node.value)
    raise AssertionError(f"{name} is not assigned in the generated DAG")


def _expected_upstream(workspace: Path) -> tuple[dict[str, str], dict[str, set[str]]]:
    """Job name by mapping, and each job's expected upstream job names from depends_on."""
    config = load_config(workspace)
    mappings = MappingSet.for_workspace(config)
    with JobRunner(workspace) as runner:
        jobs = runner.queue.list()
    by_mapping = {job.mapping.upper(): job.name for job in jobs if job.mapping}
    expected = {job.name: {by_mapping[mappings.get(d).name.upper()]
                           for d in mappings.get(job.mapping).depends_on}
                if job.mapping else set() for job in jobs}
    return by_mapping, expected


def test_the_dag_has_every_job_the_dependencies_as_edges_and_no_secret(
        cli: CliRunner, workspace_dir: Path, tmp_path: Path) -> None:
    text = _generate(cli, workspace_dir, tmp_path / "dags" / "nav_crm_ops_jobs.py")
    compile(text, "nav_crm_ops_jobs.py", "exec")
    tree = ast.parse(text)
    tasks = _literal(tree, "JOBS")
    by_mapping, expected = _expected_upstream(workspace_dir)
    with JobRunner(workspace_dir) as runner:
        queue = runner.queue.list()
    assert [t["job"] for t in tasks] == [job.name for job in queue]
    assert len(tasks) == len(queue) >= len(by_mapping) >= 12
    names = {t["task_id"]: t["job"] for t in tasks}
    edges = {t["job"]: {names[u] for u in t["upstream"]} for t in tasks}
    assert edges == expected
    assert any(edges.values())  # the default mappings do depend on each other
    assert {(t["retries"], t["retry_delay_s"]) for t in tasks} == {
        (max(job.max_attempts - 1, 1), job.rerun_delay_s) for job in queue}
    dags = _literal(tree, "DAGS")
    assert dags["nav_crm_ops_jobs"] == "*/30 * * * *"  # the sync jobs' every 30 minutes
    assert {t["dag"] for t in tasks if t["job"] in by_mapping.values()} == {"nav_crm_ops_jobs"}
    for job in queue:  # a job of another schedule is a DAG of its own schedule
        task = next(t for t in tasks if t["job"] == job.name)
        assert dags[task["dag"]] == cron_schedule(job.recurrence)[0]
    assert _literal(tree, "EXIT_ON_HOLD") == EXIT_ON_HOLD
    assert _literal(tree, "WORKSPACE") == str(workspace_dir.resolve())
    assert "trigger_rule=\"none_failed\"" in text and "skip_on_exit_code=EXIT_ON_HOLD" in text
    secret = os.environ["NAV_CRM_OPS_SANDBOX_SECRET"]
    assert secret and secret not in text


def _example(workspace: Path) -> str:
    """The DAG of the sandbox's default queue as docs/examples/airflow_dag.py shows it."""
    with JobRunner(workspace) as runner:
        spec = airflow_dag(runner.queue.list(), MappingSet.for_workspace(runner.config),
                           "/srv/nav-crm-ops/workspace")
    return render_dag(spec)


def test_the_documented_example_is_the_generated_dag_of_the_default_queue(
        cli: CliRunner, workspace_dir: Path) -> None:
    assert cli("jobs", "init", "-w", str(workspace_dir))[0] == 0
    expected = _example(workspace_dir)
    if os.environ.get("NAV_CRM_OPS_WRITE_AIRFLOW_EXAMPLE") == "1":
        EXAMPLE.write_text(expected, encoding="utf-8")
    assert EXAMPLE.read_text(encoding="utf-8") == expected, (
        f"{EXAMPLE} is out of date: regenerate it with NAV_CRM_OPS_WRITE_AIRFLOW_EXAMPLE=1 "
        "pytest tests/jobs/test_airflow.py -k documented_example")


def test_an_empty_queue_is_refused_with_what_to_do(cli: CliRunner, workspace_dir: Path) -> None:
    code, _out, err = cli("jobs", "airflow-dag", "-w", str(workspace_dir))
    assert code == 2
    assert "jobs init" in err


def test_a_job_on_hold_is_not_run_with_skip_on_hold(cli: CliRunner,
                                                    workspace_dir: Path) -> None:
    assert cli("jobs", "init", "-w", str(workspace_dir))[0] == 0
    assert cli("jobs", "set", "CURRENCY", "--status", "On Hold", "-w", str(workspace_dir))[0] == 0
    code, _out, err = cli("jobs", "run", "CURRENCY", "--skip-on-hold", "-w", str(workspace_dir))
    assert code == EXIT_ON_HOLD
    assert "On Hold" in err
    with JobRunner(workspace_dir) as runner:
        job = runner.queue.get("CURRENCY")
        assert (job.run_count, job.last_run_at) == (0, None)
        assert runner.store.runs_frame().height == 0


def test_a_busy_mapping_exits_4_so_airflow_retries_instead_of_passing(
        cli: CliRunner, workspace_dir: Path) -> None:
    assert cli("jobs", "init", "-w", str(workspace_dir))[0] == 0
    store = StateStore.open(load_config(workspace_dir).state_url)
    holder = default_holder("another sync")
    store.acquire_lease("mapping:CURRENCY", holder, 600)
    try:
        code, out, err = cli("jobs", "run", "CURRENCY", "-w", str(workspace_dir))
    finally:
        store.release_lease("mapping:CURRENCY", holder)
        store.close()
    assert code == 4, out + err
    with JobRunner(workspace_dir) as runner:
        job = runner.queue.get("CURRENCY")
    assert job.last_outcome == RunOutcome.BUSY.value
    assert job.status == "Ready"  # busy is no failed attempt


@pytest.fixture(scope="session")
def airflow_python() -> Path:
    """Apache Airflow's own interpreter: a virtual environment under .nav_crm_ops/, created
    once and kept (a stamp names the version) so later runs and CI on this machine reuse it."""
    python = AIRFLOW_VENV / "bin" / "python"
    stamp = AIRFLOW_VENV / f".installed-apache-airflow-{AIRFLOW_VERSION}"
    if not stamp.exists():
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(AIRFLOW_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet",
                        f"apache-airflow=={AIRFLOW_VERSION}"], check=True, timeout=1200)
        stamp.touch()
    return python


def _run_in_airflow(cli: CliRunner, workspace: Path, tmp_path: Path,
                    airflow_python: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Generate the DAG file, let Airflow load it (DagBag) and run each DAG once
    (``dag.test()``) in its own AIRFLOW_HOME; Airflow's view of the run, and the JOBS list."""
    dags = tmp_path / "dags"
    _generate(cli, workspace, dags / "nav_crm_ops_jobs.py", init=False)
    home = tmp_path / "airflow-home"
    env = {**os.environ, "AIRFLOW_HOME": str(home), "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
           "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
           "PATH": f"{NAV_CRM_OPS.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    airflow = airflow_python.parent / "airflow"
    subprocess.run([str(airflow), "db", "migrate"], env=env, check=True, capture_output=True,
                   timeout=300)
    done = subprocess.run([str(airflow_python), "-c", _DRIVER, str(dags)], env=env,
                          capture_output=True, text=True, timeout=1500)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert done.returncode == 0 and lines, (done.stdout + done.stderr)[-4000:]
    tasks = _literal(ast.parse((dags / "nav_crm_ops_jobs.py").read_text()), "JOBS")
    return json.loads(lines[-1].removeprefix("RESULT ")), tasks


def test_airflow_loads_the_dag_and_runs_every_job_once_against_the_sandbox(
        cli: CliRunner, workspace_dir: Path, tmp_path: Path, airflow_python: Path) -> None:
    assert cli("jobs", "init", "-w", str(workspace_dir))[0] == 0
    result, tasks = _run_in_airflow(cli, workspace_dir, tmp_path, airflow_python)
    with JobRunner(workspace_dir) as runner:
        queue = runner.queue.list()
        log = runner.store.runs_frame(limit=1000)
    assert result["runs"]["nav_crm_ops_jobs"] == "success"
    assert set(result["runs"].values()) == {"success"}, result["runs"]
    assert result["states"] == {t["task_id"]: "success" for t in tasks}
    assert set(result["rules"].values()) == {"none_failed"}
    assert result["upstream"] == {t["task_id"]: sorted(t["upstream"]) for t in tasks}
    for job in queue:  # every job ran once, through the job queue, and did its work
        assert job.run_count == 1, job.name
        assert job.last_outcome is not None
        assert RunOutcome(job.last_outcome).completed, (job.name, job.last_error)
    sync_jobs = {job.name for job in queue if job.kind == "sync"}
    assert sync_jobs <= set(log["job_name"].to_list())


def test_in_airflow_a_job_on_hold_is_skipped_and_the_jobs_after_it_still_run(
        cli: CliRunner, workspace_dir: Path, tmp_path: Path, airflow_python: Path) -> None:
    ws = str(workspace_dir)
    assert cli("jobs", "init", "-w", ws)[0] == 0
    with JobRunner(workspace_dir) as runner:
        names = [job.name for job in runner.queue.list()]
    kept = {"CURRENCY", "SALESPEOPLE", "CUSTOMER"}  # CUSTOMER depends on the other two
    for name in names:
        if name.partition(" - ")[0] not in kept:
            assert cli("jobs", "remove", name, "-w", ws)[0] == 0
    assert cli("jobs", "set", "CURRENCY", "--status", "On Hold", "-w", ws)[0] == 0
    result, _tasks = _run_in_airflow(cli, workspace_dir, tmp_path, airflow_python)
    assert result["states"] == {"currency": "skipped", "salespeople": "success",
                                "customer": "success"}
    assert result["upstream"]["customer"] == ["currency", "salespeople"]
    with JobRunner(workspace_dir) as runner:
        assert runner.queue.get("CURRENCY").run_count == 0
        assert runner.queue.get("CUSTOMER").run_count == 1
