"""A job's kernel that dies before it starts — as one does when another runner's kernel takes
a port its connection file named (seen with three runners on one host) — is started again:
no cell ran, so it is no attempt. Real kernels through a kernelspec whose launcher exits at
once the first N times."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import pytest

from nav_crm_ops.jobs.queue import JobEntry
from nav_crm_ops.jobs.runner import KERNEL_START_ATTEMPTS, JobRun, JobRunner

from .test_runner import add_job


def _dying_kernel(root: Path, dies: int, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A kernelspec ``dies-first`` (on JUPYTER_PATH) whose first ``dies`` starts exit at once;
    returns the file counting its starts."""
    share, starts = root / "jupyter", root / "starts"
    spec = share / "kernels" / "dies-first"
    spec.mkdir(parents=True)
    launcher = root / "launch.py"
    launcher.write_text(textwrap.dedent(f"""
        import pathlib, runpy, sys
        starts = pathlib.Path({str(starts)!r})
        count = int(starts.read_text()) + 1 if starts.exists() else 1
        starts.write_text(str(count))
        if count <= {dies}:
            sys.exit(1)
        sys.argv = ["ipykernel_launcher", *sys.argv[1:]]
        runpy.run_module("ipykernel_launcher", run_name="__main__")
    """))
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, str(launcher), "-f", "{connection_file}"],
        "display_name": "dies first", "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(share))
    return starts


def _run_nightly(workspace: Path, notebooks: Path) -> tuple[JobRun, JobEntry]:
    """The passing test notebook run once as a job on the ``dies-first`` kernel."""
    add_job(workspace, "Nightly check", notebooks / "passing.ipynb",
            parameters={"changed": True, "use_helper": True})
    with JobRunner(workspace, kernel_name="dies-first") as runner:
        return runner.run("nightly check"), runner.queue.get("Nightly check")


def test_a_kernel_that_died_before_it_started_is_started_again(
        offline_workspace: Path, test_notebooks: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    starts = _dying_kernel(tmp_path, 1, monkeypatch)
    run, entry = _run_nightly(offline_workspace, test_notebooks)
    assert starts.read_text() == "2"
    assert run.outcome == "succeeded" and run.error == "", run.error
    assert entry.attempts == 0 and entry.run_count == 1


def test_a_kernel_that_never_starts_fails_the_run_saying_why(
        offline_workspace: Path, test_notebooks: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    starts = _dying_kernel(tmp_path, 99, monkeypatch)
    run, entry = _run_nightly(offline_workspace, test_notebooks)
    assert starts.read_text() == str(KERNEL_START_ATTEMPTS)
    assert run.outcome == "failed" and "Kernel died before replying" in run.error
    assert entry.attempts == 1
