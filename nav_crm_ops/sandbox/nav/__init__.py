"""The emulated Dynamics NAV 2018 OData v4 page web services (issue #17), mounted at ``/nav``.

The pages are a view over the Business Central rows of the same sandbox store: a record
written through a NAV page is seen by the BC API and the other way round. Split by concern:

- ``pages`` — :data:`PAGES`, the published pages: service name, page id, the BC entity each
  views and the NAV field ↔ BC column map;
- ``common`` — NAV's error body, the user and web service access key, option names, URL keys;
- ``view`` — one page over its entity: field SQL, rows as NAV JSON, NAV payloads as BC's;
- ``reads`` — ``Company``, lists (``$filter``, ``$select``, ``$top``, 1,000-row pages with
  ``$skiptoken``), records by key, the computed Customer Statistics page;
- ``writes`` — POST/PATCH/DELETE run by the Business Central emulation (one set of rules);
- ``csdl`` — ``$metadata``;
- ``service`` — :class:`NavService` (Basic authentication, paths, dispatch) and the app.
"""

from __future__ import annotations

from .common import NAV_USER, NavCredentials, NavError, nav_credentials
from .pages import PAGES, Field, Page, page_by_service
from .service import NavService, build_nav_app

__all__ = ["NAV_USER", "PAGES", "Field", "NavCredentials", "NavError", "NavService", "Page",
           "build_nav_app", "nav_credentials", "page_by_service"]
