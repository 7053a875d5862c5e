"""What a retry says about each record, compared with the record statuses before and after."""

from __future__ import annotations

import polars as pl

from nav_crm_ops.engine.report import SyncReport
from nav_crm_ops.engine.troubleshoot import Outcome, RetryResult, retry_outcomes


def _status(rows: list[tuple[str, str, str, str]]) -> pl.DataFrame:
    """(source_id, state, message, updated_at) rows of one mapping and direction."""
    return pl.DataFrame(
        [("CUSTOMER", "to_crm", s, f"10000 {s}", state, message, at)
         for s, state, message, at in rows], orient="row",
        schema=["mapping", "direction", "source_id", "record", "state", "message",
                "updated_at"])


def test_each_record_gets_its_own_outcome() -> None:
    before = _status([("a", "failed", "old", "t1"), ("b", "failed", "old", "t1"),
                      ("c", "failed", "old", "t1"), ("d", "skipped", "old", "t1"),
                      ("e", "failed", "old", "t1")])
    after = _status([("b", "failed", "new reason", "t2"), ("c", "failed", "old", "t1"),
                     ("d", "skipped", "old", "t1"), ("e", "skipped", "same again", "t2")])
    outcomes = retry_outcomes(before, after, retried_skipped=False)
    assert outcomes.select("source_id", "outcome", "message").rows() == [
        ("a", Outcome.DONE.value, ""),
        ("b", Outcome.FAILED_AGAIN.value, "new reason"),
        ("c", Outcome.NOT_ATTEMPTED.value,
         "the retry did not reach this record (it is no longer read on its side, or its "
         "partner was not selected); the last failure: old"),
        ("d", Outcome.STILL_SKIPPED.value, "old"),
        ("e", Outcome.NOW_SKIPPED.value, "same again")]
    result = RetryResult(SyncReport(), outcomes)
    assert result.summary() == ("1 done, 1 failed again, 1 failed again, now skipped, "
                                "1 skipped: not retried (unskip first), 1 not attempted")


def test_unskipped_records_count_as_retried() -> None:
    before = _status([("d", "failed", "old", "t1")])
    outcomes = retry_outcomes(before, _status([]), retried_skipped=True)
    assert outcomes["outcome"].to_list() == [Outcome.DONE.value]
