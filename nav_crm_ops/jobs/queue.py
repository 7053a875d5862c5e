"""Job queue entries: what a job runs, its schedule, its status and how its last run ended.

Why a queue in the state store: the reference keeps one recurring job queue entry per mapping;
keeping them next to the job log means every runner (cron, a systemd timer, Airflow, ``jobs run
--loop``) sees the same schedule and status, and leases in the same database keep two runners
from running one job at once.

Status machine (:func:`settle` is the one place that moves a job after a run)::

    Ready ──run──▶ In Process ──▶ Ready            next run from the recurrence
                               ├▶ On Hold with     the run changed nothing and the job has an
                               │  Inactivity       inactivity timeout: it sleeps until a change
                               │  Timeout          shows up on either side or the timeout passes
                               ├▶ Ready            the run failed, attempts < max attempts:
                               │                   retried after the rerun delay
                               ├▶ Error            failed max attempts times in a row; a person
                               │                   sets it Ready again (`jobs set --status Ready`)
                               └▶ Finished         run-once job, or past its expiration
    On Hold                    set by a person; never run by ``--due`` (``run NAME`` still runs it)

Every function here but :class:`JobQueue` is pure and takes ``now`` explicitly.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ..exceptions import ConfigError, LeaseHeldError
from ..store import StateStore
from ..store.claims import ClaimRequest
from ..store.runs import RunOutcome
from ..store.schema import utc_now
from .approvals import APPROVAL_PARAMETER, ApprovalSettings, waiting_label
from .recurrence import (
    Recurrence,
    earliest_allowed,
    first_run_time,
    format_weekdays,
    next_run_time,
    parse_time_of_day,
    parse_weekdays,
)

__all__ = [
    "ERROR",
    "FINISHED",
    "IN_PROCESS",
    "JOB_KINDS",
    "JOB_STATUSES",
    "ON_HOLD",
    "ON_HOLD_INACTIVITY",
    "READY",
    "JobClaim",
    "JobEntry",
    "JobQueue",
    "check_parameter_values",
    "check_parameters",
    "hold_expired",
    "is_due",
    "job_lease_name",
    "looks_like_secret",
    "needs_probe",
    "parse_status",
    "reschedule",
    "resume",
    "settle",
    "utc_clock",
]

READY = "Ready"
IN_PROCESS = "In Process"
ON_HOLD = "On Hold"
ON_HOLD_INACTIVITY = "On Hold with Inactivity Timeout"
ERROR = "Error"
FINISHED = "Finished"
JOB_STATUSES: tuple[str, ...] = (READY, IN_PROCESS, ON_HOLD, ON_HOLD_INACTIVITY, ERROR, FINISHED)

JOB_KINDS: tuple[str, ...] = ("sync", "statistics", "sales_orders", "notebook")
"""``sync``: one mapping's synchronization; ``statistics`` / ``sales_orders``: those flows'
notebooks; ``notebook``: any parameterized notebook."""

MAX_ATTEMPTS_LIMIT = 10
_SECRET_WORDS = re.compile(
    r"secret|passw|pwd|token|credential|api_?key|private|passphrase|bearer|signature", re.I)
_SECRET_PARTS = frozenset({"key", "keys", "pw", "pass", "pin", "cred", "creds", "auth", "sas",
                           "cert", "jwt", "otp", "apikey", "accesskey"})
"""Whole words of a parameter name (split at ``_``, digits and camelCase) that mean a secret."""
MIN_CONTAINED_SECRET = 8
"""A configured secret at least this long is also refused inside a longer value."""
_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def parse_status(text: str) -> str:
    """A status from text a person types (``ready``, ``on-hold``, ``On Hold``...)."""
    wanted = re.sub(r"[\s_-]+", " ", text).strip().lower()
    for status in JOB_STATUSES:
        if status.lower() == wanted:
            return status
    raise ConfigError(f"job status {text!r} is not one of {list(JOB_STATUSES)}")


def looks_like_secret(name: str) -> bool:
    """True for parameter names such as ``pwd``, ``db_password``, ``apiKey``, ``key``,
    ``access_token``, ``client_secret``, ``credentials``."""
    words = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name).lower()
    parts = {part for part in re.split(r"[^a-z]+", words) if part}
    return bool(_SECRET_WORDS.search(name)) or bool(parts & _SECRET_PARTS)


def _texts(value: Any) -> Iterator[str]:
    """Every string (and number, as text) inside a JSON value, keys included."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            yield str(key)
            yield from _texts(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _texts(item)
    elif value is not None and not isinstance(value, bool):
        yield str(value)


def check_parameter_values(name: str, parameters: Mapping[str, Any],
                           secrets: Iterable[tuple[str, str]]) -> None:
    """Refuse parameters whose value is (or, for secrets of at least
    :data:`MIN_CONTAINED_SECRET` characters, contains) a configured secret: papermill writes
    parameters into the output notebook and its HTML, and the queue stores them.

    ``secrets`` are ``(setting, value)`` pairs (:func:`nav_crm_ops.config.configured_secrets`);
    the message names the setting, never the value.
    """
    known = [(setting, value) for setting, value in secrets if value]
    for key, value in parameters.items():
        for text in _texts(value):
            for setting, secret in known:
                if text == secret or (len(secret) >= MIN_CONTAINED_SECRET and secret in text):
                    raise ConfigError(
                        f"job {name!r}: parameter {key!r} holds the client secret of {setting}; "
                        "papermill writes parameters into the output notebook, so secrets must "
                        "never be parameters. Remove it: the notebook's workspace reads the "
                        "secret from that environment variable itself")


def check_parameters(name: str, parameters: Mapping[str, Any]) -> dict[str, Any]:
    """Parameters are written into the output notebook by papermill, so secrets are refused
    by name (:func:`looks_like_secret`); values must be JSON (they are stored as JSON and
    injected as Python literals). Values are checked against the configured secrets where the
    config is known (:func:`check_parameter_values`: the CLI and the runner)."""
    for key in parameters:
        if not str(key).isidentifier():
            raise ConfigError(f"job {name!r}: parameter {key!r} is not a Python identifier")
        if looks_like_secret(str(key)):
            raise ConfigError(
                f"job {name!r}: parameter {key!r} looks like a secret; papermill writes "
                "parameters into the output notebook, so secrets must never be parameters. "
                "Name an environment variable in nav_crm_ops.toml and read it in the notebook "
                "(or rename the parameter if it holds no secret)")
    try:
        return dict(json.loads(json.dumps(dict(parameters))))
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"job {name!r}: parameters must be JSON values ({exc})") from None


@dataclass(frozen=True)
class JobEntry:
    """One job queue entry. ``notebook`` is a path (absolute, relative to the workspace, or
    relative to the package's ``notebooks/`` folder); ``mapping`` names the mapping a ``sync``
    job runs. The ``last_*`` fields describe the most recent run."""

    name: str
    kind: str
    notebook: str
    mapping: str = ""
    parameters: Mapping[str, Any] = field(default_factory=dict)
    status: str = READY
    recurrence: Recurrence = field(default_factory=Recurrence)
    max_attempts: int = 3
    rerun_delay_s: int = 60
    inactivity_timeout_min: int = 0
    execution_timeout_s: int = 1800
    position: int = 0
    attempts: int = 0
    run_count: int = 0
    last_run_at: datetime | None = None
    last_finished_at: datetime | None = None
    last_outcome: str = ""
    last_duration_s: float | None = None
    last_counts: Mapping[str, int] = field(default_factory=dict)
    last_run_ids: tuple[int, ...] = ()
    last_error: str = ""
    last_output: str | None = None
    next_run_at: datetime | None = None
    on_hold_since: datetime | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None

    def __post_init__(self) -> None:
        if not self.name.strip() or len(self.name) > 200:
            raise ConfigError(f"job name {self.name!r} must be 1 to 200 characters")
        if self.kind not in JOB_KINDS:
            raise ConfigError(f"job {self.name!r}: kind {self.kind!r} is not one of "
                              f"{list(JOB_KINDS)}")
        if self.kind == "sync" and not self.mapping:
            raise ConfigError(f"job {self.name!r}: a sync job needs the mapping it runs")
        if self.status not in JOB_STATUSES:
            raise ConfigError(f"job {self.name!r}: status {self.status!r} is not one of "
                              f"{list(JOB_STATUSES)}")
        if not 1 <= self.max_attempts <= MAX_ATTEMPTS_LIMIT:
            raise ConfigError(f"job {self.name!r}: max_attempts must be 1 to "
                              f"{MAX_ATTEMPTS_LIMIT}, got {self.max_attempts}")
        for what, value, low in (("rerun_delay_s", self.rerun_delay_s, 0),
                                 ("inactivity_timeout_min", self.inactivity_timeout_min, 0),
                                 ("execution_timeout_s", self.execution_timeout_s, 1)):
            if value < low:
                raise ConfigError(f"job {self.name!r}: {what} must be at least {low}, "
                                  f"got {value}")
        object.__setattr__(self, "parameters", check_parameters(self.name, self.parameters))
        if self.parameters.get(APPROVAL_PARAMETER) is not None:  # docs/approvals.md
            if self.kind != "sync":
                raise ConfigError(f"job {self.name!r}: approval mode is for sync jobs (kind "
                                  f"'sync'), not {self.kind!r}")
            ApprovalSettings.parse(self.name, self.parameters[APPROVAL_PARAMETER])

    @property
    def outcome(self) -> RunOutcome | None:
        """How the last run ended (None before the first run); values stored before the
        outcome vocabulary (``succeeded`` with failed records) are read by their counts."""
        if not self.last_outcome:
            return None
        return RunOutcome.decide(self.last_outcome, failed=self.last_counts.get("failed", 0),
                                 conflicts=self.last_counts.get("conflicts", 0))

    @property
    def outcome_label(self) -> str:
        """The last run's outcome as a person reads it ("-" before the first run)."""
        outcome = self.outcome
        if outcome is None:
            return "-"
        waiting = waiting_label(self.last_counts, "")  # the run waits for a person
        if waiting and outcome is RunOutcome.AWAITING_APPROVAL:
            return waiting
        return outcome.label(self.last_counts.get("failed", 0),
                             self.last_counts.get("conflicts", 0))

    @property
    def last_report(self) -> str | None:
        """The HTML report of the last run (next to its output notebook), if it was written."""
        if not self.last_output:
            return None
        html = Path(self.last_output).with_suffix(".html")
        return str(html) if html.exists() else None

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly (``jobs show --json``)."""
        rec = self.recurrence
        outcome = self.outcome
        return {
            "name": self.name, "position": self.position, "kind": self.kind,
            "mapping": self.mapping, "notebook": self.notebook,
            "parameters": dict(self.parameters), "status": self.status,
            "every_minutes": rec.every_minutes, "weekdays": format_weekdays(rec.weekdays),
            "starting_time": rec.starting_time.isoformat() if rec.starting_time else None,
            "ending_time": rec.ending_time.isoformat() if rec.ending_time else None,
            "timezone": rec.timezone, "earliest_start": _iso(rec.earliest_start),
            "expiration": _iso(rec.expiration), "schedule": rec.describe(),
            "max_attempts": self.max_attempts, "rerun_delay_s": self.rerun_delay_s,
            "inactivity_timeout_min": self.inactivity_timeout_min,
            "execution_timeout_s": self.execution_timeout_s, "attempts": self.attempts,
            "run_count": self.run_count, "last_run_at": _iso(self.last_run_at),
            "last_finished_at": _iso(self.last_finished_at),
            "last_outcome": outcome.value if outcome else "",
            "last_outcome_label": self.outcome_label,
            "last_outcome_colour": outcome.colour if outcome else None,
            "last_duration_s": self.last_duration_s, "last_counts": dict(self.last_counts),
            "last_run_ids": list(self.last_run_ids), "last_error": self.last_error,
            "last_output": self.last_output, "last_report": self.last_report,
            "next_run_at": _iso(self.next_run_at),
            "on_hold_since": _iso(self.on_hold_since), "created_at": _iso(self.created_at),
            "updated_at": _iso(self.updated_at),
        }


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat()


def hold_expired(job: JobEntry, now: datetime) -> bool:
    """True when a job on hold for inactivity has slept its inactivity timeout."""
    since = job.on_hold_since or job.last_finished_at
    return since is None or now >= since + timedelta(minutes=job.inactivity_timeout_min)


def is_due(job: JobEntry, now: datetime, *, changes_detected: bool = False) -> bool:
    """Should ``--due`` run ``job`` at ``now``? Ready jobs run at their next run time; jobs on
    hold for inactivity run at their next run time once changes were detected (the caller
    probes only when :func:`needs_probe`) or the timeout passed; other statuses never."""
    if job.next_run_at is None or job.next_run_at > now:
        return False
    expiration = job.recurrence.expiration
    if expiration is not None and now > expiration:
        return False
    if job.status == READY:
        return True
    if job.status == ON_HOLD_INACTIVITY:
        return changes_detected or hold_expired(job, now)
    return False


def needs_probe(job: JobEntry, now: datetime) -> bool:
    """A sleeping job whose next run time came but whose timeout did not: ask the services
    (cheaply) whether anything changed."""
    return (job.status == ON_HOLD_INACTIVITY and job.next_run_at is not None
            and job.next_run_at <= now and not hold_expired(job, now))


def settle(job: JobEntry, *, started: datetime, finished: datetime, succeeded: bool,
           changed: bool, error: str = "") -> JobEntry:
    """The job after a run: status, attempts, next run time, hold and last error (the runner
    adds counts and output paths). See the module docstring for the rules."""
    if succeeded:
        upcoming = next_run_time(job.recurrence, started, finished)
        if upcoming is None:
            return replace(job, status=FINISHED, attempts=0, last_error="", next_run_at=None,
                           on_hold_since=None)
        if not changed and job.inactivity_timeout_min > 0:
            return replace(job, status=ON_HOLD_INACTIVITY, attempts=0, last_error="",
                           next_run_at=upcoming, on_hold_since=finished)
        return replace(job, status=READY, attempts=0, last_error="", next_run_at=upcoming,
                       on_hold_since=None)
    attempts = job.attempts + 1
    retry_at = earliest_allowed(job.recurrence, finished + timedelta(seconds=job.rerun_delay_s))
    if attempts < job.max_attempts and retry_at is not None:
        return replace(job, status=READY, attempts=attempts, last_error=error,
                       next_run_at=retry_at, on_hold_since=None)
    return replace(job, status=ERROR, attempts=attempts, last_error=error, next_run_at=None,
                   on_hold_since=None)


def resume(job: JobEntry, status: str, now: datetime) -> JobEntry:
    """A person sets the status: Ready resets the attempts and schedules the next run (one
    period after the last run, never in the past); On Hold / Finished just stop it."""
    if status == READY:
        upcoming = (next_run_time(job.recurrence, job.last_run_at, now)
                    if job.last_run_at is not None and job.recurrence.every_minutes
                    else first_run_time(job.recurrence, now))
        return replace(job, status=READY, attempts=0, next_run_at=upcoming, on_hold_since=None)
    if status in (ON_HOLD, FINISHED):
        return replace(job, status=status)
    raise ConfigError(f"a person can set a job to {READY!r}, {ON_HOLD!r} or {FINISHED!r}, "
                      f"not {status!r} (the runner sets the other statuses)")


def reschedule(job: JobEntry, recurrence: Recurrence, now: datetime) -> JobEntry:
    """The job with a new schedule; its next run time follows the new rules."""
    changed = replace(job, recurrence=recurrence)
    if job.status not in (READY, ON_HOLD_INACTIVITY):
        return changed
    if job.last_run_at is not None and recurrence.every_minutes:
        upcoming = next_run_time(recurrence, job.last_run_at, now)
    else:
        upcoming = first_run_time(recurrence, now)
    return replace(changed, next_run_at=upcoming,
                   status=job.status if upcoming is not None else FINISHED)


# -- persistence ---------------------------------------------------------------------------------
def _to_text(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).strftime(_TIME_FORMAT)


def _from_text(text: str | None) -> datetime | None:
    if not text:
        return None
    return datetime.strptime(text, _TIME_FORMAT).replace(tzinfo=UTC)


def _row_values(job: JobEntry) -> dict[str, Any]:
    rec = job.recurrence
    return {
        "name": job.name, "position": job.position, "kind": job.kind, "mapping": job.mapping,
        "notebook": job.notebook, "parameters": json.dumps(dict(job.parameters), sort_keys=True),
        "status": job.status, "every_minutes": rec.every_minutes,
        "weekdays": format_weekdays(rec.weekdays),
        "starting_time": rec.starting_time.isoformat() if rec.starting_time else None,
        "ending_time": rec.ending_time.isoformat() if rec.ending_time else None,
        "timezone": rec.timezone, "earliest_start": _to_text(rec.earliest_start),
        "expiration": _to_text(rec.expiration), "max_attempts": job.max_attempts,
        "rerun_delay_s": job.rerun_delay_s, "inactivity_timeout_min": job.inactivity_timeout_min,
        "execution_timeout_s": job.execution_timeout_s, "attempts": job.attempts,
        "run_count": job.run_count, "last_run_at": _to_text(job.last_run_at),
        "last_finished_at": _to_text(job.last_finished_at), "last_outcome": job.last_outcome,
        "last_duration_ms": (None if job.last_duration_s is None
                             else round(job.last_duration_s * 1000)),
        "last_counts": json.dumps(dict(job.last_counts), sort_keys=True),
        "last_run_ids": json.dumps(list(job.last_run_ids)), "last_error": job.last_error,
        "last_output": job.last_output, "next_run_at": _to_text(job.next_run_at),
        "on_hold_since": _to_text(job.on_hold_since), "created_at": _to_text(job.created_at),
        "updated_at": _to_text(job.updated_at),
    }


def _entry(data: Mapping[str, Any]) -> JobEntry:
    recurrence = Recurrence(
        every_minutes=data["every_minutes"], weekdays=parse_weekdays(data["weekdays"] or ""),
        starting_time=parse_time_of_day(data["starting_time"] or ""),
        ending_time=parse_time_of_day(data["ending_time"] or ""), timezone=data["timezone"],
        earliest_start=_from_text(data["earliest_start"]),
        expiration=_from_text(data["expiration"]))
    duration_ms = data["last_duration_ms"]
    return JobEntry(
        name=data["name"], kind=data["kind"], notebook=data["notebook"],
        mapping=data["mapping"] or "", parameters=json.loads(data["parameters"] or "{}"),
        status=data["status"], recurrence=recurrence, max_attempts=data["max_attempts"],
        rerun_delay_s=data["rerun_delay_s"],
        inactivity_timeout_min=data["inactivity_timeout_min"],
        execution_timeout_s=data["execution_timeout_s"], position=data["position"],
        attempts=data["attempts"], run_count=data["run_count"],
        last_run_at=_from_text(data["last_run_at"]),
        last_finished_at=_from_text(data["last_finished_at"]),
        last_outcome=data["last_outcome"] or "",
        last_duration_s=None if duration_ms is None else duration_ms / 1000,
        last_counts=json.loads(data["last_counts"] or "{}"),
        last_run_ids=tuple(json.loads(data["last_run_ids"] or "[]")),
        last_error=data["last_error"] or "", last_output=data["last_output"],
        next_run_at=_from_text(data["next_run_at"]),
        on_hold_since=_from_text(data["on_hold_since"]),
        created_at=_from_text(data["created_at"]), updated_at=_from_text(data["updated_at"]))


@dataclass(frozen=True)
class JobClaim:
    """A claim's result: ``job`` started (In Process, its lease held by the claimer) and
    ``before`` as it was, or both None and ``refusal`` says why (``holder``: who holds the
    job's lease when that refused it)."""

    job: JobEntry | None = None
    before: JobEntry | None = None
    refusal: str = ""
    holder: str = ""
    expires_at: str = ""


StartCheck = Callable[[JobEntry, list[JobEntry]], str]
"""Given a job and its related jobs, read under lock: why it may not start ("" if it may)."""


def job_lease_name(name: str) -> str:
    """The state-store lease a runner holds while it runs job ``name``."""
    return f"job:{name}"


def utc_clock() -> datetime:
    """The real clock (the runner's default; tests pass fixed ones)."""
    return datetime.now(UTC)


class JobQueue:
    """The job queue entries of one state store, in their run order (``position``); the SQL
    is the store's (:class:`nav_crm_ops.store.jobs.JobRepository`)."""

    def __init__(self, store: StateStore) -> None:
        self.store = store

    def add(self, entry: JobEntry, *, now: datetime | None = None) -> JobEntry:
        """Store a new entry (ConfigError if the name exists). It goes last in the order
        unless it has a position, and is scheduled from its recurrence."""
        now = now or utc_clock()
        prepared = replace(
            entry, created_at=now, updated_at=now,
            next_run_at=(entry.next_run_at if entry.next_run_at is not None
                         or entry.status != READY
                         else first_run_time(entry.recurrence, now)))
        position = self.store.jobs.add(_row_values(prepared))
        return replace(prepared, position=position)

    def list(self) -> list[JobEntry]:
        return [_entry(row) for row in self.store.jobs.rows()]

    def get(self, name: str) -> JobEntry:
        """The job named ``name`` (case-insensitive), or the one job running mapping ``name``."""
        entries = self.list()
        for entry in entries:
            if entry.name.lower() == name.strip().lower():
                return entry
        by_mapping = [e for e in entries if e.mapping and e.mapping.lower() == name.strip().lower()]
        if len(by_mapping) == 1:
            return by_mapping[0]
        names = [e.name for e in entries]
        hint = ("run `nav-crm-ops jobs init` to create the default jobs" if not names
                else f"known jobs: {names}")
        raise ConfigError(f"no job named {name!r}; {hint}")

    def save(self, entry: JobEntry, *, now: datetime | None = None) -> JobEntry:
        """Write every field of an existing entry back."""
        stored = replace(entry, updated_at=now or utc_clock())
        values = _row_values(stored)
        values.pop("created_at")
        if not self.store.jobs.update(entry.name, values):
            raise ConfigError(f"job {entry.name!r} no longer exists")
        return stored

    def refuse_while_running(self, entry: JobEntry) -> None:
        """LeaseHeldError when a runner is running ``entry`` now: a change made meanwhile
        would be overwritten when the run settles the job."""
        lease = self.store.lease(job_lease_name(entry.name))
        if lease is not None and lease.expires_at > utc_now():
            raise LeaseHeldError(
                f"job {entry.name!r} is being run by {lease.holder} (lease until "
                f"{lease.expires_at}); change it after this run finishes",
                holder=lease.holder, expires_at=lease.expires_at)

    def remove(self, name: str) -> bool:
        entry = self.get(name)
        self.refuse_while_running(entry)
        return self.store.jobs.delete(entry.name)

    def postpone(self, name: str, next_run_at: datetime | None, *, if_status: str) -> bool:
        """Move the next run time only while the job still has status ``if_status`` (another
        runner may have started it since it was read)."""
        return self.store.jobs.update_if_status(name, if_status, {
            "next_run_at": _to_text(next_run_at), "updated_at": _to_text(utc_clock())})

    def claim(self, name: str, related: Collection[str], check: StartCheck, *, holder: str,
              ttl_s: float, now: datetime) -> JobClaim:
        """Start job ``name`` for ``holder`` if ``check`` allows it, in one transaction with
        the rows of ``related`` jobs locked and read again (see
        :mod:`nav_crm_ops.store.claims`): several runners never start one job twice, nor a
        job alongside one it depends on. Started means In Process, one more run counted and
        the job's lease held by ``holder`` for ``ttl_s`` seconds."""
        request = ClaimRequest(name=name, related=related, lease_name=job_lease_name(name),
                               holder=holder, ttl_s=ttl_s, status=IN_PROCESS,
                               at=_to_text(now))
        claim = self.store.jobs.claim(
            request, lambda row, rows: check(_entry(row), [_entry(r) for r in rows]))
        if claim.started is None or claim.before is None:
            return JobClaim(refusal=claim.refusal, holder=claim.holder,
                            expires_at=claim.expires_at)
        return JobClaim(job=_entry(claim.started), before=_entry(claim.before))

    def begin_run(self, name: str, now: datetime) -> JobEntry:
        """Mark the job In Process and count the run (the caller holds its lease); the run
        number names the output notebook."""
        row = self.store.jobs.begin_run(name, IN_PROCESS, _to_text(now))
        if row is None:
            raise ConfigError(f"job {name!r} no longer exists")
        return _entry(row)
