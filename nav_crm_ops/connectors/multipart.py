"""Dataverse multipart ``$batch``: encode independent requests, decode per-part responses."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from typing import Any

from .. import jsontext

__all__ = ["BatchPart", "PartResponse", "Request", "decode_batch_response", "encode_batch",
           "encode_requests"]


@dataclass(frozen=True)
class BatchPart:
    """One embedded request; ``url`` is absolute-path (``/api/data/v9.2/accounts(...)``)."""

    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None


@dataclass(frozen=True)
class PartResponse:
    status: int
    headers: dict[str, str]
    body: Any


Request = tuple[str, str, dict[str, str], Any]
"""A part to encode as (method, url, headers, body): :class:`BatchPart`'s fields, for
callers that build a thousand parts per batch (no dataclass instance per record)."""


def encode_batch(parts: list[BatchPart], boundary: str | None = None) -> tuple[str, bytes]:
    """Return (Content-Type header, body); each part is its own top-level request so one
    failing record never rolls back the others (no change set).

    Each part is ``--boundary``, its MIME headers, a blank line, the request line, its
    headers (``Content-Type: application/json; type=entry`` added when it has a body and
    names none), a blank line and the JSON body; lines end with CRLF, and the body ends
    with ``--boundary--``. Built as one string per part (a $batch holds 1,000 parts)."""
    return encode_requests([(p.method, p.url, p.headers, p.body) for p in parts], boundary)


def encode_requests(requests: list[Request], boundary: str | None = None) -> tuple[str, bytes]:
    """:func:`encode_batch` of parts given as :data:`Request` tuples (the same bytes)."""
    boundary = boundary or f"batch_{uuid.uuid4()}"
    opening = (f"--{boundary}\r\nContent-Type: application/http\r\n"
               "Content-Transfer-Encoding: binary\r\n\r\n")
    out: list[str] = []
    for method, url, headers, body in requests:
        payload = ""
        if body is not None:
            if "Content-Type" not in headers:
                headers = {**headers, "Content-Type": "application/json; type=entry"}
            payload = jsontext.dumps(body)
        out.append(f"{opening}{method} {url} HTTP/1.1\r\n"
                   + "".join([f"{k}: {v}\r\n" for k, v in headers.items()])
                   + f"\r\n{payload}\r\n")
    out.append(f"--{boundary}--\r\n")
    return f'multipart/mixed; boundary="{boundary}"', "".join(out).encode("utf-8")


_BOUNDARY = re.compile(r'boundary="?([^";]+)"?', re.I)


def _boundary(content_type: str) -> str:
    match = _BOUNDARY.search(content_type)
    if not match:
        raise ValueError(f"no multipart boundary in {content_type!r}")
    return match.group(1)


def _split(body: str, boundary: str) -> list[str]:
    chunks = re.split(rf"--{re.escape(boundary)}(?:--)?[ \t]*\r?\n?", body)
    return [c for c in chunks[1:] if c.strip()]


def _header_lines(head: str) -> dict[str, str]:
    """Header lines as a dict: names stripped and in lower case, values stripped."""
    headers: dict[str, str] = {}
    for line in head.splitlines():
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    return headers


def _headers_and_rest(text: str, known: dict[str, dict[str, str]] | None = None,
                      ) -> tuple[dict[str, str], str]:
    """``text``'s header lines (before its first blank line) and what follows. ``known``:
    header blocks parsed before in this reply (the parts of a ``$batch`` answer mostly
    repeat the same block), each part getting its own copy."""
    head, _, rest = _partition_blank(text)
    if known is None:
        return _header_lines(head), rest
    headers = known.get(head)
    if headers is None:
        headers = known[head] = _header_lines(head)
    return dict(headers), rest


def _partition_blank(text: str) -> tuple[str, str, str]:
    """``text`` split at its first blank line (what ``\\r?\\n\\r?\\n`` first matches):
    (before, the line breaks, after). Found with ``str.find`` (no regex per part)."""
    plain, crlf = text.find("\n\n"), text.find("\n\r\n")
    if plain < 0 and crlf < 0:
        return text, "", ""
    first = plain if crlf < 0 or 0 <= plain < crlf else crlf  # the blank line's first \n
    start = first - 1 if first and text[first - 1] == "\r" else first
    end = first + 2 if first == plain else first + 3
    return text[:start], text[start:end], text[end:]


def decode_batch_response(content_type: str, body: bytes) -> list[PartResponse]:
    """Flatten a batch response (change-set responses included) into responses in order."""
    text = body.decode("utf-8")
    out: list[PartResponse] = []
    known: dict[str, dict[str, str]] = {}
    for chunk in _split(text, _boundary(content_type)):
        head, _, rest = _partition_blank(chunk)
        # a part's own MIME headers matter only for a change set (multipart/mixed); a part
        # whose header block does not name it is a response, its MIME headers are not parsed
        if "multipart/mixed" in head:
            ctype = _header_lines(head).get("content-type", "")
            if ctype.startswith("multipart/mixed"):
                out.extend(decode_batch_response(ctype, rest.encode("utf-8")))
                continue
        out.append(_response(rest, known))
    return out


def _response(rest: str, known: dict[str, dict[str, str]]) -> PartResponse:
    """One response part after its MIME headers: status line, HTTP headers, JSON body (the
    text when it is no JSON)."""
    status_line, _, after = rest.lstrip("\r\n").partition("\n")
    status = int(status_line.split()[1])
    if after.startswith(("\r\n", "\n")):
        http_headers: dict[str, str] = {}
        payload = after
    else:
        http_headers, payload = _headers_and_rest(after, known)
    payload = payload.strip()
    parsed: Any = None
    if payload:
        try:
            parsed = jsontext.loads(payload)
        except ValueError:
            parsed = payload
    return PartResponse(status, http_headers, parsed)
