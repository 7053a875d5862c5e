"""How Dataverse checks a written value: its conversion, length and option-set errors."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any, ClassVar

from ..odata.coercion import BRACED_GUID, ValueCoercer
from ..schema import Column, EntityDef
from ..store import normalize_datetime
from .common import CODE_BAD_OPTION, CODE_LENGTH, CODE_PAYLOAD, EDM_TYPES, DataverseError

ValidOptions = Callable[[EntityDef, Column], list[int]]


class DataverseCoercer(ValueCoercer):
    """Dataverse's checks of written values; ``valid_options`` lists a choice column's
    values (its own and those added with ``InsertOptionValue``)."""

    kinds: ClassVar[dict[str, str]] = {
        "string": "text", "memo": "text", "int": "integer", "bigint": "integer",
        "choice": "choice", "decimal": "number", "money": "number", "bool": "boolean",
        "datetime": "formatted", "date": "formatted", "guid": "formatted"}

    def __init__(self, valid_options: ValidOptions) -> None:
        self.valid_options = valid_options

    def type_error(self, entity: EntityDef, column: Column, value: Any) -> DataverseError:
        return DataverseError(
            400, CODE_PAYLOAD,
            f"Error identified in Payload provided by the user for Entity :"
            f"'{entity.entity_set}', For more information on this error please follow this "
            f"help link https://go.microsoft.com/fwlink/?linkid=2195293  ----> "
            f"InnerException : Microsoft.OData.ODataException: Cannot convert the literal "
            f"'{value}' to the expected type 'Edm.{EDM_TYPES[column.type]}'.")

    def length_error(self, entity: EntityDef, column: Column, value: str) -> DataverseError:
        return DataverseError(
            400, CODE_LENGTH,
            f"A validation error occurred.  The length of the '{column.name}' "
            f"attribute of the '{entity.name}' entity exceeded the maximum allowed "
            f"length of '{column.max_length}'.")

    def choice(self, entity: EntityDef, column: Column, value: Any) -> int:
        number = self.integer(entity, column, value)
        if column.choices and number in column.choices:
            return number
        valid = self.valid_options(entity, column)
        if number not in valid:
            raise DataverseError(
                400, CODE_BAD_OPTION,
                f"A validation error occurred.  The value {number} of '{column.name}' on "
                f"record of type '{entity.name}' is outside the valid range. Accepted "
                f"Values: {','.join(str(v) for v in valid)}")
        return number

    def formatted(self, entity: EntityDef, column: Column, value: Any) -> str | None:
        """A datetime, date or GUID column's value, sent as a string."""
        if not isinstance(value, str):
            raise self.type_error(entity, column, value)
        try:
            if column.type == "datetime":
                return normalize_datetime(value)
            if column.type == "date":
                return date.fromisoformat(value[:10]).isoformat()
            guid = BRACED_GUID.match(value)
            if guid is None:
                raise ValueError(value)
            return guid.group(1).lower()
        except ValueError:
            raise self.type_error(entity, column, value) from None
