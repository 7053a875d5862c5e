"""The per-field decision of the three-way diff, as polars expressions over the joined pairs.

Why expressions: every pair in play is decided at once, field by field, with no Python loop
over rows. The joined frame holds, per pair, ``__in_nav`` / ``__in_crm`` / ``__in_base`` and
each field's canonical values as ``__n_<field>`` / ``__c_<field>`` / ``__b_<field>``; the
decision adds per field the effective values (``__nv_`` / ``__cv_``) and changed flags
(``__cn_`` / ``__cc_`` / ``__bd_``, :func:`field_values`), then the target code (``__t_``), the
resolution code (``__r_``), whether it is a conflict (``__x_``) and the changed side (``__s_``).
The rules are the module docstring's of :mod:`nav_crm_ops.engine.diff`.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from .canonical import compare_key
from .model import (
    RES_BLOCKED,
    RES_CRM_WINS,
    RES_HELD,
    RES_NAV_WINS,
    RES_NONE,
    RES_SAME,
    TARGET_CRM,
    TARGET_NAV,
    TARGET_NONE,
    ConflictPolicy,
    DiffField,
    Direction,
)

__all__ = [
    "field_decision",
    "field_values",
    "hold_if_conflicting",
    "never_synced_winner",
    "new_base",
]

Outcome = tuple[Any, Any]
"""(target, resolution): codes or expressions choosing between codes."""

_POLICY_OUTCOME: dict[str, tuple[int, int]] = {
    "none": (TARGET_NONE, RES_HELD),
    "nav_wins": (TARGET_CRM, RES_NAV_WINS),
    "crm_wins": (TARGET_NAV, RES_CRM_WINS),
}
"""A synced pair's bidirectional field both sides changed differently, per conflict policy."""


def never_synced_winner(policy: ConflictPolicy, mapping_direction: Direction) -> tuple[int, int]:
    """(target, resolution) for bidirectional fields both sides fill differently, never synced."""
    if policy == "crm_wins" or (policy == "none" and mapping_direction == "from_crm"):
        return TARGET_NAV, RES_CRM_WINS
    return TARGET_CRM, RES_NAV_WINS


def _one_side_changed(writes_other_side: bool, towards: int, back: int, wins: int) -> Outcome:
    """Outcome when only one side changed: write ``towards`` the other side when the field's
    direction allows it; else a synced pair is blocked, and a never-synced pair takes the
    field's source side (``back``, resolved as ``wins``)."""
    if writes_other_side:
        return towards, RES_NONE
    in_base = pl.col("__in_base")
    return (
        pl.when(in_base).then(TARGET_NONE).otherwise(back),
        pl.when(in_base).then(RES_BLOCKED).otherwise(wins),
    )


def _both_differ(
    field: DiffField, policy: ConflictPolicy, never_synced: tuple[int, int]
) -> Outcome:
    """Outcome when both sides changed to different values: a one-way field's source wins,
    else the conflict policy (synced pairs) or the never-synced winner."""
    if field.direction == "to_crm":
        return pl.lit(TARGET_CRM), pl.lit(RES_NAV_WINS)
    if field.direction == "from_crm":
        return pl.lit(TARGET_NAV), pl.lit(RES_CRM_WINS)
    in_base = pl.col("__in_base")
    policy_target, policy_res = _POLICY_OUTCOME[policy]
    return (
        pl.when(in_base).then(policy_target).otherwise(never_synced[0]),
        pl.when(in_base).then(policy_res).otherwise(never_synced[1]),
    )


def field_values(field: DiffField) -> list[pl.Expr]:
    """Per-pair columns for one field, computed once for the decision that reads them: the
    effective values (``__nv_`` / ``__cv_``: an absent side counts as its base) and whether
    NAV, CRM changed from the base and both changed to different values (``__cn_`` /
    ``__cc_`` / ``__bd_``)."""
    in_nav, in_crm = pl.col("__in_nav"), pl.col("__in_crm")
    b = pl.col(f"__b_{field.name}")
    n = pl.when(in_nav).then(pl.col(f"__n_{field.name}")).otherwise(b)
    c = pl.when(in_crm).then(pl.col(f"__c_{field.name}")).otherwise(b)
    nk, ck, bk = compare_key(n, field), compare_key(c, field), compare_key(b, field)
    changed_nav, changed_crm = ~nk.eq_missing(bk), ~ck.eq_missing(bk)
    return [
        n.alias(f"__nv_{field.name}"),
        c.alias(f"__cv_{field.name}"),
        changed_nav.alias(f"__cn_{field.name}"),
        changed_crm.alias(f"__cc_{field.name}"),
        (changed_nav & changed_crm & ~nk.eq_missing(ck)).alias(f"__bd_{field.name}"),
    ]


def field_decision(
    field: DiffField, policy: ConflictPolicy, never_synced: tuple[int, int]
) -> list[pl.Expr]:
    """Per-pair columns for one field from its :func:`field_values`: target, resolution,
    conflict, side.

    Targets and resolutions are small integer codes (``TARGET_*``, ``RES_*``) until the
    long output turns them into names; a record-level hold is applied afterwards. The
    changed flags are columns of their own (not repeated expressions): each is read by all
    four outputs, and comparing the values once per field is most of the decision's cost.
    """
    in_base = pl.col("__in_base")
    changed_nav, changed_crm = pl.col(f"__cn_{field.name}"), pl.col(f"__cc_{field.name}")
    both_differ = pl.col(f"__bd_{field.name}")
    conflict = both_differ & in_base if field.direction == "bidirectional" else pl.lit(False)

    nav_only = _one_side_changed(field.writes_to_crm, TARGET_CRM, TARGET_NAV, RES_CRM_WINS)
    crm_only = _one_side_changed(field.writes_to_nav, TARGET_NAV, TARGET_CRM, RES_NAV_WINS)
    differ = _both_differ(field, policy, never_synced)

    only_nav, only_crm = changed_nav & ~changed_crm, changed_crm & ~changed_nav
    target = (
        pl.when(only_nav)
        .then(nav_only[0])
        .when(only_crm)
        .then(crm_only[0])
        .when(both_differ)
        .then(differ[0])
        .otherwise(TARGET_NONE)
    )
    resolution = (
        pl.when(only_nav)
        .then(nav_only[1])
        .when(only_crm)
        .then(crm_only[1])
        .when(both_differ)
        .then(differ[1])
        .when(changed_nav & changed_crm)
        .then(RES_SAME)
        .otherwise(RES_NONE)
    )
    side = (
        pl.when(changed_nav & changed_crm)
        .then(pl.lit("both"))
        .when(changed_nav)
        .then(pl.lit("nav"))
        .when(changed_crm)
        .then(pl.lit("crm"))
    )
    return [
        target.cast(pl.UInt8).alias(f"__t_{field.name}"),
        resolution.cast(pl.UInt8).alias(f"__r_{field.name}"),
        conflict.alias(f"__x_{field.name}"),
        side.alias(f"__s_{field.name}"),
    ]


def hold_if_conflicting(field: DiffField) -> list[pl.Expr]:
    """In a held record nothing is written: every changed field becomes ``held``."""
    held, changed = pl.col("__held"), pl.col(f"__s_{field.name}").is_not_null()
    return [
        pl.when(held)
        .then(pl.lit(TARGET_NONE, pl.UInt8))
        .otherwise(pl.col(f"__t_{field.name}"))
        .alias(f"__t_{field.name}"),
        pl.when(held & changed)
        .then(pl.lit(RES_HELD, pl.UInt8))
        .otherwise(pl.col(f"__r_{field.name}"))
        .alias(f"__r_{field.name}"),
    ]


def new_base(field: DiffField) -> pl.Expr:
    """The field's value on both sides once the writes are done (else the old base)."""
    t, r = pl.col(f"__t_{field.name}"), pl.col(f"__r_{field.name}")
    return (
        pl.when(t == TARGET_CRM)
        .then(pl.col(f"__nv_{field.name}"))
        .when(t == TARGET_NAV)
        .then(pl.col(f"__cv_{field.name}"))
        .when(r == RES_SAME)
        .then(pl.col(f"__nv_{field.name}"))
        .otherwise(pl.col(f"__b_{field.name}"))
        .alias(f"__nb_{field.name}")
    )
