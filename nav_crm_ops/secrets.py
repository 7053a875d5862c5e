"""A string type for client secrets and tokens that never shows its value.

``Secret("s3cr3t")`` prints, reprs, formats and pickles-by-repr as ``Secret('**********')``;
the only way to the value is the explicit :meth:`Secret.reveal`, used at the moment a request is
signed. Config loaders resolve secrets from environment variables or a keyring entry so that the
value is never written to config files, plans, notebooks or papermill parameters.
"""

from __future__ import annotations

import os
from typing import Any

from .exceptions import ConfigError

__all__ = ["Secret", "resolve_secret"]

_MASK = "**********"


class Secret:
    """Holds a secret value; ``str``/``repr``/``format`` never reveal it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if not isinstance(value, str):
            raise TypeError("Secret value must be a string")
        object.__setattr__(self, "_value", value)

    def reveal(self) -> str:
        """Return the secret value. Call only where the value is sent to the service."""
        return str(object.__getattribute__(self, "_value"))

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("Secret is immutable")

    def __repr__(self) -> str:
        return f"Secret('{_MASK}')"

    __str__ = __repr__

    def __format__(self, format_spec: str) -> str:
        return repr(self)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other.reveal() == self.reveal()

    def __hash__(self) -> int:
        return hash(("Secret", self.reveal()))

    def __bool__(self) -> bool:
        return bool(self.reveal())

    def __reduce__(self) -> Any:
        raise TypeError("Secret values cannot be pickled; resolve them again where needed")

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: Any) -> Any:
        from pydantic_core import core_schema

        def validate(value: Any) -> Secret:
            return value if isinstance(value, Secret) else Secret(str(value))

        return core_schema.no_info_plain_validator_function(
            validate, serialization=core_schema.plain_serializer_function_ser_schema(repr)
        )


def resolve_secret(*, env: str | None = None, keyring_service: str | None = None,
                   keyring_user: str | None = None, what: str = "secret") -> Secret:
    """Read a secret from an environment variable or a keyring entry.

    Raises :class:`ConfigError` naming the variable or keyring entry (never a value) when it is
    missing, so the message says exactly what to set.
    """
    if env:
        value = os.environ.get(env)
        if value:
            return Secret(value)
        if not keyring_service:
            raise ConfigError(
                f"{what}: environment variable {env} is not set; export it before running "
                f"(for the sandbox, `nav-crm-ops sandbox` prints the value to use)"
            )
    if keyring_service:
        try:
            import keyring
        except ImportError as exc:
            raise ConfigError(
                f"{what}: keyring entry {keyring_service}/{keyring_user} configured but the "
                "'keyring' package is not installed (pip install keyring)"
            ) from exc
        value = keyring.get_password(keyring_service, keyring_user or "")
        if value:
            return Secret(value)
        raise ConfigError(f"{what}: no keyring entry {keyring_service}/{keyring_user}")
    raise ConfigError(f"{what}: no environment variable or keyring entry configured")
