"""Query options and paging mechanics both services share: integer options, ``$expand``
lists, opaque state inside ``$skiptoken`` values and ``@odata.nextLink`` URLs."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar
from urllib.parse import parse_qsl, quote, urlencode

Row = TypeVar("Row")


def int_option(params: Mapping[str, str], name: str, error: Callable[[str], Exception], *,
               blank_is_none: bool = False) -> int | None:
    """A non-negative integer query option, None when absent; ``error(text)`` for bad text."""
    text = params.get(name)
    if text is None or (blank_is_none and text == ""):
        return None
    if not text.isdigit():
        raise error(text)
    return int(text)


def encode_state(state: Any, *, compact: bool = False, pad: bool = True) -> str:
    """JSON state → URL-safe base64 text for a paging token (``compact``: no spaces and
    UTF-8 kept, as Dataverse's cookie; else :func:`json.dumps`' defaults)."""
    raw = json.dumps(state, separators=(",", ":") if compact else None,
                     ensure_ascii=not compact).encode("utf-8")
    text = base64.urlsafe_b64encode(raw).decode()
    return text if pad else text.rstrip("=")


def decode_state(text: str, *, repad: bool = True) -> Any:
    """The inverse of :func:`encode_state` (missing padding restored when ``repad``);
    ValueError when garbled."""
    padded = text + "=" * (-len(text) % 4) if repad else text
    try:
        return json.loads(base64.urlsafe_b64decode(padded))
    except (ValueError, TypeError) as exc:  # binascii.Error is a ValueError
        raise ValueError(text) from exc


def next_link(base: str, params: Mapping[str, str] | Sequence[tuple[str, str]],
              safe: str) -> str:
    """``base?query`` with the query percent-encoded (``quote``, keeping ``safe``)."""
    return f"{base}?{urlencode(params, quote_via=quote, safe=safe)}"


def without(params: Mapping[str, str], names: Sequence[str]) -> dict[str, str]:
    """``params`` minus ``names`` (the options a next link replaces)."""
    return {k: v for k, v in params.items() if k not in names}


def cut_page(rows: list[Row], limit: int) -> tuple[list[Row], bool]:
    """Rows read with ``limit + 1`` → (the page, whether more rows follow)."""
    return rows[:limit], len(rows) > limit


_EXPAND_ITEM = r"\s*({name})\s*(?:\(([^()]*)\))?\s*(?:,|$)"


def split_expand(text: str, name_pattern: str = r"\w+",
                 ) -> tuple[list[tuple[str, dict[str, str]]], bool]:
    """``a,b($select=x;$top=1)`` → ([(name, nested options)], whether all text was read).

    Stops at the first item that does not follow on from the previous one."""
    items: list[tuple[str, dict[str, str]]] = []
    position = 0
    for match in re.finditer(_EXPAND_ITEM.format(name=name_pattern), text):
        if match.start() != position or match.end() == position:
            break
        position = match.end()
        options = match.group(2)
        items.append((match.group(1),
                      dict(parse_qsl(options.replace(";", "&"))) if options else {}))
    return items, position == len(text)
