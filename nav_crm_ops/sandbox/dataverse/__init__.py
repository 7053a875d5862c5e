"""The emulated Dataverse Web API (v9.2), split by concern:

- ``common`` — constants, :class:`DataverseError`, reply helpers, parsed query options;
- ``core`` — entity sets, keys, ``$select``/``$expand``, callers (impersonation);
- ``reads`` — serialized rows, lists and paging, single records, change tracking;
- ``rules`` — value checks, state transitions, required columns, keys, duplicates, totals;
- ``writes`` — create (deep insert), upsert, update, delete (cascades);
- ``metadata`` — service document, CSDL, WhoAmI, EntityDefinitions and Attributes reads,
  InsertOptionValue (``attributes``: the attribute metadata of a column, create bodies → columns);
- ``definitions`` — created tables, columns and lookups; RetrieveUserPrivileges and privilege
  checks;
- ``service`` — :class:`DataverseService` (routing, ``$batch``) and the ASGI app.

Each module's class extends the previous one, so :class:`DataverseService` has them all. The
tables served come from the sandbox's :class:`~nav_crm_ops.sandbox.dataverse_catalog.
DataverseCatalog` (built-in ones of the flavour plus those created at run time).
"""

from __future__ import annotations

from ..dataverse_schema import DATAVERSE_ENTITIES
from ..odata.replies import Reply
from .common import DataverseError
from .service import DataverseService, build_dataverse_app

__all__ = ["DATAVERSE_ENTITIES", "DataverseError", "DataverseService", "Reply",
           "build_dataverse_app"]
