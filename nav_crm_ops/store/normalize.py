"""Error message normalization: one text per kind of error, whatever the record.

Why: the skip rule ("the same error N times in a row") and the error groups in the
troubleshooting notebook must see "The length of 'name' exceeded 160 for record 1f0c..." and the
same message for another record as one error. GUIDs, quoted values, correlation ids and numbers
are replaced by placeholders; white space is collapsed. A list of ids (``accounts a1…, b2…,
c3…``, ``codes 'BD', 'PS'``, ``[1, 2, 3]``) becomes one placeholder and "(and 37 more)" tails
are dropped, so a message naming 1, 3 or 40 records is still one cause - one group.
"""

from __future__ import annotations

import re

__all__ = ["normalize_error_message"]

_GUID = re.compile(r"\{?\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
                   r"[0-9a-fA-F]{12}\b\}?")
_CORRELATION = re.compile(r"CorrelationId:\s*\S+", re.IGNORECASE)
_DOUBLE_QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"')
_SINGLE_QUOTED = re.compile(r"'(?:[^']|'')*'")
_HEX = re.compile(r"\b0x[0-9a-fA-F]+\b")
_NUMBER = re.compile(r"(?<![\w<])[-+]?\d+(?:[.,]\d+)*(?![\w>])")
_RECORD_NUMBER = re.compile(r"\b[A-Za-z]{1,4}-?\d{3,}\b")
"""Record numbers that mix a short prefix and digits (customer ``C0081323``, order
``SO-1001``, contact ``CT10000``)."""
_SPACE = re.compile(r"\s+")
_PLACEHOLDER = r"(?:<guid>|'<value>'|\"<value>\"|<no>|<n>|<id>)"
_LIST = re.compile(rf"(?P<first>{_PLACEHOLDER})(?:\s*(?:[,;|]|\s(?:and|or)\s)\s*"
                   rf"{_PLACEHOLDER})+")
"""Two or more placeholders separated by commas, semicolons, bars, "and" or "or"."""
_BRACKETED = re.compile(rf"\[\s*({_PLACEHOLDER})\s*\]")
_MORE = re.compile(r"\s*[(\[]?\s*(?:,\s*)?(?:and|\+)\s*<n>\s+(?:more|others?)\s*[)\]]?",
                   re.IGNORECASE)
"""``(and 37 more)``, ``, and 3 others``, ``+12 more``: how long the list was."""


def normalize_error_message(message: str) -> str:
    """``message`` with ids, quoted values and numbers replaced so that groups form.

    Service error codes such as ``0x80044331`` are kept: they name the kind of error.
    """
    text = _CORRELATION.sub("CorrelationId: <id>", message or "")
    text = _GUID.sub("<guid>", text)
    text = _DOUBLE_QUOTED.sub('"<value>"', text)
    text = _SINGLE_QUOTED.sub("'<value>'", text)
    codes: list[str] = []

    def keep_code(match: re.Match[str]) -> str:
        codes.append(match.group(0))
        return f"<code{len(codes) - 1}>"

    text = _HEX.sub(keep_code, text)
    text = _RECORD_NUMBER.sub("<no>", text)
    text = _NUMBER.sub("<n>", text)
    text = _MORE.sub("", text)
    text = _LIST.sub(lambda match: match.group("first"), text)
    text = _BRACKETED.sub(r"\1", text)
    for index, code in enumerate(codes):
        text = text.replace(f"<code{index}>", code)
    return _SPACE.sub(" ", text).strip()
