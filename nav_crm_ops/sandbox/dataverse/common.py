"""Constants, errors and small helpers of the emulated Dataverse Web API."""

from __future__ import annotations

import fnmatch
import functools
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from ..odata.errors import ODataError
from ..odata.replies import Reply, dumps_compact
from ..schema import Column, EntityDef

log = logging.getLogger(__package__)

API_PATH = "/api/data/v9.2/"
MAX_PAGE_SIZE = 5000
MAX_COUNT = 5000
MAX_BATCH_REQUESTS = 1000
DELTA_TOKEN_LIFETIME = timedelta(days=7)
FORMATTED = "OData.Community.Display.V1.FormattedValue"
LOOKUP_LOGICAL_NAME = "Microsoft.Dynamics.CRM.lookuplogicalname"
ASSOCIATED_NAVIGATION = "Microsoft.Dynamics.CRM.associatednavigationproperty"
JSON_TYPE = "application/json; odata.metadata=minimal; odata.streaming=true; IEEE754Compatible=false"
CODE_NOT_FOUND = "0x80040217"
CODE_LENGTH = "0x80044331"
CODE_BAD_OPTION = "0x8004431A"
CODE_INVALID_ARGUMENT = "0x80040203"
CODE_ODATA = "0x80060888"
CODE_PAYLOAD = "0x80048d19"
CODE_DUPLICATE = "0x80040237"
CODE_DUPLICATE_FOUND = "0x80040333"
CODE_SEGMENT = "0x8006088a"
DUPLICATE_RULES: Mapping[str, tuple[str, ...]] = {"account": ("name",),
                                                  "contact": ("emailaddress1",)}
"""Stand-ins for Dataverse's default duplicate detection rules (the docs name the tables —
accounts, contacts, leads — not the columns; same name / same e-mail, case-insensitive).
They apply only to a request sending ``MSCRM.SuppressDuplicateDetection: false`` (*Detect
duplicate data using the Web API*)."""
_PREFERENCE = re.compile(r'(?:[^,"]|"[^"]*")+')
IMPERSONATED = "impersonating:"
"""Marks a caller that acts as another systemuser (``MSCRMCallerID``)."""
OWNER_COLUMN = "ownerid"
UNSUPPORTED_OPTIONS = ("$apply", "$search", "fetchXml")
KEY_FORBIDDEN_CHARACTERS = set("/<>*%&:\\?+")
EDM_TYPES = {"string": "String", "memo": "String", "int": "Int32", "bigint": "Int64",
             "decimal": "Decimal", "money": "Decimal", "bool": "Boolean",
             "datetime": "DateTimeOffset", "date": "Date", "choice": "Int32", "guid": "Guid",
             "json": "String", "option": "String", "lookup": "Guid"}


class DataverseError(ODataError):
    """An error answered in Dataverse's shape ``{"error":{"code","message"}}``."""


def json_reply(status: int, payload: Any, headers: dict[str, str] | None = None) -> Reply:
    merged = {"Content-Type": JSON_TYPE, "OData-Version": "4.0"}
    merged.update(headers or {})
    return Reply(status, dumps_compact(payload), merged)


def error_reply(error: DataverseError) -> Reply:
    return json_reply(error.status, {"error": {"code": error.code, "message": error.message}})


def not_found(entity: EntityDef, key: str) -> DataverseError:
    return DataverseError(404, CODE_NOT_FOUND, f"{entity.name} With Id = {key} Does Not Exist")


def etag(row: Mapping[str, Any]) -> str:
    return f'W/"{row["versionnumber"]}"'


def wire_datetime(value: str) -> str:
    return value[:19] + "Z"


def parse_prefer(header: str) -> dict[str, str]:
    """``Prefer`` header → {preference: value} (value "" when the preference has none)."""
    return dict(_preferences(header))


@functools.lru_cache(maxsize=256)
def _preferences(header: str) -> tuple[tuple[str, str], ...]:
    """Parsed once per header text: every part of a ``$batch`` sends the same one."""
    prefs: dict[str, str] = {}
    for item in _PREFERENCE.findall(header):
        name, _, value = item.strip().partition("=")
        if name:
            prefs[name.strip().lower()] = value.strip().strip('"')
    return tuple(prefs.items())


@dataclass(frozen=True)
class Annotations:
    """Which instance annotations the caller asked for with ``odata.include-annotations``."""

    patterns: tuple[str, ...] = ()

    def wants(self, term: str) -> bool:
        return any(fnmatch.fnmatchcase(term, p) for p in self.patterns)

    @property
    def formatted(self) -> bool:
        return self.wants(FORMATTED)

    @property
    def lookups(self) -> bool:
        return self.wants(LOOKUP_LOGICAL_NAME)


@dataclass(frozen=True)
class Query:
    """The parsed query options of one request."""

    select: list[Column] | None
    annotations: Annotations
    prefer: dict[str, str]
    # Expanded collection-valued navigation property → its own query options.
    expand: dict[str, Query] = field(default_factory=dict)
    # ``MSCRM.SuppressDuplicateDetection: false`` was sent (off by default for the Web API).
    detect_duplicates: bool = False


def state_label(entity: EntityDef, state: Any) -> str:
    column = entity.column("statecode")
    choices = (column.choices if column is not None else None) or {}
    return str(choices.get(state, state))
