"""``python -m benchmarks.run --quick`` keeps working: every scenario yields rows with the
machine, numeric figures and ratios against a baseline of the same run (no timing asserts:
the quick sizes say nothing about speed)."""

from __future__ import annotations

import importlib.util
import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from benchmarks.scenarios import SCENARIOS  # noqa: E402

HAS_DATACOMPY = importlib.util.find_spec("datacompy") is not None


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp("bench")
    done = subprocess.run([sys.executable, "-m", "benchmarks.run", "--quick", "--parallel", "2",
                           "--out", str(out)], cwd=REPO, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}\n" + \
        (out / "bench.log").read_text()[-4000:]
    return out, json.loads((out / "results.json").read_text())


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def test_every_scenario_has_rows_with_machine_figures_and_ratios(
        quick_run: tuple[Path, dict[str, Any]]) -> None:
    _, document = quick_run
    assert document["quick"] is True
    assert document["errors"] == []
    assert document["not_measured"] == ([] if HAS_DATACOMPY else
                                        [next(n for n in document["not_measured"]
                                              if "datacompy_full" in n)])
    rows = document["rows"]
    assert {row["scenario"] for row in rows} == {spec.name for spec in SCENARIOS}
    for row in rows:
        machine = row["machine"]
        assert machine["cores"] >= 1 and machine["ram_gb"] > 0 and machine["cpu"]
        assert machine["python"].count(".") == 2 and machine["polars"][0].isdigit()
        assert _is_number(row["wall_s"]) and row["wall_s"] > 0, row["variant"]
        assert _is_number(row["peak_rss_mb"]) and row["peak_rss_mb"] > 20, row["variant"]
        assert _is_number(row["peak_rss_wait4_mb"]), row["variant"]
        if row["baseline"]:
            assert row["baseline"] in {r["variant"] for r in rows
                                       if r["scenario"] == row["scenario"]}
            assert _is_number(row["ratio"]) and row["ratio"] > 0, row["variant"]
        else:
            assert row["ratio"] is None and _is_number(row["figures"]["requests_vs_minimum"])
        if row["role"] == "baseline":
            assert row["baseline"] == row["variant"] and row["ratio"] == pytest.approx(1.0)
        assert all(_is_number(v) for v in row["figures"].values()), row["figures"]
    for spec in SCENARIOS:
        ours = [r for r in rows if r["scenario"] == spec.name and r["role"] == "ours"]
        assert ours and all(_is_number(r["ratio"]) or _is_number(
            r["figures"].get("requests_vs_minimum")) for r in ours), spec.name


def test_ours_and_the_baselines_agree_on_what_they_found(
        quick_run: tuple[Path, dict[str, Any]]) -> None:
    _, document = quick_run
    rows = {(r["scenario"], r["variant"]): r for r in document["rows"]}
    ours = rows[("plan_diff", "ours_full")]
    assert ours["counts_match"] is True
    assert set(ours["counts_checked_against"]) == {"pandas_full", "planted"} | (
        {"datacompy_full"} if HAS_DATACOMPY else set())
    assert ours["counts"]["conflict"] == ours["expected"]["conflict"] > 0
    assert rows[("plan_diff", "ours_changed")]["counts_match"] is True
    assert rows[("log_analysis", "ours_groups")]["counts_match"] is True
    no_change = rows[("no_change_sync", "ours")]
    assert no_change["counts"]["writes"] == 0 and no_change["counts"]["changed"] == 0
    initial = rows[("initial_sync", "ours")]
    assert initial["counts"]["inserted"] > 0
    assert initial["figures"]["requests"] >= initial["figures"]["minimum_requests"]


def test_markdown_table_has_a_row_per_measurement(
        quick_run: tuple[Path, dict[str, Any]]) -> None:
    out, document = quick_run
    text = (out / "results.md").read_text()
    table = [line for line in text.splitlines() if line.startswith("| ") and "---" not in line]
    assert len(table) == 1 + len(document["rows"])
    assert document["machine_summary"] in text
    for spec in SCENARIOS:
        assert f"| {spec.number} | {spec.name} |" in text


def test_the_scale_scenario_syncs_then_updates_the_planted_changes(
        quick_run: tuple[Path, dict[str, Any]]) -> None:
    """Scenario 7 (1M customers in full runs): the initial sync creates every customer in the
    mapping's filter, the incremental sync (a process of its own on the kept sandbox data and
    state) writes exactly the planted 1%, and the figures its targets read are there."""
    _, document = quick_run
    rows = {r["variant"]: r for r in document["rows"] if r["scenario"] == "scale_sync"}
    assert set(rows) == {"ours", "ours_incremental", "per_record_patch", "per_record"}
    initial, incremental = rows["ours"], rows["ours_incremental"]
    assert initial["counts"]["inserted"] == initial["records"] > 0
    assert initial["counts"]["failed"] == 0
    assert set(initial["limits"]) >= {"peak_rss_mb_per_100k_max",
                                      "client_cpu_us_per_record_max",
                                      "requests_vs_minimum_max"}
    assert initial["figures"]["sync_peak_rss_mb"] <= initial["peak_rss_mb"] + 1
    assert _is_number(initial["figures"]["client_cpu_us_per_record"])
    planted = incremental["counts"]["planted_changes"]
    assert planted >= 1 and incremental["counts"]["modified"] == planted
    assert incremental["counts"]["failed"] == 0 and incremental["counts"]["inserted"] == 0
    assert set(incremental["limits"]) >= {"sync_peak_rss_mb_max", "ratio_min"}
    assert rows["per_record_patch"]["figures"]["measured_changes"] >= 1
    assert incremental["counts_match"] is True
