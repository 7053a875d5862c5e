"""How a job notebook hands its summary back to the runner: a small JSON file.

Why a file: papermill gives the runner the output notebook, and digging a summary out of cell
outputs is fragile (display formats change, a notebook may print several things). The runner
passes ``result_path`` as a parameter; the notebook's last cell calls :func:`write_result`
with its :class:`~nav_crm_ops.engine.report.SyncReport` (or a plain dict for other notebooks).
A notebook that writes no result counts as "changed" (it is never put on hold for inactivity)
with no counts. Run interactively (``result_path = ""``) nothing is written.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..engine.report import SyncReport
from ..exceptions import NavCrmOpsError
from ..store.runs import RunOutcome

__all__ = ["JobResult", "read_result", "write_result"]


@dataclass(frozen=True)
class JobResult:
    """What one job run did: ``changed`` (anything written or (un)coupled: a job that changed
    nothing may sleep), job-log counts, the job-log run ids it created, per-mapping rows and
    the :class:`RunOutcome` of the work (succeeded, with failed records, held conflicts,
    cancelled...; the runner overrides it when the notebook itself failed)."""

    changed: bool = True
    counts: Mapping[str, int] = field(default_factory=dict)
    run_ids: tuple[int, ...] = ()
    failed: int = 0
    message: str = ""
    mappings: tuple[Mapping[str, Any], ...] = ()
    outcome: RunOutcome = RunOutcome.SUCCEEDED

    @classmethod
    def from_report(cls, report: SyncReport, message: str = "") -> JobResult:
        return cls(
            changed=report.changed, counts=report.counts, run_ids=report.run_ids,
            failed=report.failed, message=message, outcome=report.outcome,
            mappings=tuple({"mapping": r.mapping, "status": r.status, "counts": dict(r.counts),
                            "outcome": r.outcome.value, "message": r.message,
                            "duration_s": round(r.duration_s, 3)}
                           for r in report.results))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> JobResult:
        """Read a result file; one without ``outcome`` (older notebooks, plain dicts) gets it
        from its counts (:meth:`RunOutcome.decide`)."""
        counts = {str(k): int(v) for k, v in dict(data.get("counts") or {}).items()}
        failed = int(data.get("failed", counts.get("failed", 0)))
        outcome = RunOutcome.decide(str(data.get("outcome") or "succeeded"), failed=failed,
                                    conflicts=counts.get("conflicts", 0))
        return cls(changed=bool(data.get("changed", True)), counts=counts,
                   run_ids=tuple(int(i) for i in data.get("run_ids") or ()),
                   failed=failed, message=str(data.get("message", "")),
                   mappings=tuple(dict(m) for m in data.get("mappings") or ()),
                   outcome=outcome)

    def to_dict(self) -> dict[str, Any]:
        return {"changed": self.changed, "counts": dict(self.counts),
                "run_ids": list(self.run_ids), "failed": self.failed, "message": self.message,
                "mappings": [dict(m) for m in self.mappings], "outcome": self.outcome.value}


def write_result(path: str | Path, result: JobResult | SyncReport | Mapping[str, Any]
                 ) -> JobResult:
    """Called by a job notebook: write the summary where the runner looks for it (nothing
    when ``path`` is empty, i.e. the notebook runs interactively). Returns the result."""
    if isinstance(result, SyncReport):
        summary = JobResult.from_report(result)
    elif isinstance(result, JobResult):
        summary = result
    else:
        summary = JobResult.from_dict(result)
    if str(path):
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(summary.to_dict(), indent=2, sort_keys=True),
                          encoding="utf-8")
    return summary


def read_result(path: Path) -> JobResult | None:
    """The runner's side: the notebook's summary, or None when it wrote none."""
    if not path.exists():
        return None
    try:
        return JobResult.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, TypeError, AttributeError) as exc:
        raise NavCrmOpsError(f"the job notebook wrote an unreadable result file {path}: {exc}; "
                             "call nav_crm_ops.jobs.write_result(result_path, report)") from None
