"""OData query building: typed literals and composable filters, never string concatenation."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from ..exceptions import ConfigError

__all__ = [
    "BoolFilter",
    "Comparison",
    "F",
    "Filter",
    "NotFilter",
    "ODataQuery",
    "RawFilter",
    "all_of",
    "any_of",
    "field_name",
    "literal",
]

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(/[A-Za-z_][A-Za-z0-9_]*)*$")


def field_name(name: str) -> str:
    """Validate an OData property path so it can be written into a query unquoted."""
    if not _IDENT.match(name):
        raise ConfigError(f"'{name}' is not a valid OData field name (letters, digits, _ and /)")
    return name


def literal(value: Any) -> str:
    """Render a Python value as an OData literal (strings quoted, quotes doubled)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=UTC)
        text = aware.astimezone(UTC).isoformat(timespec="milliseconds")
        return text.replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Guid):
        return value.value
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    raise TypeError(f"cannot write {type(value).__name__} as an OData literal")


@dataclass(frozen=True)
class Guid:
    """A GUID literal (written bare); validated on construction."""

    value: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "value", str(uuid.UUID(self.value)))


class Filter:
    """A filter expression; combine with ``&``, ``|`` and ``~``."""

    def render(self) -> str:
        raise NotImplementedError

    def __and__(self, other: Filter) -> Filter:
        return BoolFilter("and", (self, other))

    def __or__(self, other: Filter) -> Filter:
        return BoolFilter("or", (self, other))

    def __invert__(self) -> Filter:
        return NotFilter(self)

    def __str__(self) -> str:
        return self.render()


@dataclass(frozen=True)
class Comparison(Filter):
    """``name op value`` (``eq``, ``ne``, ``gt``, ``ge``, ``lt``, ``le``)."""

    op: str
    name: str
    value: Any

    def render(self) -> str:
        return f"{field_name(self.name)} {self.op} {literal(self.value)}"


@dataclass(frozen=True)
class _Func(Filter):
    func: str
    name: str
    value: str

    def render(self) -> str:
        return f"{self.func}({field_name(self.name)},{literal(str(self.value))})"


@dataclass(frozen=True)
class BoolFilter(Filter):
    """``parts`` joined by ``and`` / ``or``."""

    op: str
    parts: tuple[Filter, ...]

    def render(self) -> str:
        return f" {self.op} ".join(
            f"({p.render()})" if (isinstance(p, BoolFilter) and p.op != self.op)
            or (isinstance(p, RawFilter) and len(self.parts) > 1) else p.render()
            for p in self.parts)


@dataclass(frozen=True)
class NotFilter(Filter):
    """``not (part)``."""

    inner: Filter

    def render(self) -> str:
        return f"not ({self.inner.render()})"


@dataclass(frozen=True)
class RawFilter(Filter):
    """Filter text from configuration, passed through after a basic syntax check."""

    text: str

    def __post_init__(self) -> None:
        check_raw_filter(self.text)

    def render(self) -> str:
        return self.text


def check_raw_filter(text: str) -> None:
    """Reject filter text with unbalanced quotes/parentheses or control characters."""
    depth = 0
    in_string = False
    for ch in text:
        if ch == "'":
            in_string = not in_string
        elif not in_string:
            if ch == "(":
                depth += 1
            elif ch == ")":
                depth -= 1
                if depth < 0:
                    break
            elif ch in "\r\n\t\x00&#":
                depth = -1
                break
    if in_string or depth != 0 or not text.strip():
        raise ConfigError(f"filter {text!r} is not valid OData: check quotes ('' inside strings), "
                          "parentheses and that it contains no '&' or '#'")


class F:
    """Field reference: ``F("name").eq("O'Bryan") & F("revenue").gt(10)``."""

    def __init__(self, name: str) -> None:
        self.name = field_name(name)

    def eq(self, v: Any) -> Filter:
        return Comparison("eq", self.name, v)

    def ne(self, v: Any) -> Filter:
        return Comparison("ne", self.name, v)

    def gt(self, v: Any) -> Filter:
        return Comparison("gt", self.name, v)

    def ge(self, v: Any) -> Filter:
        return Comparison("ge", self.name, v)

    def lt(self, v: Any) -> Filter:
        return Comparison("lt", self.name, v)

    def le(self, v: Any) -> Filter:
        return Comparison("le", self.name, v)

    def contains(self, v: str) -> Filter:
        return _Func("contains", self.name, v)

    def startswith(self, v: str) -> Filter:
        return _Func("startswith", self.name, v)

    def endswith(self, v: str) -> Filter:
        return _Func("endswith", self.name, v)

    def is_in(self, values: Iterable[Any]) -> Filter:
        """``name eq a or name eq b`` (same field, so accepted by BC too)."""
        parts = tuple(self.eq(v) for v in values)
        if not parts:
            raise ValueError("is_in needs at least one value")
        return parts[0] if len(parts) == 1 else BoolFilter("or", parts)


def any_of(filters: Sequence[Filter | None]) -> Filter | None:
    present = tuple(f for f in filters if f is not None)
    if not present:
        return None
    return present[0] if len(present) == 1 else BoolFilter("or", present)


def all_of(filters: Sequence[Filter | None]) -> Filter | None:
    present = tuple(f for f in filters if f is not None)
    if not present:
        return None
    return present[0] if len(present) == 1 else BoolFilter("and", present)


@dataclass(frozen=True)
class ODataQuery:
    """Query options for one entity set; :meth:`params` gives httpx query parameters."""

    select: tuple[str, ...] = ()
    filter: Filter | None = None
    orderby: tuple[str, ...] = ()
    top: int | None = None
    count: bool = False
    expand: tuple[str, ...] = field(default=())

    def params(self) -> dict[str, str]:
        """Query parameters; httpx percent-encodes them (``+`` becomes ``%2B``)."""
        out: dict[str, str] = {}
        if self.select:
            out["$select"] = ",".join(field_name(s) for s in self.select)
        if self.filter is not None:
            out["$filter"] = self.filter.render()
        if self.orderby:
            for item in self.orderby:
                name, _, direction = item.partition(" ")
                field_name(name)
                if direction not in ("", "asc", "desc"):
                    raise ConfigError(f"orderby '{item}': direction must be asc or desc")
            out["$orderby"] = ",".join(self.orderby)
        if self.top is not None:
            out["$top"] = str(int(self.top))
        if self.count:
            out["$count"] = "true"
        if self.expand:
            out["$expand"] = ",".join(field_name(e) for e in self.expand)
        return out


def as_filter(value: Filter | str | None) -> Filter | None:
    """Accept a built filter or raw config text."""
    if value is None or isinstance(value, Filter):
        return value
    return RawFilter(value)


_SAFE = "$,()'/:*@=;!"


def encode_query(params: dict[str, str]) -> str:
    """Percent-encode query options; keeps ``$``, quotes and parentheses readable, encodes
    ``+``, ``&``, ``#``, ``%`` and spaces so the service sees exactly the built text."""
    from urllib.parse import quote

    return "&".join(f"{quote(k, safe='$')}={quote(v, safe=_SAFE)}" for k, v in params.items())
