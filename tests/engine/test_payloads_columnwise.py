"""Column-wise checks of a write chunk agree with the per-record rule they shortcut.

``Payloads.create_options`` asks CRM for missing choice values only when a chunk needs two or
more; the chunk's frame tells column-wise (``_missing_options``) whether any are missing
before any record's values are looked at in Python (issue 19: client CPU per record).
"""

from __future__ import annotations

import polars as pl

from nav_crm_ops.engine.sync.payloads import _missing_options


def _per_record(frame: pl.DataFrame, known: dict[str, dict[str, int]]) -> int:
    """The rule as the record-by-record loop applies it."""
    wanted = set()
    for change in frame.to_dicts():
        name, code = change["field"].lower(), change["new_value"]
        if name in known and code and code not in known[name]:
            wanted.add((name, code))
    return len(wanted)


def test_missing_options_counts_distinct_missing_codes_like_the_loop() -> None:
    frame = pl.DataFrame({
        "record_id": ["r1", "r1", "r2", "r2", "r3", "r3", "r4"],
        "field": ["PaymentTermsCode", "name", "paymenttermscode", "shipmentmethod",
                  "paymenttermscode", "shipmentmethod", "paymenttermscode"],
        "new_value": ["30 DAYS", "Adatum", "99 DAYS", "PICKUP", "99 DAYS", None, ""],
    })
    known = {"paymenttermscode": {"30 DAYS": 1}, "shipmentmethod": {"PICKUP": 2}}
    assert _missing_options(frame, known) == _per_record(frame, known) == 1
    known["shipmentmethod"] = {}
    assert _missing_options(frame, known) == _per_record(frame, known) == 2
    assert _missing_options(frame, {}) == 0


def test_missing_options_takes_a_chunk_of_nulls_only() -> None:
    frame = pl.DataFrame({"record_id": ["r1"], "field": ["paymenttermscode"],
                          "new_value": [None]})
    assert _missing_options(frame, {"paymenttermscode": {}}) == 0
