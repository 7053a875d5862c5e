"""``nav-crm-ops ui``: the Voilà command line, its environment and the login in front of it.

The server tests start the real command (``python -m nav_crm_ops.cli ui``) on a free port and
send real requests: without the token the dashboard page, the kernel API and the kernel
websocket are refused; with it (or the password, or ``--no-auth`` on loopback) they work. The
browser walk through the dashboards after logging in is tests/notebooks/test_voila_browser.py.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import nbformat
import pytest
from tornado import httpclient, websocket

from nav_crm_ops.exceptions import ConfigError, NavCrmOpsError
from nav_crm_ops.widgets import voila_server
from nav_crm_ops.widgets.dashboards import (
    NO_AUTH_ARG,
    PASSWORD_HASH_ENV,
    TOKEN_ENV,
    DashboardAuth,
    dashboard_auth,
    dashboard_environment,
    dashboard_url,
    is_loopback,
    start_message,
    voila_command,
)
from nav_crm_ops.widgets.session import WORKSPACE_ENV

CliRunner = Callable[..., tuple[int, str, str]]  # the `cli` fixture of tests/conftest.py

pytest.importorskip("voila", reason="voila is not installed")

START_TIMEOUT = 60
KERNEL_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


# --- the command line and environment -------------------------------------------------------

def test_command_serves_the_folder_on_loopback_behind_the_login(tmp_path: Path) -> None:
    command = voila_command(tmp_path, port=9001)
    assert command[:3] == [sys.executable, "-m", "nav_crm_ops.widgets.voila_server"]
    assert "--no-browser" in command and "--port=9001" in command
    assert "--Voila.ip=127.0.0.1" in command and "--show_tracebacks=True" in command
    assert command[-1] == str(tmp_path) and NO_AUTH_ARG not in command
    assert "--no-browser" not in voila_command(tmp_path, open_browser=True)
    assert voila_command(tmp_path, no_auth=True)[3] == NO_AUTH_ARG
    assert not any("token" in part.lower() for part in command)


def test_missing_folder_is_explained(tmp_path: Path) -> None:
    with pytest.raises(NavCrmOpsError, match="does not exist"):
        voila_command(tmp_path / "missing")


def test_environment_names_the_workspace_and_carries_only_the_chosen_login(
        tmp_path: Path) -> None:
    env = dashboard_environment(tmp_path, base={"PATH": "/usr/bin", TOKEN_ENV: "inherited"})
    assert env == {"PATH": "/usr/bin", WORKSPACE_ENV: str(tmp_path.resolve())}
    assert dashboard_environment(None, base={"A": "1"}) == {"A": "1"}
    auth = DashboardAuth(token="t0k", hashed_password="argon2:xyz")
    assert dashboard_environment(None, base={}, auth=auth) == {
        TOKEN_ENV: "t0k", PASSWORD_HASH_ENV: "argon2:xyz"}
    assert dashboard_environment(None, base={PASSWORD_HASH_ENV: "sha1:a:b"},
                                 auth=DashboardAuth()) == {}


@pytest.mark.parametrize(("host", "loopback"), [
    ("127.0.0.1", True), ("127.8.9.10", True), ("::1", True), ("[::1]", True),
    ("localhost", True), ("0.0.0.0", False), ("", False), ("::", False),
    ("192.168.1.20", False), ("dashboards.example.com", False)])
def test_loopback_addresses(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_login_defaults_to_a_random_token_printed_once() -> None:
    first, second = dashboard_auth(), dashboard_auth(ip="0.0.0.0")
    assert first.generated and len(first.token) == 48 and first.token != second.token
    assert first.token not in repr(first)
    line = start_message("127.0.0.1", 8866, first)
    assert f"http://127.0.0.1:8866/?token={first.token}" in line


def test_login_set_by_the_user_is_not_echoed() -> None:
    auth = dashboard_auth(ip="0.0.0.0", token=" chosen-token ")
    assert auth == DashboardAuth(token="chosen-token") and not auth.generated
    assert "chosen-token" not in start_message("0.0.0.0", 8866, auth)
    assert dashboard_url("::1", 80, auth) == "http://[::1]:80/"
    password = dashboard_auth(hashed_password="argon2:$argon2id$v=19$abc")
    assert password.enabled and not password.token
    assert "password" in start_message("127.0.0.1", 8866, password)
    assert "argon2" not in start_message("127.0.0.1", 8866, password)


def test_login_settings_that_are_refused() -> None:
    with pytest.raises(ConfigError, match="only accepted with a loopback --ip"):
        dashboard_auth(ip="0.0.0.0", no_auth=True)
    with pytest.raises(ConfigError, match="token is empty"):
        dashboard_auth(token="  ")
    with pytest.raises(ConfigError, match="not the password itself"):
        dashboard_auth(hashed_password="hunter2")
    assert not dashboard_auth(ip="localhost", no_auth=True, token="ignored").enabled


def test_server_process_refuses_to_start_without_a_login(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    monkeypatch.delenv(PASSWORD_HASH_ENV, raising=False)
    assert voila_server.main(["--port=1", "notebooks"]) == voila_server.EXIT_NO_AUTH
    assert "without authentication" in capsys.readouterr().err


def test_log_scrubber_hides_tokens_in_addresses_and_the_secret_itself() -> None:
    scrubber = voila_server.SecretScrubber(["s3cr3t-value", ""])
    record = logging.LogRecord("tornado.general", logging.WARNING, __file__, 1,
                               "%d GET %s (%s)", (404, "/x?a=1&token=abc&b=2", "s3cr3t-value"),
                               None)
    assert scrubber.filter(record)
    assert record.getMessage() == "404 GET /x?a=1&token=[secret]&b=2 ([secret])"


# --- the command line refusing / accepting ----------------------------------------------------


@pytest.mark.parametrize("ip", ["0.0.0.0", "192.168.1.20", "::"])
def test_cli_refuses_no_auth_off_loopback_with_exit_2(
        ip: str, cli: CliRunner) -> None:
    code, out, err = cli("ui", "--ip", ip, "--no-auth")
    assert code == 2 and out == ""
    assert f"refusing to serve the dashboards on {ip} without authentication" in err
    assert "Drop --no-auth" in err and TOKEN_ENV in err


def test_cli_refuses_an_empty_token_and_a_plain_password(
        cli: CliRunner) -> None:
    code, _, err = cli("ui", "--ip", "0.0.0.0", "--token", "")
    assert code == 2 and "token is empty" in err
    code, _, err = cli("ui", "--password-hash", "hunter2")
    assert code == 2 and "jupyter_server.auth import passwd" in err


# --- the real server ------------------------------------------------------------------------

@dataclass
class Server:
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def start_line(self) -> str:
        return next(line for line in self.log.read_text().splitlines()
                    if line.startswith("dashboards on "))

    def token(self) -> str:
        found = re.search(r"\?token=([0-9a-f]+)", self.start_line())
        assert found is not None, self.start_line()
        return found.group(1)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def notebooks(tmp_path: Path) -> Path:
    """A folder the ui accepts, holding a one-cell notebook (no sandbox needed)."""
    folder = tmp_path / "notebooks"
    folder.mkdir()
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                       "language": "python"}
    notebook.cells = [nbformat.v4.new_code_cell("print('dashboard ' + 'body')")]
    nbformat.write(notebook, folder / "preview_changes.ipynb")
    return folder


def wait_until_serving(server: Server) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        try:
            httpx.get(f"{server.url}/login", timeout=2)
            return
        except httpx.TransportError:
            pass
        if server.process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"nav-crm-ops ui did not start: {server.log.read_text()}")
        time.sleep(0.3)


Start = Callable[..., Server]


@pytest.fixture
def start_ui(notebooks: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Start]:
    """Start ``nav-crm-ops ui`` (extra arguments and environment given), stop it afterwards."""
    started: list[Server] = []
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    monkeypatch.delenv(PASSWORD_HASH_ENV, raising=False)

    def start(*args: str, env: dict[str, str] | None = None) -> Server:
        port = free_port()
        log = tmp_path / f"ui-{port}.log"
        command = [sys.executable, "-m", "nav_crm_ops.cli", "ui", "--port", str(port),
                   "--notebooks", str(notebooks), *args]
        with log.open("wb") as out:
            process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT,
                                       cwd=tmp_path, env={**os.environ, **(env or {})})
        server = Server(f"http://127.0.0.1:{port}", process, log)
        started.append(server)
        wait_until_serving(server)
        return server

    yield start
    for server in started:
        server.process.terminate()  # nav-crm-ops passes SIGTERM on to Voilà
        try:
            server.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()


def websocket_status(url: str, headers: dict[str, str] | None = None) -> int:
    """101 when the websocket opens, else the HTTP status the handshake was refused with."""
    async def connect() -> int:
        request = httpclient.HTTPRequest(url, headers=headers or {})
        try:
            connection = await websocket.websocket_connect(request)
        except httpclient.HTTPClientError as refused:
            return refused.code
        connection.close()
        return 101
    return asyncio.run(connect())


def is_login_redirect(response: httpx.Response) -> bool:
    return response.status_code == 302 and response.headers["location"].startswith("/login")


def render_with(client: httpx.Client, server: Server, **params: str) -> str:
    """The dashboard page (which starts its kernel); returns that kernel's id."""
    page = client.get(f"{server.url}/voila/render/preview_changes.ipynb", params=params)
    assert page.status_code == 200, page.text[:500]
    assert "dashboard body" in page.text
    found = KERNEL_ID.search(page.text)
    assert found is not None
    return found.group(0)


def test_ui_refuses_requests_without_the_token_and_serves_with_it(start_ui: Start) -> None:
    server = start_ui()
    token = server.token()
    page = f"{server.url}/voila/render/preview_changes.ipynb"
    # without the token: the page, the tree, the kernel API and the websocket are refused
    for address in (page, f"{page}?token=wrong", f"{server.url}/"):
        assert is_login_redirect(httpx.get(address)), address
    assert httpx.post(f"{server.url}/api/kernels").status_code in (403, 404, 405)
    # the contents API would list the folder: not served at all (with or without a login)
    assert httpx.get(f"{server.url}/voila/api/contents").status_code == 404
    with httpx.Client() as client:
        kernel = render_with(client, server, token=token)
    ws_url = server.url.replace("http", "ws") + f"/api/kernels/{kernel}/channels"
    assert httpx.get(f"{server.url}/api/kernels/{kernel}").status_code == 403
    assert websocket_status(ws_url) == 403
    assert websocket_status(f"{ws_url}?token=wrong") == 403
    assert httpx.post(f"{server.url}/voila/api/shutdown/{kernel}").status_code == 403
    # with it (URL parameter or Authorization header) they work
    header = {"Authorization": f"token {token}"}
    model = httpx.get(f"{server.url}/api/kernels/{kernel}", headers=header)
    assert model.status_code == 200 and model.json()["id"] == kernel
    assert websocket_status(f"{ws_url}?token={token}") == 101
    assert websocket_status(ws_url, headers=header) == 101
    # a 404 with the token in the address: the token is still only in the start line
    assert httpx.get(f"{server.url}/voila/render/none.ipynb?token={token}").status_code == 404
    time.sleep(0.5)
    assert server.log.read_text().count(token) == 1


def test_ui_token_set_by_the_user_is_not_printed(start_ui: Start) -> None:
    chosen = "a-token-the-team-agreed-on-0123456789"
    server = start_ui(env={TOKEN_ENV: chosen})
    assert chosen not in server.start_line() and TOKEN_ENV in server.start_line()
    assert is_login_redirect(httpx.get(f"{server.url}/voila/render/preview_changes.ipynb"))
    with httpx.Client(headers={"Authorization": f"token {chosen}"}) as client:
        render_with(client, server)
    assert chosen not in server.log.read_text()


def test_ui_password_login_form(start_ui: Start) -> None:
    from jupyter_server.auth import passwd

    server = start_ui(env={PASSWORD_HASH_ENV: passwd("correct horse battery")})
    assert "password" in server.start_line() and "?token=" not in server.start_line()
    with httpx.Client(base_url=server.url) as client:
        assert client.get("/login").status_code == 200
        xsrf = client.cookies["_xsrf"]
        wrong = client.post("/login", data={"password": "guess", "_xsrf": xsrf})
        assert wrong.status_code == 401
        assert is_login_redirect(client.get("/voila/render/preview_changes.ipynb"))
        right = client.post("/login?next=/", data={"password": "correct horse battery",
                                                   "_xsrf": xsrf})
        assert right.status_code == 302 and right.headers["location"] == "/"
        render_with(client, server)
        assert client.post("/login", data={"password": "correct horse battery"}
                           ).status_code == 403  # no _xsrf: refused


def test_ui_no_auth_starts_on_loopback_only_when_asked(start_ui: Start) -> None:
    server = start_ui("--no-auth")
    assert "NO LOGIN" in server.start_line() and "?token=" not in server.start_line()
    with httpx.Client() as client:
        kernel = render_with(client, server)
    ws_url = server.url.replace("http", "ws") + f"/api/kernels/{kernel}/channels"
    assert websocket_status(ws_url) == 101
