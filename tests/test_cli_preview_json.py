"""``nav-crm-ops preview`` for scripts and people: every record and field change in ``--json``
and ``--out FILE.jsonl``, the truncation note of the text preview, ``--out`` mistakes as exit 2,
and no progress bars (escape codes, carriage returns) when the output is not a terminal."""

from __future__ import annotations

import io
import json
import os
import pty
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl

from nav_crm_ops import WriteOp, open_workspace
from nav_crm_ops.cli import SHOWN_CHANGES
from nav_crm_ops.connectors.dataverse import Dataverse
from nav_crm_ops.engine.workspace import Workspace

CliRunner = Callable[..., tuple[int, str, str]]  # the `cli` fixture of tests/conftest.py
BASE_MAPPINGS = ("CURRENCY", "SALESPEOPLE", "CUSTOMER")


def _synced(cli: CliRunner, workspace: Path) -> None:
    code, out, _ = cli("sync", *BASE_MAPPINGS, "--no-progress", "--json", "-w", str(workspace))
    assert code in (0, 1), out  # dirty CRONUS data: some records fail
    assert {row["mapping"] for row in json.loads(out)} == set(BASE_MAPPINGS)


def _pair(ws: Workspace, number: str) -> tuple[str, str]:
    coupling = ws.store.couplings_frame("CUSTOMER").filter(pl.col("nav_key") == number)
    assert coupling.height == 1, f"customer {number} is not coupled"
    return coupling["nav_id"].item(), coupling["crm_id"].item()


def _record(document: dict[str, Any], nav_id: str) -> dict[str, Any]:
    [found] = [r for r in document["records"] if r["mapping"] == "CUSTOMER"
               and r["nav_id"] == nav_id]
    return found


def _change(record: dict[str, Any], field: str) -> dict[str, Any]:
    [found] = [c for c in record["changes"] if c["field"] == field]
    return found


def test_preview_json_carries_each_field_change_with_old_and_new_values(
        workspace_dir: Path, tmp_path: Path, cli: CliRunner,
        crm_person: Callable[[Workspace], Dataverse]) -> None:
    """A person edits a BC customer's phone (HTTP, BC API), another customer's CRM city
    (HTTP, Dataverse, as a salesperson) and a third one's city on both sides: preview --json
    names the records by number and carries the changes with the values before and after, and
    the conflict as held; --out FILE.jsonl holds the same records, one per line."""
    _synced(cli, workspace_dir)
    with open_workspace(workspace_dir) as ws:
        bc_id, _ = _pair(ws, "10000")
        crm_nav_id, crm_id = _pair(ws, "20000")
        both_nav_id, both_crm_id = _pair(ws, "30000")
        old_phone = ws.connections.business_central.read(
            "customers", filter=f"id eq {bc_id}")["phoneNumber"].item()
        old_city = ws.connections.business_central.read(
            "customers", filter=f"id eq {crm_nav_id}")["city"].item()
        outcomes = ws.connections.business_central.write(
            [WriteOp.update("customers", bc_id, {"phoneNumber": "+44 121 555 0100"}),
             WriteOp.update("customers", both_nav_id, {"city": "York"})])
        with crm_person(ws) as person:
            outcomes += person.write([
                WriteOp.update("accounts", crm_id, {"address1_city": "Leamington Spa"}),
                WriteOp.update("accounts", both_crm_id, {"address1_city": "Leeds"})])
        assert all(outcome.ok for outcome in outcomes), [o.error for o in outcomes]

    lines_file = tmp_path / "plan.jsonl"
    code, out, err = cli("preview", "CUSTOMER", "--json", "--out", str(lines_file),
                         "-w", str(workspace_dir))
    assert code == 0, err
    document = json.loads(out)  # stdout is the JSON document and nothing else
    assert {"plan_id", "file", "summary", "counts", "records"} <= set(document)
    assert document["file"] == str(lines_file)
    assert sum(row["records"] for row in document["summary"]) == len(document["records"])
    assert document["record_count"] == len(document["records"])
    assert document["field_change_count"] == sum(len(r["changes"]) for r in document["records"])

    phone = _record(document, bc_id)
    assert (phone["nav_key"], phone["crm_key"], phone["action"]) == ("10000", "10000",
                                                                      "update_crm")
    change = _change(phone, "telephone1")
    assert change["target"] == "crm" and change["conflict"] is False
    assert (change["old_value"], change["new_value"]) == (old_phone, "+44 121 555 0100")
    assert change["nav_value"] == "+44 121 555 0100" and change["base_value"] == old_phone
    assert change["resolution"] == "none"  # one side changed: nothing to resolve

    city = _record(document, crm_nav_id)
    assert city["nav_key"] == "20000" and city["crm_id"] == crm_id
    change = _change(city, "address1_city")
    assert change["target"] == "nav" and change["changed_side"] == "crm"
    assert (change["old_value"], change["new_value"]) == (old_city, "Leamington Spa")

    held = _record(document, both_nav_id)
    assert held["action"] == "conflict" and held["nav_key"] == "30000"
    change = _change(held, "address1_city")
    assert (change["conflict"], change["resolution"], change["target"]) == (True, "held", "none")
    assert (change["nav_value"], change["crm_value"], change["old_value"]) == ("York", "Leeds",
                                                                              None)

    lines = [json.loads(line) for line in lines_file.read_text().splitlines()]
    assert len(lines) == document["record_count"]
    assert {line["plan_id"] for line in lines} == {document["plan_id"]}
    assert [(r["mapping"], r["record_id"]) for r in lines] == \
        [(r["mapping"], r["record_id"]) for r in document["records"]]
    by_nav_id = {line["nav_id"]: line for line in lines}
    assert _change(by_nav_id[bc_id], "telephone1")["new_value"] == "+44 121 555 0100"


def test_text_preview_says_when_it_shows_only_part_of_the_changes(
        workspace_dir: Path, cli: CliRunner) -> None:
    """The first CUSTOMER preview creates every customer in CRM: far more field changes than
    the text lists, and it says so; a small preview has no such note."""
    code, out, _ = cli("preview", "CUSTOMER", "-w", str(workspace_dir))
    assert code == 0
    code, data, _ = cli("preview", "CUSTOMER", "--json", "-w", str(workspace_dir))
    written = sum(1 for r in json.loads(data)["records"] for c in r["changes"]
                  if c["target"] != "none")
    assert written > SHOWN_CHANGES
    assert (f"showing the first {SHOWN_CHANGES} of {written:,} field changes; use --json or "
            "--out FILE.jsonl for all") in out
    code, out, _ = cli("preview", "CURRENCY", "-w", str(workspace_dir))
    assert code == 0 and "insert_crm" in out and "showing the first" not in out


def test_out_mistakes_exit_2_with_what_to_fix(workspace_dir: Path, tmp_path: Path,
                                              cli: CliRunner) -> None:
    code, out, err = cli("preview", "CURRENCY", "--out", str(tmp_path / "nope" / "plan.jsonl"),
                         "-w", str(workspace_dir))
    assert code == 2 and out == ""
    assert f"folder {tmp_path / 'nope'} does not exist: create it first" in err
    code, _, err = cli("preview", "CURRENCY", "--out", str(tmp_path / "plan.json"),
                       "-w", str(workspace_dir))
    assert code == 2 and ".jsonl" in err and ".parquet" in err
    assert not (tmp_path / "plan.json").exists()
    code, _, err = cli("preview", "CURRENCY", "--out", str(tmp_path), "-w", str(workspace_dir))
    assert code == 2 and "is a directory" in err


def _run_piped(workspace: Path, *argv: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "nav_crm_ops.cli", *argv, "-w", str(workspace)],
                          capture_output=True, timeout=300, check=False, env=os.environ.copy())


def test_piped_sync_and_preview_write_plain_lines_without_escape_codes(
        workspace_dir: Path, tmp_path: Path) -> None:
    """Standard error is a pipe, not a terminal: one plain line per mapping, no tqdm bars
    (no carriage returns, no ANSI escape codes) in either stream."""
    preview = _run_piped(workspace_dir, "preview", "CURRENCY", "--out",
                         str(tmp_path / "currency.jsonl"))
    sync = _run_piped(workspace_dir, "sync", "CURRENCY", "SALESPEOPLE")
    assert preview.returncode == 0, preview.stderr
    assert sync.returncode in (0, 1), sync.stderr
    for run in (preview, sync):
        for stream in (run.stdout, run.stderr):
            assert b"\x1b" not in stream and b"\r" not in stream
    assert preview.stderr.decode().splitlines() == ["CURRENCY: read nav, read crm, planned"]
    lines = sync.stderr.decode().splitlines()
    assert [line.split(":")[0] for line in lines] == ["CURRENCY", "SALESPEOPLE"]
    assert re.fullmatch(r"CURRENCY: read nav, read crm, planned, wrote (\d+) of \1 to crm "
                        r"\(0 failed, \d+ requests\)", lines[0]), lines
    written = len((tmp_path / "currency.jsonl").read_text().splitlines())
    assert f"{written} record(s) with their field changes written to" in preview.stdout.decode()


def test_progress_draws_bars_only_on_a_terminal() -> None:
    from nav_crm_ops.cli_progress import PlainLines, TerminalBars, cli_progress
    from nav_crm_ops.engine.progress import ProgressEvent

    leader, follower = pty.openpty()
    with os.fdopen(follower, "w") as terminal:
        bars = cli_progress(True, terminal)
        assert isinstance(bars, TerminalBars)
        bars(ProgressEvent("CURRENCY", "write crm", 3, 7))
        bars.close()
    drawn = os.read(leader, 4096)
    os.close(leader)
    assert b"CURRENCY write crm" in drawn and b"\r" in drawn
    piped = io.StringIO()
    lines = cli_progress(True, piped)
    assert isinstance(lines, PlainLines)
    lines(ProgressEvent("CURRENCY", "write crm", 3, 7, failed=1, requests=2))
    lines(ProgressEvent("CURRENCY", "write crm", 7, 7, failed=1, requests=4))
    assert piped.getvalue() == ""  # written when the mapping is finished
    lines.close()
    assert piped.getvalue() == "CURRENCY: wrote 7 of 7 to crm (1 failed, 4 requests)\n"
    silent = io.StringIO()
    off = cli_progress(False, silent)
    off(ProgressEvent("CURRENCY", "write crm", 7, 7))
    off.close()
    assert silent.getvalue() == ""
