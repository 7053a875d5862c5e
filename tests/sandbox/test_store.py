"""SandboxStore against real SQLite files: keys, versions, clock, keyset paging, transactions."""

from __future__ import annotations

import sqlite3
import tempfile
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nav_crm_ops.sandbox.schema import Column, EntityDef
from nav_crm_ops.sandbox.store import KeyExistsError, RecordNotFoundError, SandboxStore

THING = EntityDef(
    service="dataverse", name="thing", entity_set="things", key="thingid",
    columns=(
        Column("thingid", "guid"), Column("name", "string", max_length=50),
        Column("amount", "money"), Column("active", "bool"), Column("code", "choice"),
        Column("payload", "json"), Column("createdon", "datetime"),
        Column("modifiedon", "datetime"), Column("versionnumber", "bigint"),
    ),
    modified_column="modifiedon", created_column="createdon", version_column="versionnumber",
    change_tracking=True,
)
BC_THING = EntityDef(
    service="business_central", name="thing", entity_set="bcthings", key="id",
    columns=(Column("id", "guid"), Column("number", "string"),
             Column("lastModifiedDateTime", "datetime")),
    modified_column="lastModifiedDateTime",
)


@pytest.fixture
def store(tmp_path: Path) -> SandboxStore:
    return SandboxStore(tmp_path / "sandbox.db", [THING])


def test_insert_sets_key_stamps_and_versions(store: SandboxStore) -> None:
    first = store.insert("thing", {"name": "A", "active": True, "payload": {"x": [1]}})
    second = store.insert("things", {"name": "B"})
    assert len(first["thingid"]) == 36
    assert first["active"] is True and first["payload"] == {"x": [1]}
    assert first["createdon"] == first["modifiedon"] and first["createdon"].endswith("Z")
    assert second["_version"] > first["_version"]
    assert second["versionnumber"] == second["_version"]
    assert second["modifiedon"] > first["modifiedon"]
    assert store.get("thing", first["thingid"].upper()) == first


def test_client_key_is_honoured_and_duplicates_rejected(store: SandboxStore) -> None:
    key = "0a0b0c0d-0000-4000-8000-000000000001"
    store.insert("thing", {"thingid": key.upper(), "name": "A"})
    assert store.get("thing", key)["name"] == "A"  # type: ignore[index]
    with pytest.raises(KeyExistsError):
        store.insert("thing", {"thingid": key, "name": "B"})


def test_update_bumps_version_and_modified(store: SandboxStore) -> None:
    row = store.insert("thing", {"name": "A", "amount": 1})
    changed = store.update("thing", row["thingid"], {"amount": 2.5})
    assert changed["amount"] == 2.5 and changed["name"] == "A"
    assert changed["_version"] > row["_version"] and changed["modifiedon"] > row["modifiedon"]
    with pytest.raises(RecordNotFoundError):
        store.update("thing", "00000000-0000-0000-0000-000000000000", {"name": "x"})
    with pytest.raises(KeyError, match="nosuch"):
        store.update("thing", row["thingid"], {"nosuch": 1})


def test_clock_is_strictly_increasing(store: SandboxStore) -> None:
    stamps = [store.now() for _ in range(500)]
    assert stamps == sorted(stamps) and len(set(stamps)) == 500


def test_keyset_paging_returns_every_row_once_while_inserting(store: SandboxStore) -> None:
    store.insert_many("thing", ({"name": f"n{i % 7}", "code": None if i % 5 == 0 else i % 3}
                                for i in range(100)))
    for order in ([], [("name", False)], [("code", True), ("name", False)],
                  [("code", False)]):
        seen: list[str] = []
        after = None
        while True:
            page = store.query("thing", order_by=order, after=after, limit=7)
            if not page:
                break
            seen.extend(r["thingid"] for r in page)
            last = page[-1]
            after = (*(last[c] for c, _ in order), last["thingid"])
            if len(seen) == 14:  # rows created mid-walk must not duplicate earlier ones
                store.insert("thing", {"name": "late", "code": 1})
        assert len(seen) == len(set(seen))
        assert set(seen) >= {r["thingid"] for r in store.query("thing", "name <> 'late'")}


def test_query_filters_orders_and_rejects_unknown_columns(store: SandboxStore) -> None:
    store.insert_many("thing", [{"name": n, "amount": a} for n, a in
                                [("b", 2), ("a", 3), ("c", 1)]])
    rows = store.query("thing", '"amount" >= ?', [2], order_by=[("amount", True)])
    assert [r["name"] for r in rows] == ["a", "b"]
    assert store.count("thing", '"amount" < ?', [3]) == 2
    with pytest.raises(KeyError):
        store.query("thing", order_by=[("bogus; drop table thing", False)])


def test_changes_report_updates_and_tombstones(store: SandboxStore) -> None:
    a = store.insert("thing", {"name": "A"})
    b = store.insert("thing", {"name": "B"})
    _, _, token = store.changes("thing", 0)
    store.update("thing", a["thingid"], {"name": "A2"})
    assert store.delete("thing", b["thingid"])["name"] == "B"  # type: ignore[index]
    assert store.delete("thing", b["thingid"]) is None
    rows, deleted, new_token = store.changes("thing", token)
    assert [r["name"] for r in rows] == ["A2"]
    assert deleted == [b["thingid"]] and new_token > token
    assert store.changes("thing", new_token)[:2] == ([], [])


def test_nested_transaction_rolls_back(store: SandboxStore) -> None:
    with store.transaction():
        store.insert("thing", {"name": "kept"})
        with pytest.raises(RuntimeError), store.transaction():
            store.insert("thing", {"name": "inner"})
            raise RuntimeError("boom")
    with pytest.raises(RuntimeError), store.transaction():
        store.insert("thing", {"name": "outer"})
        raise RuntimeError("boom")
    assert [r["name"] for r in store.query("thing")] == ["kept"]


def test_reset_counts_reopen_and_versions_survive(tmp_path: Path) -> None:
    store = SandboxStore(tmp_path / "s.db", [THING])
    store.insert_many("thing", [{"name": "x"}] * 3)
    assert store.counts() == {"dataverse:thing": 3}
    version = store.version
    store.close()
    again = SandboxStore(tmp_path / "s.db", [THING])
    assert again.count("thing") == 3 and again.version == version
    assert again.insert("thing", {"name": "y"})["_version"] > version
    again.reset()
    assert again.count("thing") == 0
    assert again.insert("thing", {})["_version"] > version + 1
    with sqlite3.connect(tmp_path / "s.db") as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    again.close()


def test_colliding_names_need_qualification(tmp_path: Path) -> None:
    store = SandboxStore(tmp_path / "s.db", [THING, BC_THING])
    store.insert("dataverse:thing", {"name": "dv"})
    store.insert("bcthings", {"number": "10000"})
    assert store.entity("things").service == "dataverse"
    assert store.table_name("business_central:thing") == "business_central__thing"
    with pytest.raises(KeyError, match="qualify"):
        store.entity("thing")
    with pytest.raises(KeyError):
        store.entity("nothing")


def test_insert_many_is_fast(tmp_path: Path) -> None:
    store = SandboxStore(tmp_path / "s.db", [THING])
    started = time.perf_counter()
    store.insert_many("thing", ({"name": f"Customer {i}", "amount": i, "active": i % 2 == 0}
                                for i in range(50_000)))
    assert time.perf_counter() - started < 15
    assert store.count("thing") == 50_000


@settings(max_examples=40, deadline=None)
@given(
    rows=st.lists(st.tuples(st.one_of(st.none(), st.sampled_from(["a", "B", "b", "c"])),
                            st.one_of(st.none(), st.integers(0, 3))), max_size=25),
    order=st.lists(st.tuples(st.sampled_from(["name", "code"]), st.booleans()),
                   max_size=2, unique_by=lambda item: item[0]),
    page=st.integers(1, 6),
)
def test_keyset_pages_equal_the_full_ordered_query(
        rows: list[tuple[str | None, int | None]], order: list[tuple[str, bool]],
        page: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        store = SandboxStore(Path(folder) / "p.db", [THING])
        store.insert_many("thing", [{"name": n, "code": c} for n, c in rows])
        expected = [r["thingid"] for r in store.query("thing", order_by=order)]
        walked: list[str] = []
        after = None
        while True:
            chunk = store.query("thing", order_by=order, after=after, limit=page)
            if not chunk:
                break
            walked += [r["thingid"] for r in chunk]
            after = (*(chunk[-1][c] for c, _ in order), chunk[-1]["thingid"])
        store.close()
    assert walked == expected


def test_table_names_differing_only_in_case_are_qualified(tmp_path: Path) -> None:
    upper = EntityDef(service="business_central", name="Thing", entity_set="Things", key="id",
                      columns=(Column("id", "guid"), Column("modified", "datetime")),
                      modified_column="modified")
    store = SandboxStore(tmp_path / "s.db", [THING, upper])
    store.insert("Thing", {})
    store.insert("thing", {"name": "lower"})
    assert store.count("Things") == 1 and store.count("things") == 1
    assert store.table_name("Thing") == "business_central__Thing"


def test_reopening_adds_columns_a_newer_definition_has(tmp_path: Path) -> None:
    path = tmp_path / "sandbox.db"
    old = SandboxStore(path, [THING])
    kept = old.insert("thing", {"name": "from before"})
    old.close()
    newer = EntityDef(service=THING.service, name=THING.name, entity_set=THING.entity_set,
                      key=THING.key, columns=(*THING.columns, Column("added", "money")),
                      modified_column=THING.modified_column,
                      created_column=THING.created_column,
                      version_column=THING.version_column)
    reopened = SandboxStore(path, [newer])
    row = reopened.get("thing", kept["thingid"])
    assert row is not None and row["name"] == "from before" and row["added"] is None
    written = reopened.update("thing", kept["thingid"], {"added": 2.5})
    assert written["added"] == 2.5
    reopened.close()
