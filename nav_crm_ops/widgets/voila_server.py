"""The Voilà process behind ``nav-crm-ops ui``: Voilà with jupyter_server's login in front.

``python -m nav_crm_ops.widgets.voila_server [--no-auth] [voila options] FOLDER`` (built by
:func:`nav_crm_ops.widgets.dashboards.voila_command`). It configures Voilà's own identity
provider (jupyter_server's ``PasswordIdentityProvider``) through Voilà's traits, no proxy:

- ``Voila.token`` from ``$NAV_CRM_OPS_UI_TOKEN``: ``?token=``, the ``Authorization: token``
  header or the login form; a login sets a signed cookie (secret random per start);
- ``PasswordIdentityProvider.hashed_password`` from ``$NAV_CRM_OPS_UI_PASSWORD_HASH``, with
  ``allow_password_change`` off (the login form must not write a Jupyter config file); the
  provider is :class:`.dashboard_login.DashboardIdentityProvider`, the same class with a
  login page that says where the token comes from;
- ``xsrf_cookies`` on, and requests logged by jupyter_server's ``log_request``, which scrubs
  ``?token=`` from the logged address; :class:`SecretScrubber` does the same for tornado's
  own warnings (a 404 on ``/x?token=...`` is logged with the address as requested).

Both variables are removed from this process's environment before Voilà starts, so kernels (the
notebooks) never inherit them. Without either, it exits 2 unless ``--no-auth`` comes first
(the command line decides that, and only for a loopback address).

It is served as an application, not a folder (:class:`DashboardVoila`): ``/`` and
``/voila/tree...`` answer the start page of :mod:`.landing` (behind the same login); only the
notebooks it lists render (anything else under ``/voila/render/``, e.g. ``jobs/...``, is a 404);
Voilà's contents API, which would list the folder, is not served.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import sys
from typing import Any

from .dashboards import NO_AUTH_ARG, PASSWORD_HASH_ENV, TOKEN_ENV

EXIT_NO_AUTH = 2
SCRUBBED_LOGGERS = ("tornado.access", "tornado.application", "tornado.general", "Voila")
_TOKEN_PARAM = re.compile(r"(token=)[^&\s'\"]+", re.IGNORECASE)


class SecretScrubber(logging.Filter):
    """Rewrites a log record so neither ``token=...`` nor any given secret appears in it."""

    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        self.secrets = [secret for secret in secrets if secret]

    def filter(self, record: logging.LogRecord) -> bool:
        message = _TOKEN_PARAM.sub(r"\1[secret]", record.getMessage())
        for secret in self.secrets:
            message = message.replace(secret, "[secret]")
        record.msg, record.args = message, ()
        return True


def install_scrubber(secrets: list[str]) -> SecretScrubber:
    """Attach one :class:`SecretScrubber` to every logger a request can reach."""
    scrubber = SecretScrubber(secrets)
    for name in SCRUBBED_LOGGERS:
        logging.getLogger(name).addFilter(scrubber)
    return scrubber


def voila_config(token: str, hashed_password: str) -> Any:
    """The traitlets config that puts the login in front of every dashboard handler."""
    from jupyter_server.log import log_request
    from traitlets.config import Config

    from .dashboard_login import DashboardIdentityProvider

    config = Config()
    config.Voila.identity_provider_class = DashboardIdentityProvider
    config.Voila.token = token
    config.Voila.auto_token = False
    config.Voila.tornado_settings = {
        "xsrf_cookies": True,
        "log_function": functools.partial(log_request, record_prometheus_metrics=False),
    }
    config.PasswordIdentityProvider.hashed_password = hashed_password
    config.PasswordIdentityProvider.allow_password_change = False
    return config


def main(argv: list[str] | None = None) -> int:
    """Start Voilà with the login configured; returns an exit code only when refusing."""
    args = list(sys.argv[1:] if argv is None else argv)
    no_auth = bool(args) and args[0] == NO_AUTH_ARG
    if no_auth:
        args = args[1:]
    token = os.environ.pop(TOKEN_ENV, "").strip()
    hashed_password = os.environ.pop(PASSWORD_HASH_ENV, "").strip()
    if not (token or hashed_password or no_auth):
        print(f"error: refusing to serve the dashboards without authentication: set {TOKEN_ENV} "
              f"or {PASSWORD_HASH_ENV} (nav-crm-ops ui does it for you)", file=sys.stderr)
        return EXIT_NO_AUTH
    from .landing_server import DashboardVoila

    install_scrubber([token, hashed_password])
    DashboardVoila.launch_instance(args, config=voila_config(token, hashed_password))
    return 0


if __name__ == "__main__":
    sys.exit(main())
