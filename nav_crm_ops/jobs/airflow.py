"""The job queue as an Apache Airflow DAG (``nav-crm-ops jobs airflow-dag``).

Why generated rather than a hand-written example: the DAG must name every job of the queue
and the mappings' real dependencies, and both change with the workspace; a generated file is
regenerated instead of drifting.

What the generated file does (plain Python, one ``BashOperator`` per job):

- each task runs ``nav-crm-ops jobs run NAME --workspace WS --skip-on-hold``, so the job
  queue still does the bookkeeping (leases, status, job log, output notebooks);
- exit code 4 (the job's or its mapping's lease is held elsewhere: "busy") fails the try and
  Airflow retries it (``retries`` = the job's max attempts - 1, at least 1, so Airflow's
  tries match the queue's attempts; ``retry_delay`` = its rerun delay): a run that did not
  happen never ends green; exit code 1 (the run failed) fails the try too;
- exit code :data:`EXIT_ON_HOLD` (the job is On Hold) marks the task skipped, and every task
  has the trigger rule ``none_failed``, so a skipped job does not skip the jobs after it
  while a failed one still stops them;
- edges are the mappings' ``depends_on`` (a dependency without a job of its own is followed
  to its own dependencies), the order ``MappingSet.dependency_order`` gives the runner;
- the schedule is the jobs' recurrence where cron can say it, else ``None`` with a comment
  saying why; jobs of different schedules go to separate DAGs of the one file (the first,
  holding the first job of the queue, is named by ``--dag-id``, the others add the first
  task's id), and an edge between DAGs is left out with a comment (the default queue has
  none: the sync jobs share one schedule, the retention job depends on nothing);
- no secret is written: the tasks inherit the worker's environment, where the variables the
  workspace config names must be set.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from ..cli_options import EXIT_LEASE, EXIT_ON_HOLD
from ..engine.mapping import MappingSet
from ..exceptions import ConfigError
from .defaults import sync_job_name
from .dependencies import upstream_mappings
from .queue import JobEntry
from .recurrence import Recurrence

__all__ = ["DEFAULT_DAG_ID", "EXIT_ON_HOLD", "AirflowDag", "AirflowTask", "DagSchedule",
           "airflow_dag", "cron_schedule", "render_dag"]

DEFAULT_DAG_ID = "nav_crm_ops_jobs"
_TASK_ID = re.compile(r"[^a-z0-9_.-]+")


@dataclass(frozen=True)
class AirflowTask:
    """One job as one Airflow task."""

    task_id: str
    job: str
    dag_id: str
    upstream: tuple[str, ...]
    retries: int
    retry_delay_s: int
    note: str
    """The job's recurrence as cron (or why not), and any dependency left out."""

    def to_literal(self) -> dict[str, object]:
        return {"task_id": self.task_id, "job": self.job, "dag": self.dag_id,
                "upstream": list(self.upstream), "retries": self.retries,
                "retry_delay_s": self.retry_delay_s}


@dataclass(frozen=True)
class DagSchedule:
    """One DAG of the file: its id and schedule (None: triggered by hand) and why."""

    dag_id: str
    schedule: str | None
    note: str


@dataclass(frozen=True)
class AirflowDag:
    """What the generated file says: where the workspace is, its DAGs and tasks."""

    workspace: str
    executable: str
    dags: tuple[DagSchedule, ...]
    tasks: tuple[AirflowTask, ...]


def _cron_period(every_minutes: int) -> tuple[str, str] | None:
    """(minute, hour) fields for "every N minutes", when cron can say it exactly."""
    if every_minutes < 60 and 60 % every_minutes == 0:
        return ("*" if every_minutes == 1 else f"*/{every_minutes}"), "*"
    hours, rest = divmod(every_minutes, 60)
    if rest == 0 and 24 % hours == 0:
        return "0", ("*" if hours == 1 else "0" if hours == 24 else f"*/{hours}")
    return None


def _cron_hours(recurrence: Recurrence, hour: str) -> str | None:
    """The hour field with the daily window applied (whole hours, not across midnight)."""
    start, end = recurrence.starting_time, recurrence.ending_time
    if start is None and end is None:
        return hour
    first = start.hour if start is not None else 0
    last = (end.hour if end is not None else 24) - 1
    whole = all(t is None or (t.minute == 0 and t.second == 0) for t in (start, end))
    if hour != "*" or not whole or first > last:
        return None
    return f"{first}-{last}" if first != last else str(first)


def cron_schedule(recurrence: Recurrence) -> tuple[str | None, str]:
    """The recurrence as a cron expression in UTC, or None and why cron cannot say it."""
    if recurrence.every_minutes is None:
        return None, "runs once (no recurrence): trigger the DAG by hand"
    if recurrence.earliest_start is not None or recurrence.expiration is not None:
        return None, "has an earliest start or an expiration, which cron cannot say"
    windowed = bool(recurrence.weekdays) or recurrence.starting_time is not None \
        or recurrence.ending_time is not None
    if windowed and recurrence.timezone != "UTC":
        return None, f"has weekdays or a time window in {recurrence.timezone}, not UTC"
    period = _cron_period(recurrence.every_minutes)
    if period is None:
        return None, (f"runs every {recurrence.every_minutes} minutes, which divides neither "
                      "an hour nor a day")
    minute, hour = period
    hours = _cron_hours(recurrence, hour)
    if hours is None:
        return None, "has a time window that is not whole hours of one day at this period"
    days = ",".join(str((day + 1) % 7) for day in recurrence.weekdays) or "*"
    return f"{minute} {hours} * * {days}", recurrence.describe()


def _task_id(job: JobEntry, taken: set[str]) -> str:
    """A readable Airflow task id: the mapping's name for a default job, else the job's name
    up to a " - " (``Retention - purge ...``: ``retention``)."""
    default = job.mapping and job.name == sync_job_name(job.mapping)
    base = job.mapping if default else job.name.partition(" - ")[0]
    task_id = _TASK_ID.sub("_", base.lower()).strip("_.-") or "job"
    unique, number = task_id, 2
    while unique in taken:
        unique, number = f"{task_id}_{number}", number + 1
    taken.add(unique)
    return unique


def _dag_schedules(jobs: Sequence[JobEntry], task_ids: Sequence[str],
                   dag_id: str) -> list[DagSchedule]:
    """One DAG per cron schedule (None for jobs cron cannot say), one per job and in queue
    order: the first job's DAG is ``dag_id``, another adds its first task's id."""
    by_cron: dict[str | None, DagSchedule] = {}
    chosen = []
    for job, task_id in zip(jobs, task_ids, strict=True):
        cron, note = cron_schedule(job.recurrence)
        if cron not in by_cron:
            name = dag_id if not by_cron else f"{dag_id}__{task_id}"
            why = note if cron else f"None (triggered by hand): its first job {note}"
            by_cron[cron] = DagSchedule(name, cron, why)
        chosen.append(by_cron[cron])
    return chosen


def airflow_dag(jobs: Sequence[JobEntry], mappings: MappingSet, workspace: str, *,
                dag_id: str = DEFAULT_DAG_ID, executable: str = "nav-crm-ops") -> AirflowDag:
    """The DAGs of the job queue ``jobs`` (in queue order) of the workspace at ``workspace``."""
    if not jobs:
        raise ConfigError("the job queue is empty; create the default jobs with "
                          "`nav-crm-ops jobs init` first")
    taken: set[str] = set()
    ids = [_task_id(job, taken) for job in jobs]
    dags = _dag_schedules(jobs, ids, dag_id)
    dag_of = {task_id: dag.dag_id for task_id, dag in zip(ids, dags, strict=True)}
    by_mapping: dict[str, list[str]] = {}
    for job, task_id in zip(jobs, ids, strict=True):
        if job.mapping:
            by_mapping.setdefault(job.mapping.upper(), []).append(task_id)
    tasks = []
    for job, task_id, dag in zip(jobs, ids, dags, strict=True):
        upstream = sorted(upstream_id for name in upstream_mappings(
            job.mapping, mappings, set(by_mapping)) for upstream_id in by_mapping[name])
        elsewhere = [u for u in upstream if dag_of[u] != dag.dag_id]
        cron, note = cron_schedule(job.recurrence)
        note = f"{cron or 'None'}: {note}" + (
            f"; after {', '.join(elsewhere)} in another DAG (not an edge: different schedule)"
            if elsewhere else "")
        tasks.append(AirflowTask(task_id, job.name, dag.dag_id,
                                 tuple(u for u in upstream if u not in elsewhere),
                                 max(job.max_attempts - 1, 1), job.rerun_delay_s, note))
    unique = tuple(dict.fromkeys(dags))
    return AirflowDag(workspace, executable, unique, tuple(tasks))


_HEADER = '''\
"""The nav-crm-ops job queue as an Airflow DAG.

Generated by `nav-crm-ops jobs airflow-dag`; regenerate it when jobs or mappings change
instead of editing it. Each task runs `nav-crm-ops jobs run NAME` on the
workspace below, so the job queue keeps its leases, statuses, job log and output notebooks.

Exit codes: {lease} (the job or its mapping is busy elsewhere) fails the try and Airflow
retries it; {on_hold} (the job is On Hold) skips the task, and the trigger rule `none_failed`
lets the jobs after it run; 1 (the run failed) fails the task and stops the jobs after it.

Secrets: none here. The tasks inherit the worker's environment, which must hold the client
secret variables that the workspace's nav_crm_ops.toml names.
"""

from __future__ import annotations

import shlex
from datetime import datetime, timedelta, timezone

try:  # Airflow 3 (and 2.x with the standard provider)
    from airflow.providers.standard.operators.bash import BashOperator
except ImportError:  # Airflow 2 without it
    from airflow.operators.bash import BashOperator
try:
    from airflow.sdk import DAG
except ImportError:  # Airflow 2
    from airflow import DAG

WORKSPACE = {workspace!r}
NAV_CRM_OPS = {executable!r}
EXIT_BUSY = {lease}  # retried
EXIT_ON_HOLD = {on_hold}  # skipped
'''

_BODY = '''

def build_dag(dag_id, schedule):
    """One DAG: the jobs of JOBS that belong to it, their edges, busy retried, On Hold
    skipped without skipping the jobs after it."""
    with DAG(
        dag_id=dag_id,
        description="nav-crm-ops job queue (Business Central / NAV <-> Dataverse)",
        schedule=schedule,
        start_date=datetime(2026, 1, 1, tzinfo=timezone.utc),
        catchup=False,
        max_active_runs=1,
        tags=["nav-crm-ops"],
    ) as dag:
        mine = [job for job in JOBS if job["dag"] == dag_id]
        tasks = {}
        for job in mine:
            command = " ".join(shlex.quote(part) for part in (
                NAV_CRM_OPS, "jobs", "run", job["job"], "--workspace", WORKSPACE,
                "--skip-on-hold"))
            tasks[job["task_id"]] = BashOperator(
                task_id=job["task_id"],
                bash_command=command,
                skip_on_exit_code=EXIT_ON_HOLD,
                retries=job["retries"],
                retry_delay=timedelta(seconds=job["retry_delay_s"]),
                trigger_rule="none_failed",
            )
        for job in mine:
            for upstream in job["upstream"]:
                tasks[upstream] >> tasks[job["task_id"]]
    return dag


for _dag_id, _schedule in DAGS.items():
    globals()[_dag_id] = build_dag(_dag_id, _schedule)
'''


def render_dag(spec: AirflowDag) -> str:
    """The DAG file's Python source (the same for the same queue: no date in it)."""
    lines = [_HEADER.format(workspace=spec.workspace,
                            executable=spec.executable, lease=EXIT_LEASE,
                            on_hold=EXIT_ON_HOLD)]
    lines.append("# One DAG per schedule (cron, UTC; None: triggered by hand).")
    lines.append("DAGS = {")
    for dag in spec.dags:
        lines.append(f"    # {dag.note}")
        lines.append(f"    {dag.dag_id!r}: {dag.schedule!r},")
    lines.append("}")
    lines.append("")
    lines.append("# In queue order; upstream = the mappings' depends_on. Per job: its own "
                 "recurrence.")
    lines.append("JOBS = [")
    for task in spec.tasks:
        lines.append(f"    # {task.note}")
        lines.append(f"    {task.to_literal()!r},")
    lines.append("]")
    return "\n".join(lines) + "\n" + _BODY
