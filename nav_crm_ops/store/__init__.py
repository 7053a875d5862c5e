"""State store: couplings, job log, record errors, watermarks, journal and leases."""

from .normalize import normalize_error_message
from .schema import SCHEMA_VERSION
from .state_store import (
    RUN_COUNTS,
    Coupling,
    Lease,
    RecordFailure,
    RecordStatus,
    StateStore,
    default_holder,
)

__all__ = [
    "RUN_COUNTS",
    "SCHEMA_VERSION",
    "Coupling",
    "Lease",
    "RecordFailure",
    "RecordStatus",
    "StateStore",
    "default_holder",
    "normalize_error_message",
]
