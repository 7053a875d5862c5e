"""The reply both services build for one request (also one part or item of a ``$batch``)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

JSON_UTF8 = "application/json; charset=utf-8"


def dumps_compact(value: Any) -> bytes:
    """JSON without spaces, UTF-8 kept as is."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def dumps(value: Any) -> bytes:
    """JSON in :func:`json.dumps`' default layout, UTF-8 kept as is."""
    return json.dumps(value, ensure_ascii=False).encode("utf-8")


@dataclass
class Reply:
    """One HTTP answer: ``body`` is bytes, or a JSON value encoded by :meth:`encoded`."""

    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    entity_url: str = ""
    """The written record's URL, for ``$n`` references inside a Dataverse change set (not
    sent as a header)."""

    def encoded(self) -> bytes:
        if self.body is None:
            return b""
        if isinstance(self.body, bytes):
            return self.body
        return dumps(self.body)


def json_object(body: bytes, invalid: Callable[[ValueError], Exception],
                not_object: Callable[[], Exception]) -> dict[str, Any]:
    """A request body that must be one JSON object; the service words the errors."""
    try:
        value = json.loads(body)
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
        raise invalid(exc) from None
    if not isinstance(value, dict):
        raise not_object()
    return value
