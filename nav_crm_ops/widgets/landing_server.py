"""Voilà as an application: the start page, and only the dashboards rendered.

Voilà serving a folder shows a file tree at ``/`` (``jobs/`` and all), renders any notebook
under it, and answers a contents API that lists the folder. :class:`DashboardVoila` keeps
Voilà's kernels, login and rendering but replaces those handlers (:func:`dashboard_handlers`):

- ``/`` and ``/voila/tree...`` answer the start page (:func:`.landing.landing_html`), behind
  the login like every page;
- ``/voila/render/NAME`` renders only the notebooks of :data:`.landing.DASHBOARDS`; any other
  path (``jobs/sync_mapping.ipynb``, a file name typed by hand) is a 404;
- the contents API (``/voila/api/contents``) is not served.

Imported by the Voilà process only (:mod:`.voila_server`), so importing the package does not
need Voilà.
"""

from __future__ import annotations

from typing import Any

from jupyter_server.base.handlers import JupyterHandler
from jupyter_server.utils import url_path_join
from tornado import web
from voila.app import Voila
from voila.tornado.contentshandler import VoilaContentsHandler
from voila.tornado.handler import TornadoVoilaHandler
from voila.tornado.treehandler import TornadoVoilaTreeHandler

from .landing import DASHBOARDS, landing_html

__all__ = ["DashboardRenderHandler", "DashboardVoila", "LandingHandler", "dashboard_handlers"]

RENDERED = frozenset(d.notebook for d in DASHBOARDS)
"""The only notebooks the server renders."""


class LandingHandler(JupyterHandler):
    """The start page, for logged-in people (others are sent to the login page)."""

    @web.authenticated
    def get(self, *_: Any) -> None:
        self.set_header("Content-Type", "text/html; charset=UTF-8")
        self.set_header("Cache-Control", "no-store")
        self.finish(landing_html(self.base_url))


class DashboardRenderHandler(TornadoVoilaHandler):
    """Voilà's notebook page, for the dashboards only: anything else is "404: Not Found"."""

    @web.authenticated
    async def get(self, path: str | None = None) -> None:
        if (path or "").strip("/") not in RENDERED:
            raise web.HTTPError(404, "no such dashboard; the start page lists them")
        await super().get(path)


def dashboard_handlers(handlers: list[tuple[Any, ...]], server_url: str
                       ) -> list[tuple[Any, ...]]:
    """Voilà's handlers for a folder, turned into the application's: the tree and the contents
    API out, the start page in, rendering limited to the dashboards."""
    kept: list[tuple[Any, ...]] = []
    for handler in handlers:
        target = handler[1]
        if target in (TornadoVoilaTreeHandler, VoilaContentsHandler):
            continue
        if target is TornadoVoilaHandler:
            handler = (handler[0], DashboardRenderHandler, *handler[2:])
        kept.append(handler)
    return [(server_url, LandingHandler),
            (url_path_join(server_url, r"/voila/tree(?:/.*)?"), LandingHandler), *kept]


class DashboardVoila(Voila):
    """Voilà with :func:`dashboard_handlers` (everything else as Voilà configures it)."""

    def init_handlers(self) -> list[Any]:
        return dashboard_handlers(super().init_handlers(), self.server_url or self.base_url)
