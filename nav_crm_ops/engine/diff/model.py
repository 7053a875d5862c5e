"""What the three-way diff takes and gives: fields, the result, and the output vocabulary.

Why a module of its own: the vocabulary (actions, changed sides, targets, resolutions) is shared
with the plan's stored layout, and the small integer codes for targets and resolutions are the
contract between the per-field decision (:mod:`.decide`) and the long output (:mod:`.output`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import polars as pl

from ...exceptions import SyncError
from ..vocabulary import PlanAction, Side, flows_to

__all__ = [
    "ACTIONS",
    "ACTION_DTYPE",
    "CHANGED_SIDES",
    "CHANGED_SIDE_DTYPE",
    "RESOLUTIONS",
    "RESOLUTION_DTYPE",
    "TARGETS",
    "TARGET_DTYPE",
    "ConflictPolicy",
    "DiffField",
    "DiffResult",
    "Direction",
    "FieldKind",
    "FrameLike",
]

Direction = Literal["to_crm", "from_crm", "bidirectional"]
FieldKind = Literal["text", "number", "bool", "datetime", "id"]
ConflictPolicy = Literal["none", "nav_wins", "crm_wins"]
FrameLike = pl.DataFrame | pl.LazyFrame

DIRECTIONS: tuple[str, ...] = ("to_crm", "from_crm", "bidirectional")
FIELD_KINDS: tuple[str, ...] = ("text", "number", "bool", "datetime", "id")
CONFLICT_POLICIES: tuple[str, ...] = ("none", "nav_wins", "crm_wins")

ACTIONS: tuple[str, ...] = tuple(
    action.value
    for action in (
        PlanAction.UPDATE_CRM,
        PlanAction.UPDATE_NAV,
        PlanAction.UPDATE_BOTH,
        PlanAction.UNCHANGED,
        PlanAction.CONFLICT,
    )
)
"""Record actions of a diff, in the order of :data:`ACTION_DTYPE`."""
CHANGED_SIDES: tuple[str, ...] = ("nav", "crm", "both")
TARGETS: tuple[str, ...] = ("none", "crm", "nav")
RESOLUTIONS: tuple[str, ...] = (
    "none",
    "nav_wins",
    "crm_wins",
    "held",
    "same_value",
    "blocked_by_direction",
)

ACTION_DTYPE = pl.Enum(ACTIONS)
CHANGED_SIDE_DTYPE = pl.Enum(CHANGED_SIDES)
TARGET_DTYPE = pl.Enum(TARGETS)
RESOLUTION_DTYPE = pl.Enum(RESOLUTIONS)

TARGET_NONE, TARGET_CRM, TARGET_NAV = 0, 1, 2
"""Positions in :data:`TARGETS`: the per-field decision's target codes."""
RES_NONE, RES_NAV_WINS, RES_CRM_WINS, RES_HELD, RES_SAME, RES_BLOCKED = range(6)
"""Positions in :data:`RESOLUTIONS`: the per-field decision's resolution codes."""

ENGINE: Literal["in-memory"] = "in-memory"
"""polars' in-memory engine: about twice as fast as the streaming default for the diff's
wide per-pair query (hundreds of expressions over the pairs in play), and no slower elsewhere."""


@dataclass(frozen=True)
class DiffField:
    """One mapped field as the diff sees it: its name, who may write it, how to compare it."""

    name: str
    direction: Direction
    kind: FieldKind = "text"
    case_sensitive: bool = True
    decimals: int | None = None

    def __post_init__(self) -> None:
        if self.direction not in DIRECTIONS:
            raise SyncError(
                f"field {self.name!r}: direction {self.direction!r} is not one of "
                "'to_crm', 'from_crm', 'bidirectional'"
            )
        if self.kind not in FIELD_KINDS:
            raise SyncError(
                f"field {self.name!r}: kind {self.kind!r} is not one of "
                "'text', 'number', 'bool', 'datetime', 'id'"
            )

    @property
    def writes_to_crm(self) -> bool:
        return flows_to(self.direction, Side.CRM)

    @property
    def writes_to_nav(self) -> bool:
        return flows_to(self.direction, Side.NAV)


@dataclass(frozen=True)
class DiffResult:
    """What a diff decided.

    ``records``: one row per pair in play (``pair_id``, ``action``, ``n_changes_to_crm``,
    ``n_changes_to_nav``, ``n_conflicts``, ``never_synced``, ``conflict_message``).
    ``field_changes``: one row per pair and field where at least one side differs from the
    base (``pair_id``, ``field``, ``base_value``, ``nav_value``, ``crm_value``, ``changed_side``,
    ``target``, ``new_value``, ``conflict``, ``resolution``); values are canonical strings.
    The value to write to ``target`` is ``new_value`` (canonical text; the engine may also take
    the typed value from the source side, which is the side opposite ``target``).
    ``new_base``: ``pair_id`` + one canonical Utf8 column per field for every pair that differs
    from its base on at least one side or was never synced: the base after the writes are
    applied (held records keep their base). Other pairs keep their base as is and are not
    repeated here, so the engine upserts ``new_base`` into its stored base.
    """

    records: pl.DataFrame
    field_changes: pl.DataFrame
    new_base: pl.DataFrame
    fields: tuple[DiffField, ...]
    key: str = "pair_id"

    def counts(self) -> dict[str, int]:
        """Number of records per action (every action present, zero when absent)."""
        found = self.records.group_by("action").len()
        by_action = {str(a): int(n) for a, n in found.iter_rows()}
        return {action: by_action.get(action, 0) for action in ACTIONS}
