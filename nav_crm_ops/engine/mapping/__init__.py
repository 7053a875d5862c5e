"""Mappings as data: which NAV/BC entity pairs with which Dataverse table, field by field.

Why data and not code: users change mappings (disable a field, add a filter) without touching
Python, a preview shows exactly what a mapping will do, and the defaults ship as YAML
(``nav_crm_ops/mappings/*.yaml``, one file per mapping).

A mapping is found by its *name* (case-insensitive), never by table, so two mappings on the
same table pair cannot be confused (a known weakness of the reference engine).

Workspace override files (``[workspace] mapping_files`` in ``nav_crm_ops.toml``) hold a YAML
list of mappings (or ``{mappings: [...]}``). Merge rule, entry by entry:

* a name that is not a default, or an entry with ``replace: true``, is a whole mapping;
* otherwise the entry is merged over the default of that name: mappings (``nav``, ``crm``,
  ``templates`` ...) merge key by key, scalars and lists replace; ``fields`` entries are matched
  to default fields by ``name`` (which defaults to the CRM field name) and merged key by key,
  so ``{name: websiteurl, enabled: false}`` disables one field; an entry with ``remove: true``
  deletes the field; entries with new names are appended.

Later files win over earlier files. The result is validated as a whole (dependencies,
lookups, cycles) and every error names the mapping, the field and the valid choices.

The package: :mod:`.base` (choices and value checks), :mod:`.specs` (a mapping's parts),
:mod:`.table` (:class:`TableMapping`), :mod:`.messages` (errors naming mapping and field),
:mod:`.entries` (reading YAML, the merge rule) and :mod:`.loader` (:class:`MappingSet`).
Import from the package itself; the module layout is not part of the interface.
"""

from __future__ import annotations

from .base import DELETION_CONFLICTS, DIRECTIONS, FIELD_KINDS, MAX_FILTER_CHARS, UPDATE_CONFLICTS
from .base import Direction as Direction
from .loader import RECOMMENDED_ORDER, MappingSet
from .specs import (
    CompareSpec,
    CrmSide,
    DocumentLines,
    FieldMapping,
    LinesSide,
    LookupChild,
    LookupSpec,
    LookupVia,
    MatchSpec,
    NavReference,
    NavSide,
    NotSynchronized,
    OnlyWhen,
    OptionMap,
    OptionValue,
    Template,
    Templates,
)
from .table import TableMapping

__all__ = [
    "DELETION_CONFLICTS",
    "DIRECTIONS",
    "FIELD_KINDS",
    "MAX_FILTER_CHARS",
    "RECOMMENDED_ORDER",
    "UPDATE_CONFLICTS",
    "CompareSpec",
    "CrmSide",
    "DocumentLines",
    "FieldMapping",
    "LinesSide",
    "LookupChild",
    "LookupSpec",
    "LookupVia",
    "MappingSet",
    "MatchSpec",
    "NavReference",
    "NavSide",
    "NotSynchronized",
    "OnlyWhen",
    "OptionMap",
    "OptionValue",
    "TableMapping",
    "Template",
    "Templates",
]
