"""Caches the sync keeps between runs: the reference cache (``reference_cache``: translation
tables such as payment terms id → code) and option mappings (``option_mappings``: a NAV option
value and the CRM option set value it maps to).

Why a repository of its own: both are small lookup tables the engine fills and reads around a
sync, never part of a record's own state.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

import polars as pl
from sqlalchemy import delete, select

from .base import Repository, mapping_key, rows_frame, upsert, without_company
from .schema import option_mappings, reference_cache, utc_now

__all__ = ["CacheRepository"]


class CacheRepository(Repository):
    """The ``reference_cache`` and ``option_mappings`` tables."""

    # -- reference cache -------------------------------------------------------------------------
    def cached_map(self, scope: str) -> tuple[dict[str, str | None], float] | None:
        """A cached translation table (e.g. payment terms id -> code) and its age in seconds,
        or None when never cached."""
        with self._tx(write=False) as conn:
            rows = conn.execute(select(reference_cache.c.key, reference_cache.c.value,
                                       reference_cache.c.updated_at)
                                .where(self.scoped(reference_cache),
                                       reference_cache.c.scope == scope)).all()
        if not rows:
            return None
        stamp = min(row[2] for row in rows)
        written = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
        return ({row[0]: row[1] for row in rows},
                (datetime.now(UTC) - written).total_seconds())

    def put_cached_map(self, scope: str, table: Mapping[str, str | None]) -> None:
        """Replace the cached table ``scope`` (an empty table is kept as one empty marker).

        Race-free: the rows are upserted (``ON CONFLICT DO UPDATE``, in key order so two
        writers lock rows in the same order), then the scope's rows this write did not stamp
        are deleted; two processes refreshing one scope at once both succeed and the later
        write's table is what stays."""
        now = utc_now()
        company = self.company
        rows = [{"company": company, "scope": scope, "key": k, "value": v, "updated_at": now}
                for k, v in sorted(table.items())] or [
            {"company": company, "scope": scope, "key": "", "value": None, "updated_at": now}]
        with self._tx() as conn:
            conn.execute(upsert(conn, reference_cache, ("company", "scope", "key")), rows)
            conn.execute(delete(reference_cache).where(
                self.scoped(reference_cache), reference_cache.c.scope == scope, reference_cache.c.updated_at != now))

    # -- option mappings -------------------------------------------------------------------------
    def set_option_mapping(self, mapping: str, field: str, nav_value: str, crm_value: int,
                           caption: str = "") -> None:
        key = mapping_key(mapping)
        with self._tx() as conn:
            conn.execute(upsert(conn, option_mappings,
                                ("company", "mapping", "field", "nav_value")).values(
                company=self.company, mapping=key, field=field, nav_value=nav_value, crm_value=crm_value,
                caption=caption, updated_at=utc_now()))

    def option_mappings(self, mapping: str, field: str | None = None) -> pl.DataFrame:
        query = select(option_mappings).where(self.scoped(option_mappings),
                                              option_mappings.c.mapping == mapping_key(mapping))
        if field is not None:
            query = query.where(option_mappings.c.field == field)
        with self._tx(write=False) as conn:
            rows = conn.execute(query.order_by(option_mappings.c.field,
                                               option_mappings.c.crm_value)).all()
        return without_company(rows_frame(rows, option_mappings))
