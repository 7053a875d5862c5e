"""Paged OData reads shared by both services: query building, nextLink paging, frames."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import Any

import polars as pl

from .. import jsontext
from .frames import records_to_frame
from .http import RequestStats, ServiceClient
from .odata import F, Filter, ODataQuery, all_of, as_filter, encode_query, literal

__all__ = ["ETAG", "PagedReader", "id_filters"]

ETAG = "@odata.etag"
"""Column holding each row's etag when a read asks for ``etag=True``."""


class PagedReader:
    """Read surface common to Dataverse and Business Central (subclasses set the fields)."""

    http: ServiceClient
    page_size: int
    max_filter_chars: int
    modified_field: str
    extra_read_headers: dict[str, str] = {}

    @property
    def stats(self) -> RequestStats:
        """Request accounting of this endpoint (token requests are counted by the auth)."""
        return self.http.stats

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def entity_path(self, entity_set: str) -> str:
        """Path of an entity set relative to the endpoint."""
        raise NotImplementedError

    def pages(self, path: str, *, entity: str, prefer: str) -> Iterator[dict[str, Any]]:
        """Follow ``@odata.nextLink`` verbatim until absent."""
        url: str | None = path
        headers = {**({"Prefer": prefer} if prefer else {}), **self.extra_read_headers}
        while url:
            payload = jsontext.loads(self.http.request("GET", url, headers=headers,
                                                        entity=entity).content)
            yield payload
            url = payload.get("@odata.nextLink")

    def read_pages(self, entity_set: str, *, select: Sequence[str] = (),
                   filter: Filter | str | None = None, orderby: Sequence[str] = (),
                   changed_since: datetime | None = None, modified_field: str | None = None,
                   schema: dict[str, Any] | None = None, etag: bool = False,
                   top: int | None = None) -> Iterator[pl.DataFrame]:
        """One frame per service page (bounded memory for large tables); ``etag`` adds the
        :data:`ETAG` column (needs a ``select``).

        ``top`` is never sent together with ``Prefer: odata.maxpagesize``: Dataverse ignores
        ``$top`` when both are given (*Page results using OData*). A limit that fits one page
        is sent as ``$top`` alone; a larger one pages normally and stops after ``top`` rows."""
        watermark = (F(modified_field or self.modified_field).gt(changed_since)
                     if changed_since else None)
        limited = top is not None and top <= self.page_size
        query = ODataQuery(select=tuple(select), filter=all_of([as_filter(filter), watermark]),
                           orderby=tuple(orderby), top=top if limited else None)
        params = encode_query(query.params())
        path = self.entity_path(entity_set) + (f"?{params}" if params else "")
        prefer = "" if limited else f"odata.maxpagesize={self.page_size}"
        columns = [*select, ETAG] if etag and select else select
        remaining = top
        for payload in self.pages(path, entity=entity_set, prefer=prefer):
            rows = payload.get("value", [])
            if remaining is not None:
                rows = rows[:max(remaining, 0)]
                remaining -= len(rows)
            yield records_to_frame(rows, columns, schema)
            if remaining is not None and remaining <= 0:
                return

    def read(self, entity_set: str, *, select: Sequence[str] = (),
             filter: Filter | str | None = None, orderby: Sequence[str] = (),
             changed_since: datetime | None = None, modified_field: str | None = None,
             schema: dict[str, Any] | None = None, etag: bool = False,
             top: int | None = None) -> pl.DataFrame:
        """All matching rows; columns are exactly ``select`` (null-filled) when given."""
        frames = list(self.read_pages(entity_set, select=select, filter=filter, orderby=orderby,
                                      changed_since=changed_since,
                                      modified_field=modified_field, schema=schema, etag=etag,
                                      top=top))
        return _concat(frames, [*select, ETAG] if etag and select else select, schema)

    def read_counting(self, entity_set: str, on_rows: Callable[[int], None], *,
                      select: Sequence[str] = (), filter: Filter | str | None = None,
                      etag: bool = False) -> pl.DataFrame:
        """As :meth:`read`, telling ``on_rows`` how many rows have arrived after each page (a
        long read shows progress instead of "0" until it ends)."""
        frames: list[pl.DataFrame] = []
        rows = 0
        for frame in self.read_pages(entity_set, select=select, filter=filter, etag=etag):
            frames.append(frame)
            rows += frame.height
            on_rows(rows)
        return _concat(frames, [*select, ETAG] if etag and select else select, None)

    def read_by_ids(self, entity_set: str, key: str, ids: Sequence[Any],
                    select: Sequence[str] = (), schema: dict[str, Any] | None = None,
                    etag: bool = False, filter: Filter | str | None = None) -> pl.DataFrame:
        """Rows for ``ids`` as ``key eq a or key eq b`` chunks within the URL budget
        (same field only, which Business Central accepts too), each chunk and-ed with
        ``filter`` when given. Works for any field, e.g. match candidates by name."""
        base = as_filter(filter)
        frames = [self.read(entity_set, select=select, schema=schema, etag=etag,
                            filter=all_of([base, flt]))
                  for flt in id_filters(key, ids, self.max_filter_chars)]
        return _concat(frames, [*select, ETAG] if etag and select else select, schema)


def _concat(frames: list[pl.DataFrame], select: Sequence[str],
            schema: dict[str, Any] | None) -> pl.DataFrame:
    non_empty = [f for f in frames if f.height]
    if not non_empty:
        return frames[0] if frames else records_to_frame([], select, schema)
    return non_empty[0] if len(non_empty) == 1 else pl.concat(non_empty, how="diagonal_relaxed")


def id_filters(key: str, ids: Sequence[Any], max_chars: int) -> list[Filter]:
    """``key eq a or key eq b`` filters, each rendering to at most about ``max_chars``."""
    out: list[Filter] = []
    chunk: list[Any] = []
    size = 0
    for raw in dict.fromkeys(ids):
        value = _typed_id(raw)
        clause = len(key) + len(literal(value)) + 8
        if chunk and size + clause > max_chars:
            out.append(F(key).is_in(chunk))
            chunk, size = [], 0
        chunk.append(value)
        size += clause
    if chunk:
        out.append(F(key).is_in(chunk))
    return out


def _typed_id(raw: Any) -> Any:
    import uuid

    if isinstance(raw, str):
        try:
            return uuid.UUID(raw)
        except ValueError:
            return raw
    return raw
