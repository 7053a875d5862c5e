"""The plan artifact: what a sync run would do, saved for review before it is applied.

Why: the reference engine has no preview; you learn what a sync did after it did it. Here a
run is split into *preview* (read both sides, diff, write a :class:`Plan`) and *apply* (replay
exactly the included records of a plan). A plan records, per record, the action, the direction,
the version of each side as read (``nav_version`` / ``crm_version``: etag or modifiedon; apply
refuses records that changed since) and, per field, the base / NAV / CRM values and the value to
write. An analyst can exclude records before applying. Plans hold record data only, never
credentials or tokens.

File layout (one Parquet file): one table whose ``row_type`` column says whether a row is a
``record`` or a ``field_change``; each row type fills its own columns and leaves the others
null (``mapping`` and ``record_id`` are shared and link field changes to their record). The
plan metadata is JSON under the Parquet key-value metadata key ``nav_crm_ops.plan``, with a
SHA-256 digest of the metadata and every row, so :meth:`Plan.load` refuses a file that was
damaged after it was saved, and the workspace's signature of that digest (HMAC-SHA256 with a
key only its state database holds), so :meth:`Workspace.load_plan` refuses a file edited by
someone who recomputed the digest, or made by another workspace.

Action vocabulary (:data:`PLAN_ACTIONS` documents each): the diff's ``update_crm``,
``update_nav``, ``update_both``, ``unchanged``, ``conflict``, plus the engine's ``insert_crm``,
``insert_nav``, ``skip``, ``deletion_conflict`` and ``fail``.

Modules: :mod:`.schema` (the stored layout and vocabulary), :mod:`.model` (:class:`Plan`),
:mod:`.io` (files: digest, signature, save / load), :mod:`.render` (text and HTML).
"""

from __future__ import annotations

from ..vocabulary import Direction, PlanAction, Side
from .io import _digest, read_plan_metadata, signed_text
from .model import Plan, plan_rows_from_diff
from .schema import (
    DIRECTIONS,
    FIELD_CHANGE_SCHEMA,
    METADATA_KEY,
    PLAN_ACTIONS,
    PLAN_FORMAT_VERSION,
    RECORD_SCHEMA,
    SKIP_REASONS,
    PlanDirection,
    PlanMetadata,
    SkipReason,
    line_field,
    split_line_field,
)

__all__ = [
    "DIRECTIONS",
    "FIELD_CHANGE_SCHEMA",
    "METADATA_KEY",
    "PLAN_ACTIONS",
    "PLAN_FORMAT_VERSION",
    "RECORD_SCHEMA",
    "SKIP_REASONS",
    "Direction",
    "Plan",
    "PlanAction",
    "PlanDirection",
    "PlanMetadata",
    "Side",
    "SkipReason",
    "_digest",
    "line_field",
    "plan_rows_from_diff",
    "read_plan_metadata",
    "signed_text",
    "split_line_field",
]
