"""Couplings looked up by the ids or keys in play (``couplings_frame(nav_ids=…, crm_ids=…,
nav_keys=…)``), on SQLite and PostgreSQL: what a preview asks instead of whole mappings.

Why these cases: the ids arrive in chunks (``IN`` lists of ``store.base.CHUNK``), so a lookup of
more ids than one chunk must still find every coupling once; a natural key coupled twice must
come back in the order the couplings were made, since lookups take the first one (as they did
over the whole table); another mapping's couplings never answer.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from nav_crm_ops.store import StateStore
from nav_crm_ops.store.base import CHUNK


@pytest.fixture
def store(state_url: str) -> Iterator[StateStore]:
    with StateStore.open(state_url) as opened:
        yield opened


def test_lookups_by_ids_span_chunks_and_stay_in_their_mapping(store: StateStore) -> None:
    count = CHUNK * 2 + 7
    store.upsert_couplings("CUSTOMER", [{"nav_id": f"n{i}", "crm_id": f"c{i}",
                                         "nav_key": f"K{i}"} for i in range(count)])
    store.upsert_couplings("VENDOR", [{"nav_id": "n1", "crm_id": "v1", "nav_key": "K1"}])
    wanted = [f"n{i}" for i in range(0, count, 2)] + ["n1", "absent"]
    found = store.couplings_frame("CUSTOMER", columns=["nav_id", "crm_id"], nav_ids=wanted)
    assert sorted(found["nav_id"].to_list()) == sorted({*wanted} - {"absent"})
    assert dict(found.iter_rows())["n1"] == "c1"
    by_crm = store.couplings_frame("CUSTOMER", columns=["nav_id"],
                                   crm_ids=[f"c{i}" for i in range(count - 3, count + 3)])
    assert sorted(by_crm["nav_id"].to_list()) == sorted(f"n{i}" for i in
                                                        range(count - 3, count))
    assert store.couplings_frame("CUSTOMER", nav_ids=[]).height == 0


def test_a_key_coupled_twice_comes_back_in_coupling_order(store: StateStore) -> None:
    store.couple("SALESPEOPLE", "z-second", "u2", nav_key="JR")
    store.couple("SALESPEOPLE", "a-third", "u3", nav_key="JR")
    store.couple("SALESPEOPLE", "m-other", "u4", nav_key="AH")
    found = store.couplings_frame("SALESPEOPLE", columns=["nav_id", "nav_key"],
                                  nav_keys=["JR", "XX"])
    assert found["nav_id"].to_list() == ["z-second", "a-third"]
    assert store.couplings_frame("salespeople", nav_keys=["AH"])["crm_id"].to_list() == ["u4"]
