"""Field-level three-way diff between the NAV side, the CRM side and the last-synced base.

Why three-way: comparing the two sides alone cannot tell who changed what. Comparing each side
with the values as last synced (the *base*, kept per coupled pair) can, so changes to different
fields on the two sides merge, and only the same field changed to different values on both sides
is a conflict (the reference engine fails or overwrites whole records instead).

Inputs are polars frames (eager or lazy), one row per coupled pair keyed by ``pair_id`` and one
column per mapped field, already transformed into the same mapped-field namespace:

* ``nav`` / ``crm`` hold the pairs whose side changed (or every pair: unchanged rows simply
  produce no change). A pair absent from a side means "that side is unchanged" (equals base).
* ``base`` holds the values as last synced. A pair absent from ``base`` was never synced.

Values are canonicalized per field kind into display strings (``text`` as is, ``number``
rounded to ``decimals`` and printed by polars, ``bool`` as ``true``/``false``, ``datetime`` as
UTC ISO 8601 ``...Z``, ``id`` as lower-case GUIDs without braces); values that do not parse for
their kind keep their stripped text so nothing is silently lost. Nulls and empty strings are
"empty" and equal each other. Text compares case-insensitively when the field says so.

Rules per field and pair (``changed_nav`` = nav differs from base, ``changed_crm`` likewise):

* only NAV changed: write NAV's value to CRM when the field's direction allows ``to_crm``,
  else no write and resolution ``blocked_by_direction`` (the base stays, so it is reported
  again until the NAV side changes); only CRM changed: the mirror image. On a never-synced
  pair a one-way field takes its source side's value even when that is empty (the source is
  the field's master): the other side is overwritten (``nav_wins`` / ``crm_wins``).
* both changed to the same value: no write, the base takes the new value (``same_value``).
* both changed to different values on a bidirectional field of a synced pair: a conflict.
  ``conflict_policy="none"`` holds the whole record (action ``conflict``, nothing written,
  base unchanged; every changed field of it shows target ``none`` and resolution ``held``,
  and ``conflict`` marks the fields that caused the hold); ``nav_wins`` / ``crm_wins`` write
  the winner's value to the other side (``conflict`` stays true, resolution names the winner).
* both changed on a one-way field: the field's source side wins (it is not a conflict: the
  other side never owns that field).
* never-synced pairs (absent from ``base``; base counts as empty): a field that only one side
  fills is written to the other side (direction permitting); when both sides hold different
  values of a bidirectional field, the explicit ``conflict_policy`` winner wins, and under
  ``"none"`` the mapping's primary direction wins (``mapping_direction`` ``to_crm`` or
  ``bidirectional`` -> NAV wins, ``from_crm`` -> CRM wins). Such fields are not conflicts.
  For never-synced pairs the engine must pass the rows of both sides (an absent side would
  count as empty and could be overwritten).

Everything is computed with per-field polars expressions over one joined frame (no Python loop
over rows), and the long ``field_changes`` frame holds only the changed cells. Side rows equal
to their base are dropped first, so passing complete side frames costs little more than passing
only the changed rows: each side row finds its base row through a join of 64-bit key hashes
(every match confirmed on the key itself), then its values are compared with the base's
exactly (:func:`.align.rows_differing_from_base`; no hash ever decides that values are equal).
Columns other than the key and the fields are ignored. Measured on the shared 2-core machine
(``benchmarks``, scenario 1, load 2-3 from other work): 1,000,000 pairs x 12 fields with 1%
changed per side and 0.1% conflicting take 0.27-0.41 s given the changed rows only and
0.78-1.18 s given complete side frames (about 0.37 GB on top of the inputs); the floor of both
is building and ordering the 1,000,000-row ``records`` frame (ordering the keys runs in a thread
meanwhile) and, for complete frames, aligning and comparing 2 x 12,000,000 cells with base rows
in another order (bound by memory latency: 0.93-0.97 s for the benchmark's plain polars join
and compare alone).

Modules: :mod:`.model` (:class:`DiffField`, :class:`DiffResult` and the output vocabulary),
:mod:`.canonical` (values per field kind), :mod:`.align` (side rows against their base rows),
:mod:`.decide` (the per-field rules as expressions), :mod:`.output` (``records`` and
``field_changes``) and :mod:`.three_way` (:func:`three_way_diff` putting them together).
"""

from __future__ import annotations

from .canonical import canonical_frame
from .model import (
    ACTION_DTYPE,
    ACTIONS,
    CHANGED_SIDE_DTYPE,
    CHANGED_SIDES,
    RESOLUTION_DTYPE,
    RESOLUTIONS,
    TARGET_DTYPE,
    TARGETS,
    ConflictPolicy,
    DiffField,
    DiffResult,
    Direction,
    FieldKind,
    FrameLike,
)
from .three_way import apply_changes_to_frames, three_way_diff

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
    "apply_changes_to_frames",
    "canonical_frame",
    "three_way_diff",
]
