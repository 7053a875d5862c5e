"""``nav-crm-ops init --state-url``: choosing the state database, unusable URLs refused with
exit code 2 before anything is written, and a PostgreSQL password kept out of the config
file and every message (it lives in the environment variable the config names)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from nav_crm_ops.config import configured_secrets, load_config
from nav_crm_ops.store import StateStore
from tests.pg import PgServer

CliRunner = Callable[..., tuple[int, str, str]]  # the `cli` fixture of tests/conftest.py
PASSWORD = "pw-Zq81-never-shown"


def test_init_with_a_postgresql_state_url_and_a_password_variable(
        pg_server: PgServer, tmp_path: Path, cli: CliRunner,
        monkeypatch: pytest.MonkeyPatch) -> None:
    database = pg_server.create_database().rsplit("/", 1)[1]
    with psycopg.connect(f"host=127.0.0.1 port={pg_server.port} user=postgres "
                         "dbname=postgres", autocommit=True) as conn:
        conn.execute(f"CREATE ROLE sync_{database} LOGIN PASSWORD '{PASSWORD}'")
        conn.execute(f'ALTER DATABASE "{database}" OWNER TO sync_{database}')
    monkeypatch.setenv("NAV_CRM_OPS_TEST_STATE_PASSWORD", PASSWORD)
    root = tmp_path / "ws"
    bare = f"postgresql://sync_{database}@127.0.0.1:{pg_server.port}/{database}"
    code, out, err = cli("init", "--dir", str(root), "--state-url", bare,
                         "--state-password-env", "NAV_CRM_OPS_TEST_STATE_PASSWORD")
    assert code == 0, err
    assert "schema version" in out and "postgresql+psycopg://" in out
    text = (root / "nav_crm_ops.toml").read_text()
    assert f'state_url = "postgresql+psycopg://sync_{database}@127.0.0.1' in text
    assert 'state_password_env = "NAV_CRM_OPS_TEST_STATE_PASSWORD"' in text
    assert PASSWORD not in out + err + text
    config = load_config(root)
    with StateStore.open(config.state_url) as store:
        assert PASSWORD not in store.where and PASSWORD not in repr(store)
        assert store.where.startswith(f"postgresql+psycopg://sync_{database}:***@")
    assert ("workspace.state_password_env (NAV_CRM_OPS_TEST_STATE_PASSWORD)",
            PASSWORD) in configured_secrets(config)


@pytest.mark.parametrize(("url", "says"), [
    ("mysql+pymysql://sync@db/navcrm", "SQLite or PostgreSQL"),
    ("postgresql+psycopg2://sync@db/navcrm", "use postgresql+psycopg://"),
    (f"postgresql+psycopg://sync:{PASSWORD}@db/navcrm", "contains a password"),
    (f"::{PASSWORD}::", "not a database URL"),
    ("postgresql+psycopg://sync@127.0.0.1:9/navcrm", "is unavailable"),
])
def test_init_refuses_an_unusable_state_url_with_exit_2_and_writes_nothing(
        url: str, says: str, tmp_path: Path, cli: CliRunner) -> None:
    code, out, err = cli("init", "--dir", str(tmp_path / "ws"), "--state-url", url)
    assert code == 2 and says in err, (code, err)
    assert PASSWORD not in out + err
    assert not (tmp_path / "ws" / "nav_crm_ops.toml").exists()


def test_a_password_variable_that_is_not_set_is_named(
        tmp_path: Path, cli: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NAV_CRM_OPS_TEST_UNSET", raising=False)
    code, _, err = cli("init", "--dir", str(tmp_path / "ws"), "--state-url",
                       "postgresql+psycopg://sync@127.0.0.1:9/navcrm",
                       "--state-password-env", "NAV_CRM_OPS_TEST_UNSET")
    assert code == 2 and "NAV_CRM_OPS_TEST_UNSET, which is not set" in err
