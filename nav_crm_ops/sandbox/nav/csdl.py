"""``GET …/ODataV4/$metadata``: the CSDL of the published pages.

NAV's OData v4 endpoint describes each published page as an ``EntityType`` named after its
service name in the ``NAV`` namespace, keyed by the page's key fields, with one
``EntitySet`` per service and ``Company`` as the entity set of companies. Options are enum
types whose members are the option captions with each character that cannot be in a name as
``_xHHHH_`` (``_x0020_`` for the blank option), as the page fields send them.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache
from xml.sax.saxutils import quoteattr

from ..bc_schema import bc_entity
from .common import encode_option
from .pages import PAGES, Field, Page, Source

_EDM = {"string": "Edm.String", "memo": "Edm.String", "int": "Edm.Int32",
        "bigint": "Edm.Int64", "decimal": "Edm.Decimal", "money": "Edm.Decimal",
        "bool": "Edm.Boolean", "date": "Edm.Date", "datetime": "Edm.DateTimeOffset",
        "guid": "Edm.Guid"}


def _enum_name(page: Page, item: Field) -> str:
    return f"{page.service}_{item.name}"


def _property(page: Page, item: Field) -> str:
    entity = bc_entity(page.entity)
    column = entity.column(item.column) if entity and item.column else None
    nullable = ' Nullable="false"' if item.name in page.keys else ""
    if item.source is Source.MODIFIED_DATE:
        kind = "Edm.Date"
    elif item.source is Source.COMPUTED:
        kind = "Edm.String" if item.name in ("No", "Name") else "Edm.Decimal"
    elif item.source is not Source.COLUMN:
        kind = "Edm.String"  # a constant, a code, a number shown in place of an id
    elif column is not None and column.type == "option":
        kind = f"NAV.{_enum_name(page, item)}"
    else:
        kind = _EDM.get(column.type if column else "string", "Edm.String")
    length = (f' MaxLength="{column.max_length}"'
              if column is not None and column.max_length and kind == "Edm.String" else "")
    return f'<Property Name="{item.name}" Type="{kind}"{nullable}{length} />'


def _enums(page: Page) -> Iterator[str]:
    entity = bc_entity(page.entity)
    for item in page.fields:
        column = entity.column(item.column) if entity and item.column else None
        if column is None or column.type != "option" or item.source is not Source.COLUMN:
            continue
        captions = dict(item.captions)
        members = "".join(
            f'<Member Name="{encode_option(captions.get(option, option))}" Value="{index}" />'
            for index, option in enumerate(column.options or ()))
        yield f'<EnumType Name="{_enum_name(page, item)}">{members}</EnumType>'


def _entity_type(page: Page) -> str:
    keys = "".join(f'<PropertyRef Name="{name}" />' for name in page.keys)
    properties = "".join(_property(page, item) for item in page.fields)
    return f'<EntityType Name="{page.service}"><Key>{keys}</Key>{properties}</EntityType>'


_COMPANY = ('<EntityType Name="Company"><Key><PropertyRef Name="Name" /></Key>'
            '<Property Name="Name" Type="Edm.String" Nullable="false" MaxLength="30" />'
            '<Property Name="Evaluation_Company" Type="Edm.Boolean" />'
            '<Property Name="Display_Name" Type="Edm.String" MaxLength="250" />'
            '<Property Name="Id" Type="Edm.Guid" />'
            '<Property Name="Business_Profile_Id" Type="Edm.String" MaxLength="250" />'
            '</EntityType>')


@cache
def metadata_document() -> bytes:
    """The EDMX document of every published page."""
    types = [*(enum for page in PAGES for enum in _enums(page)), _COMPANY,
             *(_entity_type(page) for page in PAGES)]
    sets = ['<EntitySet Name="Company" EntityType="NAV.Company" />',
            *(f'<EntitySet Name={quoteattr(page.service)} EntityType="NAV.{page.service}" />'
              for page in PAGES)]
    text = ('<?xml version="1.0" encoding="utf-8"?>'
            '<edmx:Edmx Version="4.0" xmlns:edmx="http://docs.oasis-open.org/odata/ns/edmx">'
            '<edmx:DataServices><Schema Namespace="NAV" '
            'xmlns="http://docs.oasis-open.org/odata/ns/edm">'
            + "".join(types)
            + '<EntityContainer Name="NAV">' + "".join(sets) + "</EntityContainer>"
            "</Schema></edmx:DataServices></edmx:Edmx>")
    return text.encode("utf-8")
