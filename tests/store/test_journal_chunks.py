"""The journal's per-chunk statements (issue 19: client CPU of a first sync) keep its guarantees.

An apply journals a chunk's ops as ``sent`` in one statement before sending them and settles
them in one transaction after the replies (done: removed, failed: kept as ``failed``); the
coupling upsert runs one prepared statement through the driver. Both on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from nav_crm_ops.exceptions import StateConflictError, StateStoreError
from nav_crm_ops.store import StateStore

ALL_STATES = ("pending", "sent", "done", "failed")


@pytest.fixture
def store(state_url: str) -> Iterator[StateStore]:
    with StateStore.open(state_url) as opened:
        yield opened


def _ops(*keys: str, payload: dict[str, str] | None = None) -> list[dict[str, object]]:
    return [{"op_id": f"plan:{k}:crm", "kind": "create", "target": "crm", "record_key": k,
             "payload": payload or {"name": k}} for k in keys]


def _states(store: StateStore) -> dict[str, str]:
    frame = store.pending_ops_frame(states=ALL_STATES)
    return dict(zip(frame["op_id"].to_list(), frame["state"].to_list(), strict=True))


def test_ops_are_journaled_as_sent_before_the_send(store: StateStore) -> None:
    assert store.journal.journal_sent(7, "CUSTOMER", _ops("a", "b")) == 2
    sent = store.pending_ops_frame("CUSTOMER")  # what a crash leaves: unfinished ops
    assert sorted(sent["op_id"].to_list()) == ["plan:a:crm", "plan:b:crm"]
    assert set(sent["state"].to_list()) == {"sent"}
    assert sent["run_id"].to_list() == [7, 7]
    assert json.loads(sent.filter(sent["op_id"] == "plan:a:crm")["payload"].item()) == {"name": "a"}


def test_a_known_op_keeps_its_row_and_is_marked_sent_again(store: StateStore) -> None:
    store.journal_ops(1, "CUSTOMER", _ops("a"))  # journaled by an earlier, crashed apply
    store.mark_ops(["plan:a:crm"], "failed")
    store.journal.journal_sent(2, "CUSTOMER", _ops("a", "b", payload={"name": "new"}))
    frame = store.pending_ops_frame(states=ALL_STATES)
    assert frame.height == 2  # never a second row for one op id
    a = frame.filter(frame["op_id"] == "plan:a:crm").to_dicts()[0]
    assert (a["state"], a["run_id"], json.loads(a["payload"])) == ("sent", 1, {"name": "a"})


def test_settle_removes_done_ops_and_keeps_failed_ones(store: StateStore) -> None:
    store.journal.journal_sent(1, "CUSTOMER", _ops(*"abcd"))
    store.journal_ops(1, "CUSTOMER", _ops("e"))  # pending: not sent, not settled
    store.journal.settle(done=["plan:a:crm", "plan:b:crm", "plan:e:crm"],
                         failed=["plan:c:crm"])
    assert _states(store) == {"plan:c:crm": "failed", "plan:d:crm": "sent",
                              "plan:e:crm": "pending"}
    assert store.pending_ops_frame("CUSTOMER")["op_id"].sort().to_list() == [
        "plan:d:crm", "plan:e:crm"]


def test_settle_handles_more_ops_than_one_in_list(store: StateStore) -> None:
    keys = [f"k{i}" for i in range(1_203)]  # more than two IN-list chunks
    store.journal.journal_sent(1, "CUSTOMER", _ops(*keys))
    store.journal.settle(done=[f"plan:{k}:crm" for k in keys[:1_200]],
                         failed=[f"plan:{k}:crm" for k in keys[1_200:]])
    assert _states(store) == {f"plan:{k}:crm": "failed" for k in keys[1_200:]}


def test_a_bad_target_is_refused_and_nothing_journaled(store: StateStore) -> None:
    ops = [*_ops("a"), {"op_id": "plan:b:xx", "kind": "create", "target": "xx",
                        "record_key": "b", "payload": {}}]
    with pytest.raises(StateStoreError, match="side 'xx'"):
        store.journal.journal_sent(1, "CUSTOMER", ops)
    assert _states(store) == {}


def test_upsert_through_the_driver_keeps_conflicts_and_kept_columns(store: StateStore) -> None:
    store.upsert_couplings("CUSTOMER", [{"nav_id": "n1", "crm_id": "c1", "nav_key": "10000",
                                          "base_values": {"name": "A"}}])
    store.upsert_couplings("CUSTOMER", [{"nav_id": "n1", "crm_id": "c1", "crm_etag": "W/1"}])
    row = store.couplings_frame("CUSTOMER").to_dicts()[0]
    assert (row["nav_key"], json.loads(row["base_values"]), row["crm_etag"]) == (
        "10000", {"name": "A"}, "W/1")  # absent columns keep the stored value
    with pytest.raises(StateConflictError, match="already coupled"):
        store.upsert_couplings("CUSTOMER", [{"nav_id": "n2", "crm_id": "c3"},
                                            {"nav_id": "n3", "crm_id": "c1"}])
    assert store.couplings_frame("CUSTOMER")["nav_id"].to_list() == ["n1"]  # all or nothing
