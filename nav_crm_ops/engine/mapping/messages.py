"""Error messages that name the mapping, the field and what to write instead.

Why: a person edits mappings as YAML; pydantic's own messages point at list indexes
(``fields.3.direction``) and a value's Python type, so they are rewritten here to name the
mapping and the field as the YAML spells them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import ValidationError as PydanticValidationError
from pydantic_core import ErrorDetails

__all__ = ["pydantic_message", "shown"]


def pydantic_message(exc: PydanticValidationError, entry: Mapping[str, Any], origin: str) -> str:
    """Pydantic's errors rewritten to name the mapping, the field and the valid choices."""
    name = entry.get("name") or "<unnamed>"
    raw_fields = entry.get("fields") or []
    parts = [_error_text(err, name, raw_fields) for err in exc.errors()]
    return f"{origin}: " + "; ".join(parts)


def _error_text(err: ErrorDetails, name: str, raw_fields: Sequence[Any]) -> str:
    """One error as ``mapping M, field F: path: message`` (a message of our own validators
    that already names the mapping is kept as it is)."""
    loc = list(err["loc"])
    msg = str(err["msg"]).removeprefix("Value error, ")
    if err["type"] == "bool_type":
        msg += " (write true or false, without quotes)"
    if msg.startswith("mapping "):
        return msg
    where = f"mapping {name}"
    if len(loc) >= 2 and loc[0] == "fields" and isinstance(loc[1], int):
        where += f", field {_field_label(raw_fields, loc[1])}"
        loc = loc[2:]
    path = ".".join(str(p) for p in loc)
    return f"{where}: {path + ': ' if path else ''}{msg}"


def _field_label(raw_fields: Sequence[Any], index: int) -> str:
    """How the YAML names field ``index``: its ``name``, else its CRM field, else ``#n``."""
    raw = raw_fields[index] if index < len(raw_fields) else {}
    label = (raw.get("name") or raw.get("crm")) if isinstance(raw, dict) else None
    return str(label or "#" + str(index + 1))


def shown(value: Any, limit: int = 60) -> str:
    """``value`` as a message quotes it: its repr, cut to ``limit`` characters."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."
