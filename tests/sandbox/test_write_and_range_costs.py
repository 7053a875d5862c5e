"""What made the sandbox's incremental sync cheaper keeps its answers (issue 19, item 1).

* ``SandboxStore.update`` finds and reads back the row in one ``UPDATE ... RETURNING``: a
  missing row still raises, and takes no version.
* A lower bound on a modified-on column also bounds its index (``odata_filter.RangeIndex``):
  the same rows in the same pages, read through the index only when few rows pass.
* A Dataverse ``PATCH`` that would create still needs the Create privilege, in a ``$batch``
  too (the row is looked up only when that privilege is revoked).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from nav_crm_ops.connectors.multipart import BatchPart, decode_batch_response, encode_batch
from nav_crm_ops.sandbox import Sandbox
from nav_crm_ops.sandbox.odata_filter import (
    DATAVERSE_DIALECT,
    FilterColumn,
    RangeIndex,
    compile_filter,
)
from nav_crm_ops.sandbox.schema import Column, EntityDef
from nav_crm_ops.sandbox.store import (
    RecordNotFoundError,
    SandboxStore,
    format_timestamp,
    narrow_from,
)

THING = EntityDef(
    service="dataverse", name="thing", entity_set="things", key="thingid",
    columns=(Column("thingid", "guid"), Column("name", "string"),
             Column("modifiedon", "datetime"), Column("versionnumber", "bigint")),
    modified_column="modifiedon", version_column="versionnumber",
)
ROWS = 4_000
RECENT = 100
START = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SandboxStore]:
    """4,000 rows a second apart in modified-on order, with milliseconds, the last 100
    "recent"; keys are random, so key order is not modified-on order."""
    opened = SandboxStore(tmp_path / "sandbox.db", [THING])
    opened.insert_many("thing", ({
        "name": f"T{i:05d}",
        "modifiedon": format_timestamp(START + timedelta(seconds=i, milliseconds=i % 1000)),
    } for i in range(ROWS)))
    yield opened
    opened.close()


def test_update_reads_back_the_row_and_a_missing_row_takes_no_version(
        store: SandboxStore) -> None:
    row = store.query("thing", limit=1)[0]
    changed = store.update("thing", row["thingid"].upper(), {"name": "renamed"})
    assert changed == store.get("thing", row["thingid"])
    assert changed["name"] == "renamed" and changed["versionnumber"] == changed["_version"]
    assert changed["_version"] > row["_version"] and changed["modifiedon"] > row["modifiedon"]
    version, clock = store.version, store.now()
    with pytest.raises(RecordNotFoundError):
        store.update("thing", str(uuid.uuid4()), {"name": "nobody"})
    assert store.version == version and store.now() > clock


def _resolver(store: SandboxStore, *, index: bool) -> Any:
    """Dataverse's: datetimes compared in whole seconds; with ``index``, its RangeIndex."""
    def resolve(name: str) -> FilterColumn:
        if name == "modifiedon":
            sql = "(substr(\"modifiedon\", 1, 19) || '.000Z')"
            if not index:
                return FilterColumn(sql, "datetime")
            return FilterColumn(sql, "datetime", RangeIndex(
                '"modifiedon"', lambda value, where, params: narrow_from(
                    store, store_entity(store), "modifiedon", value, where, params)))
        return FilterColumn(f'"{name}"', "string")
    return resolve


def store_entity(store: SandboxStore) -> str:
    """The entity the store of this test holds (``thing`` or ``edited``)."""
    return "edited" if any(e.name == "edited" for e in store.entities) else "thing"


def _pages(store: SandboxStore, where: str, args: list[Any], size: int) -> list[list[str]]:
    """Keyset pages in key order, as the services page."""
    pages: list[list[str]] = []
    after: tuple[Any, ...] | None = None
    entity = store_entity(store)
    while True:
        rows = store.query(entity, where, args, after=after, limit=size)
        if not rows:
            return pages
        pages.append([r["name"] for r in rows])
        after = (rows[-1]["thingid"],)


def _plan(store: SandboxStore, where: str, args: list[Any]) -> str:
    table = store.table_name(store_entity(store))
    # The plan is what this test is about: read it from the store's own connection.
    found = store._conn.execute(
        f'EXPLAIN QUERY PLAN SELECT * FROM "{table}" WHERE {where} ORDER BY "thingid" '
        "LIMIT 501", args).fetchall()
    return " | ".join(str(step[-1]) for step in found)


@pytest.mark.parametrize("text", [
    "modifiedon ge {recent}", "modifiedon gt {recent}", "modifiedon eq {recent}",
    "modifiedon ge {old}", "modifiedon gt {old} and name ne 'T03950'",
    "not (modifiedon ge {recent})", "modifiedon ge {recent} or name eq 'T00001'",
    "modifiedon lt {recent}", "modifiedon le {old}", "modifiedon ne {recent}",
])
def test_a_range_index_keeps_the_rows_and_their_pages(store: SandboxStore, text: str) -> None:
    recent = (START + timedelta(seconds=ROWS - RECENT)).strftime("%Y-%m-%dT%H:%M:%SZ")
    old = (START + timedelta(seconds=10)).strftime("%Y-%m-%dT%H:%M:%SZ")
    flt = text.format(recent=recent, old=old)
    plain = compile_filter(flt, _resolver(store, index=False), DATAVERSE_DIALECT)
    indexed = compile_filter(flt, _resolver(store, index=True), DATAVERSE_DIALECT)
    expected = _pages(store, *plain, size=30)
    assert _pages(store, *indexed, size=30) == expected
    assert sum(map(len, expected)) > 0


def test_the_index_is_read_only_when_few_rows_pass(store: SandboxStore) -> None:
    resolve = _resolver(store, index=True)
    recent = (START + timedelta(seconds=ROWS - RECENT)).strftime("%Y-%m-%dT%H:%M:%SZ")
    narrow_sql, narrow_args = compile_filter(f"modifiedon ge {recent}", resolve)
    assert "ix_thing_modified" in _plan(store, narrow_sql, narrow_args)
    # A later page (key after the last one read) still reads the modified-on index.
    later = f'({narrow_sql}) AND ("thingid" > ?)'
    assert "ix_thing_modified" in _plan(store, later, [*narrow_args, "8"])
    # Most rows pass: reading the index would sort them all on every page; key order stays.
    wide_sql, wide_args = compile_filter("modifiedon ge 2026-01-01T00:00:10Z", resolve)
    assert "ix_thing_modified" not in _plan(store, wide_sql, wide_args)
    assert narrow_from(store, "thing", "modifiedon", narrow_args[0])
    assert not narrow_from(store, "thing", "modifiedon", wide_args[0])


def test_dataverse_incremental_read_pages_through_the_recent_rows(dv: httpx.Client) -> None:
    everything = dv.get("accounts", params={"$select": "modifiedon,name"}).json()["value"]
    stamps = sorted({r["modifiedon"] for r in everything})
    since = stamps[len(stamps) // 2]
    expected = sorted(r["accountid"] for r in everything if r["modifiedon"] >= since)
    prefer = {"Prefer": "odata.maxpagesize=3"}
    body = dv.get("accounts", params={"$select": "name", "$filter": f"modifiedon ge {since}"},
                  headers=prefer).json()
    seen = [r["accountid"] for r in body["value"]]
    for _ in range(len(everything)):
        if "@odata.nextLink" not in body:
            break
        body = dv.get(body["@odata.nextLink"], headers=prefer).json()
        seen += [r["accountid"] for r in body["value"]]
    assert seen == expected and len(seen) > 3


def _batch(dv: httpx.Client, parts: list[BatchPart]) -> list[int]:
    content_type, body = encode_batch(parts)
    reply = dv.post("$batch", content=body, headers={
        "Content-Type": content_type, "Prefer": "odata.continue-on-error"})
    assert reply.status_code == 200, reply.text
    return [p.status for p in decode_batch_response(reply.headers["content-type"],
                                                    reply.content)]


def test_an_upsert_that_creates_needs_create_in_a_batch_too(fresh_sandbox: Sandbox,
                                                            dv: httpx.Client) -> None:
    existing = dv.get("accounts", params={"$select": "name", "$top": "1"}).json()["value"][0]
    api = "/api/data/v9.2/"

    new = str(uuid.uuid4())

    def parts(name: str) -> list[BatchPart]:
        return [BatchPart("PATCH", f"{api}accounts({existing['accountid']})",
                          {"If-Match": "*"}, {"telephone1": name}),
                BatchPart("PATCH", f"{api}accounts({new})", {}, {"name": name})]

    fresh_sandbox.set_privileges(["prvCreateAccount"])
    try:
        assert _batch(dv, parts("without create")) == [204, 403]
        assert dv.get(f"accounts({new})").status_code == 404
    finally:
        fresh_sandbox.set_privileges([])
    assert _batch(dv, parts("with create")) == [204, 204]
    assert dv.get(f"accounts({new})").json()["name"] == "with create"


EDITED = EntityDef(
    service="dataverse", name="edited", entity_set="editeds", key="thingid",
    columns=(*THING.columns, Column("modifiedby", "guid")),
    modified_column="modifiedon", version_column="versionnumber",
)
US, PERSON = str(uuid.UUID(int=1)), str(uuid.UUID(int=2))


@pytest.fixture
def edited(tmp_path: Path) -> Iterator[SandboxStore]:
    """4,000 rows changed since the watermark, as after a first sync: all by the integration
    user (``US``) but every 200th, by a person."""
    opened = SandboxStore(tmp_path / "sandbox.db", [EDITED])
    opened.insert_many("edited", ({
        "name": f"T{i:05d}", "modifiedby": PERSON if i % 200 == 0 else US,
        "modifiedon": format_timestamp(START + timedelta(seconds=i, milliseconds=i % 1000)),
    } for i in range(ROWS)))
    yield opened
    opened.close()


def test_a_change_read_without_our_writes_reads_the_change_index(
        edited: SandboxStore) -> None:
    """After a first sync of a million, every row passes ``modifiedon ge <watermark>`` but
    almost none was changed by someone else: counted on the change index (modified-on,
    modified-by, key), the whole filter is narrow, so pages read that index instead of every
    row in key order (what made the first incremental after a big first sync slow, issue 19)."""
    resolve = _resolver(edited, index=True)
    flt = f"modifiedon ge 2026-01-01T00:00:00Z and modifiedby ne '{US}'"
    sql, args = compile_filter(flt, resolve, DATAVERSE_DIALECT)
    assert "likelihood" in sql and "ix_edited_changes" in _plan(edited, sql, args)
    plain = compile_filter(flt, _resolver(edited, index=False), DATAVERSE_DIALECT)
    expected = _pages(edited, *plain, size=7)
    assert _pages(edited, sql, args, size=7) == expected
    assert sum(map(len, expected)) == ROWS // 200
    # Most rows pass the whole filter (the person's rows): key order stays.
    wide_sql, wide_args = compile_filter(
        f"modifiedon ge 2026-01-01T00:00:00Z and modifiedby ne '{PERSON}'", resolve,
        DATAVERSE_DIALECT)
    assert "likelihood" not in wide_sql
    assert "ix_edited_changes" not in _plan(edited, wide_sql, wide_args)
    # Columns beyond the change index are read from the rows while counting: still right.
    either = f"modifiedon ge 2026-01-01T00:00:00Z and (modifiedby ne '{US}' or name eq 'T00001')"
    assert _pages(edited, *compile_filter(either, resolve, DATAVERSE_DIALECT), size=7) == \
        _pages(edited, *compile_filter(either, _resolver(edited, index=False),
                                       DATAVERSE_DIALECT), size=7)
