"""What made the sandbox's batched writes and change reads cheaper keeps their answers (issue 19,
item 1, second pass).

* A Dataverse datetime compared in whole seconds is compared on the stored column with the
  literal rounded (``odata_filter._whole_seconds``): the same rows as the rounding expression,
  NULLs and ``not`` included.
* The multipart parser splits at the boundary and reads headers without a regex per line:
  the same parts, headers and errors as before.
* The application user behind a client is looked up once until the users' table is written
  or a transaction rolls back (the entity sets are kept until a table is created:
  ``test_metadata.test_create_table_then_use_it``).
* Replies are encoded by orjson, by the standard library where orjson refuses.
"""

from __future__ import annotations

import json
import random
import re
import sqlite3
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from nav_crm_ops.sandbox import Sandbox, multipart
from nav_crm_ops.sandbox.dataverse.service import DataverseService
from nav_crm_ops.sandbox.odata.replies import dumps_compact
from nav_crm_ops.sandbox.odata_filter import (
    DATAVERSE_DIALECT,
    FilterColumn,
    compile_filter,
)
from nav_crm_ops.sandbox.store import format_timestamp

ROUNDED = "(substr(\"modifiedon\", 1, 19) || '.000Z')"
START = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


def _stamps() -> list[str | None]:
    """Stored datetimes around a few seconds (whole seconds, milliseconds, NULLs)."""
    found: list[str | None] = [None, None]
    for second in range(-2, 4):
        for millis in (0, 1, 413, 999):
            found.append(format_timestamp(START + timedelta(seconds=second,
                                                            milliseconds=millis)))
    return found


def _literals() -> list[str]:
    values = []
    for second in (-1, 0, 1):
        for millis in (0, 1, 500, 999):
            moment = START + timedelta(seconds=second, milliseconds=millis)
            values.append(moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{millis:03d}Z")
            if millis == 0:
                values.append(moment.strftime("%Y-%m-%dT%H:%M:%SZ"))
    return values


@pytest.fixture
def table() -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:")
    conn.execute('CREATE TABLE t (id INTEGER PRIMARY KEY, "modifiedon" TEXT)')
    conn.executemany('INSERT INTO t ("modifiedon") VALUES (?)', [(s,) for s in _stamps()])
    return conn


def _ids(conn: sqlite3.Connection, text: str, column: FilterColumn) -> list[int]:
    where, params = compile_filter(text, lambda _name: column, DATAVERSE_DIALECT)
    return [row[0] for row in conn.execute(f"SELECT id FROM t WHERE {where} ORDER BY id",
                                           params)]


@pytest.mark.parametrize("op", ["gt", "ge", "lt", "le", "eq", "ne"])
@pytest.mark.parametrize("negated", [False, True])
def test_whole_second_comparisons_find_the_rows_the_rounding_expression_finds(
        table: sqlite3.Connection, op: str, negated: bool) -> None:
    rounded = FilterColumn(ROUNDED, "datetime")
    direct = FilterColumn(ROUNDED, "datetime", whole_seconds='"modifiedon"')
    for literal in _literals():
        text = f"modifiedon {op} {literal}"
        text = f"not ({text})" if negated else text
        assert _ids(table, text, direct) == _ids(table, text, rounded), text


def test_whole_second_comparisons_are_written_on_the_column(
        table: sqlite3.Connection) -> None:
    direct = FilterColumn(ROUNDED, "datetime", whole_seconds='"modifiedon"')
    where, params = compile_filter("modifiedon gt 2026-03-01T12:00:00.413Z",
                                   lambda _name: direct, DATAVERSE_DIALECT)
    assert where == '("modifiedon" >= ?)' and params == ["2026-03-01T12:00:01.000Z"]
    # ne, and an eq no whole second meets, keep the rounding expression
    for text in ("modifiedon ne 2026-03-01T12:00:00Z", "modifiedon eq 2026-03-01T12:00:00.5Z"):
        where, _ = compile_filter(text, lambda _name: direct, DATAVERSE_DIALECT)
        assert "substr" in where


def _old_split(body: bytes, boundary: str) -> list[bytes]:
    """The parser before: a regex over the whole body."""
    chunks = re.split(rb"(?:\r?\n)?" + re.escape(b"--" + boundary.encode()), body)
    if len(chunks) < 2:
        raise multipart.BatchFormatError("no boundary")
    parts = []
    for chunk in chunks[1:]:
        if chunk.startswith(b"--"):
            return parts
        parts.append(re.sub(rb"^[ \t]*\r?\n", b"", chunk, count=1))
    raise multipart.BatchFormatError("no closing boundary")


def _old_headers(block: bytes) -> tuple[dict[str, str], bytes]:
    """The header reader before: split at ``\\r?\\n``, each line decoded alone."""
    match = re.search(rb"\r?\n\r?\n", block)
    head, body = (block, b"") if match is None else (block[:match.start()],
                                                     block[match.end():])
    headers: dict[str, str] = {}
    for line in re.split(rb"\r?\n", head):
        if not line.strip():
            continue
        name, sep, value = line.decode("utf-8").partition(":")
        if not sep:
            raise multipart.BatchFormatError(
                f"Malformed header line in $batch part: '{line!r}'.")
        headers[name.strip().lower()] = value.strip()
    return headers, body


def _outcome(function: Any, *args: Any) -> Any:
    try:
        return function(*args)
    except multipart.BatchFormatError as exc:
        return ("error", str(exc) if function is not _old_split else "")


def test_multipart_splitting_and_headers_are_as_before() -> None:
    generator = random.Random(19)
    pieces = [b"\r", b"\n", b"\r\n", b"--b", b"--b--", b"-", b"x", b" ", b"\t", b":",
              b"A", b"\xc2\xa0", b"\x0b", b"\xe2\x80\xa8"]
    for _ in range(20_000):
        block = b"".join(generator.choice(pieces) for _ in range(generator.randint(0, 14)))
        assert _outcome(multipart._headers_and_body, block) == _outcome(_old_headers, block)
        new, old = _outcome(multipart._split, block, "b"), _outcome(_old_split, block, "b")
        assert (new[0] if isinstance(new, tuple) else new) == \
               (old[0] if isinstance(old, tuple) else old), block


def test_replies_are_encoded_as_the_standard_library_would() -> None:
    value = {"a": "é\u2028\x7f\x00\"\\", "b": [1, 2.5, 1e16, -0.0, None, True], "c": {}}
    assert dumps_compact(value) == json.dumps(
        value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    big = {"n": 2 ** 70, 1: "non-string key"}
    assert dumps_compact(big) == json.dumps(
        big, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    with pytest.raises(TypeError):
        dumps_compact({"when": datetime.now(UTC)})


def test_the_caller_follows_changes_to_the_users(fresh_sandbox: Sandbox) -> None:
    """The user behind the application is the one the users' table names now: after its
    ``applicationid`` moves to another user, and again after a change rolled back."""
    service = DataverseService(fresh_sandbox.context)
    store = fresh_sandbox.context.store
    client = fresh_sandbox.info.client_id
    me = service._caller(client)
    assert me is not None and service._caller(client) == me
    other = next(u["systemuserid"] for u in store.query("dataverse:systemuser")
                 if u["systemuserid"] != me and not u.get("applicationid"))
    application = store.get("dataverse:systemuser", me)["applicationid"]
    store.update("dataverse:systemuser", me, {"applicationid": None})
    store.update("dataverse:systemuser", other, {"applicationid": application})
    assert service._caller(client) == other
    with pytest.raises(RuntimeError), store.transaction():
        store.update("dataverse:systemuser", other, {"applicationid": None})
        store.update("dataverse:systemuser", me, {"applicationid": application})
        assert service._caller(client) == me
        raise RuntimeError("roll back")
    assert service._caller(client) == other
    with pytest.raises(RuntimeError), store.transaction():
        store.update("dataverse:systemuser", other, {"applicationid": None})
        raise RuntimeError("roll back before anyone asked")
    assert service._caller(client) == other
