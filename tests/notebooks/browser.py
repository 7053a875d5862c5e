"""What the browser tests of the dashboards share: Debian's Chromium and how to start it, and
Voilà serving notebooks/ as ``nav-crm-ops ui`` does, on a free loopback port."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from nav_crm_ops.widgets.dashboards import DashboardAuth, dashboard_environment, voila_command

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
TIMEOUT_MS = 90_000


@dataclass(frozen=True)
class App:
    """The dashboards as served: base address and the login token."""

    url: str
    token: str


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def serving_voila(workspace_dir: Path, folder: Path, *, auth: DashboardAuth | None = None,
                  ready_path: str = "/login") -> Iterator[str]:
    """Voilà serving notebooks/ with ``workspace_dir`` as the notebooks' default, behind the
    login when ``auth`` is given (else without one, as ``no_auth``); yields its address once
    ``ready_path`` answers. Its log is ``folder/voila.log``."""
    port = free_port()
    log_path = folder / "voila.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            voila_command(ROOT / "notebooks", port=port, no_auth=auth is None),
            env=dashboard_environment(workspace_dir, auth=auth), stdout=log,
            stderr=subprocess.STDOUT, cwd=folder)
        url = f"http://127.0.0.1:{port}"
        try:
            _wait_until_ready(process, f"{url}{ready_path}", log_path)
            yield url
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()


def _wait_until_ready(process: subprocess.Popen[bytes], address: str, log_path: Path) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(address, timeout=2).status_code < 500:
                return
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"voila did not start: {log_path.read_text()}")
        time.sleep(0.3)
