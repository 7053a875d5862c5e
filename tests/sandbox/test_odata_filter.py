"""OData $filter/$orderby parsing and SQL translation, checked by running the SQL on SQLite."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from nav_crm_ops.sandbox.odata_filter import (
    BC_DIALECT,
    DATAVERSE_DIALECT,
    Compare,
    FilterColumn,
    FilterDialect,
    FilterError,
    Literal,
    Property,
    compile_filter,
    parse_filter,
    parse_orderby,
)
from nav_crm_ops.sandbox.schema import Column, EntityDef
from nav_crm_ops.sandbox.store import SandboxStore

ROWS: list[dict[str, Any]] = [
    {"name": "O'Bryan Ltd", "city": "London", "amount": 10, "active": True,
     "when": "2024-10-31T23:00:00Z", "ref": "aaaaaaaa-0000-4000-8000-000000000001"},
    {"name": "contoso", "city": "Paris", "amount": 20.5, "active": False,
     "when": "2024-11-01T10:00:00.250Z", "ref": None},
    {"name": "CONTOSO 50%_off", "city": None, "amount": None, "active": True,
     "when": "2024-11-02T00:00:00Z", "ref": "aaaaaaaa-0000-4000-8000-000000000002"},
]
ENTITY = EntityDef(
    service="dataverse", name="item", entity_set="items", key="id",
    columns=(Column("id", "guid"), Column("name"), Column("city"), Column("amount", "money"),
             Column("active", "bool"), Column("when", "datetime"), Column("ref", "lookup")),
    modified_column="when",
)


def resolve(name: str) -> FilterColumn:
    target = name[1:-6] if name.startswith("_") and name.endswith("_value") else name
    column = ENTITY.column(target)
    if column is None or (column.type == "lookup") != (target != name):
        raise FilterError(f"Could not find a property named '{name}'.")
    return FilterColumn(f'"{column.name}"', column.type)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> SandboxStore:
    db = SandboxStore(Path(tmp_path_factory.mktemp("f")) / "f.db", [ENTITY])
    for row in ROWS:
        db.insert("item", row)
    return db


def names(store: SandboxStore, text: str, dialect: FilterDialect = DATAVERSE_DIALECT) -> list[str]:
    sql, params = compile_filter(text, resolve, dialect)
    return sorted(r["name"] for r in store.query("item", sql, params))


@pytest.mark.parametrize(("text", "expected"), [
    ("name eq 'O''Bryan Ltd'", ["O'Bryan Ltd"]),
    ("name eq 'CONTOSO'", ["contoso"]),
    ("name ne 'contoso'", ["CONTOSO 50%_off", "O'Bryan Ltd"]),
    ("city eq null", ["CONTOSO 50%_off"]),
    ("city ne null and amount gt 10", ["contoso"]),
    ("amount ge 10 and amount le 20.5", ["O'Bryan Ltd", "contoso"]),
    ("20 lt amount", ["contoso"]),
    ("active eq true", ["CONTOSO 50%_off", "O'Bryan Ltd"]),
    ("not (active eq true)", ["contoso"]),
    ("when gt 2024-11-01T00:00:00Z", ["CONTOSO 50%_off", "contoso"]),
    ("when gt 2024-11-01T10:00:00.25Z", ["CONTOSO 50%_off"]),
    ("when lt 2024-11-01T00:30:00+01:00", ["O'Bryan Ltd"]),
    ("when ge 2024-11-02", ["CONTOSO 50%_off"]),
    ("_ref_value eq AAAAAAAA-0000-4000-8000-000000000002", ["CONTOSO 50%_off"]),
    ("_ref_value eq null or name eq 'x'", ["contoso"]),
    ("contains(name,'toso')", ["CONTOSO 50%_off", "contoso"]),
    ("contains(name,'50%_')", ["CONTOSO 50%_off"]),
    ("contains(name,'0%o')", []),
    ("startswith(name,'o''b') eq true", ["O'Bryan Ltd"]),
    ("endswith(name, 'OFF') and not contains(city, 'x')", []),
    ("contains(name,'toso') eq false", ["O'Bryan Ltd"]),
    ("city in ('london', 'PARIS')", ["O'Bryan Ltd", "contoso"]),
    ("(city eq 'London' or city eq 'Paris') and amount eq 10", ["O'Bryan Ltd"]),
])
def test_filters_select_the_right_rows(store: SandboxStore, text: str,
                                       expected: list[str]) -> None:
    assert names(store, text) == expected


def test_case_sensitive_dialect(store: SandboxStore) -> None:
    bc = replace(BC_DIALECT, allow_in=True)
    assert names(store, "name eq 'CONTOSO'", bc) == []
    assert names(store, "contains(name,'toso')", bc) == ["contoso"]
    assert names(store, "startswith(name,'CON')", bc) == ["CONTOSO 50%_off"]
    assert names(store, "endswith(name,'off')", bc) == ["CONTOSO 50%_off"]


def test_values_are_bound_never_interpolated() -> None:
    sql, params = compile_filter("name eq 'x''; drop table item; --'", resolve)
    assert "drop" not in sql and params == ["x'; drop table item; --"]


def test_bc_rejects_or_across_fields_but_not_on_one_field() -> None:
    with pytest.raises(FilterError, match=r"^The 'OR' operator is not supported on distinct "
                                          r"fields on an OData filter\.$"):
        compile_filter("name eq 'a' or city eq 'b'", resolve, BC_DIALECT)
    compile_filter("(name eq 'a' or name eq 'b') and city eq 'c'", resolve, BC_DIALECT)
    compile_filter("name eq 'a' or city eq 'b'", resolve, DATAVERSE_DIALECT)


def test_in_needs_the_dialect_flag() -> None:
    with pytest.raises(FilterError, match=r"schemaversion=2\.1"):
        compile_filter("city in ('a','b')", resolve, BC_DIALECT)
    assert compile_filter("city in ('a','b')", resolve, replace(BC_DIALECT, allow_in=True))[1] \
        == ["a", "b"]


def test_parse_builds_ast() -> None:
    assert parse_filter("name eq 'a'") == Compare("eq", Property("name"), Literal("a", "string"))
    assert parse_filter("x eq -1.5").right == Literal(-1.5, "float")  # type: ignore[union-attr]


@pytest.mark.parametrize(("text", "message"), [
    ("name eq 'open", "Unterminated string"),
    ("name eq", "unexpected end"),
    ("name eq 'a' and", "unexpected end"),
    ("(name eq 'a'", "unexpected end"),
    ("name eq 'a')", "unexpected ')'"),
    ("bogus eq 1", "Could not find a property named 'bogus'"),
    ("_name_value eq 1", "Could not find a property named '_name_value'"),
    ("ref eq 'x'", "Could not find a property named 'ref'"),
    ("tolower(name) eq 'a'", "function 'tolower' is not supported"),
    ("amount eq 'ten'", "number is required"),
    ("when gt 'yesterday'", "not a valid datetime"),
    ("active eq 1", "boolean"),
    ("name gt null", "cannot be used with null"),
    ("name", "must be a condition"),
    ("", "empty"),
    ("name eq 'a' # x", "unexpected '#"),
])
def test_errors_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(FilterError, match=re.escape(message)):
        compile_filter(text, resolve)


def test_parse_orderby() -> None:
    assert parse_orderby("name, amount desc ,city asc") == [
        ("name", False), ("amount", True), ("city", False)]
    for bad in ("name sideways", "name desc extra", "", "na-me"):
        with pytest.raises(FilterError):
            parse_orderby(bad)


def test_long_or_chains_of_ids_compile_flat_for_sqlite(store: SandboxStore) -> None:
    ids = [f"aaaaaaaa-0000-4000-8000-{n:012d}" for n in range(1, 400)]
    text = " or ".join(f"_ref_value eq {i}" for i in ids)
    assert names(store, text) == ["CONTOSO 50%_off", "O'Bryan Ltd"]
    assert names(store, f"({text}) and city eq 'London'") == ["O'Bryan Ltd"]
