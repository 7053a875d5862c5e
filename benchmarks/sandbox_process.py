"""Run the sandbox as its own process (``nav-crm-ops sandbox --ready-file``) for a scenario.

Why a separate process: the real services are remote, so the client side of a sync should not
share a GIL with the server; the two cores are then shared as they would be by two programs.
The benchmark chooses the sandbox's client secret (written to ``sandbox.json`` in the data
folder before start, as the sandbox keeps its identity there) and hands it to the workspace
through the environment variable the workspace config names, like any user would.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from nav_crm_ops.config import WorkspaceConfig
from nav_crm_ops.demo import SANDBOX_SECRET_ENV, sandbox_workspace_config
from nav_crm_ops.sandbox import SandboxInfo
from nav_crm_ops.secrets import Secret

__all__ = ["RunningSandbox", "running_sandbox"]

START_TIMEOUT_S = 1800.0


@dataclass(frozen=True)
class RunningSandbox:
    """A sandbox process: its info (with the secret), pid, data folder and startup time."""

    info: SandboxInfo
    pid: int
    data_dir: Path
    startup_s: float

    def peak_rss_mb(self) -> float:
        """The server process's memory high-water mark so far (VmHWM)."""
        try:
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        except OSError:
            pass
        return float("nan")

    def cpu_seconds(self) -> float:
        """CPU time (user + system) the server process has used so far."""
        try:
            fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return float("nan")
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def workspace_config(self, root: Path) -> WorkspaceConfig:
        """A workspace config for this sandbox; sets the secret's environment variable."""
        os.environ[SANDBOX_SECRET_ENV] = self.info.client_secret.reveal()
        return sandbox_workspace_config(self.info, root)


def _command() -> list[str]:
    script = Path(sys.executable).with_name("nav-crm-ops")
    return [str(script)] if script.exists() else [sys.executable, "-m", "nav_crm_ops.cli"]


@contextmanager
def running_sandbox(data_dir: Path, seed: str, *, reset: bool = True, port: int = 0
                    ) -> Iterator[RunningSandbox]:
    """Start ``nav-crm-ops sandbox`` seeded with ``seed`` on a free port; stop it on exit.
    ``reset=False`` serves the data a previous process left in ``data_dir`` (a scenario whose
    jobs run in separate processes, so each job's peak memory is its own); ``port`` (0: any
    free one) keeps its address, as a real service's stays, so what a workspace caches per
    service URL (the integration user's id) still applies."""
    data_dir.mkdir(parents=True, exist_ok=True)
    identity = data_dir / "sandbox.json"
    if not reset and identity.exists():
        secret = str(json.loads(identity.read_text())["client_secret"])
    else:
        secret = secrets.token_hex(32)
        identity.write_text(json.dumps({"client_secret": secret}))
    ready = data_dir / "ready.json"
    ready.unlink(missing_ok=True)
    log = (data_dir / "sandbox.log").open("ab")
    started = time.monotonic()
    process = subprocess.Popen(
        [*_command(), "sandbox", "--port", str(port), "--data", str(data_dir), "--seed", seed,
         *(["--reset"] if reset else []), "--ready-file", str(ready)], stdout=log, stderr=log)
    try:
        while not ready.exists():
            if process.poll() is not None:
                raise RuntimeError(f"the sandbox exited with code {process.returncode} before "
                                   f"it was ready; see {data_dir / 'sandbox.log'}")
            if time.monotonic() - started > START_TIMEOUT_S:
                raise RuntimeError(f"the sandbox was not ready within {START_TIMEOUT_S:.0f} s")
            time.sleep(0.1)
        described = json.loads(ready.read_text())
        info = SandboxInfo(
            base_url=described["base_url"], tenant=described["tenant"],
            environment=described["environment"], company_id=described["company_id"],
            company_name=described["company_name"], client_id=described["client_id"],
            client_secret=Secret(secret))
        yield RunningSandbox(info, process.pid, data_dir, time.monotonic() - started)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        log.close()
