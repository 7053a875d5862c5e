"""Business Central paging: ``$top``/``$skip``, ``Prefer: odata.maxpagesize`` and the
``$skiptoken`` of ``@odata.nextLink`` (keyset for stored entities, offset for computed)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from ..odata.paging import cut_page, next_link, without
from .common import MAX_PAGE_SIZE, BCError, bc_int_option, decode_token, encode_token

Row = TypeVar("Row")
NEXT_LINK_REPLACES = ("$skip", "$skiptoken", "$top")
"""Query options a next link drops (its ``$skiptoken`` carries them)."""


def page_size(headers: Mapping[str, str]) -> int:
    """``Prefer: odata.maxpagesize`` (≤ :data:`MAX_PAGE_SIZE`, else 413), or the maximum."""
    match = re.search(r"odata\.maxpagesize\s*=\s*\"?(\d+)", headers.get("prefer", ""))
    if match is None:
        return MAX_PAGE_SIZE
    size = int(match.group(1))
    if size > MAX_PAGE_SIZE:
        raise BCError(413, "RequestEntityTooLarge",
                      f"The requested page size {size} exceeds the maximum page size of "
                      f"{MAX_PAGE_SIZE}.")
    return max(1, size)


def wants_count(params: Mapping[str, str]) -> bool:
    return params.get("$count", "").lower() == "true"


@dataclass(frozen=True)
class PageWindow:
    """Which rows one page reads: at most ``limit`` from ``offset`` or after ``after``."""

    limit: int
    top: int | None
    offset: int = 0
    after: tuple[Any, ...] | None = None

    def finish(self, rows: list[Row]) -> tuple[list[Row], bool, int | None]:
        """Rows read with ``limit + 1`` → (the page, whether a next link follows, rows
        of ``$top`` still to send or None)."""
        page, more = cut_page(rows, self.limit)
        left = None if self.top is None else self.top - len(page)
        if left is not None and left <= 0:
            more = False
        return page, more, left


def page_window(params: Mapping[str, str], headers: Mapping[str, str], *,
                keyset: bool) -> PageWindow:
    """The window of this request; a ``$skiptoken`` replaces ``$top`` and ``$skip``."""
    size = page_size(headers)
    top = bc_int_option(params, "$top")
    offset = bc_int_option(params, "$skip") or 0
    after: tuple[Any, ...] | None = None
    token = params.get("$skiptoken")
    if token:
        state = decode_token(token)
        top = state.get("left")
        if keyset:
            after, offset = tuple(state["after"]), 0
        else:
            offset = int(state.get("offset", 0))
    return PageWindow(size if top is None else min(size, top), top, offset, after)


def next_page_link(base: str, params: Mapping[str, str], state: Mapping[str, Any]) -> str:
    """``@odata.nextLink``: the same options with ``state`` as ``$skiptoken``."""
    next_params = without(params, NEXT_LINK_REPLACES)
    next_params["$skiptoken"] = encode_token(state)
    return next_link(base, next_params, "$")
