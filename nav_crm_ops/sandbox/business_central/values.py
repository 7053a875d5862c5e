"""How Business Central checks a written value and answers a blank one."""

from __future__ import annotations

from datetime import date
from typing import Any, ClassVar

from ..odata.coercion import GUID, ValueCoercer, is_number
from ..schema import Column, EntityDef
from .common import EMPTY_GUID, BCError

_EDM = {"string": "Edm.String", "option": "Edm.String", "decimal": "Edm.Decimal",
        "int": "Edm.Int32", "bool": "Edm.Boolean", "date": "Edm.Date", "guid": "Edm.Guid"}
_BLANK: dict[str, Any] = {
    "string": "", "memo": "", "option": "", "guid": EMPTY_GUID, "lookup": EMPTY_GUID,
    "decimal": 0, "money": 0, "int": 0, "bigint": 0, "bool": False, "date": "0001-01-01",
    "datetime": "0001-01-01T00:00:00Z"}


def wire_value(column: Column, value: Any) -> Any:
    """BC never answers null for these types: blank strings, empty GUIDs, zero, 0001-01-01."""
    if value is not None:
        return value
    return _BLANK.get(column.type)


def _edm(column: Column) -> str:
    return _EDM.get(column.type, "Edm.String")


class BCCoercer(ValueCoercer):
    """Business Central's checks of written values."""

    kinds: ClassVar[dict[str, str]] = {
        "string": "text", "memo": "text", "option": "option", "bool": "boolean",
        "decimal": "number", "money": "number", "int": "number", "bigint": "number",
        "date": "day", "guid": "guid"}

    def null(self, entity: EntityDef, column: Column) -> Any:
        if column.type in ("string", "option"):
            return ""
        raise BCError(400, "BadRequest", f"Cannot convert a null value for property "
                                         f"'{column.name}' to the expected type "
                                         f"'{_edm(column)}'.")

    def type_error(self, entity: EntityDef, column: Column, value: Any) -> BCError:
        return BCError(400, "BadRequest", f"Cannot convert the literal '{value}' to the "
                                          f"expected type '{_edm(column)}'.")

    def length_error(self, entity: EntityDef, column: Column, value: str) -> BCError:
        return BCError(400, "Application_StringExceededLength",
                       f"The length of the string is {len(value)}, but it must be less than "
                       f"or equal to {column.max_length} characters. Value: {value}")

    def option(self, entity: EntityDef, column: Column, value: Any) -> str:
        options = column.options or ()
        text = str(value)
        for option in options:
            if option.lower() == text.lower() or (option == " " and text == ""):
                return option
        raise BCError(400, "Application_EvaluateException",
                      f"'{text}' is not an option. The existing options are: "
                      f"{','.join(options)}")

    def number(self, entity: EntityDef, column: Column, value: Any) -> int | float:
        whole = column.type in ("int", "bigint")
        if not is_number(value) or (whole and not float(value).is_integer()):
            raise self.type_error(entity, column, value)
        return int(value) if whole else float(value)

    def day(self, entity: EntityDef, column: Column, value: Any) -> str | None:
        text = str(value)
        if text in ("", "0001-01-01"):
            return None
        try:
            return date.fromisoformat(text[:10]).isoformat()
        except ValueError:
            raise self.type_error(entity, column, text) from None

    def guid(self, entity: EntityDef, column: Column, value: Any) -> str:
        text = str(value)
        if not GUID.match(text):
            raise BCError(400, "Application_InvalidGUID",
                          f"Invalid GUID string format: '{text}' for field '{column.name}'.")
        return text.lower()


coerce_value = BCCoercer().coerce
