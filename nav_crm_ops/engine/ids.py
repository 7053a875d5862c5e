"""Deterministic ids for records the engine creates in Dataverse.

Why: a create whose outcome was lost (crash, timeout, lost batch reply) is sent again with the
same GUID and ``If-None-Match: *``, so it can never create a second record.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Sequence

import polars as pl

__all__ = ["CREATE_NAMESPACE", "GUID_PATTERN", "crm_id_for", "crm_ids_for", "record_id",
           "record_id_expr"]

CREATE_NAMESPACE = uuid.UUID("8d7f3a52-0f4e-4c4b-9a1e-2b6c1e5d9f30")


GUID_PATTERN = (r"^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-"
                r"[0-9A-Fa-f]{12}$")
"""A GUID as Dataverse and Business Central write it (no braces)."""
_GUID = re.compile(GUID_PATTERN)


def record_id(value: object) -> str:
    """A record id as the engine stores and compares it: a GUID (Dataverse, Business Central
    online) in lower case, since GUIDs are case-insensitive; any other key (a NAV page's
    ``No`` or ``Code``: ``10000``, ``EUR``) as the service wrote it, since NAV compares its
    codes as stored. The one rule for every place ids are matched (couplings, selections,
    freshness, lookups)."""
    text = str(value)
    return text.lower() if _GUID.match(text) else text


def record_id_expr(expr: pl.Expr) -> pl.Expr:
    """:func:`record_id` over a column."""
    text = expr.cast(pl.Utf8)
    return pl.when(text.str.contains(GUID_PATTERN)).then(text.str.to_lowercase()).otherwise(text)


def crm_id_for(mapping: str, nav_id: str, salt: str = "", *, scope: str = "") -> str:
    """The GUID the CRM record created from NAV record ``nav_id`` gets (``salt`` for a restore
    after the first copy was deleted; ``scope``: the company when several share one org, see
    ``TableMapping.id_scope``)."""
    name = (f"{mapping.upper()}|{nav_id.lower()}" + (f"|{salt}" if salt else "")
            + (f"|company:{scope.lower()}" if scope else ""))
    return str(uuid.uuid5(CREATE_NAMESPACE, name))


_VARIANT = {f"{v:x}": f"{(v & 0x3) | 0x8:x}" for v in range(16)}
"""The RFC 4122 variant bits (``10``) over a GUID's 17th hex digit."""


def crm_ids_for(mapping: str, nav_ids: Sequence[str], salt: str = "", *,
                scope: str = "") -> pl.Series:
    """:func:`crm_id_for` of every id in ``nav_ids`` (a first sync creates hundreds of
    thousands): the same GUIDs, as a ``crm_id`` text column.

    Why not ``uuid.uuid5`` per id: it builds a UUID object per record. Here the SHA-1 of each
    name (the namespace's digest state copied, not recomputed) is the only per-record work;
    the version and variant bits and the hex text with its dashes are set column-wise."""
    prefix = f"{mapping.upper()}|"
    suffix = (f"|{salt}" if salt else "") + (f"|company:{scope.lower()}" if scope else "")
    namespace = hashlib.sha1(CREATE_NAMESPACE.bytes, usedforsecurity=False)

    def digest(nav_id: str) -> bytes:
        state = namespace.copy()
        state.update(f"{prefix}{nav_id.lower()}{suffix}".encode())
        return state.digest()

    hexes = pl.Series("crm_id", [digest(i) for i in nav_ids], dtype=pl.Binary).bin.encode("hex")
    text = pl.col("crm_id")
    return pl.DataFrame([hexes]).select(pl.concat_str([
        text.str.slice(0, 8), pl.lit("-"), text.str.slice(8, 4), pl.lit("-5"),  # version 5
        text.str.slice(13, 3), pl.lit("-"),
        text.str.slice(16, 1).replace_strict(_VARIANT, return_dtype=pl.Utf8),
        text.str.slice(17, 3), pl.lit("-"), text.str.slice(20, 12)]).alias("crm_id")
    ).get_column("crm_id")
