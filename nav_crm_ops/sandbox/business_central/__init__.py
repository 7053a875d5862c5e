"""The emulated Business Central API v2.0 and the navcrm/sync/v1.0 custom API, split by
concern:

- ``common`` — constants, :class:`BCError`, the parsed request path, wire values, tokens;
- ``values`` — how written values are checked (BC's conversion errors);
- ``routes`` — request paths: API, tenant, environment, company, entity set, key, action;
- ``reads`` — lists (``$filter``, ``$orderby``, ``$select``, ``$expand``, paging), records;
- ``computed`` — customer statistics / financial details and price lists, computed per read;
- ``rules`` — payload validation, table relations, numbering, customer contacts, lines;
- ``writes`` — create, update, delete and the bound posting actions;
- ``csdl`` — the ``$metadata`` documents of both APIs, built from ``bc_schema``;
- ``service`` — :class:`BusinessCentralService` (dispatch, ``$metadata``, JSON ``$batch``) and
  the app.

Each module's class extends the previous one, so :class:`BusinessCentralService` has them
all.
"""

from __future__ import annotations

from ..odata.replies import Reply
from .common import BCError, etag_for
from .service import BusinessCentralService, build_bc_app

__all__ = ["BCError", "BusinessCentralService", "Reply", "build_bc_app", "etag_for"]
