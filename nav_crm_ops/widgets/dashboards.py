"""Serve the front-end notebooks as Voilà dashboards (``nav-crm-ops ui`` / ``make dashboards``).

Why Voilà: people who never open JupyterLab still get the four panels as web pages; Voilà runs
each notebook in its own kernel and shows only the widgets and outputs. It is served as an
application (:mod:`.landing_server`): a start page links the dashboards, and nothing else in the
folder (no file tree, no job notebooks) can be opened. Tracebacks are shown
(``show_tracebacks``) so a failing dashboard is never a blank page. The notebooks open the workspace
named by ``$NAV_CRM_OPS_WORKSPACE`` (or the sandbox when unset), so no secret is passed here.

Access: a dashboard runs syncs with the workspace's service credentials, so whoever reaches the
port must log in. jupyter_server's own identity provider does it (the one Voilà uses): a token
(random and printed once at start unless ``$NAV_CRM_OPS_UI_TOKEN`` / ``--token`` sets one) or a
hashed password (``$NAV_CRM_OPS_UI_PASSWORD_HASH``, made with ``jupyter_server.auth.passwd``).
Serving without a login needs ``--no-auth`` *and* a loopback address. The token and hash reach
the Voilà process through its environment (never its command line, which ``ps`` shows), and
:mod:`.voila_server` removes them before any kernel starts.
"""

from __future__ import annotations

import importlib.util
import ipaddress
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ..exceptions import ConfigError, NavCrmOpsError
from .session import WORKSPACE_ENV

__all__ = [
    "DEFAULT_IP",
    "DEFAULT_PORT",
    "NO_AUTH_ARG",
    "PASSWORD_HASH_ENV",
    "TOKEN_ENV",
    "DashboardAuth",
    "dashboard_auth",
    "dashboard_environment",
    "dashboard_url",
    "is_loopback",
    "serve_dashboards",
    "start_message",
    "voila_command",
]

DEFAULT_PORT = 8866
DEFAULT_IP = "127.0.0.1"
TOKEN_ENV = "NAV_CRM_OPS_UI_TOKEN"
PASSWORD_HASH_ENV = "NAV_CRM_OPS_UI_PASSWORD_HASH"
NO_AUTH_ARG = "--no-auth"
PASSWD_HINT = '.venv/bin/python -c "from jupyter_server.auth import passwd; print(passwd())"'


@dataclass(frozen=True)
class DashboardAuth:
    """How people log in to the dashboards: a token, a hashed password, both, or nothing.

    ``generated`` says the token was made here (so it is printed in the start line; a token
    the user set is not echoed back). ``repr`` hides both secrets.
    """

    token: str = ""
    hashed_password: str = ""
    generated: bool = False

    @property
    def enabled(self) -> bool:
        return bool(self.token or self.hashed_password)

    @classmethod
    def generate(cls) -> DashboardAuth:
        """A fresh random token (48 hex digits, as Jupyter makes them)."""
        return cls(token=secrets.token_hex(24), generated=True)

    def __repr__(self) -> str:
        return (f"DashboardAuth(token={'***' if self.token else ''!r}, "
                f"hashed_password={'***' if self.hashed_password else ''!r}, "
                f"generated={self.generated})")


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1); False for the rest,
    including ``0.0.0.0``, ``""`` (every interface) and host names other than localhost."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def dashboard_auth(*, ip: str = DEFAULT_IP, token: str | None = None,
                   hashed_password: str | None = None, no_auth: bool = False) -> DashboardAuth:
    """Decide the login for a server on ``ip``; raises :class:`ConfigError` (exit code 2) when
    the request would serve the dashboards unprotected off loopback or is malformed."""
    if no_auth:
        if not is_loopback(ip):
            raise ConfigError(
                f"refusing to serve the dashboards on {ip} without authentication: --no-auth "
                "is only accepted with a loopback --ip (127.0.0.1, ::1 or localhost). Drop "
                f"--no-auth to get a random token printed at start, or set {TOKEN_ENV} or "
                f"{PASSWORD_HASH_ENV}")
        return DashboardAuth()
    if token is not None and not token.strip():
        raise ConfigError(f"the dashboard token is empty; set a token in {TOKEN_ENV} (or "
                          "--token), leave both unset for a random one, or use --no-auth on "
                          "loopback to serve without a login")
    password = (hashed_password or "").strip()
    if password and ":" not in password:
        raise ConfigError(f"{PASSWORD_HASH_ENV} must hold a password hash such as "
                          f"'argon2:...', not the password itself; make one with {PASSWD_HINT}")
    if token:
        return DashboardAuth(token=token.strip(), hashed_password=password)
    if password:
        return DashboardAuth(hashed_password=password)
    return DashboardAuth.generate()


def _display_host(ip: str) -> str:
    if ip in ("", "0.0.0.0", "::"):
        return socket.gethostname()
    return f"[{ip}]" if ":" in ip else ip


def dashboard_url(ip: str, port: int, auth: DashboardAuth | None = None) -> str:
    """The address to open; carries ``?token=`` only for a token generated here."""
    url = f"http://{_display_host(ip)}:{port}/"
    if auth is not None and auth.generated:
        url += f"?token={auth.token}"
    return url


def start_message(ip: str, port: int, auth: DashboardAuth) -> str:
    """The one line ``nav-crm-ops ui`` prints at start (the only place a generated token shows)."""
    url = dashboard_url(ip, port, auth)
    if auth.generated:
        how = "open this address (it holds the access token; keep it private)"
    elif auth.token and auth.hashed_password:
        how = f"log in with the token from {TOKEN_ENV}/--token or the configured password"
    elif auth.token:
        how = f"log in with the token set in {TOKEN_ENV}/--token (login page or ?token=)"
    elif auth.hashed_password:
        how = "log in with the configured password"
    else:
        how = ("NO LOGIN (--no-auth): anyone who can reach this port on this machine can run "
               "syncs")
    return f"dashboards on {url} - {how} (Ctrl+C to stop)"


def voila_command(notebooks: str | os.PathLike[str], *, port: int = DEFAULT_PORT,
                  ip: str = DEFAULT_IP, open_browser: bool = False,
                  no_auth: bool = False) -> list[str]:
    """The command line that serves the dashboards of ``notebooks`` (the start page of
    :mod:`.landing` lists them; other files there are not served).

    It runs :mod:`nav_crm_ops.widgets.voila_server` (Voilà behind jupyter_server's login), which
    reads the token or password hash from the environment (:func:`dashboard_environment`) and
    refuses to start without one unless ``no_auth``.
    """
    if importlib.util.find_spec("voila") is None:
        raise NavCrmOpsError("Voilà is not installed in this environment; install it with "
                             "`pip install voila` to serve the dashboards, or open the "
                             "notebooks in JupyterLab (`make lab`)")
    folder = Path(notebooks)
    if not folder.is_dir():
        raise NavCrmOpsError(f"notebook folder {folder} does not exist; pass the folder that "
                             "holds preview_changes.ipynb and the other front ends")
    command = [sys.executable, "-m", "nav_crm_ops.widgets.voila_server", f"--port={port}",
               f"--Voila.ip={ip}", "--show_tracebacks=True", str(folder)]
    if not open_browser:
        command.insert(3, "--no-browser")
    if no_auth:
        command.insert(3, NO_AUTH_ARG)
    return command


def dashboard_environment(workspace: str | os.PathLike[str] | None,
                          base: Mapping[str, str] | None = None,
                          auth: DashboardAuth | None = None) -> dict[str, str]:
    """The environment for the Voilà process: ``$NAV_CRM_OPS_WORKSPACE`` set when given, and
    the token / password hash of ``auth`` (any inherited ones removed first)."""
    env = dict(os.environ if base is None else base)
    env.pop(TOKEN_ENV, None)
    env.pop(PASSWORD_HASH_ENV, None)
    if workspace is not None:
        env[WORKSPACE_ENV] = str(Path(workspace).resolve())
    if auth is not None and auth.token:
        env[TOKEN_ENV] = auth.token
    if auth is not None and auth.hashed_password:
        env[PASSWORD_HASH_ENV] = auth.hashed_password
    return env


def serve_dashboards(notebooks: str | os.PathLike[str] = "notebooks", *,
                     workspace: str | os.PathLike[str] | None = None,
                     port: int = DEFAULT_PORT, ip: str = DEFAULT_IP,
                     auth: DashboardAuth | None = None, open_browser: bool = False) -> int:
    """Run Voilà in the foreground until it stops (Ctrl+C); returns its exit code.

    ``auth`` None means a fresh random token (not shown: callers that want it printed make it
    with :meth:`DashboardAuth.generate` and pass it). ``DashboardAuth()`` serves without a
    login and is refused off loopback.
    """
    auth = DashboardAuth.generate() if auth is None else auth
    if not auth.enabled:
        dashboard_auth(ip=ip, no_auth=True)  # raises off loopback
    command = voila_command(notebooks, port=port, ip=ip, open_browser=open_browser,
                            no_auth=not auth.enabled)
    return _run_foreground(command, dashboard_environment(workspace, auth=auth))


def _run_foreground(command: list[str], env: dict[str, str]) -> int:
    """Run ``command`` until it exits; SIGTERM to this process is passed on to it, and Ctrl+C
    (which the child gets too, same process group) waits for it to stop and returns 0."""
    process = subprocess.Popen(command, env=env)
    in_main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, lambda *_: process.terminate()) if in_main else None
    try:
        return process.wait()
    except KeyboardInterrupt:
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        return 0
    finally:
        if in_main:
            signal.signal(signal.SIGTERM, previous)
