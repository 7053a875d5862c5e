"""Entity definitions shared by the emulated services.

Each service module declares its entities with these dataclasses; the store creates one SQLite
table per entity from them, and the API layers validate writes against them (lengths, required
columns, choices/options, lookups) the way the real services do.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

ColumnType = Literal[
    "guid", "string", "memo", "int", "bigint", "decimal", "money", "bool", "datetime", "date",
    "choice", "lookup", "option", "json",
]
Service = Literal["dataverse", "business_central"]


@dataclass(frozen=True)
class Column:
    """One column/field of an entity.

    ``choices`` (Dataverse choice columns): integer value → label.
    ``options`` (Business Central enum fields): the allowed option strings.
    ``lookup_targets`` (Dataverse lookups): logical names of the entities the lookup may point
    to; ``navigation`` is the single-valued navigation property used with ``@odata.bind``
    (for polymorphic lookups, ``<navigation>_<target>``).
    """

    name: str
    type: ColumnType = "string"
    max_length: int | None = None
    required: bool = False
    read_only: bool = False
    choices: Mapping[int, str] | None = None
    options: tuple[str, ...] | None = None
    lookup_targets: tuple[str, ...] = ()
    navigation: str | None = None
    default: Any = None


@dataclass(frozen=True)
class EntityDef:
    """An entity (table) of one service."""

    service: Service
    name: str
    entity_set: str
    key: str
    columns: tuple[Column, ...]
    modified_column: str
    created_column: str | None = None
    version_column: str | None = None
    change_tracking: bool = False
    parent: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def column(self, name: str) -> Column | None:
        return self._by_column_name.get(name)

    @cached_property
    def _by_column_name(self) -> dict[str, Column]:
        """Name → column (the first of that name), found once: every written field and
        selected column of every request looked its column up in the tuple."""
        found: dict[str, Column] = {}
        for col in self.columns:
            found.setdefault(col.name, col)
        return found

    @cached_property
    def required_columns(self) -> tuple[Column, ...]:
        """The columns a write must give a value (required and not read-only), in order."""
        return tuple(c for c in self.columns if c.required and not c.read_only)

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)
