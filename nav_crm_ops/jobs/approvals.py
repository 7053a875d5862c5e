"""Approval mode of a sync job: its settings and the thresholds that decide when a plan waits.

Why thresholds: a job in approval mode previews and applies routine plans as any job does;
only a plan that looks unusual — many creates or deletions, a large share of the coupled
records changing, any change to fields a person chose — is saved and waits for a named
person (``nav-crm-ops plans approve``). See docs/approvals.md; the run itself is
:mod:`nav_crm_ops.jobs.approval_gate`.

The settings are the job's ``approval`` parameter (JSON, stored with the job's other
parameters: no schema change, shown by ``jobs show``)::

    {"max_creates": 50, "max_updates": 500, "max_deletes": 0, "max_changed_percent": 10,
     "fields": ["creditlimit"], "expires_after_hours": 72}

Every key is optional; a plan needs approval when it exceeds any threshold given, and a job
whose ``approval`` names no threshold at all waits for every plan that changes something.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..exceptions import ConfigError

if TYPE_CHECKING:
    from ..engine.mapping import TableMapping
    from ..engine.plan import Plan

__all__ = ["APPROVAL_PARAMETER", "AWAITING_APPROVAL", "DEFAULT_EXPIRES_AFTER_HOURS",
           "ApprovalSettings", "PlanCounts", "approval_reasons", "approval_settings",
           "check_fields", "plan_counts", "waiting_label"]

APPROVAL_PARAMETER = "approval"
"""The job parameter holding the approval settings."""
AWAITING_APPROVAL = "awaiting_approval"
"""The count a run that waits for approval reports (1), beside its outcome
``RunOutcome.AWAITING_APPROVAL`` (completed: the job is neither failed nor retried): labels
say why it waits ("waiting for approval: 120 creates > 50")."""
DEFAULT_EXPIRES_AFTER_HOURS = 72
"""A pending approval older than this expires and the job previews again: a plan nobody looked
at for days describes data that has moved on."""
_LIMITS = ("max_creates", "max_updates", "max_deletes")
_KEYS = (*_LIMITS, "max_changed_percent", "fields", "expires_after_hours")
_DELETING = ("deletion_conflict",)
"""Plan actions that delete on one side or remove a coupling (and any ``delete…`` /
``deactivate…`` action the engine may add): counted as deletes."""


@dataclass(frozen=True)
class ApprovalSettings:
    """The thresholds of one job in approval mode (None: that threshold is not used)."""

    max_creates: int | None = None
    max_updates: int | None = None
    max_deletes: int | None = None
    max_changed_percent: float | None = None
    fields: tuple[str, ...] = ()
    expires_after_hours: int = DEFAULT_EXPIRES_AFTER_HOURS

    @property
    def has_thresholds(self) -> bool:
        return bool(self.fields) or any(
            value is not None for value in (self.max_creates, self.max_updates,
                                            self.max_deletes, self.max_changed_percent))

    @classmethod
    def parse(cls, job: str, value: Any) -> ApprovalSettings:
        """Settings from the ``approval`` parameter; ConfigError naming the key and the
        allowed values otherwise (``jobs add/set`` exit 2, nothing stored)."""
        where = f"job {job!r}: approval"
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where} must be a JSON object such as "
                              '{"max_creates": 50, "fields": ["creditlimit"]}, got '
                              f"{type(value).__name__}")
        unknown = sorted(set(value) - set(_KEYS))
        if unknown:
            raise ConfigError(f"{where}: unknown setting(s) {unknown}; valid: {list(_KEYS)}")
        values: dict[str, Any] = {k: _count(where, k, value[k]) for k in _LIMITS if k in value}
        if "max_changed_percent" in value:
            values["max_changed_percent"] = _percent(where, value["max_changed_percent"])
        if "fields" in value:
            values["fields"] = _fields(where, value["fields"])
        if "expires_after_hours" in value:
            hours = _count(where, "expires_after_hours", value["expires_after_hours"])
            if hours < 1:
                raise ConfigError(f"{where}: expires_after_hours must be at least 1")
            values["expires_after_hours"] = hours
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """The parameter value (only the settings given)."""
        data: dict[str, Any] = {k: getattr(self, k) for k in (*_LIMITS, "max_changed_percent")
                                if getattr(self, k) is not None}
        if self.fields:
            data["fields"] = list(self.fields)
        if self.expires_after_hours != DEFAULT_EXPIRES_AFTER_HOURS:
            data["expires_after_hours"] = self.expires_after_hours
        return data

    def describe(self) -> str:
        """The thresholds in words (``jobs set`` confirms them)."""
        parts = [f"more than {getattr(self, k)} {k.removeprefix('max_')}"
                 for k in _LIMITS if getattr(self, k) is not None]
        if self.max_changed_percent is not None:
            parts.append(f"more than {self.max_changed_percent:g}% of the coupled records "
                         "changing")
        if self.fields:
            parts.append(f"any change to {', '.join(self.fields)}")
        return ("approval needed for " + ", ".join(parts) if parts
                else "every plan that changes something waits for approval")


def _count(where: str, key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"{where}: {key} must be a whole number of at least 0, got {value!r}")
    return value


def _percent(where: str, value: Any) -> float:
    if (isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value)
            or not 0 <= value <= 100):
        raise ConfigError(f"{where}: max_changed_percent must be a number from 0 to 100, "
                          f"got {value!r}")
    return float(value)


def _fields(where: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [part for part in value.split(",")]
    if not isinstance(value, list | tuple) or not all(
            isinstance(item, str) and item.strip() for item in value):
        raise ConfigError(f"{where}: fields must be a list of field names such as "
                          f'["creditlimit"], got {value!r}')
    return tuple(dict.fromkeys(item.strip() for item in value))


def approval_settings(job: str, parameters: Mapping[str, Any]) -> ApprovalSettings | None:
    """The job's approval settings, None when it is not in approval mode."""
    value = parameters.get(APPROVAL_PARAMETER)
    return None if value is None else ApprovalSettings.parse(job, value)


def check_fields(settings: ApprovalSettings, mapping: TableMapping, job: str) -> None:
    """ConfigError when a chosen field is not a field of the job's mapping (a typo would
    silently never trigger)."""
    known = {f.name for f in mapping.fields}
    unknown = [name for name in settings.fields if name not in known]
    if unknown:
        raise ConfigError(f"job {job!r}: approval fields {unknown} are not fields of mapping "
                          f"{mapping.name}; valid: {sorted(known)}")


def waiting_label(counts: Mapping[str, int], message: str) -> str | None:
    """What a run that waits for approval says instead of its outcome (None otherwise)."""
    if not counts.get(AWAITING_APPROVAL):
        return None
    return message or "waiting for approval"


# -- thresholds -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class PlanCounts:
    """What a plan would do, as the thresholds read it (included records only)."""

    creates: int = 0
    updates: int = 0
    deletes: int = 0
    coupled: int = 0
    """The mapping's coupled records before the plan (the table the percentage is of)."""
    fields: Mapping[str, int] = field(default_factory=dict)
    """Records per chosen field that the plan writes."""

    @property
    def changed_percent(self) -> float | None:
        """Updated and deleted records as a share of the coupled ones (None: none coupled;
        creates are counted by ``max_creates``)."""
        if not self.coupled:
            return None
        return 100.0 * (self.updates + self.deletes) / self.coupled

    def to_dict(self) -> dict[str, int]:
        return {"creates": self.creates, "updates": self.updates, "deletes": self.deletes,
                "coupled": self.coupled, **{f"field:{k}": v for k, v in self.fields.items()}}


def plan_counts(plan: Plan, coupled: int, fields: Iterable[str] = ()) -> PlanCounts:
    """Count the included records of ``plan`` by what they do, and the records writing each
    of ``fields``."""
    import polars as pl

    from ..engine.vocabulary import INSERTS, UPDATES

    records = plan.records.filter(pl.col("included"))
    action = pl.col("action").cast(pl.Utf8)
    deleting = action.is_in(list(_DELETING)) | action.str.starts_with("delete") \
        | action.str.starts_with("deactivate")
    chosen = list(fields)
    written = plan.field_changes.filter(
        pl.col("field").is_in(chosen) & (pl.col("target").cast(pl.Utf8) != "none")
    ).join(records.select("mapping", "record_id"), on=["mapping", "record_id"], how="semi")
    per_field = dict(written.group_by("field").agg(pl.col("record_id").n_unique())
                     .iter_rows())
    return PlanCounts(
        creates=records.filter(action.is_in([str(a) for a in INSERTS])).height,
        updates=records.filter(action.is_in([str(a) for a in UPDATES])).height,
        deletes=records.filter(deleting).height, coupled=coupled,
        fields={name: int(per_field.get(name, 0)) for name in chosen if per_field.get(name)})


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def approval_reasons(counts: PlanCounts, settings: ApprovalSettings) -> tuple[str, ...]:
    """Why a plan with ``counts`` needs approval under ``settings`` (empty: it does not)."""
    reasons = [f"{_plural(value, word)} > {limit}" for value, word, limit in (
        (counts.creates, "create", settings.max_creates),
        (counts.updates, "update", settings.max_updates),
        (counts.deletes, "delete", settings.max_deletes)) if limit is not None and value > limit]
    share = counts.changed_percent
    if settings.max_changed_percent is not None and share is not None \
            and share > settings.max_changed_percent:
        reasons.append(f"{share:.1f}% of the {counts.coupled} coupled records change > "
                       f"{settings.max_changed_percent:g}%")
    reasons += [f"{name} changes ({_plural(n, 'record')})" for name, n in counts.fields.items()
                if name in settings.fields]
    total = counts.creates + counts.updates + counts.deletes
    if not settings.has_thresholds and total:
        reasons.append(f"{_plural(total, 'change')} (approval mode without thresholds: every "
                       "change waits)")
    return tuple(reasons)
