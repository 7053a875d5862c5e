"""The engine and the job queue on a PostgreSQL state database (issue #19, item 2): the same
tests that run on SQLite elsewhere, run again with the workspace's ``state_url`` pointing at a
new database of the session's private PostgreSQL server (tests/pg.py).

Chosen to exercise every table family the engine and the runner write: a full NAV 2018 sync
of the master-data mappings against the sandbox (couplings, record outcomes and errors, runs,
watermarks, reference cache), a sync through lost replies (the write journal), the job queue
and its leases (one job, a held lease, a dead runner's job, two runner processes at once) and
the default queue's sync jobs through papermill.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.engine import test_nav_sync as nav_sync
from tests.jobs import test_runner as runner_tests
from tests.jobs import test_sync_jobs as sync_jobs
from tests.pg import PgServer, use_state_database

pytestmark = pytest.mark.timeout(600)


@pytest.fixture
def nav_workspace(nav_workspace: Path, pg_server: PgServer) -> Path:
    """tests/conftest.py's NAV 2018 workspace, its state on PostgreSQL."""
    return use_state_database(nav_workspace, pg_server.create_database())


@pytest.fixture
def workspace_dir(workspace_dir: Path, pg_server: PgServer) -> Path:
    """tests/conftest.py's Business Central workspace, its state on PostgreSQL."""
    return use_state_database(workspace_dir, pg_server.create_database())


@pytest.fixture
def offline_workspace(offline_workspace: Path, pg_server: PgServer) -> Path:
    """tests/jobs/conftest.py's offline workspace, its state on PostgreSQL."""
    return use_state_database(offline_workspace, pg_server.create_database())


@pytest.mark.parametrize("workspace", ["offline_workspace", "nav_workspace", "runner"])
def test_the_state_is_on_postgresql(workspace: str, request: pytest.FixtureRequest) -> None:
    """The fixtures above do move the state: nothing below falls back to a SQLite file."""
    from nav_crm_ops.config import load_config
    from nav_crm_ops.store import StateStore

    value = request.getfixturevalue(workspace)
    if isinstance(value, Path):
        with StateStore.open(load_config(value).state_url) as store:
            where = store.where
        assert not (value / "state.db").exists()
    else:
        where = value.store.where
    assert where.startswith("postgresql+psycopg://postgres@127.0.0.1:")


# Engine: couplings, outcomes, errors, runs and the journal, over real loopback HTTP.
test_master_data_syncs_both_ways_on_nav_pages = nav_sync.test_master_data_syncs_both_ways_on_nav_pages
test_a_fifth_of_nav_and_crm_replies_lost_duplicates_nothing = (
    nav_sync.test_a_fifth_of_nav_and_crm_replies_lost_duplicates_nothing)

# Job queue and leases, with real kernels and runner processes.
test_passing_notebook_saves_output_html_and_schedules_next = (
    runner_tests.test_passing_notebook_saves_output_html_and_schedules_next)
test_held_lease_skips_and_names_the_holder_expired_lease_is_taken_over = (
    runner_tests.test_held_lease_skips_and_names_the_holder_expired_lease_is_taken_over)
test_job_left_in_process_by_a_dead_runner_counts_as_a_failed_attempt = (
    runner_tests.test_job_left_in_process_by_a_dead_runner_counts_as_a_failed_attempt)
test_two_runners_never_run_the_same_job_twice = (
    runner_tests.test_two_runners_never_run_the_same_job_twice)

# The default queue's sync jobs against the sandbox.
test_sync_jobs_leave_output_notebooks_and_job_log_entries_without_the_secret = (
    sync_jobs.test_sync_jobs_leave_output_notebooks_and_job_log_entries_without_the_secret)
test_a_mapping_being_synchronized_elsewhere_postpones_the_job_without_an_attempt = (
    sync_jobs.test_a_mapping_being_synchronized_elsewhere_postpones_the_job_without_an_attempt)
runner = sync_jobs.runner
