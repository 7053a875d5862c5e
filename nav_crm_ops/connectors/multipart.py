"""Dataverse multipart ``$batch``: encode independent requests, decode per-part responses."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from typing import Any

from .. import jsontext

__all__ = ["BatchPart", "PartResponse", "decode_batch_response", "encode_batch"]


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


def encode_batch(parts: list[BatchPart], boundary: str | None = None) -> tuple[str, bytes]:
    """Return (Content-Type header, body); each part is its own top-level request so one
    failing record never rolls back the others (no change set).

    Each part is ``--boundary``, its MIME headers, a blank line, the request line, its
    headers (``Content-Type: application/json; type=entry`` added when it has a body and
    names none), a blank line and the JSON body; lines end with CRLF, and the body ends
    with ``--boundary--``. Built as one string per part (a $batch holds 1,000 parts)."""
    boundary = boundary or f"batch_{uuid.uuid4()}"
    opening = (f"--{boundary}\r\nContent-Type: application/http\r\n"
               "Content-Transfer-Encoding: binary\r\n\r\n")
    out: list[str] = []
    for part in parts:
        headers = part.headers
        payload = ""
        if part.body is not None:
            if "Content-Type" not in headers:
                headers = {**headers, "Content-Type": "application/json; type=entry"}
            payload = jsontext.dumps(part.body)
        out.append(f"{opening}{part.method} {part.url} HTTP/1.1\r\n"
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


def _headers_and_rest(text: str) -> tuple[dict[str, str], str]:
    head, _, rest = _partition_blank(text)
    headers: dict[str, str] = {}
    for line in head.splitlines():
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    return headers, rest


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
    for chunk in _split(text, _boundary(content_type)):
        part_headers, rest = _headers_and_rest(chunk)
        ctype = part_headers.get("content-type", "")
        if ctype.startswith("multipart/mixed"):
            out.extend(decode_batch_response(ctype, rest.encode("utf-8")))
            continue
        status_line, _, after = rest.lstrip("\r\n").partition("\n")
        status = int(status_line.split()[1])
        if after.startswith(("\r\n", "\n")):
            http_headers: dict[str, str] = {}
            payload = after
        else:
            http_headers, payload = _headers_and_rest(after)
        payload = payload.strip()
        parsed: Any = None
        if payload:
            try:
                parsed = jsontext.loads(payload)
            except ValueError:
                parsed = payload
        out.append(PartResponse(status, http_headers, parsed))
    return out
