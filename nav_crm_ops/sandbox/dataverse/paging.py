"""Dataverse paging: ``$top``, ``Prefer: odata.maxpagesize``, the paging-cookie
``$skiptoken`` of ``@odata.nextLink`` and the ``$deltatoken`` of ``@odata.deltaLink``."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, unquote

from ..odata.paging import decode_state, encode_state, int_option
from .common import CODE_ODATA, DELTA_TOKEN_LIFETIME, MAX_PAGE_SIZE, DataverseError

DELTA_TIME_FORMAT = "%m/%d/%Y %H:%M:%S"


def top_option(params: Mapping[str, str]) -> int | None:
    return int_option(params, "$top", lambda text: DataverseError(
        400, CODE_ODATA, f"Invalid value '{text}' for $top: use a non-negative integer."))


@dataclass(frozen=True)
class Page:
    """Which rows one list request reads: ``limit`` rows after ``after`` (keyset)."""

    limit: int
    top: int | None
    after: tuple[Any, ...] | None = None
    number: int = 1
    applied: list[str] = field(default_factory=list)
    """Preferences applied (``odata.maxpagesize=n``)."""


def page_request(params: Mapping[str, str], prefer: Mapping[str, str],
                 position_size: int) -> Page:
    """The page a list request asks for; ``odata.maxpagesize`` overrides ``$top``."""
    top = top_option(params)
    page_size = MAX_PAGE_SIZE
    applied: list[str] = []
    max_page = prefer.get("odata.maxpagesize")
    if max_page is not None:
        if not max_page.isdigit() or int(max_page) < 1:
            raise DataverseError(400, CODE_ODATA, f"Invalid odata.maxpagesize "
                                                  f"'{max_page}': use a positive integer.")
        page_size = min(int(max_page), MAX_PAGE_SIZE)
        applied.append(f"odata.maxpagesize={page_size}")
        top = None
    limit = min(top, MAX_PAGE_SIZE) if top is not None else page_size
    if params.get("$skiptoken"):
        after, number = read_skiptoken(params["$skiptoken"], position_size)
        return Page(limit, top, after, number, applied)
    return Page(limit, top, applied=applied)


def skiptoken(key: str, first: str, last: str, position: tuple[Any, ...], page: int) -> str:
    """A paging cookie like the real one, carrying the sandbox's keyset position."""
    state = encode_state(list(position), compact=True)
    inner = (f'<cookie page="{page - 1}" sandbox="{state}"><{key} '
             f'last="{{{last.upper()}}}" first="{{{first.upper()}}}" /></cookie>')
    cookie = quote(quote(inner, safe=""), safe="")
    return f'<cookie pagenumber="{page}" pagingcookie="{cookie}" istracking="False" />'


def read_skiptoken(token: str, size: int) -> tuple[tuple[Any, ...], int]:
    """A :func:`skiptoken` → (keyset position of ``size`` values, page number)."""
    bad = DataverseError(400, CODE_ODATA, "The $skiptoken is invalid; pass the "
                                          "@odata.nextLink unchanged.")
    page = re.search(r'pagenumber="(\d+)"', token)
    cookie = re.search(r'pagingcookie="([^"]*)"', token)
    if page is None or cookie is None:
        raise bad
    state = re.search(r'sandbox="([^"]*)"', unquote(unquote(cookie.group(1))))
    if state is None:
        raise bad
    try:
        position = decode_state(state.group(1), repad=False)
    except ValueError:
        raise bad from None
    if not isinstance(position, list) or len(position) != size:
        raise bad
    return tuple(position), int(page.group(1))


def delta_token(version: int) -> str:
    return f"{version}!{datetime.now(UTC).strftime(DELTA_TIME_FORMAT)}"


def read_delta_token(token: str) -> int:
    """A :func:`delta_token` → the store version it was issued at (7 days at most)."""
    match = re.fullmatch(r"(\d+)!(\d\d/\d\d/\d{4} \d\d:\d\d:\d\d)", token)
    if match is None:
        raise DataverseError(400, CODE_ODATA, f"The $deltatoken '{token}' is invalid; "
                                              "use the @odata.deltaLink unchanged.")
    issued = datetime.strptime(match.group(2), DELTA_TIME_FORMAT).replace(tzinfo=UTC)
    if datetime.now(UTC) - issued > DELTA_TOKEN_LIFETIME:
        raise DataverseError(400, CODE_ODATA, "The $deltatoken has expired (older than 7 "
                                              "days); read all rows again with Prefer: "
                                              "odata.track-changes.")
    return int(match.group(1))
