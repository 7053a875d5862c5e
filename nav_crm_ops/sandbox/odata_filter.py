"""OData ``$filter`` / ``$orderby`` → SQLite ``WHERE`` / ``ORDER BY`` with bound parameters.

Both emulated services share this parser; a :class:`FilterDialect` captures where they differ
(Dataverse compares strings case-insensitively; Business Central rejects ``or`` across distinct
fields and only accepts ``in`` with ``$schemaversion=2.1``). Property names are mapped to SQL
columns by a resolver callback supplied by the service, so unknown names fail with that
service's message. Values are always bound as parameters, never interpolated.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from .store import format_timestamp

__all__ = [
    "BC_DIALECT",
    "DATAVERSE_DIALECT",
    "And",
    "Call",
    "Compare",
    "FilterColumn",
    "FilterDialect",
    "FilterError",
    "In",
    "Literal",
    "Node",
    "Not",
    "Or",
    "Property",
    "RangeIndex",
    "compile_filter",
    "parse_filter",
    "parse_orderby",
    "to_sql",
]

OR_ACROSS_FIELDS_MESSAGE = "The 'OR' operator is not supported on distinct fields on an OData filter."


class FilterError(Exception):
    """The filter text is invalid or names something unknown; the API answers 400 with it."""


@dataclass(frozen=True)
class FilterDialect:
    case_insensitive_strings: bool = False
    reject_or_across_fields: bool = False
    allow_in: bool = True


DATAVERSE_DIALECT = FilterDialect(case_insensitive_strings=True)
BC_DIALECT = FilterDialect(reject_or_across_fields=True, allow_in=False)


@dataclass(frozen=True)
class RangeIndex:
    """An indexed column that bounds a filter column from above: its value is at or above
    the filter column's (the column itself, or a datetime the filter sees rounded down).

    A lower bound on the filter column (``gt``, ``ge``, ``eq``) then implies the same bound on
    this column, which the translator adds so SQLite can read the index: without it an
    incremental read (``modifiedon ge <watermark>``, paged in key order) scanned every row
    of a table of a million for a few thousand. ``narrow(value)`` says whether few rows pass
    the bound; only then is it hinted as rare (the planner otherwise keeps the scan in key
    order, which is the cheaper plan when most rows pass, as a range read must sort).

    ``narrow(value, where_sql, params)`` also gets the whole filter as SQL (the bound
    included, unhinted): a change read that leaves out the reader's own writes
    (``modifiedon ge <watermark> and _modifiedby_value ne <us>``) after a first sync of a
    million finds none of them, although a million rows pass the bound alone."""

    sql: str
    narrow: Callable[[Any, str, list[Any]], bool]


@dataclass(frozen=True)
class FilterColumn:
    """What a resolver returns: the quoted SQL column and its schema type (``Column.type``);
    ``index``: see :class:`RangeIndex`.

    ``whole_seconds``: the stored datetime column when ``sql`` is it rounded down to whole
    seconds (Dataverse). A comparison with a literal is then written on the column itself,
    with the literal rounded to the second that gives the same rows (:func:`_whole_seconds`):
    a change read tested the rounding expression on every row it scanned."""

    sql: str
    type: str = "string"
    index: RangeIndex | None = None
    whole_seconds: str | None = None


Resolver = Callable[[str], FilterColumn]


# ---------------------------------------------------------------------------- AST
@dataclass(frozen=True)
class Literal:
    value: Any
    kind: str  # null, string, int, float, bool, datetime, date, guid


@dataclass(frozen=True)
class Property:
    name: str


@dataclass(frozen=True)
class Compare:
    op: str
    left: Node
    right: Node


@dataclass(frozen=True)
class In:
    operand: Node
    values: tuple[Literal, ...]


@dataclass(frozen=True)
class Call:
    name: str
    args: tuple[Node, ...]


@dataclass(frozen=True)
class And:
    left: Node
    right: Node


@dataclass(frozen=True)
class Or:
    left: Node
    right: Node


@dataclass(frozen=True)
class Not:
    operand: Node


Node = Literal | Property | Compare | In | Call | And | Or | Not

COMPARISONS = {"eq": "=", "ne": "<>", "gt": ">", "ge": ">=", "lt": "<", "le": "<="}
_FLIPPED = {"eq": "eq", "ne": "ne", "gt": "lt", "ge": "le", "lt": "gt", "le": "ge"}
FUNCTIONS = ("contains", "startswith", "endswith")

# ---------------------------------------------------------------------------- lexer
_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<string>'(?:[^']|'')*')
  | (?P<guid>[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}(?![\w-]))
  | (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,7})?)?(?:Z|[+-]\d{2}:\d{2})?)
  | (?P<date>\d{4}-\d{2}-\d{2}(?![\w:]))
  | (?P<number>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?[mMdDlLfF]?(?![\w]))
  | (?P<lparen>\()
  | (?P<rparen>\))
  | (?P<comma>,)
  | (?P<word>[A-Za-z_][\w./]*)
    """,
    re.VERBOSE,
)


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str
    pos: int


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            if text[pos] == "'":
                raise FilterError(f"Unterminated string literal at position {pos} in $filter "
                                  "(a quote inside a string is written twice: 'O''Bryan').")
            raise FilterError(f"Syntax error at position {pos} in $filter: unexpected "
                              f"'{text[pos:pos + 10]}'.")
        kind = match.lastgroup or ""
        if kind != "ws":
            tokens.append(_Token(kind, match.group(), pos))
        pos = match.end()
    return tokens


# ---------------------------------------------------------------------------- parser
class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.index = 0

    def peek(self) -> _Token | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def peek_word(self) -> str | None:
        token = self.peek()
        return token.text.lower() if token is not None and token.kind == "word" else None

    def take(self, kind: str | None = None) -> _Token:
        token = self.peek()
        if token is None:
            raise FilterError(f"Syntax error in $filter: unexpected end of '{self.text}'.")
        if kind is not None and token.kind != kind:
            raise FilterError(f"Syntax error at position {token.pos} in $filter: expected "
                              f"{kind}, found '{token.text}'.")
        self.index += 1
        return token

    def parse(self) -> Node:
        if not self.tokens:
            raise FilterError("The $filter expression is empty.")
        node = self.parse_or()
        token = self.peek()
        if token is not None:
            raise FilterError(f"Syntax error at position {token.pos} in $filter: unexpected "
                              f"'{token.text}'.")
        return node

    def parse_or(self) -> Node:
        node = self.parse_and()
        while self.peek_word() == "or":
            self.take()
            node = Or(node, self.parse_and())
        return node

    def parse_and(self) -> Node:
        node = self.parse_not()
        while self.peek_word() == "and":
            self.take()
            node = And(node, self.parse_not())
        return node

    def parse_not(self) -> Node:
        if self.peek_word() == "not":
            self.take()
            return Not(self.parse_not())
        return self.parse_comparison()

    def parse_comparison(self) -> Node:
        left = self.parse_primary()
        word = self.peek_word()
        if word in COMPARISONS:
            self.take()
            return Compare(word, left, self.parse_primary())
        if word == "in":
            self.take()
            self.take("lparen")
            values: list[Literal] = []
            while True:
                value = self.parse_primary()
                if not isinstance(value, Literal):
                    raise FilterError("Only literal values are allowed inside 'in (...)'.")
                values.append(value)
                separator = self.take()
                if separator.kind == "rparen":
                    break
                if separator.kind != "comma":
                    raise FilterError(f"Syntax error at position {separator.pos} in $filter: "
                                      "expected ',' or ')' in the 'in' list.")
            return In(left, tuple(values))
        return left

    def parse_primary(self) -> Node:
        token = self.take()
        kind, text = token.kind, token.text
        if kind == "lparen":
            node = self.parse_or()
            self.take("rparen")
            return node
        if kind == "string":
            return Literal(text[1:-1].replace("''", "'"), "string")
        if kind == "guid":
            return Literal(text.lower(), "guid")
        if kind == "datetime":
            return Literal(_parse_datetime(text), "datetime")
        if kind == "date":
            return Literal(text, "date")
        if kind == "number":
            return _number(text)
        if kind == "word":
            lower = text.lower()
            if lower == "null":
                return Literal(None, "null")
            if lower in ("true", "false"):
                return Literal(lower == "true", "bool")
            following = self.peek()
            if following is not None and following.kind == "lparen":
                return self.parse_call(text)
            if lower in COMPARISONS or lower in ("and", "or", "not", "in"):
                raise FilterError(f"Syntax error at position {token.pos} in $filter: "
                                  f"operator '{text}' needs an operand before it.")
            return Property(text)
        raise FilterError(f"Syntax error at position {token.pos} in $filter: unexpected "
                          f"'{text}'.")

    def parse_call(self, name: str) -> Node:
        lower = name.lower()
        if lower == "guid":
            self.take("lparen")
            raw = self.take()
            self.take("rparen")
            return Literal(raw.text.strip("'").lower(), "guid")
        if lower not in FUNCTIONS:
            raise FilterError(f"The function '{name}' is not supported in $filter; use one of "
                              f"{', '.join(FUNCTIONS)}.")
        self.take("lparen")
        args: list[Node] = [self.parse_or()]
        while (following := self.peek()) is not None and following.kind == "comma":
            self.take()
            args.append(self.parse_or())
        self.take("rparen")
        if len(args) != 2:
            raise FilterError(f"The function '{name}' takes 2 arguments, got {len(args)}.")
        return Call(lower, tuple(args))


def _number(text: str) -> Literal:
    body = text.rstrip("mMdDlLfF")
    if re.fullmatch(r"-?\d+", body):
        return Literal(int(body), "int")
    return Literal(float(body), "float")


def _parse_datetime(text: str) -> str:
    value = text
    fraction = re.search(r"\.(\d+)", value)
    if fraction and len(fraction.group(1)) > 6:
        value = value.replace(fraction.group(0), "." + fraction.group(1)[:6])
    if not re.search(r"(Z|[+-]\d{2}:\d{2})$", value):
        value += "Z"
    try:
        return format_timestamp(datetime.fromisoformat(value))
    except ValueError as exc:
        raise FilterError(f"'{text}' is not a valid datetime literal in $filter.") from exc


def parse_filter(text: str) -> Node:
    """Parse ``$filter`` text into an AST (raises :class:`FilterError`)."""
    return _Parser(text).parse()


# ---------------------------------------------------------------------------- SQL
def _properties(node: Node) -> set[str]:
    if isinstance(node, Property):
        return {node.name}
    if isinstance(node, Compare | And | Or):
        return _properties(node.left) | _properties(node.right)
    if isinstance(node, Not):
        return _properties(node.operand)
    if isinstance(node, In):
        return _properties(node.operand)
    if isinstance(node, Call):
        found: set[str] = set()
        for arg in node.args:
            found |= _properties(arg)
        return found
    return set()


def _datetime_value(value: Any, kind: str) -> Any:
    """A literal compared with a datetime property, as the store keeps datetimes."""
    if kind == "date":
        return format_timestamp(datetime.fromisoformat(f"{value}T00:00:00+00:00"))
    if kind == "string":
        try:
            return _parse_datetime(str(value))
        except FilterError:
            raise FilterError(f"'{value}' is not a valid datetime.") from None
    if kind != "datetime":
        raise FilterError(f"A datetime is required to compare with this property, "
                          f"got '{value}'.")
    return value


def _date_value(value: Any, kind: str) -> str:
    """A literal compared with a date property (``YYYY-MM-DD``)."""
    if kind == "datetime":
        return str(value)[:10]
    if kind in ("date", "string"):
        try:
            return date.fromisoformat(str(value)).isoformat()
        except ValueError:
            raise FilterError(f"'{value}' is not a valid date.") from None
    raise FilterError(f"A date is required to compare with this property, got "
                      f"'{value}'.")


def _chain(node: Node, kind: type) -> list[Node]:
    """The operands of a run of one boolean operator, flattened: SQLite's parser overflows on
    the deep nesting a long ``a or b or c ...`` (id lists) would otherwise produce."""
    out: list[Node] = []
    stack: list[Node] = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, (And, Or)) and isinstance(current, kind):
            stack.append(current.right)
            stack.append(current.left)
        else:
            out.append(current)
    return out


def _whole_seconds(column: str, op: str, value: Any) -> tuple[str, list[str]] | None:
    """``floor_to_second(column) <op> value`` on ``column`` itself, for a column of stored
    datetimes (``YYYY-MM-DDTHH:MM:SS.mmmZ``, text order = time order, or NULL), as SQL and
    its parameters; None to keep the rounding expression (``ne``, an ``eq`` that no whole
    second can meet, a value not in the stored form). With ``S`` the value's second and
    ``S+1`` the next: ``gt`` → column >= S+1; ``ge`` → column >= S (S+1 when the value has
    milliseconds); ``lt`` → column < S (likewise); ``le`` → column < S+1; ``eq`` → S <= column
    < S+1. NULL stays NULL in each, so ``not`` keeps its rows too."""
    if not (isinstance(value, str) and len(value) == 24 and value[19] == "."
            and value[23] == "Z") or op not in ("gt", "ge", "lt", "le", "eq"):
        return None
    second = value[:19] + ".000Z"
    whole = value == second
    try:
        following = format_timestamp(datetime.fromisoformat(second) + timedelta(seconds=1))
    except (ValueError, OverflowError):
        return None
    ceiling = second if whole else following
    if op == "eq":
        return (f"({column} >= ? AND {column} < ?)", [second, following]) if whole else None
    bound = {"gt": following, "ge": ceiling, "lt": ceiling, "le": following}[op]
    return f"({column} {'>=' if op in ('gt', 'ge') else '<'} ?)", [bound]


_HINT = re.compile("\x01(\\d+)\x02(.*?)\x03")
"""An index bound whose hint waits for the whole filter (:meth:`_Translator.with_hints`)."""


class _Translator:
    def __init__(self, resolver: Resolver, dialect: FilterDialect) -> None:
        self.resolver = resolver
        self.dialect = dialect
        self.params: list[Any] = []
        self.hints: list[tuple[RangeIndex, Any]] = []

    def bind(self, value: Any) -> str:
        self.params.append(value)
        return "?"

    def node(self, node: Node) -> str:
        if isinstance(node, And):
            return "(" + " AND ".join(self.node(n) for n in _chain(node, And)) + ")"
        if isinstance(node, Or):
            if self.dialect.reject_or_across_fields and len(_properties(node)) > 1:
                raise FilterError(OR_ACROSS_FIELDS_MESSAGE)
            return "(" + " OR ".join(self.node(n) for n in _chain(node, Or)) + ")"
        if isinstance(node, Not):
            return f"(NOT {self.node(node.operand)})"
        if isinstance(node, Compare):
            return self.compare(node)
        if isinstance(node, In):
            return self.in_list(node)
        if isinstance(node, Call):
            return self.call(node)
        return self.bare(node)

    def bare(self, node: Node) -> str:
        """A value standing alone as a condition: ``true``/``false`` or a boolean property."""
        if isinstance(node, Literal) and node.kind == "bool":
            return "1" if node.value else "0"
        if isinstance(node, Property):
            column = self.resolver(node.name)
            if column.type == "bool":
                return f"({column.sql} = 1)"
        raise FilterError("A $filter expression must be a condition (for example "
                          "\"name eq 'x'\"), not a bare value.")

    def collate(self, column: FilterColumn) -> str:
        if self.dialect.case_insensitive_strings and column.type in ("string", "memo", "option"):
            return " COLLATE NOCASE"
        return ""

    def value(self, column: FilterColumn, literal: Literal) -> Any:
        value, kind = literal.value, literal.kind
        if column.type in ("guid", "lookup"):
            if kind not in ("guid", "string"):
                raise FilterError(f"A GUID is required to compare with this property, got "
                                  f"'{value}'.")
            return str(value).lower()
        if column.type == "bool":
            if kind != "bool":
                raise FilterError(f"A boolean (true/false) is required, got '{value}'.")
            return 1 if value else 0
        if column.type == "datetime":
            return _datetime_value(value, kind)
        if column.type == "date":
            return _date_value(value, kind)
        if column.type in ("int", "bigint", "choice", "decimal", "money"):
            if kind not in ("int", "float"):
                raise FilterError(f"A number is required to compare with this property, got "
                                  f"'{value}'.")
            return value
        return value

    def compare(self, node: Compare) -> str:
        op, left, right = node.op, node.left, node.right
        if isinstance(left, Call) and isinstance(right, Literal) and right.kind == "bool":
            sql = self.call(left)
            return sql if (op == "eq") == bool(right.value) else f"(NOT {sql})"
        if isinstance(left, Literal) and isinstance(right, Property):
            left, right, op = right, left, _FLIPPED[op]
        if not (isinstance(left, Property) and isinstance(right, Literal)):
            raise FilterError("Each comparison in $filter must compare a property with a "
                              "literal value (for example \"name eq 'Contoso'\").")
        column = self.resolver(left.name)
        if right.kind == "null":
            if op == "eq":
                return f"({column.sql} IS NULL)"
            if op == "ne":
                return f"({column.sql} IS NOT NULL)"
            raise FilterError(f"The operator '{op}' cannot be used with null.")
        value = self.value(column, right)
        rewritten = (_whole_seconds(column.whole_seconds, op, value)
                     if column.whole_seconds else None)
        if rewritten is not None:
            self.params.extend(rewritten[1])
            return self.lower_bound(column, op, value, rewritten[0])
        param = self.bind(value)
        collate = self.collate(column)
        if op == "ne":
            return f"({column.sql} IS NOT {param}{collate})"
        return self.lower_bound(column, op, value,
                                f"({column.sql} {COMPARISONS[op]} {param}{collate})")

    def lower_bound(self, column: FilterColumn, op: str, value: Any, sql: str) -> str:
        """``sql`` and-ed with the bound it implies on ``column.index`` (the same rows, as the
        index column is at or above the filter column), hinted when few rows pass it."""
        index = column.index
        if index is None or op not in ("gt", "ge", "eq"):
            return sql
        bound = f"{index.sql} {'>' if op == 'gt' else '>='} {self.bind(value)}"
        self.hints.append((index, value))
        # decided once the whole filter is known (:meth:`with_hints`)
        return f"({sql} AND \x01{len(self.hints) - 1}\x02{bound}\x03)"

    def with_hints(self, sql: str) -> str:
        """``sql`` with each index bound hinted as rare when its index says few rows pass
        the whole filter. Rare enough that a page after the first (``key > <last>``) still
        reads this index rather than the key's (``unlikely``, 1 in 16, did not tip it)."""
        if not self.hints:
            return sql
        plain = _HINT.sub(lambda m: m.group(2), sql)

        def hinted(match: re.Match[str]) -> str:
            index, value = self.hints[int(match.group(1))]
            bound = match.group(2)
            if index.narrow(value, plain, list(self.params)):
                return f"likelihood({bound}, 0.001)"
            return bound
        return _HINT.sub(hinted, sql)

    def in_list(self, node: In) -> str:
        if not self.dialect.allow_in:
            raise FilterError("The 'in' operator is not supported in this API version; "
                              "add $schemaversion=2.1 to the request or use 'eq' with 'or'.")
        if not isinstance(node.operand, Property):
            raise FilterError("The left side of 'in' must be a property.")
        column = self.resolver(node.operand.name)
        if not node.values:
            return "(0)"
        placeholders = ", ".join(self.bind(self.value(column, v)) for v in node.values
                                 if v.kind != "null")
        has_null = any(v.kind == "null" for v in node.values)
        parts = []
        if placeholders:
            parts.append(f"{column.sql}{self.collate(column)} IN ({placeholders})")
        if has_null:
            parts.append(f"{column.sql} IS NULL")
        return "(" + " OR ".join(parts) + ")"

    def call(self, node: Call) -> str:
        target, pattern = node.args
        if not isinstance(target, Property) or not isinstance(pattern, Literal) \
                or pattern.kind != "string":
            raise FilterError(f"{node.name}() takes a property and a string literal, for "
                              f"example {node.name}(name,'abc').")
        column = self.resolver(target.name)
        text = str(pattern.value)
        escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        like = {"contains": f"%{escaped}%", "startswith": f"{escaped}%",
                "endswith": f"%{escaped}"}[node.name]
        sql = f"({column.sql} LIKE {self.bind(like)} ESCAPE '\\')"
        if self.dialect.case_insensitive_strings:
            return sql
        # SQLite's LIKE ignores ASCII case; add an exact check for case-sensitive services.
        if node.name == "contains":
            check = f"instr({column.sql}, {self.bind(text)}) > 0"
        elif node.name == "startswith":
            check = f"substr({column.sql}, 1, {len(text)}) = {self.bind(text)}"
        else:
            check = f"substr({column.sql}, -{len(text)}) = {self.bind(text)}" if text else "1"
        return f"({sql[1:-1]} AND {check})"


def to_sql(node: Node, resolver: Resolver,
           dialect: FilterDialect = DATAVERSE_DIALECT) -> tuple[str, list[Any]]:
    """Translate a parsed filter into ``(where_sql, params)``."""
    translator = _Translator(resolver, dialect)
    return translator.with_hints(translator.node(node)), translator.params


def compile_filter(text: str, resolver: Resolver,
                   dialect: FilterDialect = DATAVERSE_DIALECT) -> tuple[str, list[Any]]:
    """``$filter`` text → ``(where_sql, params)``; raises :class:`FilterError`."""
    return to_sql(parse_filter(text), resolver, dialect)


def parse_orderby(text: str) -> list[tuple[str, bool]]:
    """``$orderby`` text → ``[(property, descending), ...]``."""
    result: list[tuple[str, bool]] = []
    for item in text.split(","):
        parts = item.split()
        if not parts or len(parts) > 2:
            raise FilterError(f"Invalid $orderby item '{item.strip()}': use 'property' or "
                              "'property asc|desc'.")
        direction = parts[1].lower() if len(parts) == 2 else "asc"
        if direction not in ("asc", "desc"):
            raise FilterError(f"Invalid $orderby direction '{parts[1]}': use asc or desc.")
        if not re.fullmatch(r"[A-Za-z_][\w]*", parts[0]):
            raise FilterError(f"Invalid $orderby property '{parts[0]}'.")
        result.append((parts[0], direction == "desc"))
    return result
