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
exactly (:func:`_rows_differing_from_base`; no hash ever decides that values are equal).
Columns other than the key and the fields are ignored. Measured on the shared 2-core machine
(``benchmarks``, scenario 1): 1,000,000 pairs x 12 fields with 1% changed per side and 0.1%
conflicting take about 0.7 s given the changed rows only and about 2 s given complete side
frames (about 0.25 GB on top of the inputs); the floor of both is building and ordering the
1,000,000-row ``records`` frame (about 0.25 s) and, for complete frames, aligning and comparing
2 x 12,000,000 cells with base rows in another order (about 1 s, bound by memory latency).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import polars as pl

from ..exceptions import SyncError

__all__ = [
    "ACTIONS",
    "CHANGED_SIDES",
    "RESOLUTIONS",
    "TARGETS",
    "DiffField",
    "DiffResult",
    "apply_changes_to_frames",
    "canonical_frame",
    "three_way_diff",
]

Direction = Literal["to_crm", "from_crm", "bidirectional"]
FieldKind = Literal["text", "number", "bool", "datetime", "id"]
ConflictPolicy = Literal["none", "nav_wins", "crm_wins"]

ACTIONS: tuple[str, ...] = ("update_crm", "update_nav", "update_both", "unchanged", "conflict")
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

_TARGET_NONE, _TARGET_CRM, _TARGET_NAV = 0, 1, 2
_RES_NONE, _RES_NAV_WINS, _RES_CRM_WINS, _RES_HELD, _RES_SAME, _RES_BLOCKED = range(6)

_KEY_HASH_SEED = 20_261_123
"""Any fixed seed: key hashes only ever speed up joins and uniqueness checks, never decide."""
_ENGINE: Literal["in-memory"] = "in-memory"
"""polars' in-memory engine: about twice as fast as the streaming default for the diff's
wide per-pair query (hundreds of expressions over the pairs in play), and no slower elsewhere."""
_RAW_COMPARE_ROWS = 50_000
"""Side frames at least this long are compared raw first (see :func:`_rows_differing_from_base`);
shorter ones, usually the changed rows only, are compared canonically at once."""
_FAST_SORT_ROWS = 50_000
"""Key columns at least this long are ordered by :func:`_key_order`'s integer prefixes."""
_TRUE_WORDS = ("true", "1", "yes", "y", "t", "on")
_FALSE_WORDS = ("false", "0", "no", "n", "f", "off")
_DATETIME_WITH_OFFSET = ("%Y-%m-%dT%H:%M:%S%.f%:z", "%Y-%m-%dT%H:%M:%S%.f%z")
_DATETIME_NAIVE = ("%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M", "%Y-%m-%d")


@dataclass(frozen=True)
class DiffField:
    """One mapped field as the diff sees it: its name, who may write it, how to compare it."""

    name: str
    direction: Direction
    kind: FieldKind = "text"
    case_sensitive: bool = True
    decimals: int | None = None

    def __post_init__(self) -> None:
        if self.direction not in ("to_crm", "from_crm", "bidirectional"):
            raise SyncError(
                f"field {self.name!r}: direction {self.direction!r} is not one of "
                "'to_crm', 'from_crm', 'bidirectional'"
            )
        if self.kind not in ("text", "number", "bool", "datetime", "id"):
            raise SyncError(
                f"field {self.name!r}: kind {self.kind!r} is not one of "
                "'text', 'number', 'bool', 'datetime', 'id'"
            )

    @property
    def writes_to_crm(self) -> bool:
        return self.direction in ("to_crm", "bidirectional")

    @property
    def writes_to_nav(self) -> bool:
        return self.direction in ("from_crm", "bidirectional")


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


FrameLike = pl.DataFrame | pl.LazyFrame


def _lazy(frame: FrameLike | None, key: str, columns: Sequence[str], label: str) -> pl.LazyFrame:
    if frame is None:
        return pl.LazyFrame(
            {key: []} | {c: [] for c in columns},
            schema={key: pl.Utf8} | dict.fromkeys(columns, pl.Utf8),
        )
    lazy = frame.lazy() if isinstance(frame, pl.DataFrame) else frame
    schema = lazy.collect_schema()
    missing = [c for c in (key, *columns) if c not in schema]
    if missing:
        raise SyncError(
            f"the {label} frame lacks column(s) {missing}: every frame passed to the diff needs "
            f"{key!r} and one column per diff field (has {list(schema.names())})"
        )
    return lazy.select(pl.col(key).cast(pl.Utf8), *[pl.col(c) for c in columns])


def _empty_to_null(text: pl.Expr) -> pl.Expr:
    return pl.when(text == "").then(None).otherwise(text)


def _stripped_text(expr: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    return expr.cast(pl.Utf8).str.strip_chars() if dtype != pl.Utf8 else expr.str.strip_chars()


def _canonical_number(expr: pl.Expr, dtype: pl.DataType, decimals: int | None) -> pl.Expr:
    fallback: pl.Expr | None = None
    if dtype == pl.Utf8:
        fallback = _empty_to_null(expr.str.strip_chars())
        number = fallback.cast(pl.Float64, strict=False)
    else:
        number = expr.cast(pl.Float64, strict=False)
    if decimals is not None:
        number = number.round(decimals)
    number = pl.when(number == 0).then(pl.lit(0.0)).otherwise(number)
    text = number.cast(pl.Utf8)
    return text if fallback is None else pl.coalesce(text, fallback)


def _canonical_bool(expr: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    if dtype == pl.Boolean:
        flag = expr
        fallback = None
    elif dtype.is_numeric():
        flag = expr != 0
        fallback = None
    else:
        fallback = _empty_to_null(_stripped_text(expr, dtype))
        mapping = dict.fromkeys(_TRUE_WORDS, True) | dict.fromkeys(_FALSE_WORDS, False)
        flag = fallback.str.to_lowercase().replace_strict(
            mapping, default=None, return_dtype=pl.Boolean
        )
    text = pl.when(flag).then(pl.lit("true")).when(~flag).then(pl.lit("false"))
    return text if fallback is None else pl.coalesce(text, fallback)


def _canonical_datetime(expr: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    fallback = None
    if isinstance(dtype, pl.Datetime):
        moment = (
            expr.dt.convert_time_zone("UTC")
            if dtype.time_zone is not None
            else expr.dt.replace_time_zone("UTC")
        )
    elif dtype == pl.Date:
        moment = expr.cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
    else:
        fallback = _empty_to_null(_stripped_text(expr, dtype))
        iso = fallback.str.replace(r"^(\d{4}-\d{2}-\d{2}) ", "${1}T").str.replace(r"Z$", "+00:00")
        attempts = [
            iso.str.to_datetime(f, time_unit="us", strict=False).dt.convert_time_zone("UTC")
            for f in _DATETIME_WITH_OFFSET
        ] + [
            iso.str.to_datetime(f, time_unit="us", strict=False).dt.replace_time_zone("UTC")
            for f in _DATETIME_NAIVE
        ]
        moment = pl.coalesce(attempts)
    text = moment.dt.cast_time_unit("us").dt.strftime("%Y-%m-%dT%H:%M:%S%.fZ")
    return text if fallback is None else pl.coalesce(text, fallback)


def _canonical_id(expr: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    return _empty_to_null(_stripped_text(expr, dtype).str.strip_chars("{}").str.to_lowercase())


def _canonical(expr: pl.Expr, dtype: pl.DataType, field: DiffField) -> pl.Expr:
    """The display form of one field's values: comparable across sides and dtypes."""
    if dtype == pl.Null:
        return pl.lit(None, dtype=pl.Utf8)
    if field.kind == "number":
        return _canonical_number(expr, dtype, field.decimals)
    if field.kind == "bool":
        return _canonical_bool(expr, dtype)
    if field.kind == "datetime":
        return _canonical_datetime(expr, dtype)
    if field.kind == "id":
        return _canonical_id(expr, dtype)
    text = expr if dtype == pl.Utf8 else expr.cast(pl.Utf8)
    return _empty_to_null(text)


def _canonical_lazy(frame: pl.LazyFrame, key: str, fields: Sequence[DiffField]) -> pl.LazyFrame:
    schema = frame.collect_schema()
    return frame.select(
        pl.col(key),
        *[_canonical(pl.col(f.name), schema[f.name], f).alias(f.name) for f in fields],
    )


def canonical_frame(
    frame: FrameLike, fields: Sequence[DiffField], *, key: str = "pair_id"
) -> pl.DataFrame:
    """``frame`` with every field column in its canonical Utf8 form (how the diff sees it)."""
    lazy = _lazy(frame, key, [f.name for f in fields], "given")
    return _canonical_lazy(lazy, key, fields).collect()


def _compare_key(expr: pl.Expr, field: DiffField) -> pl.Expr:
    if field.kind == "text" and not field.case_sensitive:
        return expr.str.to_lowercase()
    return expr


def _duplicate_keys(frame: pl.DataFrame, key: str) -> list[str]:
    """Up to five keys that occur more than once in ``frame`` (for the error message)."""
    found = frame.select(key).filter(pl.col(key).is_duplicated()).unique().sort(key).head(5)
    return list(found.get_column(key).to_list())


def _key_hashes_unique(frames: dict[str, pl.DataFrame], key: str) -> dict[str, bool]:
    """Refuse frames holding a key twice; per frame, whether its key hashes are all distinct.

    Distinct hashes prove distinct keys, and counting 64-bit hashes is several times faster
    than counting strings; only when hashes repeat are the keys themselves counted (a repeat
    is then a real duplicate or, very rarely, a hash collision).
    """
    distinct = {
        label: frame.get_column(key).hash(_KEY_HASH_SEED).n_unique() == frame.height
        for label, frame in frames.items()
    }
    duplicated = [
        label
        for label, frame in frames.items()
        if not distinct[label] and frame.get_column(key).n_unique() != frame.height
    ]
    if duplicated:
        details = "; ".join(
            f"{label}: {_duplicate_keys(frames[label], key)}" for label in duplicated
        )
        raise SyncError(
            "each frame passed to the diff must hold one row per coupled pair; duplicated "
            f"{key} values in {details}"
        )
    return distinct


def _base_positions(
    sides: Sequence[pl.DataFrame], base: pl.DataFrame, key: str, by_hash: bool
) -> list[pl.Series]:
    """Per side, for each row the row number of the base row with the same key (null if none).

    ``by_hash`` (the base's key hashes are distinct) joins 64-bit key hashes instead of the
    strings; every match is then confirmed on the keys themselves, so a side key whose hash
    collides with another base key's finds no base row, exactly as with a string join (the
    base holds no other row with that hash). Null keys never match, as in a polars join.
    """
    base_keys = base.get_column(key)

    def join_column(keys: pl.Series) -> pl.Series:
        return keys.hash(_KEY_HASH_SEED) if by_hash else keys

    base_rows = pl.DataFrame({"__on": join_column(base_keys)}).with_row_index("__base")
    found: list[pl.Series] = []
    for side in sides:  # one after the other: two hash tables of a million rows cost memory
        matches = (
            pl.DataFrame({"__on": join_column(side.get_column(key))})
            .with_row_index("__side")
            .join(base_rows, on="__on", how="inner")
        )
        nothing = pl.repeat(None, side.height, dtype=pl.get_index_type(), eager=True)
        found.append(
            nothing.scatter(matches.get_column("__side"), matches.get_column("__base"))
            if matches.height
            else nothing
        )
        del matches
    if not by_hash:
        return found
    gatherable = _gatherable(base_keys, max((p.len() for p in found), default=0))
    confirmed = pl.collect_all(
        (
            pl.LazyFrame([side.get_column(key).alias("key"), positions.alias("row")]).select(
                (pl.col("key") == pl.lit(gatherable).gather(pl.col("row"))).fill_null(False)
            )
            for side, positions in zip(sides, found, strict=True)
        ),
        engine=_ENGINE,
    )
    return [
        positions.set(~same.to_series(), None)
        for positions, same in zip(found, confirmed, strict=True)
    ]


def _gatherable(column: pl.Series, rows: int) -> pl.Series:
    """``column`` ready for gathering ``rows`` random rows.

    Gathering from a column in many chunks (as parquet readers return them) costs about ten
    times as much per row as from one chunk; joining the chunks costs about as much as
    gathering a sixteenth of the column, so it pays only for large gathers.
    """
    return column.rechunk() if column.n_chunks() > 1 and rows * 16 > column.len() else column


def _rows_differing_from_base(
    sides: Sequence[tuple[pl.DataFrame, pl.Series]],
    base: pl.DataFrame,
    fields: Sequence[DiffField],
) -> list[pl.Series]:
    """Per side, the row numbers of the rows that differ canonically from their base row or
    have none (``sides``: each frame with its :func:`_base_positions`).

    Every field value is compared with its base value exactly; no hash ever decides that two
    values are equal (a row-hash pre-filter would not save the work: the rows whose hashes
    agree, nearly all of them, would still need this compare). Long frames (complete sides)
    are compared raw first, one column at a time against the base column gathered into the
    side's order (equal raw values of the same dtype are equal canonically too), then
    canonically only for the few rows whose raw values differ and for fields whose dtypes
    differ from the base's. Short frames (changed rows) are compared canonically at once.
    """
    base_schema = base.schema
    comparable = [
        [
            f
            for f in fields
            if base_schema[f.name] != pl.Null and frame.schema[f.name] == base_schema[f.name]
        ]
        if frame.height >= _RAW_COMPARE_ROWS
        else []
        for frame, _ in sides
    ]
    raw_equal = [positions.is_not_null() for _, positions in sides]
    for field in fields:
        users = [index for index, fields_of in enumerate(comparable) if field in fields_of]
        if not users:
            continue
        largest = max(sides[index][1].len() for index in users)
        column = _gatherable(base.get_column(field.name), largest)
        # One query per side, collected together: comparing a million strings with base rows
        # in another order is bound by memory latency, so the sides run in parallel.
        equal = pl.collect_all(
            (
                pl.LazyFrame(
                    [
                        sides[index][0].get_column(field.name).alias("side"),
                        sides[index][1].alias("row"),
                    ]
                ).select(pl.col("side").eq_missing(pl.lit(column).gather(pl.col("row"))))
                for index in users
            ),
            engine=_ENGINE,
        )
        for index, same in zip(users, equal, strict=True):
            raw_equal[index] = raw_equal[index] & same.to_series()
    return [
        _canonically_differing(
            frame, positions, equal, base, fields, [f for f in fields if f not in fields_of]
        )
        for (frame, positions), equal, fields_of in zip(sides, raw_equal, comparable, strict=True)
    ]


def _canonically_differing(
    side: pl.DataFrame,
    positions: pl.Series,
    raw_equal: pl.Series,
    base: pl.DataFrame,
    fields: Sequence[DiffField],
    others: Sequence[DiffField],
) -> pl.Series:
    """Row numbers of ``side`` rows without a base row or canonically unlike it.

    Rows equal raw on the raw-comparable fields need only the ``others`` compared."""
    side_schema, base_schema = side.schema, base.schema

    def differs(rows: pl.Series, compared: Sequence[DiffField]) -> pl.Series:
        if rows.len() == 0 or not compared:
            return rows.clear()
        names = [f.name for f in compared]
        pair = pl.concat(
            [
                side.select(names)[rows],
                base.select(pl.col(n).alias(f"__b_{n}") for n in names)[positions.gather(rows)],
            ],
            how="horizontal",
        )
        same = pair.select(
            pl.all_horizontal(
                _compare_key(_canonical(pl.col(f.name), side_schema[f.name], f), f).eq_missing(
                    _compare_key(_canonical(pl.col(f"__b_{f.name}"), base_schema[f.name], f), f)
                )
                for f in compared
            )
        ).to_series()
        return rows.filter(~same)

    has_base = positions.is_not_null()
    without_base = (~has_base).arg_true()
    raw_differing = differs((has_base & ~raw_equal).arg_true(), fields)
    others_differing = differs(raw_equal.arg_true(), others)
    return pl.concat([without_base, raw_differing, others_differing]).sort()


def _never_synced_winner(policy: ConflictPolicy, mapping_direction: Direction) -> tuple[int, int]:
    """(target, resolution) for bidirectional fields both sides fill differently, never synced."""
    if policy == "crm_wins" or (policy == "none" and mapping_direction == "from_crm"):
        return _TARGET_NAV, _RES_CRM_WINS
    return _TARGET_CRM, _RES_NAV_WINS


def _field_decision(
    field: DiffField, policy: ConflictPolicy, never_synced_winner: tuple[int, int]
) -> list[pl.Expr]:
    """Per-pair columns for one field: effective values, target, resolution, conflict, side.

    Targets and resolutions are small integer codes (``_TARGET_*``, ``_RES_*``) until the
    long output turns them into names; a record-level hold is applied afterwards.
    """
    in_nav, in_crm, in_base = pl.col("__in_nav"), pl.col("__in_crm"), pl.col("__in_base")
    b = pl.col(f"__b_{field.name}")
    n = pl.when(in_nav).then(pl.col(f"__n_{field.name}")).otherwise(b)
    c = pl.when(in_crm).then(pl.col(f"__c_{field.name}")).otherwise(b)
    nk, ck, bk = _compare_key(n, field), _compare_key(c, field), _compare_key(b, field)
    changed_nav, changed_crm = ~nk.eq_missing(bk), ~ck.eq_missing(bk)
    both_differ = changed_nav & changed_crm & ~nk.eq_missing(ck)
    conflict = both_differ & in_base if field.direction == "bidirectional" else pl.lit(False)

    nav_only: tuple[Any, Any] = (
        (_TARGET_CRM, _RES_NONE) if field.writes_to_crm else (
            pl.when(in_base).then(_TARGET_NONE).otherwise(_TARGET_NAV),
            pl.when(in_base).then(_RES_BLOCKED).otherwise(_RES_CRM_WINS)))
    crm_only: tuple[Any, Any] = (
        (_TARGET_NAV, _RES_NONE) if field.writes_to_nav else (
            pl.when(in_base).then(_TARGET_NONE).otherwise(_TARGET_CRM),
            pl.when(in_base).then(_RES_BLOCKED).otherwise(_RES_NAV_WINS)))
    if field.direction == "to_crm":
        differ_target, differ_res = pl.lit(_TARGET_CRM), pl.lit(_RES_NAV_WINS)
    elif field.direction == "from_crm":
        differ_target, differ_res = pl.lit(_TARGET_NAV), pl.lit(_RES_CRM_WINS)
    else:
        policy_target, policy_res = {
            "none": (_TARGET_NONE, _RES_HELD),
            "nav_wins": (_TARGET_CRM, _RES_NAV_WINS),
            "crm_wins": (_TARGET_NAV, _RES_CRM_WINS),
        }[policy]
        differ_target = pl.when(in_base).then(policy_target).otherwise(never_synced_winner[0])
        differ_res = pl.when(in_base).then(policy_res).otherwise(never_synced_winner[1])

    only_nav, only_crm = changed_nav & ~changed_crm, changed_crm & ~changed_nav
    target = (
        pl.when(only_nav)
        .then(nav_only[0])
        .when(only_crm)
        .then(crm_only[0])
        .when(both_differ)
        .then(differ_target)
        .otherwise(_TARGET_NONE)
    )
    resolution = (
        pl.when(only_nav)
        .then(nav_only[1])
        .when(only_crm)
        .then(crm_only[1])
        .when(both_differ)
        .then(differ_res)
        .when(changed_nav & changed_crm)
        .then(_RES_SAME)
        .otherwise(_RES_NONE)
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
        n.alias(f"__nv_{field.name}"),
        c.alias(f"__cv_{field.name}"),
        target.cast(pl.UInt8).alias(f"__t_{field.name}"),
        resolution.cast(pl.UInt8).alias(f"__r_{field.name}"),
        conflict.alias(f"__x_{field.name}"),
        side.alias(f"__s_{field.name}"),
    ]


def _hold_if_conflicting(field: DiffField) -> list[pl.Expr]:
    """In a held record nothing is written: every changed field becomes ``held``."""
    held, changed = pl.col("__held"), pl.col(f"__s_{field.name}").is_not_null()
    return [
        pl.when(held)
        .then(pl.lit(_TARGET_NONE, pl.UInt8))
        .otherwise(pl.col(f"__t_{field.name}"))
        .alias(f"__t_{field.name}"),
        pl.when(held & changed)
        .then(pl.lit(_RES_HELD, pl.UInt8))
        .otherwise(pl.col(f"__r_{field.name}"))
        .alias(f"__r_{field.name}"),
    ]


def _new_base(field: DiffField) -> pl.Expr:
    """The field's value on both sides once the writes are done (else the old base)."""
    t, r = pl.col(f"__t_{field.name}"), pl.col(f"__r_{field.name}")
    return (
        pl.when(t == _TARGET_CRM)
        .then(pl.col(f"__nv_{field.name}"))
        .when(t == _TARGET_NAV)
        .then(pl.col(f"__cv_{field.name}"))
        .when(r == _RES_SAME)
        .then(pl.col(f"__nv_{field.name}"))
        .otherwise(pl.col(f"__b_{field.name}"))
        .alias(f"__nb_{field.name}")
    )


def three_way_diff(
    nav: FrameLike | None,
    crm: FrameLike | None,
    base: FrameLike | None,
    fields: Sequence[DiffField],
    *,
    conflict_policy: ConflictPolicy = "none",
    mapping_direction: Direction = "bidirectional",
    key: str = "pair_id",
) -> DiffResult:
    """Decide, per pair and field, what to write where (see the module docstring for rules)."""
    if conflict_policy not in ("none", "nav_wins", "crm_wins"):
        raise SyncError(
            f"conflict_policy {conflict_policy!r} is not one of 'none', 'nav_wins', 'crm_wins'"
        )
    if mapping_direction not in ("to_crm", "from_crm", "bidirectional"):
        raise SyncError(
            f"mapping_direction {mapping_direction!r} is not one of "
            "'to_crm', 'from_crm', 'bidirectional'"
        )
    fields = tuple(fields)
    names = [f.name for f in fields]
    if len(set(names)) != len(names) or key in names:
        raise SyncError(f"diff field names must be unique and differ from {key!r}: {names}")
    reserved = [n for n in names if n.startswith("__")]
    if reserved:
        raise SyncError(f"diff field names must not start with '__': {reserved}")

    nav_frame, crm_frame, base_frame = pl.collect_all(
        [
            _lazy(nav, key, names, "nav"),
            _lazy(crm, key, names, "crm"),
            _lazy(base, key, names, "base"),
        ],
        engine=_ENGINE,
    )
    distinct = _key_hashes_unique({"nav": nav_frame, "crm": crm_frame, "base": base_frame}, key)
    positions = _base_positions([nav_frame, crm_frame], base_frame, key, by_hash=distinct["base"])
    nav_changed, crm_changed = _rows_differing_from_base(
        [(nav_frame, positions[0]), (crm_frame, positions[1])], base_frame, fields
    )
    nav_rows, crm_rows = nav_frame[nav_changed], crm_frame[crm_changed]
    base_in_play = (
        pl.concat([positions[0].gather(nav_changed), positions[1].gather(crm_changed)])
        .drop_nulls()
        .unique()
    )
    nav_lazy, crm_lazy = nav_rows.lazy(), crm_rows.lazy()
    sides = [
        nav_rows.select(key).with_columns(pl.lit(True).alias("__in_nav")),
        crm_rows.select(key).with_columns(pl.lit(True).alias("__in_crm")),
    ]
    candidates = sides[0].join(sides[1], on=key, how="full", coalesce=True).lazy()

    def prefixed(frame: pl.LazyFrame, prefix: str) -> pl.LazyFrame:
        return _canonical_lazy(frame, key, fields).rename({n: f"{prefix}{n}" for n in names})

    base_rows = base_frame[base_in_play].lazy()
    joined = (
        candidates.join(prefixed(nav_lazy, "__n_"), on=key, how="left")
        .join(prefixed(crm_lazy, "__c_"), on=key, how="left")
        .join(
            prefixed(base_rows, "__b_").with_columns(pl.lit(True).alias("__in_base")),
            on=key,
            how="left",
        )
        .with_columns(pl.col("__in_nav", "__in_crm", "__in_base").fill_null(False))
    )

    initial = _never_synced_winner(conflict_policy, mapping_direction)
    decided = [e for f in fields for e in _field_decision(f, conflict_policy, initial)]
    conflicts = [pl.col(f"__x_{f.name}") for f in fields]
    held = pl.any_horizontal(conflicts) if conflict_policy == "none" and fields else pl.lit(False)
    zero = pl.lit(0, pl.UInt32)

    def count(expressions: list[pl.Expr]) -> pl.Expr:
        return pl.sum_horizontal(e.cast(pl.UInt32) for e in expressions) if fields else zero

    wide = (
        joined.with_columns(decided)
        .with_columns(held.alias("__held"))
        .with_columns(e for f in fields for e in _hold_if_conflicting(f))
        .with_columns(
            *[_new_base(f) for f in fields],
            count([pl.col(f"__t_{f.name}") == _TARGET_CRM for f in fields]).alias(
                "n_changes_to_crm"
            ),
            count([pl.col(f"__t_{f.name}") == _TARGET_NAV for f in fields]).alias(
                "n_changes_to_nav"
            ),
            count(conflicts).alias("n_conflicts"),
        )
        .collect(engine=_ENGINE)
    )

    field_changes = _field_changes(wide, fields, key)
    untouched = base_frame.get_column(key).filter(
        pl.repeat(True, base_frame.height, eager=True).scatter(base_in_play, False)
        if base_in_play.len()
        else pl.repeat(True, base_frame.height, eager=True)
    )
    records = _records(wide, field_changes, untouched, key)
    new_base = wide.select(key, *[pl.col(f"__nb_{f.name}").alias(f.name) for f in fields]).sort(key)
    return DiffResult(records, field_changes, new_base, fields, key)


def _field_changes(wide: pl.DataFrame, fields: Sequence[DiffField], key: str) -> pl.DataFrame:
    target_names = pl.Series(TARGETS)
    resolution_names = pl.Series(RESOLUTIONS)
    parts = []
    for order, field in enumerate(fields):
        name = field.name
        part = (
            wide.lazy()
            .filter(pl.col(f"__s_{name}").is_not_null())
            .select(
                pl.col(key),
                pl.lit(name).alias("field"),
                pl.lit(order, pl.UInt32).alias("__order"),
                pl.col(f"__b_{name}").alias("base_value"),
                pl.col(f"__nv_{name}").alias("nav_value"),
                pl.col(f"__cv_{name}").alias("crm_value"),
                pl.col(f"__s_{name}").cast(CHANGED_SIDE_DTYPE).alias("changed_side"),
                pl.col(f"__t_{name}").alias("__target"),
                pl.when(pl.col(f"__t_{name}") == _TARGET_CRM)
                .then(pl.col(f"__nv_{name}"))
                .when(pl.col(f"__t_{name}") == _TARGET_NAV)
                .then(pl.col(f"__cv_{name}"))
                .when(pl.col(f"__r_{name}") == _RES_SAME)
                .then(pl.col(f"__nv_{name}"))
                .alias("new_value"),
                pl.col(f"__x_{name}").alias("conflict"),
                pl.col(f"__r_{name}").alias("__resolution"),
            )
        )
        parts.append(part)
    schema: dict[str, pl.DataType] = {
        key: pl.Utf8(),
        "field": pl.Utf8(),
        "base_value": pl.Utf8(),
        "nav_value": pl.Utf8(),
        "crm_value": pl.Utf8(),
        "changed_side": CHANGED_SIDE_DTYPE,
        "target": TARGET_DTYPE,
        "new_value": pl.Utf8(),
        "conflict": pl.Boolean(),
        "resolution": RESOLUTION_DTYPE,
    }
    if not parts:
        return pl.DataFrame(schema=schema)
    long = pl.concat(parts).sort(key, "__order").collect(engine=_ENGINE)
    return long.with_columns(
        target_names.gather(long.get_column("__target")).cast(TARGET_DTYPE).alias("target"),
        resolution_names.gather(long.get_column("__resolution"))
        .cast(RESOLUTION_DTYPE)
        .alias("resolution"),
    ).select(list(schema))


def _conflict_messages(field_changes: pl.DataFrame, key: str) -> pl.DataFrame:
    def shown(column: str) -> pl.Expr:
        return pl.format("'{}'", pl.col(column)).fill_null(pl.lit("<empty>"))

    conflicts = field_changes.filter(pl.col("conflict"))
    detail = pl.format(
        "{} (nav={}, crm={}, base={})",
        pl.col("field"),
        shown("nav_value"),
        shown("crm_value"),
        shown("base_value"),
    )
    return conflicts.group_by(key, maintain_order=True).agg(
        detail.str.join("; ").alias("__details"),
        pl.col("resolution").first().cast(pl.Utf8).alias("__resolution"),
    )


def _records(
    wide: pl.DataFrame, field_changes: pl.DataFrame, untouched_keys: pl.Series, key: str
) -> pl.DataFrame:
    """One row per pair in play (``wide``) and per base pair not in play, sorted by key."""
    to_crm, to_nav = pl.col("n_changes_to_crm") > 0, pl.col("n_changes_to_nav") > 0
    action = (
        pl.when(pl.col("__held"))
        .then(pl.lit("conflict"))
        .when(to_crm & to_nav)
        .then(pl.lit("update_both"))
        .when(to_crm)
        .then(pl.lit("update_crm"))
        .when(to_nav)
        .then(pl.lit("update_nav"))
        .otherwise(pl.lit("unchanged"))
        .cast(ACTION_DTYPE)
    )
    messages = _conflict_messages(field_changes, key)
    message = (
        pl.when(pl.col("__resolution") == "held")
        .then(
            pl.format(
                "held: both sides changed {} to different values since the last sync; "
                "nothing was written for this record. Edit one side to agree, or preview "
                "again with conflict_policy 'nav_wins' or 'crm_wins'",
                pl.col("__details"),
            )
        )
        .when(pl.col("__details").is_not_null())
        .then(
            pl.format(
                "both sides changed {}; resolved by {}", pl.col("__details"), pl.col("__resolution")
            )
        )
    )
    seen = (
        wide.select(
            key,
            action.alias("action"),
            "n_changes_to_crm",
            "n_changes_to_nav",
            "n_conflicts",
            (~pl.col("__in_base")).alias("never_synced"),
        )
        .join(messages, on=key, how="left")
        .with_columns(message.alias("conflict_message"))
        .drop("__details", "__resolution")
    )
    untouched = untouched_keys.alias(key).to_frame().with_columns(
        pl.lit("unchanged").cast(ACTION_DTYPE).alias("action"),
        pl.lit(0, pl.UInt32).alias("n_changes_to_crm"),
        pl.lit(0, pl.UInt32).alias("n_changes_to_nav"),
        pl.lit(0, pl.UInt32).alias("n_conflicts"),
        pl.lit(False).alias("never_synced"),
        pl.lit(None, pl.Utf8).alias("conflict_message"),
    )
    records = pl.concat([seen, untouched], rechunk=True)
    return records[_key_order(records.get_column(key))]


def _key_order(keys: pl.Series) -> pl.Series:
    """``keys.arg_sort()`` of unique keys, computed in about half the time for many ASCII keys.

    Comparing strings longer than 12 bytes makes the sort read each string's bytes from
    memory. For ASCII keys without nulls the bytes after the prefix that every key shares are
    sorted as big-endian integers instead, 8 bytes each, zero-padded: first the next 8 bytes,
    then, if two keys tie on them, the next 16. That order agrees with the keys' byte order
    wherever two keys' integers differ, so when no two keys tie it is the exact order; when
    some still tie, the strings are sorted as they are.
    """
    if keys.len() < _FAST_SORT_ROWS or keys.null_count() or (
        keys.str.len_bytes() != keys.str.len_chars()
    ).any():
        return keys.arg_sort()
    lowest, highest = str(keys.min()), str(keys.max())
    shared = 0
    while shared < min(len(lowest), len(highest)) and lowest[shared] == highest[shared]:
        shared += 1
    frame = pl.DataFrame({"key": keys})

    def word(offset: int) -> pl.Expr:
        return (
            pl.col("key")
            .str.slice(shared + offset, 8)
            .str.pad_end(8, "\x00")
            .cast(pl.Binary)
            .bin.reinterpret(dtype=pl.UInt64, endianness="big")
        )

    high = frame.select(word(0)).to_series()
    order = high.arg_sort()
    ordered = high.gather(order)
    if not (ordered == ordered.shift()).any():
        return order
    words = pl.DataFrame({"high": high, "low": frame.select(word(8)).to_series()})
    ordered_words = words.with_row_index("__row").sort("high", "low")
    tied = ordered_words.select(
        ((pl.col("high") == pl.col("high").shift()) & (pl.col("low") == pl.col("low").shift()))
        .any()
    ).item()
    return keys.arg_sort() if tied else ordered_words.get_column("__row")


def apply_changes_to_frames(
    nav: FrameLike,
    crm: FrameLike,
    result: DiffResult,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Simulate the writes of ``result`` on complete side frames (tests, what-if notebooks).

    Returns both sides in canonical form with every write applied: fields whose target is
    ``crm`` take ``new_value`` on the CRM frame, those targeting ``nav`` on the NAV frame.
    """
    key = result.key
    sides = []
    for frame, side in ((nav, "nav"), (crm, "crm")):
        current = canonical_frame(frame, result.fields, key=key)
        writes = result.field_changes.filter(pl.col("target") == side)
        for field in result.fields:
            updates = writes.filter(pl.col("field") == field.name).select(
                key, pl.col("new_value").alias("__new"), pl.lit(True).alias("__write")
            )
            if updates.height == 0:
                continue
            current = (
                current.join(updates, on=key, how="left")
                .with_columns(
                    pl.when(pl.col("__write"))
                    .then(pl.col("__new"))
                    .otherwise(pl.col(field.name))
                    .alias(field.name)
                )
                .drop("__new", "__write")
            )
        sides.append(current)
    return sides[0], sides[1]
