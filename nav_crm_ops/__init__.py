"""nav-crm-ops: keep Business Central / NAV and Dynamics 365 Sales (Dataverse) in sync.

The package root is light: ``import nav_crm_ops`` loads the exception tree and the secret type
only; every other name below is imported on first use (PEP 562), so neither the sandbox's web
server nor polars is loaded by a caller that needs one class.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .exceptions import (
    AuthError,
    ConcurrencyError,
    ConfigError,
    ConnectorError,
    LeaseError,
    LeaseHeldError,
    LeaseLostError,
    MappingError,
    NavCrmOpsError,
    NotFoundError,
    PermanentError,
    PlanError,
    SandboxError,
    StateStoreError,
    SyncCancelled,
    SyncError,
    ThrottledError,
    TransientError,
    ValidationError,
)
from .secrets import Secret

if TYPE_CHECKING:
    from .config import WorkspaceConfig, load_config, write_config
    from .connectors import (
        BasicAuth,
        BusinessCentral,
        ClientCredentials,
        Dataverse,
        NavODataV4,
        RequestStats,
        WriteOp,
        WriteOutcome,
    )
    from .connectors.factory import Connections, connect
    from .engine.coupling import MatchResult
    from .engine.diff import DiffField, DiffResult, three_way_diff
    from .engine.mapping import FieldMapping, MappingSet, TableMapping
    from .engine.plan import Plan, PlanMetadata
    from .engine.progress import CancelToken, ProgressEvent
    from .engine.report import MappingResult, SyncReport
    from .engine.revert import RevertPlan, RevertResult, apply_revert, revert_plan
    from .engine.workspace import Workspace, open_workspace
    from .jobs import JobEntry, JobQueue, JobRunner
    from .jobs.result import write_result
    from .sandbox import Sandbox, SandboxInfo
    from .store import StateStore

__version__ = "0.1.0"

_LAZY: dict[str, str] = {
    "BasicAuth": ".connectors",
    "BusinessCentral": ".connectors",
    "CancelToken": ".engine.progress",
    "ClientCredentials": ".connectors",
    "Connections": ".connectors.factory",
    "Dataverse": ".connectors",
    "DiffField": ".engine.diff",
    "DiffResult": ".engine.diff",
    "FieldMapping": ".engine.mapping",
    "JobEntry": ".jobs",
    "JobQueue": ".jobs",
    "JobRunner": ".jobs",
    "ListenOptions": ".jobs.listen",
    "Listener": ".jobs.listen",
    "MappingResult": ".engine.report",
    "MappingSet": ".engine.mapping",
    "MatchResult": ".engine.coupling",
    "NavODataV4": ".connectors",
    "Plan": ".engine.plan",
    "PlanMetadata": ".engine.plan",
    "ProgressEvent": ".engine.progress",
    "RequestStats": ".connectors",
    "RevertPlan": ".engine.revert",
    "RevertResult": ".engine.revert",
    "Sandbox": ".sandbox",
    "SandboxInfo": ".sandbox",
    "StateStore": ".store",
    "SyncReport": ".engine.report",
    "TableMapping": ".engine.mapping",
    "Workspace": ".engine.workspace",
    "WorkspaceConfig": ".config",
    "WriteOp": ".connectors",
    "WriteOutcome": ".connectors",
    "apply_revert": ".engine.revert",
    "connect": ".connectors.factory",
    "load_config": ".config",
    "open_workspace": ".engine.workspace",
    "revert_plan": ".engine.revert",
    "three_way_diff": ".engine.diff",
    "write_config": ".config",
    "write_result": ".jobs.result",
}
"""Public name -> the module (relative to this package) that defines it."""


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'nav_crm_ops' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "AuthError",
    "BasicAuth",
    "BusinessCentral",
    "CancelToken",
    "ClientCredentials",
    "ConcurrencyError",
    "ConfigError",
    "Connections",
    "ConnectorError",
    "Dataverse",
    "DiffField",
    "DiffResult",
    "FieldMapping",
    "JobEntry",
    "JobQueue",
    "JobRunner",
    "LeaseError",
    "LeaseHeldError",
    "LeaseLostError",
    "ListenOptions",
    "Listener",
    "MappingError",
    "MappingResult",
    "MappingSet",
    "MatchResult",
    "NavCrmOpsError",
    "NavODataV4",
    "NotFoundError",
    "PermanentError",
    "Plan",
    "PlanError",
    "PlanMetadata",
    "ProgressEvent",
    "RequestStats",
    "RevertPlan",
    "RevertResult",
    "Sandbox",
    "SandboxError",
    "SandboxInfo",
    "Secret",
    "StateStore",
    "StateStoreError",
    "SyncCancelled",
    "SyncError",
    "SyncReport",
    "TableMapping",
    "ThrottledError",
    "TransientError",
    "ValidationError",
    "Workspace",
    "WorkspaceConfig",
    "WriteOp",
    "WriteOutcome",
    "__version__",
    "apply_revert",
    "connect",
    "load_config",
    "open_workspace",
    "revert_plan",
    "three_way_diff",
    "write_config",
    "write_result",
]
