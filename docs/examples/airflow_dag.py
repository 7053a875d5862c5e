"""Example Airflow DAG: the nav-crm-ops job queue, one task per synchronization job.

Each task runs ``nav-crm-ops jobs run <MAPPING>``: papermill executes the job's notebook, the
output notebook lands in ``<workspace>/runs/<date>/``, the job queue entry and the job log are
updated, and the job's lease keeps this DAG and any other runner (cron, ``jobs run --loop``)
from running the same job twice. Exit code 4 (another runner holds the job) skips the task;
exit code 1 (the notebook failed) fails it.

Tasks are chained in the reference's recommended order so lookups (currency, salesperson,
unit of measure) exist before the records that point at them. Copy this file into your DAGs
folder and set WORKSPACE; the environment of the Airflow worker must hold the client secret
variables the workspace config names (e.g. from an Airflow connection or a secrets backend),
never the DAG file or task parameters.

Running papermill directly (``PapermillOperator`` with ``notebooks/jobs/sync_mapping.ipynb``
and ``parameters={"workspace": ..., "mapping": ...}``) also works, but bypasses the job queue:
no lease, status, retry or inactivity bookkeeping.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow import DAG
from airflow.operators.bash import BashOperator

WORKSPACE = "/srv/nav-crm-ops/workspace"
MAPPINGS = ["CURRENCY", "SALESPEOPLE", "UNIT OF MEASURE", "CUSTOMER", "CONTACT",
            "RESOURCE-PRODUCT", "ITEM-PRODUCT"]
EXIT_LEASE_HELD = 4

with DAG(
    dag_id="nav_crm_ops_sync",
    description="Business Central / NAV <-> Dynamics 365 Sales synchronization jobs",
    schedule=timedelta(minutes=30),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 0},  # the job queue retries per job (max attempts, rerun delay)
    tags=["nav-crm-ops"],
) as dag:
    previous = None
    for mapping in MAPPINGS:
        task = BashOperator(
            task_id="sync_" + mapping.lower().replace(" ", "_").replace("-", "_"),
            bash_command=f'nav-crm-ops jobs run "{mapping}" --workspace "{WORKSPACE}"',
            skip_on_exit_code=EXIT_LEASE_HELD,
            execution_timeout=timedelta(hours=1),
        )
        if previous is not None:
            previous >> task
        previous = task
