"""Job queue and scheduled notebooks: recurring jobs run by papermill, one output notebook
per run (see docs/jobs.md)."""

from .defaults import default_jobs, init_queue, sync_job_name
from .queue import (
    ERROR,
    FINISHED,
    IN_PROCESS,
    JOB_KINDS,
    JOB_STATUSES,
    ON_HOLD,
    ON_HOLD_INACTIVITY,
    READY,
    JobEntry,
    JobQueue,
    is_due,
    settle,
)
from .recurrence import Recurrence, first_run_time, next_run_time
from .result import JobResult, read_result, write_result
from .runner import JobRun, JobRunner, WorkspaceChangeProbe
from .summary import runs_table

__all__ = [
    "ERROR",
    "FINISHED",
    "IN_PROCESS",
    "JOB_KINDS",
    "JOB_STATUSES",
    "ON_HOLD",
    "ON_HOLD_INACTIVITY",
    "READY",
    "JobEntry",
    "JobQueue",
    "JobResult",
    "JobRun",
    "JobRunner",
    "Recurrence",
    "WorkspaceChangeProbe",
    "default_jobs",
    "first_run_time",
    "init_queue",
    "is_due",
    "next_run_time",
    "read_result",
    "runs_table",
    "settle",
    "sync_job_name",
    "write_result",
]
