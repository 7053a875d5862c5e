"""Run the sandbox in-process (a uvicorn server in a background thread).

Tests, notebooks and ``make demo`` use :class:`Sandbox` as a context manager; the CLI command
``nav-crm-ops sandbox`` runs the same application in the foreground.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import uvicorn

from ..exceptions import SandboxError
from .info import SandboxInfo

__all__ = ["Sandbox", "SandboxInfo"]

DEFAULT_DATA_DIR = Path(".nav_crm_ops/sandbox")
def free_port(host: str = "127.0.0.1") -> int:
    """Ask the OS for a free TCP port on ``host``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class AdminReply:
    """What :meth:`Sandbox.bc_admin` answers (shaped like an httpx response)."""

    status_code: int
    content: bytes

    @property
    def text(self) -> str:
        return self.content.decode("utf-8")

    def json(self) -> Any:
        return json.loads(self.content)


class Sandbox:
    """The embedded Dataverse + Business Central sandbox, served on loopback.

    >>> with Sandbox(data_dir=tmp, seed="cronus", port=0) as sb:   # doctest: +SKIP
    ...     print(sb.info.dataverse_url)
    """

    def __init__(
        self,
        *,
        data_dir: str | Path = DEFAULT_DATA_DIR,
        seed: str = "cronus",
        host: str = "127.0.0.1",
        port: int = 0,
        reset: bool = False,
        limits: bool = False,
        faults: str | None = None,
        client_secret: str | None = None,
        log_level: str = "warning",
        crm_solution: bool = True,
        crm_privileges: Mapping[str, Sequence[str]] | None = None,
        companies: int = 1,
    ) -> None:
        from .context import SandboxContext, SandboxOptions

        self.host = host
        self.port = port or free_port(host)
        self.log_level = log_level
        options = SandboxOptions(
            data_dir=Path(data_dir), seed=seed, reset=reset, limits=limits, faults=faults,
            client_secret=client_secret, crm_solution=crm_solution,
            revoked_privileges=tuple((crm_privileges or {}).get("revoke", ())),
            companies=companies,
        )
        self.context = SandboxContext.open(options, base_url=f"http://{host}:{self.port}")
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def info(self) -> SandboxInfo:
        return self.context.info

    def build_app(self) -> Any:
        from .app import build_app

        return build_app(self.context)

    def start(self) -> Sandbox:
        config = uvicorn.Config(
            self.build_app(), host=self.host, port=self.port, log_level=self.log_level,
            lifespan="off", access_log=False, timeout_keep_alive=30,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="nav-crm-ops-sandbox",
                                        daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started:
            if not self._thread.is_alive():
                raise SandboxError(f"sandbox failed to start on {self.host}:{self.port} "
                                   "(is the port in use? use port 0 for a free one)")
            if time.monotonic() > deadline:
                raise SandboxError("sandbox did not start within 30 s")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=15)
        self._server = None
        self._thread = None
        self.context.close()

    def reset(self, seed: str | None = None) -> None:
        """Drop all data and load the seed again (the current one when not given)."""
        self.context.reset(seed)

    def set_limits(self, enabled: bool, **settings: Any) -> None:
        self.context.set_limits(enabled, **settings)

    def set_faults(self, spec: str | None) -> None:
        self.context.set_faults(spec)

    def set_privileges(self, revoke: Sequence[str] = ()) -> None:
        """Take Dataverse privileges (``prvWriteAccount``...) from the application user; the
        list replaces the earlier one, ``()`` gives all back (as ``reset`` does)."""
        self.context.set_privileges(revoke)

    def bc_admin(self, method: str, url: str, body: Mapping[str, Any] | None = None,
                 headers: Mapping[str, str] | None = None) -> AdminReply:
        """Send one Business Central API request as the sandbox itself, not as a client: it
        may also write pages clients only read (``salesPrices``), the way tests put data in
        that Business Central maintains. ``url`` is a full API URL of this sandbox."""
        from .business_central import BusinessCentralService

        service = BusinessCentralService(self.context)
        service.admin = True
        parts = urlsplit(url)
        raw = json.dumps(body).encode() if body is not None else b""
        reply = service.handle(method.upper(), parts.path.split("/bc", 1)[1], parts.query,
                               {k.lower(): v for k, v in (headers or {}).items()}, raw)
        return AdminReply(reply.status, reply.encoded())

    def set_token_lifetime(self, seconds: int) -> None:
        """Lifetime of tokens issued from now on (short values rehearse expiry mid-run)."""
        if seconds < 1:
            raise ValueError("token lifetime must be at least 1 second")
        self.context.token_lifetime = int(seconds)

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
