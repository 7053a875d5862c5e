"""The prepared driver statements of a sync's per-record store work (issue #19 item 1): settling
journaled ops, taking records out of the retry pass and looking couplings up by id lists run
through the driver (``store.base.DriverStatement``, ``store.base.InList``) and must touch
exactly the rows the SQLAlchemy statements did. On SQLite and PostgreSQL.

Why these cases: ``IN`` lists are padded to a few fixed sizes (a shorter slice repeats its last
id), single-key deletes run once per id (or only for the ids a small retry pass holds), and
all are scoped by company, mapping, direction and state; a mix of done and failed ops, ids
spanning several slices, repeated ids and other companies' rows are where a cheaper form could
drift.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from nav_crm_ops.store import RecordFailure, StateStore, outcomes
from nav_crm_ops.store.base import CHUNK, in_list_size

ALL_STATES = ("pending", "sent", "done", "failed")


@pytest.fixture
def store(state_url: str) -> Iterator[StateStore]:
    with StateStore.open(state_url) as opened:
        yield opened


def _ops(*keys: str) -> list[dict[str, object]]:
    return [{"op_id": f"plan:{k}:crm", "kind": "create", "target": "crm", "record_key": k,
             "payload": {"name": k}} for k in keys]


def _states(store: StateStore) -> dict[str, str]:
    frame = store.pending_ops_frame(states=ALL_STATES)
    return dict(zip(frame["op_id"].to_list(), frame["state"].to_list(), strict=True))


def test_in_list_sizes_are_powers_of_two_up_to_the_chunk() -> None:
    assert [in_list_size(n) for n in (1, 2, 3, 5, 64, 65, 257)] == [1, 2, 4, 8, 64, 128, 500]
    assert in_list_size(CHUNK) == CHUNK


def test_settle_with_done_and_failed_ops_touches_only_sent_ops_of_its_company(
        state_url: str) -> None:
    with StateStore.open(state_url, company="A") as a, StateStore.open(state_url, company="B") as b:
        keys = [f"k{i}" for i in range(CHUNK + 3)]
        a.journal.journal_sent(1, "CUSTOMER", _ops(*keys))
        b.journal.journal_sent(1, "CUSTOMER", _ops("k0", "k1"))  # same op ids, other company
        a.journal_ops(1, "CUSTOMER", _ops("pending"))  # journaled, never sent
        a.mark_ops(["plan:k2:crm"], "failed")  # settled earlier: not sent any more
        done = [f"plan:{k}:crm" for k in keys[::2]] + ["plan:pending:crm", "plan:absent:crm"]
        failed = [f"plan:{k}:crm" for k in keys[1::2]]
        a.journal.settle(done=done, failed=failed)
        failed_rows = a.pending_ops_frame(states=["failed"])
        failed_row = failed_rows.filter(failed_rows["op_id"] == "plan:k1:crm").to_dicts()[0]
        assert _states(a) == {"plan:pending:crm": "pending", "plan:k2:crm": "failed",
                              **{f"plan:{k}:crm": "failed" for k in keys[1::2]}}
        assert failed_row["result"] is None and failed_row["updated_at"]
        assert _states(b) == {"plan:k0:crm": "sent", "plan:k1:crm": "sent"}
        a.journal.settle(done=[], failed=[])  # nothing to settle: no statement, no error
        assert len(_states(a)) == 2 + len(keys[1::2])


@pytest.mark.parametrize("few", [outcomes._FEW, 10])
def test_successes_clear_the_retry_pass_of_their_mapping_and_direction_only(
        store: StateStore, monkeypatch: pytest.MonkeyPatch, few: int) -> None:
    """Retry passes up to ``_FEW`` records are read before the deletes, larger ones not:
    either way exactly the successes of that mapping and direction leave."""
    monkeypatch.setattr(outcomes, "_FEW", few)
    ids = [f"s{i}" for i in range(CHUNK + 5)]
    for mapping, direction in (("CUSTOMER", "to_crm"), ("CUSTOMER", "from_crm"),
                               ("VENDOR", "to_crm")):
        store.record_outcomes(mapping, direction, failed=[RecordFailure(i, "bad") for i in ids])
    cleared = [*ids[:CHUNK + 1], "never-failed"]
    store.record_outcomes("customer", "to_crm", succeeded=cleared)
    left = store.record_status_frame()
    by_scope = {(m, d): sorted(left.filter((left["mapping"] == m) & (left["direction"] == d))
                               ["source_id"].to_list())
                for m, d in (("CUSTOMER", "to_crm"), ("CUSTOMER", "from_crm"),
                             ("VENDOR", "to_crm"))}
    assert by_scope[("CUSTOMER", "to_crm")] == sorted(ids[CHUNK + 1:])
    assert by_scope[("CUSTOMER", "from_crm")] == sorted(ids)
    assert by_scope[("VENDOR", "to_crm")] == sorted(ids)


@pytest.mark.parametrize("count", [1, 3, 257, CHUNK, CHUNK + 1])
def test_lookups_by_id_lists_of_every_slice_size_find_each_coupling_once(
        store: StateStore, count: int) -> None:
    store.upsert_couplings("CUSTOMER", [{"nav_id": f"n{i}", "crm_id": f"c{i}",
                                         "nav_key": f"K{i % 7}"} for i in range(CHUNK + 9)])
    wanted = [f"n{i}" for i in range(count)]
    asked = [*reversed(wanted), wanted[0], "absent"]  # repeated and unknown ids
    found = store.couplings_frame("CUSTOMER", columns=["nav_id", "crm_id"], nav_ids=asked)
    assert sorted(found["nav_id"].to_list()) == sorted(wanted)
    assert found.columns == ["nav_id", "crm_id"]
    by_crm = store.couplings_frame("CUSTOMER", crm_ids=[f"c{i}" for i in range(count)])
    assert sorted(by_crm["nav_id"].to_list()) == sorted(wanted)
    by_key = store.couplings_frame("CUSTOMER", columns=["nav_id"], nav_keys=["K3"])
    assert by_key["nav_id"].to_list() == [f"n{i}" for i in range(CHUNK + 9) if i % 7 == 3]
