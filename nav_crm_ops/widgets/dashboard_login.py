"""The dashboards' login page: jupyter_server's, with directions that fit ``nav-crm-ops ui``.

jupyter_server's page tells people to run ``jupyter server list`` to find the token, which does
not list these servers. :class:`DashboardIdentityProvider` is jupyter_server's
``PasswordIdentityProvider`` (same token, password and cookie checks) whose login page extends
the stock ``login.html`` and only replaces its ``token_message`` block. Imported by the Voilà
process only (:mod:`.voila_server`), so importing the package does not need Voilà.
"""

from __future__ import annotations

from typing import Any

import jinja2
from jupyter_server.auth.identity import PasswordIdentityProvider
from voila.voila_identity_provider import VoilaLoginHandler

from .dashboards import PASSWORD_HASH_ENV, TOKEN_ENV

LOGIN_TEMPLATE = "nav_crm_ops_login.html"
LOGIN_PAGE = """{% extends "login.html" %}
{% block token_message %}
<div class="col-sm-6 col-sm-offset-3 text-left rendered_html">
  <h3>nav-crm-ops dashboards: log in</h3>
  <p>These dashboards preview and run synchronizations with the workspace's service
     credentials, so they need a login.</p>
  <p>Paste the access token above. <code>nav-crm-ops ui</code> prints it once when it
     starts, in the address to open (its start line, <code>dashboards on ...</code>):</p>
  <pre>http://127.0.0.1:8866/?token=3f9c0d...</pre>
  <p>Opening that address logs you in directly. If the server was started with a token in
     <code>""" + TOKEN_ENV + """</code> (or <code>--token</code>), or a password in
     <code>""" + PASSWORD_HASH_ENV + """</code>, ask whoever started it.</p>
  <p>Cookies are required; a login lasts until the server restarts.</p>
</div>
{% endblock token_message %}
"""


class DashboardLoginHandler(VoilaLoginHandler):
    """Voilà's login handler rendering :data:`LOGIN_PAGE` instead of the stock page."""

    def get_template(self, name: str) -> jinja2.Template:
        env: jinja2.Environment = self.settings["jinja2_env"]
        if name != "login.html" or env.loader is None:
            return env.get_template(name)
        loader = jinja2.ChoiceLoader([jinja2.DictLoader({LOGIN_TEMPLATE: LOGIN_PAGE}),
                                      env.loader])
        return env.overlay(loader=loader).get_template(LOGIN_TEMPLATE)


class DashboardIdentityProvider(PasswordIdentityProvider):
    """jupyter_server's token/password identity provider with :class:`DashboardLoginHandler`
    (Voilà passes its own login handler class; this one replaces it)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.login_handler_class = DashboardLoginHandler
