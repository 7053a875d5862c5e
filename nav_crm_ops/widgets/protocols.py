"""What each panel needs from a workspace, as typing Protocols.

Why: panels hold no sync logic; they call :class:`nav_crm_ops.engine.workspace.Workspace`
methods. Typing against these protocols keeps the widget layer importable and testable on its
own (any object with these methods works, e.g. a workspace over a test database) and documents
exactly which engine calls each panel makes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Literal, Protocol

import polars as pl

from ..engine.conflicts import ConflictChoice
from ..engine.plan import Plan
from ..engine.progress import CancelToken, Progress
from ..engine.report import SyncReport
from ..engine.troubleshoot import RetryResult

__all__ = [
    "CouplingWorkspace",
    "LogsWorkspace",
    "MappingNames",
    "PreviewWorkspace",
    "RunWorkspace",
    "mapping_names",
]


class MappingNames(Protocol):
    """The part of :class:`~nav_crm_ops.engine.mapping.MappingSet` the panels read."""

    @property
    def names(self) -> list[str]: ...

    def dependency_order(self, names: Iterable[str] | None = None) -> list[str]: ...


class PreviewWorkspace(Protocol):
    mappings: Any

    def preview(self, mappings: str | Sequence[str] | None = None, *,
                progress: Progress | None = None, cancel: CancelToken | None = None) -> Plan: ...

    def apply(self, plan: Plan, *, progress: Progress | None = None,
              cancel: CancelToken | None = None, job_name: str = "") -> SyncReport: ...

    def save_plan(self, plan: Plan, path: str | Path) -> Path: ...

    def load_plan(self, path: str | Path) -> Plan: ...

    def conflict_choices(self, plan: Plan, mapping: str, record_id: str
                         ) -> tuple[ConflictChoice, ...]: ...

    def resolve_conflict(self, choice: ConflictChoice, *,
                         progress: Progress | None = None) -> SyncReport: ...


class RunWorkspace(Protocol):
    mappings: Any

    def sync_all(self, mappings: Sequence[str] | None = None, *,
                 progress: Progress | None = None, cancel: CancelToken | None = None,
                 job_name: str = "") -> SyncReport: ...


class LogsWorkspace(Protocol):
    mappings: Any

    def runs(self, mapping: str | None = None, limit: int = 200) -> pl.DataFrame: ...

    def errors(self, mapping: str | None = None, *, run_id: int | None = None,
               normalized_message: str | None = None, source_id: str | None = None
               ) -> pl.DataFrame: ...

    def error_groups(self, mapping: str | None = None) -> pl.DataFrame: ...

    def failed_records(self, mapping: str | None = None) -> pl.DataFrame: ...

    def retry(self, mapping: str | None = None, source_ids: Sequence[str] | None = None, *,
              progress: Progress | None = None) -> SyncReport: ...

    def retry_records(self, mapping: str, source_ids: Sequence[str], *, unskip: bool = False,
                      progress: Progress | None = None) -> RetryResult: ...

    def unskip(self, mapping: str, source_ids: Sequence[str] | None = None) -> int: ...

    def alerts(self, *, state: str | None = "open", limit: int = 200) -> pl.DataFrame: ...


class CouplingWorkspace(Protocol):
    mappings: Any

    def records(self, mapping: str, side: Literal["nav", "crm"], search: str | None = None,
                top: int = 50) -> pl.DataFrame: ...

    def couple(self, mapping: str, nav_id: str, crm_id: str) -> Any: ...

    def uncouple(self, mapping: str, *, nav_id: str | None = None,
                 crm_id: str | None = None) -> int: ...

    def match_couple(self, mapping: str, *, create: bool = False, apply: bool = True
                     ) -> Any: ...

    def sync_now(self, mapping: str, *, nav_ids: Sequence[str] = (), crm_ids: Sequence[str] = (),
                 direction: Literal["to_crm", "from_crm"] | None = None,
                 progress: Progress | None = None) -> SyncReport: ...

    def record_links(self, mapping: str, *, nav_id: str | None = None,
                     crm_id: str | None = None) -> dict[str, str]: ...

    def related_records(self, account_id: str, *, top: int = 50) -> dict[str, pl.DataFrame]: ...


def mapping_names(workspace: Any) -> list[str]:
    """The workspace's mapping names in dependency order (what people pick from)."""
    mappings: MappingNames = workspace.mappings
    return mappings.dependency_order()
