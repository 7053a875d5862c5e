"""Several ERP companies on one state database (issue #19, item 5): each store sees only its
own company's couplings, runs, errors, jobs, watermarks, caches and leases, and a database
written before companies existed keeps its rows (they become the upgrading workspace's).

Runs on SQLite and on the private PostgreSQL server (``state_url``)."""

from __future__ import annotations

import importlib.util
import subprocess
from pathlib import Path
from types import ModuleType

import pytest
from sqlalchemy import create_engine

from nav_crm_ops.exceptions import LeaseHeldError, StateConflictError, StateStoreError
from nav_crm_ops.store import SCHEMA_VERSION, RecordFailure, StateStore
from nav_crm_ops.store.schema import utc_now

REPO = Path(__file__).resolve().parents[2]
UK = "CRONUS UK Ltd."
INTL = "CRONUS International Ltd."


def _schema_before_companies(tmp_path: Path) -> ModuleType:
    """The store schema as released before companies (commit 702005d: version 7),
    loaded as a module of its own so a test can create a database the way it was."""
    source = subprocess.run(
        ["git", "-C", str(REPO), "show", "702005d:nav_crm_ops/store/schema.py"],
        check=True, capture_output=True, text=True).stdout
    path = tmp_path / "schema_v7.py"
    path.write_text(source.replace("from ..exceptions import", "from nav_crm_ops.exceptions "
                                   "import"), encoding="utf-8")
    spec = importlib.util.spec_from_file_location("schema_v7", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _old_database(state_url: str, tmp_path: Path) -> None:
    """A version-7 database with one coupling, job, watermark, lease and run in it."""
    old = _schema_before_companies(tmp_path)
    engine = create_engine(state_url.replace("postgresql://", "postgresql+psycopg://"))
    now = utc_now()
    with engine.begin() as conn:
        assert old.migrate(conn, "test") == 7
        conn.execute(old.couplings.insert().values(
            mapping="CUSTOMER", nav_id="N1", crm_id="C1", created_at=now, updated_at=now))
        conn.execute(old.watermarks.insert().values(
            mapping="CUSTOMER", side="nav", value="2026-01-01T00:00:00Z", updated_at=now))
        conn.execute(old.jobs.insert().values(
            name="CUSTOMER", kind="sync", notebook="n.ipynb", status="Ready",
            created_at=now, updated_at=now))
        conn.execute(old.leases.insert().values(
            name="mapping:CUSTOMER", holder="someone", acquired_at=now,
            expires_at=utc_now(600)))
        conn.execute(old.runs.insert().values(
            mapping="CUSTOMER", direction="to_crm", kind="sync", started_at=now,
            status="finished"))
    engine.dispose()


def test_an_old_database_upgrades_and_its_rows_become_the_upgrading_company_s(
        state_url: str, tmp_path: Path) -> None:
    _old_database(state_url, tmp_path)
    with StateStore.open(state_url, company=INTL) as intl:
        assert intl.schema_version == SCHEMA_VERSION
        assert intl.get_coupling_by_nav("CUSTOMER", "N1") is not None
        assert intl.get_watermark("CUSTOMER", "nav") == "2026-01-01T00:00:00Z"
        assert [row["name"] for row in intl.jobs.rows()] == ["CUSTOMER"]
        assert intl.runs_frame().height == 1
        with pytest.raises(LeaseHeldError):
            intl.acquire_lease("mapping:CUSTOMER", "me", 60)
    with StateStore.open(state_url, company=UK) as uk:
        assert uk.get_coupling_by_nav("CUSTOMER", "N1") is None
        assert uk.get_watermark("CUSTOMER", "nav") is None
        assert uk.jobs.rows() == []
        assert uk.runs_frame().height == 0
        uk.acquire_lease("mapping:CUSTOMER", "me", 60)  # its own lease name
        # The same keys in the other company: the unique keys include the company.
        uk.couple("CUSTOMER", "N1", "C1")
        assert uk.get_coupling_by_crm("CUSTOMER", "C1") is not None


def test_a_new_workspace_never_takes_the_rows_of_an_old_database(
        state_url: str, tmp_path: Path) -> None:
    """``init`` of another company's workspace on a database from before companies refuses
    (its rows are the existing workspace's) and leaves it as it was; that workspace then
    upgrades it and keeps them."""
    _old_database(state_url, tmp_path)
    with pytest.raises(StateStoreError, match="run any command in that workspace first"):
        StateStore.open(state_url, company=UK, adopt_rows=False)
    with StateStore.open(state_url, company=INTL) as intl:
        assert intl.get_coupling_by_nav("CUSTOMER", "N1") is not None
    with StateStore.open(state_url, company=UK, adopt_rows=False) as uk:  # upgraded: fine
        assert uk.get_coupling_by_nav("CUSTOMER", "N1") is None


def test_two_companies_on_one_database_see_only_their_own_rows(state_url: str) -> None:
    with (StateStore.open(state_url, company=INTL) as intl,
          StateStore.open(state_url, company=UK) as uk):
        assert not uk.has_couplings("customer")
        intl.upsert_couplings("customer", [{"nav_id": "10000", "crm_id": "A1"}])
        assert not uk.has_couplings("customer")  # the other company's coupling is not ours
        uk.upsert_couplings("customer", [{"nav_id": "10000", "crm_id": "B1"}])
        assert intl.couplings_frame("customer")["crm_id"].to_list() == ["A1"]
        assert uk.couplings_frame("customer")["crm_id"].to_list() == ["B1"]
        assert uk.count_couplings("customer") == 1
        assert uk.has_couplings("CUSTOMER") and not uk.has_couplings("contact")
        with pytest.raises(StateConflictError):
            intl.upsert_couplings("customer", [{"nav_id": "20000", "crm_id": "A1"}])

        run = intl.start_run("customer", "to_crm")
        intl.record_outcomes("customer", "to_crm", run_id=run, skip_after=1,
                             failed=[RecordFailure("10000", "Name too long")])
        intl.add_record_error("customer", "to_crm", "Name too long", run_id=run,
                              source_id="10000")
        intl.finish_run(run, "failed", {"failed": 1})
        assert uk.runs_frame().height == 0 and intl.runs_frame().height == 1
        assert uk.record_errors_frame().height == 0
        assert uk.error_groups().height == 0
        assert uk.record_status_frame().height == 0
        assert "company" not in intl.runs_frame().columns
        with pytest.raises(Exception, match="does not exist"):
            uk.finish_run(run, "finished")  # not its run
        assert uk.unskip("customer") == 0 and intl.unskip("customer") == 1

        intl.set_watermark("customer", "crm", "2026-01-01T00:00:00Z")
        assert uk.get_watermark("customer", "crm") is None
        uk.put_cached_map("paymentterms", {"30 DAYS": "a"})
        intl.put_cached_map("paymentterms", {"14 DAYS": "b"})
        assert uk.cached_map("paymentterms")[0] == {"30 DAYS": "a"}  # type: ignore[index]
        uk.journal_ops(None, "customer", [{"op_id": "same", "kind": "create", "target": "crm"}])
        intl.journal_ops(None, "customer", [{"op_id": "same", "kind": "create", "target": "crm"}])
        assert uk.pending_ops_frame().height == 1 and intl.pending_ops_frame().height == 1

        intl.acquire_lease("mapping:CUSTOMER", "intl runner", 60)
        uk.acquire_lease("mapping:CUSTOMER", "uk runner", 60)  # runs in parallel
        with pytest.raises(LeaseHeldError):
            intl.acquire_lease("mapping:CUSTOMER", "another intl runner", 60)


def test_a_workspace_config_opens_the_store_for_its_company(tmp_path: Path) -> None:
    """``config.state_url`` names the workspace's ERP company: every opener of the config's
    URL (the engine, the job runner, ``jobs list``) gets that company's store."""
    from nav_crm_ops.config import StateUrl

    url = StateUrl(f"sqlite:///{tmp_path / 'state.db'}", company=UK)
    with StateStore.open(url) as store:
        assert store.company == UK
    with StateStore.open(url, company="") as store:
        assert store.company == ""
