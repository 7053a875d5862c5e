"""nav-crm-ops: keep Business Central / NAV and Dynamics 365 Sales (Dataverse) in sync."""

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
from .engine.diff import DiffField, DiffResult, three_way_diff
from .engine.mapping import FieldMapping, MappingSet, TableMapping
from .engine.plan import Plan, PlanMetadata
from .engine.progress import CancelToken, ProgressEvent
from .engine.report import MappingResult, SyncReport
from .engine.workspace import MatchResult, Workspace, open_workspace
from .exceptions import (
    AuthError,
    ConcurrencyError,
    ConfigError,
    ConnectorError,
    LeaseHeldError,
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
from .jobs import JobEntry, JobQueue, JobRunner
from .jobs.result import write_result
from .sandbox import Sandbox, SandboxInfo
from .secrets import Secret
from .store import StateStore

__version__ = "0.1.0"

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
    "LeaseHeldError",
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
    "connect",
    "load_config",
    "open_workspace",
    "three_way_diff",
    "write_config",
    "write_result",
]
