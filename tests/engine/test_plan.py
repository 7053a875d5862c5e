"""Plan artifact: building from diffs, include/exclude, summary, Parquet round trip, tampering."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from nav_crm_ops.engine.diff import DiffField, three_way_diff
from nav_crm_ops.engine.plan import (
    METADATA_KEY,
    PLAN_ACTIONS,
    PLAN_FORMAT_VERSION,
    Plan,
    plan_rows_from_diff,
    read_plan_metadata,
)
from nav_crm_ops.exceptions import PlanError

FIELDS = [DiffField("name", "bidirectional"), DiffField("phone", "bidirectional")]


def customer_diff_plan() -> Plan:
    base = pl.DataFrame(
        {"pair_id": ["p1", "p2", "p3"], "name": ["A", "B", "C"], "phone": ["1", "2", "3"]}
    )
    nav = pl.DataFrame({"pair_id": ["p1", "p3"], "name": ["A nav", "C nav"], "phone": ["1", "3"]})
    crm = pl.DataFrame({"pair_id": ["p2", "p3"], "name": ["B", "C crm"], "phone": ["22", "3"]})
    diff = three_way_diff(nav, crm, base, FIELDS)
    identities = pl.DataFrame(
        {
            "pair_id": ["p1", "p2", "p3"],
            "nav_id": ["n1", "n2", "n3"],
            "crm_id": ["c1", "c2", "c3"],
            "nav_version": ['W/"11"', 'W/"12"', 'W/"13"'],
            "crm_version": ["2024-05-01T10:00:00Z", "2024-05-02T10:00:00Z", None],
        }
    )
    records, changes = plan_rows_from_diff("CUSTOMER", diff, identities)
    extra = pl.DataFrame(
        {
            "mapping": ["CUSTOMER", "CUSTOMER", "CURRENCY"],
            "record_id": ["nav:n9", "crm:c8", "nav:EUR"],
            "nav_id": ["n9", None, "EUR"],
            "crm_id": [None, "c8", None],
            "action": ["insert_crm", "skip", "fail"],
            "skip_reason": [None, "only_coupled", None],
            "message": [None, None, "currency lookup EUR is not coupled"],
        }
    )
    insert_fields = pl.DataFrame(
        {
            "mapping": ["CUSTOMER"],
            "record_id": ["nav:n9"],
            "field": ["name"],
            "nav_value": ["New Co"],
            "changed_side": ["nav"],
            "target": ["crm"],
            "new_value": ["New Co"],
            "resolution": ["none"],
        }
    )
    return Plan.create(
        pl.concat([records, extra], how="diagonal_relaxed"),
        pl.concat([changes, insert_fields], how="diagonal_relaxed"),
        workspace_fingerprint="ws-1234",
        watermarks={"CUSTOMER": {"nav": "2024-05-02T00:00:00Z", "crm": "2024-05-03T00:00:00Z"}},
        mappings=["CUSTOMER", "CURRENCY"],
        created_at=dt.datetime(2024, 5, 4, 8, 30, tzinfo=dt.UTC),
    )


def test_plan_from_diff_carries_actions_directions_versions_and_defaults() -> None:
    plan = customer_diff_plan()
    rows = {r["record_id"]: r for r in plan.records.iter_rows(named=True)}
    assert (rows["p1"]["action"], rows["p1"]["direction"]) == ("update_crm", "to_crm")
    assert (rows["p2"]["action"], rows["p2"]["direction"]) == ("update_nav", "from_crm")
    assert (rows["p3"]["action"], rows["p3"]["direction"]) == ("conflict", "none")
    assert "C nav" in rows["p3"]["message"] and "C crm" in rows["p3"]["message"]
    assert (rows["p1"]["nav_id"], rows["p1"]["crm_id"], rows["p1"]["nav_version"]) == (
        "n1",
        "c1",
        'W/"11"',
    )
    assert (rows["nav:n9"]["action"], rows["nav:n9"]["direction"]) == ("insert_crm", "to_crm")
    assert (rows["crm:c8"]["skip_reason"], rows["crm:c8"]["direction"]) == ("only_coupled", "none")
    assert all(rows[r]["included"] for r in rows)
    assert plan.metadata.created_at == "2024-05-04T08:30:00Z"
    assert plan.metadata.mappings == ("CUSTOMER", "CURRENCY")
    assert set(plan.field_changes.get_column("record_id")) == {"p1", "p2", "p3", "nav:n9"}
    assert plan.counts()["update_crm"] == 1 and plan.counts()["fail"] == 1
    assert set(plan.counts()) == set(PLAN_ACTIONS)


def test_summary_counts_by_mapping_action_direction_and_tracks_exclusions() -> None:
    plan = customer_diff_plan().exclude(["p1", "c8"])
    summary = plan.summary()
    assert summary.columns == ["mapping", "action", "direction", "records", "included"]
    as_rows = {(m, str(a), str(d)): (n, i) for m, a, d, n, i in summary.iter_rows()}
    assert as_rows[("CUSTOMER", "update_crm", "to_crm")] == (1, 0)
    assert as_rows[("CUSTOMER", "skip", "none")] == (1, 0)
    assert as_rows[("CUSTOMER", "conflict", "none")] == (1, 1)
    assert as_rows[("CURRENCY", "fail", "none")] == (1, 1)
    assert sum(n for n, _ in as_rows.values()) == plan.records.height
    text = str(plan)
    assert plan.metadata.plan_id in text and "update_crm" in text and "CURRENCY" in text
    assert "<table>" in plan._repr_html_() and "insert_crm" in plan._repr_html_()


def test_include_and_exclude_return_new_plans_and_match_any_id() -> None:
    plan = customer_diff_plan()
    excluded = plan.exclude(["n2", "nav:EUR"])
    assert plan.records.get_column("included").all()
    off = set(excluded.records.filter(~pl.col("included")).get_column("record_id"))
    assert off == {"p2", "nav:EUR"}
    back = excluded.include(["c2"])
    assert set(back.records.filter(~pl.col("included")).get_column("record_id")) == {"nav:EUR"}
    with pytest.raises(PlanError, match=r"\['nope'\] are not records"):
        plan.exclude(["p1", "nope"])
    with pytest.raises(PlanError, match="of mapping 'CURRENCY'"):
        plan.exclude(["p1"], mapping="CURRENCY")


def test_for_mapping_keeps_only_that_mapping() -> None:
    plan = customer_diff_plan().for_mapping("CUSTOMER")
    assert set(plan.records.get_column("mapping")) == {"CUSTOMER"}
    assert plan.records.height == 5 and plan.metadata.mappings == ("CUSTOMER",)
    assert set(plan.metadata.watermarks) == {"CUSTOMER"}
    with pytest.raises(PlanError, match="'SALESPEOPLE' is not in this plan"):
        plan.for_mapping("SALESPEOPLE")


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    plan = customer_diff_plan().exclude(["p2"])
    path = plan.save(tmp_path / "plan.parquet")
    assert path.is_file() and [p.name for p in tmp_path.iterdir()] == ["plan.parquet"]
    loaded = Plan.load(path)
    assert loaded.equals(plan)
    assert loaded.records.schema == plan.records.schema
    assert loaded.field_changes.schema == plan.field_changes.schema
    stored = json.loads(pq.read_schema(path).metadata[METADATA_KEY])
    assert stored["format_version"] == PLAN_FORMAT_VERSION
    assert stored["counts"]["update_crm"] == 1 and len(stored["content_sha256"]) == 64
    assert stored["watermarks"]["CUSTOMER"]["crm"] == "2024-05-03T00:00:00Z"


def test_a_signed_plan_carries_its_signature_and_loads_unverified(tmp_path: Path) -> None:
    from nav_crm_ops.engine.plan import signed_text
    from nav_crm_ops.secrets import Secret
    from nav_crm_ops.store.identity import WorkspaceIdentity

    identity = WorkspaceIdentity("state-1", Secret("k" * 64))
    other = WorkspaceIdentity("state-2", Secret("j" * 64))
    plan = customer_diff_plan()
    loaded = Plan.load(plan.save(tmp_path / "plan.parquet", sign=identity.sign))
    assert not loaded.metadata.verified and loaded.equals(plan)
    assert identity.verify(signed_text(loaded.metadata), loaded.metadata.signature)
    assert not other.verify(signed_text(loaded.metadata), loaded.metadata.signature)
    assert "k" * 8 not in repr(identity) and "k" * 8 not in repr(loaded.metadata)
    unsigned = Plan.load(plan.save(tmp_path / "unsigned.parquet"))
    assert unsigned.metadata.signature == ""
    assert not identity.verify(signed_text(unsigned.metadata), unsigned.metadata.signature)


def test_empty_plan_round_trips(tmp_path: Path) -> None:
    plan = Plan.create(
        pl.DataFrame(schema={"mapping": pl.Utf8, "record_id": pl.Utf8, "action": pl.Utf8}),
        workspace_fingerprint="ws",
        mappings=["CUSTOMER"],
    )
    assert Plan.load(plan.save(tmp_path / "empty.parquet")).equals(plan)


def rewrite(path: Path, table: pa.Table) -> None:
    pq.write_table(table, path)


def test_a_changed_value_is_refused(tmp_path: Path) -> None:
    path = customer_diff_plan().save(tmp_path / "plan.parquet")
    table = pq.read_table(path)
    content = pl.DataFrame(pl.from_arrow(table)).with_columns(
        pl.when(pl.col("new_value") == "A nav")
        .then(pl.lit("A evil"))
        .otherwise(pl.col("new_value"))
        .alias("new_value")
    )
    assert (content.get_column("new_value") == "A evil").any()
    rewrite(path, content.to_arrow().replace_schema_metadata(table.schema.metadata))
    with pytest.raises(PlanError, match="modified after it was saved: re-run preview"):
        Plan.load(path)


def test_a_flipped_included_flag_or_edited_metadata_is_refused(tmp_path: Path) -> None:
    path = customer_diff_plan().save(tmp_path / "plan.parquet")
    table = pq.read_table(path)
    included = table.column("included").to_pylist()
    included[0] = not included[0]
    flipped = table.set_column(
        table.schema.get_field_index("included"), "included", pa.array(included)
    )
    rewrite(path, flipped)
    with pytest.raises(PlanError, match="modified after it was saved"):
        Plan.load(path)

    stored = json.loads(table.schema.metadata[METADATA_KEY])
    stored["watermarks"]["CUSTOMER"]["nav"] = "2030-01-01T00:00:00Z"
    edited = table.replace_schema_metadata({METADATA_KEY: json.dumps(stored).encode()})
    rewrite(path, edited)
    with pytest.raises(PlanError, match="modified after it was saved"):
        Plan.load(path)


def test_other_format_version_is_refused(tmp_path: Path) -> None:
    path = customer_diff_plan().save(tmp_path / "plan.parquet")
    table = pq.read_table(path)
    stored = json.loads(table.schema.metadata[METADATA_KEY]) | {"format_version": 99}
    rewrite(path, table.replace_schema_metadata({METADATA_KEY: json.dumps(stored).encode()}))
    with pytest.raises(PlanError, match="format version 99"):
        Plan.load(path)


def test_missing_corrupt_and_foreign_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(PlanError, match="does not exist: run preview"):
        Plan.load(tmp_path / "absent.parquet")
    corrupt = tmp_path / "corrupt.parquet"
    corrupt.write_bytes(b"PAR1 this is not a parquet file")
    with pytest.raises(PlanError, match="not readable Parquet"):
        Plan.load(corrupt)
    truncated = tmp_path / "truncated.parquet"
    customer_diff_plan().save(truncated)
    truncated.write_bytes(truncated.read_bytes()[:-100])
    with pytest.raises(PlanError, match="not readable Parquet"):
        Plan.load(truncated)
    foreign = tmp_path / "foreign.parquet"
    pl.DataFrame({"a": [1]}).write_parquet(foreign)
    with pytest.raises(PlanError, match="not a nav-crm-ops plan"):
        Plan.load(foreign)


def test_invalid_plan_content_is_refused_with_the_reason() -> None:
    base = {"mapping": ["CUSTOMER"], "record_id": ["p1"]}
    with pytest.raises(PlanError, match=r"invalid value\(s\) \['upsert'\]"):
        Plan.create(pl.DataFrame(base | {"action": ["upsert"]}), workspace_fingerprint="ws")
    with pytest.raises(PlanError, match=r"lack required column\(s\) \['action'\]"):
        Plan.create(pl.DataFrame(base), workspace_fingerprint="ws")
    with pytest.raises(PlanError, match="repeat"):
        Plan.create(
            pl.DataFrame({"mapping": ["M", "M"], "record_id": ["x", "x"], "action": ["skip"] * 2}),
            workspace_fingerprint="ws",
        )
    with pytest.raises(PlanError, match="refer to records the plan does not hold"):
        Plan.create(
            pl.DataFrame(base | {"action": ["update_crm"]}),
            pl.DataFrame({"mapping": ["CUSTOMER"], "record_id": ["p2"], "field": ["name"]}),
            workspace_fingerprint="ws",
        )
    with pytest.raises(PlanError, match="unknown column"):
        Plan.create(
            pl.DataFrame(base | {"action": ["skip"], "password": ["x"]}),
            workspace_fingerprint="ws",
        )


def test_writes_list_included_values_per_target_side_with_expected_versions() -> None:
    plan = customer_diff_plan()
    to_crm = plan.writes("crm")
    assert to_crm.select("record_id", "field", "new_value", "expected_version").rows() == [
        ("p1", "name", "A nav", "2024-05-01T10:00:00Z"),
        ("nav:n9", "name", "New Co", None),
    ]
    to_nav = plan.writes("nav")
    assert to_nav.select(
        "record_id", "nav_id", "field", "new_value", "expected_version"
    ).rows() == [("p2", "n2", "phone", "22", 'W/"12"')]
    assert plan.exclude(["p2"]).writes("nav").height == 0
    with pytest.raises(PlanError, match="'crm' or 'nav'"):
        plan.writes("both")  # type: ignore[arg-type]


def test_base_updates_rebuild_the_diffs_new_base() -> None:
    base = pl.DataFrame(
        {"pair_id": ["p1", "p2", "p3"], "name": ["A", "B", "C"], "phone": ["1", "2", "3"]}
    )
    nav = pl.DataFrame({"pair_id": ["p1", "p3"], "name": ["A nav", "C x"], "phone": ["1", "3 x"]})
    crm = pl.DataFrame({"pair_id": ["p1", "p2"], "name": ["A nav", "B"], "phone": ["1", "22"]})
    diff = three_way_diff(nav, crm, base, FIELDS)
    records, changes = plan_rows_from_diff("CUSTOMER", diff, base.select("pair_id"))
    plan = Plan.create(records, changes, workspace_fingerprint="ws")
    updates = plan.base_updates()
    assert sorted(updates.select("record_id", "field").rows()) == [
        ("p1", "name"),
        ("p2", "phone"),
        ("p3", "name"),
        ("p3", "phone"),
    ]
    rebuilt = base.to_dicts()
    for record_id, field, value in updates.select("record_id", "field", "value").iter_rows():
        next(r for r in rebuilt if r["pair_id"] == record_id)[field] = value
    expected = {r["pair_id"]: r for r in diff.new_base.to_dicts()}
    assert {r["pair_id"]: r for r in rebuilt if r["pair_id"] in expected} == expected
    assert plan.exclude(["p3"]).base_updates().filter(pl.col("record_id") == "p3").height == 0


def test_read_plan_metadata_reads_the_footer_only(tmp_path: Path) -> None:
    plan = customer_diff_plan()
    path = plan.save(tmp_path / "plan.parquet")
    metadata = read_plan_metadata(path)
    assert metadata["plan_id"] == plan.metadata.plan_id
    assert metadata["mappings"] == ["CUSTOMER", "CURRENCY"]
    assert metadata["counts"] == plan.counts()
    with pytest.raises(PlanError, match="does not exist"):
        read_plan_metadata(tmp_path / "absent.parquet")
    foreign = tmp_path / "foreign.parquet"
    pl.DataFrame({"a": [1]}).write_parquet(foreign)
    with pytest.raises(PlanError, match="not a nav-crm-ops plan"):
        read_plan_metadata(foreign)
    garbage = tmp_path / "garbage.parquet"
    garbage.write_text("hello")
    with pytest.raises(PlanError, match="not readable Parquet"):
        read_plan_metadata(garbage)
