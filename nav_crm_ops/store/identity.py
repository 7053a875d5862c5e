"""Who a state database is: the id plans are bound to and the key that signs them.

Why: a plan file is applied later, possibly by another person. It must be refused when it was
made with another state database (another workspace with the same name, company and CRM URL
would otherwise apply it and create every record a second time) and when anyone edited it (an
unkeyed digest can be recomputed by whoever edits the file). Both come from one row created with
the database (migration 5); the key never leaves it and never prints.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from sqlalchemy import Connection, select

from ..exceptions import StateStoreError
from ..secrets import Secret
from .schema import workspace_identity

__all__ = ["WorkspaceIdentity", "read_identity"]


@dataclass(frozen=True)
class WorkspaceIdentity:
    """``state_id``: a GUID made with the state database; ``plan_key``: its signing key."""

    state_id: str
    plan_key: Secret

    def sign(self, message: str) -> str:
        """HMAC-SHA256 of ``message`` (hex) with the plan key."""
        return hmac.new(self.plan_key.reveal().encode(), message.encode(),
                        hashlib.sha256).hexdigest()

    def verify(self, message: str, signature: str) -> bool:
        """Whether ``signature`` is this database's signature of ``message``."""
        return hmac.compare_digest(self.sign(message), signature or "")


def read_identity(conn: Connection, where: str) -> WorkspaceIdentity:
    """The identity row (created by migration 5)."""
    row = conn.execute(select(workspace_identity.c.state_id, workspace_identity.c.plan_key)
                       .where(workspace_identity.c.id == 1)).first()
    if row is None:
        raise StateStoreError(f"the state database {where} has no workspace identity row; it "
                              "was damaged or edited by hand: restore it from a backup")
    return WorkspaceIdentity(str(row.state_id), Secret(str(row.plan_key)))
