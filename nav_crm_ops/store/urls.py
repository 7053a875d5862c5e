"""State database URLs: which ones the store supports, and passwords kept out of them.

Why a module of its own: ``nav-crm-ops init --state-url`` checks a URL before writing it, the
workspace config adds a password from the environment when it opens the store, and every
message shows the URL with the password hidden — one place decides all three.

Supported: SQLite (``sqlite:///state.db``, the default) and PostgreSQL through psycopg 3
(``postgresql+psycopg://user@host:5432/dbname``; a bare ``postgresql://`` means psycopg 3
here, not SQLAlchemy's default psycopg2). A password never goes into the config file: the
config names an environment variable (``state_password_env``) the password is read from.
"""

from __future__ import annotations

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from ..exceptions import ConfigError

__all__ = ["EXAMPLES", "check_state_url", "shown", "with_password"]

EXAMPLES = "sqlite:///state.db or postgresql+psycopg://user@host:5432/dbname"
_DRIVERS = {"sqlite": ("pysqlite",), "postgresql": ("psycopg",)}


def _parse(url: str) -> URL:
    try:
        return make_url(url)
    except (ArgumentError, ValueError):
        # Not echoed: an unparseable URL may still hold a password.
        raise ConfigError(f"the state URL is not a database URL; use e.g. {EXAMPLES}") from None


def shown(url: str) -> str:
    """``url`` with its password hidden (``***``), for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return "<unparseable URL>"


def check_state_url(url: str) -> str:
    """``url`` ready to store in ``nav_crm_ops.toml`` (a bare ``postgresql://`` becomes
    ``postgresql+psycopg://``), or ConfigError saying what to change: an unsupported
    database or driver, a password written into it, or a missing driver package."""
    parsed = _parse(url)
    backend = parsed.get_backend_name()
    if backend not in _DRIVERS:
        raise ConfigError(f"the state database {shown(url)} is {backend}; nav-crm-ops keeps its "
                          f"state in SQLite or PostgreSQL: use e.g. {EXAMPLES}")
    if backend == "postgresql" and "+" not in parsed.drivername:
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_driver_name() not in _DRIVERS[backend]:
        raise ConfigError(f"the state URL {shown(url)} uses the {parsed.get_driver_name()} "
                          f"driver; use {backend}+{_DRIVERS[backend][0]}:// ({EXAMPLES})")
    if parsed.password is not None:
        raise ConfigError(f"the state URL {shown(url)} contains a password; leave it out and "
                          "put it in an environment variable named by --state-password-env "
                          "(state_password_env in nav_crm_ops.toml)")
    if backend == "postgresql":
        try:
            import psycopg  # noqa: F401
        except ImportError:
            raise ConfigError("PostgreSQL state databases need the psycopg driver: "
                              "pip install 'nav-crm-ops[postgres]'") from None
    return parsed.render_as_string(hide_password=False)


def with_password(url: str, password: str) -> str:
    """``url`` with ``password`` set (for opening the database only: never print it)."""
    return _parse(url).set(password=password).render_as_string(hide_password=False)
