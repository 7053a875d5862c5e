"""Transformation rules applied to a source value before it is transferred.

Why polars expressions: the diff compares whole columns at once, so every rule is a function
``pl.Expr -> pl.Expr``. Previews and error messages need single values; :meth:`Rule.scalar` and
:meth:`TransformChain.scalar` evaluate the *same* expression on a one-value frame, so the two
forms can never disagree.

A rule is written in YAML as a bare name (``upper``) or a one-key mapping of name to arguments
(``{substring: {start: 1, length: 3}}``). Arguments are checked when the mapping loads, and a
bad rule raises :class:`~nav_crm_ops.exceptions.MappingError` naming the rule and the valid
arguments.

Rules (text rules cast their input to text first; empty input stays null):

==========================  ===============================================================
``upper`` / ``lower``       upper / lower case
``title``                   first letter of every word upper case, the rest lower case
``trim``                    strip leading and trailing white space
``substring``               ``start`` (1-based, as in Business Central), optional ``length``
``replace``                 ``old`` -> ``new`` (literal text, every occurrence)
``regex_replace``           ``pattern`` -> ``repl`` (Rust regex syntax; groups as ``$1``)
``remove_non_alphanumeric`` drop every character that is not a letter or a digit
``date_format``             ``format`` (strftime) of a date/datetime or ISO 8601 text
``decimal_format``          ``places``: the number as text with exactly that many decimals
``round``                   ``places``: the number rounded (stays a number)
``regex_match``             ``pattern`` and optional ``group`` (default 0): the match or null
``extract_from_date``       ``part``: year, quarter, month, week, day, weekday, ordinal_day,
                            hour, minute or second
``unix_timestamp``          seconds since 1970-01-01 UTC (naive values count as UTC)
``truncate``                ``max_length``: cut text longer than that (fits column limits)
``field_lookup``            ``values`` (mapping old -> new) and optional ``default`` for values
                            not listed (without ``default`` they pass through unchanged)
==========================  ===============================================================
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from ..exceptions import MappingError

__all__ = ["RULES", "Rule", "TransformChain", "parse_chain", "parse_rule"]

ExprFn = Callable[[pl.Expr], pl.Expr]

_DATE_PARTS: dict[str, Callable[[pl.Expr], pl.Expr]] = {
    "year": lambda e: e.dt.year(),
    "quarter": lambda e: e.dt.quarter(),
    "month": lambda e: e.dt.month(),
    "week": lambda e: e.dt.week(),
    "day": lambda e: e.dt.day(),
    "weekday": lambda e: e.dt.weekday(),
    "ordinal_day": lambda e: e.dt.ordinal_day(),
    "hour": lambda e: e.dt.hour(),
    "minute": lambda e: e.dt.minute(),
    "second": lambda e: e.dt.second(),
}


def _text(expr: pl.Expr) -> pl.Expr:
    return expr.cast(pl.Utf8)


def _as_datetime(expr: pl.Expr) -> pl.Expr:
    """Dates, datetimes and ISO 8601 text (with or without time or zone) as naive datetimes."""
    text = _text(expr).str.replace(" ", "T")
    with_time = text.str.slice(0, 19).str.to_datetime("%Y-%m-%dT%H:%M:%S", strict=False)
    date_only = (
        text.str.slice(0, 10).str.to_date("%Y-%m-%d", strict=False).cast(pl.Datetime("us"))
    )
    return pl.coalesce(with_time.cast(pl.Datetime("us")), date_only)


def _number(expr: pl.Expr) -> pl.Expr:
    return expr.cast(pl.Utf8).str.strip_chars().cast(pl.Float64, strict=False)


class _Args:
    """Argument reader that names the rule and its valid arguments in every error."""

    def __init__(self, rule: str, args: Mapping[str, Any], allowed: Sequence[str]) -> None:
        self.rule = rule
        self.args = dict(args)
        self.allowed = tuple(allowed)
        unknown = sorted(set(self.args) - set(self.allowed))
        if unknown:
            raise MappingError(
                f"transformation {rule!r}: unknown argument(s) {unknown}; valid: "
                f"{list(self.allowed) or 'none'}"
            )

    def fail(self, what: str) -> MappingError:
        return MappingError(f"transformation {self.rule!r}: {what}")

    def text(self, name: str, *, required: bool = True, default: str = "") -> str:
        if name not in self.args:
            if required:
                raise self.fail(f"argument {name!r} is required (valid: {list(self.allowed)})")
            return default
        value = self.args[name]
        if not isinstance(value, str):
            raise self.fail(f"argument {name!r} must be text, got {value!r}")
        return value

    def integer(self, name: str, *, required: bool = True, default: int | None = None,
                minimum: int = 0) -> int | None:
        if name not in self.args:
            if required:
                raise self.fail(f"argument {name!r} is required (valid: {list(self.allowed)})")
            return default
        value = self.args[name]
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise self.fail(f"argument {name!r} must be a whole number >= {minimum}, got {value!r}")
        return value


def _check_regex(args: _Args, pattern: str) -> None:
    try:
        pl.select(pl.lit("probe").str.contains(pattern))
    except Exception as exc:
        raise args.fail(f"pattern {pattern!r} is not a valid regular expression: {exc}") from None


def _upper(_: _Args) -> ExprFn:
    return lambda e: _text(e).str.to_uppercase()


def _lower(_: _Args) -> ExprFn:
    return lambda e: _text(e).str.to_lowercase()


def _title(_: _Args) -> ExprFn:
    return lambda e: _text(e).str.to_titlecase()


def _trim(_: _Args) -> ExprFn:
    return lambda e: _text(e).str.strip_chars()


def _substring(args: _Args) -> ExprFn:
    start = args.integer("start", minimum=1)
    length = args.integer("length", required=False, minimum=0)
    assert start is not None
    return lambda e: _text(e).str.slice(start - 1, length)


def _replace(args: _Args) -> ExprFn:
    old = args.text("old")
    new = args.text("new", required=False)
    if not old:
        raise args.fail("argument 'old' must not be empty")
    return lambda e: _text(e).str.replace_all(old, new, literal=True)


def _regex_replace(args: _Args) -> ExprFn:
    pattern = args.text("pattern")
    repl = args.text("repl", required=False)
    _check_regex(args, pattern)
    return lambda e: _text(e).str.replace_all(pattern, repl)


def _remove_non_alphanumeric(_: _Args) -> ExprFn:
    return lambda e: _text(e).str.replace_all(r"[^\p{L}\p{N}]", "")


def _date_format(args: _Args) -> ExprFn:
    fmt = args.text("format")
    try:
        pl.select(pl.lit(0).cast(pl.Datetime("us")).dt.strftime(fmt))
    except Exception as exc:
        raise args.fail(f"format {fmt!r} is not a valid strftime format: {exc}") from None
    return lambda e: _as_datetime(e).dt.strftime(fmt)


def _decimal_format(args: _Args) -> ExprFn:
    places = args.integer("places", minimum=0)
    assert places is not None
    return lambda e: _number(e).round(places).cast(pl.Decimal(38, places)).cast(pl.Utf8)


def _round(args: _Args) -> ExprFn:
    places = args.integer("places", required=False, default=0, minimum=0)
    assert places is not None
    return lambda e: _number(e).round(places)


def _regex_match(args: _Args) -> ExprFn:
    pattern = args.text("pattern")
    group = args.integer("group", required=False, default=0, minimum=0)
    assert group is not None
    _check_regex(args, pattern)
    return lambda e: _text(e).str.extract(pattern, group)


def _extract_from_date(args: _Args) -> ExprFn:
    part = args.text("part")
    if part not in _DATE_PARTS:
        raise args.fail(f"part {part!r} is not one of {list(_DATE_PARTS)}")
    extract = _DATE_PARTS[part]
    return lambda e: extract(_as_datetime(e)).cast(pl.Int64)


def _unix_timestamp(_: _Args) -> ExprFn:
    return lambda e: _as_datetime(e).dt.epoch("s")


def _truncate(args: _Args) -> ExprFn:
    max_length = args.integer("max_length", minimum=1)
    return lambda e: _text(e).str.slice(0, max_length)


def _field_lookup(args: _Args) -> ExprFn:
    values = args.args.get("values")
    if not isinstance(values, Mapping) or not values:
        raise args.fail("argument 'values' must be a non-empty mapping of old value -> new value")
    old = [str(k) for k in values]
    new = [None if v is None else str(v) for v in values.values()]
    if "default" in args.args:
        default = args.args["default"]
        default_text = None if default is None else str(default)
        return lambda e: _text(e).replace_strict(
            old, new, default=pl.lit(default_text, dtype=pl.Utf8), return_dtype=pl.Utf8
        )
    return lambda e: _text(e).replace(old, new)


@dataclass(frozen=True)
class _RuleDef:
    build: Callable[[_Args], ExprFn]
    arguments: tuple[str, ...] = ()


RULES: dict[str, _RuleDef] = {
    "upper": _RuleDef(_upper),
    "lower": _RuleDef(_lower),
    "title": _RuleDef(_title),
    "trim": _RuleDef(_trim),
    "substring": _RuleDef(_substring, ("start", "length")),
    "replace": _RuleDef(_replace, ("old", "new")),
    "regex_replace": _RuleDef(_regex_replace, ("pattern", "repl")),
    "remove_non_alphanumeric": _RuleDef(_remove_non_alphanumeric),
    "date_format": _RuleDef(_date_format, ("format",)),
    "decimal_format": _RuleDef(_decimal_format, ("places",)),
    "round": _RuleDef(_round, ("places",)),
    "regex_match": _RuleDef(_regex_match, ("pattern", "group")),
    "extract_from_date": _RuleDef(_extract_from_date, ("part",)),
    "unix_timestamp": _RuleDef(_unix_timestamp),
    "truncate": _RuleDef(_truncate, ("max_length",)),
    "field_lookup": _RuleDef(_field_lookup, ("values", "default")),
}
"""Every rule by name, with the arguments it accepts."""


def _evaluate(fn: ExprFn, value: Any) -> Any:
    series = pl.Series("v", [value], dtype=pl.Utf8 if value is None else None)
    return series.to_frame().select(fn(pl.col("v")))[0, 0]


@dataclass(frozen=True)
class Rule:
    """One validated rule: ``expr`` for columns, ``scalar`` for single values."""

    name: str
    args: Mapping[str, Any] = field(default_factory=dict, hash=False)
    _fn: ExprFn = field(default=lambda e: e, repr=False, compare=False, hash=False)

    def expr(self, column: pl.Expr) -> pl.Expr:
        return self._fn(column)

    def scalar(self, value: Any) -> Any:
        return _evaluate(self._fn, value)

    def to_spec(self) -> str | dict[str, Any]:
        """The YAML form this rule was parsed from (bare name when it has no arguments)."""
        return self.name if not self.args else {self.name: dict(self.args)}


def parse_rule(spec: Any) -> Rule:
    """Validate one rule given as a name or ``{name: {arg: value}}``."""
    if isinstance(spec, Rule):
        return spec
    if isinstance(spec, str):
        name, args = spec, {}
    elif isinstance(spec, Mapping) and len(spec) == 1:
        name, raw = next(iter(spec.items()))
        if raw is None:
            raw = {}
        if not isinstance(raw, Mapping):
            raise MappingError(
                f"transformation {name!r}: arguments must be a mapping such as "
                f"{{{name}: {{arg: value}}}}, got {raw!r}"
            )
        args = dict(raw)
    else:
        raise MappingError(
            f"transformation {spec!r} must be a rule name or a one-key mapping "
            f"{{name: {{arg: value}}}}; rules: {sorted(RULES)}"
        )
    definition = RULES.get(str(name))
    if definition is None:
        raise MappingError(f"unknown transformation {name!r}; valid rules: {sorted(RULES)}")
    fn = definition.build(_Args(str(name), args, definition.arguments))
    return Rule(name=str(name), args=args, _fn=fn)


@dataclass(frozen=True)
class TransformChain:
    """Rules applied in order; an empty chain passes values through unchanged."""

    rules: tuple[Rule, ...] = ()

    def expr(self, column: pl.Expr) -> pl.Expr:
        for rule in self.rules:
            column = rule.expr(column)
        return column

    def scalar(self, value: Any) -> Any:
        if not self.rules:
            return value
        return _evaluate(self.expr, value)

    def __bool__(self) -> bool:
        return bool(self.rules)


def parse_chain(specs: Sequence[Any] | None) -> TransformChain:
    """Validate a list of rule specs (see :func:`parse_rule`)."""
    return TransformChain(tuple(parse_rule(spec) for spec in specs or ()))
