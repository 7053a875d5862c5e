"""``make bench``: run every scenario and its baselines, write results.md and results.json.

Usage: ``python -m benchmarks.run [--quick] [--only NAME,...] [--out DIR]``.

Every job (a variant of a scenario) runs in a fresh process (``benchmarks.child``) so its peak
memory is its own: the child reports its ``VmHWM`` (kernel high-water mark of resident memory);
the runner also records ``ru_maxrss`` from ``os.wait4`` for that child as a cross-check. Ratios
against the baselines are computed here from rows measured in the same run. ``--quick`` runs
small sizes in seconds (CI keeps the harness working with it; its timings mean nothing).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.machine import describe_machine, machine_summary
from benchmarks.report import write_results
from benchmarks.scenarios import ScenarioSpec, by_name

REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO / "benchmarks"
JOB_TIMEOUT_S = 1800


def _run_child(spec: ScenarioSpec, step: str, *, quick: bool, workdir: Path,
               log: Path) -> dict[str, Any]:
    """Run one step in its own process; its output plus wall time and wait4 peak RSS."""
    out = workdir / f"{step}.result.json"
    command = [sys.executable, "-m", "benchmarks.child", spec.module, step,
               "--size", str(spec.size(quick)), "--repeats", str(spec.repeats(quick)),
               "--workdir", str(workdir), "--out", str(out), *(["--quick"] if quick else [])]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)}
    started = time.monotonic()
    with log.open("ab") as sink:
        sink.write(f"\n== {spec.name} {step}: {' '.join(command)}\n".encode())
        sink.flush()
        process = subprocess.Popen(command, cwd=REPO, env=env, stdout=sink, stderr=sink)
        _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    elapsed = time.monotonic() - started
    result: dict[str, Any] = {"rows": []}
    if out.exists():
        result = json.loads(out.read_text())
    elif process.returncode != 0:
        result["error"] = f"{step} exited with code {process.returncode}; see {log}"
    result["process_wall_s"] = elapsed
    result["wait4_maxrss_mb"] = usage.ru_maxrss / 1024
    return result


def _ratio(row: dict[str, Any], baseline: dict[str, Any]) -> float | None:
    if row["metric"] == "rate_per_s":
        mine, theirs = row.get("rate_per_s"), baseline.get("rate_per_s")
        return mine / theirs if mine and theirs else None
    mine, theirs = row.get("wall_s"), baseline.get("wall_s")
    return theirs / mine if mine and theirs else None


def _lookup(row: dict[str, Any], name: str) -> float | None:
    value = row.get(name, row.get("figures", {}).get(name))
    return float(value) if isinstance(value, int | float) else None


def _check_limits(row: dict[str, Any]) -> bool | None:
    """True/False when the row has limits (``<figure>_max`` / ``<figure>_min``)."""
    verdicts = []
    for key, bound in row.get("limits", {}).items():
        figure, kind = key.rsplit("_", 1)
        value = _lookup(row, figure)
        if value is None:
            verdicts.append(False)
        else:
            verdicts.append(value <= bound if kind == "max" else value >= bound)
    return all(verdicts) if verdicts else None


def _counts_agree(row: dict[str, Any], other: dict[str, Any]) -> bool | None:
    common = set(row.get("counts", {})) & set(other.get("counts", {}))
    if not common:
        return None
    return all(row["counts"][k] == other["counts"][k] for k in common)


def _finish_rows(rows: list[dict[str, Any]], quick: bool) -> None:
    """Ratios against the baselines of the same scenario, count checks, target verdicts."""
    by_variant = {r["variant"]: r for r in rows}
    for row in rows:
        baseline = by_variant.get(row["baseline"])
        row["ratio"] = _ratio(row, baseline) if baseline else None
        row["memory_ratio"] = (row["peak_rss_mb"] / baseline["peak_rss_mb"]
                               if baseline and baseline.get("peak_rss_mb")
                               and row.get("peak_rss_mb") and row["peak_scope"] == "alone"
                               and baseline["peak_scope"] == "alone" else None)
        row["ratios"] = {name: _ratio(row, by_variant[name])
                         for name in [row["baseline"], *row.get("also_compare", ())]
                         if name in by_variant}
        checks = {name: _counts_agree(row, by_variant[name]) for name in row["ratios"]
                  if name != row["variant"]}
        if row.get("expected"):
            checks["planted"] = _counts_agree(row, {"counts": row["expected"]})
        floors = (_lookup(row, "service_limit_floor_s"),
                  _lookup(baseline, "service_limit_floor_s") if baseline else None)
        if baseline is not None and baseline is not row and None not in floors:
            # Derived: each wall time raised to the floor the services' request limits set.
            row["ratio_at_service_limits"] = (max(baseline["wall_s"], floors[1] or 0.0)
                                              / max(row["wall_s"], floors[0] or 0.0))
        known = [v for v in checks.values() if v is not None]
        row["counts_checked_against"] = sorted(k for k, v in checks.items() if v is not None)
        row["counts_match"] = all(known) if known else None
        row["target_met"] = None if quick else _check_limits(row)


def _run_scenario(spec: ScenarioSpec, quick: bool, work_root: Path, log: Path,
                  machine: dict[str, Any], skipped: list[str],
                  ) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """Prepare, then every job of one scenario in order; rows with ratios and checks.
    Jobs that cannot run here are appended to ``skipped``."""
    workdir = work_root / spec.name
    workdir.mkdir(parents=True)
    errors: list[dict[str, str]] = []
    print(f"[{spec.number}] {spec.title} (size {spec.size(quick):,})", flush=True)
    if spec.prepare:
        prepared = _run_child(spec, "prepare", quick=quick, workdir=workdir, log=log)
        if "error" in prepared:
            print(f"    {spec.name} prepare failed: {prepared['error']}", flush=True)
            return [], [{"scenario": spec.name, "step": "prepare",
                         "error": str(prepared["error"])}]
    rows: list[dict[str, Any]] = []
    for job in spec.jobs:
        result = _run_child(spec, job, quick=quick, workdir=workdir, log=log)
        if "error" in result:
            errors.append({"scenario": spec.name, "step": job, "error": str(result["error"])})
            print(f"    {spec.name} {job} failed: {result['error']}", flush=True)
        if "skipped" in result:
            skipped.append(f"{spec.number} {spec.name}/{job}: {result['skipped']}")
            print(f"    {spec.name} {job} not measured: {result['skipped']}", flush=True)
        job_rows = result.get("rows", [])
        for row in job_rows:
            row.update(
                scenario=spec.name, scenario_number=spec.number, scenario_title=spec.title,
                size=spec.size(quick), quick=quick, job=job,
                peak_rss_mb=result.get("vm_hwm_mb"),
                peak_rss_wait4_mb=result["wait4_maxrss_mb"],
                load_average=[result.get("load_average_start"),
                              result.get("load_average_end")],
                peak_scope="alone" if len(job_rows) == 1 else
                f"shared by the {len(job_rows)} rows of job {job}",
                machine=machine)
            print(f"    {spec.name}/{row['variant']:<24} {row['wall_s']:9.3f} s  "
                  f"peak {row['peak_rss_mb']:8.1f} MB", flush=True)
        rows.extend(job_rows)
    _finish_rows(rows, quick)
    return rows, errors


def run(quick: bool, only: str | None, out: Path, *, keep_work: bool = False,
        parallel: int = 1, sizes: dict[str, int] | None = None) -> dict[str, Any]:
    """Run the chosen scenarios; returns the results document (also written to ``out``).

    ``parallel`` > 1 runs that many scenarios at once (quick runs only: concurrent scenarios
    disturb each other's timings and memory). ``sizes`` overrides scenario sizes by name.
    """
    sizes = sizes or {}
    if parallel > 1 and not quick:
        raise SystemExit("--parallel is for --quick runs only: concurrent scenarios disturb "
                         "each other's figures")
    machine = describe_machine()
    out.mkdir(parents=True, exist_ok=True)
    log = out / "bench.log"
    log.write_text("")
    work_root = Path(tempfile.mkdtemp(prefix="nav-crm-ops-bench-"))
    specs = [replace(spec, full_size=sizes[spec.name], quick_size=sizes[spec.name])
             if spec.name in sizes else spec for spec in by_name(only)]
    skipped: list[str] = []
    started = time.monotonic()
    try:
        with ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
            outcomes = list(pool.map(
                lambda spec: _run_scenario(spec, quick, work_root, log, machine, skipped),
                specs))
    finally:
        if keep_work:
            print(f"work files kept in {work_root}")
        else:
            shutil.rmtree(work_root, ignore_errors=True)
    rows = [row for scenario_rows, _ in outcomes for row in scenario_rows]
    errors = [error for _, scenario_errors in outcomes for error in scenario_errors]
    measured = {row["scenario"] for row in rows}
    document = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "quick": quick,
        "machine": machine,
        "machine_summary": machine_summary(machine),
        "memory_method": "peak_rss_mb: VmHWM of the job's own process (read by the child at "
                         "exit); peak_rss_wait4_mb: ru_maxrss from os.wait4 for that child",
        "total_wall_s": time.monotonic() - started,
        "parallel": parallel,
        "rows": rows,
        "errors": errors,
        "not_measured": [f"{spec.number} {spec.name}: no rows (see errors)"
                         for spec in specs if spec.name not in measured] + skipped,
    }
    write_results(document, out)
    return document


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="small sizes, seconds not minutes (CI); timings mean nothing")
    parser.add_argument("--only", help="comma-separated scenario names (default: all)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help="folder for results.md, results.json and bench.log")
    parser.add_argument("--parallel", type=int, default=1,
                        help="scenarios run at once (--quick only; CI uses 2)")
    parser.add_argument("--size", action="append", default=[], metavar="NAME=N",
                        help="override a scenario's size (exploration; repeatable)")
    parser.add_argument("--keep-work", action="store_true",
                        help="keep the generated inputs (temporary folder) for inspection")
    args = parser.parse_args(argv)
    try:
        sizes = {name: int(n) for name, n in (item.split("=", 1) for item in args.size)}
    except ValueError:
        parser.error("--size takes NAME=N, e.g. --size initial_sync=5000")
    document = run(args.quick, args.only, args.out.resolve(), keep_work=args.keep_work,
                   parallel=args.parallel, sizes=sizes)
    print(f"results: {args.out / 'results.md'} and {args.out / 'results.json'}")
    return 1 if document["errors"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
