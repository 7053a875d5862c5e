"""What both services hold: the sandbox context (its store and public URLs)."""

from __future__ import annotations

from typing import Protocol

from ..info import SandboxInfo
from ..store import SandboxStore


class ServiceContext(Protocol):
    """What a service needs from the sandbox's context."""

    @property
    def store(self) -> SandboxStore: ...

    @property
    def info(self) -> SandboxInfo: ...


class ServiceBase:
    """A service answering requests over the context's store."""

    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx

    @property
    def store(self) -> SandboxStore:
        return self.ctx.store
