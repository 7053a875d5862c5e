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
    holder_is_dead,
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
    "holder_is_dead",
    "normalize_error_message",
]
