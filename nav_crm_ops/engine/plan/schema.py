"""The plan's stored layout: format version, vocabulary, record and field-change schemas,
line-field names and the metadata (see :mod:`nav_crm_ops.engine.plan`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import polars as pl

from ..diff import CHANGED_SIDES, RESOLUTIONS, TARGETS
from ..vocabulary import Direction, PlanAction

__all__ = ["ACTION_DTYPE", "DIRECTIONS", "DIRECTION_DTYPE", "FIELD_CHANGE_SCHEMA", "LINE_PREFIX",
           "METADATA_KEY", "PLAN_ACTIONS", "PLAN_FORMAT_VERSION", "RECORD_SCHEMA",
           "SKIP_REASONS", "SKIP_REASON_DTYPE", "PlanDirection", "PlanMetadata", "SkipReason",
           "direction_of_action", "line_field", "split_line_field"]

PLAN_FORMAT_VERSION = 3
METADATA_KEY = b"nav_crm_ops.plan"

PLAN_ACTIONS: dict[str, str] = {
    "update_crm": "coupled pair: write NAV's changed fields to the CRM record",
    "update_nav": "coupled pair: write CRM's changed fields to the NAV record",
    "update_both": "coupled pair: different fields changed on each side; write both ways",
    "unchanged": "coupled pair: nothing to write (at most the stored base is refreshed)",
    "conflict": "coupled pair: the same field changed differently on both sides; held",
    "insert_crm": "uncoupled NAV record: create it in CRM and couple the two",
    "insert_nav": "uncoupled CRM record: create it in NAV and couple the two",
    "skip": "not synchronized; skip_reason says why",
    "deletion_conflict": "coupled record missing on one side; the deletion policy decides",
    "fail": "cannot be synchronized as is (e.g. a lookup to an uncoupled record); see message",
}
"""Every action a plan record can carry (:class:`PlanAction`), with what it means."""
assert set(PLAN_ACTIONS) == {a.value for a in PlanAction}

PlanDirection = Direction
DIRECTIONS: tuple[str, ...] = tuple(d.value for d in Direction)
"""Which way a record's writes go: ``both`` for ``update_both``, ``none`` when nothing is written."""

SkipReason = Literal["only_coupled", "skipped_coupling", "filtered_out", "create_only"]
SKIP_REASONS: dict[str, str] = {
    "only_coupled": "uncoupled record and the mapping synchronizes only coupled records",
    "create_only": "written once when it was created (an order sent to the back office); "
                   "later changes are not synchronized",
    "skipped_coupling": "the coupling is marked skipped until a person restores it",
    "filtered_out": "the record no longer matches the mapping's table filter",
}

ACTION_DTYPE = pl.Enum(list(PLAN_ACTIONS))
DIRECTION_DTYPE = pl.Enum(DIRECTIONS)
SKIP_REASON_DTYPE = pl.Enum(list(SKIP_REASONS))

RECORD_SCHEMA: dict[str, pl.DataType] = {
    "mapping": pl.Utf8(),
    "record_id": pl.Utf8(),
    "pair_id": pl.Utf8(),
    "nav_id": pl.Utf8(),
    "crm_id": pl.Utf8(),
    "nav_key": pl.Utf8(),
    "crm_key": pl.Utf8(),
    "nav_name": pl.Utf8(),
    "crm_name": pl.Utf8(),
    "action": ACTION_DTYPE,
    "direction": DIRECTION_DTYPE,
    "skip_reason": SKIP_REASON_DTYPE,
    "nav_version": pl.Utf8(),
    "crm_version": pl.Utf8(),
    "nav_coupled_to": pl.Utf8(),
    "crm_coupled_to": pl.Utf8(),
    "message": pl.Utf8(),
    "included": pl.Boolean(),
}
"""Columns of :attr:`Plan.records`; ``record_id`` is unique within a mapping; ``nav_key`` /
``crm_key`` are the natural keys (customer number, currency code ...) and ``nav_name`` /
``crm_name`` the names people recognise (:mod:`~nav_crm_ops.engine.labels`);
``nav_coupled_to`` / ``crm_coupled_to`` the coupling each side's record had when the preview
read it (apply refuses a record whose coupling changed since: ``engine.freshness``)."""

FIELD_CHANGE_SCHEMA: dict[str, pl.DataType] = {
    "mapping": pl.Utf8(),
    "record_id": pl.Utf8(),
    "field": pl.Utf8(),
    "base_value": pl.Utf8(),
    "nav_value": pl.Utf8(),
    "crm_value": pl.Utf8(),
    "changed_side": pl.Enum(CHANGED_SIDES),
    "target": pl.Enum(TARGETS),
    "new_value": pl.Utf8(),
    "conflict": pl.Boolean(),
    "resolution": pl.Enum(RESOLUTIONS),
}
"""Columns of :attr:`Plan.field_changes` (the diff's field changes plus mapping/record_id)."""

LINE_PREFIX = "lines["
"""Field changes of a document's lines are named ``lines[<position>].<line field>``."""


def line_field(position: int, name: str) -> str:
    """The field-change name of a document line's field (``lines[2].quantity``)."""
    return f"{LINE_PREFIX}{position}].{name}"


def split_line_field(name: str) -> tuple[int, str] | None:
    """(position, line field) of a :func:`line_field` name; None for header fields."""
    if not name.startswith(LINE_PREFIX):
        return None
    position, _, field_name = name[len(LINE_PREFIX):].partition("].")
    return int(position), field_name


_DIRECTION_OF_ACTION: dict[str, str] = {
    PlanAction.UPDATE_CRM: Direction.TO_CRM,
    PlanAction.UPDATE_NAV: Direction.FROM_CRM,
    PlanAction.UPDATE_BOTH: Direction.BOTH,
    PlanAction.INSERT_CRM: Direction.TO_CRM,
    PlanAction.INSERT_NAV: Direction.FROM_CRM,
}


@dataclass(frozen=True)
class PlanMetadata:
    """Who made the plan, when, for which workspace and mappings, from which watermarks.

    ``watermarks`` maps a mapping name to the per-side watermarks read by the preview
    (``{"CUSTOMER": {"nav": "...", "crm": "..."}}``); apply advances them only on success.

    ``content_sha256`` and ``signature`` are filled by :meth:`Plan.load`: the digest of the
    file and the workspace's signature of it (HMAC-SHA256 with a key only its state database
    holds). ``verified`` is false for a plan read from a file whose signature nobody checked
    yet: :meth:`Workspace.load_plan` checks it, and :meth:`Workspace.apply` refuses unverified
    plans. None of the three is part of the plan's identity (``==``).
    """

    plan_id: str
    created_at: str
    workspace_fingerprint: str
    mappings: tuple[str, ...]
    watermarks: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    format_version: int = PLAN_FORMAT_VERSION
    content_sha256: str = field(default="", compare=False)
    signature: str = field(default="", compare=False, repr=False)
    verified: bool = field(default=True, compare=False)

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "format_version": self.format_version,
            "plan_id": self.plan_id,
            "created_at": self.created_at,
            "workspace_fingerprint": self.workspace_fingerprint,
            "mappings": list(self.mappings),
            "watermarks": {m: dict(w) for m, w in self.watermarks.items()},
        }



def direction_of_action(action: pl.Expr) -> pl.Expr:
    """A record's direction from its action (``none`` when nothing is written)."""
    return action.cast(pl.Utf8).replace_strict(_DIRECTION_OF_ACTION, default="none",
                                               return_dtype=pl.Utf8)
