"""Deterministic ids for records the engine creates in Dataverse.

Why: a create whose outcome was lost (crash, timeout, lost batch reply) is sent again with the
same GUID and ``If-None-Match: *``, so it can never create a second record.
"""

from __future__ import annotations

import uuid

__all__ = ["CREATE_NAMESPACE", "crm_id_for"]

CREATE_NAMESPACE = uuid.UUID("8d7f3a52-0f4e-4c4b-9a1e-2b6c1e5d9f30")


def crm_id_for(mapping: str, nav_id: str, salt: str = "") -> str:
    """The GUID the CRM record created from NAV record ``nav_id`` gets (``salt`` for a restore
    after the first copy was deleted)."""
    name = f"{mapping.upper()}|{nav_id.lower()}" + (f"|{salt}" if salt else "")
    return str(uuid.uuid5(CREATE_NAMESPACE, name))
