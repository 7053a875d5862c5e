"""Sides held in memory: the whole preview, and each of its decisions, without HTTP.

:class:`MemorySide` answers what :class:`~nav_crm_ops.engine.sides.SideReader` answers (a
:class:`~nav_crm_ops.engine.sides.SideSource`) from a polars frame of *raw* rows, the columns a
service returns: the side's key, its modified-on, the mapped columns (CRM lookups as
``_x_value``), optionally :data:`~nav_crm_ops.connectors.reader.ETAG`. :class:`MemorySides` holds
such frames for several mappings and is what ``Planner(sources=...)`` takes, so a test states
both sides as rows, plans, and asserts the plan rows in milliseconds. The end-to-end tests over
the sandbox stay what they are: these test the planner's decisions, not the connectors.

What the in-memory reads honour, and what they leave out (on purpose, and documented here
because a test relying on it would otherwise be surprised):

* ``changed(since, overlap)`` returns the rows modified at or after ``since - overlap`` (every
  row when ``since`` is None or the side is not incremental), as the service's ``ge``;
  ``probe(since)`` looks strictly after ``since``; ``by_ids`` compares the key without case and
  ignores the table filter (as the connector reads by id); ``by_values`` compares text;
* the mapping's table filter (OData text in ``nav.filter`` / ``crm.filter``) is **not**
  translated: give the same condition as a polars expression (``where=``); without one every
  row takes part;
* who made a change is not modelled: every change is returned (as ``ignore_own_changes=False``);
* rows without an ``@odata.etag`` get ``W/"<modified-on>"``, a version that changes with the row;
* a ``$select`` column the frame lacks reads as null (as a service returns an empty field).

Lookups and options resolve through the state store (couplings, option mappings, its cached
tables) as in a real preview; a mapping needing a service for that (lookups not cached, BC
references, document lines) meets :func:`offline_connections`, which refuses with a message
instead of making a request.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import polars as pl

from ..connectors.factory import Connections
from ..connectors.frames import DATETIME, records_to_frame
from ..connectors.reader import ETAG
from ..exceptions import SyncError
from .mapping import TableMapping
from .sides import reads_incrementally
from .vocabulary import Side

__all__ = ["MemorySide", "MemorySides", "Rows", "offline_connections"]

Rows = pl.DataFrame | Sequence[Mapping[str, Any]]
"""Raw rows: a frame, or records as a service's JSON would hold them."""


def _as_frame(rows: Rows) -> pl.DataFrame:
    """Rows as a frame (records are typed as the connectors type them: timestamps parsed)."""
    return rows if isinstance(rows, pl.DataFrame) else records_to_frame(list(rows), [])


def _with_moments(frame: pl.DataFrame, modified: str) -> pl.DataFrame:
    """The modified-on column as UTC timestamps (text parsed, naive times taken as UTC), as
    the connectors return it: the watermark is computed from it."""
    if modified not in frame.columns:
        return frame
    column = frame.get_column(modified)
    if isinstance(column.dtype, pl.Datetime):
        moment = (column.dt.convert_time_zone("UTC") if column.dtype.time_zone
                  else column.dt.replace_time_zone("UTC"))
        return frame.with_columns(moment.cast(DATETIME))
    return frame.with_columns(column.cast(pl.Utf8).str.to_datetime(
        time_unit="ms", time_zone="UTC", strict=False))


def _with_versions(frame: pl.DataFrame, modified: str) -> pl.DataFrame:
    """An :data:`ETAG` for rows that have none: ``W/"<modified-on>"``."""
    if ETAG in frame.columns or frame.height == 0:
        return frame
    if modified not in frame.columns:
        return frame.with_columns(pl.lit(None, pl.Utf8).alias(ETAG))
    stamp = pl.col(modified).dt.strftime("%Y-%m-%dT%H:%M:%S%.3fZ")
    return frame.with_columns(pl.concat_str([pl.lit('W/"'), stamp, pl.lit('"')]).alias(ETAG))


class MemorySide:
    """One side of one mapping over a frame of raw rows (module docstring: what it honours).

    ``where`` stands for the table filter: the rows taking part in change and value reads."""

    def __init__(self, mapping: TableMapping, side: Side | str, rows: Rows, *,
                 where: pl.Expr | None = None) -> None:
        self.mapping = mapping
        self.side = Side(side)
        spec = self.side.pick(mapping.nav, mapping.crm)
        self.key = spec.key
        self.modified = spec.modified
        self.select = self.side.pick(mapping.nav_select, mapping.crm_select)()
        self.where = where
        self.rows = _with_versions(_with_moments(_as_frame(rows), self.modified), self.modified)

    @property
    def incremental(self) -> bool:
        return reads_incrementally(self.mapping, self.side)

    def _in_table(self) -> pl.DataFrame:
        """The rows the table filter (``where``) lets take part."""
        if self.where is None or self.rows.height == 0:
            return self.rows
        return self.rows.filter(self.where)

    def _modified_from(self, frame: pl.DataFrame, moment: datetime, *,
                       strictly: bool) -> pl.DataFrame:
        if self.modified not in frame.columns or frame.height == 0:
            return frame.clear()
        column = pl.col(self.modified)
        return frame.filter(column > moment if strictly else column >= moment)

    def _read(self, frame: pl.DataFrame) -> pl.DataFrame:
        """``frame`` as a read returns it: exactly the ``$select`` columns and the version."""
        if frame.height == 0:
            return self.empty()
        return frame.select([pl.col(c) if c in frame.columns else pl.lit(None, pl.Utf8).alias(c)
                             for c in [*self.select, ETAG]])

    def changed(self, since: datetime | None, overlap: timedelta,
                on_rows: Callable[[int], None] | None = None) -> pl.DataFrame:
        """Rows modified at or after ``since - overlap`` (every row when None)."""
        if since is None or not self.incremental:
            rows = self._read(self._in_table())
        else:
            rows = self._read(self._modified_from(self._in_table(), since - overlap,
                                                  strictly=False))
        if on_rows is not None:
            on_rows(rows.height)
        return rows

    def by_ids(self, ids: Sequence[str]) -> pl.DataFrame:
        """Rows with these ids (without case), wherever the table filter puts them."""
        if not ids or self.rows.height == 0:
            return self.empty()
        wanted = [str(i).lower() for i in ids]
        return self._read(self.rows.filter(
            pl.col(self.key).cast(pl.Utf8).str.to_lowercase().is_in(wanted)))

    def by_values(self, column: str, values: Sequence[str]) -> pl.DataFrame:
        """Rows in the table filter whose ``column`` equals one of ``values`` (as text)."""
        table = self._in_table()
        if not values or column not in table.columns:
            return self.empty()
        return self._read(table.filter(pl.col(column).cast(pl.Utf8).is_in(list(values))))

    def probe(self, since: datetime | None) -> bool:
        """Whether a row in the table filter was modified strictly after ``since``."""
        if not self.incremental:
            return True
        table = self._in_table()
        if since is not None:
            table = self._modified_from(table, since, strictly=True)
        return table.height > 0

    def empty(self) -> pl.DataFrame:
        return pl.DataFrame(schema={name: pl.Utf8 for name in [*self.select, ETAG]})


class MemorySides:
    """The in-memory rows of mappings' two sides; ``Planner(sources=sides)`` reads from them.

    A test states what each side holds (:meth:`put`), what a person then changes
    (:meth:`upsert`) or deletes (:meth:`delete`), and plans again."""

    def __init__(self) -> None:
        self._sides: dict[tuple[str, Side], MemorySide] = {}

    def put(self, mapping: TableMapping, side: Side | str, rows: Rows, *,
            where: pl.Expr | None = None) -> MemorySide:
        """``side`` of ``mapping`` holds exactly ``rows`` (``where``: the table filter)."""
        held = MemorySide(mapping, side, rows, where=where)
        self._sides[(mapping.name, held.side)] = held
        return held

    def side(self, mapping: TableMapping, side: Side | str) -> MemorySide:
        """What ``side`` of ``mapping`` holds (no rows until :meth:`put`)."""
        found = self._sides.get((mapping.name, Side(side)))
        return found if found is not None else self.put(mapping, side, [])

    def upsert(self, mapping: TableMapping, side: Side | str, rows: Rows) -> MemorySide:
        """Rows replaced by key, new keys added: what a person's edits leave."""
        held = self.side(mapping, side)
        new = MemorySide(mapping, side, rows)
        if held.rows.height == 0:
            return self.put(mapping, side, new.rows, where=held.where)
        ids = new.rows.get_column(held.key).cast(pl.Utf8).str.to_lowercase().to_list()
        kept = held.rows.filter(
            ~pl.col(held.key).cast(pl.Utf8).str.to_lowercase().is_in(ids))
        merged = pl.concat([kept, new.rows], how="diagonal_relaxed")
        return self.put(mapping, side, merged, where=held.where)

    def delete(self, mapping: TableMapping, side: Side | str, ids: Sequence[str]) -> MemorySide:
        """The records ``ids`` no longer exist on ``side``."""
        held = self.side(mapping, side)
        wanted = [i.lower() for i in ids]
        kept = held.rows.filter(~pl.col(held.key).cast(pl.Utf8).str.to_lowercase().is_in(wanted))
        return self.put(mapping, side, kept, where=held.where)

    def __call__(self, mapping: TableMapping) -> tuple[MemorySide, MemorySide]:
        """The NAV and CRM sources of ``mapping`` (a ``Planner`` source factory)."""
        return self.side(mapping, Side.NAV), self.side(mapping, Side.CRM)


class _Offline:
    """A service client that refuses every use: in-memory planning makes no request."""

    def __init__(self, service: str) -> None:
        self._service = service

    def __getattr__(self, name: str) -> Any:
        raise SyncError(
            f"in-memory planning makes no request, but {name!r} of the {self._service} "
            "connection was asked for: keep the mapping's lookups in the state store (couple "
            "the referenced records, or cache the table) or test it against the sandbox")


def offline_connections() -> Connections:
    """Connections for a planner over in-memory sides: any use raises :class:`SyncError`."""
    offline: Any = _Offline
    return Connections(dataverse=offline("dataverse"),
                       business_central=offline("business_central"),
                       business_central_custom=offline("business_central_custom"))
