"""Reading one side of a mapping and expressing its rows in the mapping's field namespace.

A *field frame* has the meta columns ``_id`` (record id: a GUID in lower case, a NAV code as
stored, :func:`~.ids.record_id`), ``_key`` (natural key, for lookups and display),
``_name`` (the record's name beside its key, for display: :mod:`.labels`),
``_version`` (etag: the If-Match of a later write) and ``_modified`` (UTC ISO text, for
watermarks), then one column per enabled field, named by the field, holding the value as the
other side would receive it: NAV reference GUIDs as codes, lookups and options in NAV terms
(see ``engine.resolve``), transformations and constants applied on the side(s) the field is
written from.
"""

from __future__ import annotations

import uuid
import weakref
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Protocol

import polars as pl

from ..connectors.nav_odata import day_before
from ..connectors.odata import F, Filter, RawFilter, all_of
from ..connectors.reader import ETAG, PagedReader
from ..exceptions import ConnectorError, NavCrmOpsError
from .diff import canonical_frame
from .ids import record_id_expr
from .mapping import FieldMapping, TableMapping
from .resolve import Resolver
from .vocabulary import Side

__all__ = [
    "META_COLUMNS",
    "Side",
    "SideReader",
    "SideSource",
    "empty_field_frame",
    "field_frame",
    "integration_user_id",
    "known_integration_user",
    "reads_incrementally",
    "remember_integration_user",
]

META_COLUMNS = ("_id", "_key", "_name", "_version", "_modified")
EMPTY_GUID = "00000000-0000-0000-0000-000000000000"
MODIFIED_BY = "_modifiedby_value"
"""Dataverse's lookup to the systemuser who made a row's last change."""

_integration_users: weakref.WeakKeyDictionary[PagedReader, uuid.UUID | None] = (
    weakref.WeakKeyDictionary())


def integration_user_id(client: PagedReader) -> uuid.UUID | None:
    """The systemuser the connection acts as (Dataverse ``WhoAmI``), asked once per connection.

    None when the connection has no ``WhoAmI`` (Business Central) or it fails or answers
    without a user id: reads then fall back to every change since the watermark, as before.
    A lasting failure is remembered, so such a connection costs one request, not one per
    read; a transient one (throttling, an outage after the retries) is asked again next time.
    """
    if client in _integration_users:
        return _integration_users[client]
    whoami = getattr(client, "whoami", None)
    user: uuid.UUID | None = None
    if whoami is not None:
        try:
            user = uuid.UUID(str(whoami()["UserId"]))
        except ConnectorError as exc:
            if exc.transient:
                return None
        except (NavCrmOpsError, KeyError, TypeError, ValueError):
            user = None
    _integration_users[client] = user
    return user


def remember_integration_user(client: PagedReader, user: uuid.UUID) -> None:
    """Tell the connection's user id without asking (the state store remembers it across
    processes, so each scheduled job does not ask ``WhoAmI`` again)."""
    _integration_users[client] = user


def known_integration_user(client: PagedReader) -> bool:
    return _integration_users.get(client) is not None


def reads_incrementally(mapping: TableMapping, side: Side | str) -> bool:
    """Whether ``side`` is read by changes since a watermark: CRM always, NAV unless the set
    has no usable modified-on (``incremental: false``, computed statistics)."""
    return Side(side) is Side.CRM or mapping.nav.incremental


class SideSource(Protocol):
    """What the preview reads from one side of one mapping: raw rows as the service returns
    them (the side's key, modified-on, ``$select`` columns and :data:`ETAG`).

    :class:`SideReader` reads them from a connector; ``engine.memory.MemorySide`` from a
    polars frame, so planning can be tested without HTTP. ``Planner(sources=...)`` takes
    any implementation."""

    def changed(self, since: datetime | None, overlap: timedelta,
                on_rows: Callable[[int], None] | None = None) -> pl.DataFrame:
        """Rows modified at or after ``since - overlap`` (every row when None); ``on_rows``
        hears how many have arrived so far."""
        ...

    def by_ids(self, ids: Sequence[str]) -> pl.DataFrame:
        """Rows with these record ids, wherever the table filter puts them."""
        ...

    def by_values(self, column: str, values: Sequence[str]) -> pl.DataFrame:
        """Rows in the table filter whose ``column`` equals one of ``values``."""
        ...

    def probe(self, since: datetime | None) -> bool:
        """Whether anything was modified strictly after ``since``."""
        ...

    def empty(self) -> pl.DataFrame:
        """No rows, with the columns a read returns."""
        ...


class SideReader:
    """Reads one side of one mapping: changes since a watermark, records by id or by value.

    ``ignore_own_changes``: changes the integration made itself are not changes to
    synchronize. With it, an incremental CRM read (``changed`` / ``probe`` with a watermark)
    leaves out rows whose last change was made by the integration user (``_modifiedby_value ne
    <WhoAmI UserId>``, evaluated by Dataverse, as the reference integration does), so the first
    run after a sync does not read back every record that sync wrote. Why nothing is lost:

    * a row a person changes after us has ``modifiedby`` = that person, so it is read;
    * a row a person changed and then we wrote in the same run was read by that run (the read
      precedes the writes, and our update carries the version read as ``If-Match``: a person's
      change between our read and our write makes the write fail, and the record stays in the
      retry pass, which reads by id without this filter);
    * reads by id or by value (retry pass, counterparts, matching) and the first sync (no
      watermark) are never filtered.

    What it costs: an edit made with the integration's own credentials (a script, a second
    tool or a test using the same app registration) looks like the integration's and is not
    picked up incrementally. That is why it is off unless the caller asks for it. Business
    Central API v2.0 has no modified-by field, so the NAV side always reads every change since
    its watermark (the engine's own writes come back once and the diff finds them unchanged).
    """

    def __init__(self, mapping: TableMapping, side: Side | str, client: PagedReader, *,
                 ignore_own_changes: bool = False) -> None:
        self.mapping = mapping
        self.side = Side(side)
        self.client = client
        self.ignore_own_changes = ignore_own_changes
        spec = self.side.pick(mapping.nav, mapping.crm)
        self.entity = spec.entity
        self.key = spec.key
        self.modified = spec.modified
        self.modified_is_date = self.side is Side.NAV and mapping.nav.modified_is_date
        self.table_filter = RawFilter(spec.filter) if spec.filter.strip() else None
        self.select = self.side.pick(mapping.nav_select, mapping.crm_select)()

    @property
    def incremental(self) -> bool:
        return reads_incrementally(self.mapping, self.side)

    def changed(self, since: datetime | None, overlap: timedelta,
                on_rows: Callable[[int], None] | None = None) -> pl.DataFrame:
        """Rows in the table filter modified at or after ``since - overlap`` (all when None);
        ``on_rows`` hears the number of rows read so far after each page.

        ``ge`` and the overlap matter: Dataverse keeps whole seconds, clocks differ, and a row
        read twice costs nothing (the diff sees it unchanged).
        """
        condition: Filter | None = self.table_filter
        if since is not None and self.incremental:
            condition = all_of([self.table_filter, self._since(since, overlap),
                                self._not_ours()])
        if on_rows is None:
            return self.client.read(self.entity, select=self.select, etag=True,
                                    filter=condition)
        return self.client.read_counting(self.entity, on_rows, select=self.select, etag=True,
                                         filter=condition)

    def _since(self, since: datetime, overlap: timedelta) -> Filter:
        """Modified at or after ``since - overlap``; for a modified field that holds a date
        (NAV 2018's ``Last_Date_Modified``) at or after the day before the watermark's UTC date:
        the field holds the *server's local* date of the change, which west of UTC is a day
        behind, and a date cannot tell an edit at 09:00 from one at 17:00. Every change of those
        days is read again (the three-way diff finds those that are unchanged)."""
        if self.modified_is_date:
            return F(self.modified).ge(day_before(since))
        return F(self.modified).ge(since - overlap)

    def by_ids(self, ids: Sequence[str]) -> pl.DataFrame:
        """Rows with these ids, wherever the table filter puts them."""
        if not ids:
            return self.empty()
        return self.client.read_by_ids(self.entity, self.key, list(ids), select=self.select,
                                       etag=True)

    def by_values(self, column: str, values: Sequence[str]) -> pl.DataFrame:
        """Rows in the table filter whose ``column`` equals one of ``values``."""
        if not values:
            return self.empty()
        return self.client.read_by_ids(self.entity, column, list(values), select=self.select,
                                       etag=True, filter=self.table_filter)

    def probe(self, since: datetime | None) -> bool:
        """Whether anything was modified after ``since`` (one request, at most one row).

        Strictly after, without the overlap: the watermark is the newest modified-on already
        read, so the overlap would always find that record again."""
        if not self.incremental:
            return True
        moment = None
        if since is not None:  # a date field: the watermark's day may hold later changes
            moment = (F(self.modified).ge(day_before(since)) if self.modified_is_date
                      else F(self.modified).gt(since))
        not_ours = None if since is None else self._not_ours()
        frame = self.client.read(self.entity, select=[self.key], top=1,
                                 filter=all_of([self.table_filter, moment, not_ours]))
        return frame.height > 0

    def _not_ours(self) -> Filter | None:
        """The CRM filter leaving out rows the integration user changed last (class docstring)."""
        if self.side is not Side.CRM or not self.ignore_own_changes:
            return None
        user = integration_user_id(self.client)
        return None if user is None else F(MODIFIED_BY).ne(user)

    def empty(self) -> pl.DataFrame:
        return pl.DataFrame(schema={name: pl.Utf8 for name in [*self.select, ETAG]})


def _with_constant(expr: pl.Expr, fld: FieldMapping) -> pl.Expr:
    if fld.constant is None:
        return expr
    text = expr.cast(pl.Utf8)
    return (pl.when(text.is_null() | (text.str.strip_chars() == ""))
            .then(pl.lit(str(fld.constant))).otherwise(text))


def _nav_value(frame: pl.DataFrame, fld: FieldMapping, resolver: Resolver) -> pl.Series:
    """One field's NAV values in the shared namespace: reference GUIDs as codes, ``via``
    lookups as the referenced record's key."""
    raw = frame.get_column(fld.nav) if fld.nav in frame.columns else pl.Series(
        fld.name, [None] * frame.height, dtype=pl.Utf8)
    if fld.nav_reference is not None:
        ids = [str(v).lower() for v in raw.to_list() if v and str(v) != EMPTY_GUID]
        codes = resolver.reference_codes(fld, ids=ids) if ids else {}
        return pl.Series(fld.name, [None if v is None else codes.get(str(v).lower())
                                    for v in raw.to_list()], dtype=pl.Utf8)
    if fld.lookup is not None and fld.lookup.via is not None:
        return resolver.via_to_key(fld, raw).alias(fld.name)
    return raw.alias(fld.name)


def _crm_value(frame: pl.DataFrame, fld: FieldMapping, mapping: TableMapping,
               resolver: Resolver) -> pl.Series:
    """One field's CRM values in the shared namespace: lookups as NAV keys, choices as NAV
    codes."""
    raw = frame.get_column(fld.crm_read_column)
    if fld.lookup is not None:
        return resolver.lookup_crm_to_nav(fld, raw).alias(fld.name)
    if fld.options is not None:
        return resolver.options_to_nav(mapping.name, fld, raw).alias(fld.name)
    return raw.alias(fld.name)


def _source_value(frame: pl.DataFrame, fld: FieldMapping, side: Side, mapping: TableMapping,
                  resolver: Resolver) -> pl.Series:
    """One field's values from one side, in the shared namespace (before transformations)."""
    if side is Side.NAV:
        return _nav_value(frame, fld, resolver)
    return _crm_value(frame, fld, mapping, resolver)


def field_frame(raw: pl.DataFrame, mapping: TableMapping, side: Side | str,
                resolver: Resolver) -> pl.DataFrame:
    """The field frame of rows read from ``side`` (module docstring)."""
    side = Side(side)
    spec = side.pick(mapping.nav, mapping.crm)
    if raw.height == 0:
        return empty_field_frame(mapping)
    columns: list[pl.Series] = [
        raw.select(record_id_expr(pl.col(spec.key)).alias("_id")).to_series(),
        _text_column(raw, spec.natural_key).alias("_key"),
        _text_column(raw, spec.name).alias("_name"),
        (raw.get_column(ETAG).cast(pl.Utf8) if ETAG in raw.columns else pl.Series(
            [None] * raw.height, dtype=pl.Utf8)).alias("_version"),
        (_modified_text(raw.get_column(spec.modified)) if spec.modified in raw.columns
         else pl.Series([None] * raw.height, dtype=pl.Utf8)).alias("_modified"),
    ]
    values = pl.DataFrame(columns)
    exprs = []
    for fld in mapping.enabled_fields():
        series = _source_value(raw, fld, side, mapping, resolver)
        values = values.with_columns(series.alias(f"__raw_{fld.name}"))
        expr = pl.col(f"__raw_{fld.name}")
        writes_from_here = side.pick(fld.writes_to_crm, fld.writes_to_nav)
        if writes_from_here:
            expr = _with_constant(fld.chain.expr(expr), fld)
        exprs.append(expr.alias(fld.name))
    frame = values.select(*META_COLUMNS, *exprs)
    canonical = canonical_frame(frame, mapping.diff_fields(), key="_id")
    others = [f.name for f in mapping.enabled_fields() if f.on_create_only]
    return frame.with_columns(canonical.drop("_id")).with_columns(
        [pl.col(name).cast(pl.Utf8) for name in others])


def _text_column(raw: pl.DataFrame, column: str | None) -> pl.Series:
    """A column of the rows read as text; nulls when the mapping names none (or the read
    did not select it)."""
    if column and column in raw.columns:
        return raw.get_column(column).cast(pl.Utf8)
    return pl.Series([None] * raw.height, dtype=pl.Utf8)


def _modified_text(column: pl.Series) -> pl.Series:
    if isinstance(column.dtype, pl.Datetime):
        moment = (column.dt.convert_time_zone("UTC") if column.dtype.time_zone
                  else column.dt.replace_time_zone("UTC"))
        return moment.dt.strftime("%Y-%m-%dT%H:%M:%S%.3fZ")
    return column.cast(pl.Utf8)


def empty_field_frame(mapping: TableMapping) -> pl.DataFrame:
    return pl.DataFrame(schema={**dict.fromkeys(META_COLUMNS, pl.Utf8),
                                **{f.name: pl.Utf8 for f in mapping.enabled_fields()}})
