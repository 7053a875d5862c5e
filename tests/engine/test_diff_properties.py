"""Properties of the three-way diff on random small NAV / CRM / base states (hypothesis)."""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nav_crm_ops.engine.diff import (
    DiffField,
    DiffResult,
    align,
    apply_changes_to_frames,
    canonical_frame,
    output,
    three_way_diff,
)

VALUES: dict[str, list[str | None]] = {
    "text": [None, "", "a", "A", "b", "c "],
    "number": [None, "", "1", "1.0", "1.004", "2", "-0"],
    "bool": [None, "", "true", "Yes", "0", "false"],
    "id": [None, "", "{AB-1}", "ab-1", "cd-2"],
    "datetime": [None, "2024-01-01T10:00:00Z", "2024-01-01T12:00:00+02:00", "2024-01-02"],
}
POLICIES = ["none", "nav_wins", "crm_wins"]
DIRECTIONS = ["to_crm", "from_crm", "bidirectional"]
SETTINGS = settings(
    max_examples=80,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@dataclass(frozen=True)
class Scenario:
    fields: tuple[DiffField, ...]
    base: pl.DataFrame
    nav: pl.DataFrame
    crm: pl.DataFrame
    nav_input: pl.DataFrame
    crm_input: pl.DataFrame
    policy: str
    mapping_direction: str


@st.composite
def diff_fields(draw: st.DrawFn) -> tuple[DiffField, ...]:
    count = draw(st.integers(1, 4))
    fields = []
    for index in range(count):
        kind = draw(st.sampled_from(list(VALUES)))
        fields.append(
            DiffField(
                f"f{index}",
                draw(st.sampled_from(DIRECTIONS)),
                kind,  # type: ignore[arg-type]
                case_sensitive=draw(st.booleans()),
                decimals=draw(st.sampled_from([None, 2])) if kind == "number" else None,
            )
        )
    return tuple(fields)


def values_for(field: DiffField) -> list[str | None]:
    return VALUES[field.kind]


def build(rows: list[dict[str, str | None]], fields: tuple[DiffField, ...]) -> pl.DataFrame:
    schema = {"pair_id": pl.Utf8} | {f.name: pl.Utf8 for f in fields}
    return pl.DataFrame({c: [r[c] for r in rows] for c in schema}, schema=schema)


@st.composite
def scenarios(draw: st.DrawFn, disjoint_changes: bool = False) -> Scenario:
    fields = draw(diff_fields())
    pairs = [f"p{i}" for i in range(draw(st.integers(0, 6)))]
    base_rows, nav_rows, crm_rows = [], [], []
    nav_changed_ids, crm_changed_ids = [], []
    for pair in pairs:
        synced = disjoint_changes or draw(st.booleans())
        base_row = {"pair_id": pair} | {
            f.name: draw(st.sampled_from(values_for(f))) for f in fields
        }
        nav_fields = {f.name for f in fields if draw(st.booleans())}
        if disjoint_changes:
            crm_fields = {
                f.name for f in fields if f.name not in nav_fields and draw(st.booleans())
            }
        else:
            crm_fields = {f.name for f in fields if draw(st.booleans())}

        def mutate(
            chosen: set[str], row: dict[str, str | None] = base_row
        ) -> dict[str, str | None]:
            return row | {
                f.name: draw(st.sampled_from(values_for(f))) for f in fields if f.name in chosen
            }

        nav_row, crm_row = mutate(nav_fields), mutate(crm_fields)
        nav_rows.append(nav_row)
        crm_rows.append(crm_row)
        if synced:
            base_rows.append(base_row)
        if not synced or nav_row != base_row:
            nav_changed_ids.append(pair)
        if not synced or crm_row != base_row:
            crm_changed_ids.append(pair)
    nav, crm = build(nav_rows, fields), build(crm_rows, fields)
    only_changed = draw(st.booleans())
    return Scenario(
        fields=fields,
        base=build(base_rows, fields),
        nav=nav,
        crm=crm,
        nav_input=nav.filter(pl.col("pair_id").is_in(nav_changed_ids)) if only_changed else nav,
        crm_input=crm.filter(pl.col("pair_id").is_in(crm_changed_ids)) if only_changed else crm,
        policy=draw(st.sampled_from(POLICIES)),
        mapping_direction=draw(st.sampled_from(DIRECTIONS)),
    )


def run(s: Scenario) -> DiffResult:
    return three_way_diff(
        s.nav_input,
        s.crm_input,
        s.base,
        s.fields,
        conflict_policy=s.policy,  # type: ignore[arg-type]
        mapping_direction=s.mapping_direction,  # type: ignore[arg-type]
    )


def merged_base(s: Scenario, result: DiffResult) -> pl.DataFrame:
    old = canonical_frame(s.base, s.fields)
    kept = old.join(result.new_base.select("pair_id"), on="pair_id", how="anti")
    return pl.concat([kept, result.new_base])


def held_pairs(result: DiffResult) -> set[str]:
    return set(result.records.filter(pl.col("action") == "conflict").get_column("pair_id"))


def compare_form(frame: pl.DataFrame, field: DiffField) -> pl.Series:
    values = frame.sort("pair_id").get_column(field.name)
    return values if field.case_sensitive or field.kind != "text" else values.str.to_lowercase()


@SETTINGS
@given(scenarios())
def test_applying_the_diff_then_rediffing_leaves_nothing_to_do(s: Scenario) -> None:
    result = run(s)
    nav_after, crm_after = apply_changes_to_frames(s.nav, s.crm, result)
    again = three_way_diff(
        nav_after,
        crm_after,
        merged_base(s, result),
        s.fields,
        conflict_policy=s.policy,  # type: ignore[arg-type]
        mapping_direction=s.mapping_direction,  # type: ignore[arg-type]
    )
    held = held_pairs(result)
    for pair_id, action in again.records.select("pair_id", "action").iter_rows():
        assert action == ("conflict" if pair_id in held else "unchanged"), (pair_id, action)
    assert again.field_changes.filter(pl.col("target") != "none").height == 0
    leftovers = again.field_changes.filter(
        ~pl.col("pair_id").is_in(sorted(held)) & (pl.col("resolution") != "blocked_by_direction")
    )
    assert leftovers.height == 0, leftovers


@SETTINGS
@given(scenarios())
def test_bidirectional_fields_converge_except_held_conflicts(s: Scenario) -> None:
    result = run(s)
    nav_after, crm_after = apply_changes_to_frames(s.nav, s.crm, result)
    held = sorted(held_pairs(result))
    nav_after = nav_after.filter(~pl.col("pair_id").is_in(held))
    crm_after = crm_after.filter(~pl.col("pair_id").is_in(held))
    for field in s.fields:
        if field.direction == "bidirectional":
            assert compare_form(nav_after, field).equals(compare_form(crm_after, field))


@SETTINGS
@given(scenarios())
def test_no_write_ever_targets_a_side_against_the_field_direction(s: Scenario) -> None:
    result = run(s)
    by_name = {f.name: f for f in s.fields}
    for field, target in result.field_changes.select("field", "target").iter_rows():
        if target == "crm":
            assert by_name[field].writes_to_crm
        if target == "nav":
            assert by_name[field].writes_to_nav
    counted = result.records.select(pl.col("n_changes_to_crm", "n_changes_to_nav").sum()).row(0)
    written = (
        result.field_changes.filter(pl.col("target") == "crm").height,
        result.field_changes.filter(pl.col("target") == "nav").height,
    )
    assert counted == written


@SETTINGS
@given(scenarios(), st.sampled_from(["nav_wins", "crm_wins"]))
def test_winner_policies_never_leave_a_conflict(s: Scenario, policy: str) -> None:
    result = three_way_diff(s.nav_input, s.crm_input, s.base, s.fields, conflict_policy=policy)  # type: ignore[arg-type]
    assert "conflict" not in result.records.get_column("action").to_list()
    assert "held" not in result.field_changes.get_column("resolution").to_list()
    conflicts = result.field_changes.filter(pl.col("conflict"))
    assert conflicts.get_column("resolution").cast(pl.Utf8).to_list() == [policy] * conflicts.height


@SETTINGS
@given(scenarios(disjoint_changes=True))
def test_different_fields_changed_on_each_side_never_conflict(s: Scenario) -> None:
    result = run(s)
    assert not result.field_changes.get_column("conflict").any()
    assert "conflict" not in result.records.get_column("action").to_list()
    assert result.records.get_column("n_conflicts").sum() == 0


@SETTINGS
@given(scenarios(), st.booleans())
def test_the_paths_for_large_frames_decide_exactly_as_the_paths_for_small_ones(
    s: Scenario, typed_limit: bool
) -> None:
    """Frames from a size threshold on are compared raw first and their records ordered by
    integer key prefixes; with the thresholds at zero, small frames take those paths too and
    must give the same result to the last cell (a NAV column of another dtype than the base's
    is compared canonically on both paths)."""
    nav_input = s.nav_input
    if typed_limit and any(f.kind == "number" for f in s.fields):
        number = next(f.name for f in s.fields if f.kind == "number")
        nav_input = nav_input.with_columns(pl.col(number).cast(pl.Float64, strict=False))
    scenario = Scenario(**{**s.__dict__, "nav_input": nav_input})
    small = run(scenario)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(align, "_RAW_COMPARE_ROWS", 0)
        patch.setattr(output, "_FAST_SORT_ROWS", 0)
        large = run(scenario)
    assert large.records.equals(small.records)
    assert large.field_changes.equals(small.field_changes)
    assert large.new_base.equals(small.new_base)
