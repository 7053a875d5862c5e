"""The CSDL ``$metadata`` document of the API v2.0 root and of the custom navcrm/sync API.

Business Central answers ``GET {api root}$metadata`` without a company, as an EDMX document
whose schema ``Microsoft.NAV`` has one ``EntityType`` per API page (singular names:
``customer``) and one ``EntitySet`` per entity set (``customers``)
(https://learn.microsoft.com/dynamics365/business-central/dev-itpro/api-reference/v2.0/). The
sandbox builds it from :mod:`..bc_schema`, so types, lengths, keys and lines are the ones the
emulated API enforces.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache
from typing import Any
from xml.sax.saxutils import quoteattr

from ..bc_schema import BC_ENTITIES, COMPUTED_ENTITIES
from ..price_lists import PRICE_LIST_COLUMNS
from ..schema import Column, EntityDef
from .statistics import Documents, customer_statistics

EDM_TYPES = {"guid": "Guid", "string": "String", "memo": "String", "int": "Int32",
             "bigint": "Int64", "decimal": "Decimal", "money": "Decimal", "bool": "Boolean",
             "datetime": "DateTimeOffset", "date": "Date", "option": "String", "json": "String",
             "choice": "Int32", "lookup": "Guid"}
SINGULAR = {"companies": "company", "currencies": "currency",
            "salespeoplePurchasers": "salespersonPurchaser",
            "unitsOfMeasure": "unitOfMeasure", "contactsInformation": "contactInformation",
            "countriesRegions": "countryRegion", "customerStatistics": "customerStatistics"}


def singular(entity_set: str) -> str:
    """The entity type of an entity set (``customers`` → ``customer``)."""
    return SINGULAR.get(entity_set) or (entity_set[:-1] if entity_set.endswith("s")
                                        else entity_set)


def _property(column: Column, key: str) -> str:
    nullable = ' Nullable="false"' if column.name == key else ""
    length = f' MaxLength="{column.max_length}"' if column.max_length else ""
    return (f"<Property Name={quoteattr(column.name)} Type=\"Edm.{EDM_TYPES[column.type]}\""
            f"{nullable}{length}/>")


def _navigation(entity: EntityDef, api: str) -> Iterator[str]:
    lines = entity.extra.get("lines")
    if lines:
        yield (f'<NavigationProperty Name="{lines}" Type="Collection(Microsoft.NAV.'
               f'{singular(lines)})" ContainsTarget="true"/>')
    for child in BC_ENTITIES:
        if entity.name in (child.extra.get("parents") or {}) and \
                child.extra.get("api", "v2.0") == api:
            yield (f'<NavigationProperty Name="{child.name}" Type="Collection(Microsoft.NAV.'
                   f'{singular(child.name)})" ContainsTarget="true"/>')


def _entity_type(entity: EntityDef, api: str) -> str:
    hidden = set(entity.extra.get("hidden") or ())
    members = [] if entity.key in hidden else [
        f'<Key><PropertyRef Name="{entity.key}"/></Key>']
    members += [_property(c, entity.key) for c in entity.columns if c.name not in hidden]
    members += list(_navigation(entity, api))
    return f'<EntityType Name="{singular(entity.name)}">{"".join(members)}</EntityType>'


def _computed_columns(name: str) -> tuple[Column, ...]:
    """The fields of an entity computed on read, from the record it computes."""
    if name == "customerPriceLists":
        return tuple(Column(field, kind) for field, kind in  # type: ignore[arg-type]
                     PRICE_LIST_COLUMNS.items())
    sample: dict[str, Any] = {"id": "", "number": "", "displayName": "", "_version": 0}
    record = customer_statistics(name, sample, Documents({}, {}, {}))
    return tuple(Column(field, "guid" if field == "id" else
                        "decimal" if isinstance(value, float) else "string")
                 for field, value in record.items() if not field.startswith("@"))


def _computed_entity(name: str) -> EntityDef:
    return EntityDef(service="business_central", name=name, entity_set=name, key="id",
                     columns=_computed_columns(name), modified_column="lastModifiedDateTime")


@cache
def metadata_document(api: str) -> bytes:
    """The ``$metadata`` of one API (``"v2.0"`` or ``"custom"``)."""
    entities = [e for e in BC_ENTITIES
                if e.extra.get("api", "v2.0") == api or e.name == "companies"]
    entities += [_computed_entity(n) for n, a in COMPUTED_ENTITIES.items() if a == api]
    types = "".join(_entity_type(e, api) for e in entities)
    sets = "".join(f'<EntitySet Name="{e.name}" EntityType="Microsoft.NAV.'
                   f'{singular(e.name)}"/>' for e in entities)
    return ('<?xml version="1.0" encoding="utf-8"?><edmx:Edmx Version="4.0" '
            'xmlns:edmx="http://docs.oasis-open.org/odata/ns/edmx"><edmx:DataServices>'
            '<Schema Namespace="Microsoft.NAV" xmlns="http://docs.oasis-open.org/odata/ns/edm">'
            f'{types}<EntityContainer Name="NAV">{sets}</EntityContainer></Schema>'
            "</edmx:DataServices></edmx:Edmx>").encode()
