"""Shared fixtures: a real sandbox on a free loopback port, backed by a real SQLite file."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from nav_crm_ops import Workspace
from nav_crm_ops.config import (
    AuthConfig,
    BusinessCentralConfig,
    DataverseConfig,
    WorkspaceConfig,
    write_config,
)
from nav_crm_ops.connectors.dataverse import Dataverse
from nav_crm_ops.demo import (
    SANDBOX_NAV_KEY_ENV,
    SANDBOX_SECRET_ENV,
    nav_sandbox_workspace_config,
    sandbox_workspace_config,
)
from nav_crm_ops.sandbox import Sandbox
from nav_crm_ops.sandbox.nav import nav_credentials
from tests.pg import MISSING as PG_MISSING
from tests.pg import REQUIRE_ENV as PG_REQUIRE_ENV
from tests.pg import PgServer, find_bin
from tests.pg import driver_missing as pg_driver_missing


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    """One CRONUS sandbox for the session; tests that change data use ``fresh_sandbox``."""
    data_dir: Path = tmp_path_factory.mktemp("sandbox")
    with Sandbox(data_dir=data_dir, seed="cronus", port=0) as sb:
        yield sb


@pytest.fixture
def fresh_sandbox(sandbox: Sandbox) -> Sandbox:
    """The session sandbox reset to the CRONUS seed, limits and faults off."""
    sandbox.set_limits(False)
    sandbox.set_faults(None)
    sandbox.set_token_lifetime(3600)
    sandbox.reset("cronus")
    return sandbox


@pytest.fixture
def workspace_dir(fresh_sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A workspace folder (``nav_crm_ops.toml``, state in ``state.db``) for the fresh sandbox;
    the client secret is only in the environment variable the config names."""
    monkeypatch.setenv(SANDBOX_SECRET_ENV, fresh_sandbox.info.client_secret.reveal())
    root = tmp_path / "workspace"
    write_config(sandbox_workspace_config(fresh_sandbox.info, root), root)
    return root


@pytest.fixture
def nav_workspace(fresh_sandbox: Sandbox, tmp_path: Path,
                  monkeypatch: pytest.MonkeyPatch) -> Path:
    """A ``profile = "nav2018"`` workspace folder on the fresh sandbox's NAV 2018 page web
    services (Basic auth with the sandbox's web service access key, in the environment)."""
    info = fresh_sandbox.info
    credentials = nav_credentials(info)
    monkeypatch.setenv(SANDBOX_SECRET_ENV, info.client_secret.reveal())
    monkeypatch.setenv(SANDBOX_NAV_KEY_ENV, credentials.access_key.reveal())
    root = tmp_path / "nav-ws"
    write_config(nav_sandbox_workspace_config(info, credentials.user, root), root)
    return root


CliRunner = Callable[..., tuple[int, str, str]]
"""``cli(*argv)``: run ``nav-crm-ops`` in-process; exit code, standard output, standard error."""


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> CliRunner:
    """The command line as a person runs it, exit code included (see :data:`CliRunner`)."""
    from nav_crm_ops.cli import main

    def run(*argv: str) -> tuple[int, str, str]:
        try:
            main(list(argv))
            code = 0
        except SystemExit as stop:
            code = int(stop.code or 0)
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.fixture
def crm_person() -> Callable[[Workspace], Dataverse]:
    """A Dataverse connection of the workspace acting as a CRONUS salesperson
    (``MSCRMCallerID``): tests that play a person editing CRM use it, because the engine
    ignores changes made under its own identity."""

    def connect(ws: Workspace) -> Dataverse:
        people = ws.connections.dataverse.read(
            "systemusers", select=["systemuserid"],
            filter="accessmode ne 4 and isdisabled eq false", top=1)
        return ws.connections.dataverse.acting_as(str(people["systemuserid"][0]))

    return connect


@pytest.fixture
def no_solution_sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    """A CRONUS sandbox of its own whose Dataverse lacks the integration solution (the
    ``nav_`` tables and columns), as ``nav-crm-ops sandbox --no-crm-solution`` starts it;
    its data directory is ``tmp_path / "bare"``."""
    with Sandbox(data_dir=tmp_path / "bare", seed="cronus", port=0,
                 crm_solution=False) as sb:
        yield sb


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """A private PostgreSQL server for the session (tests/pg.py). Missing binaries or driver
    fail with what to run (``make postgres``); they skip only when
    ``NAV_CRM_OPS_REQUIRE_POSTGRES`` is unset, i.e. outside ``make test``."""
    problem = None if find_bin("initdb") and find_bin("pg_ctl") else PG_MISSING
    problem = problem or pg_driver_missing()
    if problem is not None:
        if os.environ.get(PG_REQUIRE_ENV) == "1":
            pytest.fail(problem)
        pytest.skip(problem)
    server = PgServer.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def state_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of a new, empty state database, once on SQLite and once on PostgreSQL (a new
    database of the session's private server per test)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state.db'}"
    server: PgServer = request.getfixturevalue("pg_server")
    return server.create_database()


@pytest.fixture
def offline_workspace(tmp_path: Path) -> Path:
    """A workspace folder with nav_crm_ops.toml and state in state.db; nothing listens at
    its URLs, so only jobs that never connect can run here."""
    auth = AuthConfig(authority="http://127.0.0.1:9/tenant", client_id="app",
                      client_secret_env="NAV_CRM_OPS_TEST_UNUSED_SECRET",
                      scope="http://127.0.0.1:9/crm/.default")
    config = WorkspaceConfig(
        business_central=BusinessCentralConfig(
            api_url="http://127.0.0.1:9/bc/api/v2.0/",
            company_id="00000000-0000-4000-8000-0000000000c0", auth=auth),
        dataverse=DataverseConfig(url="http://127.0.0.1:9/crm/api/data/v9.2/", auth=auth))
    root = tmp_path / "workspace"
    write_config(config, root)
    return root
