"""Every transformation rule gives the documented result, column-wise and for single values."""

from __future__ import annotations

from typing import Any

import polars as pl
import pytest

from nav_crm_ops.engine.transform import RULES, parse_chain, parse_rule
from nav_crm_ops.exceptions import MappingError

CASES: list[tuple[Any, list[Any], list[Any]]] = [
    ("upper", ["Cannon Group", None, "ß"], ["CANNON GROUP", None, "SS"]),
    ("lower", ["Cannon GROUP", None], ["cannon group", None]),
    ("title", ["the cannon GROUP plc", None], ["The Cannon Group Plc", None]),
    ("trim", ["  x y \t", "", None], ["x y", "", None]),
    ({"substring": {"start": 2, "length": 3}}, ["ABCDEF", "AB", None], ["BCD", "B", None]),
    ({"substring": {"start": 3}}, ["ABCDEF"], ["CDEF"]),
    ({"replace": {"old": ".", "new": ""}}, ["a.b.c", None], ["abc", None]),
    ({"regex_replace": {"pattern": r"\s+", "repl": " "}}, ["a   b\tc"], ["a b c"]),
    ({"regex_replace": {"pattern": r"(\d+)-(\d+)", "repl": "$2/$1"}}, ["10-20"], ["20/10"]),
    ("remove_non_alphanumeric", ["+44 (20) 555-0100", "Åse-Ø"], ["44205550100", "ÅseØ"]),
    ({"date_format": {"format": "%d.%m.%Y"}},
     ["2023-04-07T21:59:01Z", "2023-04-07", "not a date", None],
     ["07.04.2023", "07.04.2023", None, None]),
    ({"decimal_format": {"places": 2}}, [12.5, "3", -0.333, None], ["12.50", "3.00", "-0.33", None]),
    ({"round": {"places": 1}}, [12.46, "7.04", None], [12.5, 7.0, None]),
    ({"regex_match": {"pattern": r"[A-Z]{2}\d+"}}, ["id GB123 x", "none"], ["GB123", None]),
    ({"regex_match": {"pattern": r"(\w+)@(\w+)", "group": 2}}, ["ah@cronus"], ["cronus"]),
    ({"extract_from_date": {"part": "month"}}, ["2023-04-07T21:59:01Z", None], [4, None]),
    ({"extract_from_date": {"part": "year"}}, ["2023-04-07"], [2023]),
    ("unix_timestamp", ["1970-01-02T00:00:00Z", "2023-04-07T21:59:01Z"], [86400, 1680904741]),
    ({"truncate": {"max_length": 4}}, ["ABCDEFG", "AB", None], ["ABCD", "AB", None]),
    ({"field_lookup": {"values": {"GB": "United Kingdom", "DK": "Denmark"}}},
     ["GB", "DK", "US", None], ["United Kingdom", "Denmark", "US", None]),
    ({"field_lookup": {"values": {"GB": "United Kingdom"}, "default": "Other"}},
     ["GB", "US"], ["United Kingdom", "Other"]),
]


@pytest.mark.parametrize(("spec", "inputs", "expected"), CASES,
                         ids=[str(c[0]) for c in CASES])
def test_rule_column_and_scalar_agree(spec: Any, inputs: list[Any], expected: list[Any]) -> None:
    rule = parse_rule(spec)
    frame = pl.DataFrame({"v": [None if v is None else str(v) for v in inputs]})
    column = frame.select(rule.expr(pl.col("v")))["v"].to_list()
    assert column == expected
    assert [rule.scalar(v) for v in inputs] == expected


def test_numeric_and_date_columns_work_without_text_input() -> None:
    numbers = pl.DataFrame({"n": [12.456, None]})
    formatted = numbers.select(parse_rule({"decimal_format": {"places": 1}}).expr(pl.col("n")))
    assert formatted["n"].to_list() == ["12.5", None]
    dates = pl.DataFrame({"d": ["2024-02-29T10:00:00"]}).select(pl.col("d").str.to_datetime())
    parts = dates.select(parse_rule({"extract_from_date": {"part": "day"}}).expr(pl.col("d")))
    assert parts["d"].to_list() == [29]
    assert parse_rule("unix_timestamp").scalar("2024-02-29T10:00:00") == \
        dates.select(parse_rule("unix_timestamp").expr(pl.col("d")))["d"].item()


def test_every_rule_has_a_case() -> None:
    covered = {parse_rule(spec).name for spec, _, _ in CASES}
    assert covered == set(RULES)


def test_chain_applies_in_order_and_round_trips_its_spec() -> None:
    specs = ["trim", {"truncate": {"max_length": 3}}, "upper"]
    chain = parse_chain(specs)
    assert chain.scalar("  abcdef ") == "ABC"
    reversed_chain = parse_chain([{"truncate": {"max_length": 3}}, "trim", "upper"])
    assert reversed_chain.scalar("  abcdef ") == "A"
    assert [r.to_spec() for r in chain.rules] == specs
    frame = pl.DataFrame({"v": ["  abcdef ", None]})
    assert frame.select(chain.expr(pl.col("v")))["v"].to_list() == ["ABC", None]
    assert parse_chain([]).scalar(5) == 5


@pytest.mark.parametrize(("spec", "message"), [
    ("shout", "unknown transformation 'shout'; valid rules"),
    ({"substring": {"start": 0}}, "'start' must be a whole number >= 1"),
    ({"substring": {}}, "argument 'start' is required"),
    ({"replace": {"old": "", "new": "x"}}, "'old' must not be empty"),
    ({"regex_replace": {"pattern": "(unclosed", "repl": ""}}, "not a valid regular expression"),
    ({"round": {"places": "two"}}, "'places' must be a whole number"),
    ({"truncate": {"max_length": 5, "from": "left"}}, r"unknown argument\(s\) \['from'\]; valid: \['max_length'\]"),
    ({"extract_from_date": {"part": "century"}}, "part 'century' is not one of"),
    ({"field_lookup": {"values": []}}, "'values' must be a non-empty mapping"),
    ({"upper": "x"}, "arguments must be a mapping"),
    (["upper"], "must be a rule name or a one-key mapping"),
])
def test_bad_rules_raise_mapping_error_naming_the_problem(spec: Any, message: str) -> None:
    with pytest.raises(MappingError, match=message):
        parse_rule(spec)
