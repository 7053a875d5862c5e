"""Errors, credentials, option names and URL keys of the emulated NAV 2018 OData v4 services.

Error bodies are OData v4's ``{"error":{"code":…,"message":…}}`` without the correlation id
Business Central online appends. Option values travel as the enum member names NAV's OData v4
endpoint gives them: every character of the caption that cannot be in an identifier is written
as ``_xHHHH_`` (its UTF-16 code in hex), so ``Customer Price Group`` is
``Customer_x0020_Price_x0020_Group``, ``G/L Account`` is ``G_x002F_L_x0020_Account`` and the blank
option ``" "`` is ``_x0020_``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ...secrets import Secret
from ..info import SandboxInfo
from ..odata.errors import ODataError
from ..odata.replies import JSON_UTF8, Reply
from .pages import Page

__all__ = ["NAV_USER", "NavCredentials", "NavError", "Target", "decode_option",
           "encode_option", "nav_credentials", "parse_key", "unknown_segment"]

NAV_USER = "NAVCRM-SYNC"
"""The NavUserPassword user the sandbox accepts (with :func:`nav_credentials`' key)."""
ODATA_ROOT = "ODataV4"
PAGE_SIZE = 1000
"""NAV's default ``ODataServicesMaxPageSize``."""
REALM = "Microsoft Dynamics NAV"
BLANK_OPTION = "_x0020_"


class NavError(ODataError):
    """An error answered in NAV's OData v4 shape."""

    def reply(self) -> Reply:
        return Reply(self.status, {"error": {"code": self.code, "message": self.message}},
                     {"content-type": JSON_UTF8})


def unknown_segment(segment: str) -> NavError:
    """What NAV answers for a path segment its OData model does not have (an unpublished
    service name, ``$batch``)."""
    return NavError(404, "BadRequest_NotFound",
                    f"Resource not found for the segment '{segment}'.")


def unknown_property(name: str, service: str) -> NavError:
    return NavError(400, "BadRequest_NotFound",
                    f"Could not find a property named '{name}' on type 'NAV.{service}'.")


@dataclass(frozen=True)
class NavCredentials:
    """The user name and web service access key of the sandbox's NAV services."""

    user: str
    access_key: Secret

    def basic_header(self) -> str:
        """``Authorization`` header value for HTTP Basic."""
        raw = f"{self.user}:{self.access_key.reveal()}".encode()
        return "Basic " + base64.b64encode(raw).decode()


def nav_credentials(info: SandboxInfo) -> NavCredentials:
    """The NAV user and its web service access key, derived from the sandbox's client secret
    (stable across restarts of one data directory; NAV's keys are 44 base64 characters)."""
    digest = hmac.new(info.client_secret.reveal().encode(), b"nav-web-service-access-key",
                      hashlib.sha256).digest()
    return NavCredentials(NAV_USER, Secret(base64.b64encode(digest).decode()))


def encode_option(value: str | None) -> str:
    """A stored option caption → NAV's OData v4 enum member name."""
    if value in (None, "", " "):
        return BLANK_OPTION
    return re.sub(r"[^0-9A-Za-z]", lambda m: f"_x{ord(m.group()):04X}_", str(value))


def decode_option(text: Any, options: Iterable[str]) -> Any:
    """A written enum member name (or caption) → the stored caption; unchanged when no option
    matches, so the BC rules word the error."""
    for option in options:
        if text in (option, encode_option(option)):
            return option
    return text


_KEY_PART = re.compile(r"\s*(?:(?P<name>[A-Za-z_]\w*)\s*=\s*)?"
                       r"(?P<value>'(?:[^']|'')*'|[-+]?\d+(?:\.\d+)?|\d{4}-\d{2}-\d{2})\s*(?:,|$)")


def parse_key(text: str, key_names: tuple[str, ...]) -> dict[str, Any]:
    """``'10000'`` or ``Document_Type='Order',Document_No='1001',Line_No=10000`` → values by
    key field; a 400 when the key does not name every key field of the page exactly once."""
    values: dict[str, Any] = {}
    position = 0
    for index, match in enumerate(_KEY_PART.finditer(text)):
        if match.start() != position or match.end() == position:
            break
        position = match.end()
        name = match.group("name")
        if name is None and len(key_names) == 1 and index == 0:
            name = key_names[0]
        values[name or ""] = _key_value(match.group("value"))
    if position != len(text) or sorted(values) != sorted(key_names):
        raise NavError(400, "BadRequest_InvalidKey",
                       f"The key '({text})' is not valid for this resource; give "
                       f"{', '.join(key_names)}.")
    return values


def _key_value(text: str) -> Any:
    if text.startswith("'"):
        return text[1:-1].replace("''", "'")
    if "-" in text[1:]:
        return text
    return float(text) if "." in text else int(text)


def key_literal(value: Any) -> str:
    """A key value as it appears in a NAV URL (``'10000'``, ``10000``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(int(value)) if float(value).is_integer() else str(value)
    return "'" + str(value).replace("'", "''") + "'"


@dataclass(frozen=True)
class Target:
    """A parsed request path: the public ``ODataV4/`` root, the company, the page and the
    key values (None: the collection)."""

    root: str
    company: str | None = None
    page: Page | None = None
    key: dict[str, Any] | None = None

    @property
    def company_path(self) -> str:
        return "Company(" + key_literal(self.company or "") + ")"

    @property
    def url(self) -> str:
        """The public URL of the page's collection."""
        service = self.page.service if self.page else ""
        return f"{self.root}{self.company_path}/{service}"

    @property
    def context(self) -> str:
        service = self.page.service if self.page else ""
        return f"{self.root}$metadata#{self.company_path}/{service}"

    def record_url(self, key: dict[str, Any]) -> str:
        """The public URL of one record (NAV's ``Location``)."""
        assert self.page is not None
        if len(key) == 1:
            inner = key_literal(next(iter(key.values())))
        else:
            inner = ",".join(f"{name}={key_literal(value)}" for name, value in key.items())
        return f"{self.url}({inner})"
