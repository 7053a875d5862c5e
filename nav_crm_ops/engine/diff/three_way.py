"""The three-way diff itself: checked inputs, the pairs in play, the decision, the result.

Why in steps: each step has one job and hands the next an object rather than a dozen locals:
:class:`_Run` (the checked settings), :class:`_InPlay` (side rows differing from their base,
from :mod:`.align`), the joined per-pair frame, the wide decided frame (:mod:`.decide`), and
finally the output frames (:mod:`.output`).
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import polars as pl

from ...exceptions import SyncError
from ..vocabulary import Side
from .align import (
    base_positions,
    gatherable,
    key_hashes,
    key_hashes_unique,
    rows_differing_from_base,
    rows_of,
)
from .canonical import canonical_frame, canonical_lazy, lazy_input
from .decide import (
    field_decision,
    field_values,
    hold_if_conflicting,
    never_synced_winner,
    new_base,
)
from .model import (
    CONFLICT_POLICIES,
    DIRECTIONS,
    ENGINE,
    TARGET_CRM,
    TARGET_NAV,
    ConflictPolicy,
    DiffField,
    DiffResult,
    Direction,
    FrameLike,
)
from .output import field_changes, key_order, orders_by_prefixes, records

__all__ = ["apply_changes_to_frames", "three_way_diff"]


@dataclass(frozen=True)
class _Run:
    """One diff's settings, checked: what every step needs besides the frames."""

    fields: tuple[DiffField, ...]
    key: str
    conflict_policy: ConflictPolicy
    mapping_direction: Direction

    def __post_init__(self) -> None:
        if self.conflict_policy not in CONFLICT_POLICIES:
            raise SyncError(
                f"conflict_policy {self.conflict_policy!r} is not one of "
                "'none', 'nav_wins', 'crm_wins'"
            )
        if self.mapping_direction not in DIRECTIONS:
            raise SyncError(
                f"mapping_direction {self.mapping_direction!r} is not one of "
                "'to_crm', 'from_crm', 'bidirectional'"
            )
        names = self.names
        if len(set(names)) != len(names) or self.key in names:
            raise SyncError(
                f"diff field names must be unique and differ from {self.key!r}: {names}"
            )
        reserved = [n for n in names if n.startswith("__")]
        if reserved:
            raise SyncError(f"diff field names must not start with '__': {reserved}")

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.fields]

    def prefixed(self, frame: pl.LazyFrame, prefix: str) -> pl.LazyFrame:
        """``frame`` in canonical form, its field columns renamed ``<prefix><field>``."""
        return canonical_lazy(frame, self.key, self.fields).rename(
            {n: f"{prefix}{n}" for n in self.names}
        )


@dataclass(frozen=True)
class _InPlay:
    """The pairs the diff decides on: the side rows that differ from their base row (or have
    none), and the row numbers of those base rows within the whole ``base`` (ascending)."""

    nav: pl.DataFrame
    crm: pl.DataFrame
    base: pl.DataFrame
    base_rows: pl.Series


def _collected(
    run: _Run, nav: FrameLike | None, crm: FrameLike | None, base: FrameLike | None
) -> list[pl.DataFrame]:
    """The NAV, CRM and base frames reduced to the key and the fields, collected together."""
    key, names = run.key, run.names
    return pl.collect_all(
        [
            lazy_input(nav, key, names, "nav"),
            lazy_input(crm, key, names, "crm"),
            lazy_input(base, key, names, "base"),
        ],
        engine=ENGINE,
    )


def _in_play(
    run: _Run, nav_frame: pl.DataFrame, crm_frame: pl.DataFrame, base_frame: pl.DataFrame
) -> _InPlay:
    """Refuse duplicate keys, and drop side rows equal to their base."""
    key = run.key
    largest = max(nav_frame.height, crm_frame.height, base_frame.height)
    base_frame = base_frame.with_columns(gatherable(base_frame.get_column(key), largest))
    frames = {"nav": nav_frame, "crm": crm_frame, "base": base_frame}
    hashes = key_hashes(frames, key)
    distinct = key_hashes_unique(frames, key, hashes)
    positions = base_positions(
        [nav_frame, crm_frame],
        base_frame,
        key,
        by_hash=distinct["base"],
        hashes=[hashes["nav"], hashes["crm"], hashes["base"]],
    )
    nav_changed, crm_changed = rows_differing_from_base(
        [(nav_frame, positions[0]), (crm_frame, positions[1])], base_frame, run.fields
    )
    base_rows = (
        pl.concat([positions[0].gather(nav_changed), positions[1].gather(crm_changed)])
        .drop_nulls()
        .unique()
        .sort()
    )
    return _InPlay(
        rows_of(nav_frame, nav_changed), rows_of(crm_frame, crm_changed), base_frame, base_rows
    )


def _joined(run: _Run, in_play: _InPlay) -> pl.LazyFrame:
    """One row per pair in play: where it is present, and every field's canonical values
    per side (``__n_`` NAV, ``__c_`` CRM, ``__b_`` base)."""
    key = run.key
    sides = [
        in_play.nav.select(key).with_columns(pl.lit(True).alias("__in_nav")),
        in_play.crm.select(key).with_columns(pl.lit(True).alias("__in_crm")),
    ]
    candidates = sides[0].join(sides[1], on=key, how="full", coalesce=True).lazy()
    base_rows = rows_of(in_play.base, in_play.base_rows).lazy()
    return (
        candidates.join(run.prefixed(in_play.nav.lazy(), "__n_"), on=key, how="left")
        .join(run.prefixed(in_play.crm.lazy(), "__c_"), on=key, how="left")
        .join(
            run.prefixed(base_rows, "__b_").with_columns(
                pl.lit(True).alias("__in_base"), pl.lit(in_play.base_rows).alias("__base_row")
            ),
            on=key,
            how="left",
        )
        .with_columns(pl.col("__in_nav", "__in_crm", "__in_base").fill_null(False))
    )


def _count(run: _Run, expressions: list[pl.Expr]) -> pl.Expr:
    """Per pair, how many of ``expressions`` (one per field) are true."""
    if not run.fields:
        return pl.lit(0, pl.UInt32)
    return pl.sum_horizontal(e.cast(pl.UInt32) for e in expressions)


def _writes_to(run: _Run, target: Side) -> pl.Expr:
    """Per pair, how many fields are written to ``target``."""
    code = TARGET_CRM if target is Side.CRM else TARGET_NAV
    return _count(run, [pl.col(f"__t_{f.name}") == code for f in run.fields])


def _decided(run: _Run, joined: pl.LazyFrame) -> pl.DataFrame:
    """The wide frame: per pair and field the decision (held records hold every field), the
    new base, and the pair's counts of writes and conflicts."""
    fields = run.fields
    winner = never_synced_winner(run.conflict_policy, run.mapping_direction)
    values = [e for f in fields for e in field_values(f)]
    decided = [e for f in fields for e in field_decision(f, run.conflict_policy, winner)]
    conflicts = [pl.col(f"__x_{f.name}") for f in fields]
    hold = run.conflict_policy == "none" and bool(fields)
    held = pl.any_horizontal(conflicts) if hold else pl.lit(False)
    return (
        joined.with_columns(values)
        .with_columns(decided)
        .with_columns(held.alias("__held"))
        .with_columns(e for f in fields for e in hold_if_conflicting(f))
        .with_columns(
            *[new_base(f) for f in fields],
            _writes_to(run, Side.CRM).alias("n_changes_to_crm"),
            _writes_to(run, Side.NAV).alias("n_changes_to_nav"),
            _count(run, conflicts).alias("n_conflicts"),
        )
        .collect(engine=ENGINE)
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
    """Decide, per pair and field, what to write where (see the package docstring for rules)."""
    run = _Run(tuple(fields), key, conflict_policy, mapping_direction)
    nav_frame, crm_frame, base_frame = _collected(run, nav, crm, base)
    with ThreadPoolExecutor(max_workers=1) as pool:
        # Ordering many base keys for the records needs nothing else, so it runs in a thread
        # alongside the alignment (1M keys: about 3% less wall time given complete frames,
        # 20% given changed rows only; the order is unused if never-synced pairs are in play).
        keys = base_frame.get_column(key)
        base_order = pool.submit(key_order, keys).result if orders_by_prefixes(keys) else None
        in_play = _in_play(run, nav_frame, crm_frame, base_frame)
        wide = _decided(run, _joined(run, in_play))
        changes = field_changes(wide, run.fields, key)
        pairs = records(wide, changes, keys, key, base_order)
    new_base_frame = wide.select(
        key, *[pl.col(f"__nb_{f.name}").alias(f.name) for f in run.fields]
    ).sort(key)
    return DiffResult(pairs, changes, new_base_frame, run.fields, key)


def _with_writes(current: pl.DataFrame, writes: pl.DataFrame, field: DiffField, key: str
                 ) -> pl.DataFrame:
    """``current`` with ``field`` set to ``new_value`` wherever ``writes`` writes it."""
    updates = writes.filter(pl.col("field") == field.name).select(
        key, pl.col("new_value").alias("__new"), pl.lit(True).alias("__write")
    )
    if updates.height == 0:
        return current
    return (
        current.join(updates, on=key, how="left")
        .with_columns(
            pl.when(pl.col("__write"))
            .then(pl.col("__new"))
            .otherwise(pl.col(field.name))
            .alias(field.name)
        )
        .drop("__new", "__write")
    )


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
    for frame, side in ((nav, Side.NAV), (crm, Side.CRM)):
        current = canonical_frame(frame, result.fields, key=key)
        writes = result.field_changes.filter(pl.col("target") == side.value)
        for field in result.fields:
            current = _with_writes(current, writes, field, key)
        sides.append(current)
    return sides[0], sides[1]
