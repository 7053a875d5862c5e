"""Building blocks every mapping spec shares: the valid choices, the frozen base model and
the value checks whose messages name the culprit.

Why a module of its own: the specs of a mapping's parts (:mod:`.specs`) and the table mapping
(:mod:`.table`) validate with the same rules, and a filter check or a choice list spelled
twice would drift apart.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from ...connectors.odata import check_raw_filter
from ...exceptions import ConfigError

__all__ = [
    "DELETION_CONFLICTS",
    "DIRECTIONS",
    "FIELD_KINDS",
    "MAX_FILTER_CHARS",
    "UPDATE_CONFLICTS",
    "Direction",
    "Frozen",
    "checked_filter",
    "choice",
    "not_blank",
]

Direction = Literal["to_crm", "from_crm", "bidirectional"]
DIRECTIONS: tuple[str, ...] = ("to_crm", "from_crm", "bidirectional")
UPDATE_CONFLICTS: tuple[str, ...] = ("none", "nav_wins", "crm_wins")
DELETION_CONFLICTS: tuple[str, ...] = ("none", "remove_coupling", "restore")
FIELD_KINDS: tuple[str, ...] = ("text", "number", "bool", "datetime", "id")


class Frozen(BaseModel):
    """Specs are values: immutable (safe to cache and share between runs) and strict about
    unknown keys, so a misspelt YAML key is an error instead of a silently ignored setting."""

    model_config = ConfigDict(frozen=True, extra="forbid")


def choice(value: Any, choices: Sequence[str], what: str) -> str:
    """``value`` if it is one of ``choices``; else an error naming ``what`` and the choices."""
    if value not in choices:
        raise ValueError(f"{what} {value!r} is not one of {list(choices)}")
    return str(value)


def not_blank(value: str, what: str) -> str:
    """``value`` unless it is empty or blank, which no name or column may be."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{what} must not be empty")
    return value


MAX_FILTER_CHARS = 2_000
"""Longest table filter a mapping may hold: the engine adds modified-on and id conditions to
it and the services refuse URLs much longer than a few thousand characters."""


def checked_filter(value: str) -> str:
    """A table filter must at least be well-formed OData (quotes, parentheses, no ``&``/``#``)
    and at most :data:`MAX_FILTER_CHARS` long; the service checks field names when the mapping
    first reads."""
    if len(value) > MAX_FILTER_CHARS:
        raise ValueError(
            f"the filter is {len(value):,} characters long; the limit is {MAX_FILTER_CHARS:,} "
            "(the services refuse longer URLs): shorten it, e.g. a range instead of a list of "
            "values, or split the records over two mappings")
    if value and value.strip():
        try:
            check_raw_filter(value)
        except ConfigError as exc:
            raise ValueError(str(exc)) from None
    return value

