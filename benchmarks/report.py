"""Write a run's results: ``results.json`` (everything) and ``results.md`` (the table)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["render_markdown", "write_results"]


def _number(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if value >= 1000:
            return f"{value:,.0f}"
        return f"{value:.{digits}g}" if value < 1 else f"{value:,.{min(digits, 2)}f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def _ratio(row: dict[str, Any]) -> str:
    parts = []
    for name, value in row.get("ratios", {}).items():
        if name == row["variant"]:
            return "1.0 (baseline)"
        if value is not None:
            parts.append(f"{value:,.1f}x vs {name}")
    if row.get("ratio_at_service_limits"):
        parts.append(f"{row['ratio_at_service_limits']:,.1f}x at the services' request limits "
                     "(derived)")
    return "; ".join(parts) or "- (no measured baseline)"


def _requests(row: dict[str, Any]) -> str:
    figures = row.get("figures", {})
    if "requests_vs_minimum" not in figures:
        return "-"
    return (f"{figures['requests']:,.0f} ({figures['requests_vs_minimum']:.2f}x of "
            f"{figures['minimum_requests']:,.0f})")


def _verdict(value: bool | None) -> str:
    return {True: "yes", False: "**no**", None: "-"}[value]


def _short_machine(machine: dict[str, Any]) -> str:
    return f"{machine['cores']}x {machine['cpu'].split()[0]} {machine['cpu'].split()[-1]}, " \
           f"{machine['ram_gb']:.0f} GB, py {machine['python']}, polars {machine['polars']}"


def render_markdown(document: dict[str, Any]) -> str:
    """The results table with the machine, the method line and what was not measured."""
    lines = [
        "# Benchmark results",
        "",
        f"Generated {document['generated_at']} by `python -m benchmarks.run"
        f"{' --quick' if document['quick'] else ''}` in {document['total_wall_s']:.0f} s.",
        f"Machine: {document['machine_summary']}, {document['machine']['os']}; pandas "
        f"{document['machine']['pandas']}, datacompy {document['machine']['datacompy']}.",
        f"Memory: {document['memory_method']}.",
        "Ratio: speed-up against the baseline measured in the same run (baseline wall / ours, "
        "or our rate / baseline rate); memory ratio: our peak / baseline peak (separate "
        "processes only); requests: HTTP requests sent and their multiple of the minimum the "
        "page and batch sizes allow. Method and discussion: docs/performance.md.",
    ]
    if document["quick"]:
        lines += ["", "**Quick run**: small sizes to keep the harness working; the timings "
                      "say nothing about the targets."]
    lines += [
        "",
        "| # | scenario | variant | records | wall s (median) | rate | peak RSS MB | ratio | "
        "memory ratio | requests (x minimum) | counts agree | target met | machine |",
        "|---|---|---|---:|---:|---:|---:|---|---:|---:|---|---|---|",
    ]
    for row in document["rows"]:
        rate = (f"{_number(row['rate_per_s'])} {row['rate_unit']}"
                if row.get("rate_per_s") is not None else "-")
        wall = _number(row["wall_s"]) + (" (extrapolated)" if row.get("extrapolated") else "")
        memory = _number(row.get("peak_rss_mb"), 4)
        if row.get("peak_scope") != "alone":
            memory += " (shared)"
        lines.append(
            f"| {row['scenario_number']} | {row['scenario']} | {row['label']} | "
            f"{_number(row['records'])} | {wall} | {rate} | {memory} | {_ratio(row)} | "
            f"{_number(row.get('memory_ratio'), 2)} | {_requests(row)} | "
            f"{_verdict(row.get('counts_match'))} | "
            f"{_verdict(row.get('target_met'))} | {_short_machine(row['machine'])} |")
    notes = [row for row in document["rows"] if row.get("notes") or row.get("target")]
    if notes:
        lines += ["", "## Notes per row", ""]
        for row in notes:
            target = f" Target: {row['target']}." if row.get("target") else ""
            figures = ", ".join(f"{k} {_number(v)}" for k, v in row.get("figures", {}).items())
            counts = ", ".join(f"{k} {v:,}" for k, v in row.get("counts", {}).items())
            note = row["notes"].rstrip(".") + "." if row.get("notes") else ""
            lines.append(f"- **{row['scenario']} / {row['variant']}**: {note}{target}"
                         + (f" Figures: {figures}." if figures else "")
                         + (f" Counts: {counts}." if counts else ""))
    if document.get("remeasured"):
        lines += ["", "## Re-measured after this run", ""]
        lines += [f"- {item}" for item in document["remeasured"]]
    if document.get("not_measured"):
        lines += ["", "## Not measured", ""]
        lines += [f"- {item}" for item in document["not_measured"]]
    if document.get("errors"):
        lines += ["", "## Errors", ""]
        lines += [f"- {e['scenario']} / {e['step']}: {e['error']}" for e in document["errors"]]
    return "\n".join(lines) + "\n"


def write_results(document: dict[str, Any], out: Path) -> None:
    (out / "results.json").write_text(json.dumps(document, indent=1, default=str) + "\n")
    (out / "results.md").write_text(render_markdown(document))


def main(argv: list[str] | None = None) -> int:
    """``python -m benchmarks.report [DIR]``: render DIR/results.md again from results.json."""
    import sys

    args = sys.argv[1:] if argv is None else argv
    folder = Path(args[0]) if args else Path(__file__).resolve().parent
    document = json.loads((folder / "results.json").read_text())
    (folder / "results.md").write_text(render_markdown(document))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
