"""State store: couplings, job log, record errors, watermarks, journal and leases.

:class:`StateStore` opens and migrates the database and owns its transactions; each table
family has a repository module (couplings, outcomes, runs, journal, leases, caches, watermarks,
jobs) that the store exposes as an attribute.
"""

from .caches import CacheRepository
from .couplings import Coupling, CouplingRepository
from .jobs import JobRepository
from .journal import JournalRepository
from .leases import Lease, LeaseRepository, default_holder, holder_is_dead
from .normalize import normalize_error_message
from .outcomes import RecordFailure, RecordOutcomeRepository, RecordStatus
from .runs import RUN_COUNTS, RunRepository
from .schema import SCHEMA_VERSION
from .state_store import StateStore
from .watermarks import WatermarkRepository

__all__ = [
    "RUN_COUNTS",
    "SCHEMA_VERSION",
    "CacheRepository",
    "Coupling",
    "CouplingRepository",
    "JobRepository",
    "JournalRepository",
    "Lease",
    "LeaseRepository",
    "RecordFailure",
    "RecordOutcomeRepository",
    "RecordStatus",
    "RunRepository",
    "StateStore",
    "WatermarkRepository",
    "default_holder",
    "holder_is_dead",
    "normalize_error_message",
]
