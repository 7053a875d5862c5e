"""``nav-crm-ops jobs ...``: the job queue from the command line (cron, systemd, Airflow).

Exit codes follow the main CLI: 0 success (or nothing was due), 1 a job's notebook failed or
timed out, 2 bad input (config, unknown job, bad option), 3 a service problem, 4 the job named
on the command line did not run because it is busy elsewhere (another runner holds the job, a
job it depends on or that depends on it is running, or its mapping is being synchronized by
someone else), 5 with ``--skip-on-hold``: the job named is
On Hold and was not run. 4 and 5 are "not run", never success, so Airflow and cron wrappers
can retry (4) or skip (5).
"""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

import click

from ..cli_options import (
    EXIT_BAD_INPUT,
    EXIT_FAILED_RECORDS,
    EXIT_LEASE,
    EXIT_ON_HOLD,
    EXIT_SERVICE,
    json_option,
    workspace_option,
)
from ..config import configured_secrets, load_config
from ..exceptions import ConfigError, ConnectorError, LeaseHeldError, NavCrmOpsError
from ..store import StateStore
from ..store.runs import RunOutcome
from .airflow import DEFAULT_DAG_ID, airflow_dag, render_dag
from .approval_gate import stop_waiting
from .approvals import APPROVAL_PARAMETER, ApprovalSettings, approval_settings, check_fields
from .defaults import DEFAULT_EVERY_MINUTES, init_queue
from .queue import (
    JOB_KINDS,
    ON_HOLD,
    JobEntry,
    JobQueue,
    check_parameter_values,
    check_parameters,
    parse_status,
    reschedule,
    resume,
    utc_clock,
)
from .recurrence import Recurrence, parse_time_of_day, parse_utc, parse_weekdays
from .runner import JobRun, JobRunner
from .summary import runs_table, shown_path

__all__ = ["jobs"]

EXIT_JOB_FAILED = EXIT_FAILED_RECORDS
_TERMINAL_COLOURS = {
    RunOutcome.SUCCEEDED: "green", RunOutcome.SUCCEEDED_WITH_FAILURES: "yellow",
    RunOutcome.HELD_CONFLICTS: "yellow", RunOutcome.FAILED: "red", RunOutcome.TIMED_OUT: "red",
    RunOutcome.CANCELLED: "bright_black", RunOutcome.RUNNING: "blue"}
"""Terminal colours closest to :attr:`RunOutcome.colour` (same meaning, same colour; the
others plain). click drops them when the output is not a terminal."""

F = TypeVar("F", bound=Callable[..., Any])



def _schedule_options(function: F) -> F:
    """Options shared by ``jobs add`` and ``jobs set`` (None: leave as is)."""
    options = [
        click.option("--every", type=click.IntRange(min=1), help="Run every N minutes."),
        click.option("--once", is_flag=True, help="Run once, then Finished (no recurrence)."),
        click.option("--weekdays", help="Days it may run: 'mon-fri', 'sat,sun', '' for all."),
        click.option("--start", "starting_time", help="Daily window start, HH:MM ('' clears)."),
        click.option("--end", "ending_time", help="Daily window end, HH:MM ('' clears)."),
        click.option("--timezone", help="IANA time zone of weekdays and window (default UTC)."),
        click.option("--earliest-start", help="Not before this ISO time ('' clears)."),
        click.option("--expiration", help="Not after this ISO time ('' clears)."),
        click.option("--max-attempts", type=click.IntRange(1, 10),
                     help="Failed runs in a row before the job goes to Error."),
        click.option("--rerun-delay", type=click.IntRange(min=0),
                     help="Seconds before a failed run is retried."),
        click.option("--inactivity-timeout", type=click.IntRange(min=0),
                     help="Minutes a job that changed nothing sleeps (0: never sleeps)."),
        click.option("--timeout", "execution_timeout", type=click.IntRange(min=1),
                     help="Execution timeout per notebook cell, seconds."),
        click.option("--param", "params", multiple=True, metavar="KEY=VALUE",
                     help="Notebook parameter (JSON value or text); repeatable. Never secrets."),
        click.option("--approval", metavar="JSON|off",
                     help="Approval mode (sync jobs): thresholds as JSON, e.g. "
                          "'{\"max_creates\": 50, \"fields\": [\"creditlimit\"]}'; 'off' "
                          "ends it. See docs/approvals.md."),
    ]
    for option in reversed(options):
        function = option(function)
    return function


def _exit_code(error: NavCrmOpsError) -> int:
    if isinstance(error, LeaseHeldError):
        return EXIT_LEASE
    if isinstance(error, ConnectorError):
        return EXIT_SERVICE
    return EXIT_BAD_INPUT


@contextmanager
def _reported_errors() -> Iterator[None]:
    try:
        yield
    except NavCrmOpsError as error:
        click.echo(f"Error: {error}", err=True)
        sys.exit(_exit_code(error))


@contextmanager
def _open_queue(workspace_path: Path) -> Iterator[JobQueue]:
    config = load_config(workspace_path)
    store = StateStore.open(config.state_url)
    try:
        yield JobQueue(store)
    finally:
        store.close()


def _parse_params(pairs: tuple[str, ...]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for number, pair in enumerate(pairs, start=1):
        key, sep, text = pair.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"--param #{number} is not KEY=VALUE (not shown: it may "
                                     "hold a secret)", param_hint="--param")
        try:
            values[key.strip()] = json.loads(text)
        except ValueError:
            values[key.strip()] = text
    return values


def _checked_params(name: str, options: dict[str, Any], workspace_path: Path) -> None:
    """Parse ``--param`` values into ``options["params"]`` and refuse secrets (by name, or a
    value holding a configured client secret) before anything is opened or written."""
    values = _parse_params(options["params"])
    if values:
        check_parameters(name, values)
        check_parameter_values(name, values, configured_secrets(load_config(workspace_path)))
    options["params"] = values
    options["approval"] = _approval_option(name, options["approval"])


_OFF = "off"


def _approval_option(name: str, text: str | None) -> ApprovalSettings | str | None:
    """``--approval``: None (leave as is), :data:`_OFF`, or the parsed settings (ConfigError,
    exit 2, before anything is opened or written)."""
    if text is None:
        return None
    if text.strip().lower() in (_OFF, "none", ""):
        return _OFF
    try:
        value = json.loads(text)
    except ValueError:
        raise ConfigError(f"job {name!r}: --approval must be JSON such as "
                          "'{\"max_creates\": 50}' (or 'off'); see docs/approvals.md") from None
    return ApprovalSettings.parse(name, value)


def _check_approval_fields(entry: JobEntry, workspace_path: Path) -> None:
    """The fields an approval-mode job watches must be fields of its mapping: a typo would
    never trigger."""
    settings = approval_settings(entry.name, entry.parameters)
    if settings is None or not settings.fields:
        return
    from ..engine.mapping import MappingSet

    mappings = MappingSet.for_workspace(load_config(workspace_path))
    check_fields(settings, mappings.get(entry.mapping), entry.name)


def _recurrence(base: Recurrence, options: dict[str, Any]) -> Recurrence:
    changes: dict[str, Any] = {}
    if options["once"]:
        changes["every_minutes"] = None
    elif options["every"] is not None:
        changes["every_minutes"] = options["every"]
    if options["weekdays"] is not None:
        changes["weekdays"] = parse_weekdays(options["weekdays"])
    for key in ("starting_time", "ending_time"):
        if options[key] is not None:
            changes[key] = parse_time_of_day(options[key])
    if options["timezone"] is not None:
        changes["timezone"] = options["timezone"]
    for key in ("earliest_start", "expiration"):
        if options[key] is not None:
            changes[key] = parse_utc(options[key])
    return replace(base, **changes) if changes else base


def _settings(job: JobEntry, options: dict[str, Any]) -> JobEntry:
    changes: dict[str, Any] = {}
    for option, attribute in (("max_attempts", "max_attempts"),
                              ("rerun_delay", "rerun_delay_s"),
                              ("inactivity_timeout", "inactivity_timeout_min"),
                              ("execution_timeout", "execution_timeout_s")):
        if options[option] is not None:
            changes[attribute] = options[option]
    if options["params"]:
        changes["parameters"] = {**job.parameters, **options["params"]}
    approval = options["approval"]
    if approval is not None:  # --approval: set or end approval mode (docs/approvals.md)
        parameters = {key: value for key, value in changes.get("parameters", job.parameters)
                      .items() if key != APPROVAL_PARAMETER}
        if isinstance(approval, ApprovalSettings):
            parameters[APPROVAL_PARAMETER] = approval.to_dict()
        changes["parameters"] = parameters
    return replace(job, **changes) if changes else job


def _when(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value is not None else "-"


@click.group()
def jobs() -> None:
    """The job queue: scheduled synchronization notebooks, run by papermill."""


@jobs.command("init")
@workspace_option
@click.option("--every", type=click.IntRange(min=1), default=DEFAULT_EVERY_MINUTES,
              show_default=True, help="Minutes between runs of each default job.")
def init_command(workspace_path: Path, every: int) -> None:
    """Create the default job for every mapping (and flow), in the recommended order."""
    from ..engine.mapping import MappingSet

    with _reported_errors(), _open_queue(workspace_path) as queue:
        mappings = MappingSet.for_workspace(load_config(workspace_path))
        for entry, created in init_queue(queue, mappings, every_minutes=every):
            click.echo(f"{'created' if created else 'exists '}  {entry.position:>3}  "
                       f"{entry.name}")


@jobs.command("list")
@workspace_option
@json_option
def list_command(workspace_path: Path, as_json: bool) -> None:
    """Every job in run order: status, schedule, next and last run, its outcome and report."""
    with _reported_errors(), _open_queue(workspace_path) as queue:
        entries = queue.list()
        root = load_config(workspace_path).root
    if as_json:
        click.echo(json.dumps([e.to_dict() for e in entries], indent=2))
        return
    if not entries:
        click.echo("No jobs yet; run `nav-crm-ops jobs init` to create the default jobs.")
        return
    rows = [["#", "job", "status", "schedule", "next run (UTC)", "last run (UTC)", "last outcome",
             "last report"]]
    rows += [[str(e.position), e.name, e.status, e.recurrence.describe(), _when(e.next_run_at),
              _when(e.last_run_at), e.outcome_label, shown_path(e.last_report, root)]
             for e in entries]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    outcome_column = 6
    for row, entry in zip(rows, [None, *entries], strict=True):
        cells = [c.ljust(w) for c, w in zip(row, widths, strict=True)]
        if entry is not None and entry.outcome is not None:  # colour by meaning on a terminal
            cells[outcome_column] = click.style(cells[outcome_column],
                                                fg=_TERMINAL_COLOURS.get(entry.outcome))
        click.echo("  ".join(cells).rstrip())


@jobs.command("show")
@click.argument("name")
@workspace_option
@json_option
def show_command(name: str, workspace_path: Path, as_json: bool) -> None:
    """One job's settings and last run (NAME or its mapping's name)."""
    with _reported_errors(), _open_queue(workspace_path) as queue:
        entry = queue.get(name)
    data = entry.to_dict()
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    width = max(len(k) for k in data)
    for key, value in data.items():
        shown = json.dumps(value) if isinstance(value, (dict, list)) else value
        click.echo(f"{key:<{width}}  {'' if shown is None else shown}")


@jobs.command("add")
@click.argument("name")
@click.option("--notebook", required=True, help="Notebook to run (path).")
@click.option("--kind", type=click.Choice(JOB_KINDS), default="notebook", show_default=True)
@click.option("--mapping", default="", help="Mapping a sync job runs.")
@_schedule_options
@workspace_option
def add_command(name: str, notebook: str, kind: str, mapping: str, workspace_path: Path,
                **options: Any) -> None:
    """Add a job that runs any parameterized notebook (or a sync of MAPPING)."""
    with _reported_errors():
        _checked_params(name, options, workspace_path)
    with _reported_errors(), _open_queue(workspace_path) as queue:
        entry = JobEntry(name=name, kind=kind, notebook=notebook, mapping=mapping.upper())
        entry = _settings(replace(entry, recurrence=_recurrence(entry.recurrence, options)),
                          options)
        _check_approval_fields(entry, workspace_path)
        stored = queue.add(entry)
    click.echo(f"added {stored.name!r} ({stored.recurrence.describe()}), next run "
               f"{_when(stored.next_run_at)}")


@jobs.command("set")
@click.argument("name")
@click.option("--status", help="Ready (resumes, resets attempts), 'On Hold' or Finished.")
@click.option("--notebook", help="Notebook to run (path).")
@_schedule_options
@workspace_option
def set_command(name: str, status: str | None, notebook: str | None, workspace_path: Path,
                **options: Any) -> None:
    """Change a job's schedule, attempts, timeouts, parameters or status."""
    with _reported_errors():
        _checked_params(name, options, workspace_path)
    with _reported_errors(), _open_queue(workspace_path) as queue:
        now = utc_clock()
        job = queue.get(name)
        queue.refuse_while_running(job)
        updated = _settings(job, options)
        _check_approval_fields(updated, workspace_path)
        if notebook is not None:
            updated = replace(updated, notebook=notebook)
        recurrence = _recurrence(job.recurrence, options)
        if recurrence != job.recurrence:
            updated = reschedule(updated, recurrence, now)
        if status is not None:
            updated = resume(updated, parse_status(status), now)
        stored = queue.save(updated, now=now)
        ended = (stop_waiting(queue.store.approvals, stored.name)
                 if options["approval"] == _OFF else 0)
    click.echo(f"{stored.name}: {stored.status}, {stored.recurrence.describe()}, next run "
               f"{_when(stored.next_run_at)}")
    if options["approval"] is not None:
        settings = approval_settings(stored.name, stored.parameters)
        click.echo(f"approval mode: {settings.describe()}" if settings is not None else
                   "approval mode off" + (f"; {ended} open approval(s) expired" if ended else ""))


@jobs.command("remove")
@click.argument("name")
@workspace_option
def remove_command(name: str, workspace_path: Path) -> None:
    """Delete a job queue entry (its job-log entries and output notebooks stay)."""
    with _reported_errors(), _open_queue(workspace_path) as queue:
        entry = queue.get(name)
        queue.remove(entry.name)
    click.echo(f"removed {entry.name!r}")


@jobs.command("run")
@click.argument("name", required=False)
@click.option("--due", is_flag=True, help="Run the jobs whose time has come (for cron).")
@click.option("--all", "run_all", is_flag=True, help="Run every job once, in order.")
@click.option("--loop", is_flag=True, help="With --due: keep running until Ctrl+C.")
@click.option("--interval", type=click.FloatRange(min=1), default=60.0, show_default=True,
              help="Seconds between --loop rounds.")
@click.option("--skip-on-hold", is_flag=True,
              help=f"With NAME: a job On Hold is not run (exit {EXIT_ON_HOLD}; for Airflow).")
@workspace_option
@json_option
def run_command(name: str | None, due: bool, run_all: bool, loop: bool, interval: float,
                skip_on_hold: bool, workspace_path: Path, as_json: bool) -> None:
    """Run NAME now, the due jobs (--due, --loop) or all jobs (--all) through papermill."""
    if loop:
        due = True
    if sum([name is not None, due, run_all]) != 1:
        raise click.UsageError("give exactly one of NAME, --due or --all (--loop implies --due)")
    if skip_on_hold and name is None:
        raise click.UsageError("--skip-on-hold goes with NAME (--due and --all never run a "
                               "job On Hold)")
    echo: Callable[[str], object] = (lambda _text: None) if as_json else click.echo
    with _reported_errors(), JobRunner(workspace_path, echo=echo) as runner:
        if name is not None:
            runs = [_run_named(runner, name, skip_on_hold)]
        elif run_all:
            runs = runner.run_all()
        elif loop:
            runs = _loop(runner, interval)
        else:
            runs = runner.run_due()
    _report_runs(runs, named=name is not None, as_json=as_json)


def _report_runs(runs: list[JobRun], *, named: bool, as_json: bool) -> None:
    """Print the runs; exit 1 if one failed, 4 if the job named was not run (busy or held
    by another runner: never success, so a scheduler retries it)."""
    if as_json:
        click.echo(json.dumps([r.to_dict() for r in runs], indent=2))
    elif runs:
        click.echo(runs_table(runs))
    else:
        click.echo("No job was due.")
    if any(r.outcome.is_failure for r in runs):
        sys.exit(EXIT_JOB_FAILED)
    if named and runs[0].outcome in (RunOutcome.SKIPPED, RunOutcome.BUSY):
        sys.exit(EXIT_LEASE)


def _run_named(runner: JobRunner, name: str, skip_on_hold: bool) -> JobRun:
    """``jobs run NAME``: runs it whatever its status, unless ``--skip-on-hold`` and a person
    put it On Hold (then exits :data:`EXIT_ON_HOLD`, so Airflow marks the task skipped)."""
    job = runner.queue.get(name)
    if skip_on_hold and job.status == ON_HOLD:
        click.echo(f"not run: {job.name!r} is On Hold", err=True)
        sys.exit(EXIT_ON_HOLD)
    return runner.run(job.name)


@jobs.command("airflow-dag")
@click.option("--out", "out_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the DAG file here (default: standard output).")
@click.option("--dag-id", default=DEFAULT_DAG_ID, show_default=True, help="The DAG's id.")
@click.option("--executable", default="nav-crm-ops", show_default=True,
              help="The nav-crm-ops command as the Airflow worker finds it (name or path).")
@workspace_option
def airflow_dag_command(out_path: Path | None, dag_id: str, executable: str,
                        workspace_path: Path) -> None:
    """An Airflow DAG of the job queue: one task per job, the mappings' dependencies as
    edges, busy retried, On Hold skipped; no secrets (regenerate when jobs change)."""
    from ..engine.mapping import MappingSet

    with _reported_errors(), _open_queue(workspace_path) as queue:
        config = load_config(workspace_path)
        spec = airflow_dag(queue.list(), MappingSet.for_workspace(config),
                           str(config.root.resolve()), dag_id=dag_id, executable=executable)
    text = render_dag(spec)
    if out_path is None:
        click.echo(text, nl=False)
        return
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(text, encoding="utf-8")
    schedules = ", ".join(f"{dag.dag_id}: {dag.schedule}" for dag in spec.dags)
    click.echo(f"wrote {out_path} ({len(spec.tasks)} tasks; {schedules})")


def _loop(runner: JobRunner, interval: float) -> list[JobRun]:
    stop = threading.Event()
    click.echo(f"Running due jobs every {interval:g} s; Ctrl+C stops after the current job.")
    try:
        return runner.run_loop(interval, stop=stop)
    except KeyboardInterrupt:
        stop.set()
        return []


if __name__ == "__main__":
    jobs()
