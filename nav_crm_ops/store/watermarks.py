"""Watermarks (``watermarks``): the last modified-on seen per mapping and side.

Why a repository of its own: the planner reads only records changed since the watermark, and
moves it after a run; one small table with one rule (a value per mapping and side).
"""

from __future__ import annotations

from sqlalchemy import select

from .base import Repository, check_side, mapping_key, upsert
from .schema import utc_now, watermarks

__all__ = ["WatermarkRepository"]


class WatermarkRepository(Repository):
    """The ``watermarks`` table."""

    def get(self, mapping: str, side: str) -> str | None:
        """The last modified-on seen on ``side`` ('nav' or 'crm') of ``mapping``."""
        with self._tx(write=False) as conn:
            return conn.execute(select(watermarks.c.value).where(
                self.scoped(watermarks), watermarks.c.mapping == mapping_key(mapping),
                watermarks.c.side == check_side(side))).scalar()

    def set(self, mapping: str, side: str, value: str) -> None:
        key, side = mapping_key(mapping), check_side(side)
        with self._tx() as conn:  # one upsert: no update-then-insert race between writers
            conn.execute(upsert(conn, watermarks, ("company", "mapping", "side")).values(
                company=self.company, mapping=key, side=side, value=value, updated_at=utc_now()))

    def all(self, mapping: str) -> dict[str, str]:
        """Every side's watermark of ``mapping``."""
        with self._tx(write=False) as conn:
            rows = conn.execute(select(watermarks.c.side, watermarks.c.value).where(
                self.scoped(watermarks), watermarks.c.mapping == mapping_key(mapping))).all()
        return {side: value for side, value in rows}
