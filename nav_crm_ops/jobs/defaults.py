"""The default job queue: one synchronization job per mapping, in the reference's order.

Why these numbers: the reference runs each integration job every 30 minutes with an
inactivity timeout of 720 minutes (1440 for customer statistics) so an idle mapping costs
nothing between changes; a few attempts with a short rerun delay ride out a service blip.
Mappings with a notebook of their own run it instead of the generic one: sales orders
(``jobs/sales_orders.ipynb``: orders sent to BC, their fate reported back) and customer
statistics when ``jobs/customer_statistics.ipynb`` exists. The sales-order job never waits for
inactivity: a posted or deleted BC order leaves no modified record to probe for.

After the sync jobs comes the maintenance job :data:`RETENTION_JOB` (``jobs/retention.ipynb``,
daily, never on hold for inactivity): it purges the runs, resolved record errors and settled
journal writes older than the workspace's ``[retention]`` days.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from ..engine.mapping import MappingSet
from ..exceptions import ConfigError
from .queue import JobEntry, JobQueue
from .recurrence import Recurrence
from .runner import notebooks_dir

__all__ = [
    "DEFAULT_EVERY_MINUTES",
    "DEFAULT_INACTIVITY_TIMEOUT_MIN",
    "RETENTION_JOB",
    "RETENTION_NOTEBOOK",
    "SALES_ORDERS_NOTEBOOK",
    "STATISTICS_NOTEBOOK",
    "SYNC_NOTEBOOK",
    "default_jobs",
    "init_queue",
    "maintenance_jobs",
    "sync_job_name",
]

SYNC_NOTEBOOK = "jobs/sync_mapping.ipynb"
STATISTICS_NOTEBOOK = "jobs/customer_statistics.ipynb"
SALES_ORDERS_NOTEBOOK = "jobs/sales_orders.ipynb"
DEFAULT_EVERY_MINUTES = 30
DEFAULT_INACTIVITY_TIMEOUT_MIN = 720
STATISTICS_INACTIVITY_TIMEOUT_MIN = 1440
DEFAULT_MAX_ATTEMPTS = 3
DEFAULT_RERUN_DELAY_S = 60
DEFAULT_EXECUTION_TIMEOUT_S = 1800
RETENTION_NOTEBOOK = "jobs/retention.ipynb"
RETENTION_JOB = "Retention - purge old job log, record errors and journal"
RETENTION_EVERY_MINUTES = 24 * 60


def sync_job_name(mapping: str) -> str:
    """The reference's name for a mapping's job, e.g. "CUSTOMER - Dynamics 365 Sales
    synchronization job"."""
    return f"{mapping.upper()} - Dynamics 365 Sales synchronization job"


def default_jobs(mappings: MappingSet, *, every_minutes: int = DEFAULT_EVERY_MINUTES,
                 notebooks: Path | None = None) -> list[JobEntry]:
    """The default entries, in run order: one per mapping in dependency (recommended) order,
    run by the mapping's own notebook when it has one (module docstring)."""
    folder = notebooks or notebooks_dir()
    if not (folder / SYNC_NOTEBOOK).is_file():
        raise ConfigError(f"the job notebook {folder / SYNC_NOTEBOOK} is missing; reinstall "
                          "nav-crm-ops from its repository (notebooks/ ships with it)")
    schedule = Recurrence(every_minutes=every_minutes)

    def entry(name: str, kind: str, notebook: str, mapping: str = "",
              inactivity_timeout_min: int = DEFAULT_INACTIVITY_TIMEOUT_MIN) -> JobEntry:
        return JobEntry(name=name, kind=kind, notebook=notebook, mapping=mapping,
                        recurrence=schedule, max_attempts=DEFAULT_MAX_ATTEMPTS,
                        rerun_delay_s=DEFAULT_RERUN_DELAY_S,
                        inactivity_timeout_min=inactivity_timeout_min,
                        execution_timeout_s=DEFAULT_EXECUTION_TIMEOUT_S)

    flows = {"SALES ORDERS": ("sales_orders", SALES_ORDERS_NOTEBOOK, 0),
             "CUSTOMER STATISTICS": ("statistics", STATISTICS_NOTEBOOK,
                                     STATISTICS_INACTIVITY_TIMEOUT_MIN)}
    entries = []
    for name in mappings.dependency_order():
        kind, notebook, timeout = flows.get(name.upper(), ("sync", SYNC_NOTEBOOK,
                                                           DEFAULT_INACTIVITY_TIMEOUT_MIN))
        if not (folder / notebook).is_file():
            kind, notebook = "sync", SYNC_NOTEBOOK
        entries.append(entry(sync_job_name(name), kind, notebook, mapping=name,
                             inactivity_timeout_min=timeout))
    return entries


def maintenance_jobs(*, notebooks: Path | None = None) -> list[JobEntry]:
    """The default jobs that synchronize nothing, run after the sync jobs: retention (daily,
    never on hold for inactivity: a day that purged nothing still runs the next day)."""
    folder = notebooks or notebooks_dir()
    if not (folder / RETENTION_NOTEBOOK).is_file():
        raise ConfigError(f"the job notebook {folder / RETENTION_NOTEBOOK} is missing; "
                          "reinstall nav-crm-ops from its repository (notebooks/ ships with it)")
    return [JobEntry(name=RETENTION_JOB, kind="notebook", notebook=RETENTION_NOTEBOOK,
                     recurrence=Recurrence(every_minutes=RETENTION_EVERY_MINUTES),
                     max_attempts=DEFAULT_MAX_ATTEMPTS, rerun_delay_s=DEFAULT_RERUN_DELAY_S,
                     inactivity_timeout_min=0,
                     execution_timeout_s=DEFAULT_EXECUTION_TIMEOUT_S)]


def init_queue(queue: JobQueue, mappings: MappingSet, *,
               every_minutes: int = DEFAULT_EVERY_MINUTES, now: datetime | None = None
               ) -> list[tuple[JobEntry, bool]]:
    """Create the default entries that do not exist yet (existing ones are left as they are);
    returns (entry, created) in run order: the sync jobs, then :func:`maintenance_jobs`."""
    existing = {entry.name.lower(): entry for entry in queue.list()}
    outcome = []
    for entry in [*default_jobs(mappings, every_minutes=every_minutes), *maintenance_jobs()]:
        found = existing.get(entry.name.lower())
        if found is not None:
            outcome.append((found, False))
        else:
            outcome.append((queue.add(entry, now=now), True))
    return outcome
