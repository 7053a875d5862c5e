"""``decode_batch_response`` (MIME headers parsed only for a change set, repeated header
blocks parsed once per reply) answers exactly what the plain reading of every part did, for
random replies: CRLF and LF line ends, change sets, headers without a colon, empty and
non-JSON bodies, ``multipart/mixed`` named outside a part's Content-Type."""

from __future__ import annotations

import random
import re
from typing import Any

from nav_crm_ops import jsontext
from nav_crm_ops.connectors.multipart import decode_batch_response


# -- the plain reading, as it was before (the reference) -----------------------------------------
def _ref_boundary(content_type: str) -> str:
    match = re.search(r'boundary="?([^";]+)"?', content_type, re.I)
    assert match
    return match.group(1)


def _ref_split(body: str, boundary: str) -> list[str]:
    chunks = re.split(rf"--{re.escape(boundary)}(?:--)?[ \t]*\r?\n?", body)
    return [c for c in chunks[1:] if c.strip()]


def _ref_headers_and_rest(text: str) -> tuple[dict[str, str], str]:
    parts = re.split(r"\r?\n\r?\n", text, maxsplit=1)
    head, rest = (parts[0], parts[1]) if len(parts) == 2 else (text, "")
    headers: dict[str, str] = {}
    for line in head.splitlines():
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    return headers, rest


def _reference(content_type: str, body: bytes) -> list[tuple[int, dict[str, str], Any]]:
    out: list[tuple[int, dict[str, str], Any]] = []
    for chunk in _ref_split(body.decode("utf-8"), _ref_boundary(content_type)):
        part_headers, rest = _ref_headers_and_rest(chunk)
        ctype = part_headers.get("content-type", "")
        if ctype.startswith("multipart/mixed"):
            out.extend(_reference(ctype, rest.encode("utf-8")))
            continue
        status_line, _, after = rest.lstrip("\r\n").partition("\n")
        status = int(status_line.split()[1])
        if after.startswith(("\r\n", "\n")):
            http_headers: dict[str, str] = {}
            payload = after
        else:
            http_headers, payload = _ref_headers_and_rest(after)
        payload = payload.strip()
        parsed: Any = None
        if payload:
            try:
                parsed = jsontext.loads(payload)
            except ValueError:
                parsed = payload
        out.append((status, http_headers, parsed))
    return out


# -- random replies -------------------------------------------------------------------------------
HEADER_LINES = ["Content-Type: application/json; odata.metadata=minimal", "OData-Version: 4.0",
                "Preference-Applied: return=representation", "ETag: W/\"{n}\"",
                "OData-EntityId: https://org/api/data/v9.2/accounts(0000000{d}-0000-0000-0000-"
                "000000000000)", "  X-Odd :  spaced value  ", "no colon here",
                "Retry-After: 3", "X-Note: multipart/mixed is not my type", "content-type: text/plain"]
BODIES = ['{"@odata.etag":"W/\\"{n}\\"","accountid":"x{n}"}', "", "not json {n}",
          '{"error":{"code":"0x80040237","message":"dup"}}', "  \r\n  ", "[1, 2, {n}]"]


def _part(rng: random.Random, eol: str, n: int) -> str:
    mime = [rng.choice(["Content-Type: application/http", "content-type: application/http"]),
            "Content-Transfer-Encoding: binary"]
    if rng.random() < 0.2:
        mime.append("X-Comment: multipart/mixed elsewhere")
    status = rng.choice(["HTTP/1.1 201 Created", "HTTP/1.1 204 No Content",
                         "HTTP/1.1 412 Precondition Failed", "HTTP/1.1 429 Too Many Requests"])
    headers = [rng.choice(HEADER_LINES).format(n=n, d=n % 10)
               for _ in range(rng.randint(0, 5))]
    body = rng.choice(BODIES).replace("{n}", str(n))
    http = eol.join([status, *headers]) + eol + eol + body
    return eol.join(mime) + eol + eol + http + eol


def _reply(rng: random.Random, eol: str, boundary: str, depth: int = 0) -> str:
    out = []
    for n in range(rng.randint(1, 12)):
        if depth == 0 and rng.random() < 0.15:
            inner = f"changesetresponse_{n}"
            out.append(f"--{boundary}{eol}Content-Type: multipart/mixed; boundary={inner}"
                       f"{eol}{eol}" + _reply(rng, eol, inner, depth + 1))
        else:
            out.append(f"--{boundary}{eol}" + _part(rng, eol, n))
    return "".join(out) + f"--{boundary}--{eol}"


def test_same_responses_as_the_plain_reading_for_random_replies() -> None:
    rng = random.Random(7)
    for _ in range(400):
        eol = rng.choice(["\r\n", "\n"])
        boundary = f"batchresponse_{rng.getrandbits(32):x}"
        body = _reply(rng, eol, boundary).encode("utf-8")
        content_type = f"multipart/mixed; boundary={boundary}"
        got = [(p.status, p.headers, p.body) for p in decode_batch_response(content_type, body)]
        assert got == _reference(content_type, body)


def test_each_part_has_its_own_headers() -> None:
    eol = "\r\n"
    part = (f"--b{eol}Content-Type: application/http{eol}{eol}HTTP/1.1 201 Created{eol}"
            f"OData-Version: 4.0{eol}{eol}{{}}{eol}")
    first, second = decode_batch_response("multipart/mixed; boundary=b",
                                          (part * 2 + f"--b--{eol}").encode())
    assert first.headers == second.headers == {"odata-version": "4.0"}
    assert first.headers is not second.headers
