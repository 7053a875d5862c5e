"""Multipart ``$batch`` bodies of the Dataverse Web API: parse requests, format responses.

A batch is a ``multipart/mixed`` body whose parts are either one ``application/http`` request
or a change set (a nested ``multipart/mixed``). Responses use ``batchresponse_<guid>`` and
``changesetresponse_<guid>`` boundaries, each part an embedded ``HTTP/1.1`` response.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from http import HTTPStatus

__all__ = [
    "BatchFormatError",
    "BatchRequest",
    "BatchResponse",
    "ChangeSet",
    "ChangeSetResponse",
    "boundary_of",
    "format_batch_response",
    "parse_batch",
]

CRLF = b"\r\n"
# Compiled once: a 1,000-part batch looked each pattern up in re's cache several times a part.
_LEADING_BLANK = re.compile(rb"^[ \t]*\r?\n")
_BLANK_LINE = re.compile(rb"\r?\n\r?\n")
_ASCII_SPACE = " \t\n\r\x0b\x0c"
"""What ``bytes.strip()`` removes (``str.strip()`` removes more)."""
_REQUEST_LINE = re.compile(rb"\s*([A-Z]+) (.+?)(?: HTTP/1\.[01])?\r?\n")
"""The request line a part starts with (the rule :func:`_request_line` follows)."""
_BYTES_SPACE = b" \t\n\r\x0b\x0c"
"""What ``\\s`` matches in a bytes pattern."""
_VERSIONS = (b" HTTP/1.0", b" HTTP/1.1")


class BatchFormatError(Exception):
    """The batch body is not a well-formed multipart/mixed OData batch."""


@dataclass
class BatchRequest:
    method: str
    url: str
    headers: dict[str, str]  # lower-case names
    body: bytes
    content_id: str | None = None


@dataclass
class ChangeSet:
    requests: list[BatchRequest] = field(default_factory=list)


@dataclass
class BatchResponse:
    status: int
    headers: dict[str, str]
    body: bytes = b""
    content_id: str | None = None


@dataclass
class ChangeSetResponse:
    responses: list[BatchResponse]


def boundary_of(content_type: str) -> str:
    """The ``boundary`` parameter of a multipart content type."""
    match = re.search(r'boundary\s*=\s*"?([^";,\s]+)"?', content_type, re.IGNORECASE)
    if not match or not content_type.lower().startswith("multipart/mixed"):
        raise BatchFormatError("The $batch request needs 'Content-Type: multipart/mixed; "
                               "boundary=batch_<id>'.")
    return match.group(1)


def _split(body: bytes, boundary: str) -> list[bytes]:
    chunks = body.split(b"--" + boundary.encode())
    if len(chunks) < 2:
        raise BatchFormatError(f"The $batch body does not contain the boundary '{boundary}'.")
    parts: list[bytes] = []
    for index in range(1, len(chunks)):
        chunk = chunks[index]
        if chunk.startswith(b"--"):
            return parts
        # The line break before the next delimiter belongs to it (RFC 2046), as
        # ``re.split(rb"(?:\r?\n)?--<boundary>")`` split it (a regex over the whole body).
        if index + 1 < len(chunks):
            chunk = chunk[:-2] if chunk.endswith(b"\r\n") else (
                chunk[:-1] if chunk.endswith(b"\n") else chunk)
        parts.append(_LEADING_BLANK.sub(b"", chunk, count=1))
    raise BatchFormatError(f"The $batch body is missing its closing boundary '--{boundary}--'.")


def _headers_and_body(block: bytes) -> tuple[dict[str, str], bytes]:
    match = _BLANK_LINE.search(block)
    if match is None:
        head, body = block, b""
    else:
        head, body = block[:match.start()], block[match.end():]
    headers: dict[str, str] = {}
    if not head:
        return headers, body
    # Decoded once and split at "\n" (the "\r" before it goes with the value's spaces): the
    # same headers as splitting the bytes at "\r?\n" and decoding each line, for less.
    lines = head.decode("utf-8").split("\n")
    for index, line in enumerate(lines):
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
        elif line.strip(_ASCII_SPACE):
            ended = index + 1 < len(lines) and line.endswith("\r")
            raise BatchFormatError(f"Malformed header line in $batch part: "
                                   f"'{(line[:-1] if ended else line).encode()!r}'.")
    return headers, body


def _request_line(message: bytes) -> tuple[bytes, bytes, int] | None:
    """Method, URL and end of the request line :data:`_REQUEST_LINE` matches at the start of
    ``message`` (None where it does not), found without it: its lazy URL tried every length
    of every URL (a third of a part's parsing). The URL is the line after the method and a
    space, less the longest of `` HTTP/1.x\\r``, `` HTTP/1.x``, ``\\r`` it ends with that
    leaves at least one byte."""
    start = len(message) - len(message.lstrip(_BYTES_SPACE))
    end = message.find(b"\n", start)
    if end < 0:
        return None
    method, _, rest = message[start:end].partition(b" ")
    if not (method.isalpha() and method.isupper() and rest):
        return None
    if len(rest) > 10 and rest[-1:] == b"\r" and rest[:-1].endswith(_VERSIONS):
        rest = rest[:-10]
    elif len(rest) > 9 and rest.endswith(_VERSIONS):
        rest = rest[:-9]
    elif len(rest) > 1 and rest[-1:] == b"\r":
        rest = rest[:-1]
    return method, rest, end + 1


def _parse_request(mime_headers: dict[str, str], http_message: bytes) -> BatchRequest:
    """One ``application/http`` part, its MIME headers read (once: the caller needs them)."""
    if not mime_headers.get("content-type", "").lower().startswith("application/http"):
        raise BatchFormatError("Each $batch part needs 'Content-Type: application/http'.")
    found = _request_line(http_message)
    if found is None:
        raise BatchFormatError("A $batch part must start with a request line such as "
                               "'PATCH /api/data/v9.2/accounts(<id>) HTTP/1.1'.")
    method, url, end = found
    headers, body = _headers_and_body(http_message[end:])
    content_id = mime_headers.get("content-id") or headers.get("content-id")
    return BatchRequest(method=method.decode(), url=url.decode(),
                        headers=headers, body=body.rstrip(b"\r\n"), content_id=content_id)


def parse_batch(body: bytes, content_type: str) -> list[BatchRequest | ChangeSet]:
    """Split a batch body into requests and change sets, in order."""
    items: list[BatchRequest | ChangeSet] = []
    for part in _split(body, boundary_of(content_type)):
        mime_headers, inner = _headers_and_body(part)
        part_type = mime_headers.get("content-type", "")
        if part_type.lower().startswith("multipart/mixed"):
            change_set = ChangeSet()
            for sub in _split(inner, boundary_of(part_type)):
                sub_headers, message = _headers_and_body(sub)
                if sub_headers.get("content-type", "").lower().startswith("multipart/"):
                    raise BatchFormatError("Change sets cannot be nested in a $batch request.")
                change_set.requests.append(_parse_request(sub_headers, message))
            items.append(change_set)
        else:
            items.append(_parse_request(mime_headers, inner))
    return items


def _format_response(response: BatchResponse) -> bytes:
    lines = [b"Content-Type: application/http", b"Content-Transfer-Encoding: binary"]
    if response.content_id is not None:
        lines.append(f"Content-ID: {response.content_id}".encode())
    reason = HTTPStatus(response.status).phrase
    lines += [b"", f"HTTP/1.1 {response.status} {reason}".encode()]
    lines += [f"{name}: {value}".encode() for name, value in response.headers.items()]
    lines += [b"", response.body]
    return CRLF.join(lines)


def format_batch_response(items: list[BatchResponse | ChangeSetResponse]) -> tuple[bytes, str]:
    """The multipart body and its content type for a list of part responses."""
    boundary = f"batchresponse_{uuid.uuid4()}"
    chunks: list[bytes] = []
    for item in items:
        chunks.append(f"--{boundary}".encode())
        if isinstance(item, ChangeSetResponse):
            inner = f"changesetresponse_{uuid.uuid4()}"
            chunks.append(f"Content-Type: multipart/mixed; boundary={inner}".encode())
            chunks.append(b"")
            for response in item.responses:
                chunks.append(f"--{inner}".encode())
                chunks.append(_format_response(response))
            chunks.append(f"--{inner}--".encode())
        else:
            chunks.append(_format_response(item))
    chunks.append(f"--{boundary}--".encode())
    chunks.append(b"")
    return CRLF.join(chunks), f"multipart/mixed; boundary={boundary}"
