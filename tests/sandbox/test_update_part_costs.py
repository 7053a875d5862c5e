"""What made a batched Dataverse update and a page of Business Central rows cheaper keeps their
answers (issue 19, item 1, third pass).

* An update given the row it read (``SandboxStore.update(..., current)``) builds the written
  row from it and the stored values instead of ``UPDATE ... RETURNING`` (which cost more than
  the update): the row a read gives afterwards, for every column type, values SQLite does not
  keep as bound (NaN, -0.0) included; RETURNING's only difference, a REAL column's whole
  number as an integer, never reaches an answer (a Dataverse update answering a decimal or
  money column still uses RETURNING).
* A part's URL is split without ``urlsplit`` when it is a plain absolute path: the same path
  and query as ``urlsplit``; its request line is read without the pattern (whose lazy URL
  tried every length): the same method, URL and end as the pattern.
* Query options are parsed once per table, options and headers: each part still answers
  its own ``$select``, a bad one is refused every time, a created column is seen.
* A page of Business Central rows finds the columns it shows once: the same rows.
"""

from __future__ import annotations

import json
import math
import random
import uuid
from dataclasses import FrozenInstanceError
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from nav_crm_ops.sandbox import Sandbox, multipart
from nav_crm_ops.sandbox.business_central.service import BusinessCentralService
from nav_crm_ops.sandbox.dataverse.common import Annotations, Query
from nav_crm_ops.sandbox.dataverse.service import DataverseService, _split_url
from nav_crm_ops.sandbox.schema import Column, EntityDef
from nav_crm_ops.sandbox.store import SandboxStore

EVERY_TYPE = EntityDef(
    service="dataverse", name="sample", entity_set="samples", key="sampleid",
    columns=(
        Column("sampleid", "guid"), Column("text", "string"), Column("memo", "memo"),
        Column("option", "option"), Column("count", "int"), Column("big", "bigint"),
        Column("ratio", "decimal"), Column("amount", "money"), Column("flag", "bool"),
        Column("when", "datetime"), Column("day", "date"), Column("pick", "choice"),
        Column("ref", "lookup"), Column("other", "guid"), Column("payload", "json"),
        Column("modifiedby", "lookup"), Column("modifiedon", "datetime"),
        Column("createdon", "datetime"), Column("versionnumber", "bigint"),
    ),
    modified_column="modifiedon", created_column="createdon", version_column="versionnumber",
)
_FLOATS = [0.0, -0.0, 1.5, -2.25, 1e16, 1e300, -1e-300, 3.0, float("nan"), float("inf"),
           float("-inf"), 0.1 + 0.2]


def _value(generator: random.Random, column: Column) -> Any:
    """A value of the kind a write hands the store for ``column`` (None now and then)."""
    if generator.random() < 0.15:
        return None
    kind = column.type
    choices: dict[str, list[Any]] = {
        "string": ["", "a", "Ünïcode ☃", "with\x00nul", "  spaces  ", "12", "line\nbreak"],
        "memo": ["x" * 3000, "é"], "option": [" ", "Open", "_Blank"],
        "int": [0, -1, 2 ** 31, True], "bigint": [2 ** 62, -(2 ** 63), 7],
        "decimal": [*_FLOATS, 5, -3], "money": [*_FLOATS, 10, 0],
        "bool": [True, False, 0, 1, "yes", ""], "choice": [0, 1, 100000000],
        "datetime": ["2026-03-01T12:00:00Z", "2026-03-01T12:00:00.123Z",
                     "2026-03-01T13:00:00+01:00"],
        "date": ["2026-03-01", "2026-03-01T10:00:00Z"],
        "lookup": [str(uuid.uuid4()).upper(), str(uuid.uuid4())],
        "guid": [str(uuid.uuid4()).upper()],
        "json": [{"a": [1, 2.5, None]}, [], "text", 3, {"1": {"nested": True}}, (1, 2)],
    }
    return generator.choice(choices[kind])


def _real_as_float(row: dict[str, Any]) -> dict[str, Any]:
    """``row`` with RETURNING's integers in REAL columns as the floats a read gives (a row
    built from the one read has the floats already; NaN and -0.0 fall back to RETURNING)."""
    return {name: float(value) if name in ("ratio", "amount") and type(value) is int else value
            for name, value in row.items()}


def _same(left: dict[str, Any], right: dict[str, Any]) -> bool:
    """Equal rows, NaN equal to NaN and -0.0 told from 0.0."""
    if left.keys() != right.keys():
        return False
    for name, a in left.items():
        b = right[name]
        if isinstance(a, float) and isinstance(b, float):
            if not (a == b or (math.isnan(a) and math.isnan(b))) or \
                    math.copysign(1.0, a) != math.copysign(1.0, b):
                return False
        elif type(a) is not type(b) or a != b:
            return False
    return True


def test_an_update_given_the_row_answers_what_returning_and_a_read_give(
        tmp_path: Path) -> None:
    fast = SandboxStore(tmp_path / "fast.db", [EVERY_TYPE])
    slow = SandboxStore(tmp_path / "slow.db", [EVERY_TYPE])
    generator = random.Random(19)
    names = [c.name for c in EVERY_TYPE.columns
             if c.name not in ("sampleid", "modifiedon", "createdon", "versionnumber")]
    keys = [str(uuid.uuid4()) for _ in range(20)]
    for store in (fast, slow):
        for key in keys:
            store.insert("samples", {"sampleid": key})
    for _ in range(1500):
        key = generator.choice(keys)
        columns = generator.sample(names, generator.randint(1, 5))
        changes = {name: _value(generator, EVERY_TYPE.column(name))  # type: ignore[arg-type]
                   for name in columns}
        if generator.random() < 0.2:
            changes["modifiedon"] = "2026-05-01T00:00:00.000Z"
        with fast.transaction():
            current = fast.get("samples", key)
            assert current is not None
            built = fast.update("samples", key, dict(changes), current)
            stored = fast.get("samples", key)
        returned = slow.update("samples", key, dict(changes))
        assert stored is not None and _same(_real_as_float(built), stored), changes
        if not any(isinstance(v, float) and (math.isnan(v) or str(v) == "-0.0")
                   for v in changes.values()):  # built, not RETURNING's: exactly the read
            assert _same(built, stored), changes
        for row in (built, returned):  # the clocks and versions of two stores differ
            for name in ("createdon", "modifiedon", "versionnumber", "_version"):
                row.pop(name)
        assert _same(_real_as_float(built), _real_as_float(returned)), changes
    fast.close()
    slow.close()


def test_an_update_given_the_row_of_a_missing_key_is_refused_as_before(
        tmp_path: Path) -> None:
    from nav_crm_ops.sandbox.store import RecordNotFoundError

    store = SandboxStore(tmp_path / "s.db", [EVERY_TYPE])
    row = store.insert("samples", {"text": "a"})
    version = store.version
    store.delete("samples", row["sampleid"])
    with pytest.raises(RecordNotFoundError):
        store.update("samples", row["sampleid"], {"text": "b"}, row)
    assert store.version == version + 1  # the delete's; the refused update gave its back
    store.close()


def test_plain_part_urls_are_split_as_urlsplit_splits_them() -> None:
    generator = random.Random(7)
    pieces = ["/", "//", "?", "#", ":", "a", "api/data/v9.2/", "accounts(", ")", "=", "&",
              "$select=name", " ", "\t", "\r", "\n", "\x00", "%20", "é", "http:", ";", "[",
              "'"]
    for _ in range(30_000):
        url = "".join(generator.choice(pieces) for _ in range(generator.randint(0, 9)))
        try:
            expected = urlsplit(url)
        except ValueError:
            with pytest.raises(ValueError):
                _split_url(url)
            continue
        assert _split_url(url) == (expected.path, expected.query), repr(url)


def _batch(service: DataverseService, client: str, parts: list[tuple[str, str]]
           ) -> list[tuple[int, dict[str, Any]]]:
    """PATCH parts (url, body) in one ``$batch``; each part's status and JSON answer."""
    body = "".join(
        f"--b\r\nContent-Type: application/http\r\n\r\nPATCH /api/data/v9.2/{url} HTTP/1.1\r\n"
        f"Prefer: return=representation\r\nContent-Type: application/json\r\n\r\n{payload}\r\n"
        for url, payload in parts) + "--b--\r\n"
    reply = service.handle("POST", "$batch", "", {"content-type": "multipart/mixed; boundary=b",
                                                  "prefer": "odata.continue-on-error"},
                           body.encode(), client)
    assert reply.status == 200
    found = []
    for chunk in reply.encoded().split(b"HTTP/1.1 ")[1:]:
        status = int(chunk[:3])
        found.append((status, json.loads(chunk.split(b"\r\n\r\n", 1)[1].split(b"\r\n--")[0])))
    return found


def test_each_part_answers_its_own_select(fresh_sandbox: Sandbox) -> None:
    service = DataverseService(fresh_sandbox.context)
    client = fresh_sandbox.info.client_id
    key = fresh_sandbox.context.store.query("dataverse:account", limit=1)[0]["accountid"]
    answers = _batch(service, client, [
        (f"accounts({key})?$select=name", '{"telephone1": "1"}'),
        (f"accounts({key})?$select=telephone1,name", '{"telephone1": "2"}'),
        (f"accounts({key})?$select=name", '{"telephone1": "3"}'),
        (f"accounts({key})?$select=nosuchcolumn", '{"telephone1": "4"}'),
        (f"accounts({key})?$select=nosuchcolumn", '{"telephone1": "5"}'),
        (f"accounts({key})", '{"telephone1": "6"}'),
    ])
    assert [status for status, _ in answers] == [200, 200, 200, 400, 400, 200]
    assert set(answers[0][1]) == {"@odata.context", "@odata.etag", "name", "accountid"}
    assert answers[1][1]["telephone1"] == "2" and "telephone1" not in answers[2][1]
    assert answers[3][1] == answers[4][1] and "nosuchcolumn" in answers[3][1]["error"]["message"]
    assert answers[5][1]["telephone1"] == "6" and "fax" in answers[5][1]
    assert answers[1][1]["@odata.context"].endswith("$metadata#accounts(telephone1,name)"
                                                    "/$entity")


def test_a_created_column_is_selectable_at_once(fresh_sandbox: Sandbox) -> None:
    service = DataverseService(fresh_sandbox.context)
    client = fresh_sandbox.info.client_id
    key = fresh_sandbox.context.store.query("dataverse:account", limit=1)[0]["accountid"]
    url = f"accounts({key})?$select=nav_tier"
    assert _batch(service, client, [(url, "{}")])[0][0] == 400
    column = {"@odata.type": "Microsoft.Dynamics.CRM.StringAttributeMetadata",
              "SchemaName": "nav_Tier", "MaxLength": 20, "RequiredLevel": {"Value": "None"},
              "FormatName": {"Value": "Text"}, "DisplayName": {"LocalizedLabels": [
                  {"Label": "Tier", "LanguageCode": 1033}]}}
    created = service.handle("POST", "EntityDefinitions(LogicalName='account')/Attributes", "",
                             {}, json.dumps(column).encode(), client)
    assert created.status < 300, created.encoded()
    status, answer = _batch(service, client, [(url, '{"nav_tier": "gold"}')])[0]
    assert status == 200 and answer["nav_tier"] == "gold"


def test_an_update_answering_money_answers_as_before(fresh_sandbox: Sandbox) -> None:
    """RETURNING's integer for a whole number: ``"creditlimit":5000`` (a read: ``5000.0``)."""
    service = DataverseService(fresh_sandbox.context)
    client = fresh_sandbox.info.client_id
    key = fresh_sandbox.context.store.query("dataverse:account", limit=1)[0]["accountid"]
    answers = _batch(service, client, [
        (f"accounts({key})?$select=creditlimit", '{"creditlimit": 5000}'),
        (f"accounts({key})", '{"telephone1": "7"}'),
        (f"accounts({key})?$select=name", '{"creditlimit": 2500.0}')])
    assert [status for status, _ in answers] == [200, 200, 200]
    assert type(answers[0][1]["creditlimit"]) is int and answers[0][1]["creditlimit"] == 5000
    assert type(answers[1][1]["creditlimit"]) is int
    read = service.handle("GET", f"accounts({key})", "$select=creditlimit", {}, b"", client)
    assert json.loads(read.encoded())["creditlimit"] == 2500.0
    assert b'"creditlimit":2500.0' in read.encoded()


def test_parsed_query_options_cannot_change() -> None:
    query = Query(None, Annotations(), {})
    with pytest.raises(FrozenInstanceError):
        query.select = []  # type: ignore[misc]
    with pytest.raises(FrozenInstanceError):
        query.annotations.patterns = ("*",)  # type: ignore[misc]


def test_a_page_of_rows_shows_the_columns_each_row_showed(fresh_sandbox: Sandbox) -> None:
    service = BusinessCentralService(fresh_sandbox.context)
    store = fresh_sandbox.context.store
    for name in ("customers", "items", "salesInvoices", "salesInvoiceLines"):
        entity = service._entity(name)
        rows = store.query(f"business_central:{name}", limit=20)
        for select in (None, {"number"}, {"id", "displayName", "number", "blocked"}, set()):
            shown = service._shown(entity, select)
            for row in rows:
                assert service._wire(entity, row, select, {}, shown) == \
                       service._wire(entity, row, select, {})


def _regex_request_line(message: bytes) -> tuple[bytes, bytes, int] | None:
    match = multipart._REQUEST_LINE.match(message)
    return None if match is None else (match.group(1), match.group(2), match.end())


def test_request_lines_are_read_as_the_pattern_reads_them() -> None:
    generator = random.Random(11)
    pieces = [b"PATCH", b"GET", b"patch", b"P", b" ", b"  ", b"\t", b"\r", b"\n", b"\r\n",
              b"/api/data/v9.2/accounts(1)", b"?$select=a", b" HTTP/1.1", b" HTTP/1.0",
              b" HTTP/2", b"HTTP/1.1", b"x", b"\x0b", b"\x0c", b"\xc3\xa9", b"1"]
    for _ in range(60_000):
        message = b"".join(generator.choice(pieces) for _ in range(generator.randint(0, 8)))
        assert multipart._request_line(message) == _regex_request_line(message), message
    line = b"PATCH /api/data/v9.2/accounts(1)?$select=a HTTP/1.1\r\nIf-Match: *\r\n\r\n{}"
    assert multipart._request_line(line) == (b"PATCH", b"/api/data/v9.2/accounts(1)?$select=a",
                                             line.index(b"\n") + 1)
