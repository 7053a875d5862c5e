"""The apply's chunking: each chunk carries exactly its records' field changes (issue #19).

Why it matters: the writer converts only one chunk's rows and values to Python at a time, so
a first sync of a million records never holds all of them as dicts; chunking must not lose,
duplicate or reorder a record's values, and must leave out changes written to the other side.
"""

from __future__ import annotations

import polars as pl

from nav_crm_ops.engine.plan.schema import FIELD_CHANGE_SCHEMA
from nav_crm_ops.engine.sync.run import WRITE_VALUE_COLUMNS, by_record, write_chunks
from nav_crm_ops.engine.vocabulary import Side


def _plan(records: int, fields: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    actions = ["insert_crm", "update_crm", "update_nav", "update_both", "unchanged"]
    frame = pl.DataFrame({"mapping": ["CUSTOMER"] * records,
                          "record_id": [f"r{i:04d}" for i in range(records)],
                          "action": [actions[i % len(actions)] for i in range(records)]})
    rows = []
    # changes listed field by field (not record by record), as the diff emits them
    for f in range(fields):
        for i in reversed(range(records)):
            target = "nav" if actions[i % len(actions)] == "update_nav" else "crm"
            rows.append({"mapping": "CUSTOMER", "record_id": f"r{i:04d}", "field": f"f{f}",
                         "base_value": None, "nav_value": f"n{i}-{f}", "crm_value": None,
                         "changed_side": "nav", "target": target, "new_value": f"v{i}-{f}",
                         "conflict": False, "resolution": "nav_wins"})
    changes = pl.DataFrame(rows, schema={k: v for k, v in FIELD_CHANGE_SCHEMA.items()
                                         if k in rows[0]})
    return frame, changes


def test_chunks_carry_their_own_values_in_order() -> None:
    records, changes = _plan(23, 3)
    writing = {"insert_crm", "update_crm", "update_both"}
    expected_ids = [r for r, a in records.select("record_id", "action").iter_rows()
                    if a in writing]
    expected = by_record(changes.filter(pl.col("target").cast(pl.Utf8) == "crm")
                         .select(WRITE_VALUE_COLUMNS))
    seen: list[str] = []
    starts = []
    for start, total, chunk in write_chunks(records, changes, Side.CRM, 4):
        starts.append(start)
        assert total == len(expected_ids) and chunk.target is Side.CRM
        ids = [r["record_id"] for r in chunk.rows]
        assert 0 < len(ids) <= 4
        # exactly this chunk's records, each with all its values in the diff's order
        assert set(chunk.values) == set(ids)
        for record_id in ids:
            rows = expected[record_id]
            assert chunk.values[record_id] == {r["field"]: r["new_value"] for r in rows}
            assert list(chunk.values[record_id]) == ["f0", "f1", "f2"]
            # what failures store: the full rows, converted only when asked for
            assert chunk.change_rows()[record_id] == rows
        seen += ids
    assert seen == expected_ids
    assert starts == list(range(0, len(expected_ids), 4))


def test_chunks_leave_out_the_other_side_and_records_without_values() -> None:
    records, changes = _plan(10, 2)
    nav = list(write_chunks(records, changes, Side.NAV, 100))
    assert len(nav) == 1
    _, total, chunk = nav[0]
    assert total == 4  # update_nav and update_both records
    for record in chunk.rows:
        values = chunk.values.get(record["record_id"], [])
        # update_both records' changes target CRM here, so only update_nav ones carry values
        assert bool(values) == (record["action"] == "update_nav")
    assert list(write_chunks(records.filter(pl.col("action") == "unchanged"), changes,
                             Side.CRM, 4)) == []


def test_a_create_keeps_no_base_and_writes_are_counted_per_side() -> None:
    """Why: a first sync of a million creates must not hold every record's base to the end.
    A create's base is returned (it is stored with the coupling) but not kept in the run; an
    update's is kept for the next direction; written pairs are counted per side."""
    from nav_crm_ops.engine.sync.run import ApplyRun, DirectionTally
    from tests.engine.test_run import _run

    run: ApplyRun = _run()
    created = run.new_base("n9", {"name": "Fabrikam"}, keep=False)
    assert created == {"name": "Fabrikam"} and "n9" not in run.bases
    updated = run.new_base("p1", {"name": "Adatum"})
    assert run.bases["p1"] is updated
    for nav_id in ("n9", "p1"):
        run.mark_written(nav_id, Side.CRM)
    run.mark_written("p1", Side.NAV)
    assert (run.touched(Side.CRM), run.touched(Side.NAV)) == (2, 1)
    assert isinstance(run.first, DirectionTally)
