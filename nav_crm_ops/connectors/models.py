"""Write operations and their per-record outcomes, shared by both services."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from ..exceptions import ConnectorError

__all__ = ["WriteKind", "WriteOp", "WriteOutcome", "unknown_outcomes"]

WriteKind = Literal["create", "update", "delete"]


@dataclass(frozen=True)
class WriteOp:
    """One record change. ``op_id`` ties the outcome back to the caller's record.

    ``key`` is the record id: for Dataverse creates a client-chosen deterministic GUID (so a
    retried create never duplicates); for Business Central creates it is empty and
    ``natural_key`` (e.g. ``{"number": "10000"}``) — a key the payload itself sends — is used
    to find a record whose create outcome was lost, only among the records matching
    ``settle_filter`` (the mapping's table filter, e.g. ``blocked eq ' '``); without a
    ``natural_key`` such a create's outcome stays unknown. ``if_match`` is an etag or ``"*"``; ``binds`` maps navigation property to the
    ``/entityset(id)`` path it points at (Dataverse ``@odata.bind``).
    """

    kind: WriteKind
    entity_set: str
    key: str = ""
    payload: dict[str, Any] = field(default_factory=dict)
    natural_key: dict[str, Any] | None = None
    if_match: str = "*"
    binds: dict[str, str] = field(default_factory=dict)
    op_id: str = ""
    key_column: str = ""
    settle_filter: str = ""

    @classmethod
    def create(cls, entity_set: str, payload: dict[str, Any], *, key: str = "",
               natural_key: dict[str, Any] | None = None, binds: dict[str, str] | None = None,
               op_id: str = "", key_column: str = "", settle_filter: str = "") -> WriteOp:
        """``key_column`` names the key's column, for a create that must be a POST with the
        key in the body (a Dataverse deep insert of a document with its lines)."""
        return cls("create", entity_set, key, dict(payload), natural_key, "*",
                   dict(binds or {}), op_id or key, key_column, settle_filter)

    @classmethod
    def update(cls, entity_set: str, key: str, payload: dict[str, Any], *, if_match: str = "*",
               binds: dict[str, str] | None = None, op_id: str = "") -> WriteOp:
        return cls("update", entity_set, key, dict(payload), None, if_match,
                   dict(binds or {}), op_id or key)

    @classmethod
    def delete(cls, entity_set: str, key: str, *, if_match: str = "*",
               op_id: str = "") -> WriteOp:
        return cls("delete", entity_set, key, {}, None, if_match, {}, op_id or key)


@dataclass(frozen=True)
class WriteOutcome:
    """What happened to one :class:`WriteOp` (same position as its op in the input)."""

    op_id: str
    ok: bool
    status: int | None = None
    id: str = ""
    etag: str = ""
    error: ConnectorError | None = None
    already_existed: bool = False
    body: Any = None


def unknown_outcomes(ops: list[WriteOp], pending: list[int], error: ConnectorError,
                     outcomes: dict[int, WriteOutcome]) -> list[WriteOutcome]:
    """Outcomes in input order where the ``pending`` ops failed with a whole-request ``error``
    (each op gets the error so the caller can retry exactly those records later)."""
    for index in pending:
        op = ops[index]
        outcomes[index] = WriteOutcome(op.op_id, False, error.status, op.key, error=error)
    return [outcomes[i] for i in range(len(ops))]
