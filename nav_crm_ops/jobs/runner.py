"""Runs job queue entries: one papermill execution per run, guarded by a lease.

Why papermill: every run leaves an output notebook (and an HTML rendering) that an analyst
opens to see exactly what happened, including the traceback of a failing cell.

One run of a job:

1. claim the job (:meth:`JobQueue.claim`, one transaction): it must still be due (``--due``),
   no job it depends on or that depends on it may be In Process, no job it depends on may be
   due (:mod:`nav_crm_ops.jobs.dependencies`); then it is marked In Process and the lease
   ``job:<name>`` taken. Another runner holding it → the run is skipped and says who holds
   it; a runner that died leaves a lease that expires and is taken over. A heartbeat renews
   the lease while the notebook runs (:class:`~nav_crm_ops.store.heartbeat.LeaseHeartbeat`);
2. execute its notebook with papermill, kernel ``python3``, an
   execution timeout per cell (a hung or dead kernel fails the run instead of hanging the
   runner), parameters ``workspace``, ``job_name``, ``result_path`` (+ ``mapping``, + the job's
   own) — never secrets (a parameter holding a configured client secret fails the run before
   papermill starts): the notebook reads them from the environment through the workspace
   config;
3. save ``<workspace>/runs/<YYYY-MM-DD>/<job>-<run number>.ipynb`` (also when a cell failed),
   its ``.html`` report (code hidden, see :mod:`nav_crm_ops.jobs.output`) and the notebook's
   ``.result.json`` summary (see :mod:`nav_crm_ops.jobs.result`); link the job-log entries the
   run created to the notebook;
4. decide the run's :class:`~nav_crm_ops.store.runs.RunOutcome`: the notebook's (failed, timed
   out, cancelled, busy) when it did not finish, else the work's from the summary (succeeded,
   with failed records, held conflicts);
5. settle the job (:func:`nav_crm_ops.jobs.queue.settle`): next run, retry, Error, or On Hold
   with Inactivity Timeout when the run changed nothing.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from ..config import WorkspaceConfig, configured_secrets, load_config
from ..exceptions import ConfigError, LeaseHeldError, NavCrmOpsError
from ..store import StateStore, default_holder
from ..store.heartbeat import LeaseHeartbeat
from ..store.runs import RunOutcome
from ..store.schema import utc_now
from ..store.subscriptions import subscriptions_of
from .approvals import waiting_label
from .dependencies import JobGraph, start_refusal
from .output import finish_output_notebook
from .queue import (
    IN_PROCESS,
    ON_HOLD,
    ON_HOLD_INACTIVITY,
    READY,
    JobClaim,
    JobEntry,
    JobQueue,
    check_parameter_values,
    is_due,
    job_lease_name,
    needs_probe,
    settle,
    utc_clock,
)
from .recurrence import earliest_allowed, next_run_time
from .result import JobResult, read_result

__all__ = [
    "DEFAULT_LEASE_TTL_S",
    "OUTCOMES",
    "ChangeProbe",
    "JobRun",
    "JobRunner",
    "WorkspaceChangeProbe",
    "notebooks_dir",
    "resolve_notebook",
]

DEFAULT_LEASE_TTL_S = 120.0
WAKE_CHECK_S = 2.0
"""How often ``run_loop`` looks for jobs ``nav-crm-ops listen`` woke while it sleeps."""
KERNEL_START_TIMEOUT_S = 120
KERNEL_START_ATTEMPTS = 3
"""A kernel that dies before it answers (another runner's kernel took one of the ports its
connection file named, a known race of several runners on one host) is started again: no
cell ran, so it is no attempt of the job."""
_NOT_STARTED = "Kernel died before replying to kernel_info"
OUTCOMES = tuple(RunOutcome)
"""How a job run ends (:class:`RunOutcome`). ``busy``: the engine found the mapping being
synchronized by someone else (``LeaseHeldError``: not counted as a failed attempt);
``skipped``: another runner holds the job's lease, it is no longer due, or a job it depends on
(or that depends on it) is running or due. A lease lost mid-run (``LeaseLostError``) is
``failed``: an attempt."""
_CANCELLED_ERRORS = ("SyncCancelled", "KeyboardInterrupt")
"""Exceptions of a notebook cell that mean a person cancelled the run."""

ChangeProbe = Callable[[JobEntry], bool]
"""Asked for a job on hold for inactivity: did anything change on either side?"""


def notebooks_dir() -> Path:
    """The repository's ``notebooks/`` folder (job notebooks live in ``notebooks/jobs/``)."""
    return Path(__file__).resolve().parents[2] / "notebooks"


def resolve_notebook(notebook: str, root: Path) -> Path:
    """A job's notebook path: absolute, else relative to the workspace, else to
    :func:`notebooks_dir`."""
    path = Path(notebook).expanduser()
    candidates = [path] if path.is_absolute() else [root / path, notebooks_dir() / path]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise ConfigError(f"job notebook {notebook!r} not found (looked at "
                      f"{', '.join(str(c) for c in candidates)}); fix it with "
                      "`nav-crm-ops jobs set NAME --notebook PATH`")


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:80] or "job"


@dataclass(frozen=True)
class JobRun:
    """What happened to one job in one runner call (see :class:`RunOutcome`)."""

    job: str
    outcome: RunOutcome
    status: str
    run_number: int | None = None
    counts: dict[str, int] = field(default_factory=dict)
    run_ids: tuple[int, ...] = ()
    changed: bool | None = None
    error: str = ""
    output_notebook: Path | None = None
    output_html: Path | None = None
    duration_s: float = 0.0
    message: str = ""

    @property
    def ran(self) -> bool:
        return self.outcome is not RunOutcome.SKIPPED

    @property
    def label(self) -> str:
        """The outcome as a person reads it (``succeeded with 2 failed records``; a run
        of an approval-mode job that waits: ``waiting for approval: 120 creates > 50``)."""
        waiting = waiting_label(self.counts, self.message)
        if waiting and self.outcome is RunOutcome.AWAITING_APPROVAL:
            return waiting
        return self.outcome.label(self.counts.get("failed", 0), self.counts.get("conflicts", 0))

    def to_dict(self) -> dict[str, Any]:
        return {"job": self.job, "outcome": self.outcome.value, "outcome_label": self.label,
                "outcome_colour": self.outcome.colour, "status": self.status,
                "run_number": self.run_number, "counts": dict(self.counts),
                "run_ids": list(self.run_ids), "changed": self.changed, "error": self.error,
                "output_notebook": str(self.output_notebook) if self.output_notebook else None,
                "output_html": str(self.output_html) if self.output_html else None,
                "duration_s": round(self.duration_s, 3), "message": self.message}


class WorkspaceChangeProbe:
    """The default probe: a sync job asks the engine (``Workspace.has_changes``, at most one
    request per side); other kinds cannot be probed, so only their timeout wakes them. A probe
    that fails (service down) wakes the job so the failure is recorded by a real run."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._workspace: Any = None

    def __call__(self, job: JobEntry) -> bool:
        if job.kind != "sync" or not job.mapping:
            return False
        try:
            if self._workspace is None:
                from ..engine.workspace import open_workspace

                self._workspace = open_workspace(self.root)
            return bool(self._workspace.has_changes(job.mapping))
        except NavCrmOpsError:
            return True

    def close(self) -> None:
        if self._workspace is not None:
            self._workspace.close()
            self._workspace = None


@dataclass
class _Execution:
    """One started run of a job, filled in step by step: run the notebook, collect what it
    left, settle the job."""

    job: JobEntry
    previous_status: str
    started: datetime
    notebook: Path
    output: Path
    outcome: RunOutcome = RunOutcome.RUNNING
    error: str = ""
    duration_s: float = 0.0
    saved: Path | None = None
    html: Path | None = None
    html_error: str = ""
    result: JobResult | None = None
    interrupted: bool = False
    """The runner itself was interrupted (Ctrl+C): the run is recorded as cancelled, then the
    interrupt goes on."""
    lease_lost: bool = False
    """The job's lease was lost during the run: a failed attempt, settled only while no other
    runner holds the job."""

    @property
    def result_path(self) -> Path:
        """The notebook writes its summary next to the output notebook."""
        return self.output.with_suffix(".result.json")


class JobRunner:
    """Runs the job queue of the workspace in ``workspace`` (a folder with
    ``nav_crm_ops.toml``). ``clock`` is the scheduling clock (tests pass fixed ones); leases
    always use real time."""

    def __init__(self, workspace: str | Path | WorkspaceConfig = ".", *,
                 holder: str | None = None, lease_ttl_s: float = DEFAULT_LEASE_TTL_S,
                 kernel_name: str = "python3", probe: ChangeProbe | None = None,
                 clock: Callable[[], datetime] = utc_clock,
                 echo: Callable[[str], object] | None = None) -> None:
        self.config = (workspace if isinstance(workspace, WorkspaceConfig)
                       else load_config(Path(workspace)))
        self.root = self.config.root
        self.store = StateStore.open(self.config.state_url)
        self.queue = JobQueue(self.store)
        self.holder = holder or default_holder("jobs run")
        self.lease_ttl_s = lease_ttl_s
        self.kernel_name = kernel_name
        default_probe = WorkspaceChangeProbe(self.root)
        self._default_probe = default_probe if probe is None else None
        self.probe: ChangeProbe = probe or default_probe
        self.clock = clock
        self.echo = echo or (lambda _text: None)
        self._mappings: Any = None

    @property
    def runs_dir(self) -> Path:
        return self.config.resolve_path(self.config.workspace.runs_dir)

    def close(self) -> None:
        if self._default_probe is not None:
            self._default_probe.close()
        self.store.close()

    def __enter__(self) -> JobRunner:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- choosing what to run ------------------------------------------------------------------
    def graph(self, jobs: list[JobEntry] | None = None) -> JobGraph:
        """The dependencies between the queue's jobs (from the workspace's mappings)."""
        if self._mappings is None:
            from ..engine.mapping import MappingSet

            self._mappings = MappingSet.for_workspace(self.config)
        return JobGraph.build(self.queue.list() if jobs is None else jobs, self._mappings)

    def run(self, name: str) -> JobRun:
        """Run one job now, whatever its schedule (a person asked for it)."""
        return self._run_leased(self.queue.get(name).name, due_at=None, changes_detected=False)

    def run_all(self) -> list[JobRun]:
        """Run every job once in queue order, except those a person put On Hold."""
        return [self._run_leased(job.name, due_at=None, changes_detected=False)
                for job in self.queue.list() if job.status != ON_HOLD]

    def run_due(self, now: datetime | None = None) -> list[JobRun]:
        """Run the jobs that are due at ``now`` in queue order; jobs sleeping for inactivity
        are probed for changes first (a probe that finds none moves them one period on)."""
        now = now or self.clock()
        self.recover_stale()
        results = []
        jobs = self.queue.list()
        self._graph = self.graph(jobs)
        woken = self._take_wakes(jobs, now)
        if woken:
            jobs = self.queue.list()
        for job in jobs:
            changes = job.name in woken  # a wake-up (nav-crm-ops listen) is a detected change
            if needs_probe(job, now) and not changes:
                changes = self.probe(job)
                if not changes:
                    self.queue.postpone(job.name, next_run_time(job.recurrence, now, now),
                                        if_status=ON_HOLD_INACTIVITY)
                    continue
            if is_due(job, now, changes_detected=changes):
                results.append(self._run_leased(job.name, due_at=now, changes_detected=changes))
        return results

    def run_loop(self, interval_s: float, *, stop: threading.Event | None = None,
                 iterations: int | None = None) -> list[JobRun]:
        """``run_due`` every ``interval_s`` seconds until ``stop`` is set (or ``iterations``
        rounds ran), sooner when ``nav-crm-ops listen`` woke a job; returns every run."""
        stop = stop or threading.Event()
        runs: list[JobRun] = []
        done = 0
        while not stop.is_set():
            try:
                runs.extend(self.run_due())
            except NavCrmOpsError as exc:  # e.g. the state database is briefly unavailable
                self.echo(f"this round failed ({exc}); trying again in {interval_s:g} s")
            done += 1
            if iterations is not None and done >= iterations:
                break
            self._wait_or_wake(interval_s, stop)
        return runs

    def _take_wakes(self, jobs: list[JobEntry], now: datetime) -> set[str]:
        """Jobs ``nav-crm-ops listen`` marked woken (their tables changed): made due now and
        their marks cleared; a job a person stopped (On Hold, Error, finished) stays as it is."""
        wakes = subscriptions_of(self.store)
        marks = wakes.woken()
        taken: set[str] = set()
        for job in jobs:
            if job.name not in marks:
                continue
            wakes.clear(job.name)
            if job.status not in (READY, ON_HOLD_INACTIVITY):
                continue
            if job.next_run_at is None or job.next_run_at > now:
                self.queue.postpone(job.name, now, if_status=job.status)
            self.echo(f"{job.name}: woken ({marks[job.name]})")
            taken.add(job.name)
        for gone in set(marks) - {job.name for job in jobs}:  # a job removed since
            wakes.clear(gone)
        return taken

    def _wait_or_wake(self, interval_s: float, stop: threading.Event) -> None:
        """Sleep ``interval_s`` but look for wake-ups every :data:`WAKE_CHECK_S` seconds, so
        a woken job starts within seconds whatever the interval."""
        deadline = time.monotonic() + interval_s
        while not stop.is_set():
            left = deadline - time.monotonic()
            if left <= 0 or stop.wait(min(WAKE_CHECK_S, left)):
                return
            try:
                if subscriptions_of(self.store).woken():
                    return
            except NavCrmOpsError:
                continue

    def recover_stale(self) -> list[str]:
        """Jobs left In Process by a runner that died (their lease expired or is gone) count
        as a failed attempt; returns their names. The lease is taken first, so a job another
        runner just started is never touched."""
        recovered = []
        for listed in self.queue.list():
            if listed.status != IN_PROCESS:
                continue
            lease_name = job_lease_name(listed.name)
            try:
                self.store.acquire_lease(lease_name, self.holder, self.lease_ttl_s)
            except LeaseHeldError:
                continue
            try:
                job = self.queue.get(listed.name)
                if job.status != IN_PROCESS:
                    continue
                now = self.clock()
                message = ("the runner that started this run stopped without finishing (its "
                           "lease expired); see that run's output notebook, it may be "
                           "incomplete")
                settled = settle(job, started=job.last_run_at or now, finished=now,
                                 succeeded=False, changed=True, error=message)
                self.queue.save(replace(settled, last_outcome=RunOutcome.FAILED.value,
                                                last_finished_at=now))
                recovered.append(job.name)
            finally:
                self.store.release_lease(lease_name, self.holder)
        return recovered

    # -- one run -----------------------------------------------------------------------------------
    _graph: JobGraph | None = None

    def _claim(self, name: str, *, due_at: datetime | None, changes_detected: bool,
               started: datetime) -> JobClaim:
        """Claim ``name`` (see :meth:`JobQueue.claim`) under the dependency rules."""
        graph = self._graph if due_at is not None and self._graph is not None else self.graph()
        depends_on = graph.depends_on.get(name, frozenset())

        def check(job: JobEntry, related: list[JobEntry]) -> str:
            return start_refusal(job, related, depends_on, due_at=due_at,
                                 changes_detected=changes_detected)

        return self.queue.claim(name, graph.related(name), check, holder=self.holder,
                                ttl_s=self.lease_ttl_s, now=started)

    def _run_leased(self, name: str, *, due_at: datetime | None,
                    changes_detected: bool) -> JobRun:
        started = self.clock()
        claim = self._claim(name, due_at=due_at, changes_detected=changes_detected,
                            started=started)
        if claim.job is None or claim.before is None:
            message = f"skipped {name!r}: {claim.refusal}"
            self.echo(message)
            return JobRun(name, RunOutcome.SKIPPED, self.queue.get(name).status, message=message)
        try:
            return self._execute(claim.job, claim.before, started)
        finally:
            self.store.release_lease(job_lease_name(name), self.holder)

    def _execute(self, job: JobEntry, before: JobEntry, started: datetime) -> JobRun:
        """Check, run, collect and settle one claimed run (``job`` In Process, ``before`` as
        it was); a run that cannot start fails the job."""
        previous_status = before.status
        try:
            notebook = resolve_notebook(job.notebook, self.root)
            check_parameter_values(job.name, job.parameters, configured_secrets(self.config))
        except ConfigError as exc:
            return self._fail_unstarted(before, started, str(exc))
        run = _Execution(job, previous_status, started, notebook,
                         self._output_path(job, started))
        self._run_notebook(run)
        self._collect(run)
        finished = self._finish(run)
        if run.interrupted:
            raise KeyboardInterrupt
        return finished

    def _parameters(self, run: _Execution) -> dict[str, Any]:
        """The notebook's parameters: the job's own plus where to find the workspace and
        where to write its result (never secrets: those were checked before)."""
        job = run.job
        parameters = {**job.parameters, "workspace": str(self.root), "job_name": job.name,
                      "result_path": str(run.result_path)}
        if job.mapping:
            parameters["mapping"] = job.mapping
        return parameters

    def _run_notebook(self, run: _Execution) -> None:
        """Execute the notebook while a heartbeat keeps the job's lease; a lease lost
        meanwhile (another runner may have started the job too) fails the run."""
        parameters = self._parameters(run)
        self.echo(f"running {run.job.name!r} ({run.notebook.name}) -> {run.output}")
        clock_start = time.monotonic()
        lease_name = job_lease_name(run.job.name)
        with LeaseHeartbeat(lambda: self.store.renew_lease(lease_name, self.holder,
                                                           self.lease_ttl_s),
                            lease_name, self.lease_ttl_s) as keeper:
            try:
                run.outcome, run.error = self._papermill(run.notebook, run.output, parameters,
                                                         run.job.execution_timeout_s)
            except KeyboardInterrupt:
                run.outcome, run.interrupted = RunOutcome.CANCELLED, True
                run.error = "cancelled: the job runner was interrupted (Ctrl+C) during the run"
        run.duration_s = time.monotonic() - clock_start
        if keeper.lost:
            lost = f"LeaseLostError: {keeper.lost}"
            run.lease_lost = True
            run.outcome = RunOutcome.CANCELLED if run.interrupted else RunOutcome.FAILED
            run.error = f"{run.error}; {lost}" if run.error else lost

    def _collect(self, run: _Execution) -> None:
        """Keep what the run left: the result summary (an unreadable summary fails the run),
        the run's outcome, the output notebook and its HTML report; link the run's job-log
        entries to the notebook."""
        try:
            run.result = read_result(run.result_path)
        except NavCrmOpsError as exc:
            run.outcome, run.error = RunOutcome.FAILED, str(exc)
        if run.outcome is RunOutcome.SUCCEEDED and run.result is not None:
            run.outcome = run.result.outcome
        run.saved = run.output if run.output.exists() else None
        if run.saved:
            counts = run.result.counts if run.result else {}
            run.html, run.html_error = finish_output_notebook(
                run.saved, run.outcome, run.outcome.label(counts.get("failed", 0),
                                                          counts.get("conflicts", 0)),
                run.error)
        if run.result is not None and run.result.run_ids and run.saved:
            self.store.set_run_output(run.result.run_ids, str(run.saved))

    def _finish(self, run: _Execution) -> JobRun:
        """Settle the job in the queue and say what happened."""
        finished = self.clock()
        job, result, saved = run.job, run.result, run.saved
        if run.lease_lost and self._taken_by_another(job.name):
            self.echo(f"{job.name!r}: failed - {run.error}; another runner took the job over, "
                      "so it settles the job")
            return JobRun(job=job.name, outcome=run.outcome, status=self.queue.get(job.name)
                          .status, run_number=job.run_count, error=run.error,
                          output_notebook=saved, output_html=run.html,
                          duration_s=run.duration_s)
        settled = self._settled(job, run.previous_status, run.outcome, run.error,
                                True if result is None else result.changed, run.started,
                                finished)
        counts = dict(result.counts) if result else {}
        run_ids = result.run_ids if result else ()
        self.queue.save(replace(
            settled, last_finished_at=finished, last_outcome=run.outcome.value,
            last_duration_s=run.duration_s, last_counts=counts, last_run_ids=run_ids,
            last_output=str(saved) if saved else None))
        label = (waiting_label(counts, result.message if result else "")
                 or run.outcome.label(counts.get("failed", 0), counts.get("conflicts", 0)))
        self.echo(f"{job.name!r}: {label}, status {settled.status}"
                  + (f" - {run.error}" if run.error else ""))
        self._check_alerts()
        return JobRun(job=job.name, outcome=run.outcome, status=settled.status,
                      run_number=job.run_count, counts=counts, run_ids=run_ids,
                      changed=None if result is None else result.changed, error=run.error,
                      output_notebook=saved, output_html=run.html, duration_s=run.duration_s,
                      message=run.html_error or (result.message if result else ""))

    def _check_alerts(self) -> None:
        """Evaluate the alert rules after the job settled (a job that stopped succeeding is
        seen here; its syncs evaluated them too) and say what was raised or cleared."""
        if not self.config.alerts.enabled:
            return
        from ..engine.notify import check_workspace_alerts

        try:
            check = check_workspace_alerts(self.config, self.store)
        except NavCrmOpsError as exc:  # never fails the run that was just settled
            self.echo(f"alerts could not be evaluated: {exc}")
            return
        for line in check.lines():
            self.echo(line)

    def _taken_by_another(self, name: str) -> bool:
        """Whether another holder has the job's lease now (it took it after ours expired)."""
        lease = self.store.lease(job_lease_name(name))
        return (lease is not None and lease.holder != self.holder
                and lease.expires_at > utc_now())

    def _output_path(self, job: JobEntry, started: datetime) -> Path:
        """``runs/<date>/<job>-<run number>.ipynb`` (unique even if names slug alike)."""
        day = self.runs_dir / started.strftime("%Y-%m-%d")
        day.mkdir(parents=True, exist_ok=True)
        stem = f"{_slug(job.name)}-{job.run_count}"
        if (day / f"{stem}.ipynb").exists():  # another job with a similar name, or a reset queue
            stem = f"{stem}-{started:%H%M%S%f}"
        return day / f"{stem}.ipynb"

    @staticmethod
    def _settled(job: JobEntry, previous_status: str, outcome: RunOutcome, error: str,
                 changed: bool,
                 started: datetime, finished: datetime) -> JobEntry:
        """The job after this run. ``busy`` (the engine found the mapping being synchronized
        elsewhere) is no attempt: it runs again after the rerun delay. A job a person put On
        Hold and ran by hand stays On Hold."""
        if outcome is RunOutcome.BUSY:
            retry_at = earliest_allowed(job.recurrence,
                                        finished + timedelta(seconds=job.rerun_delay_s))
            return replace(job, status=READY if previous_status == IN_PROCESS
                           else previous_status, next_run_at=retry_at, last_error=error)
        settled = settle(job, started=started, finished=finished,
                         succeeded=outcome.completed, changed=changed, error=error)
        return replace(settled, status=ON_HOLD) if previous_status == ON_HOLD else settled

    def _fail_unstarted(self, job: JobEntry, now: datetime, error: str) -> JobRun:
        """A run that could not start (its notebook is missing, a parameter holds a configured
        secret) is a failed attempt, so the job ends in Error with the reason instead of
        stopping the other jobs; no output notebook is written."""
        settled = settle(job, started=now, finished=now, succeeded=False, changed=True,
                         error=error)
        self.queue.save(replace(settled, last_run_at=now, last_finished_at=now,
                                last_outcome=RunOutcome.FAILED.value, last_counts={},
                                last_run_ids=(),
                                last_output=None, last_duration_s=0.0))
        self.echo(f"{job.name!r}: failed, status {settled.status} - {error}")
        return JobRun(job.name, RunOutcome.FAILED, settled.status, error=error)

    def _papermill(self, notebook: Path, output: Path, parameters: dict[str, Any],
                   timeout_s: int) -> tuple[RunOutcome, str]:
        """Execute; returns (outcome, error message). A kernel that never started is started
        again (:data:`KERNEL_START_ATTEMPTS`)."""
        for _ in range(KERNEL_START_ATTEMPTS - 1):
            outcome, error = self._papermill_once(notebook, output, parameters, timeout_s)
            if _NOT_STARTED not in error:
                return outcome, error
            self.echo(f"{notebook.name}: the kernel died before it started ({error}); "
                      "starting it again")
        return self._papermill_once(notebook, output, parameters, timeout_s)

    def _papermill_once(self, notebook: Path, output: Path, parameters: dict[str, Any],
                        timeout_s: int) -> tuple[RunOutcome, str]:
        """One papermill execution. The output notebook is written by papermill after every
        cell, so it exists even when a cell failed or timed out."""
        import papermill
        from nbclient.exceptions import CellTimeoutError, DeadKernelError
        from papermill.exceptions import PapermillExecutionError

        try:
            papermill.execute_notebook(
                str(notebook), str(output), parameters=parameters, kernel_name=self.kernel_name,
                execution_timeout=timeout_s, start_timeout=KERNEL_START_TIMEOUT_S,
                progress_bar=False, log_output=False, cwd=str(self.root))
        except PapermillExecutionError as exc:
            if exc.ename == "LeaseHeldError":
                return RunOutcome.BUSY, f"{exc.ename}: {exc.evalue}"
            if exc.ename in _CANCELLED_ERRORS:
                return RunOutcome.CANCELLED, f"{exc.ename}: {exc.evalue}"
            return RunOutcome.FAILED, f"{exc.ename}: {exc.evalue} (cell {exc.exec_count})"
        except CellTimeoutError:
            return RunOutcome.TIMED_OUT, (f"a cell ran longer than the execution timeout ({timeout_s} s); "
                               "the kernel was stopped. Raise it with `nav-crm-ops jobs set "
                               "NAME --timeout SECONDS` if the work is legitimately slow")
        except DeadKernelError as exc:
            return RunOutcome.FAILED, (f"the notebook's kernel died ({exc}); see the output "
                                       "notebook")
        except Exception as exc:  # papermill/nbclient raise many types; all fail the run
            return RunOutcome.FAILED, f"{type(exc).__name__}: {exc}"
        return RunOutcome.SUCCEEDED, ""

