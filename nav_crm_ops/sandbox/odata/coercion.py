"""Checking one written value against its column's type, shared by both services.

:class:`ValueCoercer` dispatches on the column type to one method per kind; a service
subclass picks which kinds it accepts (``kinds``) and words the errors (``type_error``,
``length_error``)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, ClassVar

from ..schema import Column, EntityDef

GUID_TEXT = (r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
             r"[0-9a-fA-F]{12}")
GUID = re.compile(rf"^{GUID_TEXT}$")
BRACED_GUID = re.compile(rf"^\{{?({GUID_TEXT})\}}?$")
"""A GUID, optionally in braces (Dataverse keys); group 1 is the bare GUID."""


def is_integer(value: Any) -> bool:
    """A JSON integer (``true``/``false`` are not numbers)."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    """A JSON number (``true``/``false`` are not numbers)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


class ValueCoercer:
    """Validate a written value the way a service does; returns the value to store."""

    kinds: ClassVar[Mapping[str, str]] = {}
    """Column type → name of the method that checks it; other types pass unchanged."""

    def coerce(self, entity: EntityDef, column: Column, value: Any) -> Any:
        if value is None:
            return self.null(entity, column)
        method = self.kinds.get(column.type)
        if method is None:
            return value
        return getattr(self, method)(entity, column, value)

    # ------------------------------------------------------------- hooks
    def null(self, entity: EntityDef, column: Column) -> Any:
        return None

    def type_error(self, entity: EntityDef, column: Column, value: Any) -> Exception:
        raise NotImplementedError

    def length_error(self, entity: EntityDef, column: Column, value: str) -> Exception:
        raise NotImplementedError

    # ------------------------------------------------------------- kinds
    def text(self, entity: EntityDef, column: Column, value: Any) -> str:
        if not isinstance(value, str):
            raise self.type_error(entity, column, value)
        if column.max_length is not None and len(value) > column.max_length:
            raise self.length_error(entity, column, value)
        return value

    def boolean(self, entity: EntityDef, column: Column, value: Any) -> bool:
        if not isinstance(value, bool):
            raise self.type_error(entity, column, value)
        return value

    def integer(self, entity: EntityDef, column: Column, value: Any) -> int:
        if not is_integer(value):
            raise self.type_error(entity, column, value)
        return int(value)

    def number(self, entity: EntityDef, column: Column, value: Any) -> Any:
        if not is_number(value):
            raise self.type_error(entity, column, value)
        return value
