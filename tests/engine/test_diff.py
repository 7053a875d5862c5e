"""Three-way diff: per-field rules, conflicts, directions, never-synced pairs, canonical values."""

from __future__ import annotations

import datetime as dt
import time

import polars as pl
import pytest

from nav_crm_ops.engine.diff import (
    DiffField,
    DiffResult,
    align,
    apply_changes_to_frames,
    canonical_frame,
    three_way_diff,
)
from nav_crm_ops.exceptions import SyncError

NAME = DiffField("name", "bidirectional")
PHONE = DiffField("phone", "bidirectional")
LIMIT = DiffField("limit", "to_crm", "number", decimals=2)
OWNER = DiffField("owner", "from_crm", "id")
FIELDS = [NAME, PHONE, LIMIT, OWNER]


def frame(rows: list[dict[str, object]]) -> pl.DataFrame:
    columns = ["pair_id", "name", "phone", "limit", "owner"]
    return pl.DataFrame(
        {c: [r.get(c) for r in rows] for c in columns},
        schema={
            "pair_id": pl.Utf8,
            "name": pl.Utf8,
            "phone": pl.Utf8,
            "limit": pl.Float64,
            "owner": pl.Utf8,
        },
    )


BASE_ROW = {"pair_id": "p1", "name": "Adatum", "phone": "111", "limit": 100.0, "owner": "aa"}


def row(**changes: object) -> dict[str, object]:
    return BASE_ROW | changes


def record(result: DiffResult, pair_id: str = "p1") -> dict[str, object]:
    return result.records.filter(pl.col("pair_id") == pair_id).row(0, named=True)


def changes(result: DiffResult, pair_id: str = "p1") -> dict[str, dict[str, object]]:
    rows = result.field_changes.filter(pl.col("pair_id") == pair_id).iter_rows(named=True)
    return {r["field"]: r for r in rows}


def new_base(result: DiffResult, pair_id: str = "p1") -> dict[str, object]:
    return result.new_base.filter(pl.col("pair_id") == pair_id).row(0, named=True)


def test_only_nav_changed_writes_nav_value_to_crm() -> None:
    result = three_way_diff(frame([row(name="Adatum Corp")]), None, frame([BASE_ROW]), FIELDS)
    assert record(result)["action"] == "update_crm"
    assert record(result)["n_changes_to_crm"] == 1
    change = changes(result)["name"]
    assert (change["changed_side"], change["target"], change["new_value"]) == (
        "nav",
        "crm",
        "Adatum Corp",
    )
    assert change["resolution"] == "none" and change["conflict"] is False
    assert new_base(result)["name"] == "Adatum Corp"


def test_only_crm_changed_writes_crm_value_to_nav() -> None:
    result = three_way_diff(None, frame([row(phone="222")]), frame([BASE_ROW]), FIELDS)
    assert record(result)["action"] == "update_nav"
    assert changes(result)["phone"]["target"] == "nav"
    assert new_base(result)["phone"] == "222"


def test_different_fields_on_each_side_merge_without_conflict() -> None:
    result = three_way_diff(
        frame([row(name="Adatum Corp")]), frame([row(phone="222")]), frame([BASE_ROW]), FIELDS
    )
    rec = record(result)
    assert (rec["action"], rec["n_changes_to_crm"], rec["n_changes_to_nav"]) == (
        "update_both",
        1,
        1,
    )
    assert rec["n_conflicts"] == 0 and rec["conflict_message"] is None
    assert not result.field_changes.get_column("conflict").any()
    assert (new_base(result)["name"], new_base(result)["phone"]) == ("Adatum Corp", "222")


def test_both_changed_to_same_value_only_updates_base() -> None:
    result = three_way_diff(
        frame([row(name="Adatum Corp")]),
        frame([row(name="Adatum Corp")]),
        frame([BASE_ROW]),
        FIELDS,
    )
    assert record(result)["action"] == "unchanged"
    change = changes(result)["name"]
    assert (change["changed_side"], change["target"], change["resolution"]) == (
        "both",
        "none",
        "same_value",
    )
    assert new_base(result)["name"] == "Adatum Corp"


def test_conflict_under_policy_none_holds_the_whole_record() -> None:
    nav = frame([row(name="Adatum NAV", limit=250.0)])
    crm = frame([row(name="Adatum CRM", phone="222")])
    result = three_way_diff(nav, crm, frame([BASE_ROW]), FIELDS)
    rec = record(result)
    assert rec["action"] == "conflict"
    assert (rec["n_changes_to_crm"], rec["n_changes_to_nav"], rec["n_conflicts"]) == (0, 0, 1)
    message = str(rec["conflict_message"])
    assert "name" in message and "'Adatum NAV'" in message and "'Adatum CRM'" in message
    assert "update_conflict" in message and "Keep BC value" in message
    found = changes(result)
    assert set(found) == {"name", "phone", "limit"}
    assert all(c["target"] == "none" and c["resolution"] == "held" for c in found.values())
    assert [f for f, c in found.items() if c["conflict"]] == ["name"]
    assert new_base(result) == canonical_frame(frame([BASE_ROW]), FIELDS).row(0, named=True)


@pytest.mark.parametrize(
    ("policy", "target", "winner", "action"),
    [
        ("nav_wins", "crm", "Adatum NAV", "update_both"),
        ("crm_wins", "nav", "Adatum CRM", "update_nav"),
    ],
)
def test_conflict_policies_resolve_to_the_winner(
    policy: str, target: str, winner: str, action: str
) -> None:
    nav = frame([row(name="Adatum NAV")])
    crm = frame([row(name="Adatum CRM", phone="222")])
    result = three_way_diff(nav, crm, frame([BASE_ROW]), FIELDS, conflict_policy=policy)  # type: ignore[arg-type]
    rec = record(result)
    assert rec["action"] == action and rec["n_conflicts"] == 1
    assert f"resolved by {policy}" in str(rec["conflict_message"])
    change = changes(result)["name"]
    assert (change["target"], change["new_value"], change["conflict"], change["resolution"]) == (
        target,
        winner,
        True,
        policy,
    )
    assert changes(result)["phone"]["target"] == "nav"
    assert new_base(result)["name"] == winner


def test_writes_never_go_against_the_field_direction() -> None:
    nav = frame([row(owner="bb")])
    crm = frame([row(limit=999.0)])
    result = three_way_diff(nav, crm, frame([BASE_ROW]), FIELDS)
    assert record(result)["action"] == "unchanged"
    found = changes(result)
    assert found["owner"]["target"] == "none" and found["limit"]["target"] == "none"
    assert found["owner"]["resolution"] == "blocked_by_direction"
    assert found["limit"]["resolution"] == "blocked_by_direction"
    assert new_base(result)["owner"] == "aa" and new_base(result)["limit"] == "100.0"


def test_one_way_field_changed_on_both_sides_goes_to_its_source_without_conflict() -> None:
    nav = frame([row(limit=300.0, owner="nav-owner")])
    crm = frame([row(limit=400.0, owner="crm-owner")])
    result = three_way_diff(nav, crm, frame([BASE_ROW]), FIELDS)
    found = changes(result)
    assert (found["limit"]["target"], found["limit"]["new_value"]) == ("crm", "300.0")
    assert (found["owner"]["target"], found["owner"]["new_value"]) == ("nav", "crm-owner")
    assert not any(c["conflict"] for c in found.values())
    assert record(result)["action"] == "update_both"


def test_never_synced_pair_fills_empty_sides_and_nav_wins_bidirectional_differences() -> None:
    nav = frame(
        [{"pair_id": "new", "name": "NAV name", "phone": None, "limit": 5.0, "owner": "n1"}]
    )
    crm = frame(
        [{"pair_id": "new", "name": "CRM name", "phone": "999", "limit": None, "owner": "c1"}]
    )
    result = three_way_diff(nav, crm, None, FIELDS)
    rec = record(result, "new")
    assert rec["never_synced"] is True and rec["action"] == "update_both"
    assert rec["n_conflicts"] == 0
    found = changes(result, "new")
    assert (found["name"]["target"], found["name"]["resolution"]) == ("crm", "nav_wins")
    assert found["name"]["conflict"] is False
    assert (found["phone"]["target"], found["phone"]["new_value"]) == ("nav", "999")
    assert (found["limit"]["target"], found["limit"]["new_value"]) == ("crm", "5.0")
    assert (found["owner"]["target"], found["owner"]["new_value"]) == ("nav", "c1")


@pytest.mark.parametrize(
    ("policy", "mapping_direction", "expected_target"),
    [
        ("none", "from_crm", "nav"),
        ("none", "to_crm", "crm"),
        ("crm_wins", "bidirectional", "nav"),
        ("nav_wins", "from_crm", "crm"),
    ],
)
def test_never_synced_winner_follows_policy_then_mapping_direction(
    policy: str, mapping_direction: str, expected_target: str
) -> None:
    nav = frame([row(pair_id="new", name="NAV name")])
    crm = frame([row(pair_id="new", name="CRM name")])
    result = three_way_diff(
        nav,
        crm,
        None,
        FIELDS,
        conflict_policy=policy,  # type: ignore[arg-type]
        mapping_direction=mapping_direction,  # type: ignore[arg-type]
    )
    assert changes(result, "new")["name"]["target"] == expected_target
    assert record(result, "new")["action"] != "conflict"


def test_absent_side_counts_as_unchanged_and_base_only_pairs_are_unchanged() -> None:
    base = frame([BASE_ROW, row(pair_id="p2"), row(pair_id="p3")])
    result = three_way_diff(frame([row(pair_id="p2", name="Changed")]), None, base, FIELDS)
    assert result.records.get_column("pair_id").to_list() == ["p1", "p2", "p3"]
    assert result.records.get_column("action").to_list() == ["unchanged", "update_crm", "unchanged"]
    assert result.new_base.get_column("pair_id").to_list() == ["p2"]
    assert result.counts() == {
        "update_crm": 1,
        "update_nav": 0,
        "update_both": 0,
        "unchanged": 2,
        "conflict": 0,
    }


def test_full_frames_give_the_same_result_as_changed_rows_only() -> None:
    base = frame([BASE_ROW, row(pair_id="p2"), row(pair_id="p3"), row(pair_id="p4")])
    nav_changed = [row(pair_id="p2", name="N2"), row(pair_id="p4", name="N4")]
    crm_changed = [row(pair_id="p3", phone="333"), row(pair_id="p4", name="C4")]
    nav_full = frame([BASE_ROW, nav_changed[0], row(pair_id="p3"), nav_changed[1]])
    crm_full = frame([BASE_ROW, row(pair_id="p2"), *crm_changed])
    small = three_way_diff(frame(nav_changed), frame(crm_changed), base, FIELDS)
    full = three_way_diff(nav_full, crm_full, base, FIELDS)
    assert full.records.equals(small.records)
    assert full.field_changes.equals(small.field_changes)
    assert full.new_base.equals(small.new_base)
    assert small.records.get_column("action").to_list() == [
        "unchanged",
        "update_crm",
        "update_nav",
        "conflict",
    ]


def test_full_frames_with_other_dtypes_than_base_are_compared_canonically() -> None:
    base = frame([BASE_ROW, row(pair_id="p2")])
    nav = frame([BASE_ROW, row(pair_id="p2", limit=7.0)]).with_columns(
        pl.col("limit").cast(pl.Utf8)
    )
    result = three_way_diff(nav, None, base, FIELDS)
    assert result.records.get_column("action").to_list() == ["unchanged", "update_crm"]
    assert result.field_changes.select("pair_id", "field", "new_value").rows() == [
        ("p2", "limit", "7.0")
    ]


def test_extra_columns_are_ignored() -> None:
    nav = frame([row(name="Adatum Corp")]).with_columns(pl.lit('W/"7"').alias("etag"))
    result = three_way_diff(nav, None, frame([BASE_ROW]), FIELDS)
    assert record(result)["action"] == "update_crm"
    assert "etag" not in result.new_base.columns


def test_lazy_frames_are_accepted() -> None:
    result = three_way_diff(
        frame([row(name="Lazy")]).lazy(),
        frame([BASE_ROW]).lazy(),
        frame([BASE_ROW]).lazy(),
        FIELDS,
    )
    assert record(result)["action"] == "update_crm"


def test_empty_and_null_are_equal_and_case_insensitive_text_ignores_case() -> None:
    fields = [
        DiffField("name", "bidirectional", case_sensitive=False),
        DiffField("phone", "bidirectional"),
    ]
    base = pl.DataFrame(
        {"pair_id": ["p1"], "name": ["adatum"], "phone": [None]},
        schema={"pair_id": pl.Utf8, "name": pl.Utf8, "phone": pl.Utf8},
    )
    nav = pl.DataFrame({"pair_id": ["p1"], "name": ["ADATUM"], "phone": [""]})
    result = three_way_diff(nav, None, base, fields)
    assert record(result)["action"] == "unchanged"
    assert result.field_changes.height == 0


def test_canonical_forms_per_kind() -> None:
    fields = [
        DiffField("amount", "bidirectional", "number", decimals=2),
        DiffField("flag", "bidirectional", "bool"),
        DiffField("moment", "bidirectional", "datetime"),
        DiffField("ref", "bidirectional", "id"),
    ]
    typed = pl.DataFrame(
        {
            "pair_id": ["p1", "p2"],
            "amount": [1.004, -0.0],
            "flag": [True, False],
            "moment": [
                dt.datetime(2024, 5, 1, 10, 0, tzinfo=dt.UTC),
                dt.datetime(2024, 5, 1, 12, 30, 0, 500000, tzinfo=dt.UTC),
            ],
            "ref": ["{ABCDEF00-0000-0000-0000-000000000001}", None],
        }
    )
    texts = pl.DataFrame(
        {
            "pair_id": ["p1", "p2"],
            "amount": [" 1.00 ", "0"],
            "flag": ["Yes", "0"],
            "moment": ["2024-05-01T12:00:00+02:00", "2024-05-01 12:30:00.5"],
            "ref": ["abcdef00-0000-0000-0000-000000000001", ""],
        }
    )
    assert canonical_frame(typed, fields).equals(canonical_frame(texts, fields))
    assert canonical_frame(typed, fields).row(0) == (
        "p1",
        "1.0",
        "true",
        "2024-05-01T10:00:00Z",
        "abcdef00-0000-0000-0000-000000000001",
    )
    assert three_way_diff(texts, None, typed, fields).field_changes.height == 0


def test_values_that_do_not_parse_for_their_kind_are_kept_as_text() -> None:
    fields = [
        DiffField("amount", "bidirectional", "number"),
        DiffField("moment", "bidirectional", "datetime"),
    ]
    odd = pl.DataFrame({"pair_id": ["p1"], "amount": ["n/a"], "moment": ["soon"]})
    assert canonical_frame(odd, fields).row(0) == ("p1", "n/a", "soon")
    base = pl.DataFrame(
        {"pair_id": ["p1"], "amount": [None], "moment": [None]},
        schema={"pair_id": pl.Utf8, "amount": pl.Float64, "moment": pl.Utf8},
    )
    assert three_way_diff(odd, None, base, fields).field_changes.height == 2


def test_apply_changes_to_frames_applies_every_write_to_its_target() -> None:
    base = frame([BASE_ROW])
    nav = frame([row(name="Adatum Corp")])
    crm = frame([row(phone="222")])
    result = three_way_diff(nav, crm, base, FIELDS)
    nav_after, crm_after = apply_changes_to_frames(nav, crm, result)
    assert nav_after.row(0, named=True)["phone"] == "222"
    assert crm_after.row(0, named=True)["name"] == "Adatum Corp"
    assert nav_after.equals(crm_after)
    again = three_way_diff(nav_after, crm_after, result.new_base, FIELDS)
    assert again.records.get_column("action").to_list() == ["unchanged"]
    assert again.field_changes.height == 0


def test_missing_column_is_reported_with_its_frame() -> None:
    with pytest.raises(SyncError, match=r"crm frame lacks column\(s\) \['owner'\]"):
        three_way_diff(None, frame([BASE_ROW]).drop("owner"), frame([BASE_ROW]), FIELDS)


def test_duplicate_pairs_are_refused_with_examples() -> None:
    with pytest.raises(SyncError, match=r"duplicated pair_id values in nav: \['p1'\]"):
        three_way_diff(frame([BASE_ROW, row(name="x")]), None, frame([BASE_ROW]), FIELDS)


def test_invalid_policy_direction_and_field_names_are_refused() -> None:
    with pytest.raises(SyncError, match="conflict_policy"):
        three_way_diff(None, None, None, FIELDS, conflict_policy="newest")  # type: ignore[arg-type]
    with pytest.raises(SyncError, match="direction"):
        DiffField("name", "both")  # type: ignore[arg-type]
    with pytest.raises(SyncError, match="kind"):
        DiffField("name", "to_crm", "money")  # type: ignore[arg-type]
    with pytest.raises(SyncError, match="unique"):
        three_way_diff(None, None, None, [NAME, NAME])


def test_no_input_rows_give_empty_results_with_the_documented_columns() -> None:
    result = three_way_diff(None, None, None, FIELDS)
    assert result.records.height == 0 and result.field_changes.height == 0
    assert result.field_changes.columns == [
        "pair_id",
        "field",
        "base_value",
        "nav_value",
        "crm_value",
        "changed_side",
        "target",
        "new_value",
        "conflict",
        "resolution",
    ]
    assert result.records.columns == [
        "pair_id",
        "action",
        "n_changes_to_crm",
        "n_changes_to_nav",
        "n_conflicts",
        "never_synced",
        "conflict_message",
    ]
    assert result.new_base.columns == ["pair_id", "name", "phone", "limit", "owner"]


def million_pair_frames(
    pairs: int,
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame, list[DiffField]]:
    """Base for ``pairs`` pairs x 12 fields; 1% changed per side, 0.1% changed on both."""
    fields = [DiffField(f"t{i}", "bidirectional") for i in range(7)] + [
        DiffField("amount", "bidirectional", "number", decimals=2),
        DiffField("limit", "to_crm", "number"),
        DiffField("flag", "bidirectional", "bool"),
        DiffField("moment", "from_crm", "datetime"),
        DiffField("ref", "to_crm", "id"),
    ]
    index = pl.int_range(pairs, dtype=pl.Int64)
    base = pl.select(
        pl.format("p{}", index).alias("pair_id"),
        *[pl.format("value {} {}", pl.lit(i), index).alias(f"t{i}") for i in range(7)],
        (index * 0.37).alias("amount"),
        (index % 5000).cast(pl.Float64).alias("limit"),
        (index % 2 == 0).alias("flag"),
        (pl.lit(dt.datetime(2024, 1, 1, tzinfo=dt.UTC)) + pl.duration(seconds=index)).alias(
            "moment"
        ),
        pl.format("{}-0000", index).alias("ref"),
    )
    step = 100
    nav = base.gather_every(step).with_columns(pl.col("t0") + " nav", pl.col("limit") + 1)
    crm = base.gather_every(step, offset=step // 2).with_columns(pl.col("t3") + " crm")
    both = base.gather_every(step * 10).with_columns(pl.col("t0") + " crm")
    crm = pl.concat([crm, both])
    return nav, crm, base, fields


def test_million_pairs_with_one_percent_changed_meet_the_time_target() -> None:
    nav, crm, base, fields = million_pair_frames(1_000_000)
    started = time.perf_counter()
    result = three_way_diff(nav, crm, base, fields)
    elapsed = time.perf_counter() - started
    counts = result.counts()
    assert counts["conflict"] == 1000
    assert counts["update_crm"] == nav.height - 1000
    assert counts["update_nav"] == crm.height - 1000
    assert counts["unchanged"] == 1_000_000 - nav.height - crm.height + 1000
    assert elapsed <= 3.0, f"diff of 1M pairs took {elapsed:.2f}s (target 3 s)"


def test_never_synced_one_way_field_takes_the_source_value_even_when_empty() -> None:
    fields = [DiffField("phone", "from_crm"), DiffField("owner", "to_crm")]
    nav = pl.DataFrame({"pair_id": ["p"], "phone": ["+44 1"], "owner": [None]},
                       schema={"pair_id": pl.Utf8, "phone": pl.Utf8, "owner": pl.Utf8})
    crm = pl.DataFrame({"pair_id": ["p"], "phone": [None], "owner": ["JR"]},
                       schema={"pair_id": pl.Utf8, "phone": pl.Utf8, "owner": pl.Utf8})
    result = three_way_diff(nav, crm, None, fields, mapping_direction="bidirectional")
    rows = {r["field"]: r for r in result.field_changes.iter_rows(named=True)}
    assert (rows["phone"]["target"], rows["phone"]["new_value"]) == ("nav", None)
    assert (rows["owner"]["target"], rows["owner"]["new_value"]) == ("crm", None)
    assert result.records["action"].cast(pl.Utf8).item() == "update_both"
    base = pl.DataFrame({"pair_id": ["p"], "phone": [None], "owner": ["JR"]},
                        schema={"pair_id": pl.Utf8, "phone": pl.Utf8, "owner": pl.Utf8})
    synced = three_way_diff(nav, crm, base, fields, mapping_direction="bidirectional")
    changed = {r["field"]: r for r in synced.field_changes.iter_rows(named=True)}
    assert changed["phone"]["resolution"] == "blocked_by_direction"
    assert (changed["owner"]["target"], changed["owner"]["new_value"]) == ("crm", None)



def test_complete_frames_of_many_pairs_give_the_same_result_as_changed_rows_only() -> None:
    """Above the raw-compare size complete sides are compared raw, column by column, against
    the base gathered by key (the base here in two chunks, as parquet reads return it)."""
    pairs = 60_000
    fields = [
        DiffField("name", "bidirectional", case_sensitive=False),
        DiffField("phone", "bidirectional"),
        DiffField("limit", "to_crm", "number", decimals=2),
    ]
    position = pl.int_range(pl.len())
    base = pl.select(pl.int_range(pairs).alias("n")).select(
        pl.format("{}-pair", pl.col("n").cast(pl.Utf8).str.zfill(6)).alias("pair_id"),
        pl.format("Name {}", pl.col("n")).alias("name"),
        pl.when(pl.col("n") % 3 == 0).then(None).otherwise(pl.col("n").cast(pl.Utf8))
        .alias("phone"),
        ((pl.col("n") % 50).cast(pl.Utf8) + ".0").alias("limit"),
    )
    nav = base.with_columns(
        pl.when(position % 100 == 1).then(pl.col("name").str.to_uppercase())  # case only
        .when(position % 100 == 2).then(pl.col("name") + " Ltd")
        .otherwise(pl.col("name")).alias("name"),
        pl.col("phone").fill_null(""),  # empty for null: equal
        pl.when(position % 100 == 3).then(pl.col("limit").cast(pl.Float64) + 1)
        .otherwise(pl.col("limit").cast(pl.Float64)).alias("limit"),  # another dtype
    )
    crm = base.with_columns(
        pl.when(position % 100 == 2).then(pl.lit("crm phone"))
        .when(position % 100 == 4).then(pl.lit("other phone"))
        .otherwise(pl.col("phone")).alias("phone"),
    )
    new = pl.DataFrame({"pair_id": ["zz-new"], "name": ["New"], "phone": ["1"], "limit": ["5"]})
    nav = pl.concat([nav, new.with_columns(pl.col("limit").cast(pl.Float64))])
    crm = pl.concat([crm, new])
    two_chunks = pl.concat([base.slice(0, 20_000), base.slice(20_000)], rechunk=False)
    assert two_chunks.n_chunks() == 2 and nav.height >= align._RAW_COMPARE_ROWS

    full = three_way_diff(nav, crm, two_chunks, fields)

    def changed(frame: pl.DataFrame, residues: list[int]) -> pl.DataFrame:
        return frame.filter((position % 100).is_in(residues) | (pl.col("pair_id") == "zz-new"))

    small = three_way_diff(changed(nav, [2, 3]), changed(crm, [2, 4]), base, fields)
    assert full.records.equals(small.records)
    assert full.field_changes.equals(small.field_changes)
    assert full.new_base.equals(small.new_base)
    assert full.counts() == {
        "update_crm": 600,
        "update_nav": 600,
        "update_both": 600,
        "unchanged": pairs - 1800 + 1,
        "conflict": 0,
    }
    assert full.records.get_column("pair_id").to_list() == sorted(
        [*base.get_column("pair_id").to_list(), "zz-new"]
    )


@pytest.mark.parametrize(
    "keys",
    [
        pytest.param([f"00000000-0000-4000-8000-{n:012d}" for n in range(60_000)], id="prefix"),
        pytest.param([f"{'ab'[n % 2]}AAAAAAA{n:08d}" for n in range(60_000)], id="tied-8-bytes"),
        pytest.param(
            [f"{'ab'[n % 2]}AAAAAAABBBBBBBB{n:05d}" for n in range(60_000)], id="tied-16-bytes"
        ),
        pytest.param([f"k{n}" for n in range(60_000)], id="prefixes-of-each-other"),
        pytest.param([f"ü{n:06d}" for n in range(60_000)], id="not-ascii"),
    ],
)
def test_records_are_ordered_by_key_whatever_the_keys_look_like(keys: list[str]) -> None:
    base = pl.DataFrame({"pair_id": keys, "name": "x"}).sample(fraction=1.0, shuffle=True, seed=7)
    result = three_way_diff(None, None, base, [DiffField("name", "bidirectional")])
    assert result.records.get_column("pair_id").to_list() == sorted(keys)


def test_key_hash_join_finds_the_same_base_rows_as_a_string_join() -> None:
    base = pl.DataFrame({"pair_id": ["a", "b", None, "d", "e"]})
    side = pl.DataFrame({"pair_id": ["e", None, "x", "a", "d", "b"]})
    by_hash = align.base_positions([side], base, "pair_id", by_hash=True)
    by_string = align.base_positions([side], base, "pair_id", by_hash=False)
    assert by_hash[0].to_list() == by_string[0].to_list() == [4, None, None, 0, 3, 1]


def test_duplicate_pairs_in_the_base_or_crm_are_refused_too() -> None:
    with pytest.raises(SyncError, match=r"duplicated pair_id values in base: \['p1'\]"):
        three_way_diff(None, None, frame([BASE_ROW, BASE_ROW]), FIELDS)
    with pytest.raises(SyncError, match=r"crm: \['p1'\]"):
        three_way_diff(None, frame([BASE_ROW, BASE_ROW]), frame([BASE_ROW]), FIELDS)


def test_rows_of_a_chunked_frame_are_the_rows_a_gather_returns() -> None:
    """``align.rows_of`` filters frames in many chunks with a mask instead of gathering."""
    frame = pl.concat(
        [pl.DataFrame({"k": [f"k{n}" for n in range(start, start + 50)], "v": range(50)})
         for start in (0, 50, 100)],
        rechunk=False,
    )
    assert frame.n_chunks() == 3
    rows = pl.Series([0, 49, 50, 77, 149], dtype=pl.get_index_type())
    assert align.rows_of(frame, rows).equals(frame.rechunk()[rows])
    assert align.rows_of(frame, rows.clear()).height == 0
    assert align.rows_of(frame.rechunk(), rows).equals(frame.rechunk()[rows])


def test_key_hashes_computed_once_give_the_same_positions() -> None:
    base = pl.DataFrame({"pair_id": ["a", "b", None, "d", "e"]})
    side = pl.DataFrame({"pair_id": ["e", None, "x", "a", "d", "b"]})
    hashes = align.key_hashes({"side": side, "base": base}, "pair_id")
    assert align.key_hashes_unique({"side": side, "base": base}, "pair_id", hashes) == {
        "side": True, "base": True}
    given = align.base_positions([side], base, "pair_id", by_hash=True,
                                 hashes=[hashes["side"], hashes["base"]])
    assert given[0].to_list() == [4, None, None, 0, 3, 1]
