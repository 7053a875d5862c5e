"""A private PostgreSQL server for the tests: Debian's ``postgresql`` binaries (``make postgres``
installs them), ``initdb`` into a temp dir, ``pg_ctl start`` on a free loopback port with its
socket in that dir — no system service, nothing shared with other test runs.

Why a helper of its own: the state-store, engine and jobs tests run against SQLite and
PostgreSQL alike (the ``state_url`` fixture in tests/conftest.py); starting, creating databases
and stopping belong in one place. As root (this container), the server runs as the ``postgres``
user, because PostgreSQL refuses to run as root.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

REQUIRE_ENV = "NAV_CRM_OPS_REQUIRE_POSTGRES"
MISSING = ("PostgreSQL's initdb/pg_ctl were not found: run `make postgres` (installs Debian's "
           "postgresql with apt-get), or `make test`, which does that first")


def find_bin(name: str) -> str | None:
    """Path of a PostgreSQL server program (PATH first, then Debian's versioned folder)."""
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


def driver_missing() -> str | None:
    """Why PostgreSQL cannot be used from Python here, or None."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "the psycopg driver is missing: pip install -e '.[dev]' (or make test)"
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class PgServer:
    """One running server; :meth:`create_database` gives each test module its own database."""

    root: Path
    port: int
    as_postgres: bool

    @classmethod
    def start(cls) -> PgServer:
        """initdb + pg_ctl start in a new temp dir of its own (not under pytest's root-only
        tmp folders: the ``postgres`` user must reach it)."""
        initdb, pg_ctl = find_bin("initdb"), find_bin("pg_ctl")
        if initdb is None or pg_ctl is None:
            raise RuntimeError(MISSING)
        root = Path(tempfile.mkdtemp(prefix="nav-crm-ops-pg-"))
        server = cls(root, _free_port(), os.geteuid() == 0)
        if server.as_postgres:
            shutil.chown(root, "postgres", "postgres")
        data = root / "data"
        server._run([initdb, "-D", str(data), "-U", "postgres", "-A", "trust",
                     "-E", "UTF8", "--no-sync"])
        options = (f"-p {server.port} -k {root} -c listen_addresses=127.0.0.1 "
                   "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
                   "-c max_connections=200")
        server._run([pg_ctl, "-D", str(data), "-o", options, "-l", str(root / "log"),
                     "-w", "-t", "60", "start"])
        return server

    def _run(self, argv: list[str]) -> None:
        if self.as_postgres:
            argv = ["runuser", "-u", "postgres", "--", *argv]
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
        if done.returncode:
            raise RuntimeError(f"{' '.join(argv)} failed ({done.returncode}): "
                               f"{done.stdout}{done.stderr}")

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, prefix: str = "t") -> str:
        """A new empty database; its SQLAlchemy URL."""
        import psycopg

        name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres",
                             autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def log_text(self) -> str:
        path = self.root / "log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        """Stop the server and remove its folder."""
        pg_ctl = find_bin("pg_ctl")
        try:
            if pg_ctl is not None:
                self._run([pg_ctl, "-D", str(self.root / "data"), "-m", "immediate", "-w",
                           "stop"])
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


def use_state_database(workspace: Path, url: str) -> Path:
    """Point the workspace folder's ``nav_crm_ops.toml`` at the state database ``url`` (as
    ``nav-crm-ops init --state-url`` writes it); returns the folder."""
    from nav_crm_ops.config import load_config, write_config

    config = load_config(workspace)
    settings = config.workspace.model_copy(update={"state_url": url})
    write_config(config.model_copy(update={"workspace": settings}), workspace)
    return workspace
