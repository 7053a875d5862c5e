"""nav-crm-ops: keep Business Central / NAV and Dynamics 365 Sales (Dataverse) in sync."""

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
    SyncError,
    ThrottledError,
    TransientError,
    ValidationError,
)
from .secrets import Secret

__version__ = "0.1.0"

__all__ = [
    "AuthError",
    "ConcurrencyError",
    "ConfigError",
    "ConnectorError",
    "LeaseHeldError",
    "MappingError",
    "NavCrmOpsError",
    "NotFoundError",
    "PermanentError",
    "PlanError",
    "SandboxError",
    "Secret",
    "StateStoreError",
    "SyncError",
    "ThrottledError",
    "TransientError",
    "ValidationError",
    "__version__",
]
