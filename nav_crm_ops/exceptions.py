"""Every error nav-crm-ops raises, in one place.

The tree (catch the narrowest class that fits)::

    NavCrmOpsError                      base of everything raised by this package
    ├── ConfigError                     workspace/config/mapping files are wrong (say which key)
    │   └── MappingError                a mapping or field mapping is invalid (names mapping+field)
    ├── PlanError                       a plan file is unreadable, tampered with or stale
    ├── StateStoreError                 the state database cannot be opened/migrated/locked
    │   ├── LeaseError                  a lease could not be taken or kept
    │   │   ├── LeaseHeldError          another process holds the lease (says who): busy
    │   │   └── LeaseLostError          a lease held was lost mid-work: the run failed
    │   └── StateConflictError          a write broke a uniqueness rule (another writer won)
    ├── SyncError                       the engine cannot continue a run (dependency, cycle, ...)
    │   └── SyncCancelled               a person cancelled the run (finished batches are kept)
    ├── SandboxError                    the embedded sandbox cannot start or seed
    └── ConnectorError                  a call to Dataverse or Business Central failed
        ├── TransientError              worth retrying later: 429, 5xx, timeouts, resets
        │   └── ThrottledError          429 service-protection limit (carries retry_after)
        ├── PermanentError              the service rejected the data; retrying will not help
        │   ├── ValidationError         400-class data errors (too long, bad option, ...)
        │   └── NotFoundError           the record or endpoint does not exist (404)
        ├── ConcurrencyError            the record changed since it was read (412 / 409)
        └── AuthError                   credentials or token rejected (401/403, token endpoint)

Connector errors carry structured attributes (service, entity, record key, HTTP status, service
error code, message, correlation id) so the engine can classify, log and retry without parsing
strings. Messages say what to do next. No error ever includes a secret.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AuthError",
    "ConcurrencyError",
    "ConfigError",
    "ConnectorError",
    "LeaseError",
    "LeaseHeldError",
    "LeaseLostError",
    "MappingError",
    "NavCrmOpsError",
    "NotFoundError",
    "PermanentError",
    "PlanError",
    "SandboxError",
    "StateConflictError",
    "StateStoreError",
    "SyncCancelled",
    "SyncError",
    "ThrottledError",
    "TransientError",
    "ValidationError",
]


class NavCrmOpsError(Exception):
    """Base class of every error raised by nav-crm-ops."""


class ConfigError(NavCrmOpsError):
    """The workspace configuration is wrong; the message names the file and key to fix."""


class MappingError(ConfigError):
    """A mapping definition is invalid; the message names the mapping and field."""


class PlanError(NavCrmOpsError):
    """A saved plan cannot be applied (unreadable, tampered with, or made for other data)."""


class StateStoreError(NavCrmOpsError):
    """The state database cannot be used."""


class StateConflictError(StateStoreError):
    """A state-database write broke a uniqueness or integrity rule, usually because another
    process or thread wrote the same row at the same moment; the message names the table
    and rule, and retrying the operation normally succeeds."""

    def __init__(self, message: str, *, detail: str = "") -> None:
        super().__init__(message)
        self.detail = detail
        """The database's own words (constraint name, duplicate key)."""


class LeaseError(StateStoreError):
    """A lease on a mapping or job could not be taken or kept (``holder``: who has it now,
    ``expires_at``: until when, both empty when unknown)."""

    def __init__(self, message: str, *, holder: str = "", expires_at: str = "") -> None:
        super().__init__(message)
        self.holder = holder
        self.expires_at = expires_at


class LeaseHeldError(LeaseError):
    """Another process holds the lease on a mapping or job: the work did not start (a runner
    counts it as busy, not as an attempt)."""


class LeaseLostError(LeaseError):
    """A lease this process held was lost while it worked (another holder took it after it
    expired, or it could not be renewed in time): the work stopped at the next safe point and
    counts as a failed attempt, since someone else may now be doing the same work."""


class SyncError(NavCrmOpsError):
    """A synchronization run cannot proceed as asked."""


class SyncCancelled(SyncError):
    """The run was cancelled between batches; what was written before is recorded."""


class SandboxError(NavCrmOpsError):
    """The embedded sandbox could not start, seed or reset."""


class ConnectorError(NavCrmOpsError):
    """A request to Dataverse or Business Central failed.

    Attributes are structured so callers never parse the message: ``service`` ("dataverse" or
    "business_central"), ``entity`` (entity set), ``record_key``, ``status`` (HTTP status or
    None for network errors), ``code`` (the service's error code, often empty on Dataverse),
    ``service_message`` (the service's own text) and ``correlation_id``.
    """

    def __init__(
        self,
        message: str,
        *,
        service: str = "",
        entity: str = "",
        record_key: str = "",
        status: int | None = None,
        code: str = "",
        service_message: str = "",
        correlation_id: str = "",
        response_body: Any = None,
    ) -> None:
        super().__init__(message)
        self.service = service
        self.entity = entity
        self.record_key = record_key
        self.status = status
        self.code = code
        self.service_message = service_message
        self.correlation_id = correlation_id
        self.response_body = response_body

    @property
    def transient(self) -> bool:
        """True when retrying the same request later may succeed."""
        return isinstance(self, TransientError)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly description for error logs and plans."""
        return {
            "type": type(self).__name__,
            "message": str(self),
            "service": self.service,
            "entity": self.entity,
            "record_key": self.record_key,
            "status": self.status,
            "code": self.code,
            "service_message": self.service_message,
            "correlation_id": self.correlation_id,
            "transient": self.transient,
        }


class TransientError(ConnectorError):
    """Temporary failure (429, 502/503/504, timeout, connection reset): retry later."""


class ThrottledError(TransientError):
    """The service's protection limits were hit; ``retry_after`` seconds to wait (if given)."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class PermanentError(ConnectorError):
    """The service refused the request for a reason that retrying will not fix."""


class ValidationError(PermanentError):
    """The service rejected the data (length, required field, invalid option, bad lookup)."""


class NotFoundError(PermanentError):
    """The record or resource does not exist."""


class ConcurrencyError(ConnectorError):
    """The record changed since it was read (Dataverse 412, Business Central 409)."""


class AuthError(ConnectorError):
    """Authentication failed; the message says which setting to check (never the secret)."""
