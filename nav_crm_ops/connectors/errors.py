"""Map HTTP responses of either service to the package's exception tree."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx

from ..exceptions import (
    AuthError,
    ConcurrencyError,
    ConnectorError,
    NotFoundError,
    PermanentError,
    ThrottledError,
    TransientError,
    ValidationError,
)

__all__ = ["error_from_response", "parse_retry_after", "split_correlation_id"]

_CORRELATION = re.compile(r"\s*CorrelationId:\s*([0-9a-fA-F-]{36})\.?\s*$")
_HINT = {
    401: "check the client id, the client secret and that the token scope names this service",
    403: "the application user lacks a security role for this operation",
    404: "check the entity set name and record id",
    409: "re-read the record and apply the change again",
    412: "re-read the record and apply the change again",
    429: "service protection limit: reduce parallelism or retry after the given delay",
}


def split_correlation_id(message: str) -> tuple[str, str]:
    """Split BC's trailing ``CorrelationId: <guid>.`` off an error message."""
    match = _CORRELATION.search(message)
    if not match:
        return message, ""
    return message[: match.start()].rstrip(), match.group(1)


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (only the delta-seconds form is used by both)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def _error_body(body: Any) -> tuple[str, str]:
    if isinstance(body, (bytes, str)):
        try:
            body = json.loads(body or "null")
        except ValueError:
            return "", str(body)[:500] if isinstance(body, str) else ""
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        err = body["error"]
        return str(err.get("code") or ""), str(err.get("message") or "")
    return "", ""


_ERROR_CLASS: dict[int, type[ConnectorError]] = {
    401: AuthError, 403: AuthError,
    404: NotFoundError,
    409: ConcurrencyError, 412: ConcurrencyError,
    429: ThrottledError,
    408: TransientError, 500: TransientError, 502: TransientError, 503: TransientError,
    504: TransientError,
}
"""Statuses with their own exception; other 4xx are :class:`ValidationError`, the rest
:class:`PermanentError` (a table, so the mapping reads at a glance)."""


def _error_class(status: int) -> type[ConnectorError]:
    """The exception class a status maps to (callers catch by class, so this is the contract)."""
    if status in _ERROR_CLASS:
        return _ERROR_CLASS[status]
    return ValidationError if 400 <= status < 500 else PermanentError


def _correlation_id(service_message: str, headers: httpx.Headers) -> tuple[str, str]:
    """The message without BC's trailing correlation id, and the id (from the text or headers).

    Support asks for this id first, so it is taken from wherever the service put it."""
    service_message, correlation = split_correlation_id(service_message)
    if not correlation:
        correlation = str(headers.get("ms-correlation-x") or headers.get("x-ms-correlation-id")
                          or headers.get("request-id") or "")
    return service_message, correlation


def _error_message(status: int, code: str, service_message: str, *, service: str,
                   entity: str, record_key: str) -> str:
    """One line naming what failed, the service's words, and a hint of what to do."""
    what = f"{service} {entity}{f'({record_key})' if record_key else ''}".strip()
    text = f"{what}: HTTP {status}{f' {code}' if code else ''}: {service_message or '(no message)'}"
    hint = _HINT.get(status)
    return f"{text} — {hint}" if hint else text


def error_from_response(status: int, body: Any, headers: Any, *, service: str,
                        entity: str = "", record_key: str = "") -> ConnectorError:
    """Build the exception for a failed response (whole request or one batch part)."""
    code, service_message = _error_body(body)
    headers = httpx.Headers(dict(headers or {}))
    service_message, correlation = _correlation_id(service_message, headers)
    message = _error_message(status, code, service_message, service=service, entity=entity,
                             record_key=record_key)
    kwargs: dict[str, Any] = dict(service=service, entity=entity, record_key=record_key,
                                  status=status, code=code, service_message=service_message,
                                  correlation_id=correlation, response_body=body)
    error_class = _error_class(status)
    if error_class is ThrottledError:
        kwargs["retry_after"] = parse_retry_after(headers.get("Retry-After"))
    return error_class(message, **kwargs)
