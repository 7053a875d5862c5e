"""Resolving a held conflict record by record: keep the BC value or keep the CRM value.

Why: under ``update_conflict: none`` a record whose field both sides changed differently is
held (nothing written) until a person decides. What the engine offers for that decision is a
synchronization of the one record with a forced direction (``Workspace.sync_now(direction=…)``,
``Selection.direction``): the kept side's values overwrite the other side for every field that
may flow that way — the conflicting fields and any other field the two sides hold differently.
So a choice says exactly that, field by field ("CRM name: 'Adatum' → 'Adatum Corp.'"), before
a person takes it, never "→ empty".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import polars as pl

from ..exceptions import SyncError
from .labels import record_label
from .mapping import TableMapping
from .vocabulary import Side

__all__ = ["ConflictChoice", "FieldWrite", "conflict_choices"]


@dataclass(frozen=True)
class FieldWrite:
    """One field the choice overwrites on the other side."""

    field: str
    old: Any
    new: Any
    conflict: bool

    def text(self) -> str:
        shown = ("empty" if v is None or v == "" else repr(str(v)) for v in (self.old, self.new))
        old, new = shown
        return f"{self.field}: {old} → {new}{' (the conflict)' if self.conflict else ''}"


@dataclass(frozen=True)
class ConflictChoice:
    """Keep ``keep``'s values for one coupled pair: what is written to the other side."""

    mapping: str
    record_id: str
    nav_id: str
    crm_id: str
    keep: Side
    record: str
    writes: tuple[FieldWrite, ...]

    @property
    def title(self) -> str:
        return f"Keep {self.keep.label} value"

    @property
    def direction(self) -> Literal["to_crm", "from_crm"]:
        """The forced direction of the synchronization that carries the choice out."""
        return "to_crm" if self.keep is Side.NAV else "from_crm"

    def text(self) -> str:
        """What a person reads before choosing."""
        target = self.keep.other.label
        if not self.writes:
            return f"{self.title}: nothing differs on {target}; the record is synchronized."
        return (f"{self.title} writes to {target} {self.record}: "
                + "; ".join(w.text() for w in self.writes))


def _writes(spec: TableMapping, changes: pl.DataFrame, keep: Side) -> tuple[FieldWrite, ...]:
    """Fields whose two sides differ and that may flow from ``keep`` to the other side."""
    target = keep.other
    found = []
    for change in changes.iter_rows(named=True):
        kept, other = change[keep.column("value")], change[target.column("value")]
        if (kept or None) == (other or None):
            continue
        fld = spec.field(change["field"])
        if not (fld.writes_to_crm if target is Side.CRM else fld.writes_to_nav):
            continue
        found.append(FieldWrite(change["field"], other, kept, bool(change["conflict"])))
    return tuple(found)


def conflict_choices(spec: TableMapping, record: dict[str, Any],
                     changes: pl.DataFrame) -> tuple[ConflictChoice, ...]:
    """The choices for one held plan record (its row and its field changes): keep BC,
    keep CRM — each only where the mapping's direction lets values flow that way."""
    if record.get("action") != "conflict" or not record.get("nav_id") or \
            not record.get("crm_id"):
        raise SyncError(f"mapping {spec.name}: record {record.get('record_id')} is not a held "
                        "conflict of a coupled pair; there is nothing to choose")
    choices = []
    for keep in (Side.NAV, Side.CRM):
        if keep.other.direction.value not in spec.directions:
            continue
        label = record_label(record.get(keep.other.column("key")),
                             record.get(keep.other.column("name")),
                             record.get(keep.other.column("id")))
        choices.append(ConflictChoice(spec.name, str(record["record_id"]), str(record["nav_id"]),
                                      str(record["crm_id"]), keep, label,
                                      _writes(spec, changes, keep)))
    return tuple(choices)
