"""The three-way diff's paths for large frames give exactly what its paths for small ones give.

Large frames are compared raw before canonically, sides already in the base's order skip the
key join, key hashes are checked for repeats by sorting, and records of pairs that all have a
base row are put in the base's key order; these tests force each path on inputs that hold null
keys, never-synced pairs, case-only changes, numbers of another dtype and booleans.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

import polars as pl
import pytest

from nav_crm_ops.engine.diff import DiffField, DiffResult, align, output, three_way, three_way_diff
from nav_crm_ops.engine.diff.canonical import canonical_frame
from nav_crm_ops.exceptions import SyncError

PAIRS = 3_000
FIELDS = (
    DiffField("name", "bidirectional", case_sensitive=False),
    DiffField("phone", "bidirectional"),
    DiffField("limit", "to_crm", "number", decimals=2),
    DiffField("blocked", "bidirectional", "bool"),
    DiffField("owner", "from_crm", "id"),
)


def base_frame(pairs: int = PAIRS) -> pl.DataFrame:
    n = pl.col("n")
    return pl.select(pl.int_range(pairs).alias("n")).select(
        pl.format("pair-{}", n.cast(pl.Utf8).str.zfill(6)).alias("pair_id"),
        pl.format("Name {}", n).alias("name"),
        pl.when(n % 3 == 0).then(None).otherwise(n.cast(pl.Utf8)).alias("phone"),
        pl.format("{}.5", n % 40).alias("limit"),
        pl.when(n % 7 == 0).then(pl.lit("true")).otherwise(pl.lit("false")).alias("blocked"),
        pl.format("{{ABC-{}}}", n % 5).alias("owner"),
    )


def sides(base: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Complete NAV and CRM frames with every kind of change, a never-synced pair, a null key."""
    at = pl.int_range(pl.len())
    nav = base.with_columns(
        pl.when(at % 50 == 1).then(pl.col("name").str.to_uppercase())  # case only: equal
        .when(at % 50 == 2).then(pl.col("name") + " Ltd")
        .otherwise(pl.col("name")).alias("name"),
        pl.col("phone").fill_null(""),  # empty for null: equal
        pl.when(at % 50 == 3).then(pl.col("limit").cast(pl.Float64) + 0.001)  # rounds equal
        .when(at % 50 == 4).then(pl.col("limit").cast(pl.Float64) + 1)
        .otherwise(pl.col("limit").cast(pl.Float64)).alias("limit"),  # another dtype
        pl.when(at % 50 == 5).then(pl.lit("Yes"))
        .when(at % 50 == 6).then(pl.lit("0"))
        .otherwise(pl.col("blocked")).alias("blocked"),
    )
    crm = base.with_columns(
        pl.when(at % 50 == 2).then(pl.lit("CRM name"))  # conflicts with NAV's
        .otherwise(pl.col("name")).alias("name"),
        pl.when(at % 50 == 7).then(pl.lit("crm phone"))
        .otherwise(pl.col("phone")).alias("phone"),
        pl.when(at % 50 == 8).then(pl.lit("abc-9"))
        .when(at % 50 == 9).then(pl.col("owner").str.to_lowercase().str.strip_chars("{}"))
        .otherwise(pl.col("owner")).alias("owner"),
    )
    return nav, crm


def new_pairs(nav: pl.DataFrame, crm: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The sides with a never-synced pair and a row without a key each."""
    extra = pl.DataFrame(
        {"pair_id": ["zz-new", None], "name": ["New", "No key"], "phone": ["1", None],
         "limit": ["5", "1"], "blocked": ["false", None], "owner": [None, "x"]}
    )
    return (
        pl.concat([nav, extra.with_columns(pl.col("limit").cast(pl.Float64))]),
        pl.concat([crm, extra.with_columns(pl.col("name") + " crm")]),
    )


@pytest.fixture
def small_paths() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(align, "_RAW_COMPARE_ROWS", 10**9)
        patch.setattr(output, "_FAST_SORT_ROWS", 10**9)
        yield


def large(nav: pl.DataFrame | None, crm: pl.DataFrame | None, base: pl.DataFrame,
          **options: str) -> DiffResult:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(align, "_RAW_COMPARE_ROWS", 0)
        patch.setattr(output, "_FAST_SORT_ROWS", 0)
        return three_way_diff(nav, crm, base, FIELDS, **options)  # type: ignore[arg-type]


def assert_same(got: DiffResult, expected: DiffResult) -> None:
    assert got.records.equals(expected.records)
    assert got.records.schema == expected.records.schema
    assert got.field_changes.equals(expected.field_changes)
    assert got.field_changes.schema == expected.field_changes.schema
    assert got.new_base.equals(expected.new_base)


@pytest.mark.parametrize("policy", ["none", "nav_wins"])
@pytest.mark.parametrize("with_new_pairs", [False, True], ids=["synced", "never-synced"])
def test_large_paths_decide_as_small_paths(
    small_paths: None, policy: str, with_new_pairs: bool
) -> None:
    base = base_frame()
    nav, crm = sides(base)
    if with_new_pairs:
        nav, crm = new_pairs(nav, crm)
    shuffled = [f.sample(fraction=1.0, shuffle=True, seed=s) for f, s in ((nav, 1), (crm, 2))]
    expected = three_way_diff(*shuffled, base, FIELDS, conflict_policy=policy)  # type: ignore[arg-type]
    assert expected.field_changes.get_column("conflict").any()
    assert_same(large(*shuffled, base.sample(fraction=1.0, shuffle=True, seed=3),
                      conflict_policy=policy), expected)
    assert_same(large(nav, crm, base, conflict_policy=policy), expected)  # in the base's order


def test_sides_in_the_base_order_skip_the_join_and_decide_the_same(small_paths: None) -> None:
    base = base_frame()
    nav, crm = sides(base)
    positions = align.base_positions([nav, crm.reverse()], base, "pair_id", by_hash=True)
    assert positions[0].to_list() == list(range(PAIRS))
    assert positions[1].to_list() == list(range(PAIRS))[::-1]
    expected = three_way_diff(nav.reverse(), crm.reverse(), base, FIELDS)
    assert_same(three_way_diff(nav, crm, base, FIELDS), expected)
    assert_same(large(nav, crm, base), expected)


def test_a_side_with_the_base_keys_but_a_null_key_is_joined() -> None:
    base = pl.DataFrame({"pair_id": ["a", None, "c"]})
    side = pl.DataFrame({"pair_id": ["a", None, "c"]})
    assert align.base_positions([side], base, "pair_id", by_hash=True)[0].to_list() == [
        0, None, 2]


def test_a_base_with_a_null_key_orders_it_first(small_paths: None) -> None:
    base = pl.concat([base_frame(), base_frame(1).with_columns(pl.lit(None, pl.Utf8)
                                                               .alias("pair_id"))])
    nav, crm = sides(base)
    expected = three_way_diff(nav, crm, base, FIELDS)
    assert expected.records.get_column("pair_id")[0] is None
    assert_same(large(nav, crm, base), expected)


def test_repeated_key_hashes_fall_back_to_the_keys(small_paths: None) -> None:
    """Distinct keys whose hashes repeat (a collision) are joined on the keys themselves."""
    base = base_frame()
    nav, crm = new_pairs(*sides(base))
    expected = large(nav, crm, base)

    def colliding(frames: dict[str, pl.DataFrame], key: str) -> dict[str, pl.Series]:
        return {label: pl.repeat(7, f.height, dtype=pl.UInt64, eager=True)
                for label, f in frames.items()}

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(three_way, "key_hashes", colliding)
        assert_same(large(nav, crm, base), expected)
        with pytest.raises(SyncError, match=r"nav: \['pair-000005'\]"):
            large(pl.concat([nav, nav.slice(5, 1)]), crm, base)


def test_duplicate_keys_of_large_frames_are_refused() -> None:
    base = base_frame()
    nav, crm = sides(base)
    with pytest.raises(SyncError, match=r"base: \['pair-000009'\]"):
        large(nav, crm, pl.concat([base, base.slice(9, 1)]))
    with pytest.raises(SyncError, match=r"crm: \['pair-000002'\]"):
        large(nav, pl.concat([crm.slice(2, 1), crm]), base)


@pytest.mark.parametrize(
    "keys",
    [
        pytest.param([f"{n:08d}" for n in range(3_000)], id="eight-bytes"),
        pytest.param([f"{n:05d}" for n in range(3_000)], id="shorter-than-eight"),
        pytest.param([f"ID-{n:09d}" for n in range(3_000)], id="nine-after-prefix"),
        pytest.param([f"ID-{n % 7}{n:07d}" for n in range(3_000)], id="eight-after-prefix"),
        pytest.param([f"k{n}" for n in range(3_000)], id="lengths-differ"),
    ],
)
def test_key_order_is_the_sort_of_the_keys(keys: list[str]) -> None:
    shuffled = pl.Series(keys).sample(fraction=1.0, shuffle=True, seed=5)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(output, "_FAST_SORT_ROWS", 0)
        ordered = shuffled.gather(output.key_order(shuffled))
    assert ordered.to_list() == sorted(keys)


RANDOM_FIELDS = (
    DiffField("name", "bidirectional", case_sensitive=False),
    DiffField("city", "to_crm"),
    DiffField("limit", "bidirectional", "number", decimals=2),
    DiffField("flag", "from_crm", "bool"),
    DiffField("owner", "bidirectional", "id"),
)
_POOLS: dict[str, list[str | None]] = {
    "name": ["Acme", "ACME", "acme", "Beta", "beta ltd", "", None],
    "city": ["Leeds", "leeds", "Oslo", "", None],
    "limit": ["1.5", "1.50", "2", "2.004", "x", "", None],
    "flag": ["true", "Yes", "0", "no", "maybe", "", None],
    "owner": ["{ABC-1}", "abc-1", "ABC-2", "", None],
}


def _random_key(rng: random.Random, n: int, style: int) -> str:
    if style == 0:
        return f"00000000-0000-4000-8000-{n:012d}"
    if style == 1:
        return f"k{n}"
    return f"{rng.choice(['a', 'b', 'é'])}{n:05d}"


def _random_frames(
    seed: int,
) -> tuple[pl.DataFrame | None, pl.DataFrame | None, pl.DataFrame | None]:
    """NAV, CRM and base frames of random pairs: edits, equal variants (case, empty for null,
    another dtype), one-sided and both-sided changes, missing and never-synced pairs, null keys,
    sides in the base's order or shuffled, sometimes no base at all."""
    rng = random.Random(seed)
    style, size = seed % 3, rng.choice([0, 1, 40, 300])
    keys: list[str | None] = [_random_key(rng, n, style) for n in range(size)]
    if rng.random() < 0.3 and size:
        keys[rng.randrange(size)] = None
    base = pl.DataFrame(
        {"pair_id": keys} | {f.name: [rng.choice(_POOLS[f.name]) for _ in keys]
                             for f in RANDOM_FIELDS},
        schema={"pair_id": pl.Utf8} | {f.name: pl.Utf8 for f in RANDOM_FIELDS},
    )

    def side(label: str) -> pl.DataFrame | None:
        if rng.random() < 0.1:
            return None
        rows = base.to_dicts()
        complete = rng.random() < 0.4
        if not complete:
            rows = [r for r in rows if rng.random() < 0.9]
            extra = ["new-both"] + ([] if None in keys else [None])  # one null key at most
            rows += [{"pair_id": f"new-{label}-{n}" if n else rng.choice(extra)}
                     | {f.name: rng.choice(_POOLS[f.name]) for f in RANDOM_FIELDS}
                     for n in range(rng.randrange(3))]
        changed = rng.random() * 0.5
        for row in rows:
            for f in RANDOM_FIELDS:
                if rng.random() < changed:
                    row[f.name] = rng.choice(_POOLS[f.name])
        frame = pl.DataFrame(rows, schema=base.schema, orient="row")
        if label == "nav" and rng.random() < 0.5:  # numbers and flags of another dtype
            frame = frame.with_columns(
                pl.col("limit").cast(pl.Float64, strict=False),
                pl.col("flag").replace_strict({"true": True, "no": False}, default=None,
                                              return_dtype=pl.Boolean),
            )
        if not complete or rng.random() < 0.5:
            frame = frame.sample(fraction=1.0, shuffle=True, seed=seed)
        return frame

    nav, crm = side("nav"), side("crm")
    return nav, crm, (None if rng.random() < 0.1 else base)


def _changed_rows_only(side: pl.DataFrame | None, base: pl.DataFrame | None
                       ) -> pl.DataFrame | None:
    """The rows of ``side`` a straightforward reading keeps: no base row with the key, or a
    canonical value (ignoring case where the field does) unlike the base row's."""
    if side is None or base is None:
        return side
    by_key = {r["pair_id"]: r for r in canonical_frame(base, RANDOM_FIELDS).to_dicts()
              if r["pair_id"] is not None}

    def seen(value: str | None, field: DiffField) -> str | None:
        return value.lower() if value is not None and not field.case_sensitive else value

    keep = [
        i for i, row in enumerate(canonical_frame(side, RANDOM_FIELDS).to_dicts())
        if row["pair_id"] not in by_key
        or any(seen(row[f.name], f) != seen(by_key[row["pair_id"]][f.name], f)
               for f in RANDOM_FIELDS)
    ]
    return side[keep]


@pytest.mark.parametrize("seed", range(24))
def test_random_frames_decide_as_their_changed_rows_alone(seed: int) -> None:
    """Complete side frames, on the large paths, give what the changed rows alone (found by a
    plain Python reading) give on the small paths; records are every pair once, by key."""
    nav, crm, base = _random_frames(seed)
    policy = ("none", "nav_wins", "crm_wins")[seed % 3]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(align, "_RAW_COMPARE_ROWS", 10**9)
        patch.setattr(output, "_FAST_SORT_ROWS", 10**9)
        expected = three_way_diff(
            _changed_rows_only(nav, base), _changed_rows_only(crm, base), base, RANDOM_FIELDS,
            conflict_policy=policy,  # type: ignore[arg-type]
        )
        assert_same(three_way_diff(nav, crm, base, RANDOM_FIELDS,
                                   conflict_policy=policy), expected)  # type: ignore[arg-type]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(align, "_RAW_COMPARE_ROWS", 0)
        patch.setattr(output, "_FAST_SORT_ROWS", 0)
        got = three_way_diff(nav, crm, base, RANDOM_FIELDS,
                             conflict_policy=policy)  # type: ignore[arg-type]
    assert_same(got, expected)
    in_play = [k for f in (_changed_rows_only(nav, base), _changed_rows_only(crm, base))
               if f is not None for k in f.get_column("pair_id")]
    base_keys = [] if base is None else base.get_column("pair_id").to_list()
    new_keys = {k for k in in_play if k is not None and k not in base_keys}
    listed = base_keys + sorted(new_keys) + [k for k in in_play if k is None]  # nulls never join
    assert got.records.get_column("pair_id").to_list() == sorted(
        listed, key=lambda k: (k is not None, k or ""))


def test_random_frames_cover_what_they_should() -> None:
    """The random frames hold what the test above is for (so it cannot pass vacuously)."""
    results = [three_way_diff(*_random_frames(seed), RANDOM_FIELDS) for seed in range(24)]
    actions = {a for r in results for a in r.records.get_column("action").cast(pl.Utf8)}
    assert {"conflict", "update_crm", "update_nav", "update_both", "unchanged"} <= actions
    assert any(r.records.get_column("never_synced").any() for r in results)
    assert any(r.records.get_column("pair_id").null_count() for r in results)
