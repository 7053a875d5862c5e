"""The plan's vocabulary as enums, and the record selections the engine and widgets share.

Why enums: the engine decides on actions, sides and directions everywhere (planner, applier,
freshness, widgets); spelled as strings, a typo is a silent no-match. The members are
:class:`~enum.StrEnum` values equal to the stored text, so saved plans, the Parquet layout and
polars ``Enum`` columns are unchanged (``PlanAction.INSERT_NAV == "insert_nav"``).

The expressions below (:func:`action_is`, :func:`writes_to`, :func:`inserts_to` ...) are the
one place that says which actions write where; :class:`~nav_crm_ops.engine.plan.Plan` methods
and the applier use them instead of comparing ``pl.col("action")`` with strings.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal, TypeVar

import polars as pl

N = TypeVar("N")
C = TypeVar("C")

__all__ = [
    "Direction",
    "PlanAction",
    "Resolution",
    "Side",
    "action_is",
    "changes_to",
    "flows_to",
    "inserts_to",
    "is_insert",
    "same_value",
    "shown_change",
    "writes",
    "writes_to",
]


class PlanAction(StrEnum):
    """What a plan record does (``Plan.records.action``)."""

    UPDATE_CRM = "update_crm"
    UPDATE_NAV = "update_nav"
    UPDATE_BOTH = "update_both"
    UNCHANGED = "unchanged"
    CONFLICT = "conflict"
    INSERT_CRM = "insert_crm"
    INSERT_NAV = "insert_nav"
    SKIP = "skip"
    DELETION_CONFLICT = "deletion_conflict"
    FAIL = "fail"

    @classmethod
    def insert(cls, target: Side | str) -> PlanAction:
        """The action creating a record on ``target``."""
        return cls.INSERT_CRM if Side(target) is Side.CRM else cls.INSERT_NAV

    @classmethod
    def writing(cls, target: Side | str) -> tuple[PlanAction, ...]:
        """The actions that write to ``target`` (creates and updates)."""
        if Side(target) is Side.CRM:
            return (cls.INSERT_CRM, cls.UPDATE_CRM, cls.UPDATE_BOTH)
        return (cls.INSERT_NAV, cls.UPDATE_NAV, cls.UPDATE_BOTH)

    @property
    def is_insert(self) -> bool:
        return self in (PlanAction.INSERT_CRM, PlanAction.INSERT_NAV)


INSERTS: tuple[PlanAction, ...] = (PlanAction.INSERT_CRM, PlanAction.INSERT_NAV)
UPDATES: tuple[PlanAction, ...] = (PlanAction.UPDATE_CRM, PlanAction.UPDATE_NAV,
                                   PlanAction.UPDATE_BOTH)
WRITES: tuple[PlanAction, ...] = (*INSERTS, *UPDATES)
"""Actions that write to at least one side."""
FLAGGED: tuple[PlanAction, ...] = (PlanAction.CONFLICT, PlanAction.DELETION_CONFLICT,
                                   PlanAction.FAIL)
"""Actions a person should look at (shown highlighted)."""


class Side(StrEnum):
    """One side of a mapping: ``nav`` (Business Central) or ``crm`` (Dataverse); as a write
    target, the side written to (``field_changes.target``)."""

    NAV = "nav"
    CRM = "crm"

    @property
    def other(self) -> Side:
        return Side.CRM if self is Side.NAV else Side.NAV

    @property
    def label(self) -> str:
        """How messages name the side: ``BC`` or ``CRM``."""
        return "BC" if self is Side.NAV else "CRM"

    @property
    def service(self) -> str:
        """The connector service name (errors carry it)."""
        return "business_central" if self is Side.NAV else "dataverse"

    @property
    def direction(self) -> Direction:
        """The direction of writes *to* this side."""
        return Direction.TO_CRM if self is Side.CRM else Direction.FROM_CRM

    @property
    def literal(self) -> Literal["nav", "crm"]:
        """The side as the ``Literal`` older signatures take."""
        return "nav" if self is Side.NAV else "crm"

    def pick(self, nav: N, crm: C) -> N | C:
        """This side's one of a pair of things: ``Side(side).pick(mapping.nav, mapping.crm)``."""
        return nav if self is Side.NAV else crm

    def column(self, name: str) -> str:
        """This side's column of a pair: ``Side.NAV.column("id") == "nav_id"``."""
        return f"{self.value}_{name}"


class Direction(StrEnum):
    """Which way writes go: a run's and a failure's direction (``to_crm`` / ``from_crm``), and
    a plan record's (``both`` for ``update_both``, ``none`` when nothing is written)."""

    TO_CRM = "to_crm"
    FROM_CRM = "from_crm"
    BOTH = "both"
    NONE = "none"

    @property
    def target(self) -> Side:
        """The side a one-way direction writes to."""
        if self is Direction.TO_CRM:
            return Side.CRM
        if self is Direction.FROM_CRM:
            return Side.NAV
        raise ValueError(f"direction {self.value!r} has no single target side")

    @property
    def source(self) -> Side:
        """The side a one-way direction reads from."""
        return self.target.other

    @property
    def other(self) -> Direction:
        return Direction.FROM_CRM if self is Direction.TO_CRM else Direction.TO_CRM


class Resolution(StrEnum):
    """How a field change was resolved (``field_changes.resolution``)."""

    NONE = "none"
    NAV_WINS = "nav_wins"
    CRM_WINS = "crm_wins"
    HELD = "held"
    SAME_VALUE = "same_value"
    BLOCKED_BY_DIRECTION = "blocked_by_direction"


def flows_to(direction: str, target: Side | str) -> bool:
    """Whether a field or mapping of ``direction`` (``to_crm``, ``from_crm``,
    ``bidirectional``) writes to ``target``."""
    return direction == "bidirectional" or direction == Side(target).direction


# -- record selections (over Plan.records) ---------------------------------------------------
def action_is(*actions: PlanAction | str) -> pl.Expr:
    """Records whose action is one of ``actions``."""
    return pl.col("action").cast(pl.Utf8).is_in([str(a) for a in actions])


def writes_to(target: Side | str) -> pl.Expr:
    """Records that write to ``target`` (creates and updates)."""
    return action_is(*PlanAction.writing(target))


def inserts_to(target: Side | str) -> pl.Expr:
    """Records that create a record on ``target``."""
    return action_is(PlanAction.insert(target))


def is_insert() -> pl.Expr:
    """Records that create a record on either side."""
    return action_is(*INSERTS)


def writes() -> pl.Expr:
    """Records that write to at least one side."""
    return action_is(*WRITES)


# -- field-change selections (over Plan.field_changes) ------------------------------------------
def changes_to(target: Side | str) -> pl.Expr:
    """Field changes written to ``target``."""
    return pl.col("target").cast(pl.Utf8) == str(Side(target))


def same_value() -> pl.Expr:
    """Field changes both sides made alike (nothing to write; the base moves)."""
    return pl.col("resolution").cast(pl.Utf8) == str(Resolution.SAME_VALUE)


def shown_change() -> pl.Expr:
    """Field changes a person reviews: written somewhere, or in conflict."""
    return (pl.col("target").cast(pl.Utf8) != "none") | pl.col("conflict")
