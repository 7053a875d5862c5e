"""Scenario 7: the initial sync of 1,000,000 customers, then a 1% incremental (issue #19).

Jobs, each a process of its own so each peak is its own (they share the work folder):

* ``ours_initial``: a sandbox seeded ``scale:<size>`` (its own process, data kept in the work
  folder), the CRM's accounts deleted and CUSTOMER's lookups (SALESPEOPLE, CURRENCY) synced,
  all untimed; then CUSTOMER's first sync, timed. The process's memory high-water mark is
  reset (``/proc/self/clear_refs``) just before the timed sync, so ``peak_rss_mb`` is the
  sync's own, not the set-up's (deleting 380,000 seeded accounts holds their outcomes).
* ``ours_incremental``: the same sandbox data served again (no reseed) and the same workspace;
  1% of the synced customers get a new phone number in BC (untimed), the high-water mark is
  reset, CUSTOMER is synced (timed).
* ``per_record_patch``: the reference way for the same kind of change, measured on
  ``PATCH_SAMPLE`` further changed customers in the same sandbox (a paged read of the BC
  customers modified since, then one httpx PATCH each) and extrapolated linearly to 1% of
  ``size`` (labelled extrapolated).
* ``per_record``: one httpx POST per record after a paged BC read, measured on a
  ``scale:5000`` sandbox and extrapolated to ``size`` (as scenario 2).

Targets (issue #19): initial sync peak RSS <= 600 MB per 100,000 records and <= 100 µs of
client CPU per record, requests <= 1.05x the minimum; the incremental sync under 500 MB,
>= 3x faster than one PATCH per changed record, requests <= 1.05x the minimum.
"""

from __future__ import annotations

import math
import socket
import time
from pathlib import Path

from nav_crm_ops import open_workspace
from nav_crm_ops.config import write_config
from nav_crm_ops.engine.workspace import Workspace

from ..harness import Context, Measurement, proc_status_mb
from ..sandbox_process import RunningSandbox, running_sandbox
from .syncs import (
    BC_PAGE,
    DATAVERSE_BATCH,
    _bc_clock,
    _change_phones,
    _empty_crm_accounts,
    _limit_floor_s,
    _requests_row,
    _sync,
    measure_per_record,
    patch_changed,
)

__all__ = ["measure"]

PATCH_SAMPLE = 1000
PER_100K_MAX_MB = 600.0
CPU_US_PER_RECORD_MAX = 100.0
INCREMENTAL_MAX_MB = 500.0


def _reset_peak() -> None:
    """Start the process's memory high-water mark (VmHWM) again from its current RSS, so the
    peak the child reports at exit is the timed step's (Linux: ``clear_refs`` value 5)."""
    Path("/proc/self/clear_refs").write_text("5")


def _paths(ctx: Context) -> tuple[Path, Path]:
    return ctx.workdir / "sandbox-scale", ctx.workdir / "ws-scale"


def _port(ctx: Context) -> int:
    """One loopback port for every job's sandbox process: a service keeps its address, and the
    workspace caches the integration user's id per service URL (a new port each job would
    cost the incremental sync a ``WhoAmI`` the product would not send)."""
    remembered = ctx.workdir / "sandbox-port"
    if remembered.exists():
        return int(remembered.read_text())
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    remembered.write_text(str(port))
    return port


def _workspace(sandbox: RunningSandbox, root: Path) -> Workspace:
    """The workspace in ``root`` pointed at this sandbox process (its port changes from job to
    job; the state database in ``root`` stays)."""
    write_config(sandbox.workspace_config(root), root)
    return open_workspace(root)


def _initial(ctx: Context) -> list[Measurement]:
    data, root = _paths(ctx)
    with running_sandbox(data, f"scale:{ctx.size}", port=_port(ctx)) as sandbox, \
            _workspace(sandbox, root) as ws:
        _empty_crm_accounts(ws.connections)
        ws.sync_all(["SALESPEOPLE", "CURRENCY"], job_name="benchmark setup")
        rss_before = proc_status_mb("VmRSS")
        _reset_peak()
        report, wall, used = _sync(ws, "CUSTOMER", sandbox)
        peak = proc_status_mb("VmHWM")
        created = int(report.counts["inserted"])
        nav_rows = created + int(report.counts["failed"]) + int(report.counts["skipped"])
        minimum = math.ceil(nav_rows / BC_PAGE) + 1 + math.ceil(created / DATAVERSE_BATCH)
        row = _requests_row(
            "ours", f"ours: ws.sync('CUSTOMER'), first sync of {ctx.size:,} customers",
            report, wall, used, minimum, nav_rows,
            "peak = the timed sync's own (high-water mark reset after the untimed set-up)",
            baseline="per_record")
        per_record_us = used["client_cpu_s"] / max(1, nav_rows) * 1e6
        row.figures.update({
            "sync_peak_rss_mb": peak, "rss_before_sync_mb": rss_before,
            "peak_rss_mb_per_100k": peak / (max(1, nav_rows) / 100_000),
            "client_cpu_us_per_record": per_record_us,
            "sandbox_server_peak_rss_mb": sandbox.peak_rss_mb(),
            "sandbox_startup_s": sandbox.startup_s,
            "service_limit_floor_s": _limit_floor_s(
                [used["crm_requests"], used["nav_requests"] + used["nav_custom_requests"]])})
        row.limits.update({"peak_rss_mb_per_100k_max": PER_100K_MAX_MB,
                           "client_cpu_us_per_record_max": CPU_US_PER_RECORD_MAX})
        row.target = ("peak RSS <= 600 MB per 100,000 records; <= 100 µs client CPU per "
                      "record; requests <= 1.05x minimum")
        return [row]


def _coupled_sample(ws: Workspace, count: int, offset: int) -> list[str]:
    """``count`` BC customer ids in the mapping's filter, from ``offset`` in number order
    (the initial sync coupled every one of them)."""
    frame = ws.connections.business_central.read(
        "customers", select=["id"], filter="blocked eq ' '", orderby=["number"],
        top=offset + count)
    return [str(i) for i in frame.get_column("id").to_list()[offset:]]


def _incremental(ctx: Context) -> list[Measurement]:
    data, root = _paths(ctx)
    with running_sandbox(data, f"scale:{ctx.size}", reset=False,
                         port=_port(ctx)) as sandbox, \
            _workspace(sandbox, root) as ws:
        coupled = ws.store.count_couplings("CUSTOMER")
        chosen = _coupled_sample(ws, max(1, coupled // 100), 0)
        _change_phones(ws.connections, chosen, "s1")
        _reset_peak()
        report, wall, used = _sync(ws, "CUSTOMER", sandbox)
        peak = proc_status_mb("VmHWM")
        minimum = 2 + math.ceil(len(chosen) / DATAVERSE_BATCH)
        row = _requests_row(
            "ours_incremental", f"ours: ws.sync('CUSTOMER'), 1% changed ({len(chosen):,} of "
            f"{coupled:,})", report, wall, used, minimum, coupled,
            "first incremental after the initial sync (its own process, same state and "
            "sandbox data); peak = the timed sync's own", baseline="per_record_patch")
        row.counts["planted_changes"] = len(chosen)
        row.figures.update({"sync_peak_rss_mb": peak, "changed": float(len(chosen)),
                            "sandbox_server_peak_rss_mb": sandbox.peak_rss_mb()})
        row.rate_per_s, row.rate_unit = (len(chosen) / wall if wall else None,
                                         "changed records/s")
        row.limits.update({"sync_peak_rss_mb_max": INCREMENTAL_MAX_MB, "ratio_min": 3.0})
        row.target = "under 500 MB; >= 3x faster than one PATCH per changed record"
        return [row]


def _per_record_patch(ctx: Context) -> list[Measurement]:
    """The reference way on ``PATCH_SAMPLE`` further changes, extrapolated to 1% of size."""
    data, root = _paths(ctx)
    with running_sandbox(data, f"scale:{ctx.size}", reset=False,
                         port=_port(ctx)) as sandbox, \
            _workspace(sandbox, root) as ws:
        coupled = ws.store.count_couplings("CUSTOMER")
        share = max(1, coupled // 100)
        chosen = _coupled_sample(ws, min(PATCH_SAMPLE, share), share)
        crm_of = {}
        for nav_id in chosen:  # untimed: the reference keeps its own id map in memory
            found = ws.store.get_coupling_by_nav("CUSTOMER", nav_id)
            if found is not None:
                crm_of[nav_id] = found.crm_id
        since = _bc_clock(ws)
        time.sleep(1.1)
        _change_phones(ws.connections, chosen, "s2")
        _read, patched, requests, measured = patch_changed(sandbox, since, crm_of)
    per_change = measured / max(1, patched)
    row = Measurement(
        "per_record_patch", f"baseline: paged read of changed BC customers + one httpx PATCH "
        f"per record, {patched:,} measured, extrapolated to {share:,}", "baseline",
        "per_record_patch", records=coupled, rate_per_s=1 / per_change,
        rate_unit="changed records/s", counts={"planted_changes": share},
        figures={"measured_changes": float(patched), "measured_wall_s": measured,
                 "measured_requests": float(requests)},
        notes="EXTRAPOLATED: wall = measured seconds per change x 1% of the coupled records; "
              "no diff, no conflict detection, no state kept (less work than ours)",
        extrapolated=True)
    row.wall_s = row.wall_best_s = per_change * share
    return [row]


def measure(job: str, ctx: Context) -> list[Measurement]:
    if job == "ours":
        return _initial(ctx)
    if job == "ours_incremental":
        return _incremental(ctx)
    if job == "per_record_patch":
        return _per_record_patch(ctx)
    return measure_per_record(ctx)
