"""The pieces both emulated services share (``nav_crm_ops.sandbox.odata``)."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any

import pytest

from nav_crm_ops.sandbox.odata.batch import all_or_nothing
from nav_crm_ops.sandbox.odata.coercion import BRACED_GUID, GUID, ValueCoercer, is_number
from nav_crm_ops.sandbox.odata.paging import (
    cut_page,
    decode_state,
    encode_state,
    int_option,
    next_link,
    split_expand,
    without,
)
from nav_crm_ops.sandbox.odata.replies import Reply, json_object
from nav_crm_ops.sandbox.schema import Column, EntityDef


def test_reply_encodes_json_bodies_and_keeps_bytes() -> None:
    assert Reply(204).encoded() == b""
    assert Reply(200, b"raw").encoded() == b"raw"
    assert Reply(200, {"a": "é"}).encoded() == '{"a": "é"}'.encode()


def test_json_object_words_errors_through_the_callers_hooks() -> None:
    assert json_object(b'{"a": 1}', ValueError, lambda: TypeError()) == {"a": 1}
    with pytest.raises(KeyError):
        json_object(b"{", lambda exc: KeyError(str(exc)), lambda: TypeError())
    with pytest.raises(TypeError):
        json_object(b"[1]", lambda exc: KeyError(str(exc)), lambda: TypeError())


def test_int_option_blank_and_bad_values() -> None:
    def error(text: str) -> Exception:
        return ValueError(text)

    assert int_option({"$top": "5"}, "$top", error) == 5
    assert int_option({}, "$top", error) is None
    assert int_option({"$top": ""}, "$top", error, blank_is_none=True) is None
    with pytest.raises(ValueError, match="-1"):
        int_option({"$top": "-1"}, "$top", error)
    with pytest.raises(ValueError):
        int_option({"$top": ""}, "$top", error)


@pytest.mark.parametrize("compact", [True, False])
def test_state_tokens_round_trip(compact: bool) -> None:
    state = {"after": ["Zoë", 3], "left": None}
    assert decode_state(encode_state(state, compact=compact)) == state
    assert decode_state(encode_state(state, pad=False)) == state
    with pytest.raises(ValueError):
        decode_state("not base64 json")


def test_split_expand_reads_items_until_the_text_stops_fitting() -> None:
    assert split_expand("lines($select=a,b;$top=2), notes") == (
        [("lines", {"$select": "a,b", "$top": "2"}), ("notes", {})], True)
    items, complete = split_expand("lines, ((bad")
    assert items == [("lines", {})] and not complete
    assert split_expand("9x", r"[A-Za-z]\w*") == ([], False)


def test_paging_helpers() -> None:
    assert cut_page([1, 2, 3], 2) == ([1, 2], True)
    assert cut_page([1, 2], 2) == ([1, 2], False)
    assert without({"$top": "1", "$filter": "x"}, ("$top",)) == {"$filter": "x"}
    assert next_link("https://h/x", {"$filter": "a eq 'b c'"}, "$") == \
        "https://h/x?$filter=a%20eq%20%27b%20c%27"


def test_all_or_nothing_stops_at_the_first_failure_and_rolls_back() -> None:
    log: list[str] = []

    class Store:
        @contextmanager
        def transaction(self) -> Any:
            log.append("begin")
            try:
                yield
                log.append("commit")
            except Exception:
                log.append("rollback")
                raise

    done, failed = all_or_nothing(Store(), [1, 2, 3, 4], lambda n: n * 10, lambda r: r == 30)
    assert (done, failed, log) == ([10, 20], 30, ["begin", "rollback"])
    log.clear()
    done, failed = all_or_nothing(Store(), [1, 2], lambda n: n, lambda r: False)
    assert (done, failed, log) == ([1, 2], None, ["begin", "commit"])


class _Strict(ValueCoercer):
    kinds = {"string": "text", "int": "integer", "decimal": "number", "bool": "boolean"}

    def type_error(self, entity: EntityDef, column: Column, value: Any) -> Exception:
        return TypeError(f"{column.name}={value!r}")

    def length_error(self, entity: EntityDef, column: Column, value: str) -> Exception:
        return ValueError(f"{column.name} too long")


def test_value_coercer_dispatches_on_the_column_type() -> None:
    entity = EntityDef(service="dataverse", name="thing", entity_set="things", key="id",
                       columns=(Column("id", "guid"),), modified_column="modifiedon")
    coercer = _Strict()
    assert coercer.coerce(entity, Column("n", "int"), 3) == 3
    assert coercer.coerce(entity, Column("d", "decimal"), 2.5) == 2.5
    assert coercer.coerce(entity, Column("s", "string", max_length=3), "abc") == "abc"
    assert coercer.coerce(entity, Column("s", "string"), None) is None
    assert coercer.coerce(entity, Column("j", "json"), {"kept": True}) == {"kept": True}
    assert not is_number(True)
    with pytest.raises(TypeError, match="n=True"):
        coercer.coerce(entity, Column("n", "int"), True)
    with pytest.raises(TypeError):
        coercer.coerce(entity, Column("b", "bool"), 1)
    with pytest.raises(ValueError, match="too long"):
        coercer.coerce(entity, Column("s", "string", max_length=2), "abc")


def test_guid_patterns() -> None:
    guid = "1f0a4d7b-9a52-6a1f-3c0d-2e475b0e5c8e"
    assert GUID.match(guid) and not GUID.match("{" + guid + "}")
    braced = BRACED_GUID.match("{" + guid.upper() + "}")
    assert braced is not None and braced.group(1) == guid.upper()
