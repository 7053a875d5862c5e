"""Which jobs of the queue depend on which, and whether a job may start now given theirs.

Why: several runners share one queue, and a sync job run while a job it depends on runs (or
is due and about to) reads couplings that are being written — CUSTOMER with CURRENCY still
open fails "not coupled" records that then count toward skipping them. A job's dependencies
are its mapping's ``depends_on``, followed through mappings that have no job of their own,
and transitively through the jobs found (CONTACT → CUSTOMER → CURRENCY). The rule
(:func:`start_refusal`): a job starts only when no job related to it — a dependency or a
dependent — is In Process, and (for a scheduled start) no dependency is due, so dependencies
run first. The check and the start are one transaction (:meth:`JobQueue.claim`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from .queue import IN_PROCESS, JobEntry, is_due

if TYPE_CHECKING:
    from ..engine.mapping import MappingSet

__all__ = ["JobGraph", "start_refusal", "upstream_mappings"]


def upstream_mappings(mapping: str, mappings: MappingSet, has_job: set[str]) -> set[str]:
    """The mappings whose jobs must run before ``mapping``'s: its depends_on, and for a
    dependency without a job, that dependency's own (so the order still holds)."""
    found: set[str] = set()
    pending = list(mappings.get(mapping).depends_on) if mapping in mappings else []
    seen: set[str] = set()
    while pending:
        name = mappings.get(pending.pop()).name.upper()
        if name in seen:
            continue
        seen.add(name)
        if name in has_job:
            found.add(name)
        else:
            pending.extend(mappings.get(name).depends_on)
    return found


class JobGraph:
    """The dependencies between the jobs of one queue: ``depends_on[job]`` is every job
    (by name) that must not run alongside it and runs first, transitively."""

    def __init__(self, depends_on: Mapping[str, frozenset[str]]) -> None:
        self.depends_on = dict(depends_on)

    @classmethod
    def build(cls, jobs: Sequence[JobEntry], mappings: MappingSet | None) -> JobGraph:
        """From the jobs' mappings (a job without a mapping depends on nothing)."""
        by_mapping: dict[str, list[str]] = {}
        for job in jobs:
            if job.mapping:
                by_mapping.setdefault(job.mapping.upper(), []).append(job.name)
        direct: dict[str, set[str]] = {}
        for job in jobs:
            ups = (upstream_mappings(job.mapping, mappings, set(by_mapping))
                   if job.mapping and mappings is not None else set())
            direct[job.name] = {name for up in ups for name in by_mapping[up]} - {job.name}
        return cls({name: frozenset(_closure(name, direct)) for name in direct})

    def dependents(self, name: str) -> frozenset[str]:
        """The jobs that depend on ``name``."""
        return frozenset(job for job, deps in self.depends_on.items() if name in deps)

    def related(self, name: str) -> frozenset[str]:
        """The jobs ``name`` must never run alongside: its dependencies and dependents."""
        return self.depends_on.get(name, frozenset()) | self.dependents(name)


def _closure(name: str, direct: Mapping[str, Iterable[str]]) -> set[str]:
    found: set[str] = set()
    pending = list(direct.get(name, ()))
    while pending:
        job = pending.pop()
        if job in found or job == name:
            continue
        found.add(job)
        pending.extend(direct.get(job, ()))
    return found


def start_refusal(job: JobEntry, related: Iterable[JobEntry], depends_on: frozenset[str], *,
                  due_at: datetime | None, changes_detected: bool = False) -> str:
    """Why ``job`` may not start now ("" when it may). ``due_at``: a scheduled start (the job
    must still be due, and its dependencies must not be); None: a person asked for it (only
    a related job running stops it)."""
    if due_at is not None and not is_due(job, due_at, changes_detected=changes_detected):
        return "another runner already ran it (it is no longer due)"
    for other in related:
        role = "it depends on" if other.name in depends_on else "that depends on it"
        if other.status == IN_PROCESS:
            return f"{other.name!r}, a job {role}, is running; it starts after that run"
        if due_at is not None and other.name in depends_on and is_due(other, due_at):
            return f"{other.name!r}, a job {role}, is due and runs first"
    return ""
