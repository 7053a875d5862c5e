"""The error base class of both services and the change-set rollback signal."""

from __future__ import annotations

from typing import Any


class ODataError(Exception):
    """An error answered as ``{"error":{"code","message"}}`` (each service formats it)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


class Rollback(Exception):
    """Internal: one part of an all-or-nothing group failed; undo the group.

    ``failed`` is that part's answer."""

    def __init__(self, failed: Any = None) -> None:
        super().__init__("batch part failed")
        self.failed = failed
